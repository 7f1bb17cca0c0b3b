"""The recommendation chain's settings (nominations.levels): the committee names the bureau
levels with their quotas and deadlines and which of them (and the nominating unit) must upload a
stamped form (nominations.level_forms), extends a level's deadline, and sets single units' own
places. Each change is audited (levels.set, levels.extend, levels.unit_quota)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select

from campaigns import categories as campaign_categories
from campaigns.models import Campaign, Category, Unit
from core import audit
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.types import utcnow
from nominations import level_forms
from nominations.labels import level_label
from nominations.levels import MAX_LEVELS, RANK, chain, get_level
from nominations.models import LevelQuota, Nomination, RecommendationLevel, UnitQuota


def started(campaign: Campaign) -> bool:
    """Whether any nomination left the draft stage: from then on the levels are fixed."""
    return bool(
        db.session.scalar(
            select(
                exists().where(Nomination.campaign_id == campaign.id, Nomination.status != "draft")
            )
        )
    )


def describe(campaign: Campaign, levels: list[RecommendationLevel]) -> list[dict[str, Any]]:
    codes = {c.id: c.code for c in campaign.categories}
    now = utcnow()
    stamped = level_forms.required_levels(campaign.id) if levels else set()
    return [
        {
            "position": level.position,
            "unit_level": level.unit_level,
            "label": level_label(level.unit_level),
            "deadline": level.deadline,
            "extended_at": level.extended_at,
            "locked": now >= level.deadline,
            "stamped_form": level.unit_level in stamped,
            "quotas": {
                codes[q.category_id]: q.quota for q in level.quotas if q.category_id in codes
            },
        }
        for level in levels
    ]


def _invalid(message: str, code: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=details)


def unit_form_required(campaign: Campaign) -> bool:
    """Whether the nominating units must upload a stamped form before they submit."""
    return level_forms.UNIT in level_forms.required_levels(campaign.id)


def configure(
    campaign: Campaign, specs: list[dict[str, Any]], unit_form: bool | None = None
) -> list[RecommendationLevel]:
    """Set the chain: ``specs`` lowest level first, each {unit_level, deadline, quotas: {category
    code: places}, stamped_form?}. An empty list makes the campaign single-level again. Once a
    nomination was submitted the levels themselves stay (409 levels_locked); quotas, deadlines
    and the stamped-form rules (``stamped_form`` per level, ``unit_form`` for the nominating
    units; absent: unchanged) may change."""
    if len(specs) > MAX_LEVELS:
        raise _invalid(f"推荐层级最多 {MAX_LEVELS} 级", "too_many_levels", max=MAX_LEVELS)
    names = [spec["unit_level"] for spec in specs]
    if len(set(names)) != len(names) or names != sorted(names, key=RANK.__getitem__):
        raise _invalid("推荐层级须自下而上排列且不能重复", "invalid_level_order", levels=names)
    deadlines = [spec["deadline"] for spec in specs]
    if deadlines != sorted(deadlines):
        raise _invalid("上级的推荐截止时间不能早于下级", "invalid_deadline_order")
    categories = list(campaign.categories)
    for spec in specs:
        for code in spec["quotas"]:
            campaign_categories.get_category(campaign, code)  # 404 category_not_found
        missing = [c.code for c in categories if c.code not in spec["quotas"]]
        if missing:
            raise _invalid(
                f"请为{level_label(spec['unit_level'])}设置每个奖项的推荐名额",
                "quota_required",
                unit_level=spec["unit_level"],
                categories=missing,
            )
    current = chain(campaign)
    before = describe(campaign, current)
    unit_before = unit_form_required(campaign)
    if [level.unit_level for level in current] != names and started(campaign):
        raise Conflict(
            "已有推荐材料提交，推荐层级不能再更改（名额和截止时间仍可调整）",
            code="levels_locked",
        )
    by_code = {c.code: c for c in categories}
    if [level.unit_level for level in current] != names:
        for level in current:
            db.session.delete(level)
        db.session.flush()
        current = [
            RecommendationLevel(
                campaign_id=campaign.id, position=i + 1, unit_level=name, deadline=deadlines[i]
            )
            for i, name in enumerate(names)
        ]
        db.session.add_all(current)
    for level, spec in zip(current, specs, strict=True):
        level.deadline = spec["deadline"]
        level.quotas = [
            LevelQuota(category_id=by_code[code].id, quota=places)
            for code, places in spec["quotas"].items()
        ]
    db.session.flush()
    level_forms.set_required(
        campaign,
        {level_forms.UNIT: unit_form}
        | {spec["unit_level"]: spec.get("stamped_form") for spec in specs},
        names,
    )
    audit.record(
        "levels.set",
        "campaign",
        campaign.id,
        campaign_id=campaign.id,
        before={"levels": before, "unit_stamped_form": unit_before},
        after={
            "levels": describe(campaign, current),
            "unit_stamped_form": unit_form_required(campaign),
        },
    )
    return current


def extend(
    campaign: Campaign, unit_level: str, deadline: datetime, reason: str
) -> RecommendationLevel:
    """The committee moves one level's deadline later: its list opens again until then."""
    level = get_level(campaign, unit_level)
    if deadline <= level.deadline or deadline <= utcnow():
        raise _invalid(
            "延长后的截止时间须晚于原截止时间和当前时间",
            "invalid_deadline",
            deadline=level.deadline.isoformat(),
        )
    before = level.deadline
    level.deadline = deadline
    level.extended_at = utcnow()
    db.session.flush()
    audit.record(
        "levels.extend",
        "campaign",
        campaign.id,
        campaign_id=campaign.id,
        before={"unit_level": unit_level, "deadline": before},
        after={"unit_level": unit_level, "deadline": deadline},
        reason=reason,
    )
    return level


def set_unit_quotas(campaign: Campaign, unit: Unit, quotas: dict[str, int | None]) -> None:
    """Places set for one unit per category code (None: back to the usual figure)."""
    before = unit_quotas(campaign, unit)
    for code, places in quotas.items():
        category = campaign_categories.get_category(campaign, code)
        row = db.session.get(UnitQuota, (campaign.id, unit.id, category.id))
        if places is None:
            if row is not None:
                db.session.delete(row)
        elif row is None:
            db.session.add(
                UnitQuota(
                    campaign_id=campaign.id, unit_id=unit.id, category_id=category.id, quota=places
                )
            )
        else:
            row.quota = places
    db.session.flush()
    audit.record(
        "levels.unit_quota",
        "campaign",
        campaign.id,
        campaign_id=campaign.id,
        before={"unit": unit.code, "quotas": before},
        after={"unit": unit.code, "quotas": unit_quotas(campaign, unit)},
    )


def unit_quotas(campaign: Campaign, unit: Unit | None = None) -> dict[str, Any]:
    """{unit code: {category code: places}} (one unit's {category code: places} with ``unit``)."""
    query = (
        select(Unit.code, Category.code, UnitQuota.quota)
        .join(Unit, Unit.id == UnitQuota.unit_id)
        .join(Category, Category.id == UnitQuota.category_id)
        .where(UnitQuota.campaign_id == campaign.id)
        .order_by(Unit.code, Category.code)
    )
    if unit is not None:
        query = query.where(UnitQuota.unit_id == unit.id)
    out: dict[str, dict[str, int]] = {}
    for unit_code, category_code, places in db.session.execute(query):
        out.setdefault(unit_code, {})[category_code] = places
    return out.get(unit.code, {}) if unit is not None else out
