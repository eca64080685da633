"""`harness.toml`: the simulators, the integration under test and the account-role mapping."""

from __future__ import annotations

import difflib
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.exits import UsageError

CONFIG_NAME = "harness.toml"
# The same instant as simulators.common.world.DEFAULT_START, kept here so reading the config
# does not import the simulators (`harness --help` stays fast); a test holds the two equal.
DEFAULT_START = "2026-01-01T00:00:00Z"


class ConfigError(UsageError, ValueError):
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


def locate_config(given: str | Path | None, start: Path | None = None) -> Path:
    """The harness.toml to use: ``given`` (``--config``) as is, else the nearest one found by
    walking up from ``start`` (the working directory), as git finds its repository."""
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
        return path
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} in {here} or any directory above it: `harness init` writes one "
        "for the reference integration, or pass --config FILE"
    )


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
                known = _names(context)
                close = difflib.get_close_matches(match.group(1), known, n=1)
                hint = f" (did you mean {{{close[0]}}}?)" if close else ""
                raise ConfigError(
                    f"unknown template name {{{match.group(1)}}} in {template!r}{hint}; "
                    f"known: {', '.join('{' + name + '}' for name in known)}"
                )
            node = node[part]
        return str(node)

    return _FIELD.sub(lookup, template)


def base_context() -> dict[str, Any]:
    """Template names that do not depend on the served simulators."""
    # The harness's own interpreter: `python` on PATH may lack the packages (pipx, venvs).
    return {"python": sys.executable}


def templates(spec: IntegrationConfig) -> Iterator[tuple[str, str]]:
    """Every templated string of the integration, with its dotted key in harness.toml."""
    for index, part in enumerate(spec.command):
        yield f"integration.command[{index}]", part
    yield "integration.cwd", spec.cwd
    for key, value in spec.env.items():
        yield f"integration.env.{key}", value
    for name, probe in (("ready", spec.ready), ("idle", spec.idle)):
        if probe is not None and probe.http is not None:
            yield f"integration.{name}.http", probe.http
    for system, receiver in spec.webhooks.items():
        yield f"integration.webhooks.{system}.url", receiver.url


def check_templates(config: HarnessConfig, context: dict[str, Any], path: Path) -> None:
    """Render every template against ``context`` before anything starts, so an unknown name
    is reported with the file and key instead of failing mid-run. ``context`` is what the
    session gives (URLs and credentials of the served simulators); each system that has a
    webhook receiver also gets its ``webhook_secret``."""
    spec = config.integration
    if spec is None:
        return
    full = {**context}
    for system in spec.webhooks:
        if isinstance(full.get(system), dict):
            full[system] = {**full[system], "webhook_secret": "…"}
    problems = []
    for key, template in templates(spec):
        try:
            render_template(template, full)
        except ConfigError as exc:
            problems.append(f"{path}: {key}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))


def _names(context: dict[str, Any], prefix: str = "") -> list[str]:
    names = []
    for key, value in context.items():
        if isinstance(value, dict):
            names.extend(_names(value, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names
