"""The OpenAPI document at /api/openapi.json teaches the API: every operation says what it does,
every request field what it means, the main bodies come with examples that the API accepts, and
the overview covers authentication, CSRF, errors, idempotency and rate limits.

``pytest tests/core/test_api_docs.py -s`` prints the figures (operations and fields described).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from marshmallow import Schema

from awards.schemas import AdjustSchema, CriteriaSchema, ObjectionCreateSchema, SheetSaveSchema
from campaigns.schemas import CampaignCreateSchema, CategoryCreateSchema, LoginSchema
from core import create_app
from core.api_docs import OVERVIEW
from nominations.schemas import NominationCreateSchema, ReviewSchema
from voting.schemas import DecisionSchema, VoteCreateSchema

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PREFIX = "/api/v1"

# The bodies a newcomer writes first, and the schema that loads each (the example must load).
MAIN_BODIES: dict[tuple[str, str], type[Schema]] = {
    ("post", "/campaigns"): CampaignCreateSchema,
    ("post", "/campaigns/{slug}/nominations"): NominationCreateSchema,
    ("post", "/campaigns/{slug}/votes"): VoteCreateSchema,
    ("post", "/nominations/{nomination_id}/review"): ReviewSchema,
    ("post", "/admin/campaigns/{slug}/fraud/flags/{flag_id}/confirm"): DecisionSchema,
    ("post", "/admin/campaigns/{slug}/results/{number}/adjustments"): AdjustSchema,
    # and a few more that are easy to get wrong
    ("post", "/auth/login"): LoginSchema,
    ("post", "/campaigns/{slug}/categories"): CategoryCreateSchema,
    ("put", "/admin/campaigns/{slug}/criteria"): CriteriaSchema,
    ("put", "/judging/{slug}/sheets/{number}"): SheetSaveSchema,
    ("post", "/campaigns/{slug}/objections"): ObjectionCreateSchema,
}

# What the overview must explain, and words that show it does.
OVERVIEW_TOPICS = {
    "authentication": ("Authorization: Bearer", "/api/v1/auth/login", "voter", "role"),
    "csrf": ("X-CSRF-Token", "csrf_failed"),
    "errors": ('"error"', "code", "request_id", "docs/api.md"),
    "idempotency": ("Idempotency-Key", "Idempotent-Replayed"),
    "rate limits": ("429", "Retry-After", "428", "challenge_required", "X-Challenge-Pass"),
    "pagination": ("page", "per_page", "total"),
    "time zones": ("UTC", "Asia/Shanghai", "time zone"),
}


def render_spec() -> dict[str, Any]:
    """The OpenAPI document of an app built from the real configuration (no database or Redis
    is touched to render it)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": folder,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/spec.db",
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "SECRET_KEY": "openapi-docs-" + "0" * 32,
            }
        )
        answer = app.test_client().get("/api/openapi.json")
        assert answer.status_code == 200
        return answer.get_json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return render_spec()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _component(spec: dict[str, Any], ref: str) -> tuple[str, dict[str, Any]]:
    name = ref.rsplit("/", 1)[1]
    return name, spec["components"]["schemas"][name]


def _nested_refs(prop: dict[str, Any]) -> Iterator[str]:
    """The component schemas a property points at: directly, through allOf/oneOf/anyOf, or as
    the items of an array (at any depth) or the values of a map."""
    if "$ref" in prop:
        yield prop["$ref"]
    for key in ("allOf", "oneOf", "anyOf"):
        for part in prop.get(key, []):
            yield from _nested_refs(part)
    for key in ("items", "additionalProperties"):
        if isinstance(prop.get(key), dict):
            yield from _nested_refs(prop[key])


def request_fields(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every field a request body can hold, {(schema, field): property}, following ``$ref``s into
    nested schemas. Inline body schemas are named after their operation."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    seen: set[str] = set()

    def walk(name: str, schema: dict[str, Any]) -> None:
        for field_name, prop in (schema.get("properties") or {}).items():
            found[(name, field_name)] = prop
            for ref in _nested_refs(prop):
                nested, target = _component(spec, ref)
                if nested not in seen:
                    seen.add(nested)
                    walk(nested, target)

    for method, path, operation in operations(spec):
        for content in (operation.get("requestBody") or {}).get("content", {}).values():
            schema = content.get("schema") or {}
            if "$ref" in schema:
                name, target = _component(spec, schema["$ref"])
                if name not in seen:
                    seen.add(name)
                    walk(name, target)
            else:
                walk(f"{method.upper()} {path}", schema)
    return found


def figures(spec: dict[str, Any]) -> dict[str, int]:
    """How much of the document is described."""
    ops = list(operations(spec))
    props = [
        prop
        for schema in spec["components"]["schemas"].values()
        for prop in (schema.get("properties") or {}).values()
    ]
    body = request_fields(spec)
    return {
        "operations": len(ops),
        "operations_described": sum(1 for *_, op in ops if (op.get("description") or "").strip()),
        "schema_fields": len(props),
        "schema_fields_described": sum(1 for p in props if (p.get("description") or "").strip()),
        "request_fields": len(body),
        "request_fields_described": sum(
            1 for p in body.values() if (p.get("description") or "").strip()
        ),
    }


def test_figures(spec: dict[str, Any]) -> None:
    counted = figures(spec)
    print(
        "\nOpenAPI: {operations_described} of {operations} operations described; "
        "{schema_fields_described} of {schema_fields} schema fields described; "
        "{request_fields_described} of {request_fields} request-body fields described".format(
            **counted
        )
    )
    assert counted["operations"] > 50  # the whole API, not an empty document
    assert counted["request_fields"] > 100


def test_every_operation_has_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for method, path, operation in operations(spec)
        if not (operation.get("summary") or "").strip()
        or not (operation.get("description") or "").strip()
    ]
    assert not missing, (
        "operations without a summary or a description (the view's docstring: a summary line, "
        f"a blank line, then who may call it, what it does and what it refuses): {missing}"
    )


def test_summaries_are_one_line(spec: dict[str, Any]) -> None:
    """A summary is the first line of the docstring; a docstring without a blank line after it
    turns wholly into a summary and leaves the description empty."""
    long = [
        f"{method.upper()} {path}"
        for method, path, operation in operations(spec)
        if "\n" in (operation.get("summary") or "") or len(operation.get("summary") or "") > 100
    ]
    assert not long, f"summaries on several lines or over 100 characters: {long}"


def test_every_request_body_field_is_described(spec: dict[str, Any]) -> None:
    fields = request_fields(spec)
    assert ("CampaignCreate", "rules") in fields and ("Rules", "votes_per_day") in fields
    missing = [
        f"{schema}.{name}"
        for (schema, name), prop in fields.items()
        if not (prop.get("description") or "").strip()
    ]
    assert not missing, (
        'request fields without metadata={"description": ...} in their marshmallow schema: '
        f"{missing}"
    )


def _body_examples(operation: dict[str, Any]) -> list[Any]:
    content = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {})
    examples = [content["example"]] if "example" in content else []
    examples += [entry["value"] for entry in (content.get("examples") or {}).values()]
    return examples


@pytest.mark.parametrize(
    ("method", "path"), list(MAIN_BODIES), ids=[f"{m} {p}" for m, p in MAIN_BODIES]
)
def test_main_bodies_have_examples_the_api_accepts(
    spec: dict[str, Any], method: str, path: str
) -> None:
    operation = spec["paths"][PREFIX + path][method]
    examples = _body_examples(operation)
    assert examples, f"{method.upper()} {path}: no example body"
    for example in examples:
        MAIN_BODIES[(method, path)]().load(example)  # raises ValidationError if refused


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema validator for an OpenAPI schema, its ``$ref``s resolved in the document."""
    return jsonschema_rs.Draft4Validator({**schema, "components": spec["components"]})


def test_every_example_matches_its_schema(spec: dict[str, Any]) -> None:
    """Body examples and field examples hold what their own schema describes."""
    wrong = []
    for method, path, operation in operations(spec):
        content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
        if not content:
            continue
        # Draft 4 ignores a $ref's siblings: wrap the body schema so components resolve.
        validator = _validator(spec, {"allOf": [content["schema"]]})
        for example in _body_examples(operation):
            if not validator.is_valid(example):
                wrong.append(f"{method.upper()} {path}: {example!r}")
    for name, schema in spec["components"]["schemas"].items():
        for field_name, prop in (schema.get("properties") or {}).items():
            if "example" in prop and not _validator(spec, {"allOf": [prop]}).is_valid(
                prop["example"]
            ):
                wrong.append(f"{name}.{field_name}: {prop['example']!r}")
    assert not wrong, f"examples their schema refuses: {wrong}"


def test_overview_explains_the_cross_cutting_rules() -> None:
    missing = {
        topic: [word for word in words if word not in OVERVIEW]
        for topic, words in OVERVIEW_TOPICS.items()
    }
    assert not any(missing.values()), missing


def test_the_document_carries_the_overview(spec: dict[str, Any]) -> None:
    assert spec["info"].get("description") == OVERVIEW, (
        "info.description is not core.api_docs.OVERVIEW: DefaultConfig in core/config.py needs "
        "API_SPEC_OPTIONS = api_docs.spec_options() (with `from core import api_docs`)"
    )


def test_the_document_still_loads_as_openapi(spec: dict[str, Any]) -> None:
    """Schemathesis (tests/fuzz) reads every operation of the document without an error."""
    loaded = schemathesis.openapi.from_dict(spec)
    results = list(loaded.get_all_operations())
    failed = [result for result in results if not isinstance(result, schemathesis.core.result.Ok)]
    assert len(results) == len(list(operations(spec)))
    assert not failed, failed
