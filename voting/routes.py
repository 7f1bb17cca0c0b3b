"""HTTP routes: voter identity, the vote, rankings and the ledger's health."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, current_app, g, redirect, request, url_for
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.errors import AppError
from core.extensions import db
from core.http import cacheable, client_address
from core.ratelimit import rate_limit
from core.schemas import ErrorEnvelopeSchema
from core.web import VOTER_COOKIE, set_credential
from nominations import public_view
from voting import fraud, jobs, receipt_routes, services, vote_route, wechat
from voting.schemas import (
    ChallengeAnswerSchema,
    ChallengePassSchema,
    ChallengeSchema,
    CommitteeDecisionSchema,
    DecisionSchema,
    DeviceVoterSchema,
    FlagDetailSchema,
    FlagListArgsSchema,
    FlagListSchema,
    FreezeListSchema,
    JssdkArgsSchema,
    JssdkConfigSchema,
    LedgerHealthSchema,
    LiftFreezeSchema,
    MyQuotaSchema,
    OAuthCallbackArgsSchema,
    OAuthResultSchema,
    OAuthStartArgsSchema,
    PendingDecisionSchema,
    RankingArgsSchema,
    RankingSchema,
    ScanSchema,
    TallySchema,
    TrendArgsSchema,
    TrendSchema,
    VoteBrowseArgsSchema,
    VotePageSchema,
    VoterTokenSchema,
)

blp = Blueprint(
    "voting",
    __name__,
    url_prefix="/api/v1",
    description="投票、投票身份与排行 (voting, voter identity, rankings)",
)

BEARER = [{"bearerAuth": []}]

# 我的投票 and vote receipts (voting/receipt_routes.py, docs/receipts.md).
receipt_routes.attach(blp)


@blp.route("/voters/device", methods=["POST"])
@rate_limit("VOTER_CREATE_IP_LIMIT")
@blp.arguments(DeviceVoterSchema)
@blp.response(201, VoterTokenSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="provider_disabled (device identity is off)"
)
@blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
def device_voter(body: dict[str, Any]) -> dict[str, Any]:
    """A voter token for a device id (demo and development only).

    Anyone may call it while ``ZUIMEI_DEVICE_IDENTITY`` is on (off in production: 404
    provider_disabled). The device id is stored as a keyed hash; the same id gives the same
    voter. Limited per client address (``VOTER_CREATE_IP_LIMIT``): 429 rate_limited with
    Retry-After. Real voters come from WeChat (``/wechat/oauth/start``) or a phone
    (``/voters/sms``)."""
    _, token = services.device_voter(body["device_id"])
    db.session.commit()
    return {"voter_token": token.token, "expires_at": token.expires_at}


# The vote itself: a lean view (voting/vote_route.py) documented with the same schemas.
blp.add_url_rule("/campaigns/<slug>/votes", "vote", vote_route.vote, methods=["POST"])


@blp.route("/campaigns/<slug>/votes/me", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, MyQuotaSchema)
@blp.alt_response(401, schema=ErrorEnvelopeSchema, description="invalid_voter")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
def my_quota(slug: str) -> dict[str, Any]:
    """The caller's votes left today and whom they voted for today.

    Voters only (a voter token: bearer, or the H5 page's cookie; 401 invalid_voter without
    one). The day is the campaign's, in its time zone; this is the H5 page's counter. A draft
    or unknown campaign: 404 campaign_not_found."""
    voter = services.current_voter()
    public_view.campaign_view(slug)  # 404 for a draft or an unknown campaign, without SQL
    return services.my_quota(slug, voter)


_ranking_schema = RankingSchema()


@blp.route("/campaigns/<slug>/ranking", methods=["GET"])
@blp.arguments(RankingArgsSchema, location="query")
@blp.response(200, RankingSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@cacheable(5)
def ranking(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Standings of one category, most votes first.

    Public, no token; answers are cached for 5 seconds. ``items`` is empty and ``hidden``
    true while the campaign hides counts (``rules.hide_counts`` or after
    ``rules.hide_counts_from``). Counts are the live counters of valid votes; held (pending)
    votes are not in them. Unknown category: 404 category_not_found."""
    view = public_view.campaign_view(slug)  # the cached public view: no SQL while current
    category = view.category(args["category"])
    hidden = services.counts_hidden(view)

    def build() -> dict[str, Any]:
        return {
            "category": category.code,
            "category_name": category.name,
            "hidden": hidden,
            "items": [] if hidden else services.ranking(view, category),
        }

    # Kept per process like the other public reads (public_view.cached_body): serialised again
    # only when the standings it shows moved.
    body = public_view.cached_body(
        view,
        ("api-ranking", category.code, hidden),
        public_view.render_seconds("API_RENDER_SECONDS"),
        build,
        lambda answer: public_view.counts_fingerprint(*answer["items"]),
        lambda answer: public_view.json_body(_ranking_schema.dump(answer)),
    )
    return Response(body.data, status=200, headers=body.headers)


@blp.route("/admin/campaigns/<slug>/health", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, LedgerHealthSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required("admin")
def health(slug: str) -> dict[str, Any]:
    """The vote ledger's lag and the chain head.

    Admins only. Votes are acknowledged from Redis and drained to the database by the worker:
    this shows the stream length, entries read but not yet acknowledged, the age of the oldest
    undrained vote, votes drained, entries quarantined and the last chain hash. A growing
    ``oldest_undrained_age_seconds`` means the drainer is behind or stopped."""
    return services.ledger_health(campaign_services.get_campaign(slug))


@blp.route("/challenges", methods=["POST"])
@rate_limit("CHALLENGE_IP_LIMIT")
@blp.response(201, ChallengeSchema)
@blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable")
def new_challenge() -> dict[str, Any]:
    """A captcha to solve after 428 challenge_required.

    Public (no token). Answers a PNG image and an id valid for ``CHALLENGE_TTL`` (120 s by
    default); answer it with ``POST /challenges/{challenge_id}``. Limited per client address
    (``CHALLENGE_IP_LIMIT``, 30 a minute): 429 rate_limited. Redis down: 503."""
    return services.new_challenge()


@blp.route("/challenges/<challenge_id>", methods=["POST"])
@blp.doc(security=BEARER)
@rate_limit("CHALLENGE_IP_LIMIT")
@blp.arguments(ChallengeAnswerSchema)
@blp.response(200, ChallengePassSchema)
@blp.alt_response(410, schema=ErrorEnvelopeSchema, description="challenge_expired")
@blp.alt_response(
    422, schema=ErrorEnvelopeSchema, description="challenge_failed (one try per challenge)"
)
@blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
def answer_challenge(body: dict[str, Any], challenge_id: str) -> dict[str, Any]:
    """Answer a captcha for a pass that lifts the 428 on the next votes.

    Voters only (a voter token). One try per challenge: a wrong answer is 422
    challenge_failed, an expired or used challenge 410 challenge_expired (ask a new one). A
    right answer earns a pass bound to this voter and client address, valid
    ``CHALLENGE_PASS_TTL`` (300 s by default): send it as the ``X-Challenge-Pass`` header when
    voting. Limited per address like ``POST /challenges``."""
    voter = services.current_voter()
    token = services.answer_challenge(challenge_id, body["answer"], voter, client_address())
    return {"challenge_pass": token.token, "expires_at": token.expires_at}


@blp.route("/admin/campaigns/<slug>/freezes", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, FreezeListSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required("admin")
def freezes(slug: str) -> dict[str, Any]:
    """Nominee freezes, newest first, with why.

    Admins only. When a nominee's votes this minute exceed ``max(rules.velocity_floor,
    rules.velocity_factor`` × its average over the previous 10 minutes), the vote is held as
    pending and, with ``rules.freeze_minutes`` > 0, the vote script freezes the nominee for
    that long; votes for a frozen nominee are refused (403 nominee_frozen).
    Each row has the minute's votes, the baseline and, once lifted, who lifted it and why."""
    return {"items": fraud.list_freezes(campaign_services.get_campaign(slug))}


# --- WeChat web authorisation -------------------------------------------------------------------

OAUTH_COOKIE = "zm_oauth"


_SAFE_PATH = re.compile(r"/(?!/)[A-Za-z0-9/_.~%?=&+-]*")


def _safe_next(value: str | None, campaign: str) -> str:
    """Only a path on this site: never another host (no open redirect). Control characters,
    backslashes and "//" are refused outright: browsers drop or rewrite them into a host."""
    if value and _SAFE_PATH.fullmatch(value) and "//" not in value:
        return value
    return f"/c/{campaign}"


@blp.route("/wechat/oauth/start", methods=["GET"])
@blp.arguments(OAuthStartArgsSchema, location="query")
@blp.response(302, description="redirect to WeChat's authorisation page (snsapi_base)")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, provider_disabled"
)
@blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
@rate_limit("CHALLENGE_IP_LIMIT")
def oauth_start(args: dict[str, Any]) -> Response:
    """Start WeChat web authorisation (the H5 page's voter login).

    Public. Redirects (302) to WeChat's ``snsapi_base`` authorisation page; WeChat sends the
    browser back to ``/wechat/oauth/callback``. The state is single use and bound to this
    browser by a short-lived cookie; ``next`` must be a path on this site (anything else falls
    back to the campaign page). 404 provider_disabled without an official account configured;
    limited per address (429 rate_limited)."""
    campaign = campaign_services.get_public_campaign(args["campaign"])
    state, nonce = wechat.new_state(_safe_next(args["next"], campaign.slug), campaign.slug)
    callback = url_for("voting.oauth_callback", _external=True)
    response = redirect(wechat.authorize_url(callback, state), code=302)
    response.set_cookie(
        OAUTH_COOKIE,
        nonce,
        max_age=600,
        httponly=True,
        secure=request.is_secure,
        samesite="Lax",  # sent on the top-level redirect back from WeChat
        path="/api/v1/wechat/",
    )
    return response


@blp.route("/wechat/oauth/callback", methods=["GET"])
@blp.arguments(OAuthCallbackArgsSchema, location="query")
@blp.response(200, OAuthResultSchema, description="with format=json")
@blp.alt_response(302, description="back to the page the voter came from, with the voter cookie")
@blp.alt_response(
    400, schema=ErrorEnvelopeSchema, description="oauth_state_invalid, oauth_code_invalid"
)
@blp.alt_response(
    403, schema=ErrorEnvelopeSchema, description="snapshot_user: WeChat's snapshot mode cannot vote"
)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="provider_disabled")
@blp.alt_response(502, schema=ErrorEnvelopeSchema, description="wechat_error")
def oauth_callback(args: dict[str, Any]) -> Any:
    """WeChat's return: exchange the code and issue the voter token.

    Called by the browser WeChat redirects, not by hand. Checks the state (400
    oauth_state_invalid when unknown, used or from another browser), exchanges the code for
    the openid on the server (never trusting one from the client), and issues the voter
    token: a cookie and a 302 back to ``next`` for the H5 page, or JSON with
    ``format=json``. WeChat's snapshot mode users cannot vote (403 snapshot_user); WeChat's
    own errors are 502 wechat_error."""
    target = wechat.consume_state(args["state"], request.cookies.get(OAUTH_COOKIE))
    if not args["code"]:
        raise AppError("未获得微信授权，请重新进入", code="oauth_code_invalid", status=400)
    _, token = wechat.login_with_code(args["code"])
    db.session.commit()
    if args["format"] == "json":
        return {"voter_token": token.token, "expires_at": token.expires_at, "next": target["next"]}
    response = redirect(target["next"], code=302)
    set_credential(response, VOTER_COOKIE, token.token, current_app.config["VOTER_TOKEN_TTL"])
    response.delete_cookie(OAUTH_COOKIE, path="/api/v1/wechat/")
    return response


@blp.route("/wechat/jssdk", methods=["GET"])
@blp.arguments(JssdkArgsSchema, location="query")
@blp.response(200, JssdkConfigSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="provider_disabled")
@blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
@blp.alt_response(502, schema=ErrorEnvelopeSchema, description="wechat_error")
@rate_limit("CHALLENGE_IP_LIMIT")
def jssdk(args: dict[str, Any]) -> dict[str, Any]:
    """The JS-SDK ``wx.config`` signature for a page URL (share cards).

    Public; 404 provider_disabled without an official account. ``url`` is the page's own
    http(s) URL (signed without its ``#`` part; an invalid one is 422 invalid_url). WeChat's
    access token and ticket are cached in Redis and shared by every worker; WeChat's errors
    are 502 wechat_error. Limited per address (429)."""
    return wechat.jssdk_config(args["url"])


# --- the committee's eye: tallies, fraud scans and flags, decisions, the vote browser --------

ADMIN = ("admin",)


@blp.route("/admin/campaigns/<slug>/tally", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, TallySchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required(*ADMIN)
def tally(slug: str) -> dict[str, Any]:
    """Full tally from the votes table against the live counters.

    Admins only. Per nominee: valid, pending (held for review) and invalid votes stored in the
    database, and ``live_valid`` from the vote Redis; ``differences`` lists the nominees whose
    two counts differ, ``undrained`` the votes still in the ledger stream (a difference while
    votes are undrained is expected). Redis down: 503."""
    return fraud.full_tally(campaign_services.get_campaign(slug))


@blp.route("/admin/campaigns/<slug>/trend", methods=["GET"])
@blp.doc(security=BEARER)
@blp.arguments(TrendArgsSchema, location="query")
@blp.response(200, TrendSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required(*ADMIN)
def trend(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Per-minute snapshots of each nominee's valid and pending counts.

    Admins only. Filter by ``nominee`` (its number) and ``since`` (a moment); times are
    UTC."""
    rows = fraud.trend(campaign_services.get_campaign(slug), args["nominee"], args["since"])
    return {
        "items": [
            {
                "at": r.at.isoformat(),
                "nominee": r.nominee_number,
                "valid": r.valid,
                "pending": r.pending,
            }
            for r in rows
        ]
    }


@blp.route("/admin/campaigns/<slug>/fraud/scans", methods=["POST"])
@blp.doc(security=BEARER)
@blp.response(202, ScanSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required(*ADMIN)
def start_scan(slug: str) -> Any:
    """Start a fraud scan: every detector over the campaign's stored votes.

    Admins only. Answers 202 with the scan (status queued); an RQ worker runs it. Poll
    ``GET …/fraud/scans/{scan_id}`` until ``done`` (or ``failed``), then read the flags. A
    scan never changes a vote: flags wait for the committee's decision."""
    scan = fraud.start_scan(campaign_services.get_campaign(slug), g.account.username)
    db.session.commit()
    jobs.enqueue_scan(scan.id)
    return scan


@blp.route("/admin/campaigns/<slug>/fraud/scans/<id:scan_id>", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, ScanSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, scan_not_found")
@campaign_services.staff_required(*ADMIN)
def get_scan(slug: str, scan_id: int) -> Any:
    """A fraud scan's status and what it found.

    Admins only. ``status`` is queued, running, done or failed; once done, how many votes it
    read and how many flags it raised. A scan of another campaign: 404 scan_not_found."""
    return fraud.get_scan(campaign_services.get_campaign(slug), scan_id)


@blp.route("/admin/campaigns/<slug>/fraud/flags", methods=["GET"])
@blp.doc(security=BEARER)
@blp.arguments(FlagListArgsSchema, location="query")
@blp.response(200, FlagListSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required(*ADMIN)
def flags(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Fraud flags, most certain first.

    Admins only. Filter by ``status`` (open, confirmed, dismissed) and ``severity``. Weak
    observations (观察, ``severity=watch``) are left out unless asked for, and can never be
    confirmed: they point the committee to the vote browser."""
    campaign = campaign_services.get_campaign(slug)
    return {"items": fraud.list_flags(campaign, args["status"], args["severity"])}


@blp.route("/admin/campaigns/<slug>/fraud/flags/<id:flag_id>", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, FlagDetailSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, flag_not_found")
@campaign_services.staff_required(*ADMIN)
def flag_detail(slug: str, flag_id: int) -> Any:
    """A fraud flag with its evidence.

    Admins only. ``evidence`` depends on the rule: top addresses and devices, a per-minute
    histogram, sample voters, the thresholds that were crossed. ``explanation`` says it in
    Chinese for the committee."""
    return fraud.get_flag(campaign_services.get_campaign(slug), flag_id)


@blp.route("/admin/campaigns/<slug>/fraud/flags/<id:flag_id>/confirm", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(
    DecisionSchema,
    example={"reason": "同一网段 3 分钟内集中投票 412 票，设备指纹高度重复，经核实为刷票"},
)
@blp.response(200, FlagDetailSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, flag_not_found")
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="flag_decided, flag_open, watch_not_actionable"
)
@campaign_services.staff_required(*ADMIN)
def flag_confirm(body: dict[str, Any], slug: str, flag_id: int) -> Any:
    """Confirm a flag: its votes become invalid.

    Admins only; a reason is required (422 reason_required). Every vote the flag covers that is
    not invalid already becomes invalid (reason ``flag:<id>``) and leaves the counts; the
    decision is written to the decision chain with its hash and can be undone (``…/undo``).
    A flag decided already: 409 flag_decided; a watch note: 409 watch_not_actionable."""
    flag = fraud.confirm_flag(
        campaign_services.get_campaign(slug), flag_id, g.account, body["reason"]
    )
    db.session.commit()
    return flag


@blp.route("/admin/campaigns/<slug>/fraud/flags/<id:flag_id>/dismiss", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(DecisionSchema)
@blp.response(200, FlagDetailSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, flag_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="flag_decided, flag_open")
@campaign_services.staff_required(*ADMIN)
def flag_dismiss(body: dict[str, Any], slug: str, flag_id: int) -> Any:
    """Dismiss a flag: its votes stay as they are.

    Admins only; a reason is required (422 reason_required). Recorded in the decision chain.
    A flag decided already: 409 flag_decided. ``…/undo`` reopens it."""
    flag = fraud.dismiss_flag(
        campaign_services.get_campaign(slug), flag_id, g.account, body["reason"]
    )
    db.session.commit()
    return flag


@blp.route("/admin/campaigns/<slug>/fraud/flags/<id:flag_id>/undo", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(DecisionSchema)
@blp.response(200, FlagDetailSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, flag_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="flag_decided, flag_open")
@campaign_services.staff_required(*ADMIN)
def flag_undo(body: dict[str, Any], slug: str, flag_id: int) -> Any:
    """Undo a flag's decision and reopen it.

    Admins only; a reason is required. For a confirmed flag, the votes this flag invalidated
    get their earlier status back (votes invalidated for another cause stay invalid); a
    dismissed flag simply reopens. An open flag: 409 flag_open. Recorded in the decision
    chain."""
    flag = fraud.undo_flag(campaign_services.get_campaign(slug), flag_id, g.account, body["reason"])
    db.session.commit()
    return flag


@blp.route("/admin/campaigns/<slug>/votes/pending", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(PendingDecisionSchema)
@blp.response(200, CommitteeDecisionSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="nothing_pending")
@campaign_services.staff_required(*ADMIN)
def decide_pending(body: dict[str, Any], slug: str) -> Any:
    """Release or void held (pending) votes in bulk.

    Admins only; a reason is required. Votes held by the pressure checks wait as ``pending``:
    ``release`` makes them valid (they join the counts), ``void`` invalid. Choose them by
    ``vote_ids`` or all of one ``nominee`` (neither: 422 selection_required); none pending
    among them: 409 nothing_pending. One decision in the chain covers them all."""
    decision = fraud.decide_pending(
        campaign_services.get_campaign(slug),
        g.account,
        body["decision"],
        body["reason"],
        vote_ids=body["vote_ids"],
        nominee=body["nominee"],
    )
    db.session.commit()
    return decision


@blp.route("/admin/campaigns/<slug>/freezes/<number>/lift", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(LiftFreezeSchema)
@blp.response(204)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, not_frozen")
@campaign_services.staff_required(*ADMIN)
def lift_freeze(body: dict[str, Any], slug: str, number: str) -> None:
    """Lift a nominee's freeze early.

    Admins only; a reason is required. The nominee takes votes again at once. Recorded in the
    decision chain. A nominee that is not frozen: 404 not_frozen. Redis down: 503."""
    fraud.lift_freeze(campaign_services.get_campaign(slug), number, g.account, body["reason"])
    db.session.commit()


@blp.route("/admin/campaigns/<slug>/decisions", methods=["GET"])
@blp.doc(security=BEARER)
@blp.response(200, CommitteeDecisionSchema(many=True))
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required(*ADMIN)
def decisions(slug: str) -> Any:
    """Every committee decision on votes, in chain order.

    Admins only. Confirmations, dismissals, undos, releases, voids and freeze lifts, each
    with actor, reason, time, the number of votes it moved and its hash (each hash covers the
    one before, so a changed or removed decision breaks the chain)."""
    return fraud.list_decisions(campaign_services.get_campaign(slug))


@blp.route("/admin/campaigns/<slug>/votes", methods=["GET"])
@blp.doc(security=BEARER)
@blp.arguments(VoteBrowseArgsSchema, location="query")
@blp.response(200, VotePageSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@campaign_services.staff_required(*ADMIN)
def browse_votes(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Browse stored votes: how an auditor checks any published count.

    Admins only. Filter by status, nominee, flag, voter, address prefix and time (UTC
    moments); in chain order (oldest first), paginated (``per_page`` at most 500). Each row
    has the address, its region as the offline IP data places it, the device, the user agent
    and its chain hash. The same filters export to CSV or Excel (``…/votes.csv``,
    ``…/votes.xlsx``)."""
    page, per_page = args.pop("page"), args.pop("per_page")
    items, total = fraud.browse_votes(campaign_services.get_campaign(slug), args, page, per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}
