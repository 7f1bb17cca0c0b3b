"""The counters are the standings: the vote script keeps no sorted set beside them, and the
ones earlier versions kept are deleted by an operator command once every process is upgraded."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from tests.factories import Org
from voting import services
from voting.keys import CampaignKeys


def test_the_counters_are_the_standings_and_old_rankings_are_forgotten_on_command(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(rules={"votes_per_day": 5})
    with app.app_context():
        keys = CampaignKeys.of("v1")
        # What an earlier version left: a sorted set per category whose scores disagree. An
        # older web process may still read it during a rolling deploy: publication keeps it.
        redis_store.votes.zadd(keys.rank("doctor"), {numbers[2]: 99})
        services.sync_campaign(db.session.scalar(select(Campaign).where(Campaign.slug == "v1")))
        assert redis_store.votes.zscore(keys.rank("doctor"), numbers[2]) == 99
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
        assert redis_store.votes.zscore(keys.rank("doctor"), numbers[0]) is None, "no vote adds"
        assert redis_store.votes.hgetall(keys.counts) == {
            numbers[0].encode(): b"2",
            numbers[1].encode(): b"1",
        }
    # Once every process runs this version, the operator deletes them.
    forgot = app.test_cli_runner().invoke(args=["votes", "forget-rankings", "--campaign", "v1"])
    assert forgot.exit_code == 0, forgot.output
    assert "1 old ranking(s) deleted" in forgot.output
    with app.app_context():
        assert not redis_store.votes.exists(keys.rank("doctor"))
    again = app.test_cli_runner().invoke(args=["votes", "forget-rankings"])
    assert again.exit_code == 0 and "0 old ranking(s) deleted" in again.output, again.output
    unknown = app.test_cli_runner().invoke(args=["votes", "forget-rankings", "--campaign", "nope"])
    assert unknown.exit_code != 0 and "campaign_not_found" in unknown.output
