"""Salesforce JSON for records, save results, describes, limits and change notifications."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from simulators.crm.models import Record, sf_datetime, to_json
from simulators.crm.schema import FieldDef, Schema, SObjectDef

Json = dict[str, Any]

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def record_url(version: str, sobject: str, record_id: str) -> str:
    return f"/services/data/{version}/sobjects/{sobject}/{record_id}"


def attributes(version: str, sobject: str, record_id: str) -> Json:
    return {"type": sobject, "url": record_url(version, sobject, record_id)}


def record(
    obj: SObjectDef, rec: Record, version: str, fields: Iterable[FieldDef] | None = None
) -> Json:
    """The record as retrieve returns it: attributes, then every (or every asked) field.

    ``Id`` is always included, as Salesforce includes it when ``fields`` names others.
    """
    chosen = list(obj.fields if fields is None else fields)
    id_field = obj.field("Id")
    if id_field is not None and id_field not in chosen:
        chosen.insert(0, id_field)
    out: Json = {"attributes": attributes(version, obj.name, rec.id)}
    for f in chosen:
        out[f.name] = to_json(f, rec.fields.get(f.name))
    return out


def save_result(record_id: str) -> Json:
    return {"id": record_id, "success": True, "errors": []}


def upsert_result(record_id: str, created: bool) -> Json:
    return {"id": record_id, "success": True, "errors": [], "created": created}


# describe ----------------------------------------------------------------------------------
def _field(f: FieldDef) -> Json:
    numeric = f.type in ("currency", "double", "percent", "int")
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": f.length,
        "precision": f.precision if numeric and f.type != "int" else 0,
        "scale": f.scale if numeric else 0,
        "digits": f.precision if f.type == "int" else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.default is not None,
        "custom": f.custom,
        "externalId": f.external_id,
        "unique": f.unique,
        "idLookup": f.name == "Id" or f.external_id,
        "calculated": False,
        "filterable": True,
        "sortable": f.type != "textarea" or f.length <= 255,
        "referenceTo": [f.reference_to] if f.reference_to else [],
        "relationshipName": f.relationship_name,
        "restrictedPicklist": f.restricted,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == f.default,
                "label": value,
                "value": value,
                "validFor": None,
            }
            for value in f.picklist
        ],
    }


def _urls(version: str, name: str) -> Json:
    base = f"/services/data/{version}/sobjects/{name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def _basic(obj: SObjectDef, version: str) -> Json:
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "urls": _urls(version, obj.name),
    }


def describe(obj: SObjectDef, version: str) -> Json:
    return {
        **_basic(obj, version),
        "fields": [_field(f) for f in obj.fields],
        "childRelationships": [
            {
                "childSObject": c.child,
                "field": c.field,
                "relationshipName": c.name,
                "cascadeDelete": c.cascade_delete,
            }
            for c in obj.children
        ],
    }


def describe_global(schema: Schema, version: str) -> Json:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_basic(obj, version) for obj in schema.objects.values()],
    }


def sobject_info(obj: SObjectDef, version: str, recent: list[Record]) -> Json:
    named = obj.field("Name") is not None
    return {
        "objectDescribe": _basic(obj, version),
        "recentItems": [
            {
                "attributes": attributes(version, obj.name, r.id),
                "Id": r.id,
                **({"Name": r.fields.get("Name")} if named else {}),
            }
            for r in recent
        ],
    }


def notification(
    *,
    organization_id: str,
    action_id: str,
    notification_id: str,
    event_type: str,
    created_ms: int,
    body: Json,
) -> Json:
    """Outbound-message-style push, in JSON instead of SOAP: ids, the trigger and the record."""
    return {
        "organizationId": organization_id,
        "actionId": action_id,
        "notificationId": notification_id,
        "eventType": event_type,
        "sObjectType": body["attributes"]["type"],
        "createdDate": sf_datetime(created_ms),
        "sObject": body,
    }
