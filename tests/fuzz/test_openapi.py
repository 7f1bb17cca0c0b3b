"""Fuzz the HTTP API against its own OpenAPI document (schemathesis, in process over WSGI).

Every operation of ``/api/openapi.json`` becomes one test. Schemathesis runs its coverage phase
(boundary values, missing and malformed parameters, wrong content types, missing credentials,
methods the operation does not declare), then ``ZUIMEI_FUZZ_EXAMPLES`` generated cases (default
10), positive and negative. Generation is derandomized with a fixed seed (``ZUIMEI_FUZZ_SEED``):
CI sends the same requests on every run.

Each operation starts from a fresh world: units and staff accounts; campaign ``v1`` open for
voting with three approved doctors, drained votes and a fraud scan; campaign ``n1`` taking
nominations, with a draft and a submitted nomination; a video upload and a captcha challenge.
About half the generated path parameters, query values and body fields with a known name
(``slug``, ``nomination_id``, ``number``, ``asset_id``, ``scan_id``, ``challenge_id``,
``category``, ``nominee``, ``unit_code``, ``username``) are replaced by ids of those real objects,
so the cases reach the services instead of stopping at a 404.

Credentials per operation: the voter token for the vote, quota and challenge-answer endpoints,
the judge's token under ``/judging/``, the committee admin's token everywhere else (schemathesis
itself drops it in the cases that test missing credentials).

Checks on every response:

- ``not_a_server_error``: no 5xx, ever;
- ``status_code_conformance``, ``content_type_conformance``, ``response_headers_conformance``,
  ``response_schema_conformance``: the answer matches what the operation documents for it;
- ``unsupported_method``: a method the operation does not declare gets 405 with ``Allow``;
- ``status_code_declared`` (ours): the status is declared by the operation itself, not only by
  the ``default`` error response, and a declared error status carries the error envelope schema
  (an ``alt_response`` without one leaves the body unchecked). Exempt are the refusals every
  operation shares, which the ``default`` response and docs/api.md document once:
  ``400 malformed_json``, ``415 unsupported_media_type`` and, on operations that declare a bearer
  token, ``401`` for a missing or invalid token and ``403 forbidden`` for a wrong role. A 405 for
  a method the operation declares is never exempt.

Not fuzzed, and why:

- ``PATCH /uploads/{asset_id}`` and ``POST /nominations/{nomination_id}/photo`` take raw bytes
  (``application/offset+octet-stream``, JPEG/PNG/WebP): random bytes only ever reach the offset
  and "not an image" checks, which tests/media covers with real files;
- ``GET /admin/campaigns/{slug}/exports/{job_id}/download`` streams a finished export file: it
  needs an export job run by an RQ worker and has no JSON to check (tests/awards covers it);
- ``GET /wechat/oauth/start`` and ``/wechat/oauth/callback`` redirect to WeChat and exchange codes
  with WeChat's servers (tests/voting/test_wechat_routes.py covers them against a fake WeChat).

Run longer, or with another seed: ``ZUIMEI_FUZZ_EXAMPLES=200 ZUIMEI_FUZZ_SEED=7 pytest tests/fuzz``
(docs/fuzzing.md).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Campaign
from core import create_app
from core.extensions import db
from media import services as media_services
from nominations.models import Nomination
from tests.factories import PASSWORD, Org
from voting import fraud
from voting import services as voting_services

EXAMPLES = int(os.environ.get("ZUIMEI_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("ZUIMEI_FUZZ_SEED", "20261125"))

EXCLUDED = (
    ("PATCH", "/api/v1/uploads/{asset_id}"),
    ("POST", "/api/v1/nominations/{nomination_id}/photo"),
    ("GET", "/api/v1/admin/campaigns/{slug}/exports/{job_id}/download"),
    ("GET", "/api/v1/wechat/oauth/start"),
    ("GET", "/api/v1/wechat/oauth/callback"),
)
VOTER_PATHS = frozenset(
    {
        "/api/v1/campaigns/{slug}/votes",
        "/api/v1/campaigns/{slug}/votes/me",
        "/api/v1/challenges/{challenge_id}",
    }
)

# Refusals every operation shares; documented once by the `default` response and docs/api.md.
SHARED_REFUSALS = {400: {"malformed_json"}, 415: {"unsupported_media_type"}}
TOKEN_REFUSALS = {
    401: {"unauthorized", "invalid_token", "token_expired", "token_revoked", "invalid_voter"},
    403: {"forbidden"},
}


def _render_spec() -> dict[str, Any]:
    """The OpenAPI document, rendered by a throwaway app (it needs no database or Redis)."""
    with tempfile.TemporaryDirectory() as folder:
        spec_app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": folder,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/spec.db",
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "SECRET_KEY": "openapi-only-" + "0" * 32,
            }
        )
        return spec_app.test_client().get("/api/openapi.json").get_json()


@dataclass
class World:
    """Real objects the fuzzer's cases can point at, and a token per kind of caller."""

    app: Flask
    pins: dict[str, list[Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


class _Current:
    world: World | None = None


CURRENT = _Current()


def _pinned(values: dict[str, Any] | None) -> Any:
    """A strategy: the generated values, or (half the time) the same with every field that names
    a real object replaced by one of them (values of the same type only: an integer path
    parameter keeps integers)."""
    world = CURRENT.world
    if not isinstance(values, dict) or world is None:
        return st.just(values)
    choices = {
        name: [v for v in world.pins[name] if type(v) is type(value)]
        for name, value in values.items()
        if name in world.pins
    }
    choices = {name: options for name, options in choices.items() if options}
    if not choices:
        return st.just(values)
    real = st.fixed_dictionaries({name: st.sampled_from(opts) for name, opts in choices.items()})
    return st.booleans().flatmap(
        lambda pin: real.map(lambda r: {**values, **r}) if pin else st.just(values)
    )


def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    return _pinned(path_parameters)


def flatmap_query(ctx: Any, query: dict[str, Any] | None) -> Any:
    return _pinned(query)


def flatmap_body(ctx: Any, body: Any) -> Any:
    return _pinned(body)


def _load_schema() -> Any:
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "deterministic": True,
                "database": "none",
                "max-examples": EXAMPLES,
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    loaded = schemathesis.openapi.from_dict(_render_spec(), config=config)
    for hook in (flatmap_path_parameters, flatmap_query, flatmap_body):
        loaded.hook(hook)
    for method, path in EXCLUDED:
        loaded = loaded.exclude(method=method, path=path)
    return loaded


schema = _load_schema()


def _error_code(response: Any) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def status_code_declared(ctx: Any, response: Any, case: Any) -> None:
    """The operation declares the status itself (see the module docstring for the exemptions),
    and a declared error status documents the error envelope."""
    operation = case.operation
    if response.request.method != operation.method.upper():
        return  # a probe with an undeclared method: `unsupported_method` judges it
    status = response.status_code
    declared = operation.responses.find_by_status_code(status)
    if declared is not None and declared.status_code != "default":
        if status >= 400 and "content" not in declared.definition:
            raise AssertionError(
                f"{operation.label} declares {status} without a body schema: the error "
                "envelope is not documented and the body goes unchecked"
            )
        return
    shared = dict(SHARED_REFUSALS)
    if operation.definition.raw.get("security"):
        shared.update(TOKEN_REFUSALS)
    code = _error_code(response)
    if status in shared and (
        code in shared[status] or (code is None and response.request.method == "HEAD")
    ):
        return  # (an answer to HEAD has no body to name its code)
    raise AssertionError(
        f"{operation.label} answered {status} ({code}), which it does not declare "
        f"(declared: {', '.join(operation.responses.status_codes)})"
    )


CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.unsupported_method,
    status_code_declared,
]


def _build_world(app: Flask) -> World:
    with app.app_context():
        for code, level, parent in (
            ("P", "province", None),
            ("C", "city", "P"),
            ("K1", "county", "C"),
            ("H1", "institution", "K1"),
            ("H2", "institution", "K1"),
            ("H3", "institution", "K1"),
        ):
            campaign_services.create_unit(code, f"单位{code}", level, parent)
        accounts = {
            username: campaign_services.create_account(username, PASSWORD, role, unit).id
            for username, role, unit in (
                ("admin", "admin", None),
                ("rev-k1", "reviewer", "K1"),
                ("unit-h1", "unit", "H1"),
                ("unit-h2", "unit", "H2"),
                ("unit-h3", "unit", "H3"),
                ("judge", "judge", None),
            )
        }
        db.session.commit()
        db.session.remove()
    org = Org(app=app, accounts=accounts)
    numbers = org.voting_campaign("v1", nominees=3)
    client = app.test_client()
    for voter, number in enumerate(numbers, start=1):
        answer = client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
        )
        assert answer.status_code == 201, answer.get_json()
    org.campaign("n1")
    draft = org.nomination("n1", status="draft")
    submitted = org.nomination("n1", unit_user="unit-h2", status="submitted", name="王芳")
    with app.app_context():
        voting_services.drain_campaign("v1")
        v1 = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        approved = list(
            db.session.scalars(select(Nomination.id).where(Nomination.campaign_id == v1.id))
        )
        scan = fraud.start_scan(v1, "admin")
        asset = media_services.start_video_upload(
            org.account("unit-h1"), db.session.get(Nomination, draft), 4096, "profile.mp4"
        )
        challenge = voting_services.new_challenge()["challenge_id"]
        db.session.commit()
        pins = {
            "slug": ["v1", "n1"],
            "nomination_id": [draft, submitted, *approved],
            "number": numbers,
            "nominee": numbers,
            "category": ["doctor", "nurse"],
            "asset_id": [asset.id],
            "scan_id": [scan.id],
            "challenge_id": [challenge],
            "unit_code": ["H1", "H2", "K1"],
            "username": ["judge", "unit-h1"],
        }
        db.session.remove()
    return World(
        app=app,
        pins=pins,
        headers={
            "admin": org.headers("admin"),
            "judge": org.headers("judge"),
            "voter": org.voter(4242),
        },
    )


@pytest.fixture
def world(app: Flask) -> Iterator[World]:
    """A fresh world per operation (the autouse clean-up of tests/conftest.py empties it)."""
    made = _build_world(app)
    CURRENT.world = made
    yield made
    CURRENT.world = None


def _caller(path: str) -> str:
    if path in VOTER_PATHS:
        return "voter"
    if path.startswith("/api/v1/judging/"):
        return "judge"
    return "admin"


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
        hypothesis.HealthCheck.function_scoped_fixture,
    ],
)
def test_api(case: Any, world: World) -> None:
    case.call_and_validate(
        app=world.app,
        buffered=True,  # close file responses (xlsx) so their clean-up runs
        headers=world.headers[_caller(case.operation.path)],
        checks=CHECKS,
    )
