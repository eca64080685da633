"""`harness.toml`: the simulators, the integration under test and the account-role mapping."""

from __future__ import annotations

import re
import tomllib
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

from harness.handoffs import (
    ERP_ITEMS,
    HANDOFFS,
    LINK_KINDS,
    LINKS,
    SOURCES,
    TARGETS,
    WRITEBACK_FIELDS,
)
from simulators.common.world import DEFAULT_START

_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)\}")


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


class LinksConfig(_Strict):
    """Every link the judge reads, the reference flow's convention unless declared."""

    links: dict[str, Link] = Field(default_factory=dict)
    crm_writeback: dict[str, str] = Field(default_factory=lambda: dict(WRITEBACK_FIELDS))
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
            if key in ("crm_writeback", "erp_items"):
                out[key] = {**(WRITEBACK_FIELDS if key == "crm_writeback" else ERP_ITEMS), **value}
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
        unknown = sorted(set(self.crm_writeback) - set(WRITEBACK_FIELDS))
        if unknown:
            problems.append(
                f"crm_writeback: unknown {', '.join(unknown)}; known: {', '.join(WRITEBACK_FIELDS)}"
            )
        unknown = sorted(set(self.erp_items) - set(ERP_ITEMS))
        if unknown:
            problems.append(
                f"erp_items: unknown {', '.join(unknown)}; known: {', '.join(ERP_ITEMS)}"
            )
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
                raise ConfigError(
                    f"unknown template name {{{match.group(1)}}} in {template!r}; "
                    f"known: {', '.join(_names(context))}"
                )
            node = node[part]
        return str(node)

    return _TEMPLATE.sub(lookup, template)


def _names(context: dict[str, Any], prefix: str = "") -> list[str]:
    names = []
    for key, value in context.items():
        if isinstance(value, dict):
            names.extend(_names(value, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names
