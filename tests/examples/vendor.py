"""A NetSuite stand-in at the transport, for unit tests of the reference's ERP client."""

from __future__ import annotations

import json
from typing import Any

from examples.reference_integration.erp import NetSuite
from examples.reference_integration.http import Answer, Http
from examples.reference_integration.reads import Reads


class RecordingVendor(Http):
    """Answers every GET with a record and every write with 204; keeps what was asked."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__("http://erp.test")
        self.calls = calls

    def request(self, method: str, path: str, **_: Any) -> Answer:
        self.calls.append(f"{method} {path}")
        if method == "GET":
            body = json.dumps({"id": "1", "status": f"read {len(self.calls)}"}).encode()
            return Answer(200, {}, body)
        return Answer(204, {"Location": "/record/v1/customer/7"}, b"")


def recording_erp(calls: list[str]) -> NetSuite:
    """A NetSuite client whose requests land in ``calls``."""
    erp = NetSuite("http://erp.test", "token", reads=Reads())
    erp._client = RecordingVendor(calls)
    return erp
