"""The people a scenario plays: each vendor's own users, over HTTP, exempt from faults."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from simulators.common.formcodec import encode_form

CRM_API = "/services/data/v62.0"
ERP_RECORD = "/services/rest/record/v1"
CLOCK_TIMEOUT_S = 900.0


class StepFailed(RuntimeError):
    """A vendor refused what the scenario asked of it: the scenario, not the integration, is
    wrong (or the simulator is); the message carries the vendor's own error."""


class Actors:
    """One keep-alive client per system; every call is marked `X-Sim-Actor: harness` with the
    control token, so the simulators journal it as the harness and never fault it."""

    def __init__(self, context: dict[str, Any], timeout_s: float = 30.0) -> None:
        self.context = context
        ca_bundle = context.get("ca_bundle")
        verify: Any = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        token = str(context["control_token"])
        headers = {"X-Sim-Actor": "harness", "X-Sim-Control-Token": token}
        self._clients: dict[str, httpx.Client] = {
            system: httpx.Client(
                base_url=context[system]["url"],
                headers={**headers, "Authorization": f"Bearer {_credential(system, context)}"},
                verify=verify,
                timeout=timeout_s,
            )
            for system in ("billing", "crm", "erp", "revrec")
            if system in context
        }

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def call(
        self,
        system: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> Any:
        """The decoded body of a 2xx (or an allowed status); anything else is StepFailed."""
        client = self._clients.get(system)
        if client is None:
            raise StepFailed(f"the {system} simulator is not served in this run")
        content = None
        headers = dict(headers or {})
        if form is not None:
            content = encode_form(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        # Moving the clock runs every renewal, finalisation and retry it reaches inside the one
        # request: a big book's month takes longer than any single vendor call.
        timeout = CLOCK_TIMEOUT_S if path.startswith("/_sim/clock") else client.timeout
        try:
            response = client.request(
                method,
                path,
                json=json,
                content=content,
                params=params,
                headers=headers,
                timeout=timeout,
            )
        except httpx.TimeoutException:
            raise StepFailed(
                f"{system} {method} {path} did not answer within {_seconds(timeout)}"
            ) from None
        except httpx.HTTPError as exc:
            raise StepFailed(f"{system} {method} {path} failed: {exc}") from None
        if response.is_success or response.status_code in ok:
            return response.json() if response.content else None
        raise StepFailed(
            f"{system} {method} {path} answered {response.status_code}: {response.text[:500]}"
        )

    # shorthands ------------------------------------------------------------------------------
    def stripe(self, method: str, path: str, form: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.call("billing", method, path, form=form, **kw)

    def salesforce(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("crm", method, f"{CRM_API}{path}", json=body, **kw)

    def netsuite(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("erp", method, f"{ERP_RECORD}{path}", json=body, **kw)

    def control(self, method: str, path: str, body: Any = None, system: str = "billing") -> Any:
        """The world's control plane; every site serves it, so any system's client will do."""
        served = system if system in self._clients else next(iter(self._clients))
        return self.call(served, method, f"/_sim{path}", json=body)


def _credential(system: str, context: dict[str, Any]) -> str:
    keys = {"billing": "api_key", "crm": "session_id", "erp": "token", "revrec": "token"}
    return str(context[system].get(keys[system], ""))


def _seconds(timeout: httpx.Timeout | float) -> str:
    read = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
    return f"{read:g} s"
