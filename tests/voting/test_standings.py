"""The counters are the standings: the vote script keeps no sorted set beside them."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from tests.factories import Org
from voting import services
from voting.keys import CampaignKeys


def test_the_counters_are_the_standings_and_old_rankings_are_cleared(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(rules={"votes_per_day": 5})
    with app.app_context():
        keys = CampaignKeys.of("v1")
        # What an earlier version left: a sorted set per category whose scores disagree.
        redis_store.votes.zadd(keys.rank("doctor"), {numbers[2]: 99})
        services.sync_campaign(db.session.scalar(select(Campaign).where(Campaign.slug == "v1")))
        assert not redis_store.votes.exists(keys.rank("doctor")), "publication clears it"
        db.session.remove()
    for voter, number in ((1, numbers[0]), (2, numbers[0]), (3, numbers[1])):
        answer = client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
        )
        assert answer.status_code == 201, answer.json
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    assert [(i["number"], i["votes"], i["rank"]) for i in ranking] == [
        (numbers[0], 2, 1),
        (numbers[1], 1, 2),
        (numbers[2], 0, 3),
    ]
    shown = client.get(f"/api/v1/campaigns/v1/nominees/{numbers[1]}").json
    assert (shown["votes"], shown["rank"]) == (1, 2)
    with app.app_context():
        assert not redis_store.votes.exists(keys.rank("doctor")), "no vote writes one again"
        assert redis_store.votes.hgetall(keys.counts) == {
            numbers[0].encode(): b"2",
            numbers[1].encode(): b"1",
        }
