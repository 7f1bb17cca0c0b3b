"""A vote Redis that comes back behind what voters were told (restarted empty, restored from an
older file): no number is handed out twice, the loss is reported loudly, quotas and idempotency
answers survive (docs/voting.md, "Durability: rewinds")."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from tests.factories import Org
from tests.pages.browser import csrf_from, staff_login
from voting import jobs, services
from voting.models import LedgerRewind, SequenceFloor, Vote


def _vote(client: FlaskClient, org: Org, voter: int, number: str, key: str | None = None) -> Any:
    headers = org.voter(voter)
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=headers)


def _seq(answer: Any) -> int:
    return int(answer.json["vote_id"].split("-")[1])


def _campaign() -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))


def _drain_and_watch(app: Flask) -> None:
    with app.app_context():
        services.drain_campaign("v1")
        jobs.watch_sequences()
        db.session.remove()


def _lose_vote_redis(app: Flask) -> None:
    """The vote Redis comes back empty: every key of the campaign is gone, and (embedded
    default: one Redis) the processes' published marks with it."""
    with app.app_context():
        client = redis_store.votes
        base = services.CampaignKeys.of("v1").base
        doomed = list(client.scan_iter(match=base.replace("{", "\\{").replace("}", "\\}") + "*"))
        assert doomed
        client.delete(*doomed, redis_store.key("ackmark", "v1"))


def _margin(app: Flask) -> int:
    return int(app.config["VOTE_SEQ_REWIND_MARGIN"])


def test_restart_empty_lifts_the_sequence_rebuilds_quotas_and_replays_retries(
    app: Flask, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 2})
    client = app.test_client()
    first = _vote(client, org, 1, numbers[0], key="retry-1")
    assert first.status_code == 201
    assert _vote(client, org, 1, numbers[1]).status_code == 201  # voter 1 spent the day
    assert _vote(client, org, 2, numbers[0]).status_code == 201
    _drain_and_watch(app)
    with app.app_context():
        floor = db.session.get(SequenceFloor, _campaign().id)
        assert floor.seq == 3 and floor.redis_id
        stored = db.session.scalar(select(Vote).where(Vote.id == first.json["vote_id"]))
        assert stored.idempotency_key == "retry-1"  # the key travelled with the ledger entry
        db.session.remove()

    _lose_vote_redis(app)

    # The client retries its first vote: a replay of the first answer, nothing counted.
    retry = _vote(client, org, 1, numbers[0], key="retry-1")
    assert retry.status_code == 201, retry.json
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json["vote_id"] == first.json["vote_id"]
    # Voter 1's quota survived the loss of Redis: the day's two votes are spent.
    refused = _vote(client, org, 1, numbers[2])
    assert refused.status_code == 429 and refused.json["error"]["code"] == "daily_quota_exhausted"
    # Voter 2 has one vote left, and it gets a number above everything acknowledged + margin.
    fresh = _vote(client, org, 2, numbers[1])
    assert fresh.status_code == 201
    assert _seq(fresh) == 3 + _margin(app) + 1
    assert fresh.json["remaining_today"] == 0

    _drain_and_watch(app)
    with app.app_context():
        rewinds = db.session.scalars(select(LedgerRewind)).all()
        assert len(rewinds) == 1
        rewind = rewinds[0]
        assert (rewind.reason, rewind.redis_seq, rewind.known_seq) == ("restarted", 0, 3)
        assert rewind.lifted_to == 3 + _margin(app) and rewind.possibly_lost == 3
        assert db.session.scalar(select(func.count(Vote.id))) == 4  # the retry stored nothing
        health = services.ledger_health(_campaign())
        assert health["rewinds"]["unacknowledged"] == 1
        assert health["rewinds"]["latest"]["id"] == rewind.id
        assert health["floor"]["recorded"] >= 3 + _margin(app) + 1
        rewind_id = rewind.id
        db.session.remove()

    # Reported loudly: nothing was lost (all drained) but the rewind awaits review: exit 5.
    runner = app.test_cli_runner()
    reconciled = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    assert reconciled.exit_code == 5, reconciled.output
    assert "REWOUND" in reconciled.output and '"count": 0' in reconciled.output
    verified = runner.invoke(args=["votes", "verify", "--campaign", "v1"])
    assert verified.exit_code == 5 and "chain ok: 4 votes" in verified.output
    ready = client.get("/readyz")
    assert ready.status_code == 200  # a load balancer keeps the node
    assert ready.json["status"] == "degraded"
    assert ready.json["alerts"]["ledger_rewinds"]["v1"] == {"unacknowledged": 1, "possibly_lost": 3}

    listed = runner.invoke(args=["votes", "rewinds", "--campaign", "v1"])
    assert listed.exit_code == 0 and f'"id": {rewind_id}' in listed.output
    no_note = runner.invoke(args=["votes", "rewinds", "--campaign", "v1", "--ack", str(rewind_id)])
    assert no_note.exit_code != 0 and "note_required" in no_note.output
    acked = runner.invoke(
        args=["votes", "rewinds", "--campaign", "v1", "--ack", str(rewind_id), "--note", "已核对"]
    )
    assert acked.exit_code == 0, acked.output
    assert runner.invoke(args=["votes", "reconcile", "--campaign", "v1"]).exit_code == 0
    assert runner.invoke(args=["votes", "verify", "--campaign", "v1"]).exit_code == 0
    ready = client.get("/readyz").json
    assert ready["status"] == "ok" and "alerts" not in ready


def test_undrained_votes_lost_with_redis_are_named_not_the_margin(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    client = app.test_client()
    for voter in range(3):
        assert _vote(client, org, voter, numbers[0]).status_code == 201
    _drain_and_watch(app)  # 1-3 stored, floor 3
    for voter in range(3, 5):
        assert _vote(client, org, voter, numbers[1]).status_code == 201  # 4, 5: acknowledged
    with app.app_context():
        jobs.watch_sequences()  # the floor follows the Redis sequence every second: 5
        db.session.remove()
    _lose_vote_redis(app)  # ... and Redis loses 4 and 5 before the drain

    runner = app.test_cli_runner()
    result = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    assert result.exit_code == 3, result.output  # loss takes precedence over the rewind (5)
    assert "LOST: 2 numbered vote(s)" in result.output and "(sequence 4-5)" in result.output
    after = _vote(client, org, 40, numbers[0])
    assert _seq(after) == 5 + _margin(app) + 1  # 4 and 5 are never handed out again
    with app.app_context():
        rewind = db.session.scalar(select(LedgerRewind))
        assert (rewind.known_seq, rewind.possibly_lost, rewind.detected_by) == (5, 5, "state")
        db.session.remove()


def test_reconcile_rebuilds_quotas_from_votes_and_stream_never_lowering(
    app: Flask, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 3})
    client = app.test_client()
    assert _vote(client, org, 7, numbers[0]).status_code == 201
    _drain_and_watch(app)  # one stored vote
    assert _vote(client, org, 7, numbers[1]).status_code == 201  # one still in the stream
    assert _vote(client, org, 8, numbers[0]).status_code == 201
    with app.app_context():
        keys = services.CampaignKeys.of("v1")
        day = client.get("/api/v1/campaigns/v1/votes/me", headers=org.voter(7)).json["day"]
        redis_store.votes.delete(keys.quota(day, 7))  # voter 7's quota lost
        redis_store.votes.hset(keys.quota(day, 8), mapping={"_t": 3, numbers[0]: 3})  # higher
        report = services.reconcile(_campaign())
        db.session.commit()
        assert report["quotas"]["day"] == day and report["quotas"]["raised"] == 1
        quota7 = redis_store.votes.hgetall(keys.quota(day, 7))
        assert quota7 == {b"_t": b"2", numbers[0].encode(): b"1", numbers[1].encode(): b"1"}
        assert redis_store.votes.hget(keys.quota(day, 8), "_t") == b"3"  # never lowered
        assert report["rewinds"]["unacknowledged"] == 0
        db.session.remove()


def test_console_ledger_page_shows_and_acknowledges_a_rewind(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    client = app.test_client()
    assert _vote(client, org, 1, numbers[0]).status_code == 201
    _drain_and_watch(app)
    _lose_vote_redis(app)
    _drain_and_watch(app)  # the watch job finds Redis without its identity: restarted
    with app.app_context():
        rewind_id = db.session.scalar(select(LedgerRewind.id))
        db.session.remove()
    assert rewind_id is not None

    console = app.test_client()
    staff_login(console, "admin", area="console")
    page = console.get("/console/c/v1/ledger")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'data-testid="rewind-{rewind_id}"' in html
    assert "重启后数据集标识丢失" in html
    assert "/console/c/v1/ledger" in console.get("/console/c/v1").get_data(as_text=True)

    token = csrf_from(html)
    path = f"/console/c/v1/ledger/rewinds/{rewind_id}/ack"
    forged = console.post(path, data={"note": "已核对"})  # no CSRF token: refused
    assert forged.status_code in (302, 403)
    assert "确认已核查" in console.get("/console/c/v1/ledger").get_data(as_text=True)
    empty = console.post(path, data={"note": " ", "csrf_token": token})
    assert empty.status_code == 422 and "请填写核查说明" in empty.get_data(as_text=True)
    done = console.post(path, data={"note": "已核对丢失票号", "csrf_token": token})
    assert done.status_code == 303
    assert "admin 已确认：已核对丢失票号" in console.get("/console/c/v1/ledger").get_data(
        as_text=True
    )
