"""`harness.toml`: the simulators, the integration under test and the account-role mapping."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.common.world import DEFAULT_START


class ConfigError(ValueError):
    """A configuration that cannot be used, with the file and the key at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimulatorsConfig(_Strict):
    seed: int = 0
    start_at: str = DEFAULT_START
    systems: list[str] = Field(default_factory=lambda: ["billing", "crm", "erp", "revrec"])
    tls: list[str] = Field(default_factory=lambda: ["crm"])
    ports: dict[str, int] = Field(default_factory=dict)
    webhook_time_scale: float = Field(1e-5, gt=0, le=1)


class Probe(_Strict):
    """Ready (or idle) when an HTTP GET answers 2xx, or when a line of output matches."""

    http: str | None = None
    log: str | None = None
    timeout_s: float = Field(30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one(self) -> Probe:
        if (self.http is None) == (self.log is None):
            raise ValueError("a probe takes exactly one of http or log")
        return self


class Receiver(_Strict):
    url: str
    events: list[str] = Field(default_factory=lambda: ["*"])


class IntegrationConfig(_Strict):
    command: list[str] = Field(min_length=1)
    cwd: str = "."
    env: dict[str, str] = Field(default_factory=dict)
    port: int = Field(0, ge=0, le=65535, description="given to templates as {port}; 0 = free")
    ready: Probe
    idle: Probe | None = None
    webhooks: dict[str, Receiver] = Field(default_factory=dict)
    stop_timeout_s: float = Field(5.0, gt=0, le=120)


AccountRole = Literal[
    "ar",
    "unbilled_ar",
    "cash",
    "deferred_revenue",
    "revenue",
    "usage_revenue",
    "services_revenue",
    "tax",
    "fx_gain_loss",
]


class HarnessConfig(_Strict):
    simulators: SimulatorsConfig = Field(default_factory=lambda: SimulatorsConfig())
    integration: IntegrationConfig | None = None
    accounts: dict[AccountRole, str] = Field(default_factory=dict)


def load_config(path: Path) -> HarnessConfig:
    """Parse and validate; every error names the file and the dotted key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return HarnessConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from None


_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)\}")


def render_template(template: str, context: dict[str, Any]) -> str:
    """Fill ``{billing.url}``-style names from nested dicts; an unknown name is an error."""

    def lookup(match: re.Match[str]) -> str:
        node: Any = context
        for part in match.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(
                    f"unknown template name {{{match.group(1)}}} in {template!r}; "
                    f"known: {', '.join(_names(context))}"
                )
            node = node[part]
        return str(node)

    return _FIELD.sub(lookup, template)


def _names(context: dict[str, Any], prefix: str = "") -> list[str]:
    names = []
    for key, value in context.items():
        if isinstance(value, dict):
            names.extend(_names(value, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names
