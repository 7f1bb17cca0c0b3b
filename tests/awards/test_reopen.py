"""A result reopened by an upheld objection carries the committee's adjustments forward."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from awards import results
from awards.models import ResultVersion
from campaigns import services as campaign_services
from campaigns.models import Category
from core.audit import AuditLog
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from nominations.models import Nomination
from tests.awards.test_results import _judging_campaign, _score
from tests.factories import Org

URL = "/api/v1/admin/campaigns/v1"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


def _published_with_adjustments(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    """Version 1 published with D001 excluded and D003 promoted. Combined (30/70): D001 86,
    D002 78, D004 57, D003 49; two awards: the winners are D003 (promoted) and D002."""
    d1, d2, d3, d4 = numbers = _judging_campaign(app, client, org)
    admin = org.headers("admin")
    for number, total in ((d1, 80), (d2, 90), (d3, 70), (d4, 60)):
        _ok(_score(client, org, "judge", number, total))
    _ok(client.post(f"{URL}/results", json={}, headers=admin), 201)
    for number, action, reason in (
        (d1, "exclude", "事迹材料不实"),
        (d3, "promote", "评委会一致推荐"),
    ):
        _ok(
            client.post(
                f"{URL}/results/1/adjustments",
                json={"nominee": number, "action": action, "reason": reason},
                headers=admin,
            )
        )
    _ok(client.post(f"{URL}/results/1/finalize", headers=admin))
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))
    assert _winners(client) == sorted([d2, d3])
    return numbers


def _winners(client: FlaskClient) -> list[str]:
    return sorted(w["number"] for w in _ok(client.get("/api/v1/campaigns/v1/winners"))["winners"])


def _uphold(client: FlaskClient, org: Org, nominee: str | None = None) -> int:
    """File an objection and uphold it; the number of the reopened version."""
    filed = _ok(
        client.post(
            "/api/v1/campaigns/v1/objections",
            json={
                "nominee": nominee,
                "contact_name": "王先生",
                "contact_phone": "13800000000",
                "text": "对公示结果有异议",
            },
        ),
        201,
    )
    answered = _ok(
        client.post(
            f"{URL}/objections/{filed['id']}",
            json={"decision": "upheld", "answer": "经核实，异议成立"},
            headers=org.headers("admin"),
        )
    )
    return answered["reopened_version"]


def _republish(client: FlaskClient, org: Org, number: int) -> None:
    admin = org.headers("admin")
    _ok(client.post(f"{URL}/results/{number}/finalize", headers=admin))
    assert _ok(client.post(f"{URL}/results/{number}/publish", headers=admin))["version"] == number


def _adjustments(app: Flask, number: int) -> dict[str, dict[str, Any]]:
    """The version's adjustments by nominee number (the last one made for each)."""
    with app.app_context():
        version = db.session.scalar(select(ResultVersion).where(ResultVersion.version == number))
        rows = {
            a.number: {
                "id": a.id,
                "action": a.action,
                "reason": a.reason,
                "created_by": a.created_by,
                "created_at": a.created_at,
                "made_in_version": a.made_in_version,
                "carried_from_version": a.carried_from_version,
                "status": a.status,
                "not_applied_reason": a.not_applied_reason,
                "removed_by": a.removed_by,
                "removed_reason": a.removed_reason,
            }
            for a in version.adjustments
        }
        db.session.remove()
    return rows


def _entries(client: FlaskClient, org: Org, number: int) -> dict[str, dict[str, Any]]:
    version = _ok(client.get(f"{URL}/results/{number}", headers=org.headers("admin")))
    return {e["number"]: e for e in version["entries"]}


def _audit(app: Flask, action: str) -> list[AuditLog]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
            )
        )
        db.session.expunge_all()
        db.session.remove()
    return rows


def test_reopened_result_keeps_the_committees_adjustments(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3, d4 = _published_with_adjustments(app, client, org)
    admin = org.headers("admin")
    first = _adjustments(app, 1)

    # The objection against D004 is upheld: version 2 still excludes D001 and promotes D003,
    # with the same reasons, authors and times, marked as carried from version 1.
    assert _uphold(client, org, d4) == 2
    carried = _adjustments(app, 2)
    assert set(carried) == {d1, d3}
    for number in (d1, d3):
        assert carried[number]["carried_from_version"] == 1
        assert carried[number]["made_in_version"] == 1
        assert carried[number]["status"] == "applied"
        for key in ("action", "reason", "created_by", "created_at"):
            assert carried[number][key] == first[number][key], key
    assert carried[d1]["created_by"] == "admin"
    entries = _entries(client, org, 2)
    assert (entries[d1]["adjustment"], entries[d1]["adjustment_reason"]) == (
        "exclude",
        "事迹材料不实",
    )
    assert (entries[d3]["adjustment"], entries[d3]["adjustment_reason"]) == (
        "promote",
        "评委会一致推荐",
    )
    assert sorted(n for n, e in entries.items() if e["winner"]) == sorted([d2, d3])
    carries = _audit(app, "results.carry")
    assert [(a.after["nominee"], a.reason, a.actor_name) for a in carries] == [
        (d1, "事迹材料不实", "admin"),
        (d3, "评委会一致推荐", "admin"),
    ]

    # The objection's own consequence sits beside the carried adjustments.
    _ok(
        client.post(
            f"{URL}/results/2/adjustments",
            json={"nominee": d4, "action": "exclude", "reason": "异议成立：事迹数据不实"},
            headers=admin,
        )
    )
    both = _adjustments(app, 2)
    assert {n: (a["action"], a["carried_from_version"]) for n, a in both.items()} == {
        d1: ("exclude", 1),
        d3: ("promote", 1),
        d4: ("exclude", None),
    }

    # Republishing does not bring D001 back.
    _republish(client, org, 2)
    assert _winners(client) == sorted([d2, d3])

    # A second upheld objection: version 3 carries all three from version 2, first made in 1 and 2.
    assert _uphold(client, org) == 3
    third = _adjustments(app, 3)
    assert {n: (a["carried_from_version"], a["made_in_version"]) for n, a in third.items()} == {
        d1: (2, 1),
        d3: (2, 1),
        d4: (2, 2),
    }

    # The committee removes the carried exclusion explicitly: D001 is back, the removal is
    # listed and audited.
    _ok(
        client.post(
            f"{URL}/results/3/adjustments",
            json={"nominee": d1, "action": "clear", "reason": "复核后事迹属实"},
            headers=admin,
        )
    )
    removed = _adjustments(app, 3)[d1]
    assert (removed["status"], removed["removed_by"], removed["removed_reason"]) == (
        "removed",
        "admin",
        "复核后事迹属实",
    )
    assert _entries(client, org, 3)[d1]["adjustment"] is None
    clear = _audit(app, "results.clear")[-1]
    assert clear.actor_name == "admin" and clear.reason == "复核后事迹属实"
    assert clear.before["carried_from_version"] == 2 and clear.before["action"] == "exclude"
    _republish(client, org, 3)
    assert _winners(client) == sorted([d1, d3])

    # A removed adjustment is not carried again.
    assert _uphold(client, org) == 4
    assert set(_adjustments(app, 4)) == {d3, d4}


def test_removing_an_adjustment_is_the_committees_and_only_in_a_draft(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, *_ = _published_with_adjustments(app, client, org)
    admin = org.headers("admin")
    assert _uphold(client, org) == 2
    body = {"nominee": d1, "action": "clear", "reason": "复核"}
    for who in ("judge", "unit-h1", "rev-k1"):
        refused = client.post(f"{URL}/results/2/adjustments", json=body, headers=org.headers(who))
        assert refused.status_code == 403, who
    no_reason = client.post(
        f"{URL}/results/2/adjustments", json={**body, "reason": ""}, headers=admin
    )
    assert no_reason.status_code == 422
    published = client.post(f"{URL}/results/1/adjustments", json=body, headers=admin)
    assert published.status_code == 409 and published.json["error"]["code"] == "version_locked"
    assert _adjustments(app, 2)[d1]["status"] == "applied"

    ids = {n: a["id"] for n, a in _adjustments(app, 1).items()}
    with app.app_context():
        campaign = campaign_services.get_campaign("v1")
        admin_account = org.account("admin")
        with pytest.raises(Conflict):
            results.remove_adjustment(
                campaign, results.get_version(campaign, 1), ids[d1], admin_account, "复核"
            )
        draft = results.get_version(campaign, 2)
        with pytest.raises(NotFound):
            results.remove_adjustment(campaign, draft, ids[d1], admin_account, "复核")  # v1's
        own = next(a for a in draft.adjustments if a.number == d1)
        with pytest.raises(ValidationFailed):
            results.remove_adjustment(campaign, draft, own.id, admin_account, " ")
        results.remove_adjustment(campaign, draft, own.id, admin_account, "复核后事迹属实")
        db.session.commit()
        assert next(e for e in draft.entries if e.number == d1).adjustment is None
        db.session.remove()
    assert _adjustments(app, 2)[d1]["removed_by"] == "admin"


def test_an_adjustment_that_no_longer_applies_stays_listed(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, _, d3, _ = _published_with_adjustments(app, client, org)
    admin = org.headers("admin")
    with app.app_context():
        excluded = db.session.scalar(select(Nomination).where(Nomination.number == d1))
        promoted = db.session.scalar(select(Nomination).where(Nomination.number == d3))
        excluded_id = excluded.id
        promoted.category_id = db.session.scalar(
            select(Category.id).where(
                Category.code == "nurse", Category.campaign_id == promoted.campaign_id
            )
        )
        db.session.commit()
        db.session.remove()
    _ok(
        client.post(
            f"/api/v1/nominations/{excluded_id}/withdraw",
            json={"comment": "本人申请退出"},
            headers=admin,
        )
    )

    assert _uphold(client, org) == 2
    carried = _adjustments(app, 2)
    assert carried[d1]["status"] == "not_applied" and "已撤回" in carried[d1]["not_applied_reason"]
    assert carried[d3]["status"] == "not_applied" and "nurse" in carried[d3]["not_applied_reason"]
    assert carried[d1]["reason"] == "事迹材料不实" and carried[d1]["carried_from_version"] == 1
    entries = _entries(client, org, 2)
    assert d1 not in entries and entries[d3]["adjustment"] is None

    # Only the committee takes it out, by the nominee's number even without an entry.
    _ok(
        client.post(
            f"{URL}/results/2/adjustments",
            json={"nominee": d1, "action": "clear", "reason": "候选人已撤回"},
            headers=admin,
        )
    )
    assert _adjustments(app, 2)[d1]["status"] == "removed"
    _republish(client, org, 2)
    assert _uphold(client, org) == 3
    assert {n: a["status"] for n, a in _adjustments(app, 3).items()} == {d3: "not_applied"}


def test_a_computation_before_publication_starts_from_scratch(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, *_ = _judging_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(client.post(f"{URL}/results", json={}, headers=admin), 201)
    _ok(
        client.post(
            f"{URL}/results/1/adjustments",
            json={"nominee": d1, "action": "exclude", "reason": "事迹材料不实"},
            headers=admin,
        )
    )
    _ok(client.post(f"{URL}/results", json={}, headers=admin), 201)
    assert _adjustments(app, 2) == {}
    assert _adjustments(app, 1)[d1]["made_in_version"] == 1
