"""Sending in batches (appraisal.invitations.dispatch): a job's run goes batch after batch in
one go, texts are handed to the sending threads ahead while outcomes are written, a 退订 made
while a batch is on its way stops the texts not yet handed over (and gives back their places in
the cap), and a run that fails sends nothing more than what was already on its way."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from appraisal import invitations, jobs
from appraisal.models import Encounter, Invitation, PhoneCap
from core import sms
from core.extensions import db
from tests.appraisal.conftest import days_ago
from tests.appraisal.test_invitations import fake, sms_app  # noqa: F401  (fixtures)
from tests.factories import Org
from tests.voting.sms_fake import FakeTencentSms

PHONES = [f"1370000{n:04d}" for n in range(6)]


def _rows(phones: list[str]) -> list[dict[str, Any]]:
    return [{"phone": p, "date": days_ago(1), "department": "内科"} for p in phones]


def _statuses(app: Flask) -> Counter[str]:
    with app.app_context():
        found = db.session.scalars(select(Invitation.status)).all()
        db.session.remove()
    return Counter(found)


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups of two, two handed over ahead, one sending thread: the order is known."""
    monkeypatch.setattr(invitations, "FLUSH_ROWS", 2)
    monkeypatch.setattr(invitations, "AHEAD", 2)
    monkeypatch.setattr(invitations, "SEND_THREADS", 1)


def test_a_job_run_sends_batch_after_batch(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
    small_groups: None,
) -> None:
    register(_rows(PHONES[:5]))
    sms_app.config["APPRAISAL_SMS_BATCH"] = 2
    with sms_app.app_context():
        assert invitations.dispatch() == {"sent": 2}  # one batch
        assert jobs.dispatch_now() == {"sent": 3}  # the rest, in one run
        assert jobs.dispatch_now() == {}
        db.session.remove()
    assert sorted(m["phone"] for m in fake.sent) == [f"+86{p}" for p in PHONES[:5]]
    assert _statuses(sms_app) == {"sent": 5}


def test_an_opt_out_while_sending_stops_the_texts_not_yet_handed_over(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
    client: FlaskClient,
    org: Org,
    small_groups: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(_rows(PHONES))
    send = sms.TencentSms.send
    calls: list[str] = []

    def send_and_opt_out(self: sms.TencentSms, phone: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(phone)
        if len(calls) == 1:  # the patient of the fourth text replies 退订 meanwhile
            answer = client.post(
                "/api/v1/appraisal/opt-outs",
                json={"phone": PHONES[3]},
                headers=org.headers("rev-k1"),
            )
            assert answer.get_json() == {"new": True}
        return send(self, phone, *args, **kwargs)

    monkeypatch.setattr(sms.TencentSms, "send", send_and_opt_out)
    with sms_app.app_context():
        assert jobs.dispatch_now() == {"sent": 5, "opted_out": 1}
        opted = db.session.execute(
            select(Encounter.phone_hash, Invitation.status)
            .join(Invitation, Invitation.encounter_id == Encounter.id)
            .where(Invitation.status == "opted_out")
        ).one()
        place = db.session.scalar(select(PhoneCap.sends).where(PhoneCap.phone_hash == opted[0]))
        db.session.remove()
    assert PHONES[3] not in calls
    assert sorted(m["phone"] for m in fake.sent) == sorted(
        f"+86{p}" for p in PHONES if p != PHONES[3]
    )
    assert place == []  # its place in the cap was given back


def test_a_run_that_fails_sends_nothing_it_had_not_handed_over(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
    small_groups: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(_rows(PHONES))
    monkeypatch.setattr(invitations, "AHEAD", 4)
    failed = threading.Event()
    send = sms.TencentSms.send
    calls: list[str] = []

    def held_send(self: sms.TencentSms, phone: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(phone)
        if len(calls) == 3:  # the third text waits until the run has failed
            assert failed.wait(10)
        return send(self, phone, *args, **kwargs)

    checks = 0

    def database_gone(group: list[Any]) -> set[str]:
        nonlocal checks
        checks += 1
        if checks == 2:  # before the third group is handed over, the third text begun
            deadline = time.monotonic() + 10
            while len(calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            failed.set()
            raise RuntimeError("database gone")
        return set()

    monkeypatch.setattr(sms.TencentSms, "send", held_send)
    monkeypatch.setattr(invitations, "_opted_out_since", database_gone)
    with sms_app.app_context(), pytest.raises(RuntimeError, match="database gone"):
        invitations.dispatch()
    # The third text was on its way and went; the fourth, handed over but not begun, did not;
    # the last two were never handed over.
    assert len(fake.sent) == 3 and len(calls) == 3
    assert _statuses(sms_app) == {"sent": 2, "sending": 4}
