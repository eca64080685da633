"""Billing meter and meter-event handlers."""

from __future__ import annotations

from simulators.billing import render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class MeterHandlers(HandlerBase):
    def create_billing_meter(self, call: Call) -> Reply:
        b = call.body
        m = self.b.create_meter(
            display_name=b["display_name"],
            event_name=b["event_name"],
            formula=(b.get("default_aggregation") or {}).get("formula", "sum"),
            customer_key=(b.get("customer_mapping") or {}).get(
                "event_payload_key", "stripe_customer_id"
            ),
            value_key=(b.get("value_settings") or {}).get("event_payload_key", "value"),
        )
        return self._ok(call, render.meter(self.s, m))

    def list_billing_meters(self, call: Call) -> Reply:
        listing = self.b.list_meters()
        return self._list(call, listing, lambda m: render.meter(self.s, m), "/v1/billing/meters")

    def retrieve_billing_meter(self, call: Call) -> Reply:
        return self._ok(call, render.meter(self.s, self.b.meter(call.path["id"])))

    def list_billing_meter_event_summaries(self, call: Call) -> Reply:
        q = call.query
        meter_id, start, end = call.path["id"], q["start_time"], q["end_time"]
        value = self.b.usage_summary(meter_id, q["customer"], start, end)
        summary = {
            "id": f"mtrusg_{meter_id[4:]}_{start}",
            "object": "billing.meter_event_summary",
            "aggregated_value": value,
            "start_time": start,
            "end_time": end,
            "meter": meter_id,
            "livemode": False,
        }
        return render.envelope([summary], f"/v1/billing/meters/{meter_id}/event_summaries"), 200

    def create_billing_meter_event(self, call: Call) -> Reply:
        b = call.body
        event = self.b.create_meter_event(
            event_name=b["event_name"],
            payload={str(k): str(v) for k, v in b["payload"].items()},
            timestamp=b.get("timestamp"),
            identifier=b.get("identifier") or None,
        )
        return self._ok(call, render.meter_event(self.s, event))
