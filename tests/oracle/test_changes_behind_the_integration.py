"""The oracle follows billing ops voiding an invoice and sales withdrawing a deal it never saw."""

from __future__ import annotations

from collections.abc import Callable

from harness.oracle import expect, figure
from harness.oracle.model import ExpectedErpDocument
from harness.scenario import Scenario

Make = Callable[[str], Scenario]
JAN_3 = 1767398400  # 2026-01-03T00:00:00Z


def test_a_voided_invoice_bills_nothing_and_posts_nothing_live(scenario: Make) -> None:
    expected = expect(
        scenario(
            """\
            name: void
            start_at: 2026-01-01T00:00:00Z
            steps:
              - crm.create_opportunity:
                  {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 2}]}
              - crm.close_won: {opportunity: deal}
              - clock.advance: P2D
              - billing.void_invoice: {customer: acme}
            """
        )
    )
    (invoice,) = expected.invoices["deal"]
    assert (invoice.status, invoice.voided_at, invoice.total_minor) == ("void", JAN_3, 20000)
    # Its ERP invoice is voided: no live document to expect, and no payment.
    assert expected.erp == []
    # The contract was billed 2 × 100.00 on Jan 1 and credited it back when it was voided; the
    # service goes on (a void is no cancellation), for 200.00 less: a price concession.
    (line,) = expected.contracts["deal"].lines
    assert line.billed == [(1767225600, 20000), (JAN_3, -20000)]
    assert line.amount_minor == line.allocated_minor == 2 * 10000 * 12 - 20000
    assert figure(expected, "balance:acme") == 0


def test_a_void_gives_back_the_credit_the_invoice_used(scenario: Make) -> None:
    expected = expect(
        scenario(
            """\
            name: void after credit
            start_at: 2026-01-01T00:00:00Z
            steps:
              - crm.create_opportunity:
                  {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 2}]}
              - crm.close_won: {opportunity: deal}
              - billing.pay: {customer: acme}
              - billing.credit_note: {customer: acme, amount: 3000, credit_to: balance}
              - clock.advance: P1MT2H
              - billing.void_invoice: {customer: acme}
            """
        )
    )
    first, renewal = expected.invoices["deal"]
    # The Feb 1 renewal (200.00) drew the 30.00 of credit; voiding it hands the credit back.
    assert renewal.status == "void" and renewal.applied_balance_minor == -3000
    assert figure(expected, "balance:acme") == -3000
    assert ExpectedErpDocument("invoice", first.ref, 20000, "usd") in expected.erp
    assert all(doc.source != renewal.ref for doc in expected.erp)


def test_a_deal_reopened_before_anyone_acted_on_it_makes_nothing(scenario: Make) -> None:
    expected = expect(
        scenario(
            """\
            name: reopened
            start_at: 2026-01-01T00:00:00Z
            steps:
              - crm.create_opportunity:
                  {key: kept, customer: acme, lines: [{price: pro_usd, quantity: 1}]}
              - crm.create_opportunity:
                  {key: slipped, customer: acme, lines: [{price: pro_usd, quantity: 3}]}
              - crm.close_won: {opportunity: kept}
              - integration: stop
              - crm.close_won: {opportunity: slipped}
              - crm.reopen: {opportunity: slipped}
              - integration: start
              - clock.advance: P1MT2H
            """
        )
    )
    assert set(expected.invoices) == {"kept"} and set(expected.contracts) == {"kept"}
    assert "slipped" not in expected.root and "slipped" not in expected.subscriptions
    assert [inv.total_minor for inv in expected.invoices["kept"]] == [10000, 10000]
