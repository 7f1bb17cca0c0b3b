"""The lean vote route: its OpenAPI operation says what it does, the page's cookie vote takes it
with CSRF enforced, the body is parsed once, and a cached voter token still expires."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from campaigns import services as campaign_services
from campaigns.models import Campaign
from core import auth, clock, http
from core.auth import issue_token
from core.extensions import db
from tests.factories import Org
from voting import vote_lane, vote_route

VOTES = "/api/v1/campaigns/v1/votes"


def _operation(client: FlaskClient) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = client.get("/api/openapi.json").json
    return spec["paths"]["/api/v1/campaigns/{slug}/votes"]["post"], spec["components"]["schemas"]


def _resolve(schemas: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    return schemas[ref.rsplit("/", 1)[-1]] if ref else node


def test_the_document_matches_the_route(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 1})
    operation, schemas = _operation(client)
    assert operation["security"] == [{"bearerAuth": []}]
    request_schema = _resolve(
        schemas, operation["requestBody"]["content"]["application/json"]["schema"]
    )
    assert operation["requestBody"]["required"] is True
    assert request_schema["required"] == ["nominee"]
    assert request_schema["additionalProperties"] is False
    nominee = request_schema["properties"]["nominee"]
    assert (nominee["type"], nominee["minLength"], nominee["maxLength"]) == ("string", 1, 16)
    assert nominee["maxLength"] == vote_route.NOMINEE_MAX
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["schema"]["maxLength"] == vote_route.IDEMPOTENCY_KEY_MAX
    responses = operation["responses"]
    voter = org.voter(7)

    # 201: exactly the documented fields, the required ones present, the types as declared.
    accepted = client.post(VOTES, json={"nominee": numbers[0]}, headers=voter)
    assert accepted.status_code == 201 and accepted.mimetype == "application/json"
    result = _resolve(schemas, responses["201"]["content"]["application/json"]["schema"])
    assert set(accepted.json) == set(result["properties"])
    assert set(result["required"]) <= set(accepted.json)
    kinds = {"string": str, "integer": int}
    for name, prop in result["properties"].items():
        assert isinstance(accepted.json[name], kinds[prop["type"]]), name

    def refused(status: int, code: str, body: Any, headers: dict[str, str]) -> None:
        response = client.post(VOTES, json=body, headers=headers)
        assert response.status_code == status, (code, response.json)
        assert response.json["error"]["code"] == code
        declared = responses[str(status)]
        assert code in declared["description"], (status, code)
        envelope = declared["content"]["application/json"]["schema"]["$ref"]
        assert envelope.endswith("/ErrorEnvelope")

    # Every refusal the route gives is a status the document declares, naming the code.
    refused(401, "invalid_voter", {"nominee": numbers[0]}, {})
    refused(404, "nominee_not_found", {"nominee": "Z999"}, org.voter(8))
    refused(429, "daily_quota_exhausted", {"nominee": numbers[1]}, voter)
    for body in (
        {},  # required field missing
        {"nominee": numbers[0], "extra": 1},  # additionalProperties: false
        {"nominee": ""},  # minLength
        {"nominee": "D" * 17},  # maxLength
        {"nominee": 5},  # type
        {"nominee": "D\u0001"},  # a control character
        [numbers[0]],  # not an object
    ):
        refused(422, "validation_error", body, org.voter(9))
    missing = client.post(VOTES, json={}, headers=org.voter(9)).json["error"]["details"]
    assert missing == {"fields": {"nominee": ["Missing data for required field."]}}
    with org.app.app_context():
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_services.change_phase(campaign, "judging", None)
        db.session.commit()
        db.session.remove()
    refused(403, "voting_closed", {"nominee": numbers[0]}, org.voter(10))


def test_the_page_votes_through_the_lean_route_with_csrf(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    token = client.get("/c/v1/me").json["csrf_token"]
    made = client.post(
        "/c/v1/voter", json={"device_id": "phone-0042"}, headers={"X-CSRF-Token": token}
    )
    assert made.status_code == 200
    assert client.application.view_functions["voting.vote"] is vote_route.vote
    # The cookie alone is an ambient credential: refused without the page's CSRF token.
    bare = client.post(VOTES, json={"nominee": numbers[0]})
    assert bare.status_code == 403 and bare.json["error"]["code"] == "csrf_failed"
    forged = client.post(VOTES, json={"nominee": numbers[0]}, headers={"X-CSRF-Token": "x" * 64})
    assert forged.status_code == 403 and forged.json["error"]["code"] == "csrf_failed"
    voted = client.post(
        VOTES,
        json={"nominee": numbers[0]},
        headers={"X-CSRF-Token": token, "Idempotency-Key": "tap-1"},
    )
    assert voted.status_code == 201 and voted.json["remaining_today"] == 4
    replay = client.post(
        VOTES,
        json={"nominee": numbers[0]},
        headers={"X-CSRF-Token": token, "Idempotency-Key": "tap-1"},
    )
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == voted.json
    me = client.get("/api/v1/campaigns/v1/votes/me").json
    assert me["remaining_today"] == 4 and me["voted_today"] == {numbers[0]: 1}


@pytest.mark.parametrize("lane", [True, False])
def test_the_body_is_parsed_once(
    make_app: Callable[..., Flask], org: Org, monkeypatch: pytest.MonkeyPatch, lane: bool
) -> None:
    numbers = org.voting_campaign(nominees=1)
    client = make_app(VOTE_LANE=lane).test_client()
    calls: list[str] = []
    body = json.dumps({"nominee": numbers[0]})

    def counting(module: Any, name: str, label: str) -> None:
        real = getattr(module, name)

        def parse(text: Any, *args: Any, **kwargs: Any) -> Any:
            if text in (body, body.encode()):  # the request body, not a token or an answer
                calls.append(label)
            return real(text, *args, **kwargs)

        monkeypatch.setattr(module, name, parse)

    counting(http.json, "loads", "core.http")
    counting(vote_lane.orjson, "loads", "lane")
    response = client.post(VOTES, data=body, content_type="application/json", headers=org.voter(3))
    assert response.status_code == 201
    # The lane's one parse (voting/vote_lane.py), or core.http's strict parse that the view
    # reads back.
    assert calls == (["lane"] if lane else ["core.http"])


def test_a_cached_voter_token_still_expires(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    with app.app_context():
        token = issue_token("voter", {"sub": 77, "p": "device", "c": 0}, 60).token
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(VOTES, json={"nominee": numbers[0]}, headers=headers).status_code == 201
    assert any(key[1] == token for key in auth._VERIFIED_VOTERS)  # verified once, remembered
    original = clock.offset_seconds()
    clock.set_offset(original + 120)  # past the token's 60 s (time only moves forward)
    expired = client.post(VOTES, json={"nominee": numbers[1]}, headers=headers)
    assert expired.status_code == 401 and expired.json["error"]["code"] == "invalid_voter"
    assert not any(key[1] == token for key in auth._VERIFIED_VOTERS)
    # A tampered token never reaches the cache's answer.
    bad = {"Authorization": f"Bearer {token[:-2]}xx"}
    assert client.post(VOTES, json={"nominee": numbers[1]}, headers=bad).status_code == 401
