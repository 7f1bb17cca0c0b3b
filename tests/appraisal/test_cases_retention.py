"""「不满意」 opens a case with its deadline; the unit answers; overdue cases escalate; every
step is audited. Phone numbers are deleted after the retention period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from appraisal import cases, jobs, services
from appraisal.models import Case, Encounter, Invitation, Programme
from core import clock
from core.audit import AuditLog
from core.extensions import db
from tests.appraisal.conftest import BASE, days_ago, form_csrf
from tests.factories import Org

ZONE = ZoneInfo("Asia/Shanghai")


def _rate(client: FlaskClient, app: Flask, choice: str) -> None:
    with app.app_context():
        encounter = db.session.scalar(select(Encounter).order_by(Encounter.id.desc()))
        path = services.link_path(encounter)
        db.session.remove()
    page = client.get(path)
    answer = client.post(
        path, data={"csrf_token": form_csrf(page.get_data(as_text=True)), "choice": choice}
    )
    assert answer.status_code == 200


def test_the_deadline_is_the_15th_of_next_month_local(ctx: Flask, org: Org) -> None:
    programme = Programme(code="x", title="x", bureau_unit_id=1, timezone="Asia/Shanghai")
    now = clock.utcnow()
    local = now.astimezone(ZONE)
    # The last minute of a month, local time: already the next month in no zone but this one.
    month_end = (local.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    ) - timedelta(minutes=1)
    for moment in (now, month_end.astimezone(UTC)):
        due = cases.deadline_for(programme, moment).astimezone(ZONE)
        answered = moment.astimezone(ZONE)
        expected_month = answered.month % 12 + 1
        assert (due.month, due.day, due.hour, due.minute) == (expected_month, 16, 0, 0)
        assert due.year == answered.year + (1 if answered.month == 12 else 0)
    ctx.config["APPRAISAL_CASE_DAY"] = 10
    try:
        assert cases.deadline_for(programme, now).astimezone(ZONE).day == 11
    finally:
        ctx.config["APPRAISAL_CASE_DAY"] = 15


def test_dissatisfied_answers_become_cases(
    client: FlaskClient, org: Org, app: Flask, register: Callable[..., Any]
) -> None:
    register([{"phone": "13812341234", "date": days_ago(1), "department": "内科"}])
    _rate(client, app, "satisfied")
    register([{"phone": "13998765432", "date": days_ago(1), "department": "外科"}])
    _rate(client, app, "dissatisfied")
    listing = client.get(f"{BASE}/programmes/pj/cases", headers=org.headers("unit-h1"))
    items = listing.get_json()["items"]
    assert len(items) == 1 and items[0]["department"] == "外科" and items[0]["status"] == "open"
    case_id = items[0]["id"]
    # Another unit sees nothing and cannot answer; the bureau sees it but does not answer.
    assert (
        client.get(f"{BASE}/programmes/pj/cases", headers=org.headers("unit-h2")).get_json()[
            "items"
        ]
        == []
    )
    reply = {"findings": "已核实：候诊时间过长", "actions": "增开窗口"}
    assert (
        client.post(
            f"{BASE}/cases/{case_id}/response", json=reply, headers=org.headers("unit-h2")
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"{BASE}/cases/{case_id}/response", json=reply, headers=org.headers("rev-k1")
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"{BASE}/cases/{case_id}/response",
            json={"findings": "", "actions": "x"},
            headers=org.headers("unit-h1"),
        ).status_code
        == 422
    )
    done = client.post(
        f"{BASE}/cases/{case_id}/response", json=reply, headers=org.headers("unit-h1")
    )
    assert done.status_code == 200 and done.get_json()["status"] == "closed"
    again = client.post(
        f"{BASE}/cases/{case_id}/response", json=reply, headers=org.headers("unit-h1")
    )
    assert again.get_json()["error"]["code"] == "case_closed"
    with app.app_context():
        actions = list(
            db.session.scalars(
                select(AuditLog.action).where(AuditLog.object_type == "appraisal_case")
            )
        )
        assert actions == ["appraisal.case.open", "appraisal.case.respond"]
        db.session.remove()


def test_overdue_cases_escalate_once(
    client: FlaskClient, org: Org, app: Flask, register: Callable[..., Any]
) -> None:
    for n, phone in enumerate(("13812341234", "13998765432")):
        register([{"phone": phone, "date": days_ago(1), "department": f"科{n}"}])
        _rate(client, app, "dissatisfied")
    with app.app_context():
        first = db.session.scalar(select(Case.id).order_by(Case.id))
        db.session.execute(
            update(Case)
            .where(Case.id == first)
            .values(deadline_at=clock.utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
        assert jobs.escalate_overdue_cases() == 1
        assert jobs.escalate_overdue_cases() == 0
        escalated = db.session.get(Case, first)
        assert escalated.escalated_at is not None
        db.session.remove()
    overdue = client.get(
        f"{BASE}/programmes/pj/cases?status=overdue", headers=org.headers("rev-k1")
    ).get_json()["items"]
    assert [c["id"] for c in overdue] == [first] and overdue[0]["escalated_at"]
    with app.app_context():
        assert (
            db.session.scalar(
                select(db.func.count()).where(AuditLog.action == "appraisal.case.escalate")
            )
            == 1
        )
        db.session.remove()


def test_numbers_are_deleted_after_the_retention(
    client: FlaskClient, org: Org, app: Flask, register: Callable[..., Any]
) -> None:
    register(
        [
            {"phone": "13812341234", "date": days_ago(10), "department": "内科"},
            {"phone": "13998765432", "date": days_ago(1), "department": "内科"},
        ]
    )
    _rate(client, app, "basic")
    # The bureau shortens the retention to 7 days: the older visit's number is now past it.
    short = client.patch(
        f"{BASE}/programmes/pj", json={"retention_days": 7}, headers=org.headers("rev-k1")
    )
    assert short.status_code == 200
    with app.app_context():
        assert jobs.purge_expired_phones() == 1
        assert jobs.purge_expired_phones() == 0
        old, new = db.session.scalars(select(Encounter).order_by(Encounter.encounter_date))
        assert old.phone_cipher is None and old.phone_hash is None and old.phone_masked == "***"
        assert old.purged_at is not None
        assert new.phone_cipher is not None and new.phone_masked == "139****5432"
        invitation = db.session.scalar(select(Invitation).where(Invitation.encounter_id == old.id))
        assert invitation.status == "failed" and invitation.error_code == "purged"
        path = services.link_path(old)
        # Everything else in a day's time, too.
        assert services.purge_expired(clock.utcnow() + timedelta(days=30)) == 1
        db.session.commit()
        db.session.remove()
    assert client.get(path).status_code == 410
    listing = client.get(f"{BASE}/programmes/pj/encounters", headers=org.headers("rev-k1"))
    assert {i["phone"] for i in listing.get_json()["items"]} == {"***"}
