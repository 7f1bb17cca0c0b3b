"""HTTP routes: voter identity, the vote, rankings and the ledger's health."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from sqlalchemy import select

from campaigns import services as campaign_services
from core.auth import client_ip
from core.extensions import db
from core.http import cacheable
from core.ratelimit import rate_limit
from voting import services
from voting.models import LedgerHead, NomineeFreeze
from voting.schemas import (
    ChallengeAnswerSchema,
    ChallengePassSchema,
    ChallengeSchema,
    DeviceVoterSchema,
    FreezeListSchema,
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


def _voter_key() -> str:
    """Rate-limit key per voter: the signed token's subject (its absence is refused later)."""
    try:
        return f"voter:{services.current_voter()['sub']}"
    except Exception:
        return f"anonymous:{client_ip()}"


@blp.route("/voters/device", methods=["POST"])
@rate_limit("VOTER_CREATE_IP_LIMIT")
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
@blp.arguments(VoteCreateSchema())
@blp.response(201, VoteResultSchema())
@blp.alt_response(401, description="invalid_voter")
@blp.alt_response(403, description="voting_closed, nominee_frozen")
@blp.alt_response(404, description="nominee_not_found")
@blp.alt_response(428, description="challenge_required")
@blp.alt_response(429, description="daily_quota_exhausted, nominee_daily_limit, rate_limited")
@blp.alt_response(503, description="service_unavailable: the vote is not counted")
def vote(body: dict[str, Any], slug: str) -> Any:
    """Cast one vote: checked and counted by one Redis script, no SQL on this path.

    The script also enforces the hard per-address and per-voter limits per minute
    (ZUIMEI_VOTE_IP_PER_MINUTE, ZUIMEI_VOTE_VOTER_PER_MINUTE): 429 rate_limited with Retry-After.

    Past the campaign's per-address soft limit the answer is 428 challenge_required: solve a
    challenge (POST /challenges) and send its pass in the X-Challenge-Pass header."""
    voter = services.current_voter()
    ip = client_ip()
    key = request.headers.get("Idempotency-Key", "").strip()[:64] or None
    answer, replayed = services.cast_vote(
        slug,
        voter,
        body["nominee"],
        idempotency_key=key,
        ip=ip,
        device=voter.get("d") or request.headers.get("X-Device-Fingerprint"),
        user_agent=request.headers.get("User-Agent"),
        has_pass=services.has_valid_pass(request.headers.get("X-Challenge-Pass"), voter, ip),
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


@blp.route("/challenges", methods=["POST"])
@rate_limit("CHALLENGE_IP_LIMIT")
@blp.response(201, ChallengeSchema)
def new_challenge() -> dict[str, Any]:
    """A captcha to solve after 428 challenge_required."""
    return services.new_challenge()


@blp.route("/challenges/<challenge_id>", methods=["POST"])
@blp.doc(security=VOTER)
@rate_limit("CHALLENGE_IP_LIMIT")
@blp.arguments(ChallengeAnswerSchema)
@blp.response(200, ChallengePassSchema)
@blp.alt_response(410, description="challenge_expired")
@blp.alt_response(422, description="challenge_failed (one try per challenge)")
def answer_challenge(body: dict[str, Any], challenge_id: str) -> dict[str, Any]:
    """Answer a captcha: a right answer earns a short-lived pass for this voter and address."""
    voter = services.current_voter()
    token = services.answer_challenge(challenge_id, body["answer"], voter, client_ip())
    return {"challenge_pass": token.token, "expires_at": token.expires_at}


@blp.route("/admin/campaigns/<slug>/freezes", methods=["GET"])
@blp.doc(security=VOTER)
@blp.response(200, FreezeListSchema)
@campaign_services.staff_required("admin")
def freezes(slug: str) -> dict[str, Any]:
    """Nominees the vote script froze for a pace far above their own, newest first, with why."""
    campaign = campaign_services.get_campaign(slug)
    rows = db.session.scalars(
        select(NomineeFreeze)
        .where(NomineeFreeze.campaign_id == campaign.id)
        .order_by(NomineeFreeze.frozen_at.desc())
    ).all()
    return {"items": rows}
