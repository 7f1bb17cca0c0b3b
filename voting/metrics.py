"""Metrics of the vote path: every answer of the vote endpoint by outcome, and, at scrape time,
the ledger streams, held votes and open fraud flags of the campaigns being drained.

Nothing here adds I/O to a vote: the counter is a per-process prometheus_client counter updated
after the answer; the gauges are read from Redis and the database only when /metrics is scraped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis
from flask import Response, g, request
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.metrics import on_response, scrape_source
from voting.keys import CampaignKeys
from voting.ledger import DRAIN_GROUP
from voting.models import FraudFlag

# Campaigns whose ledger the worker drains (voting.jobs drains these phases).
DRAINED_PHASES = ("voting", "judging", "publicity")
SEVERITIES = ("high", "medium", "low")

# Outcomes decided by the vote script itself: the campaign exists (the script refuses nothing
# before it has the campaign's meta), so its slug is a safe label value. Any other outcome
# (invalid_voter, campaign_not_found, validation_error, service_unavailable, …) may come with
# whatever slug a client typed, and is counted under campaign="-" so that junk paths cannot
# create series without end.
SCRIPT_OUTCOMES = frozenset(
    {
        "accepted",
        "held",
        "replayed",
        "voting_closed",
        "nominee_not_found",
        "nominee_frozen",
        "daily_quota_exhausted",
        "nominee_daily_limit",
        "challenge_required",
        "rate_limited",
    }
)

VOTES = Counter(
    "zuimei_votes_total",
    "Answers of POST /api/v1/campaigns/<slug>/votes: accepted (counted), held (kept pending for"
    " the committee), replayed (a repeated Idempotency-Key, nothing counted), or the error code"
    " of the refusal.",
    ["campaign", "outcome"],
)


def vote_outcome(response: Response) -> str:
    if response.status_code == 201:
        if response.headers.get("Idempotent-Replayed"):
            return "replayed"
        # The vote route leaves the answer's status here (no second parse of the body).
        return "held" if g.get("vote_status") == "pending" else "accepted"
    return str(g.get("error_code") or f"http_{response.status_code}")


@on_response("voting.vote")
def count_vote(response: Response) -> None:
    outcome = vote_outcome(response)
    slug = (request.view_args or {}).get("slug") if outcome in SCRIPT_OUTCOMES else None
    VOTES.labels(str(slug or "-"), outcome).inc()


def _drained_slugs() -> list[str]:
    return list(
        db.session.scalars(
            select(Campaign.slug).where(Campaign.phase.in_(DRAINED_PHASES)).order_by(Campaign.slug)
        )
    )


@scrape_source("ledger", needs=("vote_redis", "database"))
def ledger_metrics() -> Iterator[Metric]:
    entries = GaugeMetricFamily(
        "zuimei_ledger_entries",
        "Votes (and freeze records) in the campaign's ledger stream not yet drained into the"
        " database.",
        labels=["campaign"],
    )
    unacked = GaugeMetricFamily(
        "zuimei_ledger_unacked",
        "Ledger entries a drainer has read but not yet acknowledged (committed).",
        labels=["campaign"],
    )
    lag = GaugeMetricFamily(
        "zuimei_ledger_lag_seconds",
        "Age of the oldest undrained ledger entry (0 when the stream is empty): the drain lag.",
        labels=["campaign"],
    )
    held = GaugeMetricFamily(
        "zuimei_votes_held",
        "Votes held as pending (not in the public count) awaiting the committee, from the live"
        " counters.",
        labels=["campaign"],
    )
    client = redis_store.votes  # the ledger and the counters live on the vote path's Redis
    now = time.time()
    for slug in _drained_slugs():
        keys = CampaignKeys.of(slug)
        pipe = client.pipeline(transaction=False)  # one campaign's keys share a hash slot
        pipe.xlen(keys.ledger)
        pipe.xpending(keys.ledger, DRAIN_GROUP)
        pipe.xrange(keys.ledger, count=1)
        pipe.hvals(keys.pending)
        length, pending, oldest, pending_counts = pipe.execute(raise_on_error=False)
        for answer in (length, oldest, pending_counts):
            if isinstance(answer, Exception):
                raise answer
        if isinstance(pending, redis.ResponseError):
            pending = {"pending": 0}  # no stream or no drain group yet
        elif isinstance(pending, Exception):
            raise pending
        age = 0.0
        if oldest:
            first_ms = int(oldest[0][0].decode().split("-")[0])
            age = max(0.0, now - first_ms / 1000)
        entries.add_metric([slug], float(length))
        unacked.add_metric([slug], float(pending["pending"]))
        lag.add_metric([slug], age)
        held.add_metric([slug], float(sum(int(v) for v in pending_counts)))
    yield entries
    yield unacked
    yield lag
    yield held


@scrape_source("fraud_flags", needs=("database",))
def fraud_flag_metrics() -> Iterator[Metric]:
    flags = GaugeMetricFamily(
        "zuimei_fraud_flags_open",
        "Fraud flags awaiting the committee's decision, by severity (0 for each campaign being"
        " drained).",
        labels=["campaign", "severity"],
    )
    counts = {(slug, severity): 0 for slug in _drained_slugs() for severity in SEVERITIES}
    rows = db.session.execute(
        select(Campaign.slug, FraudFlag.severity, func.count(FraudFlag.id))
        .join(Campaign, FraudFlag.campaign_id == Campaign.id)
        .where(FraudFlag.status == "open")
        # 观察 (watch) notes await nobody's decision: not flags in this count.
        .where(FraudFlag.severity.in_(SEVERITIES))
        .group_by(Campaign.slug, FraudFlag.severity)
    ).all()
    for slug, severity, count in rows:
        counts[(slug, severity)] = int(count)
    for (slug, severity), count in sorted(counts.items()):
        flags.add_metric([slug, severity], float(count))
    yield flags
