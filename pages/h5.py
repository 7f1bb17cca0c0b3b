"""The H5 voting page for phones: campaign home, nominee page, ranking, and the vote.

Every page works as plain links and forms (tabs, search and paging are GET URLs); the script adds
"load more", the vote button, the captcha dialog, the countdown and WeChat share cards. Nominee
data comes from the same composition the public API serves and goes through the same output
schemas, so the page cannot show a field the API would not."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from campaigns import services as campaign_services
from campaigns.models import Campaign
from campaigns.schemas import CampaignSchema
from core.auth import read_token
from core.errors import AppError, ServiceUnavailable, ValidationFailed
from core.extensions import db
from core.ratelimit import rate_limit
from core.types import utcnow
from core.web import VOTER_COOKIE, require_csrf, set_credential
from nominations import services as nomination_services
from nominations.schemas import NomineeDetailSchema, NomineeQueryArgsSchema, NomineeSchema
from pages.common import campaign_zone, error_page, query_args, render_page
from voting import services as voting_services
from voting.schemas import DeviceVoterSchema

bp = Blueprint("h5", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)

PER_PAGE = 12
_card = NomineeSchema()
_detail = NomineeDetailSchema()
_campaign_schema = CampaignSchema()
_listing_schema = NomineeQueryArgsSchema(only=("category", "q", "sort", "page"))


def _in_wechat() -> bool:
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def _wechat_enabled() -> bool:
    config = current_app.config
    return bool(config.get("WECHAT_APP_ID") and config.get("WECHAT_APP_SECRET"))


def _identity() -> str:
    """How this browser gets (or already has) a voter identity: ``ready`` with a valid voter
    cookie; ``wechat`` inside WeChat when the official account is configured; ``device`` where
    the demo provider is on; otherwise ``none`` (the page says to open it in WeChat)."""
    token = request.cookies.get(VOTER_COOKIE)
    if token:
        try:
            read_token("voter", token)
            return "ready"
        except AppError:
            pass
    if _in_wechat() and _wechat_enabled():
        return "wechat"
    if current_app.config["DEVICE_IDENTITY"]:
        return "device"
    if _wechat_enabled():
        return "wechat"
    return "none"


def _page_context(campaign: Campaign) -> dict[str, Any]:
    now = utcnow()
    if campaign.phase == "voting" and now < campaign.voting_start:
        stage = "before"
    elif campaign.is_voting_open(now):
        stage = "open"
    elif campaign.phase in ("draft", "nominating", "reviewing"):
        stage = "nominating"
    else:
        stage = "closed"
    return {
        "campaign": campaign,
        "campaign_json": _campaign_schema.dump(campaign),
        "categories": list(campaign.categories),
        "stage": stage,
        "server_now": now.isoformat(),
        "voting_start_local": campaign.voting_start.astimezone(campaign_zone(campaign)),
        "voting_end_local": campaign.voting_end.astimezone(campaign_zone(campaign)),
        "counts_hidden": voting_services.counts_hidden(campaign),
        "identity": _identity(),
        "in_wechat": _in_wechat(),
    }


def _render(template: str, campaign: Campaign, **context: Any):  # type: ignore[no-untyped-def]
    ctx = _page_context(campaign) | context
    sdk = bool(ctx["in_wechat"] and _wechat_enabled())
    return render_page(template, wechat_sdk=sdk, wechat_sdk_enabled=sdk, **ctx)


def _listing_args() -> dict[str, Any]:
    """The listing's query string as the public API reads it (NomineeQueryArgsSchema), leniently:
    text is clipped to the search box's 40 characters, and a bad sort or page falls back to the
    default. The page size is the page's own."""
    raw = {name: str(request.args.get(name) or "").strip() for name in _listing_schema.fields}
    for name in ("category", "q"):
        raw[name] = raw[name][:40]
    return query_args(_listing_schema, raw) | {"per_page": PER_PAGE}


def _listing(campaign: Campaign, args: dict[str, Any]) -> dict[str, Any]:
    if args["category"] is not None:
        campaign_services.get_category(campaign, args["category"])  # a Chinese 404 if unknown
    listing = nomination_services.nominee_listing(campaign, **args)
    listing["items"] = [_card.dump(item) for item in listing["items"]]
    listing["has_more"] = args["page"] * args["per_page"] < listing["total"]
    return listing


@bp.route("/")
def landing() -> Any:
    """The campaigns the public can open, newest first; staff find their way in from here."""
    campaigns = [c for c in campaign_services.list_campaigns() if c.phase != "archived"]
    return render_page("pages/h5/landing.html", campaigns=campaigns)


@bp.route("/c/<slug>")
def home(slug: str) -> Any:
    campaign = campaign_services.get_public_campaign(slug)
    args = _listing_args()
    return _render("pages/h5/home.html", campaign, listing=_listing(campaign, args), args=args)


@bp.route("/c/<slug>/cards")
def cards(slug: str) -> Any:
    """The next page of nominee cards as an HTML fragment (one renderer for first and later
    pages); the script appends it for "load more"."""
    campaign = campaign_services.get_public_campaign(slug)
    args = _listing_args()
    ctx = _page_context(campaign)
    return render_page(
        "pages/h5/_cards.html", listing=_listing(campaign, args), args=args, fragment=True, **ctx
    )


@bp.route("/c/<slug>/n/<number>")
def nominee(slug: str, number: str) -> Any:
    campaign = campaign_services.get_public_campaign(slug)
    person = _detail.dump(nomination_services.nominee_detail(campaign, number[:16]))
    renditions = sorted(
        (person.get("video") or {}).get("renditions") or [], key=lambda r: r.get("height") or 0
    )
    return _render("pages/h5/nominee.html", campaign, person=person, renditions=renditions)


@bp.route("/c/<slug>/ranking")
def ranking(slug: str) -> Any:
    campaign = campaign_services.get_public_campaign(slug)
    categories = list(campaign.categories)
    if not categories:
        raise AppError("该活动尚未设置评选类别", code="category_not_found", status=404)
    code = (request.args.get("category") or categories[0].code)[:40]
    category = campaign_services.get_category(campaign, code)
    hidden = voting_services.counts_hidden(campaign)
    items: list[dict[str, Any]] = []
    unavailable = False
    if not hidden and campaign.phase not in ("nominating", "reviewing"):
        try:
            items = voting_services.ranking(campaign, category)
        except ServiceUnavailable:
            unavailable = True
    return _render(
        "pages/h5/ranking.html",
        campaign,
        category=category,
        items=items,
        unavailable=unavailable,
    )


@bp.route("/c/<slug>/voter", methods=["POST"])
@rate_limit("VOTER_CREATE_IP_LIMIT")
def device_voter(slug: str) -> Any:
    """The demo device identity for a browser outside WeChat, kept in the HttpOnly voter
    cookie (the token never reaches page scripts). Off in production unless configured on."""
    require_csrf()
    campaign_services.get_public_campaign(slug)
    try:
        body = DeviceVoterSchema().load(request.get_json(silent=True) or {})
    except ValidationError as exc:
        raise ValidationFailed(details=exc.messages) from exc  # type: ignore[arg-type]
    _, token = voting_services.device_voter(body["device_id"])
    db.session.commit()
    response = jsonify({"identity": "ready"})
    set_credential(response, VOTER_COOKIE, token.token, current_app.config["VOTER_TOKEN_TTL"])
    return response
