"""The H5 pages of the levels' 公示 (层级公示, nominations.level_publicity), for phones.

``/c/<slug>/level-publicity`` lists a campaign's level publicities that have begun — open ones
first, then ended and withdrawn ones — with the bureau, its level, the period and how many
people; ``/c/<slug>/level-publicity/<id>`` shows one: the bureau's name, the period, the contact
for objections as the bureau entered it, and the snapshot published when it was opened, by
category (name, unit, 职称, summary and the campaign's form fields marked public). A withdrawn
publicity keeps its heading and says when it was withdrawn, without its list; one not yet begun
is not public (404). Objections are not filed here: the page shows the bureau's contact.

Both bodies are public (the same for every visitor: no CSRF token, no cookie read or set) and
cached like the other H5 pages (pages.h5.public_page: ``public, max-age=H5_MAX_AGE``, ETag)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, request

from core.errors import AppError, NotFound
from core.types import utcnow
from nominations import level_publicity, public_view
from nominations.public_view import CampaignView
from pages.common import error_page, local_time
from pages.h5 import public_page

bp = Blueprint("h5_level_publicity", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)

LIST = "pages/h5/level_publicity_list.html"
PAGE = "pages/h5/level_publicity.html"
# Open first, then the ended and the withdrawn ones (each newest first).
_ORDER = {"open": 0, "closed": 1, "withdrawn": 2}


def period_text(starts_at: datetime, ends_at: datetime, campaign: Any) -> str:
    """The period as a notice writes it, in the campaign's zone: the end is local midnight after
    the last day, written as that day's 24:00 (``2026-12-03 09:00 至 2026-12-09 24:00``)."""
    return f"{local_time(starts_at, campaign)} 至 {end_text(ends_at, campaign)}"


def end_text(ends_at: datetime, campaign: Any) -> str:
    """A period's end (a local midnight) as its last day's 24:00, e.g. ``2026-12-09 24:00``."""
    return local_time(ends_at - timedelta(seconds=1), campaign, "%Y-%m-%d") + " 24:00"


def _public(publicity: level_publicity.LevelPublicity, now: datetime) -> bool:
    """Begun: open, ended, or withdrawn after it had begun."""
    if publicity.withdrawn_at is not None:
        return publicity.withdrawn_at >= publicity.starts_at
    return publicity.starts_at <= now


def _card(publicity: level_publicity.LevelPublicity, view: CampaignView) -> dict[str, Any]:
    shown = level_publicity.describe(publicity)
    return {
        "id": shown["id"],
        "unit": shown["unit"],
        "level_label": shown["level_label"],
        "status": shown["status"],
        "status_label": shown["status_label"],
        "period": period_text(publicity.starts_at, publicity.ends_at, view),
        "days": shown["days"],
        "working_days": shown["working_days"],
        "count": len(shown["items"]),
        "withdrawn_local": local_time(publicity.withdrawn_at, view),
    }


def _groups(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The snapshot by category, in the order it was taken (the campaign's)."""
    groups: list[dict[str, Any]] = []
    for item in items:
        if not groups or groups[-1]["code"] != item["category"]:
            groups.append({"code": item["category"], "name": item["category_name"], "people": []})
        groups[-1]["people"].append(item)
    return groups


def _listing(view: CampaignView) -> dict[str, Any]:
    now = utcnow()
    shown = [p for p in level_publicity.of_campaign(view.id) if _public(p, now)]
    shown.sort(key=lambda p: _ORDER[p.status(now)])  # stable: newest first within each
    return {"campaign": view, "publicities": [_card(p, view) for p in shown]}


def _one(view: CampaignView, publicity_id: int) -> dict[str, Any]:
    publicity = level_publicity.find(view.id, publicity_id)
    if publicity is None or not _public(publicity, utcnow()):
        raise NotFound("公示不存在或尚未开始", code="publicity_not_found")
    card = _card(publicity, view)
    groups = [] if card["status"] == "withdrawn" else _groups(publicity.items)
    return {
        "campaign": view,
        "publicity": card,
        "contact": publicity.contact,
        "groups": groups,
        "ends_local": end_text(publicity.ends_at, view),
    }


def _fingerprint(context: dict[str, Any]) -> int:
    """What changes a body: which publicities are shown and their status (a snapshot itself
    never changes)."""
    cards = context.get("publicities") or [context.get("publicity") or {}]
    return hash(tuple((c.get("id"), c.get("status")) for c in cards))


@bp.route("/c/<slug>/level-publicity")
def listing(slug: str) -> Any:
    """The campaign's level publicities: a public, cacheable body."""
    view = public_view.campaign_view(slug)
    key = ("h5-level-publicity", request.path)
    return public_page(view, key, LIST, lambda: _listing(view), _fingerprint)


@bp.route("/c/<slug>/level-publicity/<id:publicity_id>")
def page(slug: str, publicity_id: int) -> Any:
    """One level publicity: a public, cacheable body (404 before it begins)."""
    view = public_view.campaign_view(slug)
    key = ("h5-level-publicity", request.path)
    return public_page(view, key, PAGE, lambda: _one(view, publicity_id), _fingerprint)
