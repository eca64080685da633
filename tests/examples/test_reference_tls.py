"""The reference's shared TLS context still verifies: only the per-connection CA reload goes."""

from __future__ import annotations

import ssl

import certifi
import pytest
import requests

from examples.reference_integration.crm import SharedTls
from simulators.common.tls import LocalCA


def _session(context: ssl.SSLContext, verify: str | bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = verify  # a path, as the reference is given REQUESTS_CA_BUNDLE
    session.mount("https://", SharedTls(context))
    return session


def test_a_context_holding_the_ca_connects(tls_billing: tuple[str, LocalCA]) -> None:
    url, ca = tls_billing
    context = ssl.create_default_context(cafile=str(ca.write_bundle()))
    with _session(context, str(ca.write_bundle())) as session:
        # The simulator answers (401 without a key): the TLS handshake went through.
        assert session.get(f"{url}/v1/customers", timeout=5).status_code == 401


def test_a_context_without_the_ca_refuses_even_when_verify_names_it(
    tls_billing: tuple[str, LocalCA],
) -> None:
    url, ca = tls_billing
    public_only = ssl.create_default_context(cafile=certifi.where())
    with (
        _session(public_only, str(ca.write_bundle())) as session,
        pytest.raises(requests.exceptions.SSLError),
    ):
        session.get(f"{url}/v1/customers", timeout=5)
