"""Recommendation level by level: the chain, quotas (raced), returns across levels, deadlines and
their extension, the trail, and who may decide what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns import services as campaign_services
from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from tests.factories import PASSWORD, Org
from tests.nominations.test_races import _race
from tests.pages.browser import staff_login


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def _refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code, response.json


def _chain(
    client: FlaskClient,
    org: Org,
    county: int = 1,
    city: int = 1,
    county_deadline: timedelta = timedelta(days=5),
) -> dict[str, Any]:
    now = utcnow()
    body = {
        "levels": [
            {
                "unit_level": "county",
                "deadline": (now + county_deadline).isoformat(),
                "quotas": {"doctor": county, "nurse": county},
            },
            {
                "unit_level": "city",
                "deadline": (now + timedelta(days=8)).isoformat(),
                "quotas": {"doctor": city, "nurse": city},
            },
        ]
    }
    return _ok(client.put("/api/v1/campaigns/c1/levels", json=body, headers=org.headers("admin")))


def _decide(
    client: FlaskClient, org: Org, nid: int, who: str, decision: str, comment: str | None = None
) -> Any:
    return client.post(
        f"/api/v1/nominations/{nid}/level-decision",
        json={"decision": decision, "comment": comment},
        headers=org.headers(who),
    )


def _mine(client: FlaskClient, org: Org, who: str) -> dict[str, Any]:
    return _ok(client.get("/api/v1/campaigns/c1/levels", headers=org.headers(who)))["mine"]


def _used(client: FlaskClient, org: Org, who: str, category: str = "doctor") -> int:
    places = _mine(client, org, who)["places"]
    return next(p["used"] for p in places if p["category"] == category)


def _extra_units(app: Flask, org: Org) -> None:
    """A tertiary hospital directly under the city (HC, clerk unit-hc) and a province reviewer."""
    with app.app_context():
        campaign_services.create_unit("HC", "市第一人民医院", "institution", "C")
        for username, role, unit in (("unit-hc", "unit", "HC"), ("rev-p", "reviewer", "P")):
            org.accounts[username] = campaign_services.create_account(
                username, PASSWORD, role, unit
            ).id
        db.session.commit()
        db.session.remove()


def test_a_nomination_climbs_county_and_city_to_the_committee(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    chain = _chain(client, org)
    assert [level["unit_level"] for level in chain["levels"]] == ["county", "city"]
    assert chain["levels"][0]["quotas"] == {"doctor": 1, "nurse": 1}
    nid = org.nomination(status="submitted")
    seen = _ok(client.get(f"/api/v1/nominations/{nid}", headers=org.headers("unit-h1")))
    assert seen["at_level"] == "county" and seen["at_unit"] == "单位K1" and seen["levels"] == []

    # The county's queue holds it; the city's does not yet.
    waiting = "/api/v1/campaigns/c1/nominations?awaiting=true"
    assert [n["id"] for n in _ok(client.get(waiting, headers=org.headers("rev-k1")))["items"]] == [
        nid
    ]
    assert _ok(client.get(waiting, headers=org.headers("rev-c")))["total"] == 0
    assert _mine(client, org, "rev-k1")["waiting"] == 1

    passed = _ok(_decide(client, org, nid, "rev-k1", "pass", "同意推荐上报"))
    assert passed["at_level"] == "city" and passed["status"] == "submitted"
    assert passed["recommended"] is False
    assert _used(client, org, "rev-k1") == 1
    # The old review call works for a bureau too: approve is a pass.
    up = _ok(
        client.post(
            f"/api/v1/nominations/{nid}/review",
            json={"decision": "approve", "comment": "市级审核同意"},
            headers=org.headers("rev-c"),
        )
    )
    assert up["at_level"] == "committee" and up["recommended"] is True
    approved = _ok(
        client.post(
            f"/api/v1/nominations/{nid}/review",
            json={"decision": "approve"},
            headers=org.headers("admin"),
        )
    )
    assert approved["status"] == "approved" and approved["number"] == "D001"

    trail = approved["levels"]
    assert [(t["unit_level"], t["unit"], t["decision"], t["comment"]) for t in trail] == [
        ("county", "单位K1", "pass", "同意推荐上报"),
        ("city", "单位C", "pass", "市级审核同意"),
    ]
    assert {t["actor"] for t in trail} == {"rev-k1", "rev-c"} and all(t["at"] for t in trail)
    assert trail[0]["level_label"] == "县（旗）级"
    actions = [r["action"] for r in approved["reviews"]]
    assert actions == ["submit", "pass_up", "pass_up", "approve"]
    with app.app_context():
        audited = db.session.scalars(
            select(AuditLog.action).where(AuditLog.object_type == "nomination")
        ).all()
        assert audited.count("nomination.pass_up") == 2
        assert db.session.scalar(select(AuditLog.action).where(AuditLog.action == "levels.set"))


def test_wrong_role_wrong_subtree_and_wrong_level_are_refused(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _extra_units(app, org)
    _chain(client, org)
    nid = org.nomination(status="submitted")
    _refused(_decide(client, org, nid, "rev-k2", "pass"), 404, "nomination_not_found")
    _refused(_decide(client, org, nid, "unit-h1", "pass"), 403, "forbidden")
    _refused(_decide(client, org, nid, "admin", "pass"), 403, "forbidden")
    _refused(_decide(client, org, nid, "rev-p", "pass"), 403, "not_a_level")
    _refused(_decide(client, org, nid, "rev-c", "pass"), 409, "not_at_your_level")
    _refused(_decide(client, org, nid, "rev-k1", "maybe"), 422, "validation_error")
    _refused(_decide(client, org, nid, "rev-k1", "reject"), 422, "comment_required")
    # The committee decides only what every level passed up.
    early = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    _refused(early, 409, "recommendation_required")
    # Once passed up, the county cannot decide again.
    _ok(_decide(client, org, nid, "rev-k1", "pass"))
    _refused(_decide(client, org, nid, "rev-k1", "pass"), 409, "not_at_your_level")
    # Only the committee sets the chain.
    refused = client.put(
        "/api/v1/campaigns/c1/levels", json={"levels": []}, headers=org.headers("rev-c")
    )
    assert refused.status_code == 403
    # The county cannot edit what it has passed up.
    patch = client.patch(
        f"/api/v1/nominations/{nid}", json={"summary": "改"}, headers=org.headers("rev-k1")
    )
    _refused(patch, 403, "not_owner")


def test_returns_go_down_one_level_and_free_the_place(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination(status="submitted")
    _ok(_decide(client, org, nid, "rev-k1", "pass"))
    assert _used(client, org, "rev-k1") == 1

    back = _ok(_decide(client, org, nid, "rev-c", "return", "请县级核实获奖情况"))
    assert back["status"] == "submitted" and back["at_level"] == "county"
    assert _used(client, org, "rev-k1") == 0
    assert back["levels"][-1]["returned_to"] == "county"
    assert [t["holds_place"] for t in back["levels"]] == [False, False]

    # The county fixes the dossier itself and passes it up again …
    fixed = client.patch(
        f"/api/v1/nominations/{nid}",
        json={"summary": "县级核实后的简介"},
        headers=org.headers("rev-k1"),
    )
    assert _ok(fixed)["summary"] == "县级核实后的简介"
    _ok(_decide(client, org, nid, "rev-k1", "pass", "已核实"))
    # … the city passes it, the committee returns it to the city, which returns it further down.
    _ok(_decide(client, org, nid, "rev-c", "pass"))
    committee = _ok(
        client.post(
            f"/api/v1/nominations/{nid}/review",
            json={"decision": "return", "comment": "请市级复核"},
            headers=org.headers("admin"),
        )
    )
    assert committee["at_level"] == "city" and committee["recommended"] is False
    assert _used(client, org, "rev-c") == 0 and _used(client, org, "rev-k1") == 1
    _ok(_decide(client, org, nid, "rev-c", "return", "退县级补充"))
    assert _used(client, org, "rev-k1") == 0
    to_unit = _ok(_decide(client, org, nid, "rev-k1", "return", "请单位补充材料"))
    assert to_unit["status"] == "returned" and to_unit["at_level"] is None
    assert to_unit["levels"][-1]["returned_to"] == "unit"

    clerk = org.headers("unit-h1")
    _ok(client.patch(f"/api/v1/nominations/{nid}", json={"deeds": "补充后的事迹"}, headers=clerk))
    again = _ok(client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk))
    assert again["status"] == "submitted" and again["at_level"] == "county"
    labels = [(t["unit_level"], t["decision"]) for t in again["levels"]]
    assert labels == [
        ("county", "pass"),
        ("city", "return"),
        ("county", "pass"),
        ("city", "pass"),
        ("committee", "return"),
        ("city", "return"),
        ("county", "return"),
    ]


def test_reject_at_a_level_is_final_with_level_and_reason(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination(status="submitted")
    _ok(_decide(client, org, nid, "rev-k1", "pass"))
    rejected = _ok(_decide(client, org, nid, "rev-c", "reject", "事迹不够突出"))
    assert rejected["status"] == "rejected" and rejected["at_level"] == "city"
    assert rejected["levels"][-1] | {"at": None} == {
        "unit_level": "city",
        "level_label": "市（盟）级",
        "unit": "单位C",
        "decision": "reject",
        "returned_to": None,
        "holds_place": False,
        "actor": "rev-c",
        "actor_role": "reviewer",
        "comment": "事迹不够突出",
        "at": None,
    }
    _refused(_decide(client, org, nid, "rev-c", "pass"), 409, "not_at_your_level")
    _refused(
        client.post(f"/api/v1/nominations/{nid}/submit", headers=org.headers("unit-h1")),
        409,
        "not_submittable",
    )


def test_parallel_passes_cannot_exceed_a_bureaus_quota(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign(max_per_unit=2)
    _chain(client, org, county=1)
    ids = [org.nomination(unit_user=user, status="submitted") for user in ("unit-h1", "unit-h2")]
    ids += [org.nomination(unit_user=user, status="submitted") for user in ("unit-h1", "unit-h2")]
    headers = org.headers("rev-k1")

    def passing(nid: int) -> Any:
        return lambda c: c.post(
            f"/api/v1/nominations/{nid}/level-decision", json={"decision": "pass"}, headers=headers
        )

    responses = _race(app, [passing(nid) for nid in ids])
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    refused = [r.json["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in refused} == {"level_quota_exceeded"}
    assert refused[0]["details"] == {"category": "doctor", "unit_level": "county", "quota": 1}
    assert _used(client, org, "rev-k1") == 1
    # Another category has its own places; a withdrawal frees the one taken.
    nurse = org.nomination(status="submitted", category="nurse")
    _ok(_decide(client, org, nurse, "rev-k1", "pass"))
    winner = next(nid for nid, r in zip(ids, responses, strict=True) if r.status_code == 200)
    owner = "unit-h1" if winner in (ids[0], ids[2]) else "unit-h2"
    _ok(client.post(f"/api/v1/nominations/{winner}/withdraw", json={}, headers=org.headers(owner)))
    assert _used(client, org, "rev-k1") == 0
    loser = next(nid for nid in ids if nid != winner)
    _ok(_decide(client, org, loser, "rev-k1", "pass"))


def test_a_level_locks_at_its_deadline_until_the_committee_extends_it(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination(status="submitted")
    late = org.nomination(unit_user="unit-h2")
    # The county's deadline has passed (quotas and deadlines may change after submissions).
    _chain(client, org, county_deadline=timedelta(minutes=-1))
    _refused(_decide(client, org, nid, "rev-k1", "pass"), 409, "level_closed")
    _refused(
        client.post(f"/api/v1/nominations/{late}/submit", headers=org.headers("unit-h2")),
        409,
        "level_closed",
    )
    assert _mine(client, org, "rev-k1")["locked"] is True

    url = "/api/v1/campaigns/c1/levels/county/extend"
    later = (utcnow() + timedelta(days=2)).isoformat()
    _refused(
        client.post(url, json={"deadline": later, "reason": "延期"}, headers=org.headers("rev-k1")),
        403,
        "forbidden",
    )
    earlier = (utcnow() - timedelta(hours=1)).isoformat()
    _refused(
        client.post(
            url, json={"deadline": earlier, "reason": "延期"}, headers=org.headers("admin")
        ),
        422,
        "invalid_deadline",
    )
    _refused(
        client.post(
            "/api/v1/campaigns/c1/levels/region/extend",
            json={"deadline": later, "reason": "延期"},
            headers=org.headers("admin"),
        ),
        404,
        "level_not_found",
    )
    extended = _ok(
        client.post(
            url, json={"deadline": later, "reason": "疫情影响延期"}, headers=org.headers("admin")
        )
    )
    assert extended["levels"][0]["locked"] is False and extended["levels"][0]["extended_at"]
    _ok(_decide(client, org, nid, "rev-k1", "pass"))
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "levels.extend"))
        assert entry is not None and entry.reason == "疫情影响延期"


def test_a_unit_directly_under_the_city_nominates_to_the_city_with_its_own_quota(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign(max_per_unit=3)
    _extra_units(app, org)
    _chain(client, org)
    admin = org.headers("admin")
    quotas = _ok(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/HC", json={"quotas": {"doctor": 1}}, headers=admin
        )
    )
    assert quotas["unit_quotas"] == {"HC": {"doctor": 1}}
    _refused(
        client.put("/api/v1/campaigns/c1/unit-quotas/HC", json={"quotas": {"x": 1}}, headers=admin),
        404,
        "category_not_found",
    )
    _refused(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/HC", json={"quotas": {"doctor": -1}}, headers=admin
        ),
        422,
        "validation_error",
    )
    first = org.nomination(unit_user="unit-hc", status="submitted")
    seen = _ok(client.get(f"/api/v1/nominations/{first}", headers=org.headers("rev-c")))
    assert seen["at_level"] == "city" and seen["at_unit"] == "单位C"
    second = org.nomination(unit_user="unit-hc")
    _refused(
        client.post(f"/api/v1/nominations/{second}/submit", headers=org.headers("unit-hc")),
        409,
        "unit_quota_exceeded",
    )
    _refused(_decide(client, org, first, "rev-k1", "pass"), 404, "nomination_not_found")
    up = _ok(_decide(client, org, first, "rev-c", "pass"))
    assert up["at_level"] == "committee"
    # The city returns to the unit directly: there is no level below it on this way.
    back = _ok(
        client.post(
            f"/api/v1/nominations/{first}/review",
            json={"decision": "return", "comment": "请补充"},
            headers=admin,
        )
    )
    assert back["at_level"] == "city"
    returned = _ok(_decide(client, org, first, "rev-c", "return", "请医院补充"))
    assert returned["status"] == "returned"
    # A bureau may get its own figure too: the city passes up two doctors instead of one.
    _ok(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/C", json={"quotas": {"doctor": 2}}, headers=admin
        )
    )
    places = {p["category"]: p["quota"] for p in _mine(client, org, "rev-c")["places"]}
    assert places == {"doctor": 2, "nurse": 1}
    other = org.nomination(unit_user="unit-h2", status="submitted")
    _ok(_decide(client, org, other, "rev-k1", "pass"))
    _ok(_decide(client, org, other, "rev-c", "pass"))
    assert _used(client, org, "rev-c") == 1
    _ok(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/C", json={"quotas": {"doctor": None}}, headers=admin
        )
    )
    # Back to the usual figure.
    cleared = client.put(
        "/api/v1/campaigns/c1/unit-quotas/HC", json={"quotas": {"doctor": None}}, headers=admin
    )
    assert _ok(cleared)["unit_quotas"] == {}
    # Unlisted: not the committee.
    _refused(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/HC",
            json={"quotas": {"doctor": 5}},
            headers=org.headers("rev-c"),
        ),
        403,
        "forbidden",
    )


def test_the_chain_is_validated_and_its_levels_lock_once_submitted(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    admin = org.headers("admin")
    soon = (utcnow() + timedelta(days=3)).isoformat()
    later = (utcnow() + timedelta(days=6)).isoformat()

    def put(levels: list[dict[str, Any]]) -> Any:
        return client.put("/api/v1/campaigns/c1/levels", json={"levels": levels}, headers=admin)

    both = {"doctor": 1, "nurse": 1}
    county = {"unit_level": "county", "deadline": soon, "quotas": both}
    city = {"unit_level": "city", "deadline": later, "quotas": both}
    _refused(put([city, county]), 422, "invalid_level_order")
    _refused(put([county, county]), 422, "invalid_level_order")
    _refused(
        put([county | {"deadline": later}, city | {"deadline": soon}]),
        422,
        "invalid_deadline_order",
    )
    _refused(put([county | {"quotas": {"doctor": 1}}]), 422, "quota_required")
    _refused(put([county | {"quotas": {**both, "x": 1}}]), 404, "category_not_found")
    _refused(put([county | {"unit_level": "institution"}]), 422, "validation_error")
    _refused(put([county | {"quotas": {"doctor": -1, "nurse": 1}}]), 422, "validation_error")
    _ok(put([county, city]))
    org.nomination(status="submitted")
    _refused(put([city]), 409, "levels_locked")
    # Quotas may still change; the chain stays.
    changed = _ok(put([county | {"quotas": {"doctor": 2, "nurse": 1}}, city]))
    assert changed["levels"][0]["quotas"] == {"doctor": 2, "nurse": 1}
    judge = client.get("/api/v1/campaigns/c1/levels", headers=org.headers("judge"))
    assert judge.status_code == 403
    _refused(put("not a list"), 422, "validation_error")  # type: ignore[arg-type]
    assert (
        _ok(client.get("/api/v1/campaigns/c1/levels", headers=org.headers("unit-h1")))["mine"]
        is None
    )


def test_the_portal_and_the_review_desk_show_the_trail_and_each_levels_queue(
    app: Flask, org: Org
) -> None:
    org.campaign()
    admin = app.test_client()
    _chain(admin, org)
    nid = org.nomination(status="submitted", name="王建国")
    _ok(_decide(admin, org, nid, "rev-k1", "pass", "县级同意上报"))
    _ok(_decide(admin, org, nid, "rev-c", "return", "请县级补充获奖证明"))

    clerk = app.test_client()
    staff_login(clerk, "unit-h1")
    listed = clerk.get("/portal").get_data(as_text=True)
    assert f'data-testid="waiting-{nid}"' in listed and "待 县（旗）级 · 单位K1 推荐" in listed
    form = clerk.get(f"/portal/nominations/{nid}").get_data(as_text=True)
    assert 'data-testid="level-trail"' in form
    for words in (
        "县级同意上报",
        "请县级补充获奖证明",
        "推荐上报",
        "退回修改",
        "（退回县（旗）级）",
    ):
        assert words in form, words

    county = app.test_client()
    staff_login(county, "rev-k1", area="console")
    todo = county.get("/console/c/c1/review").get_data(as_text=True)
    assert f'data-testid="review-{nid}"' in todo and 'data-testid="level-standing"' in todo
    counts = county.get("/console/c/c1/review/counts").json["views"]
    assert counts["todo"] == 1
    city = app.test_client()
    staff_login(city, "rev-c", area="console")
    assert city.get("/console/c/c1/review/counts").json["views"]["todo"] == 0
    assert f'data-testid="review-{nid}"' not in city.get("/console/c/c1/review").get_data(
        as_text=True
    )


def test_the_portal_counts_a_units_own_places(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign(max_per_unit=2)
    _ok(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/H1",
            json={"quotas": {"doctor": 4}},
            headers=org.headers("admin"),
        )
    )
    org.nomination(status="submitted")
    clerk = app.test_client()
    staff_login(clerk, "unit-h1")
    html = clerk.get("/portal").get_data(as_text=True)
    assert 'data-testid="quota-c1-doctor" data-used="1" data-max="4"' in html
    assert 'data-testid="quota-c1-nurse" data-used="0" data-max="2"' in html
