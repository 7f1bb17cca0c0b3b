"""Counts and rankings: what the public sees of the tally, read from the Redis counters."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app

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


@dataclass
class Standings:
    """One campaign's counts as a process last read them: every category's ranking of the
    view's approved nominees, and each nominee's votes and competition rank (1, 2, 2, 4)."""

    at: float
    view: tuple[str, int]  # the public view's token and digest they were ranked on
    scores: dict[str, int]  # the view's approved nominees: valid votes
    items: dict[str, list[dict[str, Any]]]  # category -> standings, most votes first
    by_number: dict[str, dict[str, int]]  # approved nominee -> {votes, rank}


_standings: dict[tuple[str, str], Standings] = {}


def counts_seconds() -> float:
    """How long a process reuses the counts it read (``PUBLIC_COUNTS_SECONDS``): 1 s by default,
    so a crowd's reads cost one Redis round trip per process and second whatever the URLs; 0
    under test (TESTING), where a read right after a vote must show it."""
    app = current_app
    return float(app.config.get("PUBLIC_COUNTS_SECONDS", 0.0 if app.testing else 1.0))


def standings(campaign: Campaign | CampaignView) -> Standings:
    """The campaign's standings: the live counters of valid votes (one ``HGETALL``: the counters
    are the standings, the vote script keeps no second copy), ranked on the cached public view's
    approved nominees, ties by number; reused for ``counts_seconds``. A number that is not an
    approved nominee (withdrawn) has no votes here. 503 without the vote Redis."""
    view = (
        campaign if isinstance(campaign, CampaignView) else public_view.campaign_view(campaign.slug)
    )
    memo = (redis_store.key(), view.slug)
    seconds = counts_seconds()
    known = _standings.get(memo)
    now = time.monotonic()
    if (
        known is not None
        and seconds > 0
        and now - known.at < seconds
        and known.view == (view.token, view.digest)
    ):
        return known
    keys = CampaignKeys.of(view.slug)
    codes = [category.code for category in view.categories]
    items: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for card in view.nominees:
        if card["number"] and card["category"] in items:
            items[card["category"]].append(card)
    try:
        counters = redis_store.votes.hgetall(keys.counts) if codes else {}
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    approved = {card["number"] for cards in items.values() for card in cards}
    scores = {
        number: int(votes)
        for number, votes in ((n.decode(), v) for n, v in counters.items())
        if number in approved
    }
    by_number: dict[str, dict[str, int]] = {}
    for code, cards in items.items():
        cards.sort(key=lambda n: (-scores.get(n["number"], 0), n["number_seq"] or 0))
        standing: list[dict[str, Any]] = []
        previous: int | None = None
        rank = 0
        for position, card in enumerate(cards, start=1):
            votes = scores.get(card["number"], 0)
            if votes != previous:
                rank, previous = position, votes
            standing.append(
                {
                    "number": card["number"],
                    "name": card["name"],
                    "unit": card["unit"],
                    "votes": votes,
                    "rank": rank,
                }
            )
            by_number[card["number"]] = {"votes": votes, "rank": rank}
        items[code] = standing
    result = Standings(now, (view.token, view.digest), scores, items, by_number)
    if seconds > 0 and view.token:
        _standings[memo] = result
    return result


def vote_counts(
    campaign: Campaign | CampaignView, nominees: list[tuple[str, str]]
) -> dict[str, dict[str, int]]:
    """{number: {votes, rank}} for (number, category) pairs, from the campaign's standings
    (one Redis round trip per ``counts_seconds`` and process). A number that is not an approved
    nominee of the view (withdrawn) shows no votes, ranked against the category's nominees."""
    if not nominees:
        return {}
    table = standings(campaign)
    result: dict[str, dict[str, int]] = {}
    for number, category in nominees:
        known = table.by_number.get(number)
        if known is None:
            votes = table.scores.get(number, 0)
            higher = sum(1 for item in table.items.get(category, ()) if item["votes"] > votes)
            known = {"votes": votes, "rank": higher + 1}
        result[number] = dict(known)
    return result


def ranking(
    campaign: Campaign | CampaignView, category: Any, limit: int = 100
) -> list[dict[str, Any]]:
    """The standings of ``category`` (anything with a ``code``), most votes first, ties by
    number, competition ranks (1, 2, 2, 4): the approved nominees of the campaign's cached
    public view (no SQL while it is current) with their Redis counts (``standings``)."""
    return [dict(item) for item in standings(campaign).items.get(category.code, ())[:limit]]
