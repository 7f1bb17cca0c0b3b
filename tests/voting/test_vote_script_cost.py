"""What the vote script's cheaper forms must keep: the answer it writes out by hand is the JSON
cjson wrote (and the stored idempotency answer is that same text), numbers reach Redis as the
integers they were, and the pace hash is kept only for a campaign whose pace check is on."""

from __future__ import annotations

import orjson
from flask import Flask
from flask.testing import FlaskClient

from core.extensions import redis_store
from tests.factories import Org
from voting import services
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
        assert not redis_store.votes.exists(CampaignKeys.of("v1").velocity)
        pace = redis_store.votes.hgetall(CampaignKeys.of("v2").velocity)
        assert (
            list(pace.values()) == [b"1"]
            and 0 < redis_store.votes.ttl(CampaignKeys.of("v2").velocity) <= 3600
        )
