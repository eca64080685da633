"""Event and webhook-endpoint handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class WebhookHandlers(HandlerBase):
    def list_events(self, call: Call) -> Reply:
        q = call.query
        types = list(q.get("types") or []) + ([q["type"]] if q.get("type") else [])
        rows = self.b.list_events(types=types, created=q.get("created"))
        return self._page(call, rows, lambda e: render.event(self.s, e), "/v1/events")

    def retrieve_event(self, call: Call) -> Reply:
        return self._ok(call, render.event(self.s, self.b.retrieve_event(call.path["id"])))

    def create_webhook_endpoint(self, call: Call) -> Reply:
        b = call.body
        w = self.b.create_webhook_endpoint(
            url=b["url"],
            enabled_events=list(b["enabled_events"]),
            description=b.get("description"),
            api_version=b.get("api_version"),
            metadata=params.metadata(b),
        )
        return self._ok(call, render.webhook_endpoint(self.s, w, secret=True))

    def list_webhook_endpoints(self, call: Call) -> Reply:
        listing = self.b.list_webhook_endpoints()
        return self._list(
            call, listing, lambda w: render.webhook_endpoint(self.s, w), "/v1/webhook_endpoints"
        )

    def retrieve_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.webhook_endpoint(call.path["webhook_endpoint"])
        return self._ok(call, render.webhook_endpoint(self.s, w))

    def update_webhook_endpoint(self, call: Call) -> Reply:
        b = call.body
        w = self.b.update_webhook_endpoint(
            call.path["webhook_endpoint"],
            url=params.opt(b, "url"),
            enabled_events=params.opt(b, "enabled_events"),
            disabled=params.opt(b, "disabled"),
            description=params.opt_text(b, "description"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.webhook_endpoint(self.s, w))

    def delete_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.delete_webhook_endpoint(call.path["webhook_endpoint"])
        return render.webhook_endpoint(self.s, w), 200
