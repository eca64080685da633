"""The reference flow: re-fetch current state, then write by idempotency key and external id."""

from __future__ import annotations

import calendar
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast
from urllib.parse import quote

import stripe

from examples.reference_integration.conventions import Conventions
from examples.reference_integration.crm import Crm
from examples.reference_integration.customers import CustomerIndex
from examples.reference_integration.erp import NetSuite, quoted
from examples.reference_integration.lines import earned, line_taxes
from examples.reference_integration.pricing import price_line, specific
from examples.reference_integration.retry import (
    PermanentError,
    Refusal,
    TransientError,
    with_retries,
)
from examples.reference_integration.revrec import Revrec

log = logging.getLogger("reference_integration")

# ISO 4217 minor-unit exponents that are not 2 (Stripe's zero- and three-decimal currencies).
_ZERO_DECIMAL = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
_THREE_DECIMAL = "bhd jod kwd omr tnd"
_EXPONENT = {code: 0 for code in _ZERO_DECIMAL.split()}
_EXPONENT |= {code: 3 for code in _THREE_DECIMAL.split()}
# Subledger journal roles on the ERP chart of accounts (seed external ids = account numbers).
ACCOUNT_BY_ROLE = {
    "deferred_revenue": "2400",
    "unbilled_receivable": "1150",
    "revenue": "4000",
    "fx_gain_loss": "7100",
}
_MONTHS_PER_INTERVAL = {"month": 1, "year": 12}
_MONTH_OF_TERM = 12  # Term_Months__c when the opportunity leaves it empty
RENEWS_AT = "renews_at"  # subscription metadata: when a won renewal's change takes effect
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # an entity key fit for a SuiteQL literal
KEPT = 4096  # products and prices a worker keeps, each (read once: see Syncer._kept)
# The hand-off that writes the ERP records other hand-offs refer to.
_WRITER = {"erp.customer": "erp.customers", "erp.invoice": "erp.invoices"}


def to_amount(minor: int, currency: str) -> Decimal:
    """The one conversion from Stripe minor units to a decimal amount in ``currency``."""
    return Decimal(minor).scaleb(-_EXPONENT.get(currency.lower(), 2))


def json_number(amount: Decimal) -> float | int:
    """A decimal as a JSON number; exact, as amounts have at most 3 decimals and are < 10^12."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def erp_amount(minor: int, currency: str) -> float | int:
    return json_number(to_amount(minor, currency))


def utc_date(epoch_s: int | None, what: str) -> str:
    """YYYY-MM-DD (UTC) of a document timestamp; never the wall clock."""
    if epoch_s is None:
        raise PermanentError(f"{what} is not set")
    return datetime.fromtimestamp(epoch_s, UTC).date().isoformat()


def add_months(epoch_s: int, months: int) -> int:
    """``months`` calendar months after an instant, clamping to the month's end (Jan 31 → Feb
    28), as Stripe computes periods from the anchor."""
    at = datetime.fromtimestamp(epoch_s, UTC)
    index = at.year * 12 + at.month - 1 + months
    year, month = divmod(index, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return int(at.replace(year=year, month=month + 1, day=day).timestamp())


def months_between(start_s: int, end_s: int) -> int:
    """Whole calendar months from one anchor-aligned instant to another."""
    a, b = datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC)
    return (b.year - a.year) * 12 + b.month - a.month


def prorated(amount_minor: int, start_s: int, end_s: int, at_s: int) -> int:
    """Stripe's proration of ``amount_minor`` for [at, end) of [start, end): half-up per line."""
    exact = Decimal(amount_minor) * (end_s - at_s) / (end_s - start_s)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def split_by_weight(total: int, weights: dict[str, int]) -> dict[str, int]:
    """``total`` in proportion to positive weights, largest remainder: the parts sum to it."""
    positive = {k: w for k, w in weights.items() if w > 0}
    whole = sum(positive.values())
    if whole <= 0:
        raise PermanentError("nothing to allocate a credit to")
    parts = {k: total * w // whole for k, w in positive.items()}
    order = sorted(positive, key=lambda k: -((total * positive[k]) % whole))
    for key in order[: total - sum(parts.values())]:
        parts[key] += 1
    return {k: v for k, v in parts.items() if v}


def to_minor(amount: Any, currency: str) -> int:
    """An ERP (decimal) amount back in minor units of ``currency``."""
    return int(Decimal(str(amount)).scaleb(_EXPONENT.get(currency.lower(), 2)))


def _applies(record: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (record.get("apply") or {}).get("items") or []
    return items


Key = tuple[str, str]  # (ERP item, what the line is netted by)


def _merged(
    groups: dict[Key, int], taxed: dict[Key, dict[str, int]], into: Callable[[Key], Key]
) -> tuple[dict[Key, int], dict[Key, dict[str, int]]]:
    """Amounts and their taxes per code, regrouped under ``into(key)``."""
    amounts: dict[Key, int] = defaultdict(int)
    taxes: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, amount in groups.items():
        amounts[into(key)] += amount
    for key, codes in taxed.items():
        for code, tax in codes.items():
            taxes[into(key)][code] += tax
    return amounts, taxes


def erp_item_lines(
    groups: Mapping[Key, int], taxed: Mapping[Key, Mapping[str, int]], currency: str
) -> list[dict[str, Any]]:
    """ERP item lines: one per group with its amount (net of discounts and tax) and its
    tax under its tax code; a second tax code on a group is a line of amount 0 carrying it.
    A group of neither amount nor tax posts no line."""
    items: list[dict[str, Any]] = []
    for key, amount in groups.items():
        codes = sorted((c, t) for c, t in (taxed.get(key) or {}).items() if t)
        if not amount and not codes:
            continue
        ref = {"externalId": key[0]}
        first: dict[str, Any] = {"item": ref, "amount": erp_amount(amount, currency)}
        rest: list[dict[str, Any]] = []
        for n, (code, tax) in enumerate(codes):
            line = first if n == 0 else {"item": ref, "amount": 0}
            line.update({"tax1Amt": erp_amount(tax, currency), "taxCode": code})
            if n:
                rest.append(line)
        items += [first, *rest]
    return items


def item_for(line: dict[str, Any], items: dict[str, str]) -> str:
    """The ERP item of a Stripe invoice line: subscriptions bill the SUBSCRIPTION item."""
    parent = line.get("parent") or {}
    if parent.get("type") == "subscription_item_details":
        return items["subscription"]
    return items["other"]


def subscription_item_of(line: dict[str, Any]) -> str | None:
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    item: str | None = details.get("subscription_item")
    return item


def _is_proration(line: dict[str, Any]) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration"))


# What a renewal moves on a subscription: its periods (top-level in older API versions, on
# each item in newer ones) and its latest invoice. None of it changes the contract.
# Where an invoice names the subscription it bills (expandable, as on Stripe).
_SUBSCRIPTION_OF_INVOICE = "parent.subscription_details.subscription"


def billed_subscription(invoice: dict[str, Any]) -> Any:
    """What an invoice says of the subscription it bills: its id, the subscription itself
    when expanded, or None outside a subscription."""
    return ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")


_CYCLE_KEYS = frozenset({"current_period_start", "current_period_end", "latest_invoice"})


def _item_terms(items: Any) -> list[str] | None:
    """Each item as it bears on the contract (everything but its period), None when unknown."""
    if not isinstance(items, dict) or items.get("has_more"):
        return None
    return sorted(
        json.dumps({k: v for k, v in item.items() if k not in _CYCLE_KEYS}, sort_keys=True)
        for item in items.get("data") or []
    )


def only_the_cycle_moved(previous: Any, sub: dict[str, Any]) -> bool:
    """True when a ``customer.subscription.updated`` says only the billing cycle or the
    payment status moved on (a renewal, a first payment): nothing for the contract, whose
    billing the invoice brings."""
    if not isinstance(previous, dict) or not previous:
        return False
    for key, before in previous.items():
        if key in _CYCLE_KEYS:
            continue
        if key == "status" and "canceled" not in (before, sub.get("status")):
            continue  # paid, or fallen due: the contract holds either way
        terms = _item_terms(before)
        if key == "items" and terms is not None and terms == _item_terms(sub.get("items")):
            continue
        return False
    return True


def _id_of(value: Any) -> str:
    return value if isinstance(value, str) else str(value["id"])


def _source(record: dict[str, Any]) -> dict[str, Any]:
    """A Stripe object's values that link templates may name (``{invoice.number}`` …)."""
    values = {k: record.get(k) for k in ("id", "number", "name", "email", "subscription")}
    for k in ("customer", "invoice"):
        if record.get(k) is not None:
            values[k] = _id_of(record[k])
    values["entity"] = (record.get("metadata") or {}).get("entity")
    return values


class Syncer:
    """Handles one inbox event at a time; every write is an idempotent upsert or keyed call."""

    def __init__(
        self,
        stripe_client: stripe.StripeClient,
        erp: NetSuite,
        revrec: Revrec | None = None,
        crm: Crm | None = None,
        conventions: Conventions | None = None,
        customers: CustomerIndex | None = None,
        customers_upserted: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.stripe = stripe_client
        self.erp = erp
        self.revrec = revrec
        self.crm = crm
        self.conv = conventions or Conventions()
        # Shared by the process's workers when given.
        self.customers = customers or CustomerIndex(self.conv.metadata_key("billing.customer"))
        # ERP customers this process wrote: external id -> (body as written, internal id).
        self.customers_upserted = {} if customers_upserted is None else customers_upserted
        self._products: dict[str, dict[str, Any]] = {}
        self._prices: dict[str, dict[str, Any]] = {}
        # Customers this event has read already, expanded on its invoice: not read again.
        self._event_customers: dict[str, dict[str, Any]] = {}

    def fresh(self) -> None:
        """The next event: what this one read is not what that one sees."""
        self._event_customers.clear()

    def owns(self, *handoffs: str) -> bool:
        return any(self.conv.owns(h) for h in handoffs)

    # documents other hand-offs wrote: found through the declared links ------------------------
    def _erp_id(self, link: str, source: str, **values: Any) -> str:
        """The ERP external id we give (or gave) a ``link`` document of ``values``."""
        return self.conv.external_id(link, **{source: values})

    def _erp_find(
        self, kind: str, link: str, source: str, *, expand: bool = False, **values: Any
    ) -> dict[str, Any] | None:
        """The ERP ``kind`` record a link names for ``values``, wherever its writer put it."""
        how, key = self.conv.lookup(link, **{source: values})
        if how == "external_id":
            return self.erp.get(kind, key, expand=expand)
        name, _, value = key.partition("=")
        table = "customer" if kind == "customer" else "transaction"
        rows = self.erp.suiteql(
            f"SELECT id FROM {table} WHERE {name} = '{quoted(value)}' ORDER BY id"
        )
        return self.erp.get_by_id(kind, rows[0]["id"], expand=expand) if rows else None

    def _erp_ref(self, kind: str, link: str, source: str, **values: Any) -> dict[str, str]:
        """A reference to that record for a request body; when another integration writes it
        and it is not there yet, wait for it (it is still working)."""
        how, key = self.conv.lookup(link, **{source: values})
        if how == "external_id":
            if self.owns(_WRITER[link]) or self.erp.get(kind, key) is not None:
                return {"externalId": key}
        else:
            found = self._erp_find(kind, link, source, **values)
            if found is not None:
                return {"id": str(found["id"])}
        raise TransientError(f"waiting for the ERP {kind} of {values.get('id')} ({link})", 1.0)

    def handle(self, source: str, kind: str, payload: dict[str, Any]) -> None:
        if source == "stripe":
            self.on_stripe(kind, payload)
        elif source == "crm" and kind == "opportunity.closed":
            self.on_opportunity_closed(payload)
        elif source == "revrec" and kind == "period.closed":
            self.on_period_closed(payload["data"]["object"])

    # Stripe reads, retried ----------------------------------------------------------------
    def _read(self, what: str, resource: str, object_id: str, **params: Any) -> dict[str, Any]:
        """One Stripe object as the JSON it came as: the SDK's own requestor (keys, errors,
        our HTTP client with its gate and read cache) without building StripeObjects only to
        turn them back into dicts (a quarter of the worker's CPU in a renewal run)."""
        path = f"/v1/{resource}/{quote(object_id, safe='')}"
        return with_retries(
            lambda: cast(dict[str, Any], self.stripe.raw_request("get", path, **params).data),
            what=what,
        )

    def _invoice(self, invoice_id: str, *, subscribed: bool = False) -> dict[str, Any]:
        """The invoice with its customer expanded, and its subscription when it has one (the
        event said so: an invoice's parent never changes): one read where three were."""
        expand = ["customer", *([_SUBSCRIPTION_OF_INVOICE] if subscribed else [])]
        return self._read(f"invoice {invoice_id}", "invoices", invoice_id, expand=expand)

    def _invoice_subscription(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """The subscription an invoice bills: as expanded on it, else read."""
        found = billed_subscription(invoice)
        return found if isinstance(found, dict) else self._subscription(found)

    def _invoice_customer(self, invoice: dict[str, Any]) -> dict[str, Any]:
        customer = invoice["customer"]
        if not isinstance(customer, dict):
            return self._customer(customer)
        self._event_customers[customer["id"]] = customer
        return customer

    def _customer(self, customer_id: str) -> dict[str, Any]:
        known = self._event_customers.get(customer_id)
        if known is not None:
            return known
        return self._read(f"customer {customer_id}", "customers", customer_id)

    def _subscription(self, sub_id: str) -> dict[str, Any]:
        return self._read(f"subscription {sub_id}", "subscriptions", sub_id)

    def _product(self, product_id: str) -> dict[str, Any]:
        return self._kept(self._products, "products", product_id)

    def _kept(
        self, cache: dict[str, dict[str, Any]], resource: str, object_id: str
    ) -> dict[str, Any]:
        """A Stripe object read once per worker and kept (bounded: past ``KEPT`` the cache
        starts over), for what the flow reads of it that cannot change."""
        found = cache.get(object_id)
        if found is None:
            if len(cache) >= KEPT:
                cache.clear()
            found = cache[object_id] = self._read(f"{resource} {object_id}", resource, object_id)
        return found

    def _lines(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        """The invoice's lines: those it carries when it carries them all (``has_more`` false,
        as Stripe says of a list), else every page of them."""
        embedded = invoice.get("lines")
        if isinstance(embedded, dict) and embedded.get("has_more") is False:
            data: list[dict[str, Any]] = embedded.get("data") or []
            return data
        invoice_id: str = invoice["id"]
        return with_retries(
            lambda: [
                line.to_dict()
                for line in self.stripe.v1.invoices.line_items.list(
                    invoice_id, params={"limit": 100}
                ).auto_paging_iter()
            ],
            what=f"lines of {invoice_id}",
        )

    def _entity(self, customer: dict[str, Any]) -> str:
        """Routing is by the contracting entity the deal was signed with, never by currency."""
        entity = (customer.get("metadata") or {}).get("entity")
        if not entity:
            raise PermanentError(f"customer {customer['id']} has no metadata.entity to route by")
        return str(entity).upper()

    # Stripe events -------------------------------------------------------------------------
    def on_stripe(self, kind: str, payload: dict[str, Any]) -> None:
        obj = payload["data"]["object"]
        if kind in ("invoice.finalized", "invoice.paid", "invoice.voided"):
            self.sync_invoice_state(obj["id"], subscribed=bool(billed_subscription(obj)))
        elif kind == "credit_note.created":
            self.sync_credit_note(obj["id"])
        elif kind in ("customer.subscription.updated", "customer.subscription.deleted"):
            previous = payload["data"].get("previous_attributes")
            if kind.endswith(".updated") and only_the_cycle_moved(previous, obj):
                log.info("subscription %s: nothing its contract follows changed", obj["id"])
                return
            self.mirror_subscription(obj["id"], changed_at=int(payload["created"]))
        elif kind == "customer.subscription.created" and self.owns("revrec.contracts"):
            # A subscription made in billing (no CRM deal): its contract is booked now.
            sub = self._subscription(obj["id"])
            if self.revrec is not None and self._sub_entity(sub) is not None:
                self.book_contract(sub)

    def sync_invoice_state(self, invoice_id: str, *, subscribed: bool = False) -> None:
        """Whatever event arrived, post what the invoice is now: finalised, paid or voided."""
        invoice = self._invoice(invoice_id, subscribed=subscribed)
        status = invoice.get("status")
        if status in ("draft", None) or invoice["status_transitions"].get("finalized_at") is None:
            log.info("invoice %s is not finalised; nothing to post", invoice_id)
            return
        customer = self._invoice_customer(invoice)
        if self.owns("revrec.contracts") and self.owns("erp.invoices"):
            # Control point: the subledger takes the contract (its products mapped) before
            # the ERP is posted, so a refusal there leaves nothing posted in part.
            self._contract_for(invoice)
        self.sync_invoice(invoice, customer)
        self.bill_in_subledger(invoice)
        if status == "paid" and invoice["amount_paid"] > 0 and self.owns("erp.payments"):
            self.sync_payment(invoice, customer)
        if status == "void":
            self.void_invoice(invoice)

    def sync_customer(self, customer: dict[str, Any], currency: str) -> str | None:
        """The ERP customer (external id = Stripe customer id) in the routed subsidiary; its
        internal id (None when another integration owns ERP customers and has none yet)."""
        if not self.owns("erp.customers"):
            found = self._erp_find("customer", "erp.customer", "customer", **_source(customer))
            return None if found is None else str(found["id"])
        body: dict[str, Any] = {
            "companyName": customer.get("name") or customer.get("email") or customer["id"],
            "subsidiary": {"externalId": self._entity(customer)},
            "currency": {"externalId": currency.upper()},
        }
        if customer.get("email"):
            body["email"] = customer["email"]
        external_id = self._erp_id("erp.customer", "customer", **_source(customer))
        # Master data as we last wrote it is not written again with every invoice (one
        # request of ten a renewal); a changed customer, or a new process, writes it anew.
        said = json.dumps(body, sort_keys=True)
        known = self.customers_upserted.get(external_id)
        if known is not None and known[0] == said:
            return known[1]
        erp_id = self.erp.upsert("customer", external_id, body)
        self.customers_upserted[external_id] = (said, erp_id)
        return erp_id

    def _customer_ref(self, customer: dict[str, Any]) -> dict[str, str]:
        return self._erp_ref("customer", "erp.customer", "customer", **_source(customer))

    def _invoice_ref(self, invoice: dict[str, Any]) -> dict[str, str]:
        return self._erp_ref("invoice", "erp.invoice", "invoice", **_source(invoice))

    def _dated(self, body: dict[str, Any], kind: str, subsidiary: str, on: str) -> dict[str, Any]:
        """Dated by the document; a closed period's posting goes to the first open one."""
        body["tranDate"] = on
        period = self.erp.posting_period(subsidiary, on, kind)
        if period is not None:
            body["postingPeriod"] = {"externalId": period}
        return body

    def sync_invoice(self, invoice: dict[str, Any], customer: dict[str, Any]) -> None:
        """A positive invoice becomes an ERP invoice, a negative one (a cancellation's credit
        for unused time) an unapplied ERP credit memo, both under the invoice id; a zero one
        posts nothing."""
        invoice_id: str = invoice["id"]
        currency: str = invoice["currency"]
        entity = self._entity(customer)
        self.sync_customer(customer, currency)
        total: int = invoice["total"]
        kind = "invoice" if total > 0 else "creditMemo"
        if total == 0:
            log.info("invoice %s totals 0; nothing to post", invoice_id)
            return
        link = "erp.invoice" if kind == "invoice" else "erp.invoice_credit"
        if self.owns("erp.invoices"):
            external_id = self._erp_id(link, "invoice", **_source(invoice))
            posted = self.erp.get(kind, external_id)
            # A posted document is never re-posted (its period may be closed since).
            erp_id = (
                str(posted["id"])
                if posted is not None
                else self._post_invoice(invoice, customer, kind, entity, external_id)
            )
            if self.owns("billing.writeback"):
                self.write_back_erp_id(invoice, erp_id)
        if kind == "invoice" and self.owns("erp.payments"):
            self.apply_customer_credit(invoice, customer)

    def _post_invoice(
        self,
        invoice: dict[str, Any],
        customer: dict[str, Any],
        kind: str,
        entity: str,
        external_id: str,
    ) -> str:
        invoice_id: str = invoice["id"]
        currency: str = invoice["currency"]
        sign = 1 if kind == "invoice" else -1
        groups: dict[tuple[str, str], int] = defaultdict(int)
        taxed: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for line in self._lines(invoice):
            key = (item_for(line, self.conv.items), subscription_item_of(line) or line["id"])
            groups[key] += sign * earned(line)
            for code, tax in line_taxes(line).items():
                taxed[key][code] += sign * tax
        if any(amount < 0 for amount in groups.values()):
            # NetSuite lines cannot be negative: net a credit line into its item's total.
            groups, taxed = _merged(groups, taxed, lambda key: (key[0], key[0]))
        if any(amount < 0 for amount in groups.values()):
            # Still mixed: the whole document on the item carrying the most.
            main = max(groups, key=lambda k: groups[k])
            groups, taxed = _merged(groups, taxed, lambda key: main)
        items = erp_item_lines(groups, taxed, currency)
        body: dict[str, Any] = {
            "entity": self._customer_ref(customer),
            "subsidiary": {"externalId": entity},
            "currency": {"externalId": currency.upper()},
            "item": {"items": items},
        }
        if invoice.get("number"):
            body["memo"] = f"Stripe {invoice['number']}"
        finalized_on = utc_date(invoice["status_transitions"]["finalized_at"], "finalized_at")
        erp_id = self.erp.upsert(kind, external_id, self._dated(body, kind, entity, finalized_on))
        log.info("invoice %s -> ERP %s %s (%d lines)", invoice_id, kind, entity, len(items))
        return erp_id

    def write_back_erp_id(self, invoice: dict[str, Any], erp_id: str) -> None:
        """Traceability: the ERP document's internal id on the Stripe invoice's metadata."""
        key = self.conv.billing_writeback["invoice_erp_document"]
        if (invoice.get("metadata") or {}).get(key) == erp_id:
            return
        path = f"/v1/invoices/{quote(invoice['id'], safe='')}"
        with_retries(
            lambda: self.stripe.raw_request("post", path, metadata={key: erp_id}),
            what=f"write back {erp_id} to {invoice['id']}",
        )

    def apply_customer_credit(self, invoice: dict[str, Any], customer: dict[str, Any]) -> None:
        """An invoice that drew on the customer's Stripe credit balance: apply that much of the
        customer's unapplied ERP credit memos to it, oldest first, so open AR matches."""
        total: int = invoice["total"]
        starting, ending = invoice.get("starting_balance"), invoice.get("ending_balance")
        if starting is None or ending is None or total <= 0:
            return
        used = ending - starting - min(total, 0)  # credit the invoice consumed
        if used <= 0:
            return
        invoice_id: str = invoice["id"]
        currency: str = invoice["currency"]
        erp_customer = self.sync_customer(customer, currency)
        target = self._erp_find("invoice", "erp.invoice", "invoice", **_source(invoice))
        if target is None or erp_customer is None:
            if self.owns("erp.invoices"):
                return
            raise TransientError(f"waiting for the ERP invoice of {invoice_id}", 1.0)
        memos = self.erp.suiteql(
            "SELECT t.id FROM transaction t"
            f" WHERE t.type = 'CustCred' AND t.entity = {int(erp_customer)}"
            " AND t.voided = 'F' ORDER BY t.trandate, t.id"
        )
        records = []
        for row in memos:
            record = self.erp.get_by_id("creditMemo", row["id"], expand=True)
            if record is not None:
                records.append((str(row["id"]), record))
        applied_here = 0
        for _, record in records:
            for app in _applies(record):
                if str(app["doc"].get("id")) == str(target["id"]):
                    applied_here += to_minor(app["amount"], currency)
        wanted = used - applied_here
        for memo_id, record in records:
            if wanted <= 0:
                break
            unapplied = to_minor(record.get("unapplied", 0), currency)
            amount = min(unapplied, wanted)
            if amount <= 0:
                continue
            existing = [
                {"doc": {"id": str(a["doc"]["id"])}, "apply": True, "amount": a["amount"]}
                for a in _applies(record)
            ]
            existing.append(
                {
                    "doc": {"id": str(target["id"])},
                    "apply": True,
                    "amount": erp_amount(amount, currency),
                }
            )
            self.erp.patch_by_id("creditMemo", memo_id, {"apply": {"items": existing}})
            wanted -= amount
            log.info("credit memo %s applies %d to %s", memo_id, amount, invoice_id)
        if wanted > 0:
            log.warning("invoice %s drew %d of credit the ERP has no memo for", invoice_id, wanted)

    def sync_payment(self, invoice: dict[str, Any], customer: dict[str, Any]) -> None:
        external_id = self._erp_id("erp.payment", "invoice", **_source(invoice))
        if self.erp.get("customerPayment", external_id) is not None:
            return
        currency: str = invoice["currency"]
        entity = self._entity(customer)
        amount = erp_amount(invoice["amount_paid"], currency)
        body: dict[str, Any] = {
            "customer": self._customer_ref(customer),
            "subsidiary": {"externalId": entity},
            "currency": {"externalId": currency.upper()},
            "payment": amount,
            "apply": {
                "items": [{"doc": self._invoice_ref(invoice), "apply": True, "amount": amount}]
            },
        }
        paid_on = utc_date(invoice["status_transitions"]["paid_at"], "paid_at")
        self.erp.upsert(
            "customerPayment", external_id, self._dated(body, "customerPayment", entity, paid_on)
        )
        log.info("payment %s -> ERP (%s %s)", external_id, amount, currency)

    def void_invoice(self, invoice: dict[str, Any]) -> None:
        invoice_id: str = invoice["id"]
        if self.owns("erp.invoices"):
            external_id = self._erp_id("erp.invoice", "invoice", **_source(invoice))
            record = self.erp.get("invoice", external_id)
            if record is not None and record.get("status") != "Voided":
                self.erp.void("invoice", external_id)
                log.info("invoice %s voided in the ERP", invoice_id)
        if not self.owns("revrec.billing", "revrec.contracts"):
            return
        billed = self._billing_lines(invoice)
        contract = self._contract_for(invoice)
        if contract is not None and billed:
            charged = {k: v for k, v in billed.items() if v > 0}
            voided_at = int(invoice["status_transitions"]["voided_at"])
            external_id = self._event_id("revrec.billing_void", invoice)
            if self.owns("revrec.billing"):
                self._billing_event(
                    contract, external_id, "credit_note", invoice, voided_at, charged
                )
            self.concede(contract, external_id, voided_at, charged)

    def sync_credit_note(self, credit_note_id: str) -> None:
        note = self._read(f"credit note {credit_note_id}", "credit_notes", credit_note_id)
        invoice = self._invoice(_id_of(note["invoice"]))
        customer = self._customer(_id_of(note["customer"]))
        self.sync_invoice(invoice, customer)  # the memo applies to it, so it must be there
        self.bill_in_subledger(invoice)
        lines = self._lines(invoice)
        by_line = {line["id"]: line for line in lines}
        currency: str = note["currency"]
        entity = self._entity(customer)
        note_lines: list[dict[str, Any]] = note["lines"]["data"]
        owned = self.owns("erp.credit_memos")
        memo_id = self._erp_id("erp.credit_memo", "credit_note", **_source(note)) if owned else ""
        if owned and self.erp.get("creditMemo", memo_id) is None:
            # A custom (amount-only) credit is against the invoice's subscription revenue.
            erp_items = self.conv.items
            subscribed = any(item_for(x, erp_items) == erp_items["subscription"] for x in lines)
            fallback = erp_items["subscription"] if subscribed else erp_items["other"]
            groups: dict[Key, int] = {}
            taxed: dict[Key, dict[str, int]] = {}
            for n, x in enumerate(note_lines):
                ref = x.get("invoice_line_item") or ""
                item = item_for(by_line[ref], erp_items) if ref in by_line else fallback
                groups[(item, str(n))] = earned(x)
                taxed[(item, str(n))] = line_taxes(x)
            items = erp_item_lines(groups, taxed, currency)
            invoice_ref = self._invoice_ref(invoice)
            body: dict[str, Any] = {
                "entity": self._customer_ref(customer),
                "subsidiary": {"externalId": entity},
                "currency": {"externalId": currency.upper()},
                "item": {"items": items},
                "memo": f"Stripe {note.get('number') or credit_note_id}",
                "createdFrom": invoice_ref,
            }
            if note.get("pre_payment_amount"):
                # Only the part that reduced what is owed applies to the invoice; the rest is
                # customer credit, left unapplied on AR as in Stripe.
                body["apply"] = {
                    "items": [
                        {
                            "doc": invoice_ref,
                            "apply": True,
                            "amount": erp_amount(note["pre_payment_amount"], currency),
                        }
                    ]
                }
            created_on = utc_date(note["created"], "created")
            self.erp.upsert(
                "creditMemo", memo_id, self._dated(body, "creditMemo", entity, created_on)
            )
            log.info("credit note %s -> ERP (%s %s)", credit_note_id, note["total"], currency)
        owns = self.owns("revrec.billing", "revrec.contracts")
        contract = self._contract_for(invoice) if owns else None
        if contract is None:
            return
        billed = {k: v for k, v in self._billing_lines(invoice).items() if v > 0}
        credited: dict[str, int] = defaultdict(int)
        custom = 0
        for x in note_lines:
            si = subscription_item_of(by_line.get(x.get("invoice_line_item") or "", {}))
            if si is None:
                custom += earned(x)
            else:
                credited[si] += earned(x)
        for item, part in (split_by_weight(custom, billed) if custom else {}).items():
            credited[item] += part
        external_id = self.conv.external_id("revrec.credit_event", credit_note=_source(note))
        if self.owns("revrec.billing"):
            self._billing_event(
                contract, external_id, "credit_note", invoice, note["created"], credited
            )
        self.concede(contract, external_id, int(note["created"]), credited)

    def concede(
        self, contract: dict[str, Any], external_id: str, at: int, credited: dict[str, int]
    ) -> None:
        """A credit note or a void is a price concession (docs/reference-flow.md): each
        credited line's consideration is lowered by what was credited, as a prospective
        modification at its date (or at the latest modification already in force, so a credit
        handled after a later change still applies in effective order)."""
        if not self.owns("revrec.contracts") or self.revrec is None:
            return
        done = self.revrec.modifications(contract["id"])
        if any(m["external_id"] == external_id for m in done):
            return
        lines = self._lines_by_item(contract)
        changes = [
            {"line": item, "amount_minor": lines[item]["amount_minor"] - amount}
            for item, amount in credited.items()
            if amount > 0
            and item in lines
            and lines[item]["pattern"] != "usage"
            and lines[item]["terminated_at"] is None  # a terminated line takes no change
        ]
        if not changes:
            return
        at = max([at, *(int(m["effective_at"]) for m in done)])
        self._send_modification(contract["id"], external_id, at, changes, [])
        log.info("contract %s: concession %s at %d", contract["id"], external_id, at)

    # subledger -----------------------------------------------------------------------------
    def _contract_of(self, sub_id: str) -> dict[str, Any] | None:
        assert self.revrec is not None
        return self.revrec.contract_by_external_id(
            self.conv.external_id("revrec.contract", subscription={"id": sub_id})
        )

    def _contract_for(self, invoice: dict[str, Any]) -> dict[str, Any] | None:
        """The subledger contract of the invoice's subscription, booked now if it is missing;
        None for invoices outside a subscription, or of a customer routed to no entity."""
        sub_id = billed_subscription(invoice)
        if self.revrec is None or not sub_id:
            return None
        contract = self._contract_of(_id_of(sub_id))
        if contract is not None:
            return contract
        sub = self._invoice_subscription(invoice)
        if self._sub_entity(sub) is None:
            return None
        if not self.owns("revrec.contracts"):
            raise TransientError(f"waiting for the subledger contract of {sub['id']}", 1.0)
        return self.book_contract(sub)

    def _sub_entity(self, sub: dict[str, Any]) -> str | None:
        """The entity a subscription's contract is booked in: its own metadata (a CRM deal's),
        else its customer's (a subscription made in billing)."""
        entity = (sub.get("metadata") or {}).get("entity")
        if not entity:
            entity = (self._customer(_id_of(sub["customer"])).get("metadata") or {}).get("entity")
        return str(entity).upper() if entity else None

    def _line_id(self, item_id: str) -> str:
        return self.conv.external_id("revrec.line", item={"id": item_id})

    def _lines_by_item(self, contract: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The contract's lines keyed by the subscription item each books."""
        found = {}
        for line in contract["lines"]:
            item = self.conv.source_id("revrec.line", line["external_id"])
            if item is not None:
                found[item] = line
        return found

    def _event_id(self, link: str, invoice: dict[str, Any]) -> str:
        return self.conv.external_id(link, invoice=_source(invoice))

    def _billing_lines(self, invoice: dict[str, Any]) -> dict[str, int]:
        """Net billed per subscription item (prorations included)."""
        net: dict[str, int] = defaultdict(int)
        for line in self._lines(invoice):
            item = subscription_item_of(line)
            if item is not None:
                net[item] += earned(line)
        return dict(net)

    def bill_in_subledger(self, invoice: dict[str, Any]) -> None:
        if not self.owns("revrec.contracts", "revrec.billing"):
            return
        contract = self._contract_for(invoice)
        if contract is None:
            return
        net = self._billing_lines(invoice)
        # Changes made in billing reach the contract before the invoice that bills them.
        starts = [
            line["period"]["start"]
            for line in self._lines(invoice)
            if subscription_item_of(line) and not _is_proration(line)
        ]
        if self.owns("revrec.contracts"):
            contract = (
                self.mirror_subscription(
                    _id_of(billed_subscription(invoice)),
                    billed_from=min(starts) if starts else None,
                    sub=self._invoice_subscription(invoice),
                )
                or contract
            )
        if not self.owns("revrec.billing"):
            return
        self.record_usage(contract, invoice)
        issued_at = invoice["status_transitions"]["finalized_at"]
        charged = {k: v for k, v in net.items() if v > 0}
        credited = {k: -v for k, v in net.items() if v < 0}
        event = self._event_id("revrec.billing_event", invoice)
        if invoice["total"] < 0:
            # A credit invoice (a cancellation's unused time) is a credit note in the subledger.
            self._billing_event(contract, event, "credit_note", invoice, issued_at, credited)
            charge = self._event_id("revrec.billing_charge", invoice)
            self._billing_event(contract, charge, "invoice", invoice, issued_at, charged)
            return
        self._billing_event(contract, event, "invoice", invoice, issued_at, charged)
        # A net credit on an item (a downgrade's unused time) cannot be a negative invoice line.
        credit = self._event_id("revrec.billing_credit", invoice)
        self._billing_event(contract, credit, "credit_note", invoice, issued_at, credited)

    def record_usage(self, contract: dict[str, Any], invoice: dict[str, Any]) -> None:
        """Usage reaches the subledger with the invoice that bills it (in arrears), dated when it
        was consumed: per calendar month of the line's period, the meter's summary for the
        customer, as a usage record of the line (external id: invoice line and month start)."""
        assert self.revrec is not None
        usage = {
            item: line["external_id"]
            for item, line in self._lines_by_item(contract).items()
            if line["pattern"] == "usage"
        }
        customer = _id_of(invoice["customer"])
        for line in self._lines(invoice):
            item = subscription_item_of(line)
            if item is None or item not in usage or _is_proration(line) or not line["quantity"]:
                continue
            meter = self._price(line["pricing"]["price_details"]["price"])["recurring"]["meter"]
            start, end = line["period"]["start"], line["period"]["end"]
            while start < end:
                month = datetime.fromtimestamp(start, UTC).replace(
                    day=1, hour=0, minute=0, second=0
                )
                upto = min(end, add_months(int(month.timestamp()), 1))
                units = self._consumed(meter, customer, start, upto)
                if units:
                    self.revrec.usage(
                        contract["id"],
                        usage[item],
                        {
                            "external_id": f"{line['id']}-{start}",
                            "quantity": units,
                            "consumed_at": start,
                        },
                    )
                start = upto

    def _consumed(self, meter: str, customer: str, start: int, end: int) -> int:
        summaries = with_retries(
            lambda: (
                self.stripe.v1.billing.meters.event_summaries.list(
                    meter, params={"customer": customer, "start_time": start, "end_time": end}
                ).data
            ),
            what=f"usage of {customer} on {meter}",
        )
        return sum(int(s.aggregated_value) for s in summaries)

    def _billing_event(
        self,
        contract: dict[str, Any],
        external_id: str,
        kind: str,
        invoice: dict[str, Any],
        issued_at: int,
        amounts: dict[str, int],
    ) -> None:
        assert self.revrec is not None
        known = self._lines_by_item(contract)
        unknown = sorted(set(amounts) - set(known))
        if unknown:
            if not self.owns("revrec.contracts"):
                # Another integration books the contracts: its change may still be on its way.
                raise TransientError(f"{external_id}: waiting for lines for items {unknown}", 1.0)
            raise PermanentError(
                f"{external_id}: items {unknown} are not lines of {contract['id']}"
            )
        if not amounts:
            return
        self.revrec.billing_event(
            {
                "external_id": external_id,
                "type": kind,
                "contract": contract["id"],
                "currency": invoice["currency"],
                "issued_at": issued_at,
                "lines": [
                    {"line": known[k]["external_id"], "amount_minor": v} for k, v in amounts.items()
                ],
            }
        )
        log.info("%s %s -> subledger (%d lines)", kind, external_id, len(amounts))

    def book_contract(self, sub: dict[str, Any]) -> dict[str, Any]:
        """The subledger contract of a subscription: booked at its start, one line per item,
        ratable over the deal's term; the upsert by external id makes a retry harmless."""
        assert self.revrec is not None
        existing = self._contract_of(sub["id"])
        if existing is not None:
            return existing
        meta = sub["metadata"]
        term = int(meta.get("term_months") or _MONTH_OF_TERM)
        start: int = sub["start_date"]
        end = add_months(start, term)
        entity = self._sub_entity(sub)
        if entity is None:
            raise PermanentError(f"subscription {sub['id']} routes to no entity")
        currency: str = sub["currency"]
        functional = self.revrec.entity(entity)["functional_currency"]
        body: dict[str, Any] = {
            "external_id": self.conv.external_id("revrec.contract", subscription={"id": sub["id"]}),
            "customer": _id_of(sub["customer"]),
            "entity": entity,
            "currency": currency,
            "booked_at": start,
            "metadata": {"crm_opportunity_id": meta.get(self._opportunity_key, "")},
            "lines": [self._contract_line(i, start, end, term) for i in sub["items"]["data"]],
        }
        self._discount_lines(sub, body, term)
        if functional != currency:
            # The booking rate: the ERP's dated rate on the booking day, so both books agree.
            rate = self.erp.rate(currency, functional, utc_date(start, "start_date"))
            body["exchange_rate"] = format(rate.normalize(), "f")
        contract = self.revrec.create_contract(body)
        log.info("contract %s booked for %s (%s)", contract["id"], sub["id"], entity)
        return contract

    def _discount_lines(self, sub: dict[str, Any], body: dict[str, Any], term: int) -> None:
        """The transaction price is what the customer pays less tax: each fixed line's amount
        is what billing will charge for it over the term net of the subscription's percentage
        coupons and of the tax its inclusive tax rates hold (none for an exempt customer;
        ``pricing.over_term``). The subledger allocates the price by relative SSP (ASC
        606-10-32-36), so a coupon for every product falls on every obligation in proportion;
        a coupon restricted to products (``applies_to``) is sent as a discount on the lines
        of those products (ASC 606-10-32-37), the lines priced before it."""
        inclusive = sum(
            (
                Decimal(str(r["percentage"]))
                for r in sub.get("default_tax_rates") or []
                if r.get("inclusive")
            ),
            Decimal(0),
        )
        if inclusive and self._customer(_id_of(sub["customer"])).get("tax_exempt") != "none":
            inclusive = Decimal(0)
        coupons = self._coupons(sub)
        if not coupons and not inclusive:
            return
        by_item = {self._line_id(i["id"]): i for i in sub["items"]["data"]}
        discounts: dict[str, dict[str, Any]] = {}
        for line in body["lines"]:
            item = by_item.get(line["external_id"])
            if line["pattern"] == "usage" or item is None:
                continue
            gross = int(item["price"]["unit_amount"]) * int(item["quantity"])
            periods = self._periods_in(item["price"], term) if term else 1
            price_line(line, gross, periods, coupons, inclusive, discounts)
        if specific(discounts):
            body["discounts"] = specific(discounts)

    def _coupons(self, sub: dict[str, Any]) -> list[dict[str, Any]]:
        """The subscription's live percentage coupons (an amount off is not apportioned to
        items here)."""
        if not sub.get("discounts"):
            return []
        expanded = self._read(
            f"discounts of {sub['id']}", "subscriptions", sub["id"], expand=["discounts"]
        )
        coupons = [
            self._coupon(str(d["source"]["coupon"]))
            for d in expanded.get("discounts") or []
            if isinstance(d, dict) and d.get("end") is None
        ]
        return [c for c in coupons if c.get("percent_off") is not None]

    def _coupon(self, coupon_id: str) -> dict[str, Any]:
        return self._read(f"coupon {coupon_id}", "coupons", coupon_id, expand=["applies_to"])

    def _periods_in(self, price: dict[str, Any], months: int) -> int:
        recurring = price["recurring"]
        per = _MONTHS_PER_INTERVAL[recurring["interval"]] * int(
            recurring.get("interval_count") or 1
        )
        if months % per:
            raise PermanentError(f"a {months}-month term is not whole periods of {price['id']}")
        return months // per

    def _contract_line(
        self, item: dict[str, Any], start: int, end: int, term: int
    ) -> dict[str, Any]:
        price = item["price"]
        product = self._product(_id_of(price["product"]))
        if price["recurring"].get("usage_type") == "metered":
            return {
                "external_id": self._line_id(item["id"]),
                "product": product["id"],
                "pattern": "usage",
                "unit_price_minor": price["unit_amount"],
            }
        periods = self._periods_in(price, term) if term else 1
        ssp = (product.get("metadata") or {}).get("ssp_minor")
        # The line's consideration is the whole term: the recurring price times its periods.
        line: dict[str, Any] = {
            "external_id": self._line_id(item["id"]),
            "product": product["id"],
            "pattern": (product.get("metadata") or {}).get("recognition") or "ratable",
            "quantity": item["quantity"],
            "unit_price_minor": price["unit_amount"] * periods,
            "unit_ssp_minor": (int(ssp) if ssp else price["unit_amount"]) * periods,
        }
        if line["pattern"] == "ratable":
            line |= {"service_start_at": start, "service_end_at": end}
        return line

    # Subscription changes made in billing ------------------------------------------------------
    def mirror_subscription(
        self,
        sub_id: str,
        *,
        changed_at: int | None = None,
        billed_from: int | None = None,
        sub: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Bring the subscription's contract in line with the subscription now (billing-side
        changes: ``customer.subscription.updated`` / ``.deleted``; changes made from the CRM
        are there already and show no difference): a prospective modification (external id
        ``<subscription>-<instant>``) adding, changing and ending lines at the change. The
        instant is the cancellation's ``ended_at``, else the start of the change's
        prorations, else the event's ``changed_at``, else (an invoice met the change first)
        ``billed_from``, the period start of the invoice billing the new terms; ``sub`` is
        the subscription when the caller has it already (expanded on the invoice). Returns
        the contract as it then is."""
        if self.revrec is None or not self.owns("revrec.contracts"):
            return None
        sub = sub if sub is not None else self._subscription(sub_id)
        if self._sub_entity(sub) is None:
            return None
        contract = self.book_contract(sub)
        lines = self._lines_by_item(contract)
        live = {k: v for k, v in lines.items() if v["terminated_at"] is None}
        all_items = {item["id"]: item for item in sub["items"]["data"]}
        canceled = sub["status"] == "canceled" and sub.get("ended_at") is not None
        items = {} if canceled else all_items
        # A cancellation ends the lines still running past it; lines already shortened to
        # the scheduled end (cancel_at_period_end) are left as they are.
        ends_at: int | None = sub["ended_at"] if canceled else sub.get("cancel_at")
        touched = {
            k
            for k, v in live.items()
            if (k not in items and (v["service_end_at"] or 0) > (ends_at or 0))
            or (
                k in items and ends_at and v["pattern"] != "usage" and v["service_end_at"] > ends_at
            )
        }
        for item_id, item in items.items():
            line = lines.get(item_id)
            if line is None or (
                line["terminated_at"] is None
                and line["pattern"] != "usage"
                and line["quantity"] != item["quantity"]
            ):
                touched.add(item_id)
        if not touched:
            return contract
        mods = self.revrec.modifications(contract["id"])
        since = max([m["effective_at"] for m in mods], default=contract["booked_at"])
        prorations = self._prorations(sub, since)
        if canceled:
            at: int = sub["ended_at"]
        elif prorations:
            at = max(start for _, start, _ in prorations)
        elif changed_at is not None and changed_at < int(sub["metadata"].get(RENEWS_AT) or 0):
            return contract  # a renewal: mirrored when its period starts (billed_from)
        elif changed_at is not None or billed_from is not None:
            at = max(since, changed_at if changed_at is not None else billed_from or 0)
        else:
            return contract
        external_id = f"{sub_id}-{at}"
        if any(m["external_id"] == external_id for m in mods):
            return contract
        credit: dict[str, int] = defaultdict(int)
        for item_id, start, amount in prorations:
            if start == at:
                credit[item_id] += amount
        price = next(iter(all_items.values()))["price"]
        term = int(sub["metadata"].get("term_months") or _MONTH_OF_TERM)
        per_term = self._periods_in(price, term)
        anchor = int(sub.get("billing_cycle_anchor") or sub["start_date"])
        step = _MONTHS_PER_INTERVAL[price["recurring"]["interval"]] * int(
            price["recurring"].get("interval_count") or 1
        )
        k = 0
        while add_months(anchor, (k + 1) * step) <= at:
            k += 1
        period_start, period_end = add_months(anchor, k * step), add_months(anchor, (k + 1) * step)
        service_end = max(line["service_end_at"] or 0 for line in contract["lines"])
        after_period = max(0, months_between(period_end, service_end)) // step

        def later(item_id: str) -> int:
            """Periods billed at the new terms after this one; from this one at a boundary."""
            whole = at == period_start and not credit.get(item_id)
            return after_period + (1 if whole else 0)

        changes: list[dict[str, Any]] = []
        added: list[dict[str, Any]] = []
        for item_id in sorted(touched):
            line = lines.get(item_id)
            item = items.get(item_id)
            if line is not None and line["pattern"] == "usage":
                if item is None:
                    changes.append({"line": item_id, "terminate": True})
                continue
            if line is None and item is not None:
                new = self._contract_line(item, at, service_end, term)
                if new["pattern"] != "usage":
                    unit = item["price"]["unit_amount"]
                    ssp = new["unit_ssp_minor"] // per_term
                    mid = at != period_start and bool(credit.get(item_id))
                    new["unit_ssp_minor"] = ssp * later(item_id) + (
                        prorated(ssp, period_start, period_end, at) if mid else 0
                    )
                    new["amount_minor"] = credit.get(item_id, 0) + unit * item["quantity"] * later(
                        item_id
                    )
                    if new["pattern"] == "ratable":
                        new["service_start_at"] = at
                added.append(new)
                continue
            assert line is not None
            unit = (
                item["price"]["unit_amount"]
                if item is not None
                else all_items[item_id]["price"]["unit_amount"]
                if item_id in all_items
                else line["unit_price_minor"] // per_term
            )
            old_qty, new_qty = line["quantity"], (item["quantity"] if item is not None else 0)
            amount = (
                line["amount_minor"]
                + credit.get(item_id, 0)
                + (new_qty - old_qty) * unit * later(item_id)
            )
            if item is not None and ends_at and line["service_end_at"] > ends_at:
                # Cancelled at the period end: the service stops there, unbilled after it.
                unbilled = months_between(ends_at, line["service_end_at"]) // step
                shortened = line["amount_minor"] - unit * old_qty * unbilled
                changes.append(
                    {"line": item_id, "service_end_at": ends_at, "amount_minor": shortened}
                )
                continue
            if item is None:
                changes.append({"line": item_id, "terminate": True, "amount_minor": amount})
            else:
                changes.append({"line": item_id, "quantity": new_qty, "amount_minor": amount})
        self._send_modification(contract["id"], external_id, at, changes, added)
        log.info("contract %s follows %s at %d (%s)", contract["id"], sub_id, at, sub["status"])
        return self._contract_of(sub_id) or contract

    def _prorations(self, sub: dict[str, Any], since: int) -> list[tuple[str, int, int]]:
        """(subscription item, start, amount) of the subscription's prorations (pending or
        invoiced) that start after ``since``."""
        customer = _id_of(sub["customer"])
        rows = with_retries(
            lambda: [
                ii.to_dict()
                for ii in self.stripe.v1.invoice_items.list(
                    params={"customer": customer, "limit": 100}
                ).auto_paging_iter()
            ],
            what=f"invoice items of {customer}",
        )
        found = []
        for ii in rows:
            details = (ii.get("parent") or {}).get("subscription_details") or {}
            if not ii.get("proration") or details.get("subscription") != sub["id"]:
                continue
            start = int(ii["period"]["start"])
            if start > since and details.get("subscription_item"):
                found.append((str(details["subscription_item"]), start, int(ii["amount"])))
        return found

    # CRM -------------------------------------------------------------------------------------
    @property
    def _opportunity_key(self) -> str:
        return self.conv.metadata_key("billing.subscription")

    @property
    def _account_key(self) -> str:
        return self.conv.metadata_key("billing.customer")

    def _field(self, name: str) -> str:
        """A CRM write-back field, as declared (``opportunity_subscription`` → its name)."""
        return self.conv.writeback[name]

    def on_opportunity_closed(self, payload: dict[str, Any]) -> None:
        if not self.owns("crm.provision", "crm.amend", "crm.writeback", "revrec.contracts"):
            return
        if self.crm is None or (self.revrec is None and self.owns("revrec.contracts")):
            raise PermanentError("opportunity.closed needs the CRM and the subledger configured")
        opp = self.crm.opportunity(payload["sObject"]["Id"])  # now, not the pushed snapshot
        if not opp["IsWon"]:
            log.info("opportunity %s closed lost; nothing to do", opp["Id"])
            return
        lines = (opp.get("OpportunityLineItems") or {}).get("records") or []
        if not lines:
            raise PermanentError(f"opportunity {opp['Id']} was won without line items")
        closed_at = int(
            datetime.strptime(payload["createdDate"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        )
        if opp.get(self._field("opportunity_subscription")):
            self.amend(opp, lines, closed_at)
        else:
            self.new_business(opp, lines)

    def new_business(self, opp: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        assert self.crm is not None
        account = opp["Account"]
        entity = str(opp.get("Contracting_Entity__c") or account.get("Contracting_Entity__c") or "")
        if not entity:
            raise PermanentError(f"opportunity {opp['Id']} has no contracting entity")
        self.check_entity(opp["Id"], entity.upper())
        self.check_currency(opp["Id"], lines)
        self.check_mapped(opp["Id"], lines)
        writeback = self.owns("crm.writeback")
        customer_id = account.get(self._field("account_customer")) or self._customer_of(
            opp["AccountId"]
        )
        if not customer_id:
            if not self.owns("crm.provision"):
                raise TransientError(f"waiting for the customer of {opp['AccountId']}", 1.0)
            created = with_retries(
                lambda: self.stripe.v1.customers.create(
                    params={
                        "name": account["Name"],
                        "metadata": {self._account_key: opp["AccountId"], "entity": entity.upper()},
                    },
                    options={"idempotency_key": f"crm-account-{opp['AccountId']}"},
                ),
                what=f"customer for {opp['AccountId']}",
            )
            customer_id = created.id
            if writeback:
                # Written back at once, so a later deal of this account reuses the customer.
                self.crm.update(
                    "Account", opp["AccountId"], {self._field("account_customer"): customer_id}
                )
        sub = self._subscription_of(customer_id, opp["Id"])
        if sub is None:
            if not self.owns("crm.provision"):
                raise TransientError(f"waiting for the subscription of {opp['Id']}", 1.0)
            sub = self._subscribe(customer_id, opp, lines, entity.upper())
        customer = self._customer(customer_id)
        erp_id = self.sync_customer(customer, sub["currency"])
        if self.owns("revrec.contracts"):
            self.book_contract(sub)
        if writeback:
            self.write_back(opp, sub["id"], customer_id, erp_id)
        log.info("opportunity %s -> %s", opp["Id"], sub["id"])

    def check_entity(self, opp_id: str, entity: str) -> None:
        """Control point before anything is created: the contracting entity is a subsidiary
        the ERP knows (a deal for an unknown entity is corrected in the CRM, then replayed)."""
        if not _SAFE_KEY.match(entity):
            raise Refusal(f"opportunity {opp_id}: contracting entity {entity!r} is not valid")
        rows = self.erp.suiteql(f"SELECT id FROM subsidiary WHERE externalid = '{entity}'")
        if not rows:
            known = self.erp.suiteql("SELECT externalid FROM subsidiary ORDER BY externalid")
            names = ", ".join(str(r["externalid"]) for r in known if r.get("externalid"))
            raise Refusal(
                f"opportunity {opp_id}: contracting entity {entity} is not a subsidiary in the "
                f"ERP (known: {names}); correct Contracting_Entity__c in the CRM, then replay"
            )

    def check_currency(self, opp_id: str, lines: list[dict[str, Any]]) -> None:
        """Control point before anything is created: the deal's currency is one the ERP has
        and keeps active (else finance enables it, then the deal is replayed). Whoever posts
        to the ERP, the deal is refused before billing has anything of it."""
        codes = {
            str(self._price(str(line["Billing_Price_Id__c"]))["currency"]).upper()
            for line in lines
            if line.get("Billing_Price_Id__c")
        }
        for code in sorted(codes):
            record = self.erp.get("currency", code)
            if record is None or record.get("isInactive"):
                state = "is not a currency" if record is None else "is inactive"
                raise Refusal(
                    f"opportunity {opp_id}: currency {code} {state} in the ERP; finance "
                    "enables it, then replay"
                )

    def check_mapped(self, opp_id: str, lines: list[dict[str, Any]]) -> None:
        """Control point before anything is created: every product sold has a revenue mapping
        in the subledger (else finance maps it, then the deal is replayed)."""
        if self.revrec is None or not self.owns("revrec.contracts"):
            return
        for line in lines:
            price_id = line.get("Billing_Price_Id__c")
            if not price_id:
                continue
            product = _id_of(self._price(str(price_id))["product"])
            if not self.revrec.mapped(product):
                raise Refusal(
                    f"opportunity {opp_id}: product {product} has no revenue mapping in the "
                    "subledger; finance maps it, then replay"
                )

    def write_back(
        self, opp: dict[str, Any], sub_id: str, customer_id: str, erp_id: str | None
    ) -> None:
        assert self.crm is not None
        self.crm.update(
            "Opportunity",
            opp["Id"],
            {
                self._field("opportunity_subscription"): sub_id,
                self._field("opportunity_synced"): True,
            },
        )
        account = {self._field("account_customer"): customer_id}
        if erp_id is not None:  # another integration may not have made the ERP customer yet
            account[self._field("account_erp_customer")] = erp_id
        self.crm.update("Account", opp["AccountId"], account)

    def _customer_of(self, account_id: str) -> str | None:
        """The billing customer an earlier attempt (or another integration) made for a CRM
        account, found by its metadata."""
        return self.customers.find(self.stripe, account_id)

    def _subscription_of(self, customer_id: str, opp_id: str) -> dict[str, Any] | None:
        """The deal's subscription if an earlier attempt made it (idempotency keys expire)."""
        subs = with_retries(
            lambda: [
                s.to_dict()
                for s in self.stripe.v1.subscriptions.list(
                    params={"customer": customer_id, "status": "all", "limit": 100}
                ).auto_paging_iter()
            ],
            what=f"subscriptions of {customer_id}",
        )
        for sub in subs:
            if sub["metadata"].get(self._opportunity_key) == opp_id:
                return sub
        return None

    def _price(self, price_id: str) -> dict[str, Any]:
        """A price, read once per worker: what the flow reads of it (currency, product,
        recurrence, meter) cannot change once it is made (Stripe: prices are immutable but
        for their metadata, nickname, lookup key, tax behaviour and active flag)."""
        return self._kept(self._prices, "prices", price_id)

    def _items(self, lines: list[dict[str, Any]]) -> dict[str, int]:
        """Quantity per Stripe price, from the opportunity's lines (same price lines add up)."""
        wanted: dict[str, int] = defaultdict(int)
        for line in lines:
            if not line.get("Billing_Price_Id__c"):
                raise PermanentError(f"line {line['Id']} has no Billing_Price_Id__c")
            wanted[line["Billing_Price_Id__c"]] += int(line["Quantity"])
        return dict(wanted)

    def _subscribe(
        self, customer_id: str, opp: dict[str, Any], lines: list[dict[str, Any]], entity: str
    ) -> dict[str, Any]:
        items = []
        for price_id, quantity in self._items(lines).items():
            metered = self._price(price_id)["recurring"].get("usage_type") == "metered"
            items.append(
                {"price": price_id} if metered else {"price": price_id, "quantity": quantity}
            )
        term = int(opp.get("Term_Months__c") or _MONTH_OF_TERM)
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": items,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {
                self._opportunity_key: opp["Id"],
                "entity": entity,
                "term_months": str(term),
            },
        }
        created = with_retries(
            lambda: self.stripe.v1.subscriptions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"crm-opportunity-{opp['Id']}"},
            ),
            what=f"subscription for {opp['Id']}",
        )
        return self._subscription(created.id)

    def amend(self, opp: dict[str, Any], lines: list[dict[str, Any]], closed_at: int) -> None:
        """Set the subscription's items to the deal's lines and tell the subledger: an upgrade is
        a prospective modification of the same contract, never a second contract."""
        assert self.crm is not None
        sub = self._subscription(opp[self._field("opportunity_subscription")])
        # Booked before the change: the modification reads the old quantities from it.
        contract = self.book_contract(sub) if self.owns("revrec.contracts") else None
        renewal = opp.get("Type") == "Renewal"
        first = sub["items"]["data"][0]
        start, end = first["current_period_start"], first["current_period_end"]
        # Effective when the deal closed, clamped into the current period (Stripe's rule for
        # proration_date); a renewal takes effect at the period end, with no prorations.
        at = end if renewal else min(max(closed_at, start), end)
        wanted = self._items(lines)
        current = {item["price"]["id"]: item for item in sub["items"]["data"]}
        changes: list[dict[str, Any]] = []
        for price_id, item in current.items():
            if price_id not in wanted:
                changes.append({"id": item["id"], "deleted": True})
            elif wanted[price_id] != item["quantity"]:
                changes.append({"id": item["id"], "quantity": wanted[price_id]})
        for price_id, quantity in wanted.items():
            if price_id not in current:
                changes.append({"price": price_id, "quantity": quantity})
        before = {item["id"]: item for item in sub["items"]["data"]}
        if changes and self.owns("crm.amend"):
            params: dict[str, Any] = {
                "items": changes,
                "proration_behavior": "none" if renewal else "create_prorations",
            }
            if renewal:
                # Billed from the next period on: the subledger hears of it when that period
                # starts (it takes no modification dated in the future), not at this update.
                params["metadata"] = {RENEWS_AT: str(end)}
            else:
                params["proration_date"] = at
            with_retries(
                lambda: self.stripe.v1.subscriptions.update(
                    sub["id"],
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": f"crm-opportunity-{opp['Id']}"},
                ),
                what=f"amend {sub['id']}",
            )
        if contract is not None and not renewal:
            after = self._subscription(sub["id"])
            self._modify(contract, opp["Id"], before, after, at, start, end, renewal)
        if self.owns("crm.writeback"):
            self.crm.update("Opportunity", opp["Id"], {self._field("opportunity_synced"): True})

    def _modify(
        self,
        contract: dict[str, Any],
        external_id: str,
        before: dict[str, dict[str, Any]],
        after: dict[str, Any],
        at: int,
        start: int,
        end: int,
        renewal: bool,
    ) -> None:
        """A prospective modification at ``at``: each line's consideration becomes what the
        customer pays in all (the term at the old quantity, less the unused part of the current
        period, plus the rest of it and of the term at the new quantity). Quantities before the
        change come from the contract, so a retry after the Stripe update still sees them."""
        assert self.revrec is not None
        if any(m["external_id"] == external_id for m in self.revrec.modifications(contract["id"])):
            return
        lines = self._lines_by_item(contract)
        service_end = max(line["service_end_at"] or 0 for line in contract["lines"])
        items = {item["id"]: item for item in after["items"]["data"]}
        any_price = next(iter(items.values()))["price"]
        later = self._periods_in(any_price, months_between(end, service_end))
        term = int(after["metadata"].get("term_months") or _MONTH_OF_TERM)
        per_term = self._periods_in(any_price, term)

        def this_period(amount: int) -> int:
            return 0 if renewal else prorated(amount, start, end, at)

        changes: list[dict[str, Any]] = []
        added: list[dict[str, Any]] = []
        for item_id, item in items.items():
            price, qty = item["price"], item["quantity"]
            if price["recurring"].get("usage_type") == "metered" and item_id in lines:
                continue
            unit: int = price["unit_amount"]
            if item_id in lines:
                line = lines[item_id]
                if line["quantity"] == qty:
                    continue
                amount = (
                    line["amount_minor"]
                    - this_period(unit * line["quantity"])
                    + this_period(unit * qty)
                    + (qty - line["quantity"]) * unit * later
                )
                changes.append({"line": item_id, "quantity": qty, "amount_minor": amount})
                continue
            new = self._contract_line(item, at, service_end, term)
            if new["pattern"] != "usage":
                # The unit price is the term's rate, like the other lines'; the amount and the
                # SSP are for what is left of the term.
                ssp = new["unit_ssp_minor"] // per_term
                new["unit_ssp_minor"] = this_period(ssp) + ssp * later
                new["amount_minor"] = this_period(unit * qty) + unit * qty * later
            added.append(new)
        for item_id, line in lines.items():
            if item_id in items or line["terminated_at"] is not None:
                continue
            if line["pattern"] == "usage":
                changes.append({"line": item_id, "terminate": True})
                continue
            old = before.get(item_id)
            unit = (
                old["price"]["unit_amount"]
                if old
                else line["unit_price_minor"] // max(1, later + 1)
            )
            qty = line["quantity"]
            amount = line["amount_minor"] - this_period(unit * qty) - unit * qty * later
            changes.append({"line": item_id, "terminate": True, "amount_minor": amount})
        if not changes and not added:
            return
        self._send_modification(contract["id"], external_id, at, changes, added)
        log.info("contract %s modified by %s at %d", contract["id"], external_id, at)

    def _send_modification(
        self,
        contract_id: str,
        external_id: str,
        at: int,
        changes: list[dict[str, Any]],
        added: list[dict[str, Any]],
    ) -> None:
        """A prospective modification: revenue to date stays, the rest follows the new terms."""
        assert self.revrec is not None
        body: dict[str, Any] = {
            "external_id": external_id,
            "effective_at": at,
            "treatment": "prospective",
        }
        if changes:
            # Changes name lines by their subscription item until here.
            body["changes"] = [{**c, "line": self._line_id(c["line"])} for c in changes]
        if added:
            body["add_lines"] = added
        self.revrec.modify(contract_id, body)

    # ERP journals from the subledger -----------------------------------------------------------
    def on_period_closed(self, period: dict[str, Any]) -> None:
        """One ERP journal per close, external id = the close id: the summary's functional
        amounts, every currency together, in the entity's functional currency (they balance
        to the unit; re-converting the transaction amounts at the ERP's rate would not)."""
        entity: str = period["entity"]
        name: str = period["period"]
        functional: str = period["functional_currency"]
        summary = period.get("journal_summary") or {}
        if not self.owns("erp.journals"):
            return
        # An older subledger (or a month an earlier close covered) gives no close id.
        close_id = str(period.get("close_id") or f"rr-{entity}-{name}")
        external_id = self.conv.external_id(
            "erp.journal", close={"id": close_id, "entity": entity, "period": name}
        )
        if self.erp.get("journalEntry", external_id) is not None:
            return
        last_day = utc_date(period["ends_at"] - 1, "ends_at")
        items = []
        for row in summary.get("lines") or []:
            currency = row["currency"]
            own = currency == functional
            debit = row["debit_minor"] if own else row["functional_debit_minor"]
            credit = row["credit_minor"] if own else row["functional_credit_minor"]
            account = {"externalId": ACCOUNT_BY_ROLE[row["account_role"]]}
            memo = f"{row['account_role']} {currency} {name}"
            if debit:
                items.append(
                    {"account": account, "debit": erp_amount(debit, functional), "memo": memo}
                )
            if credit:
                items.append(
                    {"account": account, "credit": erp_amount(credit, functional), "memo": memo}
                )
        if not items:
            log.info("period %s %s recognised nothing; no journal", entity, name)
            return
        body: dict[str, Any] = {
            "subsidiary": {"externalId": entity.upper()},
            "currency": {"externalId": functional.upper()},
            "memo": f"Revenue recognised {entity} {name}",
            "line": {"items": items},
        }
        self.erp.upsert(
            "journalEntry", external_id, self._dated(body, "journalEntry", entity.upper(), last_day)
        )
        log.info("period %s %s -> ERP journal %s", entity, name, external_id)
