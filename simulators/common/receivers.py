"""Where webhooks may go: loopback receivers, plus the hosts the user lists."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

# "*" opens delivery to any host (an explicit choice: the simulators push signed documents).
ANY_HOST = "*"


class ReceiverRefused(ValueError):
    """A webhook URL the simulators will not deliver to; the message says why."""


def check_receiver_url(url: str, allowed_hosts: Collection[str] = ()) -> None:
    """Accept an ``http(s)`` URL whose host is loopback (``localhost``, 127.0.0.0/8, ::1) or
    one of ``allowed_hosts``; raise ReceiverRefused otherwise. A link-local cloud metadata
    address or any other host is refused unless listed (or ``*`` is)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ReceiverRefused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ReceiverRefused("a webhook URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise ReceiverRefused("a webhook URL may not carry credentials")
    if ANY_HOST in allowed_hosts or host.lower() in {h.lower() for h in allowed_hosts}:
        return
    if is_loopback(host):
        return
    listed = ", ".join(sorted(allowed_hosts)) or "none"
    raise ReceiverRefused(
        f"webhooks go to loopback receivers only; {host} is not loopback and not an allowed "
        f"host (allowed: {listed}; serve with --webhook-host {host} to allow it)"
    )


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (brackets allowed); a name is not resolved."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
