"""Accounting rules over real HTTP: balanced journals, multi-currency postings with base
amounts, rounding and realized FX lines, applications, voids, reversals, and the GL view.

Expected amounts are computed here with Decimal from the seed's published rates (one GBP is
USD 1.27 in the first month and USD 1.25 in the second; EUR 1.09 then 1.08; JPY 0.0067), never
read back from the simulator.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.erp.conftest import RECORD, Erp, dec, error_of

GBP_USD = {"2026-01": Decimal("1.27"), "2026-02": Decimal("1.25")}
CENT = Decimal("0.01")


def half_up(value: Decimal, quantum: Decimal = CENT) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


Line = tuple[
    str, str, Decimal, Decimal, Decimal, Decimal
]  # acct number, sub, dr, cr, dr base, cr base


def postings(erp: Erp, txn: str) -> list[Line]:
    """A transaction's ledger lines, read through SuiteQL (both currencies)."""
    rows = erp.suiteql(
        "SELECT a.acctnumber, tl.subsidiary, tl.debitforeignamount dr, tl.creditforeignamount cr, "
        "tal.debit bdr, tal.credit bcr "
        "FROM transactionline tl "
        "JOIN transactionaccountingline tal "
        "ON tal.transaction = tl.transaction AND tal.transactionline = tl.id "
        "JOIN account a ON a.id = tal.account "
        f"WHERE tl.transaction = {txn} ORDER BY tl.linesequencenumber"
    )
    zero = Decimal(0)
    return [
        (
            r["acctnumber"],
            r["subsidiary"],
            dec(r.get("dr", zero)),
            dec(r.get("cr", zero)),
            dec(r.get("bdr", zero)),
            dec(r.get("bcr", zero)),
        )
        for r in rows
    ]


def by_account(lines: list[Line]) -> dict[str, tuple[Decimal, Decimal]]:
    """Net (debit − credit) per account number, in transaction and base currency."""
    net: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for acct, _, dr, cr, bdr, bcr in lines:
        net[acct][0] += dr - cr
        net[acct][1] += bdr - bcr
    return {k: (v[0], v[1]) for k, v in net.items()}


GL_VIEW = (
    "SELECT tl.subsidiary, t.currency, tal.postingperiod, "
    "SUM(tl.debitforeignamount) dr, SUM(tl.creditforeignamount) cr, "
    "SUM(tal.debit) bdr, SUM(tal.credit) bcr "
    "FROM transaction t "
    "JOIN transactionline tl ON tl.transaction = t.id "
    "JOIN transactionaccountingline tal "
    "ON tal.transaction = tl.transaction AND tal.transactionline = tl.id "
    "WHERE tal.posting = 'T' "
    "GROUP BY tl.subsidiary, t.currency, tal.postingperiod"
)


def assert_gl_balances(erp: Erp) -> None:
    """Per subsidiary: debits = credits in every currency, and in base currency overall —
    through SuiteQL and in the snapshot's ledger."""
    tx: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    base: dict[str, Decimal] = defaultdict(Decimal)
    rows = erp.suiteql(GL_VIEW)
    assert rows
    for r in rows:
        tx[(r["subsidiary"], r["currency"])] += dec(r.get("dr", 0)) - dec(r.get("cr", 0))
        base[r["subsidiary"]] += dec(r.get("bdr", 0)) - dec(r.get("bcr", 0))
    assert all(v == 0 for v in tx.values()), tx
    assert all(v == 0 for v in base.values()), base
    snap_tx: dict[tuple[str, str], int] = defaultdict(int)
    snap_base: dict[str, int] = defaultdict(int)
    for row in erp.snapshot()["ledger"]:
        snap_tx[(row["subsidiary"], row["currency"])] += row["debit_minor"] - row["credit_minor"]
        snap_base[row["subsidiary"]] += row["debit_base_minor"] - row["credit_base_minor"]
        assert row["balance_minor"] == row["debit_minor"] - row["credit_minor"]
    assert all(v == 0 for v in snap_tx.values()) and all(v == 0 for v in snap_base.values())


def sale(item: str, amount: Any, **extra: Any) -> dict[str, Any]:
    return {"item": {"externalId": item}, "amount": amount, **extra}


def je(subsidiary: str, *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"subsidiary": {"externalId": subsidiary}, "line": {"items": list(lines)}, **extra}


def dr(account: str, amount: Any, **extra: Any) -> dict[str, Any]:
    return {"account": {"externalId": account}, "debit": amount, **extra}


def cr(account: str, amount: Any, **extra: Any) -> dict[str, Any]:
    return {"account": {"externalId": account}, "credit": amount, **extra}


# journals ------------------------------------------------------------------------------------
def test_unbalanced_journal_is_refused_and_changes_nothing(erp: Erp) -> None:
    before = erp.state()
    response = erp.request(
        "POST", f"{RECORD}/journalEntry", json=je("US", dr("6000", 100), cr("1000", 99.99))
    )
    status, code, detail = error_of(response)
    assert (status, code) == (400, "USER_ERROR")
    assert "out of balance" in detail and "USD 100.00" in detail and "USD 99.99" in detail
    both = erp.request(
        "POST",
        f"{RECORD}/journalEntry",
        json=je("US", {**dr("6000", 5), "credit": 5}, cr("1000", 0)),
    )
    assert error_of(both)[:2] == (400, "USER_ERROR")
    assert erp.state() == before
    journal = erp.create("journalEntry", je("US", dr("6000", 100), cr("1000", 100), memo="rent"))
    assert by_account(postings(erp, journal)) == {
        "6000": (Decimal(100), Decimal(100)),
        "1000": (Decimal(-100), Decimal(-100)),
    }
    record = erp.get("journalEntry", journal)
    assert (record["debitTotal"], record["creditTotal"], record["status"]) == (
        100,
        100,
        "Approved for Posting",
    )


def test_foreign_currency_journal_rounds_into_the_rounding_account(erp: Erp) -> None:
    # Three GBP lines of 0.01 each side at 1.27: every line rounds on its own (0.0127 → 0.01).
    journal = erp.create(
        "journalEntry",
        je(
            "US",
            dr("6000", 0.01),
            dr("6000", 0.01),
            dr("6000", 0.01),
            cr("1000", 0.03),
            currency={"externalId": "GBP"},
            tranDate="2026-01-20",
        ),
    )
    rate = GBP_USD["2026-01"]
    debit_base = 3 * half_up(Decimal("0.01") * rate)
    credit_base = half_up(Decimal("0.03") * rate)
    net = by_account(postings(erp, journal))
    assert net["6000"] == (Decimal("0.03"), debit_base)
    assert net["1000"] == (Decimal("-0.03"), -credit_base)
    assert net["7900"] == (Decimal(0), credit_base - debit_base)  # the documented rounding account
    assert credit_base != debit_base
    assert_gl_balances(erp)


def test_intercompany_journal_balances_per_subsidiary(erp: Erp) -> None:
    before = erp.state()
    lopsided = je(
        "US",
        dr("1200", 100),
        cr("2100", 100, lineSubsidiary={"externalId": "UK"}),
        toSubsidiary={"externalId": "UK"},
    )
    assert error_of(erp.request("POST", f"{RECORD}/journalEntry", json=lopsided))[:2] == (
        400,
        "USER_ERROR",
    )
    third = je(
        "US",
        dr("6000", 1),
        cr("1000", 1, lineSubsidiary={"externalId": "DE"}),
        toSubsidiary={"externalId": "UK"},
    )
    assert error_of(erp.request("POST", f"{RECORD}/journalEntry", json=third))[:2] == (
        400,
        "USER_ERROR",
    )
    assert erp.state() == before
    journal = erp.create(
        "journalEntry",
        je(
            "US",
            dr("1200", 100),
            cr("4200", 100),
            dr("6000", 100, lineSubsidiary={"externalId": "UK"}),
            cr("2100", 100, lineSubsidiary={"externalId": "UK"}),
            toSubsidiary={"externalId": "UK"},
            tranDate="2026-01-20",
        ),
    )
    record = erp.get("journalEntry", journal)
    assert record["toSubsidiary"]["refName"] == "Finsim Ltd."
    lines = postings(erp, journal)
    us = [line for line in lines if line[1] == "1"]
    uk = [line for line in lines if line[1] == "2"]
    usd_in_gbp = half_up(Decimal(1) / GBP_USD["2026-01"], Decimal("0.000001"))  # seed cross rate
    gbp = half_up(Decimal(100) * usd_in_gbp)
    assert by_account(us) == {
        "1200": (Decimal(100), Decimal(100)),
        "4200": (Decimal(-100), Decimal(-100)),
    }
    assert by_account(uk) == {"6000": (Decimal(100), gbp), "2100": (Decimal(-100), -gbp)}
    assert_gl_balances(erp)


# invoices, payments, credit memos ----------------------------------------------------------
def test_multi_currency_invoice_and_payment_post_ar_revenue_tax_cash_and_fx(erp: Erp) -> None:
    customer = erp.customer("Globex", "US", currency="GBP")  # USD books, GBP customer
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": customer},
            "tranDate": "2026-01-20",
            "externalId": "in_globex_1",
            "item": {"items": [sale("SUBSCRIPTION", 10.01, tax1Amt=2.00), sale("USAGE", 10.01)]},
        },
    )
    jan = GBP_USD["2026-01"]
    total = Decimal("22.02")
    ar_base = half_up(total * jan)
    sub_base, usage_base, tax_base = (
        half_up(Decimal("10.01") * jan),
        half_up(Decimal("10.01") * jan),
        half_up(2 * jan),
    )
    record = erp.get("invoice", invoice)
    assert (dec(record["exchangeRate"]), dec(record["total"]), dec(record["taxTotal"])) == (
        jan,
        total,
        Decimal(2),
    )
    assert record["postingPeriod"]["refName"] == "Jan 2026"
    assert by_account(postings(erp, invoice)) == {
        "1100": (total, ar_base),
        "2400": (Decimal("-10.01"), -sub_base),  # subscription revenue is deferred
        "4100": (Decimal("-10.01"), -usage_base),
        "2200": (Decimal(-2), -tax_base),
        "7900": (Decimal(0), -(ar_base - sub_base - usage_base - tax_base)),
    }
    feb = GBP_USD["2026-02"]
    payment = erp.create(
        "customerPayment",
        {
            "customer": {"id": customer},
            "payment": 22.02,
            "tranDate": "2026-02-10",
            "apply": {"items": [{"doc": {"id": invoice}, "apply": True, "amount": 22.02}]},
        },
    )
    cash_base = half_up(total * feb)
    assert by_account(postings(erp, payment)) == {
        "1000": (total, cash_base),
        "1100": (-total, -ar_base),  # AR leaves at the invoice's historical base
        "7100": (Decimal(0), ar_base - cash_base),  # realized FX loss: the pound fell
    }
    paid = erp.get("invoice", invoice)
    assert (paid["amountRemaining"], paid["amountPaid"], paid["status"]) == (
        0,
        22.02,
        "Paid In Full",
    )
    # The customer's AR is settled in both currencies.
    ar = erp.suiteql(
        "SELECT SUM(tl.foreignamount) fx, SUM(tal.amount) base FROM transactionline tl "
        "JOIN transactionaccountingline tal "
        "ON tal.transaction = tl.transaction AND tal.transactionline = tl.id "
        "JOIN account a ON a.id = tal.account "
        f"WHERE a.acctnumber = '1100' AND tl.entity = {customer}"
    )
    assert ar == [{"fx": "0", "base": "0"}]
    # A second subsidiary with its own base currency books alongside.
    local = erp.customer("Initech", "UK")
    erp.create("invoice", {"entity": {"id": local}, "item": {"items": [sale("SERVICES", 50)]}})
    assert_gl_balances(erp)
    unpaid = erp.suiteql(
        "SELECT t.tranid, t.foreignamountunpaid FROM transaction t "
        "WHERE t.type = 'CustInvc' ORDER BY t.id"
    )
    assert [row["foreignamountunpaid"] for row in unpaid] == ["0", "50"]


def test_partial_payments_relieve_ar_exactly_in_base(erp: Erp) -> None:
    customer = erp.customer("Partial", "US", currency="GBP")
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": customer},
            "tranDate": "2026-01-05",
            "item": {"items": [sale("SERVICES", 100)]},
        },
    )
    jan, feb = GBP_USD["2026-01"], GBP_USD["2026-02"]
    ar_base = half_up(100 * jan)
    first_relief = half_up(ar_base * Decimal("33.33") / 100)
    for amount, relief in (
        (Decimal("33.33"), first_relief),
        (Decimal("66.67"), ar_base - first_relief),
    ):
        payment = erp.create(
            "customerPayment",
            {
                "customer": {"id": customer},
                "payment": float(amount),
                "tranDate": "2026-02-01",
                "apply": {"items": [{"doc": {"id": invoice}, "amount": float(amount)}]},
            },
        )
        net = by_account(postings(erp, payment))
        assert net["1100"] == (-amount, -relief)
        assert net["1000"] == (amount, half_up(amount * feb))
        assert net["7100"] == (Decimal(0), relief - half_up(amount * feb))
    assert erp.get("invoice", invoice)["amountRemaining"] == 0
    over = erp.request(
        "POST",
        f"{RECORD}/customerPayment",
        json={
            "customer": {"id": customer},
            "payment": 1,
            "apply": {"items": [{"doc": {"id": invoice}, "amount": 1}]},
        },
    )
    assert error_of(over)[:2] == (400, "USER_ERROR")
    assert_gl_balances(erp)


def test_credit_memo_reverses_revenue_and_applies_to_the_invoice(erp: Erp) -> None:
    customer = erp.customer("Credited", "DE")
    invoice = erp.create(
        "invoice",
        {"entity": {"id": customer}, "item": {"items": [sale("USAGE", 80, tax1Amt=15.2)]}},
    )
    memo = erp.create(
        "creditMemo",
        {
            "entity": {"id": customer},
            "createdFrom": {"id": invoice},
            "item": {"items": [sale("USAGE", 20, tax1Amt=3.8)]},
            "apply": {"items": [{"doc": {"id": invoice}, "apply": True}]},
        },
    )
    assert by_account(postings(erp, memo)) == {
        "4100": (Decimal(20), Decimal(20)),
        "2200": (Decimal("3.8"), Decimal("3.8")),
        "1100": (Decimal("-23.8"), Decimal("-23.8")),
    }
    credit = erp.get("creditMemo", memo)
    assert (credit["applied"], credit["unapplied"], credit["status"]) == (23.8, 0, "Fully Applied")
    assert erp.get("invoice", invoice)["amountRemaining"] == 95.2 - 23.8
    assert_gl_balances(erp)


def test_tax_posts_to_the_tax_account_once_per_tax_code(erp: Erp) -> None:
    """Two lines under DE VAT and one under FR VAT: the tax account gets one credit per code
    (memo = the code), AR the gross; the line renders its code back."""
    customer = erp.customer("Taxed", "DE")
    lines = [
        sale("SUBSCRIPTION", 100, tax1Amt=19, taxCode="txr_de"),
        sale("USAGE", 10, tax1Amt=1.9, taxCode="txr_de"),
        sale("USAGE", 50, tax1Amt=10, taxCode="txr_fr"),
    ]
    invoice = erp.create("invoice", {"entity": {"id": customer}, "item": {"items": lines}})
    rows = erp.suiteql(
        "SELECT tl.memo, tl.creditforeignamount cr FROM transactionline tl "
        "JOIN transactionaccountingline tal "
        "ON tal.transaction = tl.transaction AND tal.transactionline = tl.id "
        "JOIN account a ON a.id = tal.account "
        f"WHERE tl.transaction = {invoice} AND a.acctnumber = '2200'"
    )
    # 19 + 1.90 under txr_de, 10 under txr_fr; AR = 160 + 30.90.
    assert sorted((r["memo"], dec(r["cr"])) for r in rows) == [
        ("txr_de", Decimal("20.9")),
        ("txr_fr", Decimal(10)),
    ]
    assert by_account(postings(erp, invoice))["1100"] == (Decimal("190.9"), Decimal("190.9"))
    record = erp.get("invoice", invoice, expand=True)
    assert [x.get("taxCode") for x in record["item"]["items"]] == ["txr_de", "txr_de", "txr_fr"]
    blank = erp.request(
        "POST",
        "/services/rest/record/v1/invoice",
        json={"entity": {"id": customer}, "item": {"items": [sale("USAGE", 1, taxCode="")]}},
    )
    assert blank.status_code == 400
    assert_gl_balances(erp)


def test_amounts_take_the_currency_decimals(erp: Erp) -> None:
    yen = erp.customer("Yen Buyer", "US", currency="JPY")
    dollars = erp.customer("Dollar Buyer", "US")
    before = erp.state()
    for customer, amount in ((yen, 1000.5), (dollars, 10.005), (dollars, 0.1 + 0.2)):
        response = erp.request(
            "POST",
            f"{RECORD}/invoice",
            json={"entity": {"id": customer}, "item": {"items": [sale("SERVICES", amount)]}},
        )
        status, code, detail = error_of(response)
        assert (status, code) == (400, "INVALID_CONTENT")
        assert response.json()["o:errorDetails"][0]["o:errorPath"] == "item.items[0].amount"
        assert "decimal places" in detail
    assert erp.state() == before
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": yen},
            "tranDate": "2026-01-10",
            "item": {"items": [sale("SERVICES", 1000)]},
        },
    )
    jpy_usd = half_up(Decimal("0.0067") / 1, Decimal("0.000001"))
    assert by_account(postings(erp, invoice))["1100"] == (Decimal(1000), half_up(1000 * jpy_usd))
    assert erp.get("invoice", invoice)["total"] == 1000


def test_exchange_rate_is_given_or_the_dated_one(erp: Erp) -> None:
    customer = erp.customer("Dated", "US", currency="GBP")
    erp.create(
        "currencyRate",
        {
            "baseCurrency": {"externalId": "USD"},
            "transactionCurrency": {"externalId": "GBP"},
            "exchangeRate": 1.3,
            "effectiveDate": "2026-01-25",
        },
    )
    lines = {"items": [sale("SERVICES", 100)]}
    rates = {}
    for day in ("2026-01-24", "2026-01-25", "2026-02-01"):
        invoice = erp.create(
            "invoice", {"entity": {"id": customer}, "tranDate": day, "item": lines}
        )
        rates[day] = dec(erp.get("invoice", invoice)["exchangeRate"])
    assert rates == {
        "2026-01-24": Decimal("1.27"),
        "2026-01-25": Decimal("1.3"),
        "2026-02-01": Decimal("1.25"),
    }
    given = erp.create(
        "invoice", {"entity": {"id": customer}, "exchangeRate": 1.2345, "item": lines}
    )
    assert by_account(postings(erp, given))["1100"] == (
        Decimal(100),
        half_up(100 * Decimal("1.2345")),
    )
    local = erp.customer("Local", "US")
    base_rate = erp.request(
        "POST",
        f"{RECORD}/invoice",
        json={"entity": {"id": local}, "exchangeRate": 1.1, "item": lines},
    )
    assert error_of(base_rate)[:2] == (400, "USER_ERROR")
    no_rate = erp.customer("Frankfurt Yen", "DE", currency="JPY")
    erp.request("DELETE", f"{RECORD}/currencyRate/{_rate_id(erp, 'EUR', 'JPY', '2026-01-01')}")
    early = erp.request(
        "POST",
        f"{RECORD}/invoice",
        json={"entity": {"id": no_rate}, "tranDate": "2026-01-10", "item": lines},
    )
    status, code, detail = error_of(early)
    assert (status, code) == (400, "USER_ERROR") and "JPY→EUR" in detail


def _rate_id(erp: Erp, base: str, currency: str, on: str) -> str:
    rows = erp.suiteql(
        "SELECT r.id FROM currencyrate r JOIN currency b ON b.id = r.basecurrency "
        "JOIN currency c ON c.id = r.transactioncurrency "
        f"WHERE b.symbol = '{base}' AND c.symbol = '{currency}' AND r.effectivedate = '{on}'"
    )
    assert len(rows) == 1
    return rows[0]["id"]


# voids, reversals, changes -----------------------------------------------------------------
def test_void_posts_the_opposite_entry(erp: Erp) -> None:
    customer = erp.customer("Voidable", "US", currency="EUR")
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": customer},
            "tranDate": "2026-01-20",
            "item": {"items": [sale("SUBSCRIPTION", 33.33)]},
        },
    )
    original = postings(erp, invoice)
    response = erp.request("POST", f"{RECORD}/invoice/{invoice}/@void")
    assert response.status_code == 200
    body = response.json()
    assert body["links"] == [{"rel": "self", "href": f"{RECORD}/invoice/{invoice}/@void"}]
    journal = body["result"]
    reversing = postings(erp, journal)
    assert sorted((a, s, bdr, bcr, dr_, cr_) for a, s, dr_, cr_, bdr, bcr in original) == sorted(
        (a, s, bcr, bdr, cr_, dr_) for a, s, dr_, cr_, bdr, bcr in reversing
    )
    assert all(v == (Decimal(0), Decimal(0)) for v in by_account(original + reversing).values())
    voided = erp.get("invoice", invoice)
    assert (voided["status"], voided["amountRemaining"]) == ("Voided", 0)
    assert erp.get("journalEntry", journal)["createdFrom"]["id"] == invoice
    again = erp.request("POST", f"{RECORD}/invoice/{invoice}/@void")
    assert error_of(again)[:2] == (400, "USER_ERROR")
    assert_gl_balances(erp)


def test_voiding_a_payment_reopens_the_invoice(erp: Erp) -> None:
    customer = erp.customer("Bounced", "UK")
    invoice = erp.create(
        "invoice", {"entity": {"id": customer}, "item": {"items": [sale("SERVICES", 40)]}}
    )
    payment = erp.create(
        "customerPayment",
        {
            "customer": {"id": customer},
            "payment": 40,
            "apply": {"items": [{"doc": {"id": invoice}}]},
        },
    )
    assert erp.get("invoice", invoice)["amountRemaining"] == 0
    assert error_of(erp.request("POST", f"{RECORD}/invoice/{invoice}/@void"))[:2] == (
        400,
        "USER_ERROR",
    )
    assert erp.request("POST", f"{RECORD}/customerPayment/{payment}/@void").status_code == 200
    assert erp.get("invoice", invoice)["amountRemaining"] == 40
    assert erp.get("customerPayment", payment)["status"] == "Voided"
    assert_gl_balances(erp)


def test_reversal_date_books_the_reversing_journal(erp: Erp) -> None:
    accrual = erp.create(
        "journalEntry",
        je(
            "DE", dr("6000", 250), cr("2100", 250), tranDate="2026-01-31", reversalDate="2026-02-01"
        ),
    )
    record = erp.get("journalEntry", accrual)
    reversal = record["reversalEntry"]["id"]
    back = erp.get("journalEntry", reversal)
    assert (back["tranDate"], back["postingPeriod"]["refName"]) == ("2026-02-01", "Feb 2026")
    assert by_account(postings(erp, reversal)) == {
        "6000": (Decimal(-250), Decimal(-250)),
        "2100": (Decimal(250), Decimal(250)),
    }
    assert (
        error_of(erp.request("PATCH", f"{RECORD}/journalEntry/{reversal}", json={"memo": "x"}))[0]
        == 400
    )
    assert erp.request("DELETE", f"{RECORD}/journalEntry/{accrual}").status_code == 204
    assert error_of(erp.request("GET", f"{RECORD}/journalEntry/{reversal}"))[0] == 404


def test_patching_an_invoice_reposts_it(erp: Erp) -> None:
    customer = erp.customer("Amended", "US")
    invoice = erp.create(
        "invoice", {"entity": {"id": customer}, "item": {"items": [sale("SERVICES", 10)]}}
    )
    response = erp.request(
        "PATCH",
        f"{RECORD}/invoice/{invoice}",
        json={"item": {"items": [sale("USAGE", 12.5)]}, "memo": "fixed"},
    )
    assert response.status_code == 204
    assert by_account(postings(erp, invoice)) == {
        "1100": (Decimal("12.5"), Decimal("12.5")),
        "4100": (Decimal("-12.5"), Decimal("-12.5")),
    }
    erp.create(
        "customerPayment",
        {
            "customer": {"id": customer},
            "payment": 5,
            "apply": {"items": [{"doc": {"id": invoice}}]},
        },
    )
    before = erp.state()
    changed = erp.request(
        "PATCH", f"{RECORD}/invoice/{invoice}", json={"item": {"items": [sale("USAGE", 1)]}}
    )
    assert error_of(changed)[:2] == (400, "USER_ERROR")
    assert erp.state() == before
    assert (
        erp.request("PATCH", f"{RECORD}/invoice/{invoice}", json={"memo": "notes only"}).status_code
        == 204
    )
