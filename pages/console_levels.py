"""The console's 推荐层级 page: the campaign's recommendation chain (levels, deadlines in the
campaign's time zone, places per category), each bureau's places used and what waits at it, and
the committee's settings — the chain and its quotas, a level's extension with a reason, a single
unit's own places. Reads come from nominations.levels / level_config; every write goes through
the /api/v1 endpoints (PUT …/levels, POST …/levels/<level>/extend, PUT …/unit-quotas/<code>)
with the staff cookie and the CSRF header, from pages/static/console_levels.js."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect
from sqlalchemy import func, select

from campaigns import services as campaign_services
from campaigns.labels import phase_label
from campaigns.models import Campaign, Unit
from core.errors import AppError
from core.extensions import db
from core.types import utcnow
from nominations import level_config, levels
from nominations.labels import LEVEL_LABELS, level_label
from nominations.models import COMMITTEE, Nomination, RecommendationLevel
from pages.common import error_page, local_time, render_page, staff_page
from pages.console_campaign import input_time

bp = Blueprint("console_levels", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

LOCKED_REASON = "已有推荐材料提交，推荐层级不能再增减（截止时间和名额仍可调整）"
NO_CHAIN_REASON = "本活动尚未设置推荐层级（单级推荐），没有可延长的截止时间"
NO_CATEGORY_REASON = "本活动还没有奖项，请先在活动设置中添加奖项"


def _waiting(campaign: Campaign) -> tuple[dict[int, int], int]:
    """Submitted nominations waiting per bureau id, and how many reached the committee."""
    rows = db.session.execute(
        select(Nomination.at_level, Nomination.at_unit_id, func.count(Nomination.id))
        .where(Nomination.campaign_id == campaign.id, Nomination.status == "submitted")
        .group_by(Nomination.at_level, Nomination.at_unit_id)
    )
    by_unit: dict[int, int] = {}
    committee = 0
    for at_level, unit_id, n in rows:
        if at_level == COMMITTEE:
            committee += int(n)
        elif unit_id is not None:
            by_unit[unit_id] = by_unit.get(unit_id, 0) + int(n)
    return by_unit, committee


def _bureaus(
    campaign: Campaign, chain: list[RecommendationLevel], own: dict[str, dict[str, int]]
) -> dict[str, list[dict[str, Any]]]:
    """Per chain level, each bureau of that level: places used / quota per category, waiting."""
    used = levels.places_used(campaign.id)
    waiting, _ = _waiting(campaign)
    names = [lv.unit_level for lv in chain]
    units = db.session.scalars(select(Unit).where(Unit.level.in_(names)).order_by(Unit.code))
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    by_level = {lv.unit_level: lv for lv in chain}
    for unit in units:
        level = by_level[unit.level]
        quotas = {q.category_id: q.quota for q in level.quotas}
        places = []
        for category in campaign.categories:
            mine = own.get(unit.code, {}).get(category.code)
            places.append(
                {
                    "category": category.code,
                    "used": used.get((unit.id, category.id), 0),
                    "quota": mine if mine is not None else quotas.get(category.id, 0),
                    "own": mine is not None,
                }
            )
        out[unit.level].append(
            {
                "code": unit.code,
                "name": unit.name,
                "places": places,
                "waiting": waiting.get(unit.id, 0),
            }
        )
    return out


def _form_levels(campaign: Campaign, chain: list[RecommendationLevel]) -> list[dict[str, Any]]:
    """Every bureau level the chain may name, with its current settings when it is in it."""
    current = {row["unit_level"]: row for row in level_config.describe(campaign, chain)}
    return [
        {
            "unit_level": name,
            "label": level_label(name),
            "on": name in current,
            "deadline": input_time(current[name]["deadline"], campaign) if name in current else "",
            "quotas": current[name]["quotas"] if name in current else {},
        }
        for name in levels.BUREAU_LEVELS
    ]


@bp.route("/campaigns/<slug>/levels")
@staff_page("admin", login="console")
def levels_alias(slug: str) -> Any:
    """The address the issue names; the console's pages live under /console/c/<slug>/."""
    campaign = campaign_services.get_campaign(slug)
    return redirect(f"/console/c/{campaign.slug}/levels", code=302)


@bp.route("/c/<slug>/levels")
@staff_page("admin", login="console")
def levels_page(slug: str) -> Any:
    campaign = campaign_services.get_campaign(slug)
    chain = levels.chain(campaign)
    described = level_config.describe(campaign, chain)
    own = level_config.unit_quotas(campaign)
    started = level_config.started(campaign)
    _, at_committee = _waiting(campaign)
    categories = [{"code": c.code, "name": c.name} for c in campaign.categories]
    now = utcnow()
    rows = [
        row
        | {
            "deadline_text": local_time(row["deadline"], campaign),
            "extended_text": local_time(row["extended_at"], campaign),
            "min_extend": input_time(max(row["deadline"], now), campaign),
        }
        for row in described
    ]
    units = list(db.session.scalars(select(Unit).order_by(Unit.path, Unit.code)))
    unit_names = {u.code: u.name for u in units}
    data = {
        "slug": campaign.slug,
        "timezone": campaign.timezone,
        "categories": categories,
        "locked": started,
        "locked_reason": LOCKED_REASON if started else "",
        "levels": [r["unit_level"] for r in described],
        "unit_quotas": own,
    }
    return render_page(
        "pages/console/levels.html",
        campaign=campaign,
        section="levels",
        phase_name=phase_label(campaign.phase),
        chain=rows,
        form_levels=_form_levels(campaign, chain),
        bureaus=_bureaus(campaign, chain, own),
        at_committee=at_committee,
        categories=categories,
        units=[{"code": u.code, "name": u.name, "level": u.level} for u in units],
        unit_quotas=[
            {"code": code, "name": unit_names.get(code, code), "quotas": quotas}
            for code, quotas in own.items()
        ],
        level_labels=LEVEL_LABELS,
        started=started,
        locked_reason=LOCKED_REASON,
        no_chain_reason=NO_CHAIN_REASON,
        no_category_reason=NO_CATEGORY_REASON,
        data=data,
    )
