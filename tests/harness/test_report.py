"""Reports for finance readers: money in major units, durations in words, anchors that work,
deferred findings you can open, the revenue chart with axes and a table beside it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from harness.humanize import Anchors, duration, money
from harness.report import verdict_table, write_html
from harness.runner import ScenarioResult, Sla, StepResult
from harness.violations import Violation


def test_money_uses_the_currency_exponent() -> None:
    # ISO 4217: USD two decimals, JPY none, KWD three.
    assert money(30000, "usd") == "300.00 USD"
    assert money(1234567, "jpy") == "1,234,567 JPY"
    assert money(1234, "kwd") == "1.234 KWD"
    assert money(-250, "eur") == "-2.50 EUR"


def test_durations_in_words() -> None:
    assert duration(6 * 86400 + 23 * 3600) == "6 d 23 h"
    assert duration(14 * 86400) == "14 d"
    assert duration(3600 + 5 * 60) == "1 h 5 min"
    assert duration(75) == "1 min 15 s"
    assert duration(0.214) == "0.21 s"


def test_anchors_are_valid_and_unique_per_scope() -> None:
    anchors = Anchors()
    first = anchors.id("s1", "billing:in_1")
    assert anchors.id("s1", "billing:in_1") == first  # the same record, the same id
    assert anchors.id("s2", "billing:in_1") != first  # the same id in another scenario
    clash = [anchors.id("s1", "a b"), anchors.id("s1", "a:b")]  # both slug to s1-a-b
    assert len(set(clash)) == 2
    for made in (first, *clash, anchors.id("9", "")):
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", made)
    assert anchors.known("s1", "erp:invoice/9") is None


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        href = found.get("href") or ""
        if href.startswith("#"):
            self.links.append(href[1:])


def _result(name: str) -> ScenarioResult:
    """A result as the runner makes it: one deal, a revenue waterfall, a deferred finding."""
    result = ScenarioResult(name, "scenarios/x.yaml", 7, "2026-01-15T00:00:00Z", "a deal")
    late = Violation("INV-06", "finalised invoice in_1 has no ERP invoice", ("billing:in_1",))
    step = StepResult(1, "clock.advance", 4, "2026-01-15T00:00:00Z", note="clock moved")
    step.settle = "settled after 0.21 s"
    step.deferred = [late]
    result.steps = [StepResult(0, "fixtures", None, "2026-01-15T00:00:00Z"), step]
    result.violations = [late, Violation("INV-01", "unbalanced", ("erp:journal/3",))]
    result.sla = [Sla("invoice_to_erp_posting", "billing:in_1", 6 * 86400 + 23 * 3600, 0.4)]
    result.lineage = [
        {
            "opportunity": "acme_pro",
            "crm_id": "006A",
            "subscription": "sub_1",
            "revenue_contract": {"id": "rc_1", "entity": "US", "lines": []},
            "invoices": [
                {
                    "id": "in_1",
                    "status": "paid",
                    "currency": "usd",
                    "total": 30000,
                    "billing_reason": "subscription_create",
                    "erp_invoice": "12",
                    "erp_subsidiary": "US",
                    "erp_period": "2026-01",
                    "erp_payment": None,
                    "credit_notes": [],
                }
            ],
        }
    ]
    result.revenue = [
        {
            "entity": "US",
            "recognised": [
                {"currency": "usd", "period": "2026-01", "amount_minor": 1700},
                {"currency": "usd", "period": "2026-02", "amount_minor": 2500},
            ],
            "totals": [{"currency": "usd", "deferred_minor": 25800}],
        }
    ]
    return result


def test_the_html_report_reads_as_finance(tmp_path: Path) -> None:
    results = [_result("new business"), _result("new business")]  # same names, same records
    results[1].reconciliation = [  # type: ignore[attr-defined]
        {
            "entity": "JP",
            "day": "2026-01-15",
            "currency": "JPY",
            "billing_invoiced_minor": 120000,
            "billing_subscription_minor": 120000,
            "billing_invoices": 1,
            "billing_credited_minor": 0,
            "billing_credit_notes": 0,
            "erp_posted_minor": 119999,
            "erp_documents": 1,
            "erp_credited_minor": 0,
            "erp_credit_memos": 0,
            "erp_tax_minor": 0,
            "subledger_billed_minor": 120000,
            "subledger_events": 1,
            "subledger_credited_minor": 0,
            "ties": False,
        }
    ]
    write_html(results, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    page = _Page()
    page.feed(text)

    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", i) for i in page.ids)
    assert set(page.links) <= set(page.ids), "a link to no anchor"
    assert "billing-in_1" in " ".join(page.links)  # the violation links to its invoice
    # Money in major units with the currency; durations in words; no Python reprs.
    assert "300.00 USD" in text and "30000" not in text
    assert "6 d 23 h" in text and "601200" not in text
    assert "119,999 JPY" in text and "120,000 JPY" in text
    assert not re.search(r"\b(True|False|None)\b", text)
    # Deferred findings open on demand; the chart has axes, values and a table beside it.
    assert "<details><summary>1 deferred while faults were on</summary>" in text
    assert page.tags.count("svg") == 2 and page.tags.count("line") >= 2 * 7
    assert "25.00" in text and "42.00 USD" in text  # a bar's value; 17.00 + 25.00 in the table
    assert "258.00 USD" in text  # deferred at the end


def test_the_verdict_table_counts_the_scenario_steps_that_ran() -> None:
    result = _result("one")
    table = verdict_table([result])
    steps_column = next(c for c in table.columns if c.header == "steps")
    assert list(steps_column.cells) == ["1"]
