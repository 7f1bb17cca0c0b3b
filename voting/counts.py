"""Counts and rankings: what the public sees of the tally, read from the Redis counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.models import Campaign
from core.errors import ServiceUnavailable
from core.extensions import VOTE_REDIS_ERRORS, redis_store
from core.types import utcnow
from nominations import public_view
from nominations.public_view import CampaignView
from voting.keys import CampaignKeys


def counts_hidden(campaign: Campaign | CampaignView, now: datetime | None = None) -> bool:
    rules = campaign.rules or {}
    if rules.get("hide_counts"):
        return True
    since = rules.get("hide_counts_from")
    if since:
        return (now or utcnow()) >= datetime.fromisoformat(since)
    return False


def vote_counts(
    campaign: Campaign | CampaignView, nominees: list[tuple[str, str]]
) -> dict[str, dict[str, int]]:
    """{number: {votes, rank}} for (number, category) pairs, from Redis, in one pipeline."""
    if not nominees:
        return {}
    keys = CampaignKeys.of(campaign.slug)
    try:
        raw = redis_store.votes.hmget(keys.counts, [number for number, _ in nominees])
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    counts = [int(value or 0) for value in raw]
    result: dict[str, dict[str, int]] = {}
    # One campaign's rank keys share its slot: on a cluster this pipeline goes to one node.
    rank_pipe = redis_store.votes.pipeline(transaction=False)
    for (number, category), votes in zip(nominees, counts, strict=True):
        # Competition ranking: 1 + how many in the category have strictly more votes.
        rank_pipe.zcount(keys.rank(category), f"({votes}", "+inf")
        result[number] = {"votes": votes}
    try:
        above = rank_pipe.execute()
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    for (number, _), higher in zip(nominees, above, strict=True):
        result[number]["rank"] = int(higher) + 1
    return result


def ranking(
    campaign: Campaign | CampaignView, category: Any, limit: int = 100
) -> list[dict[str, Any]]:
    """The standings of ``category`` (anything with a ``code``): the approved nominees of the
    campaign's cached public view (no SQL while it is current), ordered by their Redis counts
    (one ZREVRANGE), ties by number; competition ranks (1, 2, 2, 4)."""
    keys = CampaignKeys.of(campaign.slug)
    try:
        rows = redis_store.votes.zrevrange(keys.rank(category.code), 0, -1, withscores=True)
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    scores = {member.decode(): int(score) for member, score in rows}
    view = (
        campaign if isinstance(campaign, CampaignView) else public_view.campaign_view(campaign.slug)
    )
    nominees = [card for card in view.nominees if card["category"] == category.code]
    ordered = sorted(
        nominees, key=lambda n: (-scores.get(n["number"] or "", 0), n["number_seq"] or 0)
    )
    items: list[dict[str, Any]] = []
    previous: int | None = None
    rank = 0
    for position, card in enumerate(ordered[:limit], start=1):
        votes = scores.get(card["number"] or "", 0)
        if votes != previous:
            rank = position
            previous = votes
        items.append(
            {
                "number": card["number"],
                "name": card["name"],
                "unit": card["unit"],
                "votes": votes,
                "rank": rank,
            }
        )
    return items
