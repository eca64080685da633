"""Billing meters, meter events and the usage they add up to."""

from __future__ import annotations

from simulators.billing import errors
from simulators.billing.backend.base import FUTURE_S, LOOKBACK_S, BackendBase, Listing
from simulators.billing.models import (
    InvoiceLine,
    Meter,
    MeterEvent,
    Subscription,
    aggregate,
)


class MeterOps(BackendBase):
    def create_meter(
        self,
        *,
        display_name: str,
        event_name: str,
        formula: str = "sum",
        customer_key: str = "stripe_customer_id",
        value_key: str = "value",
    ) -> Meter:
        if any(
            m.event_name == event_name and m.status == "active" for m in self.store.meters.values()
        ):
            raise errors.invalid("An active meter with this event_name exists.", "event_name")
        now = self.world.clock.now()
        m = Meter(
            self._ids("mtr"),
            now,
            display_name,
            event_name,
            formula,
            customer_key,
            value_key,
            updated=now,
        )
        self.store.meters[m.id] = m
        return m

    def list_meters(self) -> Listing:
        return Listing(self.store.meters, lambda m: True)

    def meter(self, meter_id: str) -> Meter:
        m = self.store.meters.get(meter_id)
        if m is None:
            raise errors.no_such("billing meter", meter_id)
        return m

    def create_meter_event(
        self,
        *,
        event_name: str,
        payload: dict[str, str],
        timestamp: int | None = None,
        identifier: str | None = None,
    ) -> MeterEvent:
        meter = next(
            (
                m
                for m in self.store.meters.values()
                if m.event_name == event_name and m.status == "active"
            ),
            None,
        )
        if meter is None:
            raise errors.invalid(f"No active meter for event_name {event_name!r}.", "event_name")
        customer_id = payload.get(meter.customer_key)
        if not customer_id:
            raise errors.missing_param(f"payload[{meter.customer_key}]")
        c = self.customer(customer_id, f"payload[{meter.customer_key}]")
        raw = payload.get(meter.value_key, "1" if meter.formula == "count" else None)
        if raw is None:
            raise errors.missing_param(f"payload[{meter.value_key}]")
        try:
            value = float(raw)
        except ValueError:
            raise errors.invalid(
                "The meter value must be a number.", f"payload[{meter.value_key}]"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise errors.invalid("The meter value must be finite.", f"payload[{meter.value_key}]")
        now = self.now(c.test_clock)
        ts = now if timestamp is None else timestamp
        if not now - LOOKBACK_S <= ts <= now + FUTURE_S:
            raise errors.invalid(
                "The timestamp must be within the past 35 days and at most "
                "5 minutes in the future.",
                "timestamp",
            )
        identifier = identifier or self.world.ids.next("mev")
        event = MeterEvent(event_name, identifier, c.id, value, ts, now, dict(payload))
        if identifier in self.store.meter_identifiers:
            # A repeated identifier is acknowledged and ignored: usage counts once.
            return event
        self.store.add_meter_event(event)
        return event

    def usage(self, meter: Meter, customer: str, start: int, end: int) -> float:
        values = [
            e.value
            for e in self.store.meter_events_by.get((meter.event_name, customer), ())
            if start <= e.timestamp < end
        ]
        return aggregate(values, meter.formula)

    def usage_summary(self, meter_id: str, customer: str, start: int, end: int) -> float:
        """A customer's aggregated usage on a meter over [start, end)."""
        m = self.meter(meter_id)
        c = self.customer(customer)
        if end <= start:
            raise errors.invalid("end_time must be after start_time.", "end_time")
        return self.usage(m, c.id, start, end)

    def _usage_lines(self, sub: Subscription, start: int, end: int) -> list[InvoiceLine]:
        lines = []
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if not price.metered or price.recurring is None or price.recurring.meter is None:
                continue
            meter = self.store.meters[price.recurring.meter]
            quantity = self.usage(meter, sub.customer, start, end)
            # Fractional usage is billed in whole units rounded half-up (documented choice).
            units = int(quantity + 0.5) if quantity >= 0 else -int(-quantity + 0.5)
            lines.append(
                self.billing._sub_line(
                    sub, si, price, price.amount_for(units), start, end, quantity=units
                )
            )
        return lines
