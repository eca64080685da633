"""Revrec behaviour: one method per operation, the period ledger, reports and events out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from simulators.common.world import World
from simulators.revrec import errors, render
from simulators.revrec.discounts import deduct, specific_discounts
from simulators.revrec.models import (
    ALL_KNOWN,
    ROLES,
    BillingEntry,
    BillingEvent,
    Contract,
    Delivery,
    Entity,
    Event,
    Line,
    Modification,
    PeriodClose,
    Position,
    RevenueMapping,
    Terms,
    UsageRecord,
    Version,
    allocate,
    allocated,
    billed,
    convert,
    delivered,
    journal,
    line_balances,
    modify,
    month_index,
    month_start,
    parse_period,
    period_name,
    position,
    recognised,
    unit_span,
    usage_rate,
)
from simulators.revrec.store import RevrecStore

Json = dict[str, Any]
Emit = Callable[[Event], None]
# Amounts above this are refused, so no total or conversion ever leaves the 64-bit range.
MAX_MINOR = 10**15
FAR = 253402300799  # 9999-12-31T23:59:59Z: "ever", and still a datetime


class RevrecBackend:
    """All revenue rules. Called with the world lock held; time only from the world clock."""

    def __init__(self, world: World, store: RevrecStore, emit: Emit, convention: str) -> None:
        self.world = world
        self.store = store
        self._emit = emit
        self.convention = convention

    def now(self) -> int:
        return self.world.clock.now()

    def _instant(self, body: Json, key: str) -> int:
        """An instant from the body (default now); the subledger records no future facts."""
        at = body.get(key)
        if at is None:
            return self.now()
        if at > self.now():
            raise errors.unprocessable(
                "instant_in_future", f"{key} is after the simulator's current time.", key
            )
        return int(at)

    def event(self, kind: str, obj: Json) -> Event:
        evt = Event(self.world.ids.next("evt"), kind, self.now(), {"object": obj})
        self.store.events.append(evt)
        self._emit(evt)
        return evt

    # lookups ---------------------------------------------------------------------------
    def entity(self, entity_id: str, param: str = "entity") -> Entity:
        found = self.store.entities.get(entity_id)
        if found is None:
            raise errors.no_such("entity", entity_id, param)
        return found

    def contract(self, contract_id: str, param: str = "contract") -> Contract:
        found = self.store.contracts.get(contract_id)
        if found is None:
            raise errors.no_such("contract", contract_id, param)
        return found

    def lines(self, contract: Contract) -> list[Line]:
        return [self.store.lines[i] for i in contract.lines]

    def line(self, contract: Contract, ref: str, param: str = "line") -> Line:
        """A line of the contract by id, else by its external id."""
        rows = self.lines(contract)
        for row in rows:
            if row.id == ref:
                return row
        for row in rows:
            if row.external_id == ref:
                return row
        raise errors.no_such("contract line", ref, param)

    def billing_event(self, event_id: str, param: str = "billing_event") -> BillingEvent:
        found = self.store.billing_events.get(event_id)
        if found is None:
            raise errors.no_such("billing event", event_id, param)
        return found

    # entities --------------------------------------------------------------------------
    def upsert_entity(self, entity_id: str, body: Json) -> tuple[Entity, bool]:
        currency = body["functional_currency"]
        found = self.store.entities.get(entity_id)
        if found is None:
            row = Entity(entity_id, currency, self.now(), body.get("name"))
            self.store.entities[entity_id] = row
            return row, True
        if currency != found.functional_currency and any(
            c.entity == entity_id for c in self.store.contracts.values()
        ):
            raise errors.conflict(
                "entity_in_use",
                f"Entity {entity_id!r} has contracts in {found.functional_currency}; its "
                "functional currency can no longer change.",
                "functional_currency",
            )
        found.functional_currency = currency
        if "name" in body:
            found.name = body["name"]
        return found, False

    # revenue mappings ----------------------------------------------------------------------
    def mapping(self, product: str) -> RevenueMapping:
        found = self.store.mappings.get(product)
        return found if found is not None else RevenueMapping(product, True, 0)

    def set_mapping(self, product: str, mapped: bool) -> RevenueMapping:
        row = RevenueMapping(product, mapped, self.now())
        self.store.mappings[product] = row
        return row

    def _mapped(self, products: list[tuple[str, str]]) -> None:
        """Lines name only mapped products: revenue cannot be recognised without a rule and
        GL accounts to post it to."""
        for product, param in products:
            if not self.mapping(product).mapped:
                raise errors.unprocessable(
                    "product_unmapped",
                    f"Product {product!r} has no revenue mapping (revenue rule and GL "
                    "accounts); map it before booking lines for it.",
                    param,
                )

    # contracts -------------------------------------------------------------------------
    def create_contract(self, body: Json) -> tuple[Contract, bool]:
        """Create, or return the contract already booked under this external id."""
        terms = {k: v for k, v in body.items() if k != "metadata"}
        existing = self.store.contract_by_external_id.get(body["external_id"])
        if existing is not None:
            found = self.store.contracts[existing]
            _same_terms(found.terms, terms, "contract")
            if "metadata" in body:
                found.metadata = dict(body["metadata"])
            return found, False
        entity = self.entity(body["entity"])
        currency = body["currency"]
        rate = _rate(body.get("exchange_rate"), currency, entity.functional_currency)
        booked_at = self._instant(body, "booked_at")
        convention = body.get("recognition_convention", self.convention)
        specs = body["lines"]
        self._mapped([(s["product"], f"lines[{i}].product") for i, s in enumerate(specs)])
        _unique_external_ids(specs, [], "lines")
        parsed = [_line_terms(spec, f"lines[{i}]") for i, spec in enumerate(specs)]
        _no_overlaps(
            [
                (s["product"], t, f"lines[{i}]")
                for i, (s, t) in enumerate(zip(specs, parsed, strict=True))
            ]
        )
        fixed = [(i, t) for i, t in enumerate(parsed) if t.pattern != "usage"]
        price = sum(t.amount_minor for _, t in fixed)
        _bounded(price, "lines", rate, currency, entity.functional_currency)
        off = specific_discounts(body.get("discounts") or [], specs, parsed)
        try:
            shares = allocate(price, [t.unit_ssp_minor * t.quantity for _, t in fixed])
        except ValueError:
            raise errors.unprocessable(
                "ssp_required",
                "The transaction price cannot be allocated: every standalone selling price is 0.",
                "lines",
            ) from None
        # ASC 606-10-32-37: the undiscounted price by relative SSP, less each line's own
        # discount; the line keeps its consideration net of it (modifications start there).
        share_of = deduct(dict(zip((i for i, _ in fixed), shares, strict=True)), off, specs, parsed)
        for i, part in off.items():
            parsed[i] = replace(parsed[i], amount_minor=parsed[i].amount_minor - part)
        seq = self.store.next_seq()
        now = self.now()
        contract = Contract(
            id=self.world.ids.next("rc"),
            external_id=body["external_id"],
            customer=body["customer"],
            entity=entity.id,
            currency=currency,
            functional_currency=entity.functional_currency,
            exchange_rate=rate,
            convention=convention,
            booked_at=booked_at,
            created_at=now,
            seq=seq,
            terms=terms,
            metadata=dict(body.get("metadata") or {}),
        )
        for i, (spec, t) in enumerate(zip(specs, parsed, strict=True)):
            line = self._new_line(contract, spec, t, seq)
            line.discount_minor = off.get(i, 0)
            if t.pattern == "usage":
                line.versions.append(Version(0, seq, unit_price_minor=line.unit_price_minor))
            else:
                line.allocated_minor = share_of[i]
                line.versions.append(_inception(t, share_of[i], convention, seq))
            self.store.lines[line.id] = line
            contract.lines.append(line.id)
        self.store.contracts[contract.id] = contract
        self.store.contract_by_external_id[contract.external_id] = contract.id
        self.event("contract.created", render.contract(self.store, contract))
        self._schedule_updated(contract, contract.lines, "contract.created")
        return contract, True

    def _new_line(
        self, contract: Contract, spec: Json, t: Terms, seq: int, line_id: str | None = None
    ) -> Line:
        return Line(
            id=line_id or self.world.ids.next("rcl"),
            contract=contract.id,
            external_id=spec["external_id"],
            product=spec["product"],
            pattern=t.pattern,
            unit_price_minor=spec["unit_price_minor"],
            quantity=t.quantity,
            amount_minor=t.amount_minor,
            unit_ssp_minor=t.unit_ssp_minor,
            allocated_minor=0,
            created_at=self.now(),
            seq=seq,
            service_start_at=t.start_at,
            service_end_at=t.end_at,
            series=bool(spec.get("series", t.pattern == "ratable")),
        )

    def _schedule_updated(self, contract: Contract, line_ids: list[str], reason: str) -> None:
        self.event(
            "schedule.updated",
            {
                "object": "schedule_update",
                "contract": contract.id,
                "entity": contract.entity,
                "lines": list(line_ids),
                "reason": reason,
            },
        )

    # modifications ---------------------------------------------------------------------
    def create_modification(self, contract_id: str, body: Json) -> tuple[Modification, bool]:
        contract = self.contract(contract_id)
        terms_in = dict(body)
        if body.get("external_id") is not None:
            for mid in contract.modifications:
                mod = self.store.modifications[mid]
                if mod.external_id == body["external_id"]:
                    _same_terms(mod.terms, terms_in, "modification")
                    return mod, False
        at = self._instant(body, "effective_at")
        if at < contract.booked_at:
            raise errors.unprocessable(
                "effective_before_booking",
                "A modification cannot take effect before the contract was booked.",
                "effective_at",
            )
        if contract.modifications:
            last = self.store.modifications[contract.modifications[-1]]
            if at < last.effective_at:
                raise errors.conflict(
                    "modification_out_of_order",
                    f"Modification {last.id} already takes effect at {last.effective_at}; "
                    "modifications apply in effective order.",
                    "effective_at",
                )
        changes = body.get("changes") or []
        adds = body.get("add_lines") or []
        if not changes and not adds:
            raise errors.unprocessable(
                "empty_modification", "Give at least one of changes or add_lines.", "changes"
            )
        lines = self.lines(contract)
        new_terms: dict[str, Terms] = {ln.id: _current_terms(ln) for ln in lines if ln.fixed}
        usage_prices: dict[str, int] = {}
        terminated: dict[str, int] = {}
        seen: set[str] = set()
        seen_order: list[str] = []
        changed_fixed: list[Line] = []
        for i, change in enumerate(changes):
            param = f"changes[{i}]"
            line = self.line(contract, change["line"], f"{param}[line]")
            if line.id in seen:
                raise errors.unprocessable(
                    "duplicate_line", f"Line {line.id} is changed twice.", f"{param}[line]"
                )
            seen.add(line.id)
            seen_order.append(line.id)
            if line.terminated_at is not None:
                raise errors.conflict(
                    "line_terminated", f"Line {line.id} was terminated.", f"{param}[line]"
                )
            if change.get("terminate"):
                terminated[line.id] = at
            if not line.fixed:
                _only(change, ("line", "unit_price_minor", "terminate"), param)
                usage_prices[line.id] = change.get("unit_price_minor", usage_rate(line, at))
                continue
            new_terms[line.id] = _changed_terms(line, change, at, param)
            changed_fixed.append(line)
        self._mapped([(s["product"], f"add_lines[{i}].product") for i, s in enumerate(adds)])
        specs_in = [(s, _line_terms(s, f"add_lines[{i}]")) for i, s in enumerate(adds)]
        _unique_external_ids(adds, [ln.external_id for ln in lines], "add_lines")
        where = {ln_id: f"changes[{i}]" for i, ln_id in enumerate(seen_order)}
        _no_overlaps(
            [
                (ln.product, new_terms[ln.id], where.get(ln.id, "changes"))
                for ln in lines
                if ln.fixed
            ]
            + [(s["product"], t, f"add_lines[{i}]") for i, (s, t) in enumerate(specs_in)]
        )
        requested = body.get("treatment", "auto")
        treatment = requested
        if requested == "auto":
            # A series of distinct periods changes prospectively; anything else (a single,
            # partially satisfied obligation) catches up cumulatively.
            series = all(ln.pattern == "ratable" and ln.series for ln in changed_fixed)
            treatment = "prospective" if series else "cumulative_catch_up"
        # Provisional ids and sequence: nothing is minted until modify() has accepted.
        provisional = self.store.seq + 1
        added = [
            self._new_line(contract, s, t, provisional, f"new_{i}")
            for i, (s, t) in enumerate(specs_in)
        ]
        fixed = [ln for ln in lines if ln.fixed] + [ln for ln in added if ln.fixed]
        for ln in added:
            if ln.fixed:
                new_terms[ln.id] = _current_terms(ln)
        price = sum(t.amount_minor for t in new_terms.values())
        _bounded(
            price,
            "changes",
            contract.exchange_rate,
            contract.currency,
            contract.functional_currency,
        )
        try:
            versions = modify(fixed, new_terms, at, treatment, contract.convention, provisional)
        except ValueError:
            raise errors.unprocessable(
                "ssp_required",
                "The consideration cannot be re-allocated: the obligations it goes to have no "
                "standalone selling price.",
                "changes",
            ) from None
        seq = self.store.next_seq()
        mod = Modification(
            id=self.world.ids.next("rcm"),
            contract=contract.id,
            effective_at=at,
            created_at=self.now(),
            seq=seq,
            requested_treatment=requested,
            treatment=treatment,
            terms=terms_in,
            external_id=body.get("external_id"),
        )
        for ln in added:
            temporary, ln.id = ln.id, self.world.ids.next("rcl")
            if temporary in versions:
                versions[ln.id] = versions.pop(temporary)
                new_terms[ln.id] = new_terms.pop(temporary)
        for v in versions.values():
            v.modification = mod.id
        # Everything is validated: apply.
        for ln in fixed:
            v = versions[ln.id]
            before = recognised(ln, at) if ln.versions else 0
            mod.adjustments.append(
                {
                    "line": ln.id,
                    "recognised_before_minor": before,
                    "allocated_before_minor": ln.allocated_minor if ln.versions else 0,
                    "allocated_after_minor": v.allocated_minor,
                    "catch_up_minor": v.base_minor - before if ln.versions else 0,
                }
            )
            t = new_terms[ln.id]
            ln.versions.append(v)
            ln.allocated_minor = v.allocated_minor
            ln.quantity, ln.amount_minor, ln.unit_ssp_minor = (
                t.quantity,
                t.amount_minor,
                t.unit_ssp_minor,
            )
            ln.service_end_at = t.end_at
        for change in changes:
            line = self.line(contract, change["line"])
            if "unit_price_minor" in change:
                line.unit_price_minor = change["unit_price_minor"]
            if line.id in usage_prices:
                line.versions.append(Version(at, seq, unit_price_minor=usage_prices[line.id]))
            if line.id in terminated:
                line.terminated_at = at
        for ln in added:
            if not ln.fixed:
                ln.versions.append(Version(0, seq, unit_price_minor=ln.unit_price_minor))
            self.store.lines[ln.id] = ln
            contract.lines.append(ln.id)
            mod.added_lines.append(ln.id)
        self.store.modifications[mod.id] = mod
        contract.modifications.append(mod.id)
        self.event("contract.modified", render.modification(mod))
        self._schedule_updated(
            contract, [ln.id for ln in fixed] + list(usage_prices), "modification"
        )
        return mod, True

    # deliveries and usage --------------------------------------------------------------
    def create_delivery(self, contract_id: str, ref: str, body: Json) -> tuple[Delivery, bool]:
        contract = self.contract(contract_id)
        line = self.line(contract, ref)
        found = _by_external_id(line.deliveries, body.get("external_id"))
        if found is not None:
            return found, False
        if line.pattern != "point_in_time":
            raise errors.unprocessable(
                "wrong_pattern", f"Line {line.id} is {line.pattern}, not point_in_time.", "line"
            )
        left = line.quantity - delivered(line, FAR)
        if left <= 0:
            raise errors.conflict("fully_delivered", f"Line {line.id} is fully delivered.", "line")
        quantity = body.get("quantity", left)
        if quantity > left:
            raise errors.unprocessable(
                "over_delivery",
                f"Only {left} of line {line.id}'s {line.quantity} units remain to deliver.",
                "quantity",
            )
        at = self._instant(body, "delivered_at")
        row = Delivery(
            self.world.ids.next("rdl"),
            contract.id,
            line.id,
            quantity,
            at,
            self.now(),
            self.store.next_seq(),
            body.get("external_id"),
        )
        line.deliveries.append(row)
        self._schedule_updated(contract, [line.id], "delivery")
        return row, True

    def record_usage(self, contract_id: str, ref: str, body: Json) -> tuple[UsageRecord, bool]:
        contract = self.contract(contract_id)
        line = self.line(contract, ref)
        found = _by_external_id(line.usage, body.get("external_id"))
        if found is not None:
            return found, False
        if line.pattern != "usage":
            raise errors.unprocessable(
                "wrong_pattern", f"Line {line.id} is {line.pattern}, not usage.", "line"
            )
        at = self._instant(body, "consumed_at")
        if line.terminated_at is not None and at >= line.terminated_at:
            raise errors.unprocessable(
                "line_terminated", f"Line {line.id} ended at {line.terminated_at}.", "consumed_at"
            )
        amount = body["quantity"] * usage_rate(line, at)
        so_far = sum(u.amount_minor for u in line.usage)
        _bounded(
            so_far + amount,
            "quantity",
            contract.exchange_rate,
            contract.currency,
            contract.functional_currency,
        )
        row = UsageRecord(
            self.world.ids.next("rur"),
            contract.id,
            line.id,
            body["quantity"],
            amount,
            at,
            self.now(),
            self.store.next_seq(),
            body.get("external_id"),
        )
        line.usage.append(row)
        return row, True

    # billing ---------------------------------------------------------------------------
    def create_billing_event(self, body: Json) -> tuple[BillingEvent, bool]:
        existing = self.store.billing_event_by_external_id.get(body["external_id"])
        if existing is not None:
            found = self.store.billing_events[existing]
            _same_terms(found.terms, body, "billing event")
            return found, False
        contract = self.contract(body["contract"])
        if body["currency"] != contract.currency:
            raise errors.unprocessable(
                "currency_mismatch",
                f"Contract {contract.id} is in {contract.currency}; billing events on it must be "
                f"too, not {body['currency']}.",
                "currency",
            )
        if "exchange_rate" in body:
            rate = _rate(body["exchange_rate"], contract.currency, contract.functional_currency)
        else:
            rate = contract.exchange_rate
        issued_at = self._instant(body, "issued_at")
        sign = 1 if body["type"] == "invoice" else -1
        resolved: list[tuple[Line, Json]] = []
        for i, item in enumerate(body["lines"]):
            param = f"lines[{i}]"
            line = self.line(contract, item["line"], f"{param}[line]")
            start, end = item.get("period_start_at"), item.get("period_end_at")
            if (start is None) != (end is None):
                raise errors.unprocessable(
                    "incomplete_period", "Give both period_start_at and period_end_at.", param
                )
            if start is not None and end is not None and end <= start:
                raise errors.unprocessable(
                    "inverted_period",
                    "period_end_at must be after period_start_at.",
                    f"{param}[period_end_at]",
                )
            resolved.append((line, item))
        total = sum(item["amount_minor"] for _, item in resolved)
        _bounded(total, "lines", rate, contract.currency, contract.functional_currency)
        if sign < 0:
            credits: dict[str, int] = {}
            for line, item in resolved:
                credits[line.id] = credits.get(line.id, 0) + item["amount_minor"]
            for i, (line, _) in enumerate(resolved):
                _credit_fits(line, credits[line.id], issued_at, f"lines[{i}][amount_minor]")
        seq = self.store.next_seq()
        row = BillingEvent(
            id=self.world.ids.next("rbe"),
            external_id=body["external_id"],
            type=body["type"],
            contract=contract.id,
            currency=contract.currency,
            exchange_rate=rate,
            issued_at=issued_at,
            created_at=self.now(),
            seq=seq,
            terms=dict(body),
            lines=[
                {
                    "line": line.id,
                    "amount_minor": item["amount_minor"],
                    "period_start_at": item.get("period_start_at"),
                    "period_end_at": item.get("period_end_at"),
                }
                for line, item in resolved
            ],
        )
        for line, item in resolved:
            line.billing.append(
                BillingEntry(row.id, issued_at, seq, sign * item["amount_minor"], rate)
            )
        self.store.billing_events[row.id] = row
        self.store.billing_event_by_external_id[row.external_id] = row.id
        self.event("billing_event.created", render.billing_event(row))
        return row, True

    # periods and the ledger ------------------------------------------------------------
    def closes(self, entity_id: str) -> list[PeriodClose]:
        rows = [p for p in self.store.period_closes.values() if p.entity == entity_id]
        return sorted(rows, key=lambda p: p.period)

    def known(self, entity: Entity, month: int) -> int:
        """What the books of ``month`` know: everything, or what was recorded by its close.

        A closed month is read as of the close that covered it, so later writes never restate
        it; their effect shows in the first open month instead.
        """
        if entity.closed_through is None or month > parse_period(entity.closed_through):
            return ALL_KNOWN
        for close in self.closes(entity.id):
            if parse_period(close.period) >= month:
                return close.seq
        return ALL_KNOWN  # pragma: no cover - closed_through always has its close

    def ledger(self, contract: Contract, before: int, entity: Entity | None = None) -> Position:
        """The contract's position before instant ``before`` as its books show it."""
        entity = entity or self.entity(contract.entity)
        known = self.known(entity, month_index(before - 1))
        return position(contract, self.lines(contract), before, known)

    def line_ledger(self, line: Line, entity: Entity, before: int) -> int:
        return recognised(line, before, self.known(entity, month_index(before - 1)))

    def period_journal(self, entity: Entity, month: int) -> list[Json]:
        """Journal summary of ``month`` per currency and account role (signed, debit +).

        It is the books at the end of the month less the books at the end of the month before;
        until an entity's first close the books before are empty, so the first close carries
        everything recorded up to it (its opening balances).
        """
        nets: dict[tuple[str, str], list[int]] = {}
        opening = entity.closed_through is None
        for contract in self.store.contracts.values():
            if contract.entity != entity.id:
                continue
            later = self.ledger(contract, month_start(month + 1), entity)
            earlier = Position() if opening else self.ledger(contract, month_start(month), entity)
            for role, (txn, func) in journal(later, earlier).items():
                cell = nets.setdefault((contract.currency, role), [0, 0])
                cell[0] += txn
                cell[1] += func
        rows = []
        for (currency, role), (txn, func) in sorted(
            nets.items(), key=lambda kv: (kv[0][0], ROLES.index(kv[0][1]))
        ):
            if txn == 0 and func == 0:
                continue
            rows.append(
                {
                    "entity": entity.id,
                    "currency": currency,
                    "account_role": role,
                    "debit_minor": max(txn, 0),
                    "credit_minor": max(-txn, 0),
                    "functional_currency": entity.functional_currency,
                    "functional_debit_minor": max(func, 0),
                    "functional_credit_minor": max(-func, 0),
                }
            )
        return rows

    def checked_period(self, period: str) -> str:
        """A period name from a request, refused with a 400 when it names no usable month."""
        try:
            parse_period(period)
        except ValueError as exc:
            raise errors.unprocessable("parameter_invalid", str(exc), "period") from None
        return period

    def close_period(self, entity_id: str, period: str) -> PeriodClose:
        entity = self.entity(entity_id)
        month = parse_period(period)
        if entity.closed_through is not None:
            through = parse_period(entity.closed_through)
            if month <= through:
                raise errors.conflict(
                    "period_closed",
                    f"Period {period} of entity {entity_id!r} is already closed "
                    f"(closed through {entity.closed_through}).",
                    "period",
                )
            if month > through + 1:
                raise errors.conflict(
                    "period_out_of_order",
                    f"Close {period_name(through + 1)} first: periods close in order.",
                    "period",
                )
        if self.now() < month_start(month + 1):
            raise errors.conflict(
                "period_not_ended",
                f"Period {period} has not ended on the simulator's clock.",
                "period",
            )
        rows = self.period_journal(entity, month)
        close = PeriodClose(
            self.world.ids.next("rpc"), entity.id, period, self.now(), self.store.next_seq(), rows
        )
        self.store.period_closes[close.id] = close
        entity.closed_through = period
        self.event("period.closed", render.period(self, entity, month))
        return close

    def period_close(self, entity: Entity, month: int) -> PeriodClose | None:
        """The close record of exactly this month (earlier months closed with it have none)."""
        name = period_name(month)
        return next((p for p in self.closes(entity.id) if p.period == name), None)

    # reports ---------------------------------------------------------------------------
    def reports(self) -> Json:
        """Every report as of now, for the world snapshot: invariants read these figures."""
        now = self.now()
        return {
            "as_of": now,
            "contracts": {
                c.id: {"schedule": self.schedule(c), "balances": self.balances(c, now)}
                for c in self.store.contracts.values()
            },
            "entities": {
                e.id: {
                    "balances": self.balances_report(e.id, now, None),
                    "waterfall": self.waterfall(e.id, now, None),
                    "closed_periods": [
                        render.period(self, e, parse_period(close.period))
                        for close in self.closes(e.id)
                    ],
                }
                for e in self.store.entities.values()
            },
        }

    def line_balances(self, contract: Contract, as_of: int) -> list[Json]:
        """Each line's recognised, billed, deferred and unbilled amounts as of ``as_of``."""
        known = self.known(self.entity(contract.entity), month_index(as_of))
        rows = []
        for line in self.lines(contract):
            r, b, d, u = line_balances(line, as_of + 1, known)
            rows.append(
                {
                    "line": line.id,
                    "external_id": line.external_id,
                    "recognised_minor": r,
                    "billed_minor": b,
                    "deferred_minor": d,
                    "unbilled_minor": u,
                }
            )
        return rows

    def balances(self, contract: Contract, as_of: int) -> Json:
        known = self.known(self.entity(contract.entity), month_index(as_of))
        pos = position(contract, self.lines(contract), as_of + 1, known)
        return {
            "object": "balances",
            "contract": contract.id,
            "currency": contract.currency,
            "as_of": as_of,
            "lines": self.line_balances(contract, as_of),
            "totals": _totals(pos),
            "functional": _functional(contract, pos),
        }

    def _months(self, line: Line, entity: Entity) -> tuple[int, int] | None:
        """First and last month in which the line can earn (catch-ups land in the first open)."""
        instants: list[int] = [v.effective_at for v in line.versions if v.effective_at > 0]
        for v in line.versions:
            if v.start_at is not None and v.end_at is not None:
                last = unit_span(v.start_at, v.end_at, v.convention)[1]
                instants.append(v.start_at)
                instants.append(max(v.end_at - 1, v.start_at))
                if v.convention == "even_months":
                    instants.append(month_start(last - 1))
                elif v.convention == "day":
                    instants.append((last - 1) * 86400)
        instants += [d.delivered_at for d in line.deliveries]
        instants += [u.consumed_at for u in line.usage]
        if not instants:
            return None
        low, high = month_index(min(instants)), month_index(max(instants))
        if entity.closed_through is not None:
            high = max(high, parse_period(entity.closed_through) + 1)
        return low, high

    def line_schedule(self, line: Line, entity: Entity) -> list[Json]:
        span = self._months(line, entity)
        if span is None:
            return []
        through = parse_period(entity.closed_through) if entity.closed_through else -1
        rows = []
        previous = self.line_ledger(line, entity, month_start(span[0]))
        for month in range(span[0], span[1] + 1):
            now = self.line_ledger(line, entity, month_start(month + 1))
            if now != previous:
                rows.append(
                    {
                        "period": period_name(month),
                        "amount_minor": now - previous,
                        "closed": month <= through,
                    }
                )
            previous = now
        return rows

    def schedule(self, contract: Contract) -> Json:
        entity = self.entity(contract.entity)
        lines = []
        totals: dict[str, Json] = {}
        for line in self.lines(contract):
            rows = self.line_schedule(line, entity)
            for row in rows:
                cell = totals.setdefault(row["period"], {**row, "amount_minor": 0})
                cell["amount_minor"] += row["amount_minor"]
            lines.append(
                {
                    "line": line.id,
                    "external_id": line.external_id,
                    "pattern": line.pattern,
                    "allocated_minor": allocated(line, FAR),
                    "periods": rows,
                    "total_minor": sum(r["amount_minor"] for r in rows),
                }
            )
        periods = [totals[p] for p in sorted(totals) if totals[p]["amount_minor"] != 0]
        return {
            "object": "schedule",
            "contract": contract.id,
            "currency": contract.currency,
            "recognition_convention": contract.convention,
            "lines": lines,
            "periods": periods,
            "total_minor": sum(p["amount_minor"] for p in periods),
        }

    def _entity_contracts(
        self, entity: Entity, as_of: int, currency: str | None
    ) -> Iterable[Contract]:
        known = self.known(entity, month_index(as_of))
        for contract in self.store.contracts.values():
            if (
                contract.entity == entity.id
                and contract.seq <= known
                and contract.booked_at <= as_of
                and currency in (None, contract.currency)
            ):
                yield contract

    def balances_report(self, entity_id: str, as_of: int, currency: str | None) -> Json:
        entity = self.entity(entity_id)
        rows: list[Json] = []
        totals: dict[str, Json] = {}
        for contract in self._entity_contracts(entity, as_of, currency):
            pos = self.ledger(contract, as_of + 1, entity)
            rows.append(
                {
                    "contract": contract.id,
                    "external_id": contract.external_id,
                    "currency": contract.currency,
                    **_totals(pos),
                }
            )
            cell = totals.setdefault(contract.currency, _totals(Position()))
            for key, value in _totals(pos).items():
                cell[key] += value
        return {
            "object": "balances_report",
            "entity": entity.id,
            "as_of": as_of,
            "contracts": rows,
            "totals": [{"currency": c, **totals[c]} for c in sorted(totals)],
        }

    def waterfall(self, entity_id: str, as_of: int, currency: str | None) -> Json:
        """Booking month × recognition month as the books show it on ``as_of``."""
        entity = self.entity(entity_id)
        known = self.known(entity, month_index(as_of))
        last = month_index(as_of)
        rows: dict[tuple[str, str], Json] = {}
        totals: dict[str, Json] = {}
        for contract in self._entity_contracts(entity, as_of, currency):
            lines = self.lines(contract)
            booked = sum(allocated(ln, as_of, known) for ln in lines)
            spans = [s for ln in lines if (s := self._months(ln, entity)) is not None]
            key = (contract.currency, period_name(month_index(contract.booked_at)))
            row = rows.setdefault(
                key,
                {"currency": key[0], "booking_period": key[1], "booked_minor": 0, "cells": {}},
            )
            row["booked_minor"] += booked
            if spans:
                first = min(s[0] for s in spans)
                previous = self.ledger(contract, month_start(first), entity).recognised_minor
                for month in range(first, last + 1):
                    end = min(month_start(month + 1), as_of + 1)
                    now = self.ledger(contract, end, entity).recognised_minor
                    if now != previous:
                        name = period_name(month)
                        row["cells"][name] = row["cells"].get(name, 0) + now - previous
                    previous = now
            pos = self.ledger(contract, as_of + 1, entity)
            cell = totals.setdefault(
                contract.currency,
                {
                    "booked_minor": 0,
                    "recognised_to_date_minor": 0,
                    "remaining_minor": 0,
                    **{k: 0 for k in ("billed_minor", "deferred_minor", "unbilled_minor")},
                },
            )
            cell["booked_minor"] += booked
            cell["recognised_to_date_minor"] += pos.recognised_minor
            cell["remaining_minor"] += booked - pos.recognised_minor
            cell["billed_minor"] += pos.billed_minor
            cell["deferred_minor"] += pos.deferred_minor
            cell["unbilled_minor"] += pos.unbilled_minor
        out = []
        for key in sorted(rows):
            row = rows[key]
            cells = row.pop("cells")
            done = sum(cells.values())
            out.append(
                {
                    **row,
                    "recognised": [
                        {"period": p, "amount_minor": cells[p]} for p in sorted(cells) if cells[p]
                    ],
                    "recognised_to_date_minor": done,
                    "remaining_minor": row["booked_minor"] - done,
                }
            )
        return {
            "object": "waterfall",
            "entity": entity.id,
            "as_of": as_of,
            "rows": out,
            "totals": [{"currency": c, **totals[c]} for c in sorted(totals)],
        }


# --- validation helpers (pure) -------------------------------------------------------------
def _same_terms(stored: Json, sent: Json, kind: str) -> None:
    """A retried write must carry the terms it was first sent with."""
    for key in sorted(set(stored) | set(sent)):
        if stored.get(key) != sent.get(key):
            raise errors.conflict(
                "external_id_conflict",
                f"A {kind} with external id {sent.get('external_id')!r} already exists with "
                f"different {key}; change a booked {kind} through its own operations.",
                key,
            )


def _rate(given: str | None, currency: str, functional: str) -> str:
    """The booking (or billing) rate, one unit of ``currency`` in ``functional``."""
    if given is None:
        if currency == functional:
            return "1"
        raise errors.unprocessable(
            "exchange_rate_required",
            f"{currency} is not the entity's functional currency ({functional}): give "
            "exchange_rate.",
            "exchange_rate",
        )
    value = Decimal(given)  # the contract's pattern admits only plain decimals
    if value <= 0:
        raise errors.unprocessable(
            "invalid_exchange_rate", "exchange_rate must be positive.", "exchange_rate"
        )
    if currency == functional and value != 1:
        raise errors.unprocessable(
            "invalid_exchange_rate",
            f"{currency} is the functional currency: its exchange rate is 1.",
            "exchange_rate",
        )
    return given


def _bounded(amount: int, param: str, rate: str, currency: str, functional: str) -> None:
    if amount > MAX_MINOR or convert(amount, rate, currency, functional) > MAX_MINOR:
        raise errors.unprocessable(
            "amount_too_large", f"Amounts are limited to {MAX_MINOR} minor units.", param
        )


def _unique_external_ids(specs: list[Json], taken: list[str], param: str) -> None:
    seen = set(taken)
    for i, spec in enumerate(specs):
        if spec["external_id"] in seen:
            raise errors.unprocessable(
                "duplicate_external_id",
                f"Line external id {spec['external_id']!r} is used twice in this contract.",
                f"{param}[{i}][external_id]",
            )
        seen.add(spec["external_id"])


def _only(spec: Json, allowed: tuple[str, ...], param: str) -> None:
    extra = sorted(set(spec) - set(allowed))
    if extra:
        raise errors.unprocessable(
            "not_applicable",
            f"{extra[0]} does not apply to this line's pattern.",
            f"{param}[{extra[0]}]",
        )


def _period(start: int | None, end: int | None, param: str, required: bool) -> None:
    if start is None and end is None and not required:
        return
    if start is None or end is None:
        raise errors.unprocessable(
            "service_period_required",
            "Give both service_start_at and service_end_at.",
            f"{param}[service_start_at]" if start is None else f"{param}[service_end_at]",
        )
    if end <= start:
        raise errors.unprocessable(
            "inverted_period",
            "service_end_at must be after service_start_at.",
            f"{param}[service_end_at]",
        )


def _line_terms(spec: Json, param: str) -> Terms:
    pattern = spec["pattern"]
    start, end = spec.get("service_start_at"), spec.get("service_end_at")
    _period(start, end, param, required=pattern == "ratable")
    if pattern == "usage":
        _only(
            spec,
            (
                "external_id",
                "product",
                "pattern",
                "unit_price_minor",
                "service_start_at",
                "service_end_at",
            ),
            param,
        )
        return Terms("usage", 0, 0, 0, start, end)
    quantity = int(spec.get("quantity", 1))
    amount = int(spec.get("amount_minor", quantity * spec["unit_price_minor"]))
    if amount > MAX_MINOR:
        raise errors.unprocessable(
            "amount_too_large",
            f"Amounts are limited to {MAX_MINOR} minor units.",
            f"{param}[amount_minor]",
        )
    given = spec.get("unit_ssp_minor")
    ssp = int(spec["unit_price_minor"] if given is None else given)
    return Terms(pattern, quantity, amount, ssp, start, end)


def _current_terms(line: Line) -> Terms:
    return Terms(
        line.pattern,
        line.quantity,
        line.amount_minor,
        line.unit_ssp_minor,
        line.service_start_at,
        line.terminated_at if line.terminated_at is not None else line.service_end_at,
    )


def _changed_terms(line: Line, change: Json, at: int, param: str) -> Terms:
    t = _current_terms(line)
    quantity = change.get("quantity", t.quantity)
    price = change.get("unit_price_minor", line.unit_price_minor)
    if "amount_minor" in change:
        amount = change["amount_minor"]
    elif "quantity" in change or "unit_price_minor" in change:
        amount = quantity * price
    else:
        amount = t.amount_minor
    if amount > MAX_MINOR:
        raise errors.unprocessable(
            "amount_too_large",
            f"Amounts are limited to {MAX_MINOR} minor units.",
            f"{param}[amount_minor]",
        )
    end = t.end_at
    if line.pattern == "ratable":
        assert t.start_at is not None and t.end_at is not None
        if "service_end_at" in change:
            end = change["service_end_at"]
            if end <= t.start_at:
                raise errors.unprocessable(
                    "inverted_period",
                    "service_end_at must be after the line's service_start_at.",
                    f"{param}[service_end_at]",
                )
            if end < at:
                raise errors.unprocessable(
                    "service_end_before_effective",
                    "service_end_at cannot be before effective_at: revenue already recognised "
                    "never changes.",
                    f"{param}[service_end_at]",
                )
        if change.get("terminate"):
            # Terminated before it began: an empty period, nothing left to perform.
            end = max(t.start_at, min(end if end is not None else at, at))
    elif "service_end_at" in change:
        raise errors.unprocessable(
            "not_applicable", "service_end_at applies to ratable lines.", f"{param}[service_end_at]"
        )
    if line.pattern == "point_in_time":
        done = delivered(line, FAR)
        if change.get("terminate"):
            if "quantity" in change:
                raise errors.unprocessable(
                    "not_applicable",
                    "A terminated line takes no new quantity.",
                    f"{param}[quantity]",
                )
            quantity = done
        elif quantity < done:
            raise errors.unprocessable(
                "quantity_below_delivered",
                f"{done} units of line {line.id} are already delivered.",
                f"{param}[quantity]",
            )
    ssp = change.get("unit_ssp_minor", t.unit_ssp_minor)
    return Terms(line.pattern, quantity, amount, ssp, t.start_at, end)


def _no_overlaps(items: list[tuple[str, Terms, str]]) -> None:
    """One product is sold once per stretch of time in a contract: use quantity instead."""
    ratable = [(p, t, param) for p, t, param in items if t.pattern == "ratable"]
    for i, (product, a, _) in enumerate(ratable):
        for other, b, param in ratable[i + 1 :]:
            assert a.start_at is not None and a.end_at is not None
            assert b.start_at is not None and b.end_at is not None
            empty = a.start_at >= a.end_at or b.start_at >= b.end_at
            if other == product and not empty and a.start_at < b.end_at and b.start_at < a.end_at:
                raise errors.unprocessable(
                    "overlapping_service_periods",
                    f"Two lines sell {product!r} over overlapping service periods.",
                    f"{param}[service_start_at]",
                )


def _inception(t: Terms, share: int, convention: str, seq: int) -> Version:
    if t.pattern == "ratable":
        return Version(
            0, seq, amount_minor=share, start_at=t.start_at, end_at=t.end_at, convention=convention
        )
    return Version(0, seq, amount_minor=share, quantity=t.quantity)


def _by_external_id(rows: Iterable[Any], external_id: str | None) -> Any:
    if external_id is None:
        return None
    return next((r for r in rows if r.external_id == external_id), None)


def _credit_fits(line: Line, credit: int, issued_at: int, param: str) -> None:
    """A credit note never takes a line's billed amount below zero, then or later."""
    moments = {issued_at} | {b.issued_at for b in line.billing if b.issued_at >= issued_at}
    if any(billed(line, m + 1) - credit < 0 for m in moments):
        raise errors.unprocessable(
            "credit_exceeds_billed",
            f"The credit exceeds what line {line.id} has been billed.",
            param,
        )


def _totals(pos: Position) -> Json:
    return {
        "recognised_minor": pos.recognised_minor,
        "billed_minor": pos.billed_minor,
        "deferred_minor": pos.deferred_minor,
        "unbilled_minor": pos.unbilled_minor,
    }


def _functional(contract: Contract, pos: Position) -> Json:
    return {
        "currency": contract.functional_currency,
        "exchange_rate": contract.exchange_rate,
        "recognised_minor": pos.f_recognised_minor,
        "deferred_minor": pos.f_deferred_minor,
        "unbilled_minor": pos.f_unbilled_minor,
        "billed_at_booking_rate_minor": pos.f_billed_booking_minor,
        "billed_at_billing_rates_minor": pos.f_billed_billing_minor,
        "fx_minor": pos.fx_minor,
    }
