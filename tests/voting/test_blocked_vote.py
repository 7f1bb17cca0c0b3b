"""A voter the committee blocked is refused by the vote script itself (403 voter_blocked), and the
blocked set survives a rewrite of the campaign state after the vote Redis lost it."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.types import utcnow
from tests.factories import Org
from voting import services
from voting.models import Vote, Voter, VoterBlock


def _voter(subject: str) -> int:
    voter = Voter(provider="device", subject=subject)
    db.session.add(voter)
    db.session.flush()
    return voter.id


def test_blocked_voter_is_refused_and_the_set_survives_a_redis_flush(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    client = app.test_client()
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        blocked, lifted, free = _voter("b"), _voter("l"), _voter("f")
        db.session.add(
            VoterBlock(campaign_id=campaign.id, voter_id=blocked, reason="刷票", blocked_by="admin")
        )
        db.session.add(
            VoterBlock(
                campaign_id=campaign.id,
                voter_id=lifted,
                reason="误判",
                blocked_by="admin",
                lifted_at=utcnow(),
                lifted_by="admin",
            )
        )
        db.session.commit()
        keys = services.CampaignKeys.of("v1")
        # The block API keeps the set in step (SADD on block); here the row and the set.
        redis_store.votes.sadd(keys.blocked, blocked)
        db.session.remove()

    def vote(voter: int, key: str | None = None) -> tuple[int, str | None]:
        headers = org.voter(voter)
        if key:
            headers["Idempotency-Key"] = key
        answer = client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=headers
        )
        return answer.status_code, (answer.json.get("error") or {}).get("code")

    refused = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(blocked)
    )
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "voter_blocked"
    assert refused.json["error"]["message"] == "你的投票资格已被本活动暂停，如有疑问请联系主办方"
    assert vote(free) == (201, None)
    assert vote(lifted) == (201, None)  # a lifted block does not refuse

    # The vote Redis loses everything; the state written again rebuilds the set from the rows.
    with app.app_context():
        client_redis = redis_store.votes
        base = keys.base.replace("{", "\\{").replace("}", "\\}")
        client_redis.delete(*client_redis.scan_iter(match=base + "*"))
        assert not client_redis.exists(keys.blocked)
        db.session.remove()
    assert vote(blocked, key="k1") == (403, "voter_blocked")  # the first vote re-publishes
    with app.app_context():
        assert redis_store.votes.smembers(keys.blocked) == {str(blocked).encode()}
        services.drain_campaign("v1")
        # Nothing of the blocked voter reached the ledger or the counters.
        assert db.session.scalar(select(func.count(Vote.id)).where(Vote.voter_id == blocked)) == 0
        db.session.remove()
    assert vote(free) == (201, None)
