"""Tax through the real ``stripe`` SDK: tax rates, default and per-line rates, inclusive and
exclusive tax, automatic tax from the jurisdiction table, exemption, prorations and credit
notes. Every expected figure is computed here (``tests/billing/helpers.py``) or is Stripe's
published example."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.billing.conftest import Harness, monthly_price, paying_customer
from tests.billing.helpers import inclusive_split, percent, proration

DAY = 86400


def taxes_of(line: Any) -> list[tuple[int, str, str]]:
    return [(t.amount, t.tax_behavior, t.taxability_reason) for t in line.taxes]


def check_totals(inv: Any) -> None:
    """Stripe's identities: total = Σ amounts − discounts + exclusive tax; total_taxes sums
    the lines' taxes; total_excluding_tax leaves every tax out."""
    lines = list(inv.lines.data)
    exclusive = sum(t.amount for line in lines for t in line.taxes if t.tax_behavior == "exclusive")
    inclusive = sum(t.amount for line in lines for t in line.taxes if t.tax_behavior == "inclusive")
    discounts = sum(d.amount for line in lines for d in line.discount_amounts)
    assert inv.total == sum(line.amount for line in lines) - discounts + exclusive, inv.id
    assert sum(t.amount for t in inv.total_taxes) == exclusive + inclusive, inv.id
    assert inv.total_excluding_tax == inv.total - exclusive - inclusive, inv.id


def rate(client: stripe.StripeClient, pct: float, inclusive: bool = False, **extra: Any) -> Any:
    return client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": pct, "inclusive": inclusive, **extra}
    )


def draft_with(client: stripe.StripeClient, customer: str, items: list[dict[str, Any]]) -> Any:
    for item in items:
        client.v1.invoice_items.create(params={"customer": customer, "currency": "usd", **item})
    return client.v1.invoices.create(
        params={"customer": customer, "pending_invoice_items_behavior": "include"}
    )


def test_tax_rates_are_created_read_listed_and_updated_but_keep_their_percentage(
    billing: Harness,
) -> None:
    client = billing.client
    vat = rate(client, 19.5, country="de", jurisdiction="DE", description="German VAT")
    assert (vat.percentage, vat.inclusive, vat.country, vat.active) == (19.5, False, "DE", True)
    assert client.v1.tax_rates.retrieve(vat.id).jurisdiction == "DE"
    changed = client.v1.tax_rates.update(vat.id, params={"display_name": "MwSt", "active": False})
    assert (changed.display_name, changed.active, changed.percentage) == ("MwSt", False, 19.5)
    listed = client.v1.tax_rates.list(params={"active": False})
    assert [r.id for r in listed.data] == [vat.id]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.tax_rates.update(vat.id, params={"percentage": 10})  # type: ignore[typeddict-unknown-key]
    assert refused.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as too_fine:
        rate(client, 7.12345)
    assert too_fine.value.param == "percentage"
    # An inactive rate cannot be put on anything new.
    customer = client.v1.customers.create(params={"name": "Rated"})
    with pytest.raises(stripe.InvalidRequestError) as inactive:
        client.v1.invoice_items.create(
            params={
                "customer": customer.id,
                "amount": 100,
                "currency": "usd",
                "tax_rates": [vat.id],
            }
        )
    assert inactive.value.param == "tax_rates[0]"


def test_per_line_tax_is_rounded_half_up_as_in_stripes_published_example(billing: Harness) -> None:
    """Two lines of $0.43 and $4.84 at 15 %: tax $0.06 and $0.73, $0.79 in all, $6.06 total."""
    client = billing.client
    fifteen = rate(client, 15)
    customer = client.v1.customers.create(params={"name": "Rounding"})
    draft = draft_with(
        client,
        customer.id,
        [{"amount": 43, "tax_rates": [fifteen.id]}, {"amount": 484, "tax_rates": [fifteen.id]}],
    )
    by_amount = {line.amount: taxes_of(line) for line in draft.lines.data}
    assert by_amount == {
        43: [(6, "exclusive", "standard_rated")],
        484: [(73, "exclusive", "standard_rated")],
    }
    assert (draft.subtotal, draft.total, draft.total_excluding_tax) == (527, 606, 527)
    assert [(t.amount, t.tax_rate_details.tax_rate) for t in draft.total_taxes] == [
        (79, fifteen.id)
    ]
    check_totals(draft)
    opened = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    assert (opened.amount_due, opened.amount_remaining) == (606, 606)


def test_default_tax_rates_apply_where_a_line_has_none_of_its_own(billing: Harness) -> None:
    client = billing.client
    standard, reduced = rate(client, 20), rate(client, 5.5)
    customer = client.v1.customers.create(params={"name": "Defaults"})
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 10_000, "currency": "usd"}
    )
    client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "amount": 3_333,
            "currency": "usd",
            "tax_rates": [reduced.id],
        }
    )
    draft = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "pending_invoice_items_behavior": "include",
            "default_tax_rates": [standard.id],
        }
    )
    taxed = {line.amount: line.taxes[0].amount for line in draft.lines.data}
    assert taxed == {10_000: percent(10_000, "20"), 3_333: percent(3_333, "5.5")}
    assert [r.id for r in draft.default_tax_rates] == [standard.id]
    check_totals(draft)
    # Changing the draft's defaults retaxes it; clearing them leaves only the line's own rate.
    cleared = client.v1.invoices.update(draft.id, params={"default_tax_rates": ""})
    assert sum(t.amount for t in cleared.total_taxes) == percent(3_333, "5.5")
    assert cleared.total == 13_333 + percent(3_333, "5.5")


def test_an_inclusive_rate_is_inside_the_price(billing: Harness) -> None:
    client = billing.client
    vat = rate(client, 20, inclusive=True)
    customer = client.v1.customers.create(params={"name": "Inclusive"})
    draft = draft_with(client, customer.id, [{"amount": 10_000, "tax_rates": [vat.id]}])
    taxable, tax = inclusive_split(10_000, "20")
    (line,) = draft.lines.data
    assert [(t.amount, t.taxable_amount, t.tax_behavior) for t in line.taxes] == [
        (tax, taxable, "inclusive")
    ]
    assert (draft.total, draft.total_excluding_tax, draft.subtotal) == (10_000, taxable, 10_000)
    check_totals(draft)
    with pytest.raises(stripe.InvalidRequestError):
        other = rate(client, 5, inclusive=True)
        draft_with(client, customer.id, [{"amount": 100, "tax_rates": [vat.id, other.id]}])


def test_exempt_and_reverse_charge_customers_pay_no_tax(billing: Harness) -> None:
    client = billing.client
    vat = rate(client, 21)
    for exemption, reason in (("exempt", "customer_exempt"), ("reverse", "reverse_charge")):
        customer = client.v1.customers.create(params={"name": exemption, "tax_exempt": exemption})
        draft = draft_with(client, customer.id, [{"amount": 5_000, "tax_rates": [vat.id]}])
        assert taxes_of(draft.lines.data[0]) == [(0, "exclusive", reason)]
        assert (draft.total, draft.customer_tax_exempt) == (5_000, exemption)
    # Exemption is read when the draft is (re)computed: the finalised invoice keeps it.
    customer = client.v1.customers.create(params={"name": "Later"})
    draft = draft_with(client, customer.id, [{"amount": 5_000, "tax_rates": [vat.id]}])
    assert draft.total == 5_000 + percent(5_000, "21")
    client.v1.customers.update(customer.id, params={"tax_exempt": "exempt"})
    final = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    assert (final.total, final.customer_tax_exempt) == (5_000, "exempt")
    client.v1.customers.update(customer.id, params={"tax_exempt": "none"})
    assert client.v1.invoices.retrieve(final.id).total == 5_000


def test_a_subscription_taxes_its_invoices_and_prorations(billing: Harness) -> None:
    client = billing.client
    state, county = rate(client, 6.25), rate(client, 2)
    seats = monthly_price(client, "Seats", 1_999)
    customer = paying_customer(client)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": seats.id, "quantity": 3, "tax_rates": [state.id, county.id]}],
        }
    )
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    gross = 1_999 * 3
    assert [t.amount for t in first.lines.data[0].taxes] == [
        percent(gross, "6.25"),
        percent(gross, "2"),
    ]
    assert first.status == "paid" and first.amount_paid == first.total
    check_totals(first)
    # Mid-cycle upgrade to 5 seats: each proration line is taxed on its own amount.
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    at = start + 10 * DAY
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 5}],
            "proration_date": at,
            "proration_behavior": "always_invoice",
        },
    )
    upgrade = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    credit = -proration(1_999, 3, start, end, at)
    debit = proration(1_999, 5, start, end, at)
    got = {line.amount: [t.amount for t in line.taxes] for line in upgrade.lines.data}
    assert got == {
        credit: [percent(credit, "6.25"), percent(credit, "2")],
        debit: [percent(debit, "6.25"), percent(debit, "2")],
    }
    check_totals(upgrade)


def test_subscription_default_tax_rates_reach_renewals(billing: Harness) -> None:
    client = billing.client
    gst = rate(client, 10, tax_type="gst")
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": 1_767_225_600})
    customer = paying_customer(client, test_clock=clock.id)
    plan = monthly_price(client, "Plan", 4_500)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": plan.id}],
            "default_tax_rates": [gst.id],
        }
    )
    assert [r.id for r in sub.default_tax_rates] == [gst.id]
    client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": sub["items"].data[0].current_period_end + 7200}
    )
    renewals = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert len(renewals) == 2
    for inv in renewals:
        assert inv.total == 4_500 + percent(4_500, "10"), inv.id
        check_totals(inv)


@pytest.mark.parametrize(
    ("address", "tax_code", "expect"),
    [
        ({"country": "US", "state": "NY"}, None, ("4", "standard_rated")),
        ({"country": "DE"}, "txcd_10103001", ("19", "standard_rated")),
        ({"country": "US", "state": "CA"}, "txcd_10103001", ("0", "not_subject_to_tax")),
        ({"country": "FR"}, "txcd_00000000", ("0", "product_exempt")),
        ({"country": "JP"}, None, ("0", "not_collecting")),
    ],
)
def test_automatic_tax_follows_the_jurisdiction_table(
    billing: Harness, address: dict[str, str], tax_code: str | None, expect: tuple[str, str]
) -> None:
    client = billing.client
    product = client.v1.products.create(
        params={"name": "App", **({"tax_code": tax_code} if tax_code else {})}
    )
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 12_345,
            "recurring": {"interval": "month"},
            "tax_behavior": "exclusive",
        }
    )
    customer = paying_customer(client, address=address)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "automatic_tax": {"enabled": True},
        }
    )
    assert sub.automatic_tax.enabled is True
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    pct, reason = expect
    (line,) = inv.lines.data
    assert taxes_of(line) == [(percent(12_345, pct), "exclusive", reason)]
    assert (inv.automatic_tax.enabled, inv.automatic_tax.status) == (True, "complete")
    automatic = client.v1.tax_rates.retrieve(line.taxes[0].tax_rate_details.tax_rate)
    assert (automatic.active, automatic.percentage) == (False, float(pct))
    check_totals(inv)


def test_automatic_tax_with_an_inclusive_price_and_without_an_address(billing: Harness) -> None:
    client = billing.client
    price = client.v1.prices.create(
        params={
            "product_data": {"name": "EU plan"},
            "currency": "eur",
            "unit_amount": 11_900,
            "recurring": {"interval": "month"},
            "tax_behavior": "inclusive",
        }
    )
    customer = paying_customer(client, address={"country": "DE", "city": "Berlin"})
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "automatic_tax": {"enabled": True},
        }
    )
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    taxable, tax = inclusive_split(11_900, "19")
    assert taxes_of(inv.lines.data[0]) == [(tax, "inclusive", "standard_rated")]
    assert (inv.total, inv.total_excluding_tax) == (11_900, taxable)
    nowhere = paying_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            params={
                "customer": nowhere.id,
                "items": [{"price": price.id}],
                "automatic_tax": {"enabled": True},
            }
        )
    assert refused.value.code == "customer_tax_location_invalid"
    rated = rate(client, 5)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "automatic_tax": {"enabled": True},
                "default_tax_rates": [rated.id],
            }
        )


def test_credit_notes_carry_the_lines_tax_in_proportion(billing: Harness) -> None:
    client = billing.client
    vat = rate(client, 19)
    customer = client.v1.customers.create(params={"name": "Credited"})
    draft = draft_with(
        client,
        customer.id,
        [{"amount": 8_005, "tax_rates": [vat.id]}, {"amount": 1_111, "tax_rates": [vat.id]}],
    )
    inv = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    big = next(line for line in inv.lines.data if line.amount == 8_005)
    part = client.v1.credit_notes.create(
        params={
            "invoice": inv.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": big.id, "amount": 3_001}],
        }
    )
    assert [t.amount for t in part.lines.data[0].taxes] == [percent(3_001, "19")]
    assert part.subtotal == 3_001
    assert part.total == part.amount == 3_001 + percent(3_001, "19")
    assert part.total_excluding_tax == 3_001
    assert part.pre_payment_amount == part.total
    # The rest of the invoice can be credited to the cent, and not one more.
    rest = inv.total - part.total
    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.credit_notes.create(params={"invoice": inv.id, "amount": rest + 1})
    assert over.value.code == "credit_note_amount_too_large"
    last = client.v1.credit_notes.create(params={"invoice": inv.id, "amount": rest})
    assert last.total == rest
    assert client.v1.invoices.retrieve(inv.id).amount_remaining == 0


def test_a_whole_line_credit_reverses_exactly_its_tax(billing: Harness) -> None:
    client = billing.client
    vat = rate(client, 7.7, inclusive=True)
    customer = client.v1.customers.create(params={"name": "Whole"})
    draft = draft_with(client, customer.id, [{"amount": 9_999, "tax_rates": [vat.id]}])
    inv = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    (line,) = inv.lines.data
    note = client.v1.credit_notes.create(
        params={
            "invoice": inv.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id}],
        }
    )
    assert [(t.amount, t.taxable_amount) for t in note.lines.data[0].taxes] == [
        (t.amount, t.taxable_amount) for t in line.taxes
    ]
    assert note.total == inv.total == 9_999
    assert sum(t.amount for t in note.total_taxes) == inclusive_split(9_999, "7.7")[1]


def test_customer_address_and_tax_ids(billing: Harness) -> None:
    client = billing.client
    customer = client.v1.customers.create(
        params={
            "name": "GmbH",
            "address": {"line1": "Unter den Linden 1", "city": "Berlin", "country": "DE"},
            "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}],
        }
    )
    assert customer.address.country == "DE" and customer.address.state is None
    ids = client.v1.customers.tax_ids.list(customer.id)
    assert [(t.type, t.value) for t in ids.data] == [("eu_vat", "DE123456789")]
    added = client.v1.customers.tax_ids.create(
        customer.id, params={"type": "gb_vat", "value": "GB123456789"}
    )
    assert (added.country, added.customer) == ("GB", customer.id)
    assert client.v1.customers.tax_ids.retrieve(customer.id, added.id).value == "GB123456789"
    client.v1.customers.tax_ids.delete(customer.id, added.id)
    assert len(client.v1.customers.tax_ids.list(customer.id).data) == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.tax_ids.retrieve(customer.id, added.id)
    moved = client.v1.customers.update(customer.id, params={"address": {"country": "FR"}})
    assert moved.address.country == "FR" and moved.address.city is None
    cleared = client.v1.customers.update(customer.id, params={"address": ""})
    assert cleared.address is None
    invoice_ids = client.v1.invoices.create(params={"customer": customer.id}).customer_tax_ids
    assert [(t.type, t.value) for t in invoice_ids] == [("eu_vat", "DE123456789")]
