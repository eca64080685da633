"""The diff engine on small documents: inputs, $ref and cycles, allOf, unions, usage matching."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from harness.contracts.diff import (
    FOR_US,
    IN_GENERAL,
    Change,
    Document,
    InputError,
    Level,
    OperationRef,
    Usage,
    apply_usage,
    diff_documents,
    field_segments,
    parse_document,
    render_field,
    touches,
)


def doc(paths: str | dict[str, Any], components: str = "{}", openapi: str = "3.0.3") -> Document:
    data = {
        "openapi": openapi,
        "info": {"title": "t", "version": "1"},
        "paths": yaml.safe_load(paths) if isinstance(paths, str) else paths,
        "components": yaml.safe_load(components),
    }
    return Document("doc", data)


def response(schema: str) -> dict[str, Any]:
    media = {"application/json": {"schema": yaml.safe_load(schema)}}
    ok = {"description": "ok", "content": media}
    return {"/things": {"get": {"operationId": "listThings", "responses": {"200": ok}}}}


def request(schema: str) -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": yaml.safe_load(schema)}}}
    return {"/things": {"post": {"operationId": "makeThing", "requestBody": body}}}


def rules(old: Document, new: Document) -> list[str]:
    return [c.rule for c in diff_documents(old, new)]


# Inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("- a\n- b\n", "not a mapping"),
        ("swagger: '2.0'\ninfo: {}\n", "Swagger 2.0"),
        ("info: {title: x}\n", "no `openapi: 3.x` field"),
        ("openapi: 2.0.0\n", "OpenAPI 2.0.0 is not supported"),
        ("openapi: [3\n", "not valid YAML or JSON"),
    ],
)
def test_documents_that_are_not_openapi_3_are_refused_with_a_reason(
    text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        parse_document(text, "x.yaml")


def test_yaml_integer_status_codes_and_json_text_parse_alike() -> None:
    yaml_doc = parse_document(
        "openapi: 3.1.0\npaths: {/a: {get: {responses: {200: {description: ok}}}}}", "a"
    )
    json_doc = parse_document(
        '{"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": '
        '{"200": {"description": "ok"}}}}}}',
        "b",
    )
    assert yaml_doc.data == json_doc.data
    assert diff_documents(yaml_doc, json_doc) == []


def test_a_dangling_ref_or_a_ref_loop_is_an_input_error() -> None:
    dangling = doc(response("{$ref: '#/components/schemas/Missing'}"))
    with pytest.raises(InputError, match="does not resolve"):
        diff_documents(dangling, dangling)
    loop = doc(
        response("{$ref: '#/components/schemas/A'}"),
        "{schemas: {A: {$ref: '#/components/schemas/B'}, B: {$ref: '#/components/schemas/A'}}}",
    )
    with pytest.raises(InputError, match="loop"):
        diff_documents(loop, loop)


# $ref, cycles, allOf, unions ----------------------------------------------------------------


def cycle(name_type: str) -> str:
    """Node -> Other -> Node (and a list of Nodes): mutually recursive components."""
    return f"""
schemas:
  Node:
    type: object
    properties:
      name: {{type: {name_type}}}
      next: {{$ref: '#/components/schemas/Other'}}
  Other:
    type: object
    properties:
      back: {{$ref: '#/components/schemas/Node'}}
      items: {{type: array, items: {{$ref: '#/components/schemas/Node'}}}}
"""


def test_mutually_recursive_schemas_terminate_and_report_once_per_operation() -> None:
    old = doc(response("{$ref: '#/components/schemas/Node'}"), cycle("string"))
    new = doc(response("{$ref: '#/components/schemas/Node'}"), cycle("integer"))
    assert diff_documents(old, old) == []
    changes = diff_documents(old, new)
    assert [(c.rule, c.field) for c in changes] == [("response.property.type-changed", "name")]


def test_a_renamed_component_with_the_same_shape_is_no_change() -> None:
    old = doc(
        request("{$ref: '#/components/schemas/A'}"),
        "{schemas: {A: {type: object, properties: {x: {type: string}}}}}",
    )
    new = doc(
        request("{$ref: '#/components/schemas/B'}"),
        "{schemas: {B: {type: object, properties: {x: {type: string}}}}}",
    )
    assert rules(old, new) == []


def test_allof_parts_are_merged_before_comparing() -> None:
    old = doc(
        request(
            "{allOf: [{$ref: '#/components/schemas/Base'}, {properties: {b: {type: string}}}]}"
        ),
        "{schemas: {Base: {type: object, properties: {a: {type: string}}}}}",
    )
    flat = doc(request("{type: object, properties: {a: {type: string}, b: {type: string}}}"))
    # The meaning is the same; the allOf as written lost both parts (oasdiff warns of each).
    assert rules(old, flat) == ["request.property.all-of-removed"] * 2
    narrowed = doc(
        request(
            "{allOf: [{$ref: '#/components/schemas/Base'}, "
            "{required: [b], properties: {b: {type: string}}}]}"
        ),
        "{schemas: {Base: {type: object, properties: {a: {type: string}}}}}",
    )
    assert rules(old, narrowed) == ["request.property.became-required"]


def test_a_plain_schema_becoming_a_union_is_one_branch_added() -> None:
    plain = "{type: object, properties: {price: {type: string, maxLength: 10}}}"
    union = (
        "{type: object, properties: "
        "{price: {anyOf: [{type: string, maxLength: 10}, {type: integer}]}}}"
    )
    assert rules(doc(request(plain)), doc(request(union))) == [
        "request.property.any-of-branch-added"
    ]
    assert rules(doc(request(union)), doc(request(plain))) == [
        "request.property.any-of-branch-removed"
    ]
    [widened] = diff_documents(doc(response(plain)), doc(response(union)))
    # oasdiff grades an anyOf branch added to a response info (response-property-any-of-added).
    assert (widened.rule, widened.level) == ("response.property.any-of-branch-added", Level.INFO)


def test_composition_is_graded_as_oasdiff_grades_it() -> None:
    plain = "{type: object, properties: {a: {type: string}}}"
    wrapped = f"{{oneOf: [{plain}, {{type: integer}}]}}"
    # Wrapped in a oneOf: breaking both ways (request- and response-body-wrapped-in-one-of).
    assert rules(doc(request(plain)), doc(request(wrapped))) == [
        "request.property.wrapped-in-one-of"
    ]
    assert rules(doc(response(plain)), doc(response(wrapped))) == [
        "response.property.wrapped-in-one-of"
    ]
    # Wrapped in an allOf of itself: the same schema, no change at all.
    assert rules(doc(request(plain)), doc(request(f"{{allOf: [{plain}]}}"))) == []
    # A constraint added through allOf: the structural rule and what it means.
    capped = "{type: object, properties: {a: {type: string, allOf: [{maxLength: 3}]}}}"
    assert rules(doc(request(plain)), doc(request(capped))) == [
        "request.property.all-of-added",
        "request.property.max-length-decreased",
    ]
    assert [
        (c.rule, c.level) for c in diff_documents(doc(response(plain)), doc(response(capped)))
    ] == [
        ("response.property.all-of-added", Level.INFO),
        ("response.property.max-length-decreased", Level.INFO),
    ]


def test_a_changed_branch_is_compared_inside_not_reported_as_removed_and_added() -> None:
    old = doc(
        request("{oneOf: [{$ref: '#/components/schemas/Card'}, {type: string, maxLength: 20}]}"),
        "{schemas: {Card: {type: object}}}",
    )
    new = doc(
        request("{oneOf: [{$ref: '#/components/schemas/Card'}, {type: string, maxLength: 10}]}"),
        "{schemas: {Card: {type: object}}}",
    )
    assert rules(old, new) == ["request.property.max-length-decreased"]


def test_bounds_in_30_and_31_spelling_compare_by_meaning() -> None:
    old = doc(response("{type: integer, minimum: 0, exclusiveMinimum: true}"))
    same = doc(response("{type: integer, exclusiveMinimum: 0}"), openapi="3.1.0")
    assert rules(old, same) == ["document.openapi-version-changed"]
    inclusive = doc(response("{type: integer, minimum: 0}"))
    assert rules(old, inclusive) == ["response.property.minimum-decreased"]
    assert rules(inclusive, old) == ["response.property.minimum-increased"]


def test_read_only_properties_are_ignored_in_requests_and_write_only_in_responses() -> None:
    old = doc(request("{type: object, properties: {id: {type: string, readOnly: true}}}"))
    new = doc(
        request("{type: object, required: [id], properties: {id: {type: integer, readOnly: true}}}")
    )
    assert rules(old, new) == []
    old = doc(
        response(
            "{type: object, required: [pw], properties: {pw: {type: string, writeOnly: true}}}"
        )
    )
    new = doc(response("{type: object, properties: {}}"))
    assert rules(old, new) == []


def test_header_parameters_match_case_insensitively_and_path_parameters_by_position() -> None:
    old = doc(
        "{'/a/{id}': {get: {parameters: [{name: id, in: path, required: true}, "
        "{name: X-Trace, in: header, schema: {type: string}}]}}}"
    )
    new = doc(
        "{'/a/{a_id}': {get: {parameters: [{name: a_id, in: path, required: true}, "
        "{name: x-trace, in: header, schema: {type: string}}]}}}"
    )
    assert rules(old, new) == ["path.parameter-renamed"]


def test_changes_carry_operation_location_and_field() -> None:
    old = doc(
        request(
            "{type: object, properties: {items: {type: array, "
            "items: {type: object, properties: {price: {type: string}}}}}}"
        )
    )
    new = doc(
        request(
            "{type: object, properties: {items: {type: array, "
            "items: {type: object, properties: {price: {type: integer}}}}}}"
        )
    )
    [change] = diff_documents(old, new)
    assert str(change.operation) == "POST /things (makeThing)"
    assert change.field == "items[].price"
    assert change.location == (
        "/paths/~1things/post/requestBody/content/application~1json/schema"
        "/properties/items/items/properties/price"
    )
    assert "request property 'items[].price'" in change.message


def test_field_paths_render_and_parse_back() -> None:
    for text in ("a", "items[].price", "[].id", "metadata.*", "a.b[].c[]"):
        assert render_field(field_segments(text)) == text


# Usage ----------------------------------------------------------------------------------------

OP = OperationRef("POST", "/things", "makeThing")


def change(rule: str, **kw: Any) -> Change:
    return Change(rule=rule, level=Level.BREAKING, message="m", location="/", operation=OP, **kw)


USAGE = Usage.from_json(
    {
        "operations": {
            "makeThing": {
                "request_fields": ["customer", "items[].price"],
                "response_fields": ["id", "customer.email"],
                "parameters": ["expand"],
            }
        }
    }
)


@pytest.mark.parametrize(
    ("item", "ours"),
    [
        (change("request.property.removed", field="items[].price"), True),
        (change("request.property.removed", field="coupon"), False),
        (change("request.property.max-length-decreased", field="items"), True),  # a parent we send
        (change("request.property.required-added", field="currency"), True),  # we never send it
        (change("request.property.required-added", field="shipping.city"), False),  # nor its parent
        (
            change("request.property.required-added", field="items[].tax"),
            True,
        ),  # inside items we send
        (change("request.property.became-required", field="customer"), False),  # we already send it
        (change("response.property.removed", field="customer"), True),  # parent of a field we read
        (change("response.property.removed", field="livemode"), False),
        (change("response.property.type-changed", field=""), True),  # the body itself
        (change("request.parameter.removed", parameter="expand"), True),
        (change("request.parameter.removed", parameter="limit"), False),
        (change("request.parameter.required-added", parameter="region"), True),
        (change("request.parameter.became-required", parameter="expand"), False),
        (change("response.status.success-removed"), True),  # operation-wide
        (Change("security.scheme.removed", Level.BREAKING, "m", "/"), True),  # document-wide
        (
            Change(
                "operation.removed",
                Level.BREAKING,
                "m",
                "/",
                OperationRef("GET", "/other", "other"),
            ),
            False,
        ),
    ],
)
def test_a_breaking_change_is_ours_when_it_reaches_what_we_call_send_or_read(
    item: Change, ours: bool
) -> None:
    assert touches(item, USAGE) is ours


def test_unknown_field_lists_are_assumed_to_cover_everything() -> None:
    usage = Usage.from_json({"operations": {"makeThing": {}}})
    assert touches(change("response.property.removed", field="anything"), usage)
    assert touches(change("request.parameter.removed", parameter="any"), usage)


def test_operations_are_found_by_old_id_and_by_method_and_path() -> None:
    renamed = OperationRef("POST", "/things", "createThing", old_operation_id="makeThing")
    assert USAGE.lookup(renamed) is not None
    by_path = Usage.from_json({"operations": {"POST /things": {}}})
    assert by_path.lookup(OperationRef("POST", "/things")) is not None


def test_apply_usage_marks_only_breaking_changes() -> None:
    info = Change("path.added", Level.INFO, "m", "/", OP)
    marked = apply_usage([change("request.property.removed", field="coupon"), info], USAGE)
    assert [c.impact for c in marked] == [IN_GENERAL, None]
    assert (
        apply_usage([change("request.property.removed", field="customer")], USAGE)[0].impact
        == FOR_US
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "`operations` object"),
        ({"operations": {}, "extra": 1}, "unknown key"),
        ({"version": 2, "operations": {}}, "version 2"),
        ({"operations": {"x": []}}, "must be an object"),
        ({"operations": {"x": {"request_fields": "a"}}}, "list of strings"),
        ({"operations": {"x": {"fields": []}}}, "unknown key"),
    ],
)
def test_malformed_usage_files_are_refused(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Usage.from_json(data)


def test_usage_round_trips_through_json() -> None:
    assert Usage.from_json(USAGE.to_json()) == USAGE
