"""HTTP routes: voter identity, the vote, rankings and the ledger's health."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.auth import client_ip
from core.extensions import db
from core.http import cacheable
from voting import services
from voting.models import LedgerHead
from voting.schemas import (
    DeviceVoterSchema,
    LedgerHealthSchema,
    RankingArgsSchema,
    RankingSchema,
    VoteCreateSchema,
    VoteResultSchema,
    VoterTokenSchema,
)

blp = Blueprint(
    "voting",
    __name__,
    url_prefix="/api/v1",
    description="投票、投票身份与排行 (voting, voter identity, rankings)",
)

VOTER = [{"bearerAuth": []}]


@blp.route("/voters/device", methods=["POST"])
@blp.arguments(DeviceVoterSchema)
@blp.response(201, VoterTokenSchema)
def device_voter(body: dict[str, Any]) -> dict[str, Any]:
    """Demo and development only: a voter identity for a device id (404 when disabled)."""
    _, token = services.device_voter(body["device_id"])
    db.session.commit()
    return {"voter_token": token.token, "expires_at": token.expires_at}


@blp.route("/campaigns/<slug>/votes", methods=["POST"])
@blp.doc(
    security=VOTER,
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "maxLength": 64},
            "description": "a repeat returns the first answer and counts nothing",
        }
    ],
)
@blp.arguments(VoteCreateSchema)
@blp.response(201, VoteResultSchema)
@blp.alt_response(401, description="invalid_voter")
@blp.alt_response(403, description="voting_closed, nominee_frozen")
@blp.alt_response(404, description="nominee_not_found")
@blp.alt_response(428, description="challenge_required")
@blp.alt_response(429, description="daily_quota_exhausted, nominee_daily_limit, rate_limited")
@blp.alt_response(503, description="service_unavailable: the vote is not counted")
def vote(body: dict[str, Any], slug: str) -> Any:
    """Cast one vote: checked and counted by one Redis script, no SQL on this path."""
    voter = services.current_voter()
    key = request.headers.get("Idempotency-Key", "").strip()[:64] or None
    answer, replayed = services.cast_vote(
        slug,
        voter,
        body["nominee"],
        idempotency_key=key,
        ip=client_ip(),
        device=voter.get("d") or request.headers.get("X-Device-Fingerprint"),
        user_agent=request.headers.get("User-Agent"),
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return answer, 201, headers


@blp.route("/campaigns/<slug>/ranking", methods=["GET"])
@blp.arguments(RankingArgsSchema, location="query")
@blp.response(200, RankingSchema)
@cacheable(5)
def ranking(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Standings of one category (empty while the campaign hides counts)."""
    campaign = campaign_services.get_public_campaign(slug)
    category = campaign_services.get_category(campaign, args["category"])
    hidden = services.counts_hidden(campaign)
    return {
        "category": category.code,
        "category_name": category.name,
        "hidden": hidden,
        "items": [] if hidden else services.ranking(campaign, category),
    }


@blp.route("/admin/campaigns/<slug>/health", methods=["GET"])
@blp.doc(security=VOTER)
@blp.response(200, LedgerHealthSchema)
@campaign_services.staff_required("admin")
def health(slug: str) -> dict[str, Any]:
    """The ledger's lag: stream length, unacknowledged entries, oldest undrained age."""
    campaign = campaign_services.get_campaign(slug)
    report = services.ledger_health(campaign)
    head = db.session.get(LedgerHead, campaign.id)
    report["chain_head"] = head.head_hash if head else None
    return report
