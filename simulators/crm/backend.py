"""CRM behaviour: one method per operation, field rules, roll-ups, cascades, notifications."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from simulators.common.errors import SimError
from simulators.common.world import World
from simulators.crm import errors, ids, render, soql
from simulators.crm.models import (
    InvalidValue,
    Record,
    line_total,
    parse_datetime,
    sf_datetime,
    to_internal,
    unit_price_from_total,
)
from simulators.crm.query import Binder, QueryError, render_rows, select
from simulators.crm.schema import FieldDef, Schema, SObjectDef
from simulators.crm.store import CrmStore, Cursor
from simulators.crm.triggers import CompiledTrigger, Trigger

Json = dict[str, Any]
Emit = Callable[[str, str, bytes], None]  # event id, event type, payload
Effect = Callable[[], None]
REPLICATION_WINDOW_MS = 30 * 86_400_000  # getUpdated/getDeleted look back at most 30 days


@dataclass
class Pending:
    """A notification decided during a request, rendered and published when it commits."""

    trigger: CompiledTrigger
    record_id: str
    notification_id: str
    created_ms: int


class MultipleMatches(Exception):
    """An external id value found on several records: Salesforce answers 300 with their URLs."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(f"{len(urls)} records match")
        self.urls = urls


def _seed_base(seed: int, prefix: str) -> int:
    # Ids count up from a seed-dependent start, as real ids grow: the same seed gives the same
    # ids, another seed other ids, and there are 62**9 - 62**8 ids left above any start.
    digest = hashlib.blake2b(f"{seed}:crm:{prefix}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 62**8


def static_id(seed: int, prefix: str, n: int) -> str:
    """An id that is not a record (org, outbound action): fixed per seed, consuming no counter."""
    return ids.mint(prefix, _seed_base(seed, prefix) + n)


def compile_triggers(
    triggers: Sequence[Trigger], schema: Schema, seed: int
) -> list[CompiledTrigger]:
    """Triggers checked against the schema; a bad one raises ValueError."""
    return [
        CompiledTrigger(t, schema, static_id(seed, ids.OUTBOUND_ACTION_PREFIX, n))
        for n, t in enumerate(triggers, 1)
    ]


class CrmBackend:
    """All CRM rules. Called with the world lock held; validates everything before it writes."""

    def __init__(
        self,
        world: World,
        store: CrmStore,
        schema: Schema,
        *,
        triggers: Sequence[CompiledTrigger],
        api_version: str,
        emit: Emit,
    ) -> None:
        self.world = world
        self.store = store
        self.schema = schema
        self.api_version = api_version
        self._emit = emit
        self.organization_id = static_id(world.seed, ids.ORGANIZATION_PREFIX, 1)
        self.triggers = list(triggers)
        self.pending: list[Pending] = []
        self.ensure_standard_pricebook()

    # ids and time --------------------------------------------------------------------------
    def mint(self, prefix: str) -> str:
        return ids.mint(
            prefix, _seed_base(self.world.seed, prefix) + self.world.ids.counter(f"crm:{prefix}")
        )

    def now_ms(self) -> int:
        return self.world.clock.now() * 1000

    def ensure_standard_pricebook(self) -> None:
        """Every org has exactly one standard price book; custom prices build on it."""
        if self.standard_pricebook() is not None:
            return
        now = self.now_ms()
        rec = Record(self.mint(ids.KEY_PREFIXES["Pricebook2"]), "Pricebook2")
        rec.fields.update(
            Name="Standard Price Book",
            IsActive=True,
            IsStandard=True,
            Description=None,
        )
        self._stamp(rec, now, created=True)
        self.store.put(rec)

    def standard_pricebook(self) -> Record | None:
        return next(
            (
                r
                for r in self.store.table("Pricebook2").values()
                if r.fields.get("IsStandard") and not r.deleted
            ),
            None,
        )

    # lookups -------------------------------------------------------------------------------
    def sobject(self, name: str) -> SObjectDef:
        obj = self.schema.sobject(name)
        if obj is None:
            raise errors.not_found()
        return obj

    def record(self, obj: SObjectDef, record_id: str) -> Record:
        normalized = ids.normalize(record_id)
        if normalized is None:
            raise errors.no_external_id_field(record_id)
        rec = self.store.get(normalized)
        if rec is None or rec.sobject != obj.name:
            raise errors.not_found()
        if rec.deleted:
            raise errors.entity_deleted()
        return rec

    def field_list(self, obj: SObjectDef, text: str | None) -> list[FieldDef] | None:
        """The fields named in a ``fields=A,B`` parameter; None when it is absent."""
        if text is None:
            return None
        chosen: list[FieldDef] = []
        for name in (n.strip() for n in text.split(",")):
            if not name:
                continue
            f = obj.field(name)
            if f is None:
                raise errors.no_such_column(obj.name, name)
            if f not in chosen:
                chosen.append(f)
        return chosen

    def _lines(self, opportunity_id: str) -> list[Record]:
        return [
            r
            for r in self.store.table("OpportunityLineItem").values()
            if r.fields.get("OpportunityId") == opportunity_id and not r.deleted
        ]

    def _live(self, sobject: str, **equal: Any) -> list[Record]:
        return [
            r
            for r in self.store.table(sobject).values()
            if not r.deleted and all(r.fields.get(k) == v for k, v in equal.items())
        ]

    # writes --------------------------------------------------------------------------------
    def create(self, obj: SObjectDef, body: Json) -> Record:
        values = self._values(obj, body, creating=True, record_id=None)
        fields = {f.name: f.default for f in obj.fields}  # every field, set or null
        fields.update(values)
        self._check_required(obj, fields)
        self._check_references(obj, values)
        self._check_unique(obj, fields, None)
        effects = self._rules(obj, None, fields, None, set(values))
        rec = Record(self.mint(obj.key_prefix), obj.name, fields)
        fields["Id"] = rec.id
        self._stamp(rec, self.now_ms(), created=True)
        self.store.put(rec)
        for effect in effects:
            effect()
        self._notify(None, rec)
        return rec

    def update(self, obj: SObjectDef, record_id: str, body: Json) -> Record:
        rec = self.record(obj, record_id)
        values = self._values(obj, body, creating=False, record_id=rec.id)
        fields = {**rec.fields, **values}
        self._check_required(obj, fields)
        self._check_references(obj, values)
        self._check_unique(obj, fields, rec.id)
        effects = self._rules(obj, rec.id, fields, rec.fields, set(values))
        before = Record(rec.id, rec.sobject, dict(rec.fields))
        rec.fields = fields
        self._stamp(rec, self.now_ms())
        for effect in effects:
            effect()
        self._notify(before, rec)
        return rec

    def delete(self, obj: SObjectDef, record_id: str) -> Record:
        rec = self.record(obj, record_id)
        doomed = self._deletion(rec)
        now = self.now_ms()
        for victim in doomed:
            victim.fields["IsDeleted"] = True
            victim.deleted_at_ms = now
            self._stamp(victim, now)
        if rec.sobject == "OpportunityLineItem":
            self._rollup(rec.fields["OpportunityId"])
        return rec

    def matches(
        self, obj: SObjectDef, field_name: str, value: str
    ) -> tuple[FieldDef, list[Record]]:
        """Live records whose external id field equals ``value`` (text compares ignoring case)."""
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise errors.no_external_id_field(field_name)
        if f.name == "Id":
            normalized = ids.normalize(value)
            found = self.store.get(normalized) if normalized else None
            live = found is not None and found.sobject == obj.name and not found.deleted
            return f, [found] if live and found is not None else []
        try:
            wanted = to_internal(f, value)
        except InvalidValue as exc:
            raise errors.error(exc.code, exc.message, [f.name]) from None
        key = wanted.lower() if isinstance(wanted, str) else wanted
        return f, [
            r
            for r in self.store.table(obj.name).values()
            if not r.deleted and _folded(r.fields.get(f.name)) == key
        ]

    def upsert(
        self, obj: SObjectDef, field_name: str, value: str, body: Json
    ) -> tuple[Record, bool]:
        f, found = self.matches(obj, field_name, value)
        if len(found) > 1:
            raise MultipleMatches(
                [render.record_url(self.api_version, obj.name, r.id) for r in found]
            )
        given = next((v for k, v in body.items() if k.lower() == f.name.lower()), None)
        if given is not None and _folded(str(given)) != _folded(value):
            raise errors.error(
                "INVALID_FIELD",
                f"The value of {f.name} in the body ({given}) differs from the one in the URL "
                f"({value}).",
                [f.name],
            )
        body = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
        if found:
            return self.update(obj, found[0].id, body), False
        if f.name == "Id":
            raise errors.not_found()
        return self.create(obj, {**body, f.name: value}), True

    # field checks --------------------------------------------------------------------------
    def _values(
        self, obj: SObjectDef, body: Json, *, creating: bool, record_id: str | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        locked: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue  # records read from the API carry it; Salesforce accepts and ignores it
            f = obj.field(key)
            if f is None and isinstance(raw, dict) and obj.relationship(key) is not None:
                # "Account": {"Billing_Customer_Id__c": "cus_1"} sets AccountId by external id.
                f = obj.relationship(key)
                assert f is not None
                if any(k.lower() == f.name.lower() for k in body):
                    raise errors.error(
                        "INVALID_FIELD",
                        f"Cannot specify both an external ID reference {key} and a salesforce "
                        f"id, {f.name}",
                        [f.name],
                    )
                raw = self._foreign_key(f, raw)
            if f is None:
                raise errors.no_such_column(obj.name, key)
            if f.name == "Id":
                if creating or not isinstance(raw, str) or ids.normalize(raw) != record_id:
                    raise errors.error(
                        "INVALID_FIELD", "The Id field should not be specified in the sobject data."
                    )
                continue
            if not (f.createable if creating else f.updateable):
                locked.append(f.name)
                continue
            try:
                value = to_internal(f, raw)
            except InvalidValue as exc:
                raise errors.error(exc.code, exc.message, [exc.field_name]) from None
            # A checkbox cannot be null: clearing it unchecks it.
            values[f.name] = False if value is None and f.type == "boolean" else value
        if locked:
            raise errors.error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(locked)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                locked,
            )
        return values

    def _foreign_key(self, ref: FieldDef, raw: Json) -> str:
        """The id of the one record a relationship reference names by an external id."""
        target = self.schema.sobject(ref.reference_to or "")
        assert target is not None
        keys = [k for k in raw if k != "attributes"]
        ext = target.field(keys[0]) if len(keys) == 1 else None
        if ext is None or not ext.external_id:
            raise errors.error(
                "INVALID_FIELD",
                f"{ref.relationship_name} must name exactly one external id field of {target.name}",
                [ref.name],
            )
        value = raw[keys[0]]
        _, found = self.matches(target, ext.name, str(value))
        if len(found) != 1:
            what = "not found" if not found else "matches more than one record"
            raise errors.error(
                "INVALID_FIELD",
                f"Foreign key external ID: {value} {what} for field {ext.name} in entity "
                f"{target.name}",
                [ref.name],
            )
        return found[0].id

    @staticmethod
    def _check_required(obj: SObjectDef, fields: dict[str, Any]) -> None:
        missing = [f.name for f in obj.fields if f.required and fields.get(f.name) is None]
        if missing:
            raise errors.error(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    def _check_references(self, obj: SObjectDef, values: dict[str, Any]) -> None:
        for name, value in values.items():
            f = obj.field(name)
            if f is None or f.type != "reference" or value is None or f.reference_to is None:
                continue
            if ids.prefix_of(value) != ids.KEY_PREFIXES[f.reference_to]:
                raise errors.error(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{f.label}: id value of incorrect type: {value}",
                    [f.name],
                )
            target = self.store.get(value)
            if target is None:
                raise errors.error(
                    "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name]
                )
            if target.deleted:
                raise errors.error("ENTITY_IS_DELETED", "entity is deleted", [f.name])

    def _check_unique(self, obj: SObjectDef, fields: dict[str, Any], own_id: str | None) -> None:
        for f in obj.fields:
            value = fields.get(f.name)
            if not f.unique or value is None:
                continue
            for other in self.store.table(obj.name).values():
                if (
                    other.id != own_id
                    and not other.deleted
                    and _folded(other.fields.get(f.name)) == _folded(value)
                ):
                    raise errors.error(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{other.id}",
                        [f.name],
                    )

    # object rules --------------------------------------------------------------------------
    def _rules(
        self,
        obj: SObjectDef,
        rec_id: str | None,
        fields: dict[str, Any],
        before: dict[str, Any] | None,
        changed: set[str],
    ) -> list[Effect]:
        """Derive fields and check cross-record rules; the effects run after the write."""
        rule = {
            "Contact": self._contact,
            "Opportunity": self._opportunity,
            "PricebookEntry": self._pricebook_entry,
            "OpportunityLineItem": self._line_item,
            "Product2": self._product,
        }.get(obj.name)
        return rule(rec_id, fields, before, changed) if rule else []

    def _contact(
        self, rec_id: str | None, fields: dict[str, Any], before: Json | None, changed: set[str]
    ) -> list[Effect]:
        fields["Name"] = " ".join(p for p in (fields.get("FirstName"), fields["LastName"]) if p)
        return []

    def _opportunity(
        self, rec_id: str | None, fields: dict[str, Any], before: Json | None, changed: set[str]
    ) -> list[Effect]:
        if before is not None and rec_id is not None and self._lines(rec_id):
            # With products, Amount is their sum; writes to it are silently ignored.
            fields["Amount"] = before["Amount"]
            for name, what in (("CurrencyIsoCode", "currency"), ("Pricebook2Id", "pricebook")):
                if fields.get(name) != before.get(name):
                    raise errors.integrity(
                        f"{name} (cannot change {what} on opportunity with line items)", name
                    )
        pricebook = fields.get("Pricebook2Id")
        if "Pricebook2Id" in changed and pricebook is not None:
            book = self.store.get(pricebook)
            if book is None or not book.fields.get("IsActive"):
                raise errors.integrity("Pricebook2Id (pricebook is inactive)", "Pricebook2Id")
        stage = self.schema.stages[fields["StageName"]]
        fields["IsClosed"] = stage.closed
        fields["IsWon"] = stage.won
        fields["ForecastCategoryName"] = stage.forecast_category
        stage_moved = before is None or before.get("StageName") != fields["StageName"]
        if stage_moved and "Probability" not in changed:
            fields["Probability"] = stage.probability
        effects: list[Effect] = []
        if before is not None and rec_id is not None and fields["Name"] != before["Name"]:
            effects.append(lambda: self._refresh_line_names(opportunity_id=rec_id))
        return effects

    def _product(
        self, rec_id: str | None, fields: dict[str, Any], before: Json | None, changed: set[str]
    ) -> list[Effect]:
        if before is None or rec_id is None:
            return []
        if (fields["Name"], fields.get("ProductCode")) == (
            before["Name"],
            before.get("ProductCode"),
        ):
            return []
        return [lambda: self._refresh_line_names(product_id=rec_id)]

    def _pricebook_entry(
        self, rec_id: str | None, fields: dict[str, Any], before: Json | None, changed: set[str]
    ) -> list[Effect]:
        product = self.store.get(fields["Product2Id"])
        assert product is not None
        fields["Name"] = product.fields["Name"]
        fields["ProductCode"] = product.fields.get("ProductCode")
        if before is not None:
            return []
        book, currency = fields["Pricebook2Id"], fields["CurrencyIsoCode"]
        same = {"Product2Id": product.id, "CurrencyIsoCode": currency}
        if self._live("PricebookEntry", Pricebook2Id=book, **same):
            raise errors.error(
                "DUPLICATE_VALUE", "This price definition already exists in this price book"
            )
        standard = self.standard_pricebook()
        assert standard is not None
        if book != standard.id and not self._live(
            "PricebookEntry", Pricebook2Id=standard.id, **same
        ):
            raise errors.error(
                "STANDARD_PRICE_NOT_DEFINED", "No standard price defined for this product"
            )
        return []

    def _line_item(
        self, rec_id: str | None, fields: dict[str, Any], before: Json | None, changed: set[str]
    ) -> list[Effect]:
        opp = self.store.get(fields["OpportunityId"])
        entry = self.store.get(fields["PricebookEntryId"])
        assert opp is not None and entry is not None
        effects: list[Effect] = []
        if before is None:
            if not entry.fields.get("IsActive"):
                raise errors.integrity(
                    "PricebookEntryId (pricebook entry is inactive)", "PricebookEntryId"
                )
            if entry.fields["CurrencyIsoCode"] != opp.fields["CurrencyIsoCode"]:
                raise errors.integrity(
                    "PricebookEntryId (pricebook entry currency code does not match opportunity "
                    "currency code)",
                    "PricebookEntryId",
                )
            book = opp.fields.get("Pricebook2Id")
            if book is not None and book != entry.fields["Pricebook2Id"]:
                raise errors.integrity(
                    "PricebookEntryId (pricebook entry is in a different pricebook than the one "
                    "assigned to the opportunity)",
                    "PricebookEntryId",
                )
            if book is None:
                # The first product sets the opportunity's price book, as in Salesforce.
                effects.append(lambda: self._set_pricebook(opp, entry.fields["Pricebook2Id"]))
            product = self.store.get(entry.fields["Product2Id"])
            assert product is not None
            fields["Product2Id"] = product.id
            fields["Name"] = f"{opp.fields['Name']} {product.fields['Name']}"
            fields["ProductCode"] = product.fields.get("ProductCode")
            fields["ListPrice"] = entry.fields["UnitPrice"]
            fields["CurrencyIsoCode"] = opp.fields["CurrencyIsoCode"]
        self._price_line(fields, before, changed)
        effects.append(lambda: self._rollup(opp.id))
        return effects

    @staticmethod
    def _price_line(fields: dict[str, Any], before: Json | None, changed: set[str]) -> None:
        quantity = fields["Quantity"]
        if quantity == 0:
            raise errors.integrity("Quantity (quantity must be non-zero)", "Quantity")
        discount = fields.get("Discount")
        if discount is not None and not 0 <= discount <= 100_00:
            raise errors.error(
                "NUMBER_OUTSIDE_VALID_RANGE",
                "Discount: value must be between 0 and 100",
                ["Discount"],
            )
        unit_given = "UnitPrice" in changed and fields.get("UnitPrice") is not None
        total_given = "TotalPrice" in changed and fields.get("TotalPrice") is not None
        if unit_given and total_given:
            raise errors.integrity(
                "TotalPrice (cannot specify both unit price and total price)", "TotalPrice"
            )
        if total_given:
            # A given total stands; the sales price is derived and no discount applies.
            fields["UnitPrice"] = unit_price_from_total(fields["TotalPrice"], quantity)
            fields["Discount"] = None
            return
        if fields.get("UnitPrice") is None:
            raise errors.integrity("TotalPrice (total price must be specified)", "TotalPrice")
        fields["TotalPrice"] = line_total(quantity, fields["UnitPrice"], fields.get("Discount"))

    # effects -------------------------------------------------------------------------------
    def _set_pricebook(self, opp: Record, pricebook_id: str) -> None:
        before = Record(opp.id, opp.sobject, dict(opp.fields))
        opp.fields["Pricebook2Id"] = pricebook_id
        opp.fields["SystemModstamp"] = self.now_ms()
        self._notify(before, opp)

    def _rollup(self, opportunity_id: str) -> None:
        """Amount = Σ TotalPrice of the live lines: a system change (SystemModstamp only)."""
        opp = self.store.get(opportunity_id)
        if opp is None or opp.deleted:
            return
        before = Record(opp.id, opp.sobject, dict(opp.fields))
        lines = self._lines(opp.id)
        if lines:
            opp.fields["Amount"] = sum(line.fields["TotalPrice"] for line in lines)
        elif before.fields.get("HasOpportunityLineItem"):
            opp.fields["Amount"] = 0  # the sum over no lines; Amount is writable again
        opp.fields["HasOpportunityLineItem"] = bool(lines)
        if opp.fields != before.fields:
            opp.fields["SystemModstamp"] = self.now_ms()
            self._notify(before, opp)

    def _refresh_line_names(
        self, *, opportunity_id: str | None = None, product_id: str | None = None
    ) -> None:
        """Names copied from products and opportunities follow them, as formulas would."""
        if product_id is not None:
            product = self.store.get(product_id)
            assert product is not None
            for entry in self._live("PricebookEntry", Product2Id=product_id):
                entry.fields["Name"] = product.fields["Name"]
                entry.fields["ProductCode"] = product.fields.get("ProductCode")
        for line in self.store.table("OpportunityLineItem").values():
            if line.deleted or (
                line.fields["OpportunityId"] != opportunity_id
                and line.fields["Product2Id"] != product_id
            ):
                continue
            opp = self.store.get(line.fields["OpportunityId"])
            product = self.store.get(line.fields["Product2Id"])
            assert opp is not None and product is not None
            line.fields["Name"] = f"{opp.fields['Name']} {product.fields['Name']}"
            line.fields["ProductCode"] = product.fields.get("ProductCode")

    def _deletion(self, rec: Record) -> list[Record]:
        """The record and what goes with it (cascades), or DELETE_FAILED if something needs it."""
        name = rec.sobject
        if name == "Account":
            doomed = [rec, *self._live("Contact", AccountId=rec.id)]
            for opp in self._live("Opportunity", AccountId=rec.id):
                doomed += [opp, *self._lines(opp.id)]
            return doomed
        if name == "Opportunity":
            return [rec, *self._lines(rec.id)]
        if name == "Product2":
            entries = self._live("PricebookEntry", Product2Id=rec.id)
            self._not_in_use(entries)
            return [rec, *entries]
        if name == "Pricebook2":
            if rec.fields.get("IsStandard"):
                raise errors.delete_failed("The standard price book can't be deleted.")
            if self._live("Opportunity", Pricebook2Id=rec.id):
                raise errors.delete_failed(
                    "This price book is assigned to opportunities and can't be deleted."
                )
            entries = self._live("PricebookEntry", Pricebook2Id=rec.id)
            self._not_in_use(entries)
            return [rec, *entries]
        if name == "PricebookEntry":
            self._not_in_use([rec])
            standard = self.standard_pricebook()
            if standard is not None and rec.fields["Pricebook2Id"] == standard.id:
                custom = [
                    e
                    for e in self._live(
                        "PricebookEntry",
                        Product2Id=rec.fields["Product2Id"],
                        CurrencyIsoCode=rec.fields["CurrencyIsoCode"],
                    )
                    if e.id != rec.id
                ]
                if custom:
                    raise errors.delete_failed(
                        "This standard price is used by custom price book entries and can't be "
                        "deleted."
                    )
            return [rec]
        return [rec]

    def _not_in_use(self, entries: list[Record]) -> None:
        used = {e.id for e in entries}
        if any(
            line.fields["PricebookEntryId"] in used for line in self._live("OpportunityLineItem")
        ):
            raise errors.delete_failed(
                "This price book entry is used by opportunity products and can't be deleted."
            )

    @staticmethod
    def _stamp(rec: Record, now_ms: int, *, created: bool = False) -> None:
        rec.fields["Id"] = rec.id
        rec.fields.setdefault("IsDeleted", False)
        if created:
            rec.fields["CreatedDate"] = now_ms
        rec.fields["LastModifiedDate"] = now_ms
        rec.fields["SystemModstamp"] = now_ms

    # notifications -------------------------------------------------------------------------
    def _notify(self, before: Record | None, after: Record) -> None:
        now = self.now_ms()
        for trig in self.triggers:
            if trig.obj.name == after.sobject and trig.fires(before, after, self.store.get, now):
                self.pending.append(
                    Pending(trig, after.id, self.mint(ids.NOTIFICATION_PREFIX), now)
                )

    def savepoint(self) -> tuple[dict[str, Any], int]:
        return self.store.checkpoint(), len(self.pending)

    def rollback(self, point: tuple[dict[str, Any], int]) -> None:
        self.store.rollback(point[0])
        del self.pending[point[1] :]

    def discard(self) -> None:
        self.pending.clear()

    def flush(self) -> None:
        """Publish what the request decided, each with the record as it is now (committed)."""
        pending, self.pending = self.pending, []
        for p in pending:
            rec = self.store.get(p.record_id)
            if rec is None:
                continue
            body = render.record(p.trigger.obj, rec, self.api_version)
            payload = render.notification(
                organization_id=self.organization_id,
                action_id=p.trigger.action_id,
                notification_id=p.notification_id,
                event_type=p.trigger.trigger.event_type,
                created_ms=p.created_ms,
                body=body,
            )
            self._emit(p.notification_id, p.trigger.trigger.event_type, orjson.dumps(payload))

    # queries -------------------------------------------------------------------------------
    def query(self, text: str, *, endpoint: str, version: str, batch_size: int) -> Json:
        try:
            plan = Binder(self.schema, text, self.now_ms()).bind(soql.parse(text))
        except soql.SoqlError as exc:
            raise errors.malformed_query(exc.message) from None
        except QueryError as exc:
            raise SimError(400, exc.code, exc.message) from None
        include_deleted = endpoint == "queryAll"
        rows = (
            r for r in self.store.table(plan.obj.name).values() if include_deleted or not r.deleted
        )
        chosen = select(plan, rows, self.store.get)
        if plan.count:
            return {"totalSize": len(chosen), "done": True, "records": []}
        records = render_rows(
            plan, chosen, self.store.get, self._children(include_deleted), version
        )
        if len(records) <= batch_size:
            return {"totalSize": len(records), "done": True, "records": records}
        cursor = Cursor(self.mint(ids.QUERY_LOCATOR_PREFIX), endpoint, version, records)
        self.store.add_cursor(cursor)
        return self._page(cursor, 0, batch_size)

    def query_more(self, locator: str, *, endpoint: str, batch_size: int) -> Json:
        cursor_id, _, offset = locator.partition("-")
        cursor = self.store.cursors.get(cursor_id)
        if cursor is None or cursor.endpoint != endpoint or not offset.isdigit():
            raise errors.invalid_locator()
        start = int(offset)
        if start >= len(cursor.records):
            raise errors.invalid_locator()
        return self._page(cursor, start, batch_size)

    @staticmethod
    def _page(cursor: Cursor, start: int, batch_size: int) -> Json:
        end = start + batch_size
        page: Json = {"totalSize": len(cursor.records), "done": end >= len(cursor.records)}
        if not page["done"]:
            page["nextRecordsUrl"] = (
                f"/services/data/{cursor.version}/{cursor.endpoint}/{cursor.id}-{end}"
            )
        page["records"] = cursor.records[start:end]
        return page

    def _children(self, include_deleted: bool) -> Callable[[str, str, str], list[Record]]:
        """Child rows by parent id, grouped once per query rather than scanned per parent."""
        groups: dict[tuple[str, str], dict[str, list[Record]]] = {}

        def children_of(sobject: str, field_name: str, parent_id: str) -> list[Record]:
            index = groups.get((sobject, field_name))
            if index is None:
                index = groups[(sobject, field_name)] = {}
                for r in self.store.table(sobject).values():
                    if include_deleted or not r.deleted:
                        index.setdefault(r.fields.get(field_name) or "", []).append(r)
            return index.get(parent_id, [])

        return children_of

    # replication ---------------------------------------------------------------------------
    def _window(self, start: str, end: str) -> tuple[int, int]:
        start_ms, end_ms = parse_datetime(start), parse_datetime(end)
        if start_ms is None or end_ms is None:
            raise errors.error(
                "INVALID_REPLICATION_DATE", "start and end must be ISO-8601 dateTimes"
            )
        if end_ms < start_ms:
            raise errors.error("INVALID_REPLICATION_DATE", "EndDate before StartDate")
        if start_ms < self.now_ms() - REPLICATION_WINDOW_MS:
            raise errors.error(
                "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago"
            )
        return start_ms, min(end_ms, self.now_ms())

    def updated(self, obj: SObjectDef, start: str, end: str) -> Json:
        start_ms, end_ms = self._window(start, end)
        return {
            "ids": [
                r.id
                for r in self.store.table(obj.name).values()
                if not r.deleted and start_ms <= r.fields["SystemModstamp"] <= end_ms
            ],
            "latestDateCovered": sf_datetime(end_ms),
        }

    def deleted(self, obj: SObjectDef, start: str, end: str) -> Json:
        start_ms, end_ms = self._window(start, end)
        gone = [
            r
            for r in self.store.table(obj.name).values()
            if r.deleted_at_ms is not None and start_ms <= r.deleted_at_ms <= end_ms
        ]
        return {
            "deletedRecords": [
                {"id": r.id, "deletedDate": sf_datetime(r.deleted_at_ms or 0)} for r in gone
            ],
            "earliestDateAvailable": sf_datetime(
                min((r.deleted_at_ms or 0 for r in gone), default=start_ms)
            ),
            "latestDateCovered": sf_datetime(end_ms),
        }

    def recent(self, obj: SObjectDef, limit: int = 10) -> list[Record]:
        live = [r for r in self.store.table(obj.name).values() if not r.deleted]
        live.sort(key=lambda r: r.fields["LastModifiedDate"], reverse=True)
        return live[:limit]


def _folded(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
