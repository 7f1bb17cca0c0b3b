"""Two dispatch runs at once (two RQ workers sending): the claims keep them apart (each
invitation texted once, both runs busy), the per-phone cap and the opt-outs hold over both, the
rate limit is shared, and on PostgreSQL a claim passes over the rows another run is claiming
instead of waiting for them and then coming back empty."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from appraisal import invitations, jobs
from appraisal.models import Encounter, Invitation, PhoneCap
from core import sms
from core.clock import utcnow
from core.extensions import db
from tests.appraisal.conftest import days_ago
from tests.appraisal.test_invitations import fake, sms_app  # noqa: F401  (fixtures)
from tests.factories import Org
from tests.voting.sms_fake import FakeTencentSms

DEPARTMENTS = ("内科", "外科", "儿科", "眼科")


def _visits(phone: str, count: int) -> list[dict[str, Any]]:
    """``count`` visits of one patient yesterday, each to another department."""
    return [{"phone": phone, "date": days_ago(1), "department": d} for d in DEPARTMENTS[:count]]


def _slow_provider(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Each text takes a little longer, so that the two runs overlap for certain."""
    send = sms.TencentSms.send

    def slow_send(self: sms.TencentSms, *args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return send(self, *args, **kwargs)

    monkeypatch.setattr(sms.TencentSms, "send", slow_send)


def _two_runs_at_once(app: Flask) -> list[Counter[str]]:
    """Two threads, each with its own app context (its own session and connection), start
    together and call the job run after run until nothing is due; the outcomes of each."""
    barrier = threading.Barrier(2)
    totals: list[Counter[str]] = [Counter(), Counter()]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait(10)
                while True:
                    done = jobs.dispatch_now()
                    if not done:
                        break
                    totals[n].update(done)
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return totals


def test_two_runs_at_once_text_each_invitation_once_within_the_cap(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
    client: FlaskClient,
    org: Org,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repeat = [f"1370000{n:04d}" for n in range(6)]  # four visits each: one text, three capped
    single = [f"1380000{n:04d}" for n in range(20)]  # one visit each
    opted = single[0]
    rows = [visit for phone in repeat for visit in _visits(phone, 4)]
    rows += [visit for phone in single for visit in _visits(phone, 1)]
    # Interleaved, so that each small batch holds several phones and each phone's visits are
    # spread over the batches of both runs.
    register(sorted(rows, key=lambda r: (r["department"], r["phone"])))
    answer = client.post(
        "/api/v1/appraisal/opt-outs", json={"phone": opted}, headers=org.headers("rev-k1")
    )
    assert answer.get_json() == {"new": True}
    sms_app.config["APPRAISAL_SMS_BATCH"] = 3
    # Few texts handed over ahead: a run waits for its texts before it claims again (else on
    # SQLite one run could claim everything while the other waits for the write lock).
    monkeypatch.setattr(invitations, "FLUSH_ROWS", 2)
    monkeypatch.setattr(invitations, "AHEAD", 2)
    _slow_provider(monkeypatch, 0.01)

    first, second = _two_runs_at_once(sms_app)

    assert first["sent"] > 0 and second["sent"] > 0  # both runs sent: the work was shared
    # (The 退订 put that phone's waiting invitation out of the queue: neither run saw it.)
    assert first + second == {"sent": 6 + 19, "capped": 6 * 3}
    texted = Counter(m["phone"] for m in fake.sent)
    assert texted == {f"+86{p}": 1 for p in repeat + single if p != opted}
    links = [m["params"][-1] for m in fake.sent]
    assert len(set(links)) == len(links) == 25  # no invitation texted twice
    with sms_app.app_context():
        statuses = Counter(db.session.scalars(select(Invitation.status)).all())
        sent_per_phone = Counter(
            db.session.scalars(
                select(Encounter.phone_hash)
                .join(Invitation, Invitation.encounter_id == Encounter.id)
                .where(Invitation.status == "sent")
            ).all()
        )
        ledger = {
            h: len(s) for h, s in db.session.execute(select(PhoneCap.phone_hash, PhoneCap.sends))
        }
        db.session.remove()
    assert statuses == {"sent": 25, "capped": 18, "opted_out": 1}
    assert set(sent_per_phone.values()) == {1}  # the cap: one text per phone in 7 days
    assert all(ledger[h] == 1 for h in sent_per_phone)  # each text holds its one place


def test_the_rate_limit_is_shared_by_two_runs(
    sms_app: Flask,  # noqa: F811
    fake: FakeTencentSms,  # noqa: F811
    register: Callable[..., Any],
) -> None:
    register([visit for n in range(9) for visit in _visits(f"137000012{n:02d}", 1)])
    sms_app.config["APPRAISAL_SMS_PER_SECOND"] = 3
    sms_app.config["APPRAISAL_SMS_BATCH"] = 2
    started = time.monotonic()
    first, second = _two_runs_at_once(sms_app)
    assert first + second == {"sent": 9}
    # Nine texts at three a second over both runs take three one-second windows (two runs
    # each allowed three a second would fit them in two).
    assert time.monotonic() - started >= 1.0
    per_window = Counter(int(r["headers"]["x-tc-timestamp"]) for r in fake.requests)
    assert len(per_window) >= 3


def test_a_claim_passes_over_the_rows_another_run_is_claiming(
    sms_app: Flask,  # noqa: F811
    register: Callable[..., Any],
) -> None:
    """PostgreSQL: another run's claim, not yet committed, holds the first due rows; this
    claim takes the next ones at once (it used to wait for that commit, then find its rows
    taken and come back empty, ending its run with plenty due)."""
    register([visit for n in range(6) for visit in _visits(f"137000013{n:02d}", 1)])
    with sms_app.app_context():
        if db.engine.dialect.name != "postgresql":
            db.session.remove()
            pytest.skip("SQLite lets one writer in at a time: two claims never overlap")
        ids = sorted(db.session.scalars(select(Invitation.id)).all())
        db.session.commit()
        other = db.engine.connect()  # the other run's connection, its claim not yet committed
        try:
            claiming = other.begin()
            other.execute(
                update(Invitation)
                .where(Invitation.id.in_(ids[:2]))
                .values(status="sending", claimed_at=utcnow())
            )
            # Waiting for the other run's rows would fail here instead of hanging.
            db.session.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert invitations.claim(utcnow(), 3) == ids[2:5]
            claiming.commit()
            assert invitations.claim(utcnow(), 3) == ids[5:]
            assert invitations.claim(utcnow(), 3) == []
        finally:
            other.close()
            db.session.remove()
