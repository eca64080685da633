"""Throwaway local certificate authority so simulators can speak real TLS on loopback."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
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
    def bundle_path(self) -> Path:
        return self.directory / "bundle.pem"

    def write_bundle(self) -> Path:
        """A CA bundle for clients that trust one file (``REQUESTS_CA_BUNDLE``): the public
        roots (certifi's, plus the file ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` names, if
        any), then this CA, so one setting reaches both the simulators and the real internet."""
        sources = [Path(certifi.where())]
        for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            named = os.environ.get(variable)
            if named and Path(named).is_file() and Path(named) != self.bundle_path:
                sources.append(Path(named))
                break
        parts = [source.read_bytes().rstrip(b"\n") + b"\n" for source in sources]
        parts.append(self.ca_path.read_bytes())
        self.bundle_path.write_bytes(b"".join(parts))
        return self.bundle_path

    def forget_key(self) -> None:
        """Delete the server's private key once the servers have loaded it: nothing secret is
        left on disk, even if the process is later killed without a chance to clean up."""
        self.key_path.unlink(missing_ok=True)

    @property
    def cert_path(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "server.key"

    def ssl_context_for_clients(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))
