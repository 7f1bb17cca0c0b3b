"""A level's 公示 (nominations.level_publicity): a bureau publishes a snapshot of what it passed up
(public fields only), for a period counted in the campaign's zone; who may open and withdraw
it; nothing to publish, overlapping periods, withdrawal with a reason, the audit trail."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from nominations.level_publicity import LevelPublicity, period_end
from tests.factories import Org
from tests.nominations.test_levels import _chain, _decide, _extra_units, _ok, _refused
from tests.nominations.test_races import _race

URL = "/api/v1/campaigns/c1/level-publicity"
CONTACT = "县卫生健康局医政股，电话 0471-1234567"
PHONE = "13800138000"
PRIVATE = "仅供评审的内部材料"
FIELDS = [
    {
        "key": "ethnicity",
        "label": "民族",
        "type": "choice",
        "options": ["汉族", "蒙古族"],
        "public": True,
    },
    {"key": "phone", "label": "联系电话", "type": "phone"},
    {"key": "honours", "label": "内部意见", "type": "long_text"},
]
EXTRA = {"ethnicity": "蒙古族", "phone": PHONE, "honours": PRIVATE}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _open(client: FlaskClient, org: Org, who: str, unit: str = "K1", **body: Any) -> Any:
    return client.post(f"{URL}/{unit}", json={"contact": CONTACT, **body}, headers=org.headers(who))


def _withdraw(
    client: FlaskClient, org: Org, who: str, pid: int, reason: Any = "更正后重新公示"
) -> Any:
    body = {} if reason is None else {"reason": reason}
    return client.delete(f"{URL}/K1/{pid}", json=body, headers=org.headers(who))


def _passed(client: FlaskClient, org: Org) -> list[int]:
    """A chain; H1 submits a doctor and a nurse with the campaign's own fields, and H2 a doctor
    that the county keeps waiting; the county passes up the first two."""
    _ok(
        client.put(
            "/api/v1/campaigns/c1/form-fields",
            json={"fields": FIELDS},
            headers=org.headers("admin"),
        )
    )
    _chain(client, org, county=2)
    first = org.nomination(status="submitted", name="王春燕", extra=EXTRA)
    second = org.nomination(status="submitted", category="nurse", name="赵敏", extra=EXTRA)
    org.nomination(unit_user="unit-h2", status="submitted", name="未上报")
    _ok(_decide(client, org, first, "rev-k1", "pass"))
    _ok(_decide(client, org, second, "rev-k1", "pass"))
    return [first, second]


def test_a_bureau_publishes_a_snapshot_of_its_passed_up_list(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    first, second = _passed(client, org)
    made = _ok(_open(client, org, "rev-k1", days=5), 201)
    assert made["status"] == "open" and made["unit"] == "单位K1"
    assert made["level_label"] == "县（旗）级" and made["contact"] == CONTACT
    assert made["public_url"] == f"/c/c1/level-publicity/{made['id']}"
    assert [(i["name"], i["category"], i["unit"]) for i in made["items"]] == [
        ("王春燕", "doctor", "单位H1"),
        ("赵敏", "nurse", "单位H1"),
    ]
    item = made["items"][0]
    assert item["summary"] and item["category_name"] == "十大最美医生"
    assert item["extra"] == [{"key": "ethnicity", "label": "民族", "value": "蒙古族"}]
    text = json.dumps(made, ensure_ascii=False)
    assert PHONE not in text and PRIVATE not in text and "未上报" not in text
    # The period ends at a local midnight after five working days (today the first of them).
    ends = datetime.fromisoformat(made["ends_at"]).astimezone(SHANGHAI)
    assert (ends.hour, ends.minute, ends.second) == (0, 0, 0)
    span = ends - datetime.fromisoformat(made["starts_at"])
    assert timedelta(days=4) < span <= timedelta(days=8)

    # A snapshot: the city returning one of them changes nothing published.
    _ok(_decide(client, org, first, "rev-c", "return", "请补充材料"))
    listed = _ok(client.get(f"{URL}/K1", headers=org.headers("rev-k1")))["items"]
    assert [i["name"] for i in listed[0]["items"]] == ["王春燕", "赵敏"]
    assert _ok(client.get(f"{URL}/K1", headers=org.headers("admin")))["items"] == listed
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "level_publicity.open"))
        assert entry is not None and entry.object_id == str(made["id"])
        assert entry.actor_name == "rev-k1" and entry.after["nominations"] == [first, second]


def test_the_committee_opens_for_any_bureau_from_a_given_time(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _passed(client, org)
    start = utcnow() + timedelta(days=2)
    made = _ok(
        _open(client, org, "admin", starts_at=start.isoformat(), days=3, working_days=False), 201
    )
    assert made["status"] == "scheduled" and made["status_label"] == "未开始"
    assert made["opened_by"] == "admin"
    local_start = start.astimezone(SHANGHAI)
    expected = datetime.combine(
        local_start.date() + timedelta(days=3), datetime.min.time(), SHANGHAI
    )
    assert datetime.fromisoformat(made["ends_at"]) == expected
    # A start in the past, too far ahead, bad days, a blank contact: refused.
    past = (utcnow() - timedelta(hours=1)).isoformat()
    _refused(_open(client, org, "admin", starts_at=past), 422, "invalid_start")
    far = (utcnow() + timedelta(days=120)).isoformat()
    _refused(_open(client, org, "admin", starts_at=far), 422, "invalid_start")
    _refused(_open(client, org, "admin", days=0), 422, "validation_error")
    _refused(_open(client, org, "admin", days=31), 422, "validation_error")
    _refused(_open(client, org, "admin", contact="   "), 422, "contact_required")


def test_working_days_skip_weekends_in_the_campaigns_zone() -> None:
    # A Wednesday 10:00 in Shanghai, some weeks from now (never a literal date).
    local = (utcnow() + timedelta(days=21)).astimezone(SHANGHAI)
    wednesday = local + timedelta(days=(2 - local.weekday()) % 7)
    start = wednesday.replace(hour=10, minute=0, second=0, microsecond=0)

    def local_end(days: int, working: bool, begin: datetime = start) -> datetime:
        end = period_end(begin.astimezone(ZoneInfo("UTC")), days, working, "Asia/Shanghai")
        assert end.tzinfo is not None
        return end.astimezone(SHANGHAI)

    midnight = datetime.combine(start.date(), datetime.min.time(), SHANGHAI)
    # Wed, Thu, Fri, Mon, Tue: ends as Wednesday begins, a week on.
    assert local_end(5, True) == midnight + timedelta(days=7)
    # Five calendar days: Wed … Sun, ends as Monday begins.
    assert local_end(5, False) == midnight + timedelta(days=5)
    # A Saturday start counts from Monday: one working day ends as Tuesday begins.
    saturday = start + timedelta(days=3)
    assert local_end(1, True, saturday) == midnight + timedelta(days=6)
    # An unknown zone falls back to the default one.
    fallback = period_end(start.astimezone(ZoneInfo("UTC")), 5, True, "Mars/Base")
    assert fallback.astimezone(SHANGHAI) == midnight + timedelta(days=7)


def test_who_may_open_a_bureaus_publicity(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    _extra_units(app, org)
    # A single-level campaign has no level to publish.
    _refused(_open(client, org, "rev-k1"), 403, "not_a_level")
    _passed(client, org)
    _refused(_open(client, org, "rev-k2"), 404, "unit_not_found")  # not in its sub-tree
    _refused(_open(client, org, "rev-c"), 403, "not_your_bureau")  # below it, not its own
    _refused(_open(client, org, "rev-p", unit="P"), 403, "not_a_level")  # no province level
    _refused(_open(client, org, "admin", unit="H1"), 403, "not_a_level")  # an institution
    _refused(_open(client, org, "admin", unit="NOPE"), 404, "unit_not_found")
    for who in ("unit-h1", "judge"):
        _refused(_open(client, org, who), 403, "forbidden")
    _refused(client.get(f"{URL}/K1", headers=org.headers("rev-k2")), 404, "unit_not_found")
    _refused(client.get(f"{URL}/K1", headers=org.headers("unit-h1")), 403, "forbidden")
    missing = client.post(
        "/api/v1/campaigns/nope/level-publicity/K1",
        json={"contact": CONTACT},
        headers=org.headers("admin"),
    )
    _refused(missing, 404, "campaign_not_found")
    # The county passed up nothing yet in K2; the city nothing at all.
    _refused(_open(client, org, "rev-k2", unit="K2"), 409, "nothing_to_publish")
    _refused(_open(client, org, "rev-c", unit="C"), 409, "nothing_to_publish")
    with app.app_context():
        assert db.session.scalar(select(LevelPublicity.id)) is None


def test_periods_do_not_overlap_and_a_withdrawal_needs_a_reason(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _passed(client, org)
    first = _ok(_open(client, org, "rev-k1"), 201)
    overlap = _open(client, org, "admin", starts_at=(utcnow() + timedelta(days=1)).isoformat())
    _refused(overlap, 409, "publicity_overlap")
    assert overlap.json["error"]["details"]["id"] == first["id"]
    # The next period may begin where this one ends.
    later = _ok(_open(client, org, "rev-k1", starts_at=first["ends_at"]), 201)
    assert later["status"] == "scheduled"

    _refused(_withdraw(client, org, "rev-k1", first["id"], None), 422, "validation_error")
    _refused(_withdraw(client, org, "rev-k1", first["id"], "  "), 422, "reason_required")
    _refused(_withdraw(client, org, "rev-c", first["id"]), 403, "not_your_bureau")
    _refused(_withdraw(client, org, "rev-k2", first["id"]), 404, "unit_not_found")
    _refused(_withdraw(client, org, "rev-k1", 999999), 404, "publicity_not_found")
    gone = _ok(_withdraw(client, org, "rev-k1", first["id"]))
    assert gone["status"] == "withdrawn" and gone["withdraw_reason"] == "更正后重新公示"
    assert gone["withdrawn_by"] == "rev-k1" and gone["withdrawn_at"]
    _refused(_withdraw(client, org, "admin", first["id"]), 409, "publicity_withdrawn")
    # Its period is free again; the committee withdraws the scheduled one too.
    _ok(_open(client, org, "rev-k1", days=1), 201)
    _ok(_withdraw(client, org, "admin", later["id"], "时间有误"))

    # A period that is over cannot be withdrawn.
    with app.app_context():
        row = db.session.get(LevelPublicity, later["id"])
        assert row is not None
        row.withdrawn_at = None
        row.starts_at = utcnow() - timedelta(days=10)
        row.ends_at = utcnow() - timedelta(days=3)
        db.session.commit()
    _refused(_withdraw(client, org, "rev-k1", later["id"]), 409, "publicity_ended")
    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.reason).where(AuditLog.action == "level_publicity.withdraw")
        ).all()
        assert sorted(actions) == ["时间有误", "更正后重新公示"]


def test_parallel_opens_of_one_bureau_leave_one_publicity(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _passed(client, org)
    headers = {"rev-k1": org.headers("rev-k1"), "admin": org.headers("admin")}

    def opening(who: str) -> Any:
        return lambda c: c.post(f"{URL}/K1", json={"contact": CONTACT}, headers=headers[who])

    responses = _race(app, [opening(who) for who in ("rev-k1", "admin", "rev-k1", "admin")])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409], [r.json for r in responses]
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {
        "publicity_overlap"
    }
    with app.app_context():
        assert len(db.session.scalars(select(LevelPublicity.id)).all()) == 1
