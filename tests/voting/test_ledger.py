"""Races, the day boundary, the drain into the votes table, the hash chain and reconciliation."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.types import utcnow
from tests.factories import Org
from voting import cast, ledger, services
from voting.models import NomineeFreeze, Vote


def _burst(app: Flask, requests: list[tuple[dict[str, str], str]]) -> list[Any]:
    """Fire every (headers, number) vote at once from its own thread."""
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def run(index: int, headers: dict[str, str], number: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=headers
        )
        results[index] = (response.status_code, response.json)

    threads = [
        threading.Thread(target=run, args=(i, headers, number))
        for i, (headers, number) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _drain(app: Flask, slug: str = "v1") -> int:
    with app.app_context():
        drained = services.drain_campaign(slug)
        db.session.remove()
    return drained


def _campaign(slug: str = "v1") -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.slug == slug))


def test_one_voter_300_times_at_once_gets_exactly_the_quota(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(rules={"votes_per_day": 5, "votes_per_nominee_per_day": 2})
    me = org.voter(42)
    results = _burst(app, [(me, numbers[0])] * 300)
    accepted = [body for status, body in results if status == 201]
    refused = {body["error"]["code"] for status, body in results if status != 201}
    assert len(accepted) == 2
    assert refused == {"nominee_daily_limit"}
    assert sorted(body["nominee_votes"] for body in accepted) == [1, 2]
    assert _drain(app) == 2


def test_300_voters_at_once_are_all_counted(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(rules={"velocity_factor": 0})
    results = _burst(app, [(org.voter(i), numbers[0]) for i in range(300)])
    assert [status for status, _ in results] == [201] * 300
    assert sorted(body["nominee_votes"] for _, body in results) == list(range(1, 301))
    assert _drain(app) == 300
    with app.app_context():
        assert db.session.scalar(select(func.count(Vote.id))) == 300
        assert (
            services.vote_counts(_campaign(), [(numbers[0], "doctor")])[numbers[0]]["votes"] == 300
        )


def test_quota_resets_at_local_midnight_not_utc(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # A Shanghai midnight a day or two from now: 16:00 UTC, still the day before in UTC.
    midnight = (utcnow().astimezone(shanghai) + timedelta(days=2)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    numbers = org.voting_campaign(
        voting_start=(midnight - timedelta(days=1)).isoformat(),
        voting_end=(midnight + timedelta(days=1)).isoformat(),
    )
    client = app.test_client()
    me = org.voter(5)

    def at(moment: datetime) -> None:
        monkeypatch.setattr(cast, "clock", lambda: moment.astimezone(UTC))

    before, after = midnight - timedelta(minutes=1), midnight + timedelta(seconds=30)
    assert before.astimezone(UTC).date() == after.astimezone(UTC).date()  # one day in UTC
    at(before)
    assert (
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=me
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=me
        ).status_code
        == 429
    )
    at(after)  # a new day in Shanghai
    fresh = client.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=me)
    assert fresh.status_code == 201 and fresh.json["remaining_today"] == 4
    assert _drain(app) == 2
    with app.app_context():
        days = sorted(db.session.scalars(select(Vote.day)))
    assert days == [before.date().isoformat(), after.date().isoformat()]


def test_drain_builds_a_verifiable_chain(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    for voter in range(6):
        client.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": numbers[voter % 3]},
            headers={**org.voter(voter), "User-Agent": "Mozilla/5.0 MicroMessenger/8.0"},
            environ_base={"REMOTE_ADDR": f"10.1.2.{voter}"},
        )
    health = client.get("/api/v1/admin/campaigns/v1/health", headers=org.headers("admin")).json
    assert health["stream_length"] == 6 and health["drained_votes"] == 0
    assert health["oldest_undrained_age_seconds"] is not None
    assert _drain(app) == 6
    assert _drain(app) == 0
    health = client.get("/api/v1/admin/campaigns/v1/health", headers=org.headers("admin")).json
    assert health["stream_length"] == 0 and health["drained_votes"] == 6
    with app.app_context():
        campaign = _campaign()
        votes = db.session.scalars(select(Vote).order_by(Vote.chain_index)).all()
        assert [v.chain_index for v in votes] == [1, 2, 3, 4, 5, 6]
        assert votes[0].ip == "10.1.2.0" and "MicroMessenger" in votes[0].user_agent
        assert all(v.status == "valid" for v in votes)
        report = services.verify_chain(campaign)
        assert report == {"ok": True, "checked": 6, "head": votes[-1].hash, "quarantined": 0}
        assert health["chain_head"] == votes[-1].hash
        # Quietly moving one vote to another nominee breaks the chain at that vote.
        db.session.execute(
            update(Vote).where(Vote.chain_index == 3).values(nominee_number=numbers[0])
        )
        db.session.commit()
        broken = services.verify_chain(campaign)
        assert broken["ok"] is False and broken["broken_at"] == votes[2].id
        db.session.remove()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["votes", "verify", "--campaign", "v1"]).exit_code == 1


def test_crashed_drain_is_claimed_again_and_stored_once(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    for voter in range(4):
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(voter)
        )
    with app.app_context():
        keys = services.CampaignKeys.of("v1")
        redis_client = redis_store.client
        ledger.ensure_group(redis_client, keys.ledger)
        # A drainer reads two entries, stores them, then dies before acknowledging.
        read = redis_client.xreadgroup(ledger.DRAIN_GROUP, "dead", {keys.ledger: ">"}, count=2)
        ledger.store_batch(_campaign(), list(read[0][1]))
        db.session.commit()
        # Another drainer takes over: the dead one's entries are claimed, nothing is doubled.
        assert services.drain_campaign("v1", consumer="alive", idle_ms=0) == 4
        assert db.session.scalar(select(func.count(Vote.id))) == 4
        assert services.verify_chain(_campaign())["ok"] is True
        assert redis_client.xlen(keys.ledger) == 0
        db.session.remove()


def test_reconcile_rebuilds_deleted_counters_during_voting(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(rules={"votes_per_nominee_per_day": 1})
    client = app.test_client()

    def vote(voter: int, number: str) -> None:
        assert (
            client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
            ).status_code
            == 201
        )

    for voter in range(5):
        vote(voter, numbers[0])
    vote(1, numbers[1])
    assert _drain(app) == 6
    for voter in range(10, 13):  # not yet drained
        vote(voter, numbers[1])
    with app.app_context():
        keys = services.CampaignKeys.of("v1")
        redis_store.client.delete(keys.counts)
        result = app.test_cli_runner().invoke(args=["votes", "reconcile", "--campaign", "v1"])
        assert result.exit_code == 0, result.output
        assert "2 counter(s) repaired" in result.output
        counts = services.vote_counts(_campaign(), [(n, "doctor") for n in numbers])
        assert {n: c["votes"] for n, c in counts.items()} == {
            numbers[0]: 5,
            numbers[1]: 4,
            numbers[2]: 0,
        }
        assert counts[numbers[0]]["rank"] == 1 and counts[numbers[1]]["rank"] == 2
        # A second run finds nothing to repair.
        again = services.reconcile(_campaign())
        assert again["repairs"] == []
        db.session.remove()
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    assert [item["votes"] for item in ranking] == [5, 4, 0]


def test_velocity_holds_the_vote_and_freezes_the_nominee(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(
        rules={"velocity_factor": 3, "velocity_floor": 4, "freeze_minutes": 10}
    )
    moment = utcnow().replace(second=5, microsecond=0)
    monkeypatch.setattr(cast, "clock", lambda: moment)
    client = app.test_client()
    answers = [
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(v)
        )
        for v in range(6)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 201, 201, 403]
    assert [a.json.get("status") for a in answers[:5]] == ["valid"] * 4 + ["pending"]
    assert answers[4].json["nominee_votes"] == 4  # the held vote is not in the public count
    assert answers[5].json["error"]["code"] == "nominee_frozen"
    assert "frozen_until" in answers[5].json["error"]["details"]
    # Other nominees are untouched.
    other = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[1]}, headers=org.voter(99)
    )
    assert other.status_code == 201
    assert _drain(app) == 7
    with app.app_context():
        freeze = db.session.scalar(select(NomineeFreeze))
        assert freeze.nominee_number == numbers[0] and freeze.minute_votes == 5
        assert "自动冻结" in freeze.explanation
        pending = db.session.scalars(select(Vote).where(Vote.status == "pending")).all()
        assert len(pending) == 1 and pending[0].status_reason == "velocity"
        report = services.reconcile(_campaign())
        assert report["repairs"] == []
        db.session.remove()


def test_sequence_rewound_by_redis_data_loss_never_reuses_stored_ids(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    client = app.test_client()
    for voter in range(3):
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(voter)
        )
    assert _drain(app) == 3
    with app.app_context():
        keys = services.CampaignKeys.of("v1")
        redis_store.client.set(keys.seq, 1)  # Redis came back from an older snapshot
        redis_store.client.delete(keys.meta)  # ... and without the campaign's meta
        db.session.remove()
    answer = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[1]}, headers=org.voter(50)
    ).json
    # The sequence was lifted above the stored 3 plus the rewind margin (docs/voting.md,
    # "Durability: rewinds"): numbers a voter may hold are never handed out again.
    assert answer["vote_id"].split("-")[1] == str(3 + app.config["VOTE_SEQ_REWIND_MARGIN"] + 1)
    assert _drain(app) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(Vote.id))) == 4
        db.session.remove()


def test_withdrawn_nominee_leaves_the_standings(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    client = app.test_client()
    client.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(1))
    client.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[1]}, headers=org.voter(2))
    client.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[1]}, headers=org.voter(3))
    admin = org.headers("admin")
    listing = client.get("/api/v1/campaigns/v1/nominations?status=approved", headers=admin).json
    second = next(i["id"] for i in listing["items"] if i["number"] == numbers[1])
    client.post(f"/api/v1/nominations/{second}/withdraw", json={"comment": "退出"}, headers=admin)
    card = client.get(f"/api/v1/campaigns/v1/nominees/{numbers[0]}").json
    assert card["rank"] == 1
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    assert [item["number"] for item in ranking] == [numbers[0]]
