"""The connector's settings, from the environment, all checked before anything starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


class SettingsError(ValueError):
    """Settings the connector cannot start with; the message names every variable at fault."""


@dataclass(frozen=True)
class Settings:
    port: int
    database: Path
    workers: int
    stripe_api_base: str
    stripe_secret_key: str
    stripe_signing_secret: str
    netsuite_base_url: str
    netsuite_access_token: str
    netsuite_ca_bundle: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        def url(name: str, default: str | None = None) -> str:
            value = env.get(name, "").strip() or default or required(name)
            if value and urlparse(value).scheme not in ("http", "https"):
                problems.append(f"{name} must be an http(s) URL, not {value!r}")
            return value.rstrip("/")

        def number(name: str, default: int, low: int, high: int) -> int:
            text = env.get(name, "").strip() or str(default)
            try:
                value = int(text)
            except ValueError:
                problems.append(f"{name} must be a whole number, not {text!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}, not {value}")
            return value

        settings = cls(
            port=number("CONNECTOR_PORT", 8080, 1, 65535),
            database=Path(env.get("CONNECTOR_DB", "").strip() or "connector.sqlite"),
            workers=number("CONNECTOR_WORKERS", 2, 1, 16),
            stripe_api_base=url("STRIPE_API_BASE", "https://api.stripe.com"),
            stripe_secret_key=required("STRIPE_SECRET_KEY"),
            stripe_signing_secret=required("STRIPE_SIGNING_SECRET"),
            netsuite_base_url=url("NETSUITE_BASE_URL"),
            netsuite_access_token=required("NETSUITE_ACCESS_TOKEN"),
            netsuite_ca_bundle=env.get("NETSUITE_CA_BUNDLE", "").strip() or None,
        )
        if problems:
            raise SettingsError("cannot start the connector:\n  " + "\n  ".join(problems))
        return settings
