"""What every billing resource family shares: the world, the store, time, ids, events, lookups."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from simulators.billing import errors, render
from simulators.billing.models import (
    DAY,
    Customer,
    Event,
    Invoice,
    PaymentMethod,
    Price,
    Subscription,
)
from simulators.billing.store import BillingStore
from simulators.common.jsonbytes import dumps_kept
from simulators.common.tables import Table
from simulators.common.world import World

if TYPE_CHECKING:
    from simulators.billing.backend import BillingBackend

# Stripe's test payment methods: brand, last4 and the decline code a charge gets.
TEST_PAYMENT_METHODS: dict[str, tuple[str, str, str | None]] = {
    "pm_card_visa": ("visa", "4242", None),
    "pm_card_mastercard": ("mastercard", "4444", None),
    "pm_card_amex": ("amex", "8431", None),
    "pm_card_visa_debit": ("visa", "5556", None),
    "pm_card_chargeDeclined": ("visa", "0002", "generic_decline"),
    "pm_card_visa_chargeDeclined": ("visa", "0002", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("visa", "0069", "expired_card"),
    "pm_card_chargeCustomerFail": ("visa", "0341", "generic_decline"),
}
# Days after the first failure when payment is retried (a fixed stand-in for Smart Retries).
RETRY_AFTER_DAYS = (3, 5, 7)
LOOKBACK_S = 35 * DAY  # meter events may be at most 35 days old
FUTURE_S = 300  # and at most 5 minutes in the future

Json = dict[str, Any]
# Sends an event out: the event, and its object as rendered (not kept once sent).
Emit = Callable[[Event, Json], None]
T = TypeVar("T")
# A `created` filter as Stripe takes it: an instant, or bounds {gt, gte, lt, lte}.
Created = int | dict[str, int] | None


class Listing(NamedTuple):
    """The rows of one table a list request asks for: the table and the filter to page with."""

    table: Table[Any]
    keep: Callable[[Any], bool]


def created_within(created: Created, stamp: int) -> bool:
    if created is None:
        return True
    if isinstance(created, int):
        return stamp == created
    return (
        ("gt" not in created or stamp > created["gt"])
        and ("gte" not in created or stamp >= created["gte"])
        and ("lt" not in created or stamp < created["lt"])
        and ("lte" not in created or stamp <= created["lte"])
    )


class BackendBase:
    """State and helpers of the billing backend. Called with the world lock held; never reads
    the wall clock."""

    def __init__(self, world: World, store: BillingStore, emit: Emit) -> None:
        self.world = world
        self.store = store
        self._emit = emit
        self.request_id: str | None = None
        self.idempotency_key: str | None = None
        # The last event's object and its bytes: two events about one rendering of an object
        # (invoice.paid, then invoice.payment_succeeded) share one copy of it.
        self._last_object: tuple[Json, bytes] | None = None

    @property
    def billing(self) -> BillingBackend:
        """The whole backend, for a call into another resource family's module."""
        return cast("BillingBackend", self)

    # time and ids ----------------------------------------------------------------------
    def now(self, test_clock: str | None = None) -> int:
        if test_clock is not None:
            return self.store.test_clocks[test_clock].frozen_time
        return self.world.clock.now()

    def _ids(self, prefix: str) -> str:
        return self.world.ids.next(prefix)

    # events ----------------------------------------------------------------------------
    def event(
        self, kind: str, obj: Json, created: int, previous: dict[str, Any] | None = None
    ) -> Event:
        last = self._last_object
        raw = last[1] if last is not None and last[0] is obj else dumps_kept(obj)
        self._last_object = (obj, raw)
        evt = Event(
            self._ids("evt"),
            kind,
            created,
            raw,
            previous,
            self.request_id,
            self.idempotency_key,
            seq=len(self.store.events) + 1,
        )
        self.store.events.append(evt)
        self.store.events_by_id[evt.id] = evt
        self._emit(evt, obj)
        return evt

    def _updated(
        self, kind: str, before: Json, after: Json, at: int, keys: tuple[str, ...] | None = None
    ) -> None:
        previous = {k: before.get(k) for k in (keys or after) if before.get(k) != after.get(k)}
        if kind.endswith(".deleted"):
            self.event(kind, after, at)  # the object as it ended; no previous_attributes
        elif previous:
            self.event(kind, after, at, previous)

    def _sub_json(self, sub: Subscription) -> Json:
        return render.subscription(self.store, sub)

    # lookups ---------------------------------------------------------------------------
    def _get(self, table: dict[str, T], object_id: str, kind: str, param: str) -> T:
        row = table.get(object_id)
        if row is None or getattr(row, "deleted", False):
            raise errors.no_such(kind, object_id, param)
        return row

    def customer(self, customer_id: str, param: str = "customer") -> Customer:
        return self._get(self.store.customers, customer_id, "customer", param)

    def price(self, price_id: str, param: str = "price") -> Price:
        return self._get(self.store.prices, price_id, "price", param)

    def subscription(self, sub_id: str, param: str = "subscription") -> Subscription:
        return self._get(self.store.subscriptions, sub_id, "subscription", param)

    def invoice(self, invoice_id: str, param: str = "invoice") -> Invoice:
        return self._get(self.store.invoices, invoice_id, "invoice", param)

    def payment_method(self, pm_id: str, param: str = "payment_method") -> PaymentMethod:
        pm = self.store.payment_methods.get(pm_id)
        if pm is None:
            spec = TEST_PAYMENT_METHODS.get(pm_id)
            if spec is None:
                raise errors.no_such("PaymentMethod", pm_id, param)
            # Stripe's test ids name a fresh card each time they are used; ours is one object.
            pm = PaymentMethod(pm_id, self.world.clock.now(), spec[0], spec[1], spec[2])
            self.store.payment_methods[pm_id] = pm
        return pm
