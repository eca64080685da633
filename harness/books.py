"""Books: a frozen, read-only snapshot of all four systems at one instant, for invariants."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from harness.config import LinksConfig
from harness.exceptions import Exceptions
from harness.forgery import ForgedPush
from harness.handoffs import HANDOFFS
from harness.links import LinkIndex
from simulators.billing import models as bm
from simulators.billing.store import BillingStore
from simulators.common.deliveries import Delivery
from simulators.common.journal import JournalEntry
from simulators.common.world import World
from simulators.crm.models import Record
from simulators.crm.store import CrmStore
from simulators.erp import models as em
from simulators.erp.store import ErpStore
from simulators.revrec import models as rm
from simulators.revrec.backend import RevrecBackend
from simulators.revrec.store import RevrecStore

T = TypeVar("T")
SYSTEMS = ("billing", "crm", "erp", "revrec")
# Billing invoice states reached through finalisation: the ones the flow posts to the ERP.
FINALISED = frozenset({"open", "paid", "void", "uncollectible"})


def ar_kind(total: int) -> str | None:
    """The ERP document a finalised invoice of ``total`` posts as: an invoice when positive,
    an (unapplied) credit memo when negative, nothing when zero."""
    if total > 0:
        return "invoice"
    return "creditMemo" if total < 0 else None


def ar_link(total: int) -> str | None:
    """The link naming that document: ``erp.invoice`` or ``erp.invoice_credit``."""
    kind = ar_kind(total)
    return (
        None
        if kind is None
        else {"invoice": "erp.invoice", "creditMemo": "erp.invoice_credit"}[kind]
    )


def _copy(row: T) -> T:
    """Two levels deep: the row and its lists and dicts, which the backends mutate in place
    (invoice lines, subscription items, metadata); nested records are never edited in place."""
    new = object.__new__(type(row))
    values = vars(row)
    new.__dict__.update(
        {k: (v.copy() if isinstance(v, list | dict) else v) for k, v in values.items()}
    )
    return new


def _shallow(row: T) -> T:
    new = object.__new__(type(row))
    new.__dict__.update(vars(row))
    return new


def _table(
    rows: Mapping[str, T], before: Mapping[str, T] | None = None, copy: Any = _copy
) -> dict[str, T]:
    """Every row copied, or the earlier snapshot's copy kept where the row still equals it
    (a comparison in C; a copy is an object and a dict built in Python for every row)."""
    if not before:
        return {key: copy(row) for key, row in rows.items()}
    out: dict[str, T] = {}
    for key, row in rows.items():
        kept = before.get(key)
        if kept is not None and type(kept) is type(row) and vars(kept) == vars(row):
            out[key] = kept
        else:
            out[key] = copy(row)
    return out


S = TypeVar("S")


def _copy_store(
    live: S,
    rows: Iterable[str],
    shallow_rows: Iterable[str] = (),
    before: S | None = None,
    changed: set[str] | None = None,
    apart: Iterable[str] = (),
) -> S:
    """A detached copy of a store: every attribute's containers copied (so indexes the store
    keeps, whatever they are, stay consistent with the rows), the named row tables copied
    row by row — rows still equal to ``before``'s (an earlier snapshot's copy of the same
    store) are kept from it, and the attributes that differ from ``before``'s are added to
    ``changed``; attributes ``apart`` are left for the caller. Row tables become plain
    dicts: a snapshot never lists or pages."""
    store = object.__new__(type(live))
    skip = set(rows) | set(shallow_rows) | set(apart)
    state: dict[str, Any] = {}
    for name, value in vars(live).items():
        if name in skip:
            continue
        if isinstance(value, dict):
            # One level down too: indexes are dicts of dicts (external ids per kind).
            state[name] = {
                k: (v.copy() if isinstance(v, dict | set) else v) for k, v in value.items()
            }
        elif isinstance(value, list | set):
            state[name] = value.copy()
        else:
            state[name] = value
    kept = {} if before is None else vars(before)
    for name in rows:
        state[name] = _table(getattr(live, name), kept.get(name))
    for name in shallow_rows:
        state[name] = _table(getattr(live, name), kept.get(name), _shallow)
    store.__dict__.update(state)
    if changed is not None:
        # Kept rows are the same objects, so this is mostly identity checks in C.
        changed.update(name for name, value in state.items() if kept.get(name, _NONE) != value)
    return store


_NONE = object()


BILLING_ROWS = (
    "customers",
    "payment_methods",
    "products",
    "prices",
    "subscriptions",
    "subscription_items",
    "invoice_items",
    "invoices",
    "credit_notes",
    "meters",
    "test_clocks",
    "webhook_endpoints",
    "tax_rates",
    "tax_ids",
    "coupons",
    "promotion_codes",
    "discounts",
)
ERP_ROWS = (
    "currencies",
    "currency_rates",
    "subsidiaries",
    "accounts",
    "items",
    "periods",
    "customers",
)
REVREC_ROWS = (
    "entities",
    "contracts",
    "lines",
    "modifications",
    "billing_events",
    "period_closes",
)


def _copy_billing(
    live: BillingStore, before: BillingStore | None = None, changed: set[str] | None = None
) -> BillingStore:
    # Events and meter events are append-only records: copying their lists is enough.
    # Invoices carry their sums as fields (billing keeps them as lines change): copied as is.
    return _copy_store(live, BILLING_ROWS, before=before, changed=changed)


def _copy_crm(
    live: CrmStore, before: CrmStore | None = None, changed: set[str] | None = None
) -> CrmStore:
    # One resource per CRM object (``crm.Opportunity``): the tables are a dict of them.
    store = _copy_store(live, (), before=before, changed=changed, apart=("tables",))
    kept = {} if before is None else before.tables
    store.tables = {name: _table(rows, kept.get(name)) for name, rows in live.tables.items()}
    if changed is not None:
        changed.update(name for name, rows in store.tables.items() if kept.get(name) != rows)
        changed.update(name for name in kept if name not in store.tables)
    return store


def _copy_erp(
    live: ErpStore, before: ErpStore | None = None, changed: set[str] | None = None
) -> ErpStore:
    # Transactions change by field assignment only: their sublists (items, lines, applies)
    # are rebuilt and reassigned, never edited, so a one-level copy is a true snapshot; at a
    # million GL lines it is most of what a snapshot costs. GL line lists are replaced, never
    # edited, when a transaction changes: the copied ``gl`` dict shares them.
    return _copy_store(
        live, ERP_ROWS, shallow_rows=("transactions",), before=before, changed=changed
    )


def _copy_revrec(
    live: RevrecStore, before: RevrecStore | None = None, changed: set[str] | None = None
) -> RevrecStore:
    return _copy_store(live, REVREC_ROWS, before=before, changed=changed)


@dataclass(frozen=True)
class Books:
    """All four systems as they stood at ``now``: private copies of every store, the request
    journals, the webhook deliveries and the account-role mapping.

    Read-only by convention: the stores are copies no simulator touches, and invariants never
    write to them. Indexes are built on first use (``cached_property``), each in linear time.
    """

    now: int
    seed: int
    accounts: Mapping[str, str]  # account role → ERP account number (harness.toml [accounts])
    billing_store: BillingStore
    crm_store: CrmStore
    erp_store: ErpStore
    revrec_store: RevrecStore
    journals: Mapping[str, Sequence[JournalEntry]]
    deliveries: Sequence[Delivery]
    revrec_convention: str = "day"
    systems: frozenset[str] = field(default_factory=lambda: frozenset(SYSTEMS))
    # How the integration under test names what it writes, and which hand-offs it owns.
    declared_links: LinksConfig = field(default_factory=LinksConfig)
    scope: frozenset[str] = field(default_factory=lambda: frozenset(HANDOFFS))
    # Webhook endpoints of the stand-ins (the harness's own reference flow): not judged.
    standin_endpoints: frozenset[str] = frozenset()
    base: str = "."  # the directory of harness.toml (link hooks given as files live there)
    # Pushes the harness forged to the integration's receivers (``webhook.forge``), so far.
    forged: tuple[ForgedPush, ...] = ()
    # The integration's exception list at the same instant; None when it declares none.
    exceptions: Exceptions | None = None
    # Which snapshot this is, the one it was taken after (``since``), and what changed since
    # then (store attributes as ``system.name``, ``journal.system``, ``deliveries``, ``now``,
    # ``exceptions``); ``changed`` is None when nothing says (taken from nothing).
    generation: int = 0
    since: int | None = None
    changed: frozenset[str] | None = None

    # --- what is judged, and how documents link -------------------------------------------
    def owns(self, *handoffs: str) -> bool:
        """True when the integration under test owns any of ``handoffs`` (so it is judged)."""
        return any(h in self.scope for h in handoffs)

    @functools.cached_property
    def links(self) -> LinkIndex:
        """Sources and their copies through the declared links (``harness.toml`` [links])."""
        return LinkIndex(self, self.declared_links, Path(self.base))

    def writeback(self, name: str) -> str:
        """The CRM field that receives a write-back (``opportunity_subscription`` → the
        declared ``Billing_Subscription_Id__c``)."""
        return self.declared_links.crm_writeback[name]

    def judged_deliveries(self, system: str) -> Iterator[Delivery]:
        """Webhook deliveries of ``system`` to the integration under test (not to stand-ins)."""
        for d in self.deliveries:
            if d.system == system and d.endpoint_id not in self.standin_endpoints:
                yield d

    # --- billing ---------------------------------------------------------------------------
    @property
    def customers(self) -> Mapping[str, bm.Customer]:
        return self.billing_store.customers

    @property
    def products(self) -> Mapping[str, bm.Product]:
        return self.billing_store.products

    @property
    def prices(self) -> Mapping[str, bm.Price]:
        return self.billing_store.prices

    @property
    def subscriptions(self) -> Mapping[str, bm.Subscription]:
        return self.billing_store.subscriptions

    @property
    def subscription_items(self) -> Mapping[str, bm.SubscriptionItem]:
        return self.billing_store.subscription_items

    @property
    def invoice_items(self) -> Mapping[str, bm.InvoiceItem]:
        return self.billing_store.invoice_items

    @property
    def invoices(self) -> Mapping[str, bm.Invoice]:
        return self.billing_store.invoices

    @property
    def credit_notes(self) -> Mapping[str, bm.CreditNote]:
        return self.billing_store.credit_notes

    @property
    def meters(self) -> Mapping[str, bm.Meter]:
        return self.billing_store.meters

    @property
    def meter_events(self) -> Sequence[bm.MeterEvent]:
        return self.billing_store.meter_events

    @property
    def billing_events(self) -> Sequence[bm.Event]:
        return self.billing_store.events

    @functools.cached_property
    def finalised_invoices(self) -> list[bm.Invoice]:
        """Invoices that went through finalisation (the ones the ERP must hold)."""
        return [
            inv
            for inv in self.invoices.values()
            if inv.status in FINALISED and inv.finalized_at is not None
        ]

    @functools.cached_property
    def credit_notes_by_invoice(self) -> dict[str, list[bm.CreditNote]]:
        return _group(self.credit_notes.values(), lambda cn: cn.invoice)

    @functools.cached_property
    def invoices_by_subscription(self) -> dict[str, list[bm.Invoice]]:
        return _group(
            (i for i in self.invoices.values() if i.subscription), lambda i: i.subscription or ""
        )

    def customer_entity(self, customer_id: str) -> str | None:
        """The entity a billing customer routes to (``metadata.entity``, upper case)."""
        customer = self.customers.get(customer_id)
        entity = customer.metadata.get("entity") if customer else None
        return entity.upper() if entity else None

    # --- crm -------------------------------------------------------------------------------
    def crm_records(self, sobject: str) -> list[Record]:
        """Live (not deleted) records of one sObject, in insertion order."""
        return [r for r in self.crm_store.tables.get(sobject, {}).values() if not r.deleted]

    def crm_record(self, record_id: str | None) -> Record | None:
        return self.crm_store.get(record_id)

    @functools.cached_property
    def opportunity_lines(self) -> dict[str, list[Record]]:
        return _group(
            self.crm_records("OpportunityLineItem"), lambda r: str(r.get("OpportunityId"))
        )

    # --- erp -------------------------------------------------------------------------------
    @property
    def erp_customers(self) -> Mapping[str, em.Customer]:
        return self.erp_store.customers

    @property
    def erp_transactions(self) -> Mapping[str, em.Transaction]:
        return self.erp_store.transactions

    @property
    def erp_periods(self) -> Mapping[str, em.Period]:
        return self.erp_store.periods

    @property
    def erp_subsidiaries(self) -> Mapping[str, em.Subsidiary]:
        return self.erp_store.subsidiaries

    @property
    def erp_currencies(self) -> Mapping[str, em.Currency]:
        return self.erp_store.currencies

    @property
    def erp_rates(self) -> Mapping[str, em.CurrencyRate]:
        return self.erp_store.currency_rates

    @property
    def erp_accounts(self) -> Mapping[str, em.Account]:
        return self.erp_store.accounts

    @property
    def gl(self) -> Mapping[str, Sequence[em.GlLine]]:
        """Ledger lines per transaction id."""
        return self.erp_store.gl

    def gl_lines(self) -> Iterator[em.GlLine]:
        """Every ledger line, transaction by transaction (a generator: no copy of a big GL)."""
        for lines in self.erp_store.gl.values():
            yield from lines

    def erp_by_external_id(self, kind: str, external_id: str) -> em.Transaction | None:
        """A transaction (``invoice``, ``creditMemo``, …) or ``customer`` by external id."""
        found: em.Transaction | None = self.erp_store.by_external_id(kind, external_id)
        return found

    def erp_customer_by_external_id(self, external_id: str) -> em.Customer | None:
        found: em.Customer | None = self.erp_store.by_external_id("customer", external_id)
        return found

    @functools.cached_property
    def erp_item_names(self) -> dict[str, str]:
        """ERP item internal id → its external id (``SUBSCRIPTION``, ``SERVICES``, …)."""
        return {i.id: i.external_id or i.item_id for i in self.erp_store.items.values()}

    def declared_item(self, kind: str) -> str:
        """The ERP item declared for invoice lines of ``kind`` (``subscription`` / ``other``)."""
        return self.declared_links.erp_items[kind]

    @functools.cached_property
    def erp_by_kind(self) -> dict[str, list[em.Transaction]]:
        return _group(self.erp_transactions.values(), lambda t: t.kind)

    @functools.cached_property
    def subsidiary_by_external_id(self) -> dict[str, em.Subsidiary]:
        return {s.external_id: s for s in self.erp_subsidiaries.values() if s.external_id}

    def currency_code(self, currency_id: str) -> str:
        """ISO code (upper case) of an ERP currency record."""
        currency = self.erp_currencies.get(currency_id)
        return currency.symbol.upper() if currency else currency_id.upper()

    def erp_period_at(self, subsidiary: str, ym: str) -> em.Period | None:
        return self.erp_store.period_at(subsidiary, ym)

    @functools.cached_property
    def account_ids(self) -> dict[str, str]:
        """Account role → ERP account id, for the roles whose number the chart of accounts has."""
        by_number = {a.number: a.id for a in self.erp_accounts.values()}
        return {role: by_number[n] for role, n in self.accounts.items() if n in by_number}

    def dated_rate(self, currency_id: str, base_id: str, on: str) -> Decimal | None:
        """The ERP's dated rate for a pair on a day: latest effective date, ties the later."""
        best: tuple[str, int] | None = None
        rate: Decimal | None = None
        for n, r in enumerate(self._rates_by_pair.get((currency_id, base_id), [])):
            if r.effective_on <= on and (best is None or (r.effective_on, n) >= best):
                best, rate = (r.effective_on, n), Decimal(r.rate)
        return rate

    @functools.cached_property
    def _rates_by_pair(self) -> dict[tuple[str, str], list[em.CurrencyRate]]:
        return _group(self.erp_rates.values(), lambda r: (r.currency, r.base))

    # --- revrec ----------------------------------------------------------------------------
    @property
    def rr_entities(self) -> Mapping[str, rm.Entity]:
        return self.revrec_store.entities

    @property
    def rr_contracts(self) -> Mapping[str, rm.Contract]:
        return self.revrec_store.contracts

    @property
    def rr_lines(self) -> Mapping[str, rm.Line]:
        return self.revrec_store.lines

    @property
    def rr_modifications(self) -> Mapping[str, rm.Modification]:
        return self.revrec_store.modifications

    @property
    def rr_billing_events(self) -> Mapping[str, rm.BillingEvent]:
        return self.revrec_store.billing_events

    @property
    def rr_period_closes(self) -> Mapping[str, rm.PeriodClose]:
        return self.revrec_store.period_closes

    def rr_contract_by_external_id(self, external_id: str) -> rm.Contract | None:
        cid = self.revrec_store.contract_by_external_id.get(external_id)
        return None if cid is None else self.rr_contracts.get(cid)

    def rr_billing_event_by_external_id(self, external_id: str) -> rm.BillingEvent | None:
        bid = self.revrec_store.billing_event_by_external_id.get(external_id)
        return None if bid is None else self.rr_billing_events.get(bid)

    def rr_contract_lines(self, contract: rm.Contract) -> list[rm.Line]:
        return [self.rr_lines[i] for i in contract.lines if i in self.rr_lines]

    @functools.cached_property
    def revrec(self) -> RevrecBackend:
        """The subledger's own figures over this snapshot: a backend on the copied store,
        clocked at ``now``, that never emits. Use its read methods only (``balances``,
        ``schedule``, ``waterfall``, ``balances_report``, ``period_journal``, ``ledger``)."""
        world = World(self.seed, self.now)
        return RevrecBackend(world, self.revrec_store, lambda _event: None, self.revrec_convention)

    def rr_position(self, contract: rm.Contract) -> rm.Position:
        """Recognised, billed, deferred, unbilled (and functional) of a contract as of now."""
        return self.revrec.ledger(contract, self.now + 1)

    def rr_balances(self, contract: rm.Contract) -> dict[str, Any]:
        """The contract's balances report as of now (per line and total)."""
        return self.revrec.balances(contract, self.now)

    def rr_line_balances(self, contract: rm.Contract) -> list[dict[str, Any]]:
        """The balances report's lines alone (not its totals), as of now."""
        return self.revrec.line_balances(contract, self.now)

    def rr_waterfall(self, entity: str) -> dict[str, Any]:
        return self.revrec.waterfall(entity, self.now, None)

    def rr_period_journal(self, entity: str, period: str) -> list[dict[str, Any]]:
        """The journal summary of a period (the stored one for a closed period)."""
        for close in self.rr_period_closes.values():
            if close.entity == entity and close.period == period:
                return list(close.journal)
        return self.revrec.period_journal(self.revrec.entity(entity), rm.parse_period(period))

    # --- journals and deliveries ---------------------------------------------------------------
    def journal(self, system: str) -> Sequence[JournalEntry]:
        return self.journals.get(system, ())

    def journal_entries(self) -> Iterator[JournalEntry]:
        for system in SYSTEMS:
            yield from self.journal(system)

    # --- saving and re-checking ------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Everything as JSON-able dicts, in the simulators' own snapshot shapes."""
        return {
            "now": self.now,
            "seed": self.seed,
            "accounts": dict(self.accounts),
            "systems": sorted(self.systems),
            "revrec_convention": self.revrec_convention,
            "scope": sorted(self.scope),
            "links": self.declared_links.model_dump(exclude_none=True),
            "standin_endpoints": sorted(self.standin_endpoints),
            "base": self.base,
            "billing": self.billing_store.snapshot(),
            "crm": self.crm_store.snapshot(),
            "erp": _erp_json(self.erp_store),
            "revrec": self.revrec_store.snapshot(),
            "journals": {
                system: [dataclasses.asdict(e) for e in entries]
                for system, entries in self.journals.items()
            },
            "deliveries": [d.as_json() for d in self.deliveries],
            "forged": [f.as_json() for f in self.forged],
            "exceptions": None if self.exceptions is None else self.exceptions.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Books:
        billing, crm, erp, revrec = BillingStore(), CrmStore(), ErpStore(), RevrecStore()
        billing.restore(dict(data.get("billing", {})))
        crm.restore(dict(data.get("crm", {})))
        erp.restore(dict(data.get("erp", {})))
        revrec.restore(dict(data.get("revrec", {})))
        return cls(
            now=int(data["now"]),
            seed=int(data.get("seed", 0)),
            accounts=dict(data.get("accounts", {})),
            billing_store=billing,
            crm_store=crm,
            erp_store=erp,
            revrec_store=revrec,
            journals={
                system: tuple(JournalEntry(**e) for e in entries)
                for system, entries in data.get("journals", {}).items()
            },
            deliveries=tuple(Delivery.from_json(d) for d in data.get("deliveries", [])),
            revrec_convention=str(data.get("revrec_convention", "day")),
            systems=frozenset(data.get("systems", SYSTEMS)),
            declared_links=LinksConfig.model_validate(data.get("links", {"links": {}})),
            scope=frozenset(data.get("scope", HANDOFFS)),
            standin_endpoints=frozenset(data.get("standin_endpoints", ())),
            base=str(data.get("base", ".")),
            forged=tuple(ForgedPush.from_json(f) for f in data.get("forged", [])),
            exceptions=None
            if data.get("exceptions") is None
            else Exceptions.from_json(data["exceptions"]),
        )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic collections inside: work that allocates an object per row of a large
    world and frees nothing would only have the collector rescan the heap again and again."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def take_books(
    world: World,
    accounts: Mapping[str, str],
    *,
    links: LinksConfig | None = None,
    scope: Iterable[str] | None = None,
    standin_endpoints: Iterable[str] = (),
    base: str = ".",
    forged: Iterable[ForgedPush] = (),
    before: Books | None = None,
) -> Books:
    """Copy every simulator's rows under the world lock (no HTTP, no derived figures yet);
    ``links``, ``scope`` and the stand-ins' endpoints say how to read and what to judge;
    ``forged`` are the pushes the harness forged so far. Rows and deliveries unchanged since
    ``before`` (an earlier snapshot of the same world) are shared with it, not copied again:
    a step that changed little costs little more than comparing."""
    with gc_paused():
        books = _take(world, accounts, before)
    books = dataclasses.replace(
        books,
        declared_links=links or LinksConfig(),
        scope=frozenset(HANDOFFS if scope is None else scope),
        standin_endpoints=frozenset(standin_endpoints),
        base=base,
        forged=tuple(forged),
    )
    if before is None or books.changed is None:
        return books
    # Another reading of the world (links, scope, accounts) is a change to everything.
    if any(getattr(books, f) != getattr(before, f) for f in _READING):
        return dataclasses.replace(books, changed=None)
    if books.forged != before.forged:
        return dataclasses.replace(books, changed=books.changed | {"forged"})
    return books


_READING = ("declared_links", "scope", "standin_endpoints", "base", "accounts", "seed")


_COPIES: dict[str, tuple[Callable[..., Any], type, str]] = {
    "billing": (_copy_billing, BillingStore, "billing_store"),
    "crm": (_copy_crm, CrmStore, "crm_store"),
    "erp": (_copy_erp, ErpStore, "erp_store"),
    "revrec": (_copy_revrec, RevrecStore, "revrec_store"),
}
_GENERATIONS = itertools.count(1)


def _take(world: World, accounts: Mapping[str, str], before: Books | None) -> Books:
    lent = None if before is None else {d.id: d for d in before.deliveries}
    stores: dict[str, Any] = {}
    changed: dict[str, set[str]] = {name: set() for name in _COPIES}
    with world.lock:
        systems: dict[str, Any] = dict(world.systems)
        for name, (copy, empty, field_name) in _COPIES.items():
            sim = systems.get(name)
            kept = None if before is None else getattr(before, field_name)
            stores[field_name] = empty() if sim is None else copy(sim.store, kept, changed[name])
        now = world.clock.now()
        # Closed entries are never edited again; copying the deque keeps them as they are.
        journals = {name: tuple(sim.journal.snapshot()) for name, sim in systems.items()}
        deliveries = tuple(world.dispatcher.deliveries(unchanged=lent))
        revrec = systems.get("revrec")
        convention = revrec.backend.convention if revrec else "day"
    generation = next(_GENERATIONS)
    since: Books | None = before if before is not None and before.systems == set(systems) else None
    return Books(
        now=now,
        seed=world.seed,
        accounts=dict(accounts),
        journals=journals,
        deliveries=deliveries,
        revrec_convention=convention,
        systems=frozenset(systems),
        generation=generation,
        since=None if since is None else since.generation,
        changed=None if since is None else _changed(since, changed, now, journals, deliveries),
        **stores,
    )


ERP_PERIODS = frozenset({"periods", "_period_index", "period_months"})


def resource(system: str, name: str) -> str:
    """How ``Books.changed`` and an invariant's ``reads`` name a store attribute:
    ``system.name``, but the ERP's accounting periods are one resource of their own
    (``erp_periods``): closing one changes nothing else, and most rules never read them."""
    return "erp_periods" if system == "erp" and name in ERP_PERIODS else f"{system}.{name}"


def _changed(
    before: Books,
    stores: Mapping[str, set[str]],
    now: int,
    journals: Mapping[str, Sequence[JournalEntry]],
    deliveries: Sequence[Delivery],
) -> frozenset[str]:
    """What differs from ``before``: each store's attributes (see ``resource``),
    ``journal.system``, ``deliveries`` and ``now`` (the clock, which every figure as of now
    reads)."""
    found = {resource(system, name) for system, names in stores.items() for name in names}
    for system, entries in journals.items():
        old = before.journal(system)
        if len(entries) != len(old) or (entries and entries[-1] is not old[-1]):
            found.add(f"journal.{system}")
    if deliveries != tuple(before.deliveries):
        found.add("deliveries")
    if now != before.now:
        found.add("now")
    return frozenset(found)


def _erp_json(store: ErpStore) -> dict[str, Any]:
    # ErpStore.snapshot runs dataclasses.asdict per GL line (slow at a million lines); GL
    # lines hold only scalars, so a copy of their attribute dict is the same document.
    gl, store.gl = store.gl, {}
    try:
        data = store.snapshot()
    finally:
        store.gl = gl
    data["gl_lines"] = [dict(vars(line)) for lines in gl.values() for line in lines]
    return data


def _group(rows: Iterable[T], key: Any) -> dict[Any, list[T]]:
    out: dict[Any, list[T]] = {}
    for row in rows:
        out.setdefault(key(row), []).append(row)
    return out
