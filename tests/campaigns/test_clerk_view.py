"""Staff read a campaign through GET /admin/campaigns/<slug>: admins get every rule, clerks and
reviewers only what they plan by, never the pressure checks or the fraud thresholds."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.factories import Org

SECRET_RULES = {"ip_soft_limit", "velocity_factor", "velocity_floor", "freeze_minutes", "fraud"}


def _leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, k)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v, key)]
    return [(key, value)]


def _campaign(org: Org) -> str:
    return org.campaign(
        "c1",
        rules={
            "votes_per_day": 5,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": 17,
            "velocity_factor": 9,
            "fraud": {"address_concentration": {"min_votes": 12}},
        },
    )


def test_unit_clerks_and_reviewers_get_the_clerk_view(client: FlaskClient, org: Org) -> None:
    _campaign(org)
    for user in ("unit-h1", "rev-k1"):
        answer = client.get("/api/v1/admin/campaigns/c1", headers=org.headers(user))
        assert answer.status_code == 200, answer.json
        body = answer.json
        assert body["view"] == "clerk"
        assert set(body["rules"]) == {
            "votes_per_day",
            "votes_per_nominee_per_day",
            "hide_counts",
            "hide_counts_from",
        }
        assert not SECRET_RULES & set(body["rules"])
        assert "address_concentration" not in answer.get_data(as_text=True)
        # No value of a hidden rule leaks under another name either (dates aside: they vary).
        values = [v for k, v in _leaves(body) if not k.endswith(("_start", "_end", "_from"))]
        assert 17 not in values and 9 not in values and 12 not in values
        assert body["title"] and body["nomination_start"] and body["voting_end"]
        assert {c["code"]: c["max_per_unit"] for c in body["categories"]} == {
            "doctor": 2,
            "nurse": 2,
        }
        assert "require_recommendation" in body and "id" not in body


def test_admins_keep_every_rule(client: FlaskClient, org: Org) -> None:
    _campaign(org)
    body = client.get("/api/v1/admin/campaigns/c1", headers=org.headers("admin")).json
    assert "view" not in body and body["id"]
    assert body["rules"]["ip_soft_limit"] == 17 and body["rules"]["velocity_factor"] == 9
    assert body["rules"]["fraud"] == {"address_concentration": {"min_votes": 12}}


def test_the_public_view_keeps_the_pressure_checks_hidden(client: FlaskClient, org: Org) -> None:
    _campaign(org)
    body = client.get("/api/v1/campaigns/c1").json
    assert body["rules"]["votes_per_day"] == 5
    assert not SECRET_RULES & set(body["rules"])
    values = [v for k, v in _leaves(body) if not k.endswith(("_start", "_end", "_from"))]
    assert 17 not in values and 9 not in values and 12 not in values


def test_judges_and_strangers_are_refused(client: FlaskClient, org: Org) -> None:
    _campaign(org)
    judge = client.get("/api/v1/admin/campaigns/c1", headers=org.headers("judge"))
    assert judge.status_code == 403 and judge.json["error"]["code"] == "forbidden"
    assert client.get("/api/v1/admin/campaigns/c1").status_code == 401


def test_openapi_documents_both_views(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    answer = spec["paths"]["/api/v1/admin/campaigns/{slug}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema == {
        "oneOf": [
            {"$ref": "#/components/schemas/CampaignAdmin"},
            {"$ref": "#/components/schemas/CampaignClerk"},
        ]
    }
    assert "admin" in answer["description"] and "unit" in answer["description"]
    clerk = spec["components"]["schemas"]["CampaignClerk"]
    assert clerk["properties"]["view"]["enum"] == ["clerk"]
    assert clerk["additionalProperties"] is False
    assert "view" not in spec["components"]["schemas"]["CampaignAdmin"]["properties"]
    rules = spec["components"]["schemas"]["ClerkRules"]["properties"]
    assert not SECRET_RULES & set(rules)
