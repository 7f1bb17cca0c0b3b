"""What the vote script's cheaper forms must keep: the answer it writes out by hand is the JSON
cjson wrote (and the stored idempotency answer is that same text), numbers reach Redis as the
integers they were, and the pace hash is kept only for a campaign whose pace check is on, as a
ring of 11 one-minute slots per nominee."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.extensions import redis_store
from core.types import utcnow
from tests.factories import Org
from voting import cast, services
from voting.keys import CampaignKeys

VOTES = "/api/v1/campaigns/v1/votes"


def test_the_written_answer_is_the_stored_idempotency_answer(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 3})
    headers = {**org.voter(5), "Idempotency-Key": "tap-7"}
    first = client.post(VOTES, json={"nominee": numbers[1]}, headers=headers)
    assert first.status_code == 201
    body = first.json
    assert body == {
        "vote_id": body["vote_id"],
        "nominee": numbers[1],
        "nominee_votes": 1,
        "remaining_today": 2,
        "status": "valid",
    }
    with app.app_context():
        keys = CampaignKeys.of("v1")
        stored = redis_store.votes.get(keys.idem(5, "tap-7"))
        assert orjson.loads(stored) == body
        # Integers reach Redis as integers: the quota hash, the ledger's sequence, the vote id.
        day = next(iter(redis_store.votes.scan_iter(match=f"{keys.base}q:*:5"))).decode()
        quota = redis_store.votes.hgetall(day)
        assert quota[b"_t"] == b"1" and quota[numbers[1].encode()] == b"1"
        assert quota[b"~c"] == b"1"
        (_, fields), *_ = redis_store.votes.xrange(keys.ledger)
        campaign_id, seq, suffix = body["vote_id"].split("-")
        assert fields[b"seq"] == seq.encode() == b"1" and fields[b"id"] == body["vote_id"].encode()
        assert campaign_id.isdigit() and len(suffix) == 8
    again = client.post(VOTES, json={"nominee": numbers[1]}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == body


def test_a_number_that_needs_escaping_is_still_valid_json(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=1)
    odd = 'D"1\\'
    with app.app_context():
        keys = CampaignKeys.of("v1")
        services.cast_vote(
            "v1", {"sub": 1, "c": 1}, numbers[0], idempotency_key=None, ip="10.0.0.1",
            device=None, user_agent="test",
        )  # fmt: skip
        redis_store.votes.hset(keys.nominees, odd, "doctor")
        answer, replayed = services.cast_vote(
            "v1", {"sub": 2, "c": 1}, odd, idempotency_key="k", ip="10.0.0.2",
            device=None, user_agent="test",
        )  # fmt: skip
        assert not replayed
        assert answer["nominee"] == odd and answer["nominee_votes"] == 1
        stored = redis_store.votes.get(keys.idem(2, "k"))
        assert orjson.loads(stored) == answer


def test_the_pace_hash_is_kept_only_with_the_pace_check(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=1, rules={"velocity_factor": 0})
    numbers_on = org.voting_campaign(slug="v2", nominees=1, rules={"velocity_factor": 10})
    with app.app_context():
        for slug, number in (("v1", numbers[0]), ("v2", numbers_on[0])):
            services.cast_vote(
                slug, {"sub": 3, "c": 1}, number, idempotency_key=None, ip="10.0.0.3",
                device=None, user_agent="test",
            )  # fmt: skip
        assert not redis_store.votes.exists(CampaignKeys.of("v1").pace)
        pace = redis_store.votes.hgetall(CampaignKeys.of("v2").pace)
        ((field, value),) = pace.items()
        minute, votes = divmod(int(value), 1_000_000)
        assert votes == 1 and field.decode() == f"{numbers_on[0]}#{minute % 11}"
        assert 0 < redis_store.votes.ttl(CampaignKeys.of("v2").pace) <= 3600


def _vote_at(moment: datetime, monkeypatch: pytest.MonkeyPatch, voter: int, number: str) -> str:
    """One vote cast with the vote path's clock at ``moment``; the answer's status."""
    monkeypatch.setattr(cast, "clock", lambda: moment)
    answer, _ = services.cast_vote(
        "v1", {"sub": voter, "c": 1}, number, idempotency_key=None, ip="10.0.0.4",
        device=None, user_agent="test",
    )  # fmt: skip
    return answer["status"]


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def test_the_pace_hash_keeps_11_slots_per_nominee_however_long_the_votes_go_on(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(
        nominees=2, rules={"velocity_factor": 10, "velocity_floor": 1000, "freeze_minutes": 0}
    )
    start = utcnow().replace(second=5, microsecond=0)
    with app.app_context():
        keys = CampaignKeys.of("v1")
        for step in range(40):  # 40 consecutive minutes, one vote a minute for each nominee
            moment = start + timedelta(minutes=step)
            for number in numbers:
                assert _vote_at(moment, monkeypatch, 100 + step, number) == "valid"
        pace = redis_store.votes.hgetall(keys.pace)
        last = _minute(start) + 39
        for number in numbers:
            mine = {f: v for f, v in pace.items() if f.decode().startswith(number + "#")}
            # Exactly 11 fields: the last 11 minutes, each in its slot with its one vote.
            assert mine == {
                f"{number}#{minute % 11}".encode(): b"%d" % (minute * 1_000_000 + 1)
                for minute in range(last - 10, last + 1)
            }
        assert len(pace) == 22
        assert 0 < redis_store.votes.ttl(keys.pace) <= 3600


def test_a_slot_a_lap_behind_counts_nothing(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Floor 2; with factor 10 the eleven minutes of two votes below would allow 20 a minute if
    # they counted.
    numbers = org.voting_campaign(
        rules={"velocity_factor": 10, "velocity_floor": 2, "freeze_minutes": 0}
    )
    number = numbers[0]
    now = utcnow().replace(second=5, microsecond=0)
    voter = iter(range(200, 300))
    with app.app_context():
        keys = CampaignKeys.of("v1")
        # Two votes a minute in minutes m-10 .. m: every slot of the ring is filled.
        for back in range(10, -1, -1):
            moment = now - timedelta(minutes=back)
            for _ in range(2):
                assert _vote_at(moment, monkeypatch, next(voter), number) == "valid"
        # Nothing until m+22: the same slot as m, two laps on; the ten slots before it hold
        # minutes m-10 .. m-1, not m+12 .. m+21. As with no history, the floor decides.
        later = now + timedelta(minutes=22)
        assert _minute(later) % 11 == _minute(now) % 11
        statuses = [_vote_at(later, monkeypatch, next(voter), number) for _ in range(3)]
        assert statuses == ["valid", "valid", "pending"]
        (_, held), *_ = redis_store.votes.xrevrange(keys.ledger, count=1)
        assert held[b"kind"] == b"vote" and held[b"st"] == b"pending"
        assert held[b"why"] == b"velocity"
        pace = redis_store.votes.hgetall(keys.pace)
        assert len(pace) == 11
        # The slot was written afresh for m+22 (its three votes), not added to minute m's two.
        slot = f"{number}#{_minute(later) % 11}".encode()
        assert pace[slot] == b"%d" % (_minute(later) * 1_000_000 + 3)
