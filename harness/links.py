"""The link index: which document copies which source, read through the declared conventions.

Every judge (invariants, oracle, lineage, SLA, load verdicts) asks this index — never a
hard-coded id or prefix — so an integration with its own id scheme is judged as it declared
itself in ``harness.toml`` ``[links]``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import Link, LinksConfig
from harness.handoffs import LINKS

if TYPE_CHECKING:
    from harness.books import Books

_NAME = re.compile(r"\{([A-Za-z_][\w.]*)\}")
Hook = Callable[[Mapping[str, Any]], "str | None"]


class LinkError(ValueError):
    """A link that cannot be read (a hook that fails to load)."""


@dataclass(frozen=True)
class Resolved:
    """One link read over one snapshot: sources to their copies and copies to their source."""

    by_source: dict[str, list[Any]]
    of_target: dict[str, str]  # target key → source id


def target_key(target: Any) -> str:
    """A target document's identity across kinds (ERP transactions share one id space)."""
    return f"{type(target).__name__}:{target.id}"


class LinkIndex:
    """Sources and their copies, per declared link, built lazily over one Books snapshot."""

    def __init__(self, books: Books, links: LinksConfig, base: Path | None = None) -> None:
        self._books = books
        self._links = links
        self._base = base or Path.cwd()
        self._resolved: dict[str, Resolved] = {}

    # --- what the judges ask ------------------------------------------------------------------
    def targets(self, link_id: str, source_id: str | None) -> list[Any]:
        """Every document that copies ``source_id`` through ``link_id`` (two is a duplicate)."""
        if source_id is None:
            return []
        return self._resolve(link_id).by_source.get(source_id, [])

    def target(self, link_id: str, source_id: str | None) -> Any | None:
        """The (first) document that copies ``source_id``, or None."""
        found = self.targets(link_id, source_id)
        return found[0] if found else None

    def source(self, link_id: str, target: Any) -> str | None:
        """The source id ``target`` copies through ``link_id``, or None."""
        return self._resolve(link_id).of_target.get(target_key(target))

    def copies(self, target_kind: str, target: Any) -> list[tuple[str, str]]:
        """(link, source id) for every link of that target kind that resolves ``target``."""
        found = []
        for link_id, spec in LINKS.items():
            if spec.target == target_kind:
                source = self.source(link_id, target)
                if source is not None:
                    found.append((link_id, source))
        return found

    def sources(self, link_id: str) -> Iterable[str]:
        """Every source id that has at least one copy."""
        return self._resolve(link_id).by_source.keys()

    def describe(self, link_id: str, source_id: str) -> str:
        """How the declaration names the copy of ``source_id`` (for violation messages)."""
        link = self._links.link(link_id)
        kind = link.kind
        if kind == "hook":
            return f"the document {link.hook} matches to {source_id}"
        spec = LINKS[link_id]
        rendered = self._render(link, spec.source, source_id)
        where = {
            "external_id": "external id",
            "number": "number (tranId)",
            "memo": "memo",
            "field": f"custom field {link.field}",
            "metadata": f"metadata.{link.metadata}",
        }[kind]
        return f"{where} {rendered}"

    def link(self, link_id: str) -> Link:
        return self._links.link(link_id)

    @property
    def declaration(self) -> LinksConfig:
        return self._links

    # --- building ----------------------------------------------------------------------------
    def _resolve(self, link_id: str) -> Resolved:
        found = self._resolved.get(link_id)
        if found is None:
            found = self._resolved[link_id] = self._build(link_id)
        return found

    def _build(self, link_id: str) -> Resolved:
        spec = LINKS[link_id]
        link = self._links.link(link_id)
        by_source: dict[str, list[Any]] = {}
        of_target: dict[str, str] = {}
        match = self._matcher(link, spec.source)
        for target in self._targets(spec.target):
            source = match(target)
            if source is not None:
                by_source.setdefault(source, []).append(target)
                of_target[target_key(target)] = source
        return Resolved(by_source, of_target)

    def _matcher(self, link: Link, source_kind: str) -> Callable[[Any], str | None]:
        """target → the source id it names, or None."""
        if link.kind == "hook":
            hook = load_hook(str(link.hook), self._base)
            return lambda target: _call_hook(hook, link, target_view(target))
        value_of = _value_reader(link)
        template = str(link.template or f"{{{source_kind}.id}}")
        names = _NAME.findall(template)
        if names == [f"{source_kind}.id"]:
            # The common case: one id inside a fixed text. Invert it, no rendering per source.
            prefix, _, suffix = template.partition(f"{{{source_kind}.id}}")
            exists = self._exists(source_kind)

            def by_affixes(target: Any) -> str | None:
                value = value_of(target)
                if not isinstance(value, str) or len(value) <= len(prefix) + len(suffix):
                    return None
                if not (value.startswith(prefix) and value.endswith(suffix)):
                    return None
                candidate = value[len(prefix) : len(value) - len(suffix)]
                return candidate if exists(candidate) else None

            return by_affixes
        rendered = {
            _fill(template, variables): source_id
            for source_id, variables in self._variables(source_kind)
        }
        return lambda target: rendered.get(str(value_of(target)))

    def _render(self, link: Link, source_kind: str, source_id: str) -> str:
        template = str(link.template or f"{{{source_kind}.id}}")
        for sid, variables in self._variables(source_kind):
            if sid == source_id:
                return _fill(template, variables)
        return _fill(template, {f"{source_kind}.id": source_id})

    # --- the snapshot's documents ----------------------------------------------------------
    def _targets(self, kind: str) -> Iterator[Any]:
        b = self._books
        if kind == "billing.customer":
            yield from (c for c in b.customers.values() if not c.deleted)
        elif kind == "billing.subscription":
            yield from b.subscriptions.values()
        elif kind == "erp.customer":
            yield from b.erp_customers.values()
        elif kind.startswith("erp."):
            yield from (t for t in b.erp_by_kind.get(kind[4:], []) if not t.system)
        elif kind == "revrec.contract":
            yield from b.rr_contracts.values()
        elif kind == "revrec.line":
            yield from b.rr_lines.values()
        elif kind == "revrec.billing_event":
            yield from b.rr_billing_events.values()
        else:  # pragma: no cover - TARGETS is closed
            raise KeyError(kind)

    def _exists(self, source_kind: str) -> Callable[[str], bool]:
        b = self._books
        table: Mapping[str, Any]
        if source_kind in ("account", "opportunity"):
            sobject = "Account" if source_kind == "account" else "Opportunity"
            table = b.crm_store.tables.get(sobject, {})
            return lambda sid: sid in table and not table[sid].deleted
        table = {
            "customer": b.customers,
            "subscription": b.subscriptions,
            "item": b.subscription_items,
            "invoice": b.invoices,
            "credit_note": b.credit_notes,
            "close": b.rr_period_closes,
        }[source_kind]
        return table.__contains__

    def _variables(self, source_kind: str) -> Iterator[tuple[str, dict[str, str]]]:
        """(source id, {"invoice.id": …, "invoice.number": …}) for every source document."""
        b = self._books
        k = source_kind
        if k in ("account", "opportunity"):
            for r in b.crm_records("Account" if k == "account" else "Opportunity"):
                yield (
                    r.id,
                    _vars(k, id=r.id, external_id=r.get("External_Id__c"), name=r.get("Name")),
                )
        elif k == "customer":
            for c in b.customers.values():
                entity = b.customer_entity(c.id)
                yield c.id, _vars(k, id=c.id, name=c.name, email=c.email, entity=entity)
        elif k == "subscription":
            for s in b.subscriptions.values():
                yield s.id, _vars(k, id=s.id, customer=s.customer)
        elif k == "item":
            for i in b.subscription_items.values():
                yield i.id, _vars(k, id=i.id, subscription=i.subscription, price=i.price)
        elif k == "invoice":
            for inv in b.invoices.values():
                yield (
                    inv.id,
                    _vars(
                        k,
                        id=inv.id,
                        number=inv.number,
                        customer=inv.customer,
                        subscription=inv.subscription,
                    ),
                )
        elif k == "credit_note":
            for cn in b.credit_notes.values():
                yield (
                    cn.id,
                    _vars(k, id=cn.id, number=cn.number, invoice=cn.invoice, customer=cn.customer),
                )
        elif k == "close":
            for close in b.rr_period_closes.values():
                yield close.id, _vars(k, id=close.id, entity=close.entity, period=close.period)


def _vars(kind: str, **values: Any) -> dict[str, str]:
    return {f"{kind}.{name}": "" if v is None else str(v) for name, v in values.items()}


def _fill(template: str, variables: Mapping[str, str]) -> str:
    return _NAME.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def _value_reader(link: Link) -> Callable[[Any], Any]:
    kind = link.kind
    if kind == "external_id":
        return lambda t: t.external_id
    if kind == "metadata":
        key = str(link.metadata)
        return lambda t: (t.metadata or {}).get(key)
    if kind == "field":
        name = str(link.field)
        return lambda t: (getattr(t, "custom", None) or {}).get(name)
    if kind == "number":
        return lambda t: getattr(t, "tran_id", None)
    return lambda t: getattr(t, "memo", None)


def target_view(target: Any) -> dict[str, Any]:
    """What a hook sees of a target document: plain values, as the vendor would show them."""
    return {
        "type": type(target).__name__,
        "id": target.id,
        "external_id": getattr(target, "external_id", None),
        "number": getattr(target, "tran_id", None),
        "memo": getattr(target, "memo", None),
        "fields": dict(getattr(target, "custom", None) or {}),
        "metadata": dict(getattr(target, "metadata", None) or {}),
        "kind": getattr(target, "kind", None),
    }


def load_hook(spec: str, base: Path) -> Hook:
    """``module:function`` (importable) or ``path/to/file.py:function`` (relative to ``base``,
    the directory of harness.toml)."""
    where, _, name = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            path = (base / where).resolve()
            loader = importlib.util.spec_from_file_location(f"finsim_hook_{path.stem}", path)
            if loader is None or loader.loader is None:
                raise LinkError(f"hook {spec}: cannot load {path}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except (ImportError, OSError, SyntaxError) as exc:
        raise LinkError(f"hook {spec}: cannot import it: {exc}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise LinkError(f"hook {spec}: {where} has no function {name}")
    hook: Hook = fn
    return hook


def _call_hook(hook: Hook, link: Link, view: Mapping[str, Any]) -> str | None:
    try:
        found = hook(view)
    except Exception as exc:
        raise LinkError(f"hook {link.hook} failed on {view['type']} {view['id']}: {exc!r}") from exc
    return None if found is None else str(found)
