"""The catalogue: products and prices."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

from simulators.billing import errors, render
from simulators.billing.amounts import round_half_up
from simulators.billing.backend.base import BackendBase, Created, Listing, created_within
from simulators.billing.jurisdictions import TAX_CODES, known_code
from simulators.billing.models import Price, Product, Recurring
from simulators.billing.params import UNSET, MetadataUpdate, Opt, RecurringSpec, assign

# The longest interval_count per interval: a recurring period is at most a year.
_MAX_INTERVALS = {"day": 365, "week": 52, "month": 12, "year": 1}


class CatalogueOps(BackendBase):
    def create_product(
        self,
        *,
        name: str,
        product_id: str | None = None,
        active: bool = True,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        tax_code: str | None = None,
    ) -> Product:
        product_id = product_id or self._ids("prod")
        _check_tax_code(tax_code)
        if product_id in self.store.products:
            raise errors.invalid(
                f"Product already exists: {product_id}", "id", code="resource_already_exists"
            )
        now = self.world.clock.now()
        prod = Product(
            product_id, now, name, active, description, dict(metadata or {}), now, tax_code=tax_code
        )
        self.store.products[prod.id] = prod
        self.event("product.created", render.product(self.store, prod), now)
        return prod

    def update_product(
        self,
        product_id: str,
        *,
        name: Opt[str] = UNSET,
        description: Opt[str | None] = UNSET,
        active: Opt[bool] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
        tax_code: Opt[str | None] = UNSET,
    ) -> Product:
        prod = self.product(product_id)
        if isinstance(tax_code, str):
            _check_tax_code(tax_code)
        before = render.product(self.store, prod)
        assign(
            prod,
            name=name,
            description=description,
            active=active,
            metadata=metadata,
            tax_code=tax_code,
        )
        prod.updated = self.world.clock.now()
        self._updated("product.updated", before, render.product(self.store, prod), prod.updated)
        return prod

    def list_products(self, *, active: bool | None = None, created: Created = None) -> Listing:
        return Listing(
            self.store.products,
            lambda p: active in (None, p.active) and created_within(created, p.created),
        )

    def product(self, product_id: str) -> Product:
        prod = self.store.products.get(product_id)
        if prod is None:
            raise errors.no_such("product", product_id)
        return prod

    def create_price(
        self,
        *,
        currency: str,
        unit_amount: int | None,
        product: str | None = None,
        product_name: str | None = None,
        product_tax_code: str | None = None,
        recurring: RecurringSpec | None = None,
        active: bool = True,
        lookup_key: str | None = None,
        nickname: str | None = None,
        metadata: dict[str, str] | None = None,
        tax_behavior: str = "unspecified",
        unit_amount_decimal: str | None = None,
    ) -> Price:
        """A price of ``product``, or of a new product named ``product_name`` (product_data)."""
        if product is None and product_name:
            product = self.create_product(name=product_name, tax_code=product_tax_code).id
        if product is None:
            raise errors.missing_param("product")
        if product not in self.store.products:
            raise errors.no_such("product", product, "product")
        if unit_amount is not None and unit_amount_decimal is not None:
            raise errors.invalid(
                "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
                "unit_amount_decimal",
            )
        decimal = _unit_decimal(unit_amount_decimal) if unit_amount_decimal is not None else None
        if decimal is not None:
            unit_amount = round_half_up(Fraction(Decimal(decimal)))
            if Decimal(decimal) == unit_amount:
                decimal = None  # a whole amount: the price is an ordinary unit_amount one
        if unit_amount is None:
            raise errors.missing_param("unit_amount")
        now = self.world.clock.now()
        price = Price(
            self._ids("price"),
            now,
            product,
            currency.lower(),
            unit_amount,
            self._recurring(recurring),
            active,
            lookup_key,
            nickname,
            dict(metadata or {}),
            tax_behavior,
            decimal,
        )
        self.store.prices[price.id] = price
        self.event("price.created", render.price(self.store, price), now)
        return price

    def _recurring(self, spec: RecurringSpec | None) -> Recurring | None:
        if spec is None:
            return None
        recurring = Recurring(spec.interval, spec.interval_count, spec.usage_type, spec.meter)
        if recurring.usage_type == "metered":
            if not recurring.meter:
                raise errors.invalid("Metered prices need a meter.", "recurring[meter]")
            if recurring.meter not in self.store.meters:
                raise errors.no_such("billing meter", recurring.meter, "recurring[meter]")
        elif recurring.meter:
            raise errors.invalid("Only metered prices take a meter.", "recurring[meter]")
        if not 1 <= recurring.interval_count <= _MAX_INTERVALS[recurring.interval]:
            raise errors.invalid("The interval is longer than a year.", "recurring[interval_count]")
        return recurring

    def update_price(
        self,
        price_id: str,
        *,
        active: Opt[bool] = UNSET,
        nickname: Opt[str | None] = UNSET,
        lookup_key: Opt[str | None] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
    ) -> Price:
        price = self.price(price_id)
        before = render.price(self.store, price)
        assign(price, active=active, nickname=nickname, lookup_key=lookup_key, metadata=metadata)
        self._updated(
            "price.updated", before, render.price(self.store, price), self.world.clock.now()
        )
        return price

    def list_prices(
        self,
        *,
        product: str | None = None,
        active: bool | None = None,
        type: str | None = None,
        lookup_keys: list[str] | None = None,
        created: Created = None,
    ) -> Listing:
        return Listing(
            self.store.prices,
            lambda p: (
                created_within(created, p.created)
                and product in (None, p.product)
                and active in (None, p.active)
                and type in (None, "recurring" if p.recurring else "one_time")
                and (not lookup_keys or p.lookup_key in lookup_keys)
            ),
        )


def _check_tax_code(tax_code: str | None) -> None:
    if tax_code is not None and not known_code(tax_code):
        raise errors.invalid(
            f"Invalid tax code: {tax_code} is not one of the product tax codes this simulator's "
            f"jurisdiction table knows ({', '.join(sorted(TAX_CODES))}).",
            "tax_code",
        )


def _unit_decimal(value: str) -> str:
    """A unit_amount_decimal as Stripe takes it: minor units, at least 0, at most 12 decimals."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise errors.invalid(
            "Invalid decimal: unit_amount_decimal.", "unit_amount_decimal"
        ) from None
    if not number.is_finite() or number < 0:
        raise errors.invalid("unit_amount_decimal must be 0 or more.", "unit_amount_decimal")
    if number.as_tuple().exponent < -12:  # type: ignore[operator]
        raise errors.invalid(
            "unit_amount_decimal can have at most 12 decimal places.", "unit_amount_decimal"
        )
    return format(number.normalize(), "f")
