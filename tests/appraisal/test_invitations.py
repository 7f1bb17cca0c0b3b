"""Invitations out through Tencent Cloud's SDK against the loopback fake (which checks every
TC3 signature): the link in the text, delivery status, retries, refusals, 退订, the rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from appraisal import invitations, jobs, services
from appraisal.models import Encounter, Invitation
from core import clock
from core.extensions import db, sqlite_write_intent
from tests.appraisal.conftest import days_ago
from tests.voting.sms_fake import (
    APP_ID,
    SECRET_ID,
    SECRET_KEY,
    SIGN_NAME,
    TEMPLATE_ID,
    FakeTencentSms,
)

INVITE_TEMPLATE = "2000002"


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    with FakeTencentSms(templates=(TEMPLATE_ID, INVITE_TEMPLATE)) as server:
        yield server


@pytest.fixture
def sms_app(make_app: Callable[..., Flask], fake: FakeTencentSms) -> Flask:
    return make_app(
        SMS_PROVIDER="tencent",
        TENCENTCLOUD_SECRET_ID=SECRET_ID,
        TENCENTCLOUD_SECRET_KEY=SECRET_KEY,
        SMS_APP_ID=APP_ID,
        SMS_SIGN_NAME=SIGN_NAME,
        SMS_TEMPLATE_ID=TEMPLATE_ID,
        SMS_ENDPOINT=fake.endpoint,
        SMS_TIMEOUT=1,
        APPRAISAL_SMS_TEMPLATE_ID=INVITE_TEMPLATE,
        APPRAISAL_LINK_BASE="https://pj.example.cn",
        APPRAISAL_SMS_PER_SECOND=0,
        APPRAISAL_SMS_RETRY_SECONDS=60,
        APPRAISAL_SMS_MAX_ATTEMPTS=3,
    )


def _rows(*phones: str) -> list[dict[str, Any]]:
    return [{"phone": p, "date": days_ago(1), "department": "内科"} for p in phones]


def _statuses(app: Flask) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(
            select(Encounter.phone_masked, Invitation.status).join(
                Invitation, Invitation.encounter_id == Encounter.id
            )
        ).all()
        db.session.remove()
    return {masked: status for masked, status in rows}


def _dispatch(app: Flask) -> dict[str, int]:
    with app.app_context():
        try:
            return invitations.dispatch()
        finally:
            db.session.remove()


def _make_due(app: Flask) -> None:
    with app.app_context():
        db.session.execute(
            update(Invitation).values(next_attempt_at=clock.utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        db.session.remove()


def test_each_encounter_gets_one_text_with_its_own_link(
    sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any]
) -> None:
    register(_rows("13812341234", "13998765432"))
    assert _dispatch(sms_app) == {"sent": 2}
    assert fake.verified == 2 and len(fake.sent) == 2
    assert _dispatch(sms_app) == {}  # nothing is sent twice
    assert len(fake.sent) == 2
    with sms_app.app_context():
        encounter = db.session.scalar(select(Encounter).order_by(Encounter.id))
        link = "https://pj.example.cn" + services.link_path(encounter)
        invitation = db.session.scalar(
            select(Invitation).where(Invitation.encounter_id == encounter.id)
        )
        assert invitation.status == "sent" and invitation.message_id and invitation.attempts == 1
        db.session.remove()
    message = next(m for m in fake.sent if m["phone"] == "+8613812341234")
    assert message["template"] == INVITE_TEMPLATE
    assert message["params"] == ["单位H1", link]


def test_transient_failures_are_retried_refusals_are_not(
    sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any]
) -> None:
    register(_rows("13812341234"))
    fake.fail_next("500")
    assert _dispatch(sms_app) == {"retrying": 1}
    assert _dispatch(sms_app) == {}  # not due yet
    _make_due(sms_app)
    fake.fail_next("error", "InternalError.Timeout")
    assert _dispatch(sms_app) == {"retrying": 1}
    _make_due(sms_app)
    assert _dispatch(sms_app) == {"sent": 1}
    with sms_app.app_context():
        invitation = db.session.scalar(select(Invitation))
        assert invitation.attempts == 3 and invitation.status == "sent"
        assert invitation.error_code is None
        db.session.remove()
    # A refusal (the number on the provider's blacklist) is final.
    register(_rows("13998765432"))
    fake.fail_next("status", "FailedOperation.PhoneNumberInBlacklist")
    assert _dispatch(sms_app) == {"failed": 1}
    _make_due(sms_app)
    assert _dispatch(sms_app) == {}
    with sms_app.app_context():
        failed = db.session.scalar(select(Invitation).where(Invitation.status == "failed"))
        assert failed.error_code == "bad_number"
        assert failed.provider_code == "FailedOperation.PhoneNumberInBlacklist"
        db.session.remove()


def test_retries_end(sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any]) -> None:
    register(_rows("13812341234"))
    for _ in range(3):
        fake.fail_next("500")
        _make_due(sms_app)
        _dispatch(sms_app)
    assert _statuses(sms_app) == {"138****1234": "failed"}
    assert fake.sent == []


def test_an_opt_out_is_honoured_for_good(
    sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any], client: Any, org: Any
) -> None:
    register(_rows("13812341234", "13998765432"))
    answer = client.post(
        "/api/v1/appraisal/opt-outs", json={"phone": "13812341234"}, headers=org.headers("rev-k1")
    )
    assert answer.get_json() == {"new": True}
    assert _dispatch(sms_app) == {"sent": 1}
    assert [m["phone"] for m in fake.sent] == ["+8613998765432"]
    assert _statuses(sms_app)["138****1234"] == "opted_out"
    # A later visit of that number is refused, without storing it.
    later = [{"phone": "13812341234", "date": days_ago(0), "department": "外科"}]
    assert register(later)["refused"][0]["code"] == "opted_out"
    # Only the bureau records one; a repeat is not new.
    assert (
        client.post(
            "/api/v1/appraisal/opt-outs",
            json={"phone": "13812341234"},
            headers=org.headers("unit-h1"),
        ).status_code
        == 403
    )
    again = client.post(
        "/api/v1/appraisal/opt-outs", json={"phone": "13812341234"}, headers=org.headers("admin")
    )
    assert again.get_json() == {"new": False}
    bad = client.post(
        "/api/v1/appraisal/opt-outs", json={"phone": "12"}, headers=org.headers("admin")
    )
    assert bad.status_code == 422


def test_a_sending_claim_is_taken_once(
    sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any]
) -> None:
    register(_rows("13812341234"))
    with sms_app.app_context():
        first = invitations.claim(clock.utcnow(), 10)
        second = invitations.claim(clock.utcnow(), 10)
        assert len(first) == 1 and second == []
        # A run that died leaves it "sending"; ten minutes on it is put back.
        later = clock.utcnow() + invitations.STALE_SENDING + timedelta(seconds=1)
        assert invitations.claim(later, 10) == first
        db.session.remove()


def test_the_rate_is_bounded(
    make_app: Callable[..., Flask],
    sms_app: Flask,
    fake: FakeTencentSms,
    register: Callable[..., Any],
) -> None:
    register(_rows(*(f"137000011{n:02d}" for n in range(6))))
    sms_app.config["APPRAISAL_SMS_PER_SECOND"] = 2
    started = time.monotonic()
    assert _dispatch(sms_app) == {"sent": 6}
    # Six texts at two a second take three one-second windows: two whole windows pass.
    assert time.monotonic() - started >= 1.0
    per_window: dict[int, int] = {}
    for request in fake.requests:
        second = int(request["headers"]["x-tc-timestamp"])
        per_window[second] = per_window.get(second, 0) + 1
    assert len(per_window) >= 3


def test_sms_off_leaves_invitations_queued(app: Flask, register: Callable[..., Any]) -> None:
    register(_rows("13812341234"))
    with app.app_context():
        assert invitations.dispatch() == {}
        assert jobs.dispatch_invitations() == {}
        db.session.remove()
    assert _statuses(app) == {"138****1234": "queued"}


def test_receipts_and_replies_from_the_provider(
    sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any], client: Any, org: Any
) -> None:
    register(_rows("13812341234", "13998765432"))
    assert _dispatch(sms_app) == {"sent": 2}
    serial = {m["phone"]: m["serial"] for m in fake.sent}
    api = sms_app.test_client()
    receipts = [
        {
            "sid": serial["+8613812341234"],
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "mobile": "13812341234",
            "nationcode": "86",
            "description": "用户短信送达成功",
        },
        {"sid": serial["+8613998765432"], "report_status": "FAIL", "errmsg": "MK:0001"},
        {"sid": "unknown", "report_status": "SUCCESS"},
    ]
    # Off without a token; a wrong token is refused.
    assert api.post("/api/v1/appraisal/sms/status?token=x", json=receipts).status_code == 404
    sms_app.config["APPRAISAL_SMS_CALLBACK_TOKEN"] = "cb-secret-1"
    assert api.post("/api/v1/appraisal/sms/status?token=x", json=receipts).status_code == 404
    taken = api.post("/api/v1/appraisal/sms/status?token=cb-secret-1", json=receipts)
    assert taken.get_json() == {"result": 0, "errmsg": "OK"}
    listing = client.get(
        "/api/v1/appraisal/programmes/pj/encounters", headers=org.headers("rev-k1")
    )
    delivery = {i["phone"]: i["delivery"] for i in listing.get_json()["items"]}
    assert delivery == {"138****1234": "delivered", "139****5432": "undelivered"}
    # A reply of TD is a 退订; any other reply changes nothing.
    for text in ("谢谢", "TD"):
        answer = api.post(
            "/api/v1/appraisal/sms/replies?token=cb-secret-1",
            json={
                "mobile": "13998765432",
                "text": text,
                "nationcode": "86",
                "sign": "青山卫健",
                "time": 1457336869,
                "extend": "",
            },
        )
        assert answer.status_code == 200
    later = _rows("13998765432", "13812341234")
    later[0]["date"] = later[1]["date"] = days_ago(0)
    refused = register(later)["refused"]
    assert [(r["row"], r["code"]) for r in refused] == [(1, "opted_out")]


def test_no_database_lock_is_held_while_a_text_goes_out(
    sms_app: Flask, fake: FakeTencentSms, register: Callable[..., Any], org: Any
) -> None:
    register(_rows("13812341234"))
    fake.fail_next("hang")  # the provider answers nothing until the client's 1 s timeout
    outcome: dict[str, Any] = {}

    def run() -> None:  # as the worker runs it: a job, which writes with BEGIN IMMEDIATE
        with sms_app.app_context():
            outcome.update(jobs.dispatch_now())
            db.session.remove()

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 5
    while fake.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.calls == 1
    # Meanwhile another writer (a request, another job) gets the database at once.
    started = time.monotonic()
    with sms_app.app_context():
        token = sqlite_write_intent.set(True)
        try:
            db.session.execute(update(Invitation).values(provider_code="probe"))
            db.session.commit()
        finally:
            sqlite_write_intent.reset(token)
            db.session.remove()
    assert time.monotonic() - started < 0.5
    worker.join(10)
    assert outcome == {"retrying": 1}
    assert _statuses(sms_app) == {"138****1234": "retrying"}
