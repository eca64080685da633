"""The billing contract is a well-formed OpenAPI 3.0.3 document with the agreed conventions.

The expected operations are written out here independently of the document, so a renamed,
missing, duplicated or extra operation fails loudly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from connexion.spec import OpenAPISpecification, Specification

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "openapi" / "billing.yaml"
METHODS = ("get", "post", "delete", "put", "patch", "head", "options", "trace")
FORM = "application/x-www-form-urlencoded"

# operationId -> (method, path), written independently of the document.
EXPECTED: dict[str, tuple[str, str]] = {
    # customers
    "createCustomer": ("post", "/v1/customers"),
    "listCustomers": ("get", "/v1/customers"),
    "retrieveCustomer": ("get", "/v1/customers/{customer}"),
    "updateCustomer": ("post", "/v1/customers/{customer}"),
    "deleteCustomer": ("delete", "/v1/customers/{customer}"),
    "listCustomerPaymentMethods": ("get", "/v1/customers/{customer}/payment_methods"),
    # customers' tax ids
    "createCustomerTaxId": ("post", "/v1/customers/{customer}/tax_ids"),
    "listCustomerTaxIds": ("get", "/v1/customers/{customer}/tax_ids"),
    "retrieveCustomerTaxId": ("get", "/v1/customers/{customer}/tax_ids/{id}"),
    "deleteCustomerTaxId": ("delete", "/v1/customers/{customer}/tax_ids/{id}"),
    # discounts
    "createCoupon": ("post", "/v1/coupons"),
    "listCoupons": ("get", "/v1/coupons"),
    "retrieveCoupon": ("get", "/v1/coupons/{coupon}"),
    "updateCoupon": ("post", "/v1/coupons/{coupon}"),
    "deleteCoupon": ("delete", "/v1/coupons/{coupon}"),
    "createPromotionCode": ("post", "/v1/promotion_codes"),
    "listPromotionCodes": ("get", "/v1/promotion_codes"),
    "retrievePromotionCode": ("get", "/v1/promotion_codes/{promotion_code}"),
    "updatePromotionCode": ("post", "/v1/promotion_codes/{promotion_code}"),
    "deleteCustomerDiscount": ("delete", "/v1/customers/{customer}/discount"),
    "deleteSubscriptionDiscount": (
        "delete",
        "/v1/subscriptions/{subscription_exposed_id}/discount",
    ),
    # tax rates
    "createTaxRate": ("post", "/v1/tax_rates"),
    "listTaxRates": ("get", "/v1/tax_rates"),
    "retrieveTaxRate": ("get", "/v1/tax_rates/{tax_rate}"),
    "updateTaxRate": ("post", "/v1/tax_rates/{tax_rate}"),
    # payment methods
    "retrievePaymentMethod": ("get", "/v1/payment_methods/{payment_method}"),
    "attachPaymentMethod": ("post", "/v1/payment_methods/{payment_method}/attach"),
    "detachPaymentMethod": ("post", "/v1/payment_methods/{payment_method}/detach"),
    # products
    "createProduct": ("post", "/v1/products"),
    "listProducts": ("get", "/v1/products"),
    "retrieveProduct": ("get", "/v1/products/{id}"),
    "updateProduct": ("post", "/v1/products/{id}"),
    # prices
    "createPrice": ("post", "/v1/prices"),
    "listPrices": ("get", "/v1/prices"),
    "retrievePrice": ("get", "/v1/prices/{price}"),
    "updatePrice": ("post", "/v1/prices/{price}"),
    # subscriptions
    "createSubscription": ("post", "/v1/subscriptions"),
    "listSubscriptions": ("get", "/v1/subscriptions"),
    "retrieveSubscription": ("get", "/v1/subscriptions/{subscription_exposed_id}"),
    "updateSubscription": ("post", "/v1/subscriptions/{subscription_exposed_id}"),
    "cancelSubscription": ("delete", "/v1/subscriptions/{subscription_exposed_id}"),
    # subscription items
    "createSubscriptionItem": ("post", "/v1/subscription_items"),
    "listSubscriptionItems": ("get", "/v1/subscription_items"),
    "retrieveSubscriptionItem": ("get", "/v1/subscription_items/{item}"),
    "updateSubscriptionItem": ("post", "/v1/subscription_items/{item}"),
    "deleteSubscriptionItem": ("delete", "/v1/subscription_items/{item}"),
    # invoices
    "createInvoice": ("post", "/v1/invoices"),
    "listInvoices": ("get", "/v1/invoices"),
    "retrieveInvoice": ("get", "/v1/invoices/{invoice}"),
    "updateInvoice": ("post", "/v1/invoices/{invoice}"),
    "finalizeInvoice": ("post", "/v1/invoices/{invoice}/finalize"),
    "payInvoice": ("post", "/v1/invoices/{invoice}/pay"),
    "voidInvoice": ("post", "/v1/invoices/{invoice}/void"),
    "markInvoiceUncollectible": ("post", "/v1/invoices/{invoice}/mark_uncollectible"),
    "createInvoicePreview": ("post", "/v1/invoices/create_preview"),
    "listInvoiceLineItems": ("get", "/v1/invoices/{invoice}/lines"),
    # invoice items
    "createInvoiceItem": ("post", "/v1/invoiceitems"),
    "listInvoiceItems": ("get", "/v1/invoiceitems"),
    "retrieveInvoiceItem": ("get", "/v1/invoiceitems/{invoiceitem}"),
    "deleteInvoiceItem": ("delete", "/v1/invoiceitems/{invoiceitem}"),
    # credit notes
    "createCreditNote": ("post", "/v1/credit_notes"),
    "listCreditNotes": ("get", "/v1/credit_notes"),
    "retrieveCreditNote": ("get", "/v1/credit_notes/{id}"),
    "voidCreditNote": ("post", "/v1/credit_notes/{id}/void"),
    # billing meters
    "createBillingMeter": ("post", "/v1/billing/meters"),
    "listBillingMeters": ("get", "/v1/billing/meters"),
    "retrieveBillingMeter": ("get", "/v1/billing/meters/{id}"),
    "listBillingMeterEventSummaries": ("get", "/v1/billing/meters/{id}/event_summaries"),
    "createBillingMeterEvent": ("post", "/v1/billing/meter_events"),
    # test clocks
    "createTestClock": ("post", "/v1/test_helpers/test_clocks"),
    "listTestClocks": ("get", "/v1/test_helpers/test_clocks"),
    "retrieveTestClock": ("get", "/v1/test_helpers/test_clocks/{test_clock}"),
    "deleteTestClock": ("delete", "/v1/test_helpers/test_clocks/{test_clock}"),
    "advanceTestClock": ("post", "/v1/test_helpers/test_clocks/{test_clock}/advance"),
    # events
    "listEvents": ("get", "/v1/events"),
    "retrieveEvent": ("get", "/v1/events/{id}"),
    # webhook endpoints
    "createWebhookEndpoint": ("post", "/v1/webhook_endpoints"),
    "listWebhookEndpoints": ("get", "/v1/webhook_endpoints"),
    "retrieveWebhookEndpoint": ("get", "/v1/webhook_endpoints/{webhook_endpoint}"),
    "updateWebhookEndpoint": ("post", "/v1/webhook_endpoints/{webhook_endpoint}"),
    "deleteWebhookEndpoint": ("delete", "/v1/webhook_endpoints/{webhook_endpoint}"),
}
PAYMENT_OPERATIONS = {"payInvoice", "createSubscription", "updateSubscription"}
REQUIRED_STATUSES = ("200", "400", "401", "404", "409", "429", "503")
# Request-body objects whose keys are free-form (values constrained instead of keys).
FREE_FORM_KEYS = {"metadata", "payload"}


# fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text() -> str:
    return CONTRACT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def spec() -> Specification:
    # Validates against the OpenAPI 3.0 schema (and checks defaults) or raises.
    return Specification.load(str(CONTRACT))


@pytest.fixture(scope="module")
def resolved(spec: Specification) -> dict[str, Any]:
    doc = spec.spec  # every $ref inlined by connexion
    assert isinstance(doc, dict)
    return doc


# helpers -----------------------------------------------------------------------------------
def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def pointer(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are allowed: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def deref(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
    return node


def walk(node: Any, trail: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield trail, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*trail, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*trail, str(index)))


def object_schemas(
    schema: Any, trail: tuple[str, ...] = ()
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema with properties inside an (already resolved) request schema."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object" and "properties" in schema:
        yield ".".join(trail) or "<body>", schema
    for name, sub in schema.get("properties", {}).items():
        yield from object_schemas(sub, (*trail, name))
    if isinstance(schema.get("items"), dict):
        yield from object_schemas(schema["items"], (*trail, "[]"))
    for combinator in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(combinator, []):
            yield from object_schemas(sub, trail)


# the document loads and validates ----------------------------------------------------------
def test_loads_and_validates_as_openapi_3_0_3(spec: Specification, raw: dict[str, Any]) -> None:
    assert isinstance(spec, OpenAPISpecification)
    assert raw["openapi"] == "3.0.3"
    assert spec.version == (3, 0, 3)


def test_jinja_rendering_leaves_the_document_unchanged(text: str, raw: dict[str, Any]) -> None:
    # connexion renders the file through Jinja2 before parsing it
    assert yaml.safe_load(jinja2.Template(text).render()) == raw


def test_info_and_simulator_choices(raw: dict[str, Any]) -> None:
    info = raw["info"]
    assert info["title"] == "Billing simulator (Stripe-compatible subset)"
    assert info["version"] == "2026-10-28.endive"
    description = info["description"].lower()
    for choice in ("half-up", "per line", "deterministic", "seed", "simulator's clock"):
        assert choice in description, choice


def test_security_schemes(raw: dict[str, Any]) -> None:
    schemes = raw["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["basicAuth"] == {**schemes["basicAuth"], "type": "http", "scheme": "basic"}
    assert raw["security"] == [{"bearerAuth": []}, {"basicAuth": []}]
    assert all("security" not in op for _, _, op in operations(raw))


def test_every_ref_resolves(raw: dict[str, Any]) -> None:
    refs = [
        (trail, node["$ref"])
        for trail, node in walk(raw)
        if isinstance(node, dict) and "$ref" in node
    ]
    assert refs
    for trail, ref in refs:
        assert isinstance(ref, str), trail
        pointer(raw, ref)


def test_every_component_schema_is_used(raw: dict[str, Any]) -> None:
    used = {node["$ref"] for _, node in walk(raw) if isinstance(node, dict) and "$ref" in node}
    unused = {f"#/components/schemas/{n}" for n in raw["components"]["schemas"]} - used
    assert not unused


# operations --------------------------------------------------------------------------------
def test_operation_ids_exactly_once_each(raw: dict[str, Any]) -> None:
    found = [op.get("operationId") for _, _, op in operations(raw)]
    duplicates = {name: n for name, n in Counter(found).items() if n > 1}
    assert not duplicates
    assert set(found) == set(EXPECTED), {
        "missing": sorted(set(EXPECTED) - set(found)),
        "unexpected": sorted(set(found) - set(EXPECTED), key=str),
    }


def test_operations_sit_on_stripe_paths(raw: dict[str, Any]) -> None:
    located = {op["operationId"]: (method, path) for path, method, op in operations(raw)}
    assert located == EXPECTED


def test_operation_ids_are_camel_case(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+", op["operationId"]), op["operationId"]


def test_static_paths_precede_templated_siblings(raw: dict[str, Any]) -> None:
    # connexion registers routes in document order; /v1/invoices/create_preview must win
    order = list(raw["paths"])
    for i, templated in enumerate(order):
        for static in order[i + 1 :]:
            a, b = templated.split("/"), static.split("/")
            if len(a) != len(b):
                continue
            diff = [k for k, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
            if len(diff) == 1 and a[diff[0]].startswith("{") and not b[diff[0]].startswith("{"):
                pytest.fail(f"{static} must come before {templated}")


def test_path_parameters_are_declared(resolved: dict[str, Any]) -> None:
    for path, item in resolved["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == declared, path
        assert all(p["required"] for p in item.get("parameters", []) if p["in"] == "path")


# request bodies ----------------------------------------------------------------------------
def test_post_bodies_are_closed_forms_with_expand(resolved: dict[str, Any]) -> None:
    posts = [op for _, method, op in operations(resolved) if method == "post"]
    assert len(posts) == sum(1 for method, _ in EXPECTED.values() if method == "post")
    for op in posts:
        name = op["operationId"]
        body = op.get("requestBody")
        assert body is not None, name
        assert list(body["content"]) == [FORM], name
        schema = body["content"][FORM]["schema"]
        assert schema["type"] == "object", name
        assert schema["additionalProperties"] is False, name
        assert schema["properties"]["expand"] == {
            "type": "array",
            "items": {"type": "string", "maxLength": 5000},
        }, name
        must = bool(schema.get("required")) or any("required" in s for s in schema.get("anyOf", []))
        assert body.get("required", False) is must, f"{name}: body required must be {must}"
        for key in schema.get("required", []):
            assert key in schema["properties"], (name, key)


def test_nested_request_objects_are_closed(resolved: dict[str, Any]) -> None:
    for _, method, op in operations(resolved):
        if method != "post":
            continue
        schema = op["requestBody"]["content"][FORM]["schema"]
        for where, sub in object_schemas(schema):
            if where.split(".")[-1] in FREE_FORM_KEYS:
                assert isinstance(sub["additionalProperties"], dict), (op["operationId"], where)
            else:
                assert sub.get("additionalProperties") is False, (op["operationId"], where)


def test_metadata_parameters(raw: dict[str, Any], resolved: dict[str, Any]) -> None:
    unsettable = raw["components"]["schemas"]["metadata_param"]
    assert unsettable["anyOf"] == [
        {"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}},
        {"type": "string", "enum": [""]},
    ]
    for _, method, op in operations(resolved):
        if method != "post":
            continue
        schema = op["requestBody"]["content"][FORM]["schema"]
        for where, sub in object_schemas(schema):
            if "metadata" in sub["properties"]:
                meta = sub["properties"]["metadata"]
                branches = meta.get("anyOf", [meta])
                assert {"type": "string", "maxLength": 500} in [
                    b.get("additionalProperties") for b in branches
                ], (op["operationId"], where)


def test_non_scalar_form_fields_use_deep_object_encoding(resolved: dict[str, Any]) -> None:
    for _, method, op in operations(resolved):
        if method != "post":
            continue
        media = op["requestBody"]["content"][FORM]
        for name, prop in media["schema"]["properties"].items():
            branches = prop.get("anyOf", [prop])
            if any(b.get("type") in ("object", "array") for b in branches):
                encoding = media.get("encoding", {}).get(name)
                assert encoding == {"style": "deepObject", "explode": True}, (
                    op["operationId"],
                    name,
                )


# query parameters --------------------------------------------------------------------------
def params_of(resolved: dict[str, Any], path: str, op: dict[str, Any]) -> dict[str, Any]:
    every = [*resolved["paths"][path].get("parameters", []), *op.get("parameters", [])]
    return {p["name"]: p for p in every if p["in"] == "query"}


def test_query_parameter_conventions(resolved: dict[str, Any]) -> None:
    for path, method, op in operations(resolved):
        query = params_of(resolved, path, op)
        if method == "post":
            assert not query, op["operationId"]
        if "expand" in query:
            expand = query["expand"]
            assert (expand["style"], expand["explode"]) == ("form", True)
            assert expand["schema"]["type"] == "array"
            assert expand["schema"]["items"]["type"] == "string"
        for name in ("created",):
            if name in query:
                param = query[name]
                assert (param["style"], param["explode"]) == ("deepObject", True)
                props = param["schema"]["properties"]
                assert set(props) == {"gt", "gte", "lt", "lte"}
                assert all(p["type"] == "integer" for p in props.values())
        if op["operationId"].startswith("list"):
            limit = query["limit"]["schema"]
            assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
                "integer",
                1,
                100,
                10,
            ), op["operationId"]
            for cursor in ("starting_after", "ending_before"):
                assert query[cursor]["schema"]["type"] == "string", op["operationId"]
            assert "expand" in query, op["operationId"]
        elif method == "get":
            assert set(query) == {"expand"}, op["operationId"]


def test_list_filters(resolved: dict[str, Any]) -> None:
    expected_filters = {
        "listCustomers": {"email", "test_clock", "created"},
        "listProducts": {"active"},
        "listPrices": {"product", "active", "type", "lookup_keys"},
        "listSubscriptions": {"customer", "price", "status", "test_clock", "created"},
        "listSubscriptionItems": {"subscription"},
        "listInvoices": {"customer", "subscription", "status", "created"},
        "listInvoiceItems": {"customer", "invoice", "pending"},
        "listCreditNotes": {"invoice", "customer"},
        "listBillingMeterEventSummaries": {"customer", "start_time", "end_time"},
        "listEvents": {"type", "types", "created"},
    }
    for path, _, op in operations(resolved):
        name = op["operationId"]
        if name in expected_filters:
            assert expected_filters[name] <= set(params_of(resolved, path, op)), name
    by_name = {op["operationId"]: (path, op) for path, _, op in operations(resolved)}
    path, op = by_name["listSubscriptions"]
    assert "all" in params_of(resolved, path, op)["status"]["schema"]["enum"]
    path, op = by_name["listSubscriptionItems"]
    assert params_of(resolved, path, op)["subscription"]["required"] is True
    path, op = by_name["listBillingMeterEventSummaries"]
    summary_params = params_of(resolved, path, op)
    for name in ("customer", "start_time", "end_time"):
        assert summary_params[name]["required"] is True
    for name in ("start_time", "end_time"):
        assert summary_params[name]["schema"]["type"] == "integer"


def test_delete_parameters_travel_in_the_query(resolved: dict[str, Any]) -> None:
    by_name = {op["operationId"]: (path, op) for path, _, op in operations(resolved)}
    path, op = by_name["cancelSubscription"]
    assert set(params_of(resolved, path, op)) == {"invoice_now", "prorate", "expand"}
    path, op = by_name["deleteSubscriptionItem"]
    assert set(params_of(resolved, path, op)) == {
        "proration_behavior",
        "proration_date",
        "clear_usage",
    }
    for _, method, op in operations(resolved):
        if method == "delete":
            assert "requestBody" not in op, op["operationId"]


# responses ---------------------------------------------------------------------------------
def test_every_operation_declares_the_standard_responses(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        name = op["operationId"]
        statuses = set(op["responses"])
        assert set(REQUIRED_STATUSES) <= statuses, (name, sorted(statuses))
        assert ("402" in statuses) is (name in PAYMENT_OPERATIONS), name


def test_success_responses_are_json_objects_from_components(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        ok = deref(raw, op["responses"]["200"])
        schema = ok["content"]["application/json"]["schema"]
        assert list(ok["content"]) == ["application/json"], op["operationId"]
        # One component, or a choice of components (a customer or its deleted form).
        refs = [branch["$ref"] for branch in schema.get("oneOf", [schema])]
        assert all(ref.startswith("#/components/schemas/") for ref in refs), op["operationId"]


def test_every_response_declares_request_id(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        for status, response in op["responses"].items():
            headers = deref(raw, response).get("headers", {})
            request_id = deref(raw, headers.get("Request-Id"))
            assert request_id and request_id["schema"]["type"] == "string", (
                op["operationId"],
                status,
            )


def test_throttle_and_outage_headers(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        throttled = deref(raw, op["responses"]["429"])
        headers = {k: deref(raw, v) for k, v in throttled["headers"].items()}
        assert headers["Retry-After"]["schema"]["type"] == "integer"
        assert headers["Stripe-Should-Retry"]["schema"] == {
            "type": "string",
            "enum": ["true", "false"],
        }
        assert "fault layer" in throttled["description"]
        outage = deref(raw, op["responses"]["503"])
        assert deref(raw, outage["headers"]["Retry-After"])["schema"]["type"] == "integer"
        assert "fault layer" in outage["description"]


def test_error_responses_use_the_stripe_envelope(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        for status, response in op["responses"].items():
            if status == "200":
                continue
            schema = deref(raw, response)["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/error"}, (op["operationId"], status)
    envelope = deref(raw, raw["components"]["schemas"]["error"]["properties"]["error"])
    assert set(envelope["required"]) == {"type", "message"}
    assert set(envelope["properties"]["type"]["enum"]) == {
        "api_error",
        "card_error",
        "idempotency_error",
        "invalid_request_error",
    }
    # Stripe leaves unset fields out rather than sending null.
    for field in ("code", "param", "doc_url", "decline_code"):
        assert "nullable" not in envelope["properties"][field], field


def test_links_point_at_declared_operations(raw: dict[str, Any]) -> None:
    links = [
        (op["operationId"], link)
        for _, _, op in operations(raw)
        for link in deref(raw, op["responses"]["200"]).get("links", {}).values()
    ]
    assert links
    for source, link in links:
        assert link["operationId"] in EXPECTED, (source, link)
        assert "parameters" in link or "requestBody" in link, (source, link)
    sources = {(source, link["operationId"]) for source, link in links}
    for pair in [
        ("createCustomer", "retrieveCustomer"),
        ("createCustomer", "updateCustomer"),
        ("createProduct", "createPrice"),
        ("createSubscription", "retrieveSubscription"),
        ("createTestClock", "advanceTestClock"),
        ("createWebhookEndpoint", "deleteWebhookEndpoint"),
    ]:
        assert pair in sources, pair


# object schemas ----------------------------------------------------------------------------
def test_objects_list_their_always_present_fields(raw: dict[str, Any]) -> None:
    schemas = raw["components"]["schemas"]
    for name, schema in schemas.items():
        props = schema.get("properties", {})
        if "object" not in props:
            continue
        assert set(schema["required"]) <= set(props), name
        assert "object" in schema["required"], name
        if "livemode" in schema["required"]:
            assert deref(raw, props["livemode"]) == {"type": "boolean", "enum": [False]}, name


def test_list_and_deleted_schemas(raw: dict[str, Any]) -> None:
    schemas = raw["components"]["schemas"]
    lists = [name for name in schemas if name.endswith("_list")]
    assert "customer_list" in lists
    for name in lists:
        schema = schemas[name]
        assert set(schema["required"]) == {"object", "url", "has_more", "data"}, name
        assert schema["properties"]["object"]["enum"] == ["list"], name
        item = schema["properties"]["data"]["items"]["$ref"]
        assert item == f"#/components/schemas/{name.removesuffix('_list')}", name
    deleted = [name for name in schemas if name.startswith("deleted_")]
    assert set(deleted) == {
        "deleted_customer",
        "deleted_coupon",
        "deleted_discount",
        "deleted_subscription_item",
        "deleted_invoiceitem",
        "deleted_tax_id",
        "deleted_test_helpers.test_clock",
        "deleted_webhook_endpoint",
    }
    for name in deleted:
        schema = schemas[name]
        assert schema["properties"]["deleted"]["enum"] == [True], name
        assert schema["properties"]["object"]["enum"] == [name.removeprefix("deleted_")], name


def test_timestamps_and_amounts_are_integers(resolved: dict[str, Any]) -> None:
    integer_fields = {
        "created",
        "updated",
        "amount",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "subtotal",
        "total",
        "unit_amount",
        "balance",
        "frozen_time",
        "period_start",
        "period_end",
        "current_period_start",
        "current_period_end",
    }
    for name, schema in resolved["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if field in integer_fields:
                assert prop["type"] == "integer", (name, field)
