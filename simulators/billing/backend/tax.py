"""Tax: tax rates, customers' tax ids, and the taxes of every invoice line (manual rates or
automatic tax from the jurisdiction table)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation

from simulators.billing import errors, render
from simulators.billing.amounts import LineTax, RateSpec, line_taxes
from simulators.billing.backend.base import BackendBase, Created, Listing, created_within
from simulators.billing.jurisdictions import Jurisdiction, taxability
from simulators.billing.models import Customer, Invoice, InvoiceLine, TaxIdRecord, TaxRate
from simulators.billing.params import UNSET, MetadataUpdate, Opt, assign

MAX_TAX_RATES = 10  # per line, and as default_tax_rates (Stripe's limit)
_EXEMPT_REASONS = {"exempt": "customer_exempt", "reverse": "reverse_charge"}


class TaxOps(BackendBase):
    # tax rates --------------------------------------------------------------------------
    def create_tax_rate(
        self,
        *,
        display_name: str,
        percentage: str,
        inclusive: bool,
        active: bool = True,
        country: str | None = None,
        state: str | None = None,
        jurisdiction: str | None = None,
        description: str | None = None,
        tax_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> TaxRate:
        now = self.world.clock.now()
        rate = TaxRate(
            self._ids("txr"),
            now,
            display_name,
            _percentage(percentage),
            inclusive,
            active,
            country.upper() if country else None,
            state.upper() if state else None,
            jurisdiction,
            None,
            description,
            tax_type,
            dict(metadata or {}),
        )
        self.store.tax_rates[rate.id] = rate
        self.event("tax_rate.created", render.tax_rate(self.store, rate), now)
        return rate

    def tax_rate(self, rate_id: str, param: str = "tax_rate") -> TaxRate:
        return self._get(self.store.tax_rates, rate_id, "tax rate", param)

    def update_tax_rate(
        self,
        rate_id: str,
        *,
        active: Opt[bool] = UNSET,
        display_name: Opt[str] = UNSET,
        country: Opt[str | None] = UNSET,
        state: Opt[str | None] = UNSET,
        jurisdiction: Opt[str | None] = UNSET,
        description: Opt[str | None] = UNSET,
        tax_type: Opt[str | None] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
    ) -> TaxRate:
        """Percentage and inclusiveness never change (Stripe): a new rate replaces an old one."""
        rate = self.tax_rate(rate_id)
        before = render.tax_rate(self.store, rate)
        assign(
            rate,
            active=active,
            display_name=display_name,
            country=country.upper() if isinstance(country, str) else country,
            state=state.upper() if isinstance(state, str) else state,
            jurisdiction=jurisdiction,
            description=description,
            tax_type=tax_type,
            metadata=metadata,
        )
        self._updated(
            "tax_rate.updated", before, render.tax_rate(self.store, rate), self.world.clock.now()
        )
        return rate

    def list_tax_rates(
        self, *, active: bool | None = None, inclusive: bool | None = None, created: Created = None
    ) -> Listing:
        return Listing(
            self.store.tax_rates,
            lambda r: (
                active in (None, r.active)
                and inclusive in (None, r.inclusive)
                and created_within(created, r.created)
            ),
        )

    def usable_tax_rates(self, rate_ids: list[str], param: str) -> list[str]:
        """Rates a new line, item or default may take: existing and active, at most 10, no
        two inclusive ones."""
        if len(rate_ids) > MAX_TAX_RATES:
            raise errors.invalid(f"You can apply at most {MAX_TAX_RATES} tax rates.", param)
        rates = [self.tax_rate(r, f"{param}[{n}]") for n, r in enumerate(rate_ids)]
        for n, rate in enumerate(rates):
            if not rate.active:
                raise errors.invalid(
                    f"The tax rate {rate.id} is inactive and cannot be applied.", f"{param}[{n}]"
                )
        if sum(r.inclusive for r in rates) > 1:
            raise errors.invalid("Only one inclusive tax rate can be applied at a time.", param)
        return list(dict.fromkeys(rate_ids))

    # customers' tax ids ----------------------------------------------------------------
    def create_tax_id(self, customer_id: str, *, type: str, value: str) -> TaxIdRecord:
        c = self.customer(customer_id)
        record = TaxIdRecord(
            self._ids("txi"), self.now(c.test_clock), c.id, type, value, _tax_id_country(type)
        )
        self.store.tax_ids[record.id] = record
        self.event("customer.tax_id.created", render.tax_id(self.store, record), record.created)
        return record

    def tax_id(self, customer_id: str, tax_id: str) -> TaxIdRecord:
        record = self.store.tax_ids.get(tax_id)
        if record is None or record.customer != customer_id:
            raise errors.no_such("tax_id", tax_id)
        return record

    def customer_tax_ids(self, customer_id: str) -> Listing:
        c = self.customer(customer_id)
        return Listing(self.store.tax_ids, lambda t: t.customer == c.id)

    def delete_tax_id(self, customer_id: str, tax_id: str) -> TaxIdRecord:
        record = self.tax_id(customer_id, tax_id)
        del self.store.tax_ids[record.id]
        c = self.store.customers[customer_id]
        self.event(
            "customer.tax_id.deleted", render.tax_id(self.store, record), self.now(c.test_clock)
        )
        return record

    # the taxes of an invoice -----------------------------------------------------------
    def check_tax_choice(self, c: Customer, automatic: bool, has_rates: bool) -> None:
        """Automatic tax needs the customer's location and takes no tax rates beside it."""
        if not automatic:
            return
        self.check_location(c)
        if has_rates:
            raise errors.invalid(
                "Tax rates cannot be used when automatic tax is enabled.", "default_tax_rates"
            )

    def check_location(self, c: Customer, param: str = "automatic_tax[enabled]") -> None:
        """Automatic tax needs to know where the customer is (Stripe refuses otherwise)."""
        address = c.address or {}
        country = (address.get("country") or "").upper()
        if not country or (country == "US" and not address.get("state")):
            raise errors.invalid(
                "The customer's location isn't recognized: automatic tax needs the customer's "
                "address (its country, and in the US its state).",
                param,
                code="customer_tax_location_invalid",
            )

    def tax_lines(self, inv: Invoice) -> None:
        """Every line's taxes, on its amount after discounts: the line's own tax rates, else
        the invoice's defaults; or, with automatic tax, the jurisdiction table's rate."""
        c = self.store.customers[inv.customer]
        if inv.status == "draft":
            inv.customer_tax_exempt = c.tax_exempt
        exempt = _EXEMPT_REASONS.get(inv.customer_tax_exempt)
        taxed = []
        for line in inv.lines:
            net = line.amount - line.discount_total
            if inv.automatic_tax:
                taxes = self._automatic_taxes(inv, c, line, net, exempt)
            else:
                specs = [self._spec(r) for r in (line.tax_rates or inv.default_tax_rates)]
                taxes = line_taxes(net, specs, exempt)
            # Lines are replaced, never edited in place: copies of the invoice keep theirs (and
            # a line whose taxes come out the same is kept as it is).
            taxed.append(line if line.taxes == taxes else dataclasses.replace(line, taxes=taxes))
        inv.lines = taxed

    def _spec(self, rate_id: str) -> RateSpec:
        rate = self.store.tax_rates[rate_id]
        return RateSpec(rate.id, rate.percentage, rate.inclusive)

    def _automatic_taxes(
        self, inv: Invoice, c: Customer, line: InvoiceLine, net: int, exempt: str | None
    ) -> list[LineTax]:
        address = c.address or {}
        if not address.get("country"):
            inv.automatic_tax_status = "requires_location_inputs"
            return []
        inv.automatic_tax_status = "complete"
        product = self.store.products.get(line.product or "")
        price = self.store.prices.get(line.price or "")
        found = taxability(
            address["country"] or "", address.get("state"), product.tax_code if product else None
        )
        inclusive = price is not None and price.tax_behavior == "inclusive"
        rate = self._automatic_rate(found.jurisdiction, found.taxed, inclusive)
        if not found.taxed:
            return [LineTax(0, rate.id, inclusive, net, found.reason)]
        return line_taxes(net, [RateSpec(rate.id, rate.percentage, inclusive)], exempt)

    def _automatic_rate(self, j: Jurisdiction | None, taxed: bool, inclusive: bool) -> TaxRate:
        """The archived rate Stripe makes (or reuses) for each automatic tax amount."""
        percentage = j.percentage if (j is not None and taxed) else "0"
        key = (
            j.display_name if j else "Tax",
            j.country if j else None,
            j.state if j else None,
            j.name if j else None,
            percentage,
            inclusive,
        )
        for rate in self.store.tax_rates.values():
            if (
                rate.active is False
                and rate.metadata.get("automatic") == "true"
                and (
                    rate.display_name,
                    rate.country,
                    rate.state,
                    rate.jurisdiction,
                    rate.percentage,
                    rate.inclusive,
                )
                == key
            ):
                return rate
        rate = TaxRate(
            self._ids("txr"),
            self.world.clock.now(),
            key[0],
            percentage,
            inclusive,
            active=False,
            country=key[1],
            state=key[2],
            jurisdiction=key[3],
            jurisdiction_level=j.level if j else None,
            tax_type=j.tax_type if j else None,
            metadata={"automatic": "true"},
        )
        self.store.tax_rates[rate.id] = rate
        return rate


def _percentage(value: str) -> str:
    """A tax percentage as Stripe takes it: 0 to 100, at most 4 decimals; kept as a string."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise errors.invalid(
            "Invalid decimal: percentage must be a number.", "percentage"
        ) from None
    if not number.is_finite() or not 0 <= number <= 100:
        raise errors.invalid("percentage must be between 0 and 100.", "percentage")
    if number.as_tuple().exponent < -4:  # type: ignore[operator]
        raise errors.invalid("percentage can have at most 4 decimal places.", "percentage")
    return format(number.normalize(), "f")


def _tax_id_country(kind: str) -> str | None:
    """The country a tax id type belongs to (``eu_vat`` ids name theirs in the value)."""
    prefix = kind.split("_", 1)[0]
    return prefix.upper() if len(prefix) == 2 and prefix != "eu" else None
