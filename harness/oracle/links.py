"""Where a run's books file each document the oracle compares: one lookup per kind of link.

Every lookup by the reference flow's ids (a contract by its subscription id, an ERP document by
its invoice id, …) lives here and nowhere else, so an integration with other linking
conventions needs only another ``Links``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

Row = dict[str, Any]
# The billing and subledger tables ``Links`` reads.
BILLING = ("invoices", "credit_notes", "customers", "subscription_items", "prices")
REVREC = ("contracts", "lines")


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_LEAVES = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """A record as ``dataclasses.asdict`` makes it (the same dicts), without its deep copy of
    every leaf, which the rows, only read, do not need: about half its time here. Leaves
    (most fields) are taken as they are, without a call each."""
    cls = type(value)
    if cls in _LEAVES:
        return value
    if hasattr(cls, "__dataclass_fields__"):
        out = {}
        for name in _fields(cls):
            field_value = getattr(value, name)
            out[name] = field_value if type(field_value) in _LEAVES else plain(field_value)
        return out
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return cls(v if type(v) in _LEAVES else plain(v) for v in value)
    if isinstance(value, dict):
        return {k: (v if type(v) in _LEAVES else plain(v)) for k, v in value.items()}
    return value


def systems_of(books: Any) -> Mapping[str, Any]:
    """The per-system state inside ``books``: a ``harness.books.Books``, a world snapshot
    (``{"systems": …}``), its ``systems`` mapping itself, or an object exposing either."""
    if hasattr(books, "billing_store"):
        return _from_books(books)
    for attr in ("systems", "raw"):
        inner = getattr(books, attr, None)
        if isinstance(inner, Mapping):
            return systems_of(inner)
    if isinstance(books, Mapping):
        if isinstance(books.get("systems"), Mapping):
            return books["systems"]  # type: ignore[no-any-return]
        return books
    raise TypeError(f"cannot read books of type {type(books).__name__}")


def _from_books(books: Any) -> dict[str, Any]:
    """``Books`` in the world snapshot's shapes, read by duck typing (no simulator import)."""
    present = set(getattr(books, "systems", ()) or ("billing", "erp", "revrec"))
    systems: dict[str, Any] = {}
    if "billing" in present:
        # Only the tables ``Links`` reads: the whole snapshot copies every event ever sent.
        store = books.billing_store
        tables = {name: [plain(r) for r in store.table(name).values()] for name in BILLING}
        systems["billing"] = {"store": tables}
    if "erp" in present:
        rows = [plain(t) for t in books.erp_transactions.values()]
        systems["erp"] = {"store": {"transactions": rows}}
    if "revrec" in present:
        reports = {
            cid: {
                "schedule": books.revrec.schedule(contract),
                "balances": books.rr_balances(contract),
            }
            for cid, contract in books.rr_contracts.items()
        }
        revrec = books.revrec_store
        systems["revrec"] = {
            "store": {name: [plain(r) for r in getattr(revrec, name).values()] for name in REVREC},
            "reports": {"contracts": reports},
        }
    return systems


def store_of(systems: Mapping[str, Any], system: str) -> Mapping[str, Any] | None:
    state = systems.get(system)
    if not isinstance(state, Mapping):
        return None
    store = state.get("store", state)
    return store if isinstance(store, Mapping) else None


def rows(store: Mapping[str, Any] | None, table: str) -> list[Row]:
    found = (store or {}).get(table, [])
    return list(found.values()) if isinstance(found, Mapping) else list(found)


class Links:
    """The reference flow's links (docs/reference-flow.md): a subscription's invoices name it,
    a contract's external id is its subscription id and a line's its subscription item id, an
    ERP invoice or credit memo carries the invoice or credit note id, a payment
    ``pay_<invoice id>``. Scenario names reach run ids through ``names``."""

    def __init__(
        self, systems: Mapping[str, Any], names: Mapping[str, str], index: Any = None
    ) -> None:
        self.names = names
        # A run's declared links (harness.links.LinkIndex, read by duck typing): when given,
        # documents are found through it; without one, by the reference's conventions.
        self.index = index
        self.billing = store_of(systems, "billing")
        self.erp = store_of(systems, "erp")
        revrec = systems.get("revrec")
        self.revrec = revrec if isinstance(revrec, Mapping) else None
        self._invoices: dict[str, list[Row]] = {}
        for inv in sorted(rows(self.billing, "invoices"), key=lambda row: int(row["created"])):
            self._invoices.setdefault(str(inv.get("subscription")), []).append(inv)
        self._notes: dict[str, list[Row]] = {}
        for cn in sorted(rows(self.billing, "credit_notes"), key=lambda row: int(row["created"])):
            self._notes.setdefault(str(cn["invoice"]), []).append(cn)
        self._customers = {str(row["id"]): row for row in rows(self.billing, "customers")}
        self._items = {str(row["id"]): row for row in rows(self.billing, "subscription_items")}
        self._price_keys = {
            v: k.split(":", 1)[1] for k, v in names.items() if k.startswith("price:")
        }
        for row in rows(self.billing, "prices"):
            if row.get("lookup_key") and str(row["id"]) not in self._price_keys:
                self._price_keys[str(row["id"])] = str(row["lookup_key"])
        revrec_store = store_of(systems, "revrec") if self.revrec is not None else None
        self._contracts = {str(row["external_id"]): row for row in rows(revrec_store, "contracts")}
        self._contracts_by_id = {str(row["id"]): row for row in self._contracts.values()}
        self._lines = {str(row["id"]): row for row in rows(revrec_store, "lines")}
        self._erp: dict[tuple[str, str], Row] = {}
        self._erp_by_id: dict[str, Row] = {}
        for row in rows(self.erp, "transactions"):
            if row.get("external_id") is not None and not row.get("voided"):
                self._erp[(str(row["kind"]), str(row["external_id"]))] = row
            if not row.get("voided"):
                self._erp_by_id[str(row["id"])] = row

    # --- billing -----------------------------------------------------------------------------
    def subscription(self, opportunity: str) -> str | None:
        """The subscription a scenario opportunity produced (an amendment: the one it changed)."""
        return self.names.get(f"opportunity:{opportunity}")

    def customer(self, key: str) -> tuple[str | None, Row | None]:
        """A scenario customer's billing id and record."""
        cus_id = self.names.get(f"customer:{key}")
        return cus_id, self._customers.get(cus_id or "")

    def invoices_of(self, subscription_id: str) -> list[Row]:
        """A subscription's invoices in creation order."""
        return self._invoices.get(subscription_id, [])

    def credit_notes_of(self, invoice_id: str) -> list[Row]:
        """An invoice's credit notes in creation order."""
        return self._notes.get(invoice_id, [])

    # --- subledger ---------------------------------------------------------------------------
    def contract_of(self, subscription_id: str) -> Row | None:
        """The subledger contract booked for a subscription."""
        if self.index is not None:
            found = self.index.target("revrec.contract", subscription_id)
            return None if found is None else self._contracts_by_id.get(str(found.id))
        return self._contracts.get(subscription_id)

    def contract_reports(self, contract: Row) -> Mapping[str, Any]:
        """The subledger's schedule and balances reports of a contract."""
        reports = ((self.revrec or {}).get("reports") or {}).get("contracts", {})
        found: Mapping[str, Any] = reports.get(contract["id"], {})
        return found

    def contract_line(self, line_id: str) -> Row:
        """A contract line's record (its billing entries, service period, termination)."""
        return self._lines.get(line_id, {})

    def line_price(self, line_external_id: str) -> str | None:
        """The scenario price a contract line bills: through its subscription item."""
        item_id = line_external_id
        if self.index is not None:
            line = next(
                (row for row in self._lines.values() if row["external_id"] == line_external_id),
                None,
            )
            found = None if line is None else self.index.source_of_line(str(line["id"]))
            item_id = found or line_external_id
        item = self._items.get(item_id)
        return self._price_keys.get(str(item["price"])) if item else None

    # --- ERP ---------------------------------------------------------------------------------
    def erp_document(self, kind: str, billing_id: str) -> Row | None:
        """The ERP invoice or credit memo mirroring a billing invoice or credit note."""
        if self.index is not None:
            links = (
                ("erp.invoice",) if kind == "invoice" else ("erp.credit_memo", "erp.invoice_credit")
            )
            return self._linked(links, billing_id)
        return self._erp.get((kind, billing_id))

    def erp_payment(self, invoice_id: str) -> Row | None:
        """The ERP customer payment of a paid billing invoice."""
        if self.index is not None:
            return self._linked(("erp.payment",), invoice_id)
        return self._erp.get(("customerPayment", f"pay_{invoice_id}"))

    def _linked(self, links: tuple[str, ...], source: str) -> Row | None:
        for link in links:
            for found in self.index.targets(link, source):
                row = self._erp_by_id.get(str(found.id))
                if row is not None:
                    return row
        return None
