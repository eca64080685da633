"""The CRM's objects and fields: standard Salesforce fields plus configured custom fields."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from simulators.crm.ids import KEY_PREFIXES

TEXT_TYPES = frozenset({"string", "textarea", "picklist", "email", "phone", "url"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
ID_TYPES = frozenset({"id", "reference"})
FIELD_TYPES = TEXT_TYPES | NUMBER_TYPES | ID_TYPES | {"boolean", "date", "datetime"}
CUSTOM_FIELD_TYPES = FIELD_TYPES - ID_TYPES
_CUSTOM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$")


@dataclass(frozen=True)
class FieldDef:
    """One field as describe shows it; numbers are stored as integers scaled by 10**scale."""

    name: str
    type: str
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    # Must be given on create (not nillable and no default applies).
    required: bool = False
    default: Any = None
    reference_to: str | None = None
    relationship_name: str | None = None
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    custom: bool = False


@dataclass(frozen=True)
class ChildRelationship:
    name: str  # OpportunityLineItems
    child: str  # OpportunityLineItem
    field: str  # OpportunityId
    cascade_delete: bool = True


@dataclass(frozen=True)
class SObjectDef:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    children: tuple[ChildRelationship, ...] = ()
    _by_lower: dict[str, FieldDef] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )
    _by_relationship: dict[str, FieldDef] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        # Field and relationship names are case-insensitive in bodies, URLs and SOQL.
        self._by_lower.update({f.name.lower(): f for f in self.fields})
        self._by_relationship.update(
            {f.relationship_name.lower(): f for f in self.fields if f.relationship_name}
        )

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field behind a parent relationship name (``Account`` → AccountId)."""
        return self._by_relationship.get(name.lower())

    def child(self, name: str) -> ChildRelationship | None:
        lowered = name.lower()
        return next((c for c in self.children if c.name.lower() == lowered), None)


@dataclass(frozen=True)
class CustomField:
    """A custom field declared in configuration: ``CustomField("Billing_Subscription_Id__c")``."""

    name: str
    type: str = "string"
    label: str | None = None
    length: int = 255
    precision: int = 18
    scale: int = 2
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False

    def definition(self) -> FieldDef:
        if not _CUSTOM_NAME.match(self.name):
            raise ValueError(f"custom field names look like Name__c: {self.name!r}")
        if self.type not in CUSTOM_FIELD_TYPES:
            raise ValueError(
                f"custom field {self.name}: type {self.type!r} is not one of "
                f"{', '.join(sorted(CUSTOM_FIELD_TYPES))}"
            )
        if (self.external_id or self.unique) and self.type not in {"string", "email", "int"}:
            raise ValueError(f"custom field {self.name}: only text and int fields are external ids")
        numeric = self.type in NUMBER_TYPES
        scale = 0 if self.type == "int" else self.scale if numeric else 0
        return FieldDef(
            self.name,
            self.type,
            self.label or self.name[:-3].replace("_", " "),
            length=self.length if self.type in TEXT_TYPES else 0,
            precision=self.precision if numeric else 0,
            scale=scale,
            default=False if self.type == "boolean" else None,
            nillable=self.type != "boolean",
            external_id=self.external_id,
            unique=self.unique,
            picklist=tuple(self.picklist),
            restricted=self.restricted,
            custom=True,
        )


@dataclass(frozen=True)
class Stage:
    """An opportunity stage: its default probability and whether it closes or wins the deal."""

    name: str
    probability: int
    closed: bool = False
    won: bool = False

    @property
    def forecast_category(self) -> str:
        if self.won:
            return "Closed"
        return "Omitted" if self.closed else "Pipeline"


# Salesforce's default Opportunity stages.
DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage("Prospecting", 10),
    Stage("Qualification", 10),
    Stage("Needs Analysis", 20),
    Stage("Value Proposition", 50),
    Stage("Id. Decision Makers", 60),
    Stage("Perception Analysis", 70),
    Stage("Proposal/Price Quote", 75),
    Stage("Negotiation/Review", 90),
    Stage("Closed Won", 100, closed=True, won=True),
    Stage("Closed Lost", 0, closed=True),
)

# What a SaaS-to-ERP integration reads and writes back: the billing and ERP ids it keys on
# and the legal entity that contracts the deal.
DEFAULT_CUSTOM_FIELDS: Mapping[str, tuple[CustomField, ...]] = {
    "Account": (
        CustomField("External_Id__c", external_id=True),
        CustomField("Billing_Customer_Id__c", external_id=True, unique=True),
        CustomField("ERP_Customer_Id__c", external_id=True),
        CustomField("Contracting_Entity__c"),
    ),
    "Contact": (CustomField("External_Id__c", external_id=True),),
    "Product2": (
        CustomField("External_Id__c", external_id=True),
        CustomField("Billing_Product_Id__c", external_id=True),
    ),
    "Opportunity": (
        CustomField("External_Id__c", external_id=True),
        CustomField("Billing_Subscription_Id__c", external_id=True),
        CustomField("Contracting_Entity__c"),
        CustomField("Term_Months__c", type="int", precision=3),
        CustomField("Synced_To_Billing__c", type="boolean"),
    ),
    "OpportunityLineItem": (CustomField("Billing_Price_Id__c"),),
}

DEFAULT_CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP")


def _text(name: str, label: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, kw.pop("type", "string"), label, length=length, **kw)


def _ref(name: str, label: str, target: str, **kw: Any) -> FieldDef:
    return FieldDef(
        name,
        "reference",
        label,
        length=18,
        reference_to=target,
        relationship_name=name[:-2],
        **kw,
    )


def _money(name: str, label: str, scale: int = 2, **kw: Any) -> FieldDef:
    return FieldDef(name, "currency", label, precision=18, scale=scale, **kw)


def _flag(name: str, label: str, **kw: Any) -> FieldDef:
    return FieldDef(name, "boolean", label, nillable=False, default=False, **kw)


def _readonly(f: FieldDef) -> FieldDef:
    return replace(f, createable=False, updateable=False)


def _system_fields() -> tuple[FieldDef, ...]:
    def ro(name: str, kind: str, label: str, **kw: Any) -> FieldDef:
        return FieldDef(name, kind, label, nillable=False, createable=False, updateable=False, **kw)

    return (
        ro("Id", "id", "Record ID", length=18),
        ro("IsDeleted", "boolean", "Deleted", default=False),
        ro("CreatedDate", "datetime", "Created Date"),
        ro("LastModifiedDate", "datetime", "Last Modified Date"),
        ro("SystemModstamp", "datetime", "System Modstamp"),
    )


class Schema:
    """Every object of the org with its fields, built once from the simulator's configuration."""

    def __init__(
        self,
        *,
        custom_fields: Mapping[str, Sequence[CustomField]] | None = None,
        stages: Sequence[Stage] = DEFAULT_STAGES,
        currencies: Sequence[str] = DEFAULT_CURRENCIES,
        corporate_currency: str | None = None,
    ) -> None:
        if not stages:
            raise ValueError("at least one opportunity stage is needed")
        if len({s.name for s in stages}) != len(stages):
            raise ValueError("stage names must be unique")
        if not currencies or any(not re.fullmatch(r"[A-Z]{3}", c) for c in currencies):
            raise ValueError("currencies are ISO 4217 codes such as USD")
        self.stages = {s.name: s for s in stages}
        self.currencies = tuple(currencies)
        self.corporate_currency = corporate_currency or self.currencies[0]
        if self.corporate_currency not in self.currencies:
            raise ValueError("the corporate currency must be one of the currencies")
        custom = DEFAULT_CUSTOM_FIELDS if custom_fields is None else custom_fields
        self.objects: dict[str, SObjectDef] = {}
        system = _system_fields()  # Id first, as Salesforce lists it; audit fields last
        for definition in self._standard():
            extra = tuple(c.definition() for c in custom.get(definition.name, ()))
            names = [f.name.lower() for f in (*definition.fields, *extra)]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate field names on {definition.name}")
            self.objects[definition.name] = SObjectDef(
                definition.name,
                definition.label,
                definition.label_plural,
                definition.key_prefix,
                (system[0], *definition.fields, *extra, *system[1:]),
                definition.children,
            )
        unknown = set(custom) - set(self.objects)
        if unknown:
            raise ValueError(f"custom fields for unknown objects: {', '.join(sorted(unknown))}")
        self._by_lower = {name.lower(): obj for name, obj in self.objects.items()}
        self._by_prefix = {obj.key_prefix: obj for obj in self.objects.values()}

    def sobject(self, name: str) -> SObjectDef | None:
        return self._by_lower.get(name.lower())

    def by_prefix(self, prefix: str) -> SObjectDef | None:
        return self._by_prefix.get(prefix)

    def _standard(self) -> list[SObjectDef]:
        currency = FieldDef(
            "CurrencyIsoCode",
            "picklist",
            "Currency ISO Code",
            length=3,
            picklist=self.currencies,
            restricted=True,
            nillable=False,
            default=self.corporate_currency,
        )
        stage_names = tuple(self.stages)
        return [
            SObjectDef(
                "Account",
                "Account",
                "Accounts",
                KEY_PREFIXES["Account"],
                (
                    _text("Name", "Account Name", nillable=False, required=True),
                    _text("AccountNumber", "Account Number", 40),
                    _text(
                        "Type",
                        "Account Type",
                        40,
                        type="picklist",
                        picklist=(
                            "Prospect",
                            "Customer - Direct",
                            "Customer - Channel",
                            "Channel Partner / Reseller",
                            "Installation Partner",
                            "Technology Partner",
                            "Other",
                        ),
                    ),
                    _text("Industry", "Industry", type="picklist"),
                    _text("BillingStreet", "Billing Street", type="textarea"),
                    _text("BillingCity", "Billing City", 40),
                    _text("BillingState", "Billing State/Province", 80),
                    _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
                    _text("BillingCountry", "Billing Country", 80),
                    _text("Phone", "Account Phone", 40, type="phone"),
                    _text("Website", "Website", type="url"),
                    _money("AnnualRevenue", "Annual Revenue", scale=0),
                    FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
                    _text("Description", "Account Description", 32000, type="textarea"),
                    currency,
                ),
                (
                    ChildRelationship("Contacts", "Contact", "AccountId"),
                    ChildRelationship("Opportunities", "Opportunity", "AccountId"),
                ),
            ),
            SObjectDef(
                "Contact",
                "Contact",
                "Contacts",
                KEY_PREFIXES["Contact"],
                (
                    _ref("AccountId", "Account ID", "Account"),
                    _text("FirstName", "First Name", 40),
                    _text("LastName", "Last Name", 80, nillable=False, required=True),
                    _readonly(_text("Name", "Full Name", 121)),
                    _text("Email", "Email", 80, type="email"),
                    _text("Phone", "Business Phone", 40, type="phone"),
                    _text("Title", "Title", 128),
                    _text("MailingCity", "Mailing City", 40),
                    _text("MailingCountry", "Mailing Country", 80),
                    _text("Description", "Contact Description", 32000, type="textarea"),
                    currency,
                ),
            ),
            SObjectDef(
                "Product2",
                "Product",
                "Products",
                KEY_PREFIXES["Product2"],
                (
                    _text("Name", "Product Name", nillable=False, required=True),
                    _text("ProductCode", "Product Code"),
                    _text("Description", "Product Description", 4000, type="textarea"),
                    _flag("IsActive", "Active"),
                    _text("Family", "Product Family", 40, type="picklist"),
                    currency,
                ),
                (ChildRelationship("PricebookEntries", "PricebookEntry", "Product2Id"),),
            ),
            SObjectDef(
                "Pricebook2",
                "Price Book",
                "Price Books",
                KEY_PREFIXES["Pricebook2"],
                (
                    _text("Name", "Price Book Name", nillable=False, required=True),
                    _flag("IsActive", "Active"),
                    _readonly(_flag("IsStandard", "Is Standard Price Book")),
                    _text("Description", "Description"),
                ),
                (ChildRelationship("PricebookEntries", "PricebookEntry", "Pricebook2Id"),),
            ),
            SObjectDef(
                "PricebookEntry",
                "Price Book Entry",
                "Price Book Entries",
                KEY_PREFIXES["PricebookEntry"],
                (
                    _readonly(_text("Name", "Product Name")),
                    _ref(
                        "Pricebook2Id",
                        "Price Book ID",
                        "Pricebook2",
                        nillable=False,
                        required=True,
                        updateable=False,
                    ),
                    _ref(
                        "Product2Id",
                        "Product ID",
                        "Product2",
                        nillable=False,
                        required=True,
                        updateable=False,
                    ),
                    _readonly(_text("ProductCode", "Product Code")),
                    _money("UnitPrice", "List Price", nillable=False, required=True),
                    _flag("IsActive", "Active"),
                    replace(currency, updateable=False),
                ),
            ),
            SObjectDef(
                "Opportunity",
                "Opportunity",
                "Opportunities",
                KEY_PREFIXES["Opportunity"],
                (
                    _text("Name", "Name", 120, nillable=False, required=True),
                    _ref("AccountId", "Account ID", "Account"),
                    _text(
                        "StageName",
                        "Stage",
                        40,
                        type="picklist",
                        picklist=stage_names,
                        restricted=True,
                        nillable=False,
                        required=True,
                    ),
                    FieldDef("CloseDate", "date", "Close Date", nillable=False, required=True),
                    _money("Amount", "Amount"),
                    FieldDef("Probability", "percent", "Probability (%)", precision=3),
                    _readonly(_flag("IsClosed", "Closed")),
                    _readonly(_flag("IsWon", "Won")),
                    _readonly(
                        _text(
                            "ForecastCategoryName",
                            "Forecast Category",
                            40,
                            type="picklist",
                            picklist=("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
                        )
                    ),
                    _text(
                        "Type",
                        "Opportunity Type",
                        40,
                        type="picklist",
                        picklist=(
                            "New Customer",
                            "Existing Customer - Upgrade",
                            "Existing Customer - Replacement",
                            "Existing Customer - Downgrade",
                        ),
                    ),
                    _text("LeadSource", "Lead Source", 40, type="picklist"),
                    _text("NextStep", "Next Step"),
                    _text("Description", "Description", 32000, type="textarea"),
                    _ref("Pricebook2Id", "Price Book ID", "Pricebook2"),
                    _readonly(_flag("HasOpportunityLineItem", "Has Line Item")),
                    currency,
                ),
                (
                    ChildRelationship(
                        "OpportunityLineItems", "OpportunityLineItem", "OpportunityId"
                    ),
                ),
            ),
            SObjectDef(
                "OpportunityLineItem",
                "Opportunity Product",
                "Opportunity Product",
                KEY_PREFIXES["OpportunityLineItem"],
                (
                    _ref(
                        "OpportunityId",
                        "Opportunity ID",
                        "Opportunity",
                        nillable=False,
                        required=True,
                        updateable=False,
                    ),
                    _ref(
                        "PricebookEntryId",
                        "Price Book Entry ID",
                        "PricebookEntry",
                        nillable=False,
                        required=True,
                        updateable=False,
                    ),
                    _readonly(_ref("Product2Id", "Product ID", "Product2")),
                    _readonly(_text("Name", "Opportunity Product Name", 376)),
                    _readonly(_text("ProductCode", "Product Code")),
                    FieldDef(
                        "Quantity",
                        "double",
                        "Quantity",
                        precision=12,
                        scale=2,
                        nillable=False,
                        required=True,
                    ),
                    _money("UnitPrice", "Sales Price"),
                    _readonly(_money("ListPrice", "List Price")),
                    _money("TotalPrice", "Total Price"),
                    FieldDef("Discount", "percent", "Discount", precision=5, scale=2),
                    FieldDef("ServiceDate", "date", "Date"),
                    _text("Description", "Line Description"),
                    _readonly(currency),
                ),
            ),
        ]
