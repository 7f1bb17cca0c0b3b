"""我的投票 on the H5 page: ``/c/<slug>/my-votes``.

The visitor's own votes (read with their voter cookie, the same service as
``GET /api/v1/campaigns/<slug>/votes/mine``): time in the campaign's time zone, nominee, state
in plain Chinese, and from 公示 on a receipt per counted vote to download and check. The page
script (h5_myvotes.js) checks a receipt in the browser against the published nominee roots
(the algorithm of docs/receipts.md); without the script every receipt is still a link.

Not a public body: it is one visitor's, so it is sent ``no-store`` and never kept by a cache."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from campaigns import services as campaign_services
from core.auth import read_voter_token
from core.errors import AppError, ServiceUnavailable
from core.ratelimit import limit
from core.web import VOTER_COOKIE
from nominations import public_view
from pages import h5
from pages.common import error_page, render_page, wechat_enabled
from voting import receipts
from voting import services as voting_services

bp = Blueprint("h5_myvotes", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)

TEMPLATE = "pages/h5/myvotes.html"


def _voter_id() -> int | None:
    token = request.cookies.get(VOTER_COOKIE)
    if not token:
        return None
    try:
        return int(read_voter_token(token)["sub"])
    except (AppError, KeyError, TypeError, ValueError):
        return None


def _publication(campaign: Any) -> tuple[Any, str]:
    """The receipt publication once 公示 has begun (computed at the first ask), or why not."""
    if not receipts.published_phase(campaign):
        return None, "before"
    try:
        return receipts.publication(campaign), ""
    except AppError as exc:
        return None, exc.code
    except ServiceUnavailable:
        return None, "unavailable"


@bp.route("/c/<slug>/my-votes")
def my_votes(slug: str) -> Any:
    """The visitor's votes in this campaign, newest first, and their receipts after 公示."""
    view = public_view.campaign_view(slug)
    campaign = campaign_services.get_public_campaign(slug)
    voter_id = _voter_id()
    mine: dict[str, Any] | None = None
    pub, waiting = None, ""
    if voter_id is not None:
        limit("RECEIPT_VOTER_LIMIT", "receipts-voter", f"{slug}:{voter_id}")
        pub, waiting = _publication(campaign)
        campaign = campaign_services.get_public_campaign(slug)  # fresh after a build's commit
        names = {number: card.get("name", "") for number, card in view.by_number.items()}
        mine = receipts.my_votes(campaign, voter_id, names)
    response = render_page(
        TEMPLATE,
        campaign=view,
        tab="my_votes",
        stage=h5.stage(view),
        counts_hidden=voting_services.counts_hidden(view),
        wechat_sdk_enabled=wechat_enabled(),
        mine=mine,
        publication=pub,
        waiting=waiting,
        publicity=receipts.published_phase(campaign),
    )
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Vary"] = "Cookie"
    return response
