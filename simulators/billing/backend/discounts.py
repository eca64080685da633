"""Discounts: coupons, promotion codes, the discounts they make, and the amounts they take off
every invoice line."""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation

from simulators.billing import errors, render
from simulators.billing.amounts import allocate, percent_of
from simulators.billing.backend.base import BackendBase, Created, Listing, created_within
from simulators.billing.models import Coupon, Customer, Discount, Invoice, PromotionCode
from simulators.billing.params import UNSET, DiscountSpec, MetadataUpdate, Opt, assign
from simulators.common.clock import add_months

MAX_DISCOUNTS = 20  # per subscription, invoice or item (Stripe's limit)
MAX_COUPON_PRODUCTS = 100  # applies_to[products]: our bound (Stripe publishes none)
# A checked discounts[] entry: the coupon (and promotion code) to redeem, or a discount to reuse.
DiscountPlan = list[tuple[Coupon | None, PromotionCode | None, Discount | None]]


class DiscountOps(BackendBase):
    # coupons -----------------------------------------------------------------------------
    def create_coupon(
        self,
        *,
        coupon_id: str | None = None,
        duration: str = "once",
        percent_off: str | None = None,
        amount_off: int | None = None,
        currency: str | None = None,
        duration_in_months: int | None = None,
        name: str | None = None,
        max_redemptions: int | None = None,
        redeem_by: int | None = None,
        metadata: dict[str, str] | None = None,
        applies_to: list[str] | None = None,
    ) -> Coupon:
        """``applies_to``: the products it is restricted to (``applies_to[products][]``); it
        then comes off those products' lines only."""
        if (percent_off is None) == (amount_off is None):
            raise errors.invalid(
                "Provide exactly one of percent_off and amount_off.", "percent_off"
            )
        if amount_off is not None and not currency:
            raise errors.missing_param("currency")
        if (duration == "repeating") != (duration_in_months is not None):
            raise errors.invalid(
                "duration_in_months goes with duration=repeating, and only with it.",
                "duration_in_months",
            )
        coupon_id = coupon_id or self.world.ids.token("coupon", 8)
        existing = self.store.coupons.get(coupon_id)
        if existing is not None and not existing.deleted:
            raise errors.invalid(
                f"Coupon already exists: {coupon_id}", "id", code="resource_already_exists"
            )
        now = self.world.clock.now()
        if redeem_by is not None and redeem_by <= now:
            raise errors.invalid("redeem_by must be in the future.", "redeem_by")
        products = None if applies_to is None else self._coupon_products(applies_to)
        coupon = Coupon(
            coupon_id,
            now,
            duration,
            _percent(percent_off) if percent_off is not None else None,
            amount_off,
            currency.lower() if currency else None,
            duration_in_months,
            name,
            max_redemptions,
            redeem_by,
            metadata=dict(metadata or {}),
            applies_to=products,
        )
        self.store.coupons[coupon.id] = coupon
        self.event("coupon.created", render.coupon(self.store, coupon), now)
        return coupon

    def _coupon_products(self, products: list[str]) -> list[str]:
        if not products:
            raise errors.invalid(
                "applies_to[products] must name at least one product.", "applies_to[products]"
            )
        if len(products) > MAX_COUPON_PRODUCTS:
            raise errors.invalid(
                f"A coupon applies to at most {MAX_COUPON_PRODUCTS} products.",
                "applies_to[products]",
            )
        for n, product in enumerate(products):
            if product not in self.store.products:
                raise errors.no_such("product", product, f"applies_to[products][{n}]")
        return list(dict.fromkeys(products))

    def coupon(self, coupon_id: str, param: str = "coupon") -> Coupon:
        return self._get(self.store.coupons, coupon_id, "coupon", param)

    def update_coupon(
        self,
        coupon_id: str,
        *,
        name: Opt[str | None] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
    ) -> Coupon:
        coupon = self.coupon(coupon_id)
        before = render.coupon(self.store, coupon)
        assign(coupon, name=name, metadata=metadata)
        self._updated(
            "coupon.updated", before, render.coupon(self.store, coupon), self.world.clock.now()
        )
        return coupon

    def delete_coupon(self, coupon_id: str) -> Coupon:
        """New redemptions stop; discounts already made from it keep applying (Stripe)."""
        coupon = self.coupon(coupon_id)
        data = render.coupon(self.store, coupon)
        coupon.deleted = True
        self.event("coupon.deleted", data, self.world.clock.now())
        return coupon

    def list_coupons(self, *, created: Created = None) -> Listing:
        return Listing(
            self.store.coupons, lambda c: not c.deleted and created_within(created, c.created)
        )

    # promotion codes ---------------------------------------------------------------------
    def create_promotion_code(
        self,
        *,
        coupon: str,
        code: str | None = None,
        active: bool = True,
        customer: str | None = None,
        expires_at: int | None = None,
        max_redemptions: int | None = None,
        first_time_transaction: bool = False,
        minimum_amount: int | None = None,
        minimum_amount_currency: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> PromotionCode:
        found = self.coupon(coupon, "promotion[coupon]")
        if customer is not None:
            self.customer(customer)
        code = code or self.world.ids.token("promotion_code", 8).upper()
        if any(p.code == code and p.active for p in self.store.promotion_codes.values()):
            raise errors.invalid(
                f"An active promotion code with the code {code} already exists.", "code"
            )
        if (minimum_amount is None) != (minimum_amount_currency is None):
            raise errors.invalid(
                "minimum_amount and minimum_amount_currency go together.",
                "restrictions[minimum_amount_currency]",
            )
        now = self.world.clock.now()
        promo = PromotionCode(
            self._ids("promo"),
            now,
            code,
            found.id,
            active,
            customer,
            expires_at,
            max_redemptions,
            0,
            first_time_transaction,
            minimum_amount,
            minimum_amount_currency.lower() if minimum_amount_currency else None,
            dict(metadata or {}),
        )
        self.store.promotion_codes[promo.id] = promo
        self.event("promotion_code.created", render.promotion_code(self.store, promo), now)
        return promo

    def promotion_code(self, promo_id: str, param: str = "promotion_code") -> PromotionCode:
        return self._get(self.store.promotion_codes, promo_id, "promotion code", param)

    def update_promotion_code(
        self, promo_id: str, *, active: Opt[bool] = UNSET, metadata: Opt[MetadataUpdate] = UNSET
    ) -> PromotionCode:
        promo = self.promotion_code(promo_id)
        before = render.promotion_code(self.store, promo)
        assign(promo, active=active, metadata=metadata)
        self._updated(
            "promotion_code.updated",
            before,
            render.promotion_code(self.store, promo),
            self.world.clock.now(),
        )
        return promo

    def list_promotion_codes(
        self,
        *,
        code: str | None = None,
        coupon: str | None = None,
        customer: str | None = None,
        active: bool | None = None,
        created: Created = None,
    ) -> Listing:
        return Listing(
            self.store.promotion_codes,
            lambda p: (
                code in (None, p.code)
                and coupon in (None, p.coupon)
                and customer in (None, p.customer)
                and active in (None, p.active)
                and created_within(created, p.created)
            ),
        )

    # discounts ---------------------------------------------------------------------------
    def discount(self, discount_id: str) -> Discount:
        return self._get(self.store.discounts, discount_id, "discount", "discount")

    def plan_discounts(
        self,
        specs: list[DiscountSpec],
        param: str,
        at: int,
        *,
        currency: str | None,
        customer: str,
        flat: bool = False,
    ) -> DiscountPlan:
        """Every entry of ``discounts[]`` checked, nothing redeemed yet: a coupon or promotion
        code will redeem a new discount, ``discount`` reuses one of the customer's. ``flat``:
        the parameters stand on their own (a customer's ``coupon``), not in ``param[n]``."""
        if len(specs) > MAX_DISCOUNTS:
            raise errors.invalid(f"You can apply at most {MAX_DISCOUNTS} discounts.", param)
        plan: DiscountPlan = []
        for n, spec in enumerate(specs):
            where = f"{param}[{n}]"
            key = (lambda k: k) if flat else (lambda k, w=where: f"{w}[{k}]")
            if sum(x is not None for x in (spec.coupon, spec.promotion_code, spec.discount)) != 1:
                raise errors.invalid(
                    "Each discount takes exactly one of coupon, promotion_code and discount.",
                    where,
                )
            if spec.discount is not None:
                existing = self.discount(spec.discount)
                if existing.customer != customer:
                    raise errors.invalid(
                        "That discount belongs to another customer.", key("discount")
                    )
                plan.append((None, None, existing))
                continue
            promo = None
            if spec.promotion_code is not None:
                promo = self.promotion_code(spec.promotion_code, key("promotion_code"))
                self._check_promotion(promo, customer, at, key("promotion_code"))
                coupon = self.store.coupons[promo.coupon]
            else:
                coupon = self.coupon(spec.coupon or "", key("coupon"))
            self._check_coupon(coupon, currency, at, key("coupon"))
            plan.append((coupon, promo, None))
        return plan

    def commit_discounts(
        self,
        plan: DiscountPlan,
        at: int,
        *,
        customer: str,
        subscription: str | None = None,
        subscription_item: str | None = None,
        invoice: str | None = None,
        invoice_item: str | None = None,
    ) -> list[str]:
        """Redeem a checked plan (cannot fail): the ids of the discounts, in order."""
        made = []
        for coupon, promo, existing in plan:
            if existing is not None:
                made.append(existing.id)
                continue
            assert coupon is not None
            end = None
            if coupon.duration == "repeating" and coupon.duration_in_months is not None:
                end = add_months(at, coupon.duration_in_months)
            discount = Discount(
                self._ids("di"),
                coupon.id,
                at,
                end,
                customer,
                subscription,
                subscription_item,
                invoice,
                invoice_item,
                promo.id if promo else None,
            )
            coupon.times_redeemed += 1
            if promo is not None:
                promo.times_redeemed += 1
            self.store.discounts[discount.id] = discount
            made.append(discount.id)
        return list(dict.fromkeys(made))

    def _check_coupon(self, coupon: Coupon, currency: str | None, at: int, param: str) -> None:
        if not coupon.valid or (coupon.redeem_by is not None and at >= coupon.redeem_by):
            raise errors.invalid(f"Coupon expired: {coupon.id}", param, code="coupon_expired")
        if coupon.amount_off is not None and currency and coupon.currency != currency:
            raise errors.invalid(
                f"The coupon {coupon.id} takes {coupon.amount_off} {coupon.currency} off; it "
                f"cannot apply to {currency}.",
                param,
            )

    def _check_promotion(self, promo: PromotionCode, customer: str, at: int, param: str) -> None:
        spent = promo.max_redemptions is not None and promo.times_redeemed >= promo.max_redemptions
        expired = promo.expires_at is not None and at >= promo.expires_at
        if not promo.active or spent or expired:
            raise errors.invalid(
                f"This promotion code cannot be redeemed: {promo.code}.",
                param,
                code="promotion_code_invalid" if not promo.active else "coupon_expired",
            )
        if promo.customer is not None and promo.customer != customer:
            raise errors.invalid(
                f"This promotion code is restricted to another customer: {promo.code}.", param
            )
        if promo.first_time_transaction and any(
            inv.status in ("paid", "open") and inv.amount_paid > 0
            for inv in self.store.invoices.where("customer", customer)
        ):
            raise errors.invalid(
                f"This promotion code is for first-time customers only: {promo.code}.", param
            )

    def plan_customer_discount(self, spec: DiscountSpec, customer: str, at: int) -> DiscountPlan:
        """A customer's ``coupon`` or ``promotion_code``, checked."""
        currency = (
            self.store.customers[customer].currency if customer in self.store.customers else None
        )
        return self.plan_discounts(
            [spec], "coupon", at, currency=currency, customer=customer, flat=True
        )

    def set_customer_discount(self, c: Customer, plan: DiscountPlan, now: int) -> None:
        """The customer's own discount: it applies to invoices and subscriptions of theirs
        that carry none of their own (replacing the one they had)."""
        self._drop_customer_discount(c)
        (made,) = self.commit_discounts(plan, now, customer=c.id)
        c.discount = made
        self.event(
            "customer.discount.created",
            render.discount(self.store, self.store.discounts[made]),
            now,
        )

    def delete_customer_discount(self, customer_id: str) -> Discount:
        c = self.customer(customer_id)
        discount = self._drop_customer_discount(c)
        if discount is None:
            raise errors.no_such("discount", f"{c.id}/discount", "customer")
        return discount

    def _drop_customer_discount(self, c: Customer) -> Discount | None:
        if c.discount is None:
            return None
        discount = self.store.discounts[c.discount]
        c.discount = None
        discount.deleted = True
        self.event(
            "customer.discount.deleted",
            render.discount(self.store, discount),
            self.now(c.test_clock),
        )
        return discount

    def delete_subscription_discount(self, sub_id: str) -> Discount:
        sub = self.subscription(sub_id, "subscription_exposed_id")
        if not sub.discounts:
            raise errors.no_such("discount", f"{sub.id}/discount", "subscription_exposed_id")
        before = self._sub_json(sub)
        discount = self.store.discounts[sub.discounts[0]]
        sub.discounts = sub.discounts[1:]
        discount.deleted = True
        now = self.now(sub.test_clock)
        self._updated("customer.subscription.updated", before, self._sub_json(sub), now)
        return discount

    # the amounts off every line ------------------------------------------------------------
    def invoice_discounts(self, inv: Invoice, at: int) -> list[str]:
        """The invoice-level discounts a new invoice takes: the subscription's (active) ones,
        else the customer's."""
        sub = self.store.subscriptions.get(inv.subscription or "")
        if sub is not None:
            sub.discounts = [d for d in sub.discounts if self.store.discounts[d].active(at)]
            if sub.discounts:
                return list(sub.discounts)
        c = self.store.customers[inv.customer]
        if c.discount is not None and self.store.discounts[c.discount].active(at):
            return [c.discount]
        return []

    def discount_lines(self, inv: Invoice) -> None:
        """Each discountable line's discounts: its own first, then the invoice's, each taken
        from what the previous ones left. A percentage comes off every line, rounded half-up
        per line; a fixed amount off the invoice is split across its lines in proportion
        (largest remainder), never more than they come to. Credit lines take none, nor do
        lines of products a coupon is not restricted to (``applies_to``)."""
        remaining = {n: line.amount if line.discountable else 0 for n, line in enumerate(inv.lines)}
        taken: dict[int, dict[str, int]] = {n: {} for n in remaining}
        for n, line in enumerate(inv.lines):
            for d in line.discounts:
                coupon = self._coupon_of(d, inv.currency)
                if coupon is None or remaining[n] <= 0 or not coupon.applies(line.product):
                    continue
                off = self._off(coupon, remaining[n])
                taken[n][d] = off
                remaining[n] -= off
        for d in inv.discounts:
            coupon = self._coupon_of(d, inv.currency)
            if coupon is None:
                continue
            eligible = [
                n for n in remaining if remaining[n] > 0 and coupon.applies(inv.lines[n].product)
            ]
            if coupon.amount_off is not None:
                total = min(coupon.amount_off, sum(remaining[n] for n in eligible))
                shares = allocate(total, [remaining[n] for n in eligible])
            else:
                shares = [self._off(coupon, remaining[n]) for n in eligible]
            for n, off in zip(eligible, shares, strict=True):
                taken[n][d] = off
                remaining[n] -= off
        # Lines are replaced, never edited in place: copies of the invoice keep theirs. A line
        # whose discounts come out the same is kept (replacing it would copy it for nothing).
        inv.lines = [
            line
            if line.discount_amounts == taken[n]
            else dataclasses.replace(line, discount_amounts=taken[n])
            for n, line in enumerate(inv.lines)
        ]

    def _coupon_of(self, discount_id: str, currency: str) -> Coupon | None:
        discount = self.store.discounts.get(discount_id)
        if discount is None:
            return None
        coupon = self.store.coupons[discount.coupon]
        if coupon.amount_off is not None and coupon.currency != currency:
            return None
        return coupon

    @staticmethod
    def _off(coupon: Coupon, amount: int) -> int:
        if coupon.percent_off is not None:
            return percent_of(amount, coupon.percent_off)
        return min(coupon.amount_off or 0, amount)

    def discounted(self, amount: int, discount_ids: list[str], at: int, product: str) -> int:
        """``amount`` less the percentage discounts among ``discount_ids`` active at ``at``
        that apply to ``product``: what a period of an item costs, so its prorations include
        the discount (Stripe's classic billing: proration lines are not discountable)."""
        for d in discount_ids:
            discount = self.store.discounts.get(d)
            if discount is None or not discount.active(at):
                continue
            coupon = self.store.coupons[discount.coupon]
            if coupon.percent_off is not None and coupon.applies(product):
                amount -= percent_of(amount, coupon.percent_off)
        return amount

    def use_once_discounts(self, inv: Invoice, at: int) -> None:
        """A ``once`` coupon's discount is spent by the first invoice it reduces: it ends
        there and leaves the subscription (or customer) it came from."""
        used = {d for line in inv.lines for d, amount in line.discount_amounts.items() if amount}
        for d in used:
            discount = self.store.discounts[d]
            if self.store.coupons[discount.coupon].duration != "once" or discount.end is not None:
                continue
            discount.end = at
            sub = self.store.subscriptions.get(discount.subscription or "")
            if sub is not None and d in sub.discounts:
                sub.discounts = [x for x in sub.discounts if x != d]
            item = self.store.subscription_items.get(discount.subscription_item or "")
            if item is not None and d in item.discounts:
                item.discounts = [x for x in item.discounts if x != d]
            c = self.store.customers.get(discount.customer or "")
            if c is not None and c.discount == d and discount.subscription is None:
                c.discount = None


def _percent(value: str) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise errors.invalid("Invalid decimal: percent_off.", "percent_off") from None
    if not number.is_finite() or not 0 < number <= 100:
        raise errors.invalid("percent_off must be more than 0 and at most 100.", "percent_off")
    return format(number.normalize(), "f")
