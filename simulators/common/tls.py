"""Throwaway local certificate authority so simulators can speak real TLS on loopback."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_IDENTITIES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LocalCA:
    """A CA plus one loopback server certificate, stored as PEM files in ``directory``."""

    directory: Path

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        leaf = ca.issue_cert(*SERVER_IDENTITIES)
        local = cls(directory)
        ca.cert_pem.write_to_path(str(local.ca_path))
        # Write the whole chain so clients that only trust the root still verify if trustme
        # ever inserts an intermediate.
        local.cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        local.key_path.touch(mode=0o600)
        leaf.private_key_pem.write_to_path(str(local.key_path))
        return local

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def cert_path(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "server.key"

    def ssl_context_for_clients(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))
