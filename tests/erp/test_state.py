"""State the harness reads: snapshot GL lines and ledger view; snapshot → restore round trip."""

from __future__ import annotations

from collections import defaultdict

from tests.erp.conftest import RECORD, Erp

GL_FIELDS = {
    "transaction", "subsidiary", "account", "period", "currency", "debit_minor", "credit_minor",
    "base_currency", "debit_base_minor", "credit_base_minor", "exchange_rate",
}  # fmt: skip


def book_some(erp: Erp) -> str:
    customer = erp.customer("Snap", "UK", currency="USD")
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": customer},
            "externalId": "in_snap",
            "item": {"items": [{"item": {"externalId": "USAGE"}, "amount": 99.99}]},
        },
    )
    erp.create(
        "customerPayment",
        {
            "customer": {"id": customer},
            "payment": 40,
            "tranDate": "2026-02-02",
            "apply": {"items": [{"doc": {"id": invoice}}]},
        },
    )
    return invoice


def test_snapshot_holds_gl_lines_and_a_ledger_view_that_sums_them(erp: Erp) -> None:
    book_some(erp)
    snap = erp.snapshot()
    lines = snap["store"]["gl_lines"]
    assert lines and all(set(line) >= GL_FIELDS for line in lines)
    # Trial balance per subsidiary and period, in base currency, from the raw lines.
    trial: dict[tuple[str, str], int] = defaultdict(int)
    view: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in lines:
        trial[(line["subsidiary"], line["period"])] += (
            line["debit_base_minor"] - line["credit_base_minor"]
        )
        key = (line["subsidiary"], line["account"], line["currency"], line["period"])
        for n, field in enumerate(
            ("debit_minor", "credit_minor", "debit_base_minor", "credit_base_minor")
        ):
            view[key][n] += line[field]
    assert set(trial.values()) == {0}
    ledger = {
        (r["subsidiary"], r["account"], r["currency"], r["period"]): [
            r["debit_minor"], r["credit_minor"], r["debit_base_minor"], r["credit_base_minor"]
        ]
        for r in snap["ledger"]
    }  # fmt: skip
    assert ledger == dict(view)


def test_snapshot_restore_round_trip(erp: Erp) -> None:
    invoice = book_some(erp)
    saved = erp.control("GET", "/_sim/snapshot")
    erp.control("POST", "/_sim/reset", {})
    assert erp.suiteql("SELECT COUNT(*) n FROM transaction") == [{"n": "0"}]
    erp.control("POST", "/_sim/snapshot", saved)  # the control plane's restore
    restored = erp.get("invoice", "eid:in_snap")  # the external-id index is rebuilt
    assert (restored["id"], restored["amountRemaining"]) == (invoice, 59.99)
    assert erp.snapshot()["store"] == saved["systems"]["erp"]["store"]
    # And the restored world keeps working: ids continue, periods are there.
    lines = [
        {"account": {"externalId": "6000"}, "debit": 1},
        {"account": {"externalId": "1000"}, "credit": 1},
    ]
    erp.create("journalEntry", {"subsidiary": {"externalId": "UK"}, "line": {"items": lines}})
    assert erp.request("GET", f"{RECORD}/journalEntry").json()["totalResults"] == 1
