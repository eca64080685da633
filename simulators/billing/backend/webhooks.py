"""Webhook endpoints and the event log integrations read."""

from __future__ import annotations

import fnmatch

from simulators.billing import errors
from simulators.billing.backend.base import BackendBase, Created, Listing, created_within
from simulators.billing.models import Event, WebhookEndpointRecord
from simulators.billing.params import UNSET, MetadataUpdate, Opt, assign
from simulators.common.receivers import ReceiverRefused, check_receiver_url


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
        self._check_url(url)
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
        if isinstance(url, str):
            self._check_url(url)
        if disabled is not UNSET:
            w.status = "disabled" if disabled else "enabled"
        assign(
            w, url=url, enabled_events=enabled_events, description=description, metadata=metadata
        )
        return w

    def delete_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpointRecord:
        w = self.webhook_endpoint(endpoint_id)
        w.deleted = True
        self.cancel_deliveries(w.id)
        return w

    def cancel_deliveries(self, endpoint_id: str) -> None:
        """A deleted endpoint gets nothing more: deliveries still queued for it are cancelled
        (by the dispatcher's ``cancel_endpoint``, where the dispatcher has one)."""
        cancel = getattr(self.world.dispatcher, "cancel_endpoint", None)
        if callable(cancel):
            cancel("billing", endpoint_id)

    def _check_url(self, url: str) -> None:
        """Webhooks go to loopback receivers and the hosts the user allowed, nowhere else."""
        try:
            check_receiver_url(url, getattr(self.world, "webhook_hosts", frozenset()))
        except ReceiverRefused as exc:
            raise errors.invalid(f"Invalid URL: {exc}.", "url", code="url_invalid") from None

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
