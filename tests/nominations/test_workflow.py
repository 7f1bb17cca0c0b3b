"""The nomination workflow end to end through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from tests.factories import Org, nomination_body


def _create(client: FlaskClient, org: Org, user: str = "unit-h1", **overrides) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = client.post(
        "/api/v1/campaigns/c1/nominations",
        json=nomination_body(**overrides),
        headers=org.headers(user),
    )
    assert response.status_code == 201, response.json
    return response.json


def test_unit_drafts_submits_bureau_recommends_committee_approves(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign(require_recommendation=True)
    draft = _create(client, org)
    assert draft["status"] == "draft" and draft["number"] is None
    nid = draft["id"]

    edited = client.patch(
        f"/api/v1/nominations/{nid}", json={"summary": "新的简介"}, headers=org.headers("unit-h1")
    )
    assert edited.status_code == 200 and edited.json["summary"] == "新的简介"

    submitted = client.post(f"/api/v1/nominations/{nid}/submit", headers=org.headers("unit-h1"))
    assert submitted.status_code == 200 and submitted.json["status"] == "submitted"

    early = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    assert early.status_code == 409
    assert early.json["error"]["code"] == "recommendation_required"

    recommended = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve", "comment": "同意推荐"},
        headers=org.headers("rev-k1"),
    )
    assert recommended.status_code == 200
    assert recommended.json["status"] == "submitted" and recommended.json["recommended"] is True

    approved = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    assert approved.status_code == 200
    assert approved.json["status"] == "approved" and approved.json["number"] == "D001"
    history = [(r["action"], r["to_status"]) for r in approved.json["reviews"]]
    assert history == [
        ("submit", "submitted"),
        ("recommend", "submitted"),
        ("approve", "approved"),
    ]

    public = client.get("/api/v1/campaigns/c1/nominees").json
    assert [n["number"] for n in public["items"]] == ["D001"]

    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.action)
            .where(AuditLog.object_type == "nomination")
            .order_by(AuditLog.id)
        ).all()
        assert actions == [
            "nomination.create",
            "nomination.update",
            "nomination.submit",
            "nomination.recommend",
            "nomination.approve",
        ]
        approve = db.session.scalar(select(AuditLog).where(AuditLog.action == "nomination.approve"))
        assert approve.before["status"] == "submitted"
        assert approve.after == {
            "status": "approved",
            "number": "D001",
            "category": "doctor",
            "recommended": True,
        }
        assert approve.ip == "127.0.0.1"


def test_return_needs_a_comment_and_the_unit_resubmits(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    admin = org.headers("admin")
    bare = client.post(
        f"/api/v1/nominations/{nid}/review", json={"decision": "return"}, headers=admin
    )
    assert bare.status_code == 422 and bare.json["error"]["code"] == "comment_required"
    returned = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "return", "comment": "请补充事迹中的具体数据"},
        headers=admin,
    )
    assert returned.json["status"] == "returned"
    seen = client.get(f"/api/v1/nominations/{nid}", headers=org.headers("unit-h1")).json
    assert seen["reviews"][-1]["comment"] == "请补充事迹中的具体数据"

    clerk = org.headers("unit-h1")
    assert (
        client.patch(
            f"/api/v1/nominations/{nid}", json={"deeds": "补充后的事迹"}, headers=clerk
        ).status_code
        == 200
    )
    again = client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk)
    assert again.status_code == 200 and again.json["status"] == "submitted"


def test_reject_is_final(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    rejected = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "reject", "comment": "不符合参评条件"},
        headers=org.headers("rev-k1"),
    )
    assert rejected.json["status"] == "rejected"
    clerk = org.headers("unit-h1")
    assert client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk).status_code == 409
    patch = client.patch(f"/api/v1/nominations/{nid}", json={"name": "x"}, headers=clerk)
    assert patch.status_code == 409 and patch.json["error"]["code"] == "not_editable"


def test_withdraw(client: FlaskClient, org: Org) -> None:
    org.campaign()
    clerk = org.headers("unit-h1")
    nid = org.nomination(status="submitted")
    assert (
        client.post(f"/api/v1/nominations/{nid}/withdraw", json={}, headers=clerk).json["status"]
        == "withdrawn"
    )
    approved = org.nomination(status="approved")
    refused = client.post(f"/api/v1/nominations/{approved}/withdraw", json={}, headers=clerk)
    assert refused.status_code == 409
    admin = org.headers("admin")
    no_reason = client.post(f"/api/v1/nominations/{approved}/withdraw", json={}, headers=admin)
    assert no_reason.status_code == 422
    ok = client.post(
        f"/api/v1/nominations/{approved}/withdraw", json={"comment": "本人申请退出"}, headers=admin
    )
    assert ok.json["status"] == "withdrawn"
    assert client.get("/api/v1/campaigns/c1/nominees").json["total"] == 0


def test_numbers_are_gapless_per_prefix(client: FlaskClient, org: Org) -> None:
    org.campaign(max_per_unit=5)
    ids = [org.nomination(status="submitted", category=c) for c in ("doctor", "nurse", "doctor")]
    admin = org.headers("admin")
    numbers = [
        client.post(
            f"/api/v1/nominations/{i}/review", json={"decision": "approve"}, headers=admin
        ).json["number"]
        for i in ids
    ]
    assert numbers == ["D001", "N001", "D002"]


def test_nominations_only_while_nominating(client: FlaskClient, org: Org) -> None:
    org.campaign(phase="reviewing")
    response = client.post(
        "/api/v1/campaigns/c1/nominations", json=nomination_body(), headers=org.headers("unit-h1")
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "nomination_closed"


def test_nomination_window_is_enforced_even_in_the_nominating_phase(
    client: FlaskClient, org: Org
) -> None:
    now = utcnow()  # a nomination window that closed three weeks ago
    org.campaign(
        nomination_start=(now - timedelta(days=30)).isoformat(),
        nomination_end=(now - timedelta(days=21)).isoformat(),
    )
    response = client.post(
        "/api/v1/campaigns/c1/nominations", json=nomination_body(), headers=org.headers("unit-h1")
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "nomination_closed"


def test_deeds_limit_counts_characters_not_bytes(client: FlaskClient, org: Org) -> None:
    org.campaign()
    clerk = org.headers("unit-h1")
    url = "/api/v1/campaigns/c1/nominations"
    exactly = client.post(url, json=nomination_body(deeds="德" * 3000), headers=clerk)
    assert exactly.status_code == 201  # 9000 bytes in UTF-8, 3000 characters
    over = client.post(url, json=nomination_body(deeds="德" * 3001), headers=clerk)
    assert over.status_code == 422
    assert "deeds" in over.json["error"]["details"]["fields"]
    crlf = client.post(url, json=nomination_body(deeds="德\r\n" * 1500), headers=clerk)
    assert crlf.status_code == 201  # a line break is one character, as in the textarea
    summary = client.post(url, json=nomination_body(summary="好" * 121), headers=clerk)
    assert summary.status_code == 422


def test_unknown_category(client: FlaskClient, org: Org) -> None:
    org.campaign()
    response = client.post(
        "/api/v1/campaigns/c1/nominations",
        json=nomination_body(category="dentist"),
        headers=org.headers("unit-h1"),
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "category_not_found"


def test_submit_over_quota_is_refused_and_changes_nothing(client: FlaskClient, org: Org) -> None:
    org.campaign(max_per_unit=1)
    org.nomination(status="submitted")
    second = org.nomination()
    response = client.post(f"/api/v1/nominations/{second}/submit", headers=org.headers("unit-h1"))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "unit_quota_exceeded"
    assert "十大最美医生" in response.json["error"]["message"]
    assert org.status_of(second) == "draft"
    # Another unit has its own place.
    other = org.nomination(unit_user="unit-h2")
    assert (
        client.post(
            f"/api/v1/nominations/{other}/submit", headers=org.headers("unit-h2")
        ).status_code
        == 200
    )


def test_admin_nominates_for_a_named_unit(client: FlaskClient, org: Org) -> None:
    org.campaign()
    admin = org.headers("admin")
    missing = client.post("/api/v1/campaigns/c1/nominations", json=nomination_body(), headers=admin)
    assert missing.status_code == 422 and missing.json["error"]["code"] == "unit_required"
    ok = client.post(
        "/api/v1/campaigns/c1/nominations", json=nomination_body(unit_code="H3"), headers=admin
    )
    assert ok.status_code == 201 and ok.json["unit_code"] == "H3"


def test_a_return_clears_the_bureau_recommendation(client: FlaskClient, org: Org) -> None:
    org.campaign(require_recommendation=True)
    nid = org.nomination(status="submitted")
    client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("rev-k1"),
    )
    client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "return", "comment": "请修改"},
        headers=org.headers("admin"),
    )
    clerk = org.headers("unit-h1")
    client.patch(f"/api/v1/nominations/{nid}", json={"deeds": "改写后的事迹"}, headers=clerk)
    client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk)
    approve = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    assert approve.status_code == 409 and approve.json["error"]["code"] == "recommendation_required"


def test_openapi_declares_the_refusals_with_the_error_envelope(client: FlaskClient) -> None:
    """Found by tests/fuzz: 403, 404 and 409 of the workflow were undocumented."""
    paths = client.get("/api/openapi.json").json["paths"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    declared = {
        ("/api/v1/campaigns/{slug}/nominations", "post"): {403, 404, 409},
        ("/api/v1/campaigns/{slug}/nominations", "get"): {404},
        ("/api/v1/nominations/{nomination_id}", "get"): {404},
        ("/api/v1/nominations/{nomination_id}", "patch"): {403, 404, 409},
        ("/api/v1/nominations/{nomination_id}/submit", "post"): {403, 404, 409},
        ("/api/v1/nominations/{nomination_id}/withdraw", "post"): {403, 404, 409},
        ("/api/v1/nominations/{nomination_id}/review", "post"): {404, 409},
        ("/api/v1/campaigns/{slug}/nominees", "get"): {404},
        ("/api/v1/campaigns/{slug}/nominees/{number}", "get"): {404},
    }
    for (path, method), statuses in declared.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            body = responses[str(status)]["content"]["application/json"]["schema"]
            assert body == envelope, (method, path, status)


def test_list_filters_by_the_bureau_recommendation(client: FlaskClient, org: Org) -> None:
    org.campaign()
    first = org.nomination(status="submitted")
    second = org.nomination(status="submitted", unit_user="unit-h2")
    recommend = client.post(
        f"/api/v1/nominations/{first}/review",
        json={"decision": "approve", "comment": "同意推荐"},
        headers=org.headers("rev-k1"),
    )
    assert recommend.status_code == 200, recommend.json
    admin = org.headers("admin")
    url = "/api/v1/campaigns/c1/nominations?status=submitted"
    yes = client.get(f"{url}&recommended=true", headers=admin).json
    no = client.get(f"{url}&recommended=false", headers=admin).json
    assert [n["id"] for n in yes["items"]] == [first] and yes["total"] == 1
    assert [n["id"] for n in no["items"]] == [second] and no["total"] == 1
    assert client.get(f"{url}&recommended=maybe", headers=admin).status_code == 422


def test_refused_fields_are_explained_in_chinese(client: FlaskClient, org: Org) -> None:
    org.campaign()
    response = client.post(
        "/api/v1/campaigns/c1/nominations",
        json={"category": "doctor", "name": "", "gender": "x", "years_of_service": 99},
        headers=org.headers("unit-h1"),
    )
    assert response.status_code == 422
    fields = response.json["error"]["details"]["fields"]
    assert fields["name"] == ["姓名应为 1–40 个字"]
    assert fields["gender"] == ["性别请选择男或女"]
    assert fields["years_of_service"] == ["从业年限应在 0–70 年之间"]
    assert fields["deeds"] == ["此项必填"]
