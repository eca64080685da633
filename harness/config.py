"""`harness.toml`: the simulators, the integration under test and the account-role mapping."""

from __future__ import annotations

import difflib
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.exits import UsageError
from harness.handoffs import (
    BILLING_WRITEBACK,
    ERP_ITEMS,
    HANDOFFS,
    LINK_KINDS,
    LINKS,
    SOURCES,
    TARGETS,
    WRITEBACK_FIELDS,
)

CONFIG_NAME = "harness.toml"
# The same instant as simulators.common.world.DEFAULT_START, kept here so reading the config
# does not import the simulators (`harness --help` stays fast); a test holds the two equal.
DEFAULT_START = "2026-01-01T00:00:00Z"

_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)\}")


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


class ExceptionsConfig(_Strict):
    """Where the integration lists what it set aside, and how an operator replays it
    (docs/exceptions.md gives the JSON shape)."""

    list: str = Field(description="GET: the exception list, {items: [...]}")
    replay: str | None = Field(
        None, description='POST: replay every open item ({}), or some ({"ids": [...]})'
    )


class IntegrationConfig(_Strict):
    command: list[str] = Field(min_length=1)
    cwd: str = "."
    env: dict[str, str] = Field(default_factory=dict)
    port: int = Field(0, ge=0, le=65535, description="given to templates as {port}; 0 = free")
    ready: Probe
    idle: Probe | None = None
    exceptions: ExceptionsConfig | None = None
    webhooks: dict[str, Receiver] = Field(default_factory=dict)
    stop_timeout_s: float = Field(5.0, gt=0, le=120)
    source: str | None = Field(
        None, description="its code, relative to cwd: what `harness mutants` copies and edits"
    )


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


class ScopeConfig(_Strict):
    """The hand-offs the integration owns; the harness plays every other one (a stand-in)."""

    owns: list[str] = Field(default_factory=lambda: list(HANDOFFS))
    standin: bool = Field(
        True, description="play the hand-offs not owned with the reference flow's integration"
    )

    @field_validator("owns")
    @classmethod
    def _known(cls, owns: list[str]) -> list[str]:
        unknown = [h for h in owns if h not in HANDOFFS]
        if unknown:
            raise ValueError(
                f"unknown hand-off(s) {', '.join(unknown)}; known: {', '.join(HANDOFFS)}"
            )
        return list(dict.fromkeys(owns))


class Link(_Strict):
    """How a target document names its source: exactly one of the kinds below."""

    external_id: str | None = None  # the target's external id, rendered from a template
    field: str | None = None  # a custom field (custbody…/custentity…) holding ``value``
    metadata: str | None = None  # a Stripe metadata key holding ``value``
    number: str | None = None  # the ERP transaction number (tranId), a template
    memo: str | None = None  # the ERP memo, a template
    hook: str | None = None  # "module:function" or "file.py:function": target → source id
    value: str | None = None  # for field / metadata: a template (default: the source's id)

    @property
    def kind(self) -> str:
        return next(k for k in LINK_KINDS if getattr(self, k) is not None)

    @property
    def template(self) -> str | None:
        """The template whose rendering, for the right source, equals the target's value."""
        kind = self.kind
        if kind in ("field", "metadata"):
            return self.value
        return None if kind == "hook" else str(getattr(self, kind))

    @model_validator(mode="after")
    def _one(self) -> Link:
        kinds = [k for k in LINK_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a link takes exactly one of {', '.join(LINK_KINDS)}")
        if self.value is not None and kinds[0] not in ("field", "metadata"):
            raise ValueError("value goes with field or metadata only")
        return self


# The tables beside the link ids in [links], each with the reference flow's defaults.
_TABLES = {
    "crm_writeback": WRITEBACK_FIELDS,
    "billing_writeback": BILLING_WRITEBACK,
    "erp_items": ERP_ITEMS,
}


class LinksConfig(_Strict):
    """Every link the judge reads, the reference flow's convention unless declared."""

    links: dict[str, Link] = Field(default_factory=dict)
    crm_writeback: dict[str, str] = Field(default_factory=lambda: dict(WRITEBACK_FIELDS))
    billing_writeback: dict[str, str] = Field(default_factory=lambda: dict(BILLING_WRITEBACK))
    erp_items: dict[str, str] = Field(default_factory=lambda: dict(ERP_ITEMS))

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        """``[links]`` holds link ids, quoted (``"erp.invoice" = {…}``) or as nested tables
        (``[links.erp]`` ``invoice = {…}``), beside the two tables below."""
        if not isinstance(data, dict) or "links" in data:
            return data
        out: dict[str, Any] = {"links": {}}
        for key, value in data.items():
            if key in _TABLES:
                out[key] = {**_TABLES[key], **value}
            elif key in LINKS or not isinstance(value, dict) or _is_link(value):
                out["links"][key] = value
            else:
                for sub, decl in value.items():
                    out["links"][f"{key}.{sub}"] = decl
        return out

    @model_validator(mode="after")
    def _valid(self) -> LinksConfig:
        problems = []
        for link_id, link in self.links.items():
            problems += [f"{link_id}: {p}" for p in link_problems(link_id, link)]
        for table, known in _TABLES.items():
            unknown = sorted(set(getattr(self, table)) - set(known))
            if unknown:
                problems.append(f"{table}: unknown {', '.join(unknown)}; known: {', '.join(known)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def link(self, link_id: str) -> Link:
        """The declared link, or the reference flow's convention."""
        declared = self.links.get(link_id)
        return declared if declared is not None else Link(**LINKS[link_id].default)


def _is_link(value: dict[str, Any]) -> bool:
    return any(k in value for k in (*LINK_KINDS, "value"))


def link_problems(link_id: str, link: Link) -> list[str]:
    """What is wrong with a declared link: unknown id, a kind its target cannot carry, a
    template naming a value its source does not have."""
    spec = LINKS.get(link_id)
    if spec is None:
        return [f"unknown link; known: {', '.join(LINKS)}"]
    kind = link.kind
    allowed = TARGETS[spec.target]
    if kind not in allowed:
        return [f"a {spec.target} cannot carry a {kind} link; it takes {', '.join(allowed)}"]
    problems = []
    if kind == "field":
        prefix = "custentity" if spec.target == "erp.customer" else "custbody"
        if not re.fullmatch(rf"{prefix}[a-z0-9_]{{1,37}}", str(link.field)):
            problems.append(f"field {link.field!r} is not a {prefix}… custom field id")
    if kind == "hook" and ":" not in str(link.hook):
        problems.append(f"hook {link.hook!r} is not module:function or file.py:function")
    template = link.template
    if template is not None:
        known = [f"{spec.source}.{v}" for v in SOURCES[spec.source]]
        for name in _FIELD.findall(template):
            if name not in known:
                problems.append(
                    f"template {template!r} names {{{name}}}; known: "
                    + ", ".join(f"{{{k}}}" for k in known)
                )
    return problems


class JudgeConfig(_Strict):
    """Rules not judged, each with the reason the report prints."""

    skip: dict[str, str] = Field(default_factory=dict)


class HarnessConfig(_Strict):
    simulators: SimulatorsConfig = Field(default_factory=lambda: SimulatorsConfig())
    integration: IntegrationConfig | None = None
    accounts: dict[AccountRole, str] = Field(default_factory=dict)
    scope: ScopeConfig = Field(default_factory=lambda: ScopeConfig())
    links: LinksConfig = Field(default_factory=lambda: LinksConfig())
    judge: JudgeConfig = Field(default_factory=lambda: JudgeConfig())

    @model_validator(mode="after")
    def _standins_can_follow(self) -> HarnessConfig:
        """A stand-in writes with the reference flow's client (external ids and metadata only)
        and must find what the integration wrote for the hand-offs it builds on."""
        if not self.scope.standin:
            return self
        owned = set(self.scope.owns)
        problems = []
        for link_id in LINKS:
            link = self.links.link(link_id)
            writer = LINKS[link_id].handoff
            if writer not in owned and link.kind not in ("external_id", "metadata"):
                problems.append(
                    f"links.{link_id}: {writer} is played by the stand-in, which names "
                    f"documents by external id or metadata only, not by {link.kind}"
                )
            readers = [h for h in STANDIN_READS.get(link_id, ()) if h not in owned]
            if (
                writer in owned
                and readers
                and link.kind not in ("external_id", "field", "metadata")
            ):
                problems.append(
                    f"links.{link_id}: the stand-in playing {', '.join(readers)} must find "
                    f"these documents, by external id, custom field or metadata — not by "
                    f"{link.kind}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


# The links a stand-in reads to build on documents another hand-off wrote, by the hand-offs
# that read them (docs/bring-your-own-integration.md, "Stand-ins").
STANDIN_READS: dict[str, tuple[str, ...]] = {
    "erp.customer": ("erp.invoices", "erp.payments", "erp.credit_memos", "crm.writeback"),
    "erp.invoice": ("erp.payments", "erp.credit_memos"),
    "billing.customer": ("crm.provision", "crm.writeback"),
    "billing.subscription": ("crm.writeback", "revrec.contracts"),
    "revrec.contract": ("revrec.billing",),
    "revrec.line": ("revrec.billing",),
}


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


_TEMPLATE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w.]*)\}")


def render_template(template: str, context: dict[str, Any]) -> str:
    """Fill ``{billing.url}``-style names from nested dicts; an unknown name is an error.
    ``{{`` and ``}}`` stand for literal braces."""

    def lookup(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
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

    return _TEMPLATE.sub(lookup, template)


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
    if spec.exceptions is not None:
        yield "integration.exceptions.list", spec.exceptions.list
        if spec.exceptions.replay is not None:
            yield "integration.exceptions.replay", spec.exceptions.replay
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
