"""Webhook endpoints and the event log integrations read."""

from __future__ import annotations

import fnmatch

from simulators.billing import errors
from simulators.billing.backend.base import BackendBase, Created, Listing, created_within
from simulators.billing.models import Event, WebhookEndpointRecord
from simulators.billing.params import UNSET, MetadataUpdate, Opt, assign


class WebhookOps(BackendBase):
    def create_webhook_endpoint(
        self,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None = None,
        api_version: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> WebhookEndpointRecord:
        now = self.world.clock.now()
        w = WebhookEndpointRecord(
            self._ids("we"),
            now,
            url,
            list(enabled_events),
            f"whsec_{self.world.ids.token('whsec', 32)}",
            description=description,
            api_version=api_version,
            metadata=dict(metadata or {}),
        )
        self.store.webhook_endpoints[w.id] = w
        return w

    def list_webhook_endpoints(self) -> Listing:
        return Listing(self.store.webhook_endpoints, lambda w: not w.deleted)

    def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpointRecord:
        return self._get(
            self.store.webhook_endpoints, endpoint_id, "webhook endpoint", "webhook_endpoint"
        )

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        url: Opt[str] = UNSET,
        enabled_events: Opt[list[str]] = UNSET,
        disabled: Opt[bool] = UNSET,
        description: Opt[str | None] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
    ) -> WebhookEndpointRecord:
        w = self.webhook_endpoint(endpoint_id)
        if disabled is not UNSET:
            w.status = "disabled" if disabled else "enabled"
        assign(
            w, url=url, enabled_events=enabled_events, description=description, metadata=metadata
        )
        return w

    def delete_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpointRecord:
        w = self.webhook_endpoint(endpoint_id)
        w.deleted = True
        return w

    def list_events(
        self, *, types: list[str] | None = None, created: Created = None
    ) -> list[Event]:
        return [
            e
            for e in self.store.events
            if created_within(created, e.created)
            and (not types or any(fnmatch.fnmatchcase(e.type, t) for t in types))
        ]

    def retrieve_event(self, event_id: str) -> Event:
        e = self.store.events_by_id.get(event_id)
        if e is None:
            raise errors.no_such("event", event_id)
        return e
