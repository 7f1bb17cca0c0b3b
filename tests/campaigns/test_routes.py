"""Campaigns, phases, categories, units and accounts through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from tests.factories import Org, campaign_body


def test_admin_creates_a_campaign_in_draft(client: FlaskClient, org: Org) -> None:
    response = client.post("/api/v1/campaigns", json=campaign_body(), headers=org.headers("admin"))
    assert response.status_code == 201, response.json
    assert response.json["phase"] == "draft"
    assert response.json["timezone"] == "Asia/Shanghai"
    # Drafts are invisible to the public.
    assert client.get("/api/v1/campaigns/c1").status_code == 404
    assert client.get("/api/v1/campaigns").json["items"] == []


def test_campaign_validation(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    bad_quota = campaign_body(rules={"votes_per_day": 1, "votes_per_nominee_per_day": 3})
    response = client.post("/api/v1/campaigns", json=bad_quota, headers=admin)
    assert response.status_code == 422
    assert "votes_per_nominee_per_day" in str(response.json["error"]["details"])

    share_bonus = campaign_body(
        rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1, "share_bonus_votes": 3}
    )
    response = client.post("/api/v1/campaigns", json=share_bonus, headers=admin)
    assert response.status_code == 422
    assert "share_bonus_votes" in str(response.json["error"]["details"])

    weights = campaign_body(weights={"public": 50, "jury": 40})
    assert client.post("/api/v1/campaigns", json=weights, headers=admin).status_code == 422

    now = utcnow()
    naive = campaign_body(voting_start=(now + timedelta(days=11)).replace(tzinfo=None).isoformat())
    assert client.post("/api/v1/campaigns", json=naive, headers=admin).status_code == 422

    tz = campaign_body(timezone="Mars/Olympus")
    assert client.post("/api/v1/campaigns", json=tz, headers=admin).status_code == 422

    backwards = campaign_body(
        voting_start=(now + timedelta(days=20)).isoformat(),
        voting_end=(now + timedelta(days=12)).isoformat(),
    )
    response = client.post("/api/v1/campaigns", json=backwards, headers=admin)
    assert response.status_code == 422
    assert "voting_end" in response.json["error"]["details"]["fields"]

    assert client.post("/api/v1/campaigns", json=campaign_body(), headers=admin).status_code == 201
    again = client.post("/api/v1/campaigns", json=campaign_body(), headers=admin)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "campaign_exists"


def test_only_admins_manage_campaigns(client: FlaskClient, org: Org) -> None:
    for user in ("unit-h1", "rev-k1", "judge"):
        response = client.post("/api/v1/campaigns", json=campaign_body(), headers=org.headers(user))
        assert response.status_code == 403
        assert response.json["error"]["code"] == "forbidden"
    response = client.post("/api/v1/campaigns", json=campaign_body())
    assert response.status_code == 401


def test_phases_move_forward_freely_and_back_only_with_a_reason(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    slug = org.campaign(phase="draft")
    admin = org.headers("admin")
    phase = f"/api/v1/campaigns/{slug}/phase"
    assert (
        client.post(phase, json={"phase": "reviewing"}, headers=admin).json["phase"] == "reviewing"
    )
    back = client.post(phase, json={"phase": "nominating"}, headers=admin)
    assert back.status_code == 422
    assert back.json["error"]["code"] == "reason_required"
    ok = client.post(phase, json={"phase": "nominating", "reason": "延长推荐"}, headers=admin)
    assert ok.status_code == 200 and ok.json["phase"] == "nominating"
    same = client.post(phase, json={"phase": "nominating", "reason": "x"}, headers=admin)
    assert same.status_code == 409
    assert client.post(phase, json={"phase": "closing"}, headers=admin).status_code == 422

    with app.app_context():
        entries = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "campaign.phase").order_by(AuditLog.id)
        ).all()
        assert [(e.before["phase"], e.after["phase"]) for e in entries][-2:] == [
            ("draft", "reviewing"),
            ("reviewing", "nominating"),
        ]
        assert entries[-1].reason == "延长推荐"
        assert entries[-1].actor_name == "admin"


def test_campaign_without_categories_cannot_open(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    client.post("/api/v1/campaigns", json=campaign_body(), headers=admin)
    response = client.post(
        "/api/v1/campaigns/c1/phase", json={"phase": "nominating"}, headers=admin
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "no_categories"


def test_public_reads_a_campaign_with_categories(client: FlaskClient, org: Org) -> None:
    slug = org.campaign()
    body = client.get(f"/api/v1/campaigns/{slug}").json
    assert body["phase"] == "nominating"
    assert [c["code"] for c in body["categories"]] == ["doctor", "nurse"]
    assert body["rules"]["votes_per_day"] == 5
    assert body["voting_open"] is False
    assert "require_recommendation" not in body and "id" not in body


def test_categories(client: FlaskClient, org: Org) -> None:
    slug = org.campaign()
    admin = org.headers("admin")
    url = f"/api/v1/campaigns/{slug}/categories"
    village = {
        "code": "village",
        "name": "十大最美乡村医生",
        "prefix": "V",
        "award_count": 10,
        "max_per_unit": 1,
    }
    assert client.post(url, json=village, headers=admin).status_code == 201
    clash = client.post(url, json={**village, "code": "other"}, headers=admin)
    assert clash.status_code == 409 and clash.json["error"]["code"] == "category_exists"
    bad_prefix = client.post(url, json={**village, "code": "x", "prefix": "v1"}, headers=admin)
    assert bad_prefix.status_code == 422
    assert client.post(url, json=village, headers=org.headers("unit-h1")).status_code == 403


def test_patch_campaign_and_rules_lock_while_voting(client: FlaskClient, org: Org) -> None:
    slug = org.campaign()
    admin = org.headers("admin")
    response = client.patch(f"/api/v1/campaigns/{slug}", json={"title": "新标题"}, headers=admin)
    assert response.status_code == 200 and response.json["title"] == "新标题"
    assert (
        client.patch(f"/api/v1/campaigns/{slug}", json={"slug": "x"}, headers=admin).status_code
        == 422
    )
    client.post(f"/api/v1/campaigns/{slug}/phase", json={"phase": "voting"}, headers=admin)
    locked = client.patch(
        f"/api/v1/campaigns/{slug}",
        json={"rules": {"votes_per_day": 50, "votes_per_nominee_per_day": 50}},
        headers=admin,
    )
    assert locked.status_code == 409 and locked.json["error"]["code"] == "rules_locked"
    assert client.get(f"/api/v1/campaigns/{slug}").json["rules"]["votes_per_day"] == 5


def test_units_form_a_hierarchy(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    ok = client.post(
        "/api/v1/units",
        json={"code": "H4", "name": "白沙镇卫生院", "level": "institution", "parent_code": "K2"},
        headers=admin,
    )
    assert ok.status_code == 201 and ok.json["parent_code"] == "K2"
    upside_down = client.post(
        "/api/v1/units",
        json={"code": "X", "name": "x", "level": "city", "parent_code": "K1"},
        headers=admin,
    )
    assert upside_down.status_code == 422 and upside_down.json["error"]["code"] == "invalid_parent"
    missing = client.post(
        "/api/v1/units",
        json={"code": "Y", "name": "y", "level": "institution", "parent_code": "NOPE"},
        headers=admin,
    )
    assert missing.status_code == 404 and missing.json["error"]["code"] == "unit_not_found"
    # Reviewers see their sub-tree, a unit itself only.
    k1 = client.get("/api/v1/units", headers=org.headers("rev-k1")).json["items"]
    assert {u["code"] for u in k1} == {"K1", "H1", "H2"}
    h1 = client.get("/api/v1/units", headers=org.headers("unit-h1")).json["items"]
    assert [u["code"] for u in h1] == ["H1"]


def test_accounts(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    body = {"username": "clerk-h2", "password": "long-enough-pw", "role": "unit", "unit_code": "H2"}
    created = client.post("/api/v1/accounts", json=body, headers=admin)
    assert created.status_code == 201
    assert "password" not in created.json and "password_hash" not in created.json
    assert client.post("/api/v1/accounts", json=body, headers=admin).status_code == 409
    no_unit = client.post(
        "/api/v1/accounts", json={**body, "username": "user2", "unit_code": None}, headers=admin
    )
    assert no_unit.status_code == 422, no_unit.json
    assert no_unit.json["error"]["code"] == "unit_required", no_unit.json
    short = client.post(
        "/api/v1/accounts", json={**body, "username": "user3", "password": "short"}, headers=admin
    )
    assert short.status_code == 422
    bureau_clerk = client.post(
        "/api/v1/accounts", json={**body, "username": "user4", "unit_code": "K1"}, headers=admin
    )
    assert bureau_clerk.status_code == 422
    assert (
        client.post("/api/v1/accounts", json=body, headers=org.headers("rev-c")).status_code == 403
    )
    listed = client.get("/api/v1/accounts", headers=admin).json["items"]
    assert "clerk-h2" in {a["username"] for a in listed}


def test_hiding_counts_from_a_time_keeps_campaign_reads_working(
    client: FlaskClient, org: Org
) -> None:
    slug = org.campaign()
    shanghai = ZoneInfo("Asia/Shanghai")  # the last week's counts hidden from a local midnight
    hide_from = (utcnow().astimezone(shanghai) + timedelta(days=18)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    rules = {
        "votes_per_day": 5,
        "votes_per_nominee_per_day": 1,
        "hide_counts_from": hide_from.isoformat(),
    }
    response = client.patch(
        f"/api/v1/campaigns/{slug}", json={"rules": rules}, headers=org.headers("admin")
    )
    assert response.status_code == 200
    shown = client.get(f"/api/v1/campaigns/{slug}").json["rules"]["hide_counts_from"]
    assert datetime.fromisoformat(shown) == hide_from.astimezone(UTC)  # the same instant, in UTC
    assert client.get("/api/v1/campaigns").status_code == 200


def test_openapi_declares_the_refusals_with_the_error_envelope(client: FlaskClient) -> None:
    """Found by tests/fuzz: these answers were undocumented, or documented without a body, so
    neither clients nor the schema checks knew their shape."""
    paths = client.get("/api/openapi.json").json["paths"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    declared = {
        ("/api/v1/auth/login", "post"): {401, 429, 503},
        ("/api/v1/units", "post"): {404, 409},
        ("/api/v1/accounts", "post"): {404, 409},
        ("/api/v1/campaigns", "post"): {409},
        ("/api/v1/campaigns/{slug}", "get"): {404},
        ("/api/v1/campaigns/{slug}", "patch"): {404, 409},
        ("/api/v1/admin/campaigns/{slug}", "get"): {404},
        ("/api/v1/campaigns/{slug}/phase", "post"): {404, 409},
        ("/api/v1/campaigns/{slug}/categories", "post"): {404, 409},
    }
    for (path, method), statuses in declared.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            body = responses[str(status)]["content"]["application/json"]["schema"]
            assert body == envelope, (method, path, status)


def test_staff_read_every_rule_the_public_only_the_public_ones(
    client: FlaskClient, org: Org
) -> None:
    org.campaign(rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1, "velocity_factor": 8})
    staff = client.get("/api/v1/admin/campaigns/c1", headers=org.headers("admin")).json
    public = client.get("/api/v1/campaigns/c1").json
    assert staff["rules"]["velocity_factor"] == 8
    assert "velocity_factor" not in public["rules"]
