"""The console's 推荐层级 page: the campaign's recommendation chain (levels, deadlines in the
campaign's time zone, places per category), each bureau's places used and what waits at it, and
the committee's settings — the chain and its quotas, a level's extension with a reason, a single
unit's own places. Reads come from nominations.levels / level_config; every write goes through
the /api/v1 endpoints (PUT …/levels, POST …/levels/<level>/extend, PUT …/unit-quotas/<code>)
with the staff cookie and the CSRF header, from pages/static/console_levels.js.

Its 推荐名单公示 panel (a level's 公示, nominations.level_publicity) lists the campaign's level
publicities and opens or withdraws one through ``/api/v1/campaigns/<slug>/level-publicity/<code>``;
``/console/c/<slug>/level-publicity`` is the same panel for a bureau's reviewer, for its own bureau.
The API is ``nominations.level_publicity_routes``, the public pages ``pages.h5_level_publicity``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect
from sqlalchemy import func, select

from campaigns import services as campaign_services
from campaigns.labels import phase_label
from campaigns.models import Campaign, Unit
from core.errors import AppError, Forbidden
from core.extensions import db
from core.types import utcnow
from nominations import level_config, level_publicity, levels
from nominations.labels import LEVEL_LABELS, level_label
from nominations.models import COMMITTEE, Nomination, RecommendationLevel
from pages import h5_level_publicity
from pages.common import error_page, local_time, render_page, staff_page
from pages.console_campaign import input_time

bp = Blueprint("console_levels", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

LOCKED_REASON = "已有推荐材料提交，推荐层级不能再增减（截止时间和名额仍可调整）"
NO_CHAIN_REASON = "本活动尚未设置推荐层级（单级推荐），没有可延长的截止时间"
NO_CATEGORY_REASON = "本活动还没有奖项，请先在活动设置中添加奖项"
NO_BUREAU_REASON = "本活动没有推荐层级或没有该层级的主管部门，无可公示的名单"


@bp.app_template_global("bureau_in_chain")
def bureau_in_chain(campaign: Campaign) -> bool:
    """Whether the signed-in reviewer's bureau is a level of the campaign's chain: the console's
    nav then links its 推荐名单公示 page."""
    account = g.get("account")
    unit = account.unit if account is not None else None
    return unit is not None and unit.level in {lv.unit_level for lv in levels.chain(campaign)}


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
            "stamped_form": bool(current[name]["stamped_form"]) if name in current else False,
        }
        for name in levels.BUREAU_LEVELS
    ]


def _publicity_panel(
    campaign: Campaign, chain: list[RecommendationLevel], bureau: Unit | None = None
) -> dict[str, Any]:
    """The 推荐名单公示 panel: the campaign's level publicities (one bureau's with ``bureau``)
    and the bureaus a publicity may be opened for."""
    names = [level.unit_level for level in chain]
    if bureau is not None:
        units = [bureau] if bureau.level in names else []
    else:
        units = list(
            db.session.scalars(select(Unit).where(Unit.level.in_(names)).order_by(Unit.code))
        )
    shown = [
        p
        for p in level_publicity.of_campaign(campaign.id)
        if bureau is None or p.unit_id == bureau.id
    ]
    ids = {p.unit_id for p in shown}
    found = db.session.execute(select(Unit.id, Unit.code).where(Unit.id.in_(ids)))
    codes = {unit_id: code for unit_id, code in found}
    out = []
    for publicity in shown:
        row = level_publicity.describe(publicity)
        out.append(
            row
            | {
                "unit_code": codes.get(publicity.unit_id, ""),
                "period": h5_level_publicity.period_text(
                    publicity.starts_at, publicity.ends_at, campaign
                ),
                "count": len(row["items"]),
                "withdrawn_local": local_time(publicity.withdrawn_at, campaign),
                "public_url": f"/c/{campaign.slug}/level-publicity/{publicity.id}",
            }
        )
    return {
        "publicities": out,
        "publicity_units": [
            {"code": u.code, "name": u.name, "label": level_label(u.level)} for u in units
        ],
        "publicity_list_url": f"/c/{campaign.slug}/level-publicity",
        "no_bureau_reason": NO_BUREAU_REASON,
        "now_input": input_time(utcnow(), campaign),
    }


@bp.route("/c/<slug>/level-publicity")
@staff_page("admin", "reviewer", login="console")
def level_publicity_page(slug: str) -> Any:
    """A bureau reviewer's 推荐名单公示 for its own bureau (the committee's is on 推荐层级)."""
    campaign = campaign_services.get_campaign(slug)
    if g.account.role == "admin":
        return redirect(f"/console/c/{campaign.slug}/levels#level-publicity", code=302)
    chain = levels.chain(campaign)
    bureau = g.account.unit
    if bureau is None or bureau.level not in {level.unit_level for level in chain}:
        raise Forbidden("本单位不在本活动的推荐层级中", code="not_a_level")
    return render_page(
        "pages/console/level_publicity.html",
        campaign=campaign,
        section="level_publicity",
        data={"slug": campaign.slug, "timezone": campaign.timezone},
        **_publicity_panel(campaign, chain, bureau),
    )


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
        unit_stamped_form=bool(chain) and level_config.unit_form_required(campaign),
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
        **_publicity_panel(campaign, chain),
    )
