"""The per-phone invitation cap (appraisal.phone_cap): one phone gets at most 1 invitation in 7
days and 4 in 30 across the programme's units (or the programme's own rules), capped visits are
recorded and counted apart, and the cap holds when several senders run at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from appraisal import invitations, jobs, phone_cap, reports
from appraisal.models import Encounter, Invitation, PhoneCap, Programme
from campaigns.models import Account
from core import clock
from core.extensions import db
from tests.appraisal.conftest import BASE, days_ago
from tests.appraisal.test_invitations import fake, sms_app  # noqa: F401  (fixtures)
from tests.factories import Org
from tests.voting.sms_fake import FakeTencentSms

DEPARTMENTS = ("内科", "外科", "儿科", "眼科")


def _visits(phone: str, count: int, day: int = 1) -> list[dict[str, Any]]:
    """``count`` visits of one patient on one day, each to another department."""
    return [{"phone": phone, "date": days_ago(day), "department": d} for d in DEPARTMENTS[:count]]


def _programme_id(app: Flask, code: str = "pj") -> int:
    with app.app_context():
        found = db.session.scalar(select(Programme.id).where(Programme.code == code))
        db.session.remove()
    assert found is not None
    return int(found)


def _statuses(app: Flask) -> Counter[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(
            select(Encounter.phone_masked, Invitation.status, Invitation.error_code).join(
                Invitation, Invitation.encounter_id == Encounter.id
            )
        ).all()
        db.session.remove()
    return Counter((masked, f"{status}/{error or ''}") for masked, status, error in rows)


def test_a_patient_seen_often_is_texted_once(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
    client: FlaskClient,
    org: Org,
) -> None:
    # Three departments the same day at H1, one more at H2 (the cap is the programme's), and a
    # second patient once.
    register(_visits("13812341234", 3) + _visits("13998765432", 1))
    register(_visits("13812341234", 1, day=2), user="unit-h2")
    with sms_app.app_context():
        counts = invitations.dispatch()
        db.session.remove()
    assert counts == {"sent": 2, "capped": 3}
    assert sorted(m["phone"] for m in fake.sent) == ["+8613812341234", "+8613998765432"]
    assert _statuses(sms_app) == Counter(
        {
            ("138****1234", "sent/"): 1,
            ("138****1234", "capped/phone_cap"): 3,
            ("139****5432", "sent/"): 1,
        }
    )
    # Capped is final: another run sends nothing.
    with sms_app.app_context():
        assert invitations.dispatch() == {}
        db.session.remove()
    listing = client.get(f"{BASE}/programmes/pj/encounters", headers=org.headers("rev-k1"))
    shown = Counter(i["invitation_status"] for i in listing.get_json()["items"])
    assert shown == {"sent": 2, "capped": 3}
    # The report counts them apart: not sent, in no rate.
    report = client.get(f"{BASE}/programmes/pj/reports", headers=org.headers("rev-k1")).get_json()
    rows = {r["unit_code"]: r for r in report["units"]}
    assert (rows["H1"]["sent"], rows["H1"]["capped"]) == (2, 2)
    assert (rows["H2"]["sent"], rows["H2"]["capped"]) == (0, 1)
    assert (report["total"]["sent"], report["total"]["capped"]) == (2, 3)
    assert report["total"]["delivery_rate"] == 0.0 and rows["H2"]["delivery_rate"] is None
    export = client.get(f"{BASE}/programmes/pj/encounters.csv", headers=org.headers("rev-k1"))
    assert export.get_data(as_text=True).count("频次限制未发送") == 3


def test_the_periods_slide(app: Flask, org: Org, programme: str) -> None:
    pid = _programme_id(app)
    start = clock.utcnow() - timedelta(days=60)
    with app.app_context():

        def take(invitation: int, day: float) -> bool:
            return not phone_cap.reserve([(invitation, pid, "h" * 64)], start + timedelta(days=day))

        assert take(1, 0)
        assert not take(2, 6.9)  # 1 in 7 days
        assert take(1, 6.95)  # a retry keeps its own place
        assert take(3, 7.01)
        assert take(4, 14.1) and take(5, 21.2)
        assert not take(6, 29.9)  # 4 in 30 days: 0, 7, 14, 21
        assert take(7, 30.05)  # day 0 has left the 30 days
        # An invitation that ended without a text gives its place back.
        phone_cap.release([(7, pid, "h" * 64)], start + timedelta(days=30.1))
        assert take(8, 30.2)
        assert not take(9, 30.2)  # the place given back was taken again
        # Another phone has places of its own.
        with_other = phone_cap.reserve([(10, pid, "k" * 64)], start + timedelta(days=30.2))
        assert with_other == set()
        # Places older than the longest period are dropped; a row past every period is purged.
        row = db.session.get(PhoneCap, (pid, "h" * 64))
        assert row is not None and [s[0] for s in row.sends] == [3, 4, 5, 8]
        assert phone_cap.purge(start + timedelta(days=80)) == 2
        db.session.commit()
        assert db.session.scalar(select(db.func.count()).select_from(PhoneCap)) == 0
        db.session.remove()


def test_the_programme_sets_its_own_cap(
    client: FlaskClient, org: Org, app: Flask, programme: str
) -> None:
    url = f"{BASE}/programmes/pj"
    shown = client.get(f"{BASE}/programmes", headers=org.headers("rev-k1")).get_json()
    assert shown["items"][0]["phone_cap"] == [{"max": 1, "days": 7}, {"max": 4, "days": 30}]
    for bad in (
        [{"max": 0, "days": 7}],
        [{"max": 1, "days": 93}],
        [{"max": 1}],
        [{"max": 1, "days": 7}] * 5,
        "often",
    ):
        answer = client.patch(url, json={"phone_cap": bad}, headers=org.headers("rev-k1"))
        assert answer.status_code == 422, bad
        assert answer.get_json()["error"]["code"] == "validation_error"
    # Only the bureau: a unit clerk and another county's reviewer are refused.
    refused = client.patch(url, json={"phone_cap": []}, headers=org.headers("unit-h1"))
    assert refused.status_code == 403
    elsewhere = client.patch(url, json={"phone_cap": []}, headers=org.headers("rev-k2"))
    assert elsewhere.get_json()["error"]["code"] == "not_programme_bureau"
    two = client.patch(
        url, json={"phone_cap": [{"max": 2, "days": 7}]}, headers=org.headers("rev-k1")
    )
    assert two.status_code == 200 and two.get_json()["phone_cap"] == [{"max": 2, "days": 7}]
    pid = _programme_id(app)
    now = clock.utcnow()
    with app.app_context():
        assert phone_cap.reserve([(1, pid, "p"), (2, pid, "p"), (3, pid, "p")], now) == {3}
        db.session.remove()
    none = client.patch(url, json={"phone_cap": []}, headers=org.headers("rev-k1"))
    assert none.get_json()["phone_cap"] == []
    with app.app_context():
        assert phone_cap.reserve([(4, pid, "p"), (5, pid, "p")], now) == set()
        db.session.remove()
    # Back to the defaults with null.
    reset = client.patch(url, json={"phone_cap": None}, headers=org.headers("rev-k1"))
    assert reset.get_json()["phone_cap"] == [{"max": 1, "days": 7}, {"max": 4, "days": 30}]


def test_failed_texts_give_their_place_back(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
) -> None:
    register(_visits("13812341234", 1, day=2))
    fake.fail_next("status", "FailedOperation.PhoneNumberInBlacklist")
    with sms_app.app_context():
        assert invitations.dispatch() == {"failed": 1}
        db.session.remove()
    # The refused text was never received: the next visit is texted.
    register(_visits("13812341234", 1, day=1))
    with sms_app.app_context():
        assert invitations.dispatch() == {"sent": 1}
        db.session.remove()
    assert len(fake.sent) == 1


def test_the_cap_holds_with_senders_in_parallel(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
) -> None:
    phones = [f"1370000{n:04d}" for n in range(8)]
    rows = [visit for phone in phones for visit in _visits(phone, 4)]
    # Interleaved, so that each small batch holds several phones and each phone is spread
    # over the batches of different senders.
    register(sorted(rows, key=lambda r: (r["department"], r["phone"])))
    outcomes: list[dict[str, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def sender() -> None:
        try:
            with sms_app.app_context():
                barrier.wait(10)
                while True:
                    done = invitations.dispatch(batch=3)
                    if not done:
                        break
                    outcomes.append(done)
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    total: Counter[str] = Counter()
    for done in outcomes:
        total.update(done)
    assert total == {"sent": 8, "capped": 24}
    assert sorted(m["phone"] for m in fake.sent) == sorted(f"+86{p}" for p in phones)
    assert len(outcomes) > 4  # the work was shared out in many small runs


def test_the_purge_job_deletes_old_cap_rows(app: Flask, org: Org, programme: str) -> None:
    pid = _programme_id(app)
    with app.app_context():
        long_ago = clock.utcnow() - timedelta(days=31)
        phone_cap.reserve([(1, pid, "old"), (2, pid, "new")], long_ago)
        phone_cap.reserve([(3, pid, "new")], clock.utcnow())
        jobs.purge_expired_phones()
        left = db.session.scalars(select(PhoneCap.phone_hash)).all()
        db.session.remove()
    assert left == ["new"]


def test_capped_counts_in_the_month_of_the_decision(app: Flask, org: Org, programme: str) -> None:
    with app.app_context():
        found = db.session.scalar(select(Programme).where(Programme.code == "pj"))
        assert found is not None
        admin = db.session.get(Account, org.accounts["admin"])
        this = reports.current_month(found)
        start, _ = this.bounds(found)
        h1 = org.account("unit-h1").unit
        encounter = Encounter(
            programme_id=found.id,
            unit_id=h1.id,
            source="api",
            phone_masked="138****1234",
            encounter_date=start.date(),
            department="内科",
            link_nonce="n",
            purge_after=start + timedelta(days=90),
        )
        db.session.add(encounter)
        db.session.flush()
        db.session.add(
            Invitation(
                encounter_id=encounter.id,
                programme_id=found.id,
                status="capped",
                error_code="phone_cap",
                updated_at=start - timedelta(seconds=1),
            )
        )
        db.session.commit()
        last = reports.month_report(admin, found, this.shift(-1))
        now = reports.month_report(admin, found, this)
        assert last["total"]["capped"] == 1 and now["total"]["capped"] == 0
        assert last["total"]["sent"] == 0
        db.session.remove()
