"""Webhook receivers are loopback unless the user lists a host."""

from __future__ import annotations

import pytest

from simulators.common.receivers import ReceiverRefused, check_receiver_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/webhooks",
        "https://localhost/hook",
        "http://127.5.6.7:1/x",
        "http://[::1]:9000/x",
    ],
)
def test_loopback_receivers_are_accepted(url: str) -> None:
    check_receiver_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "not loopback"),
        ("http://10.0.0.5/hook", "not loopback"),
        ("http://example.com/hook", "not loopback"),
        ("ftp://127.0.0.1/x", "http:// or https://"),
        ("http://user:pw@127.0.0.1/x", "credentials"),
        ("not a url", "http:// or https://"),
        ("http://127.0.0.1:99999/x", "not a URL"),
    ],
)
def test_other_receivers_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(ReceiverRefused, match=why):
        check_receiver_url(url)


def test_listed_hosts_and_the_wildcard_open_delivery() -> None:
    check_receiver_url("http://hooks.internal:8443/x", {"hooks.internal"})
    check_receiver_url("http://Example.com/x", {"example.COM"})
    check_receiver_url("http://203.0.113.9/x", {"*"})
    with pytest.raises(ReceiverRefused, match=r"allowed: hooks\.internal"):
        check_receiver_url("http://203.0.113.9/x", {"hooks.internal"})
