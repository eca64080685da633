"""Fail early, naming the system, when a fixed port it should be served on is taken."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from harness.exits import UsageError


def check_free(
    host: str, ports: Mapping[str, int], fix: str = "choose another with --port SYSTEM=PORT"
) -> None:
    """Raise a UsageError naming every system whose fixed port is in use (0 is always free).
    A port may still be taken between this check and the bind; the bind error is then caught
    by the command line, without the system's name."""
    taken = []
    for system, port in ports.items():
        if not port:
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                taken.append(f"{system}: port {port} on {host} is in use ({exc.strerror})")
    if taken:
        raise UsageError("; ".join(taken) + f" — free it, or {fix} (0 picks a free one)")
