"""A campaign's categories (奖项): adding them, their award count and tiers (等次)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from campaigns.models import PHASES, Campaign, Category
from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.signals import campaign_changed


def award_settings(
    tiers: list[dict[str, Any]] | None, award_count: int | None
) -> tuple[list[dict[str, Any]] | None, int]:
    """A category's tiers (None: one implicit tier) and award count, checked together: with
    tiers the count is their sum (derived when not given, refused when it differs)."""
    if not tiers:
        if award_count is None:
            raise ValidationFailed(
                details={"fields": {"award_count": ["未设置等次时必须填写获奖名额"]}}
            )
        return None, award_count
    total = sum(int(tier["count"]) for tier in tiers)
    if total > 200:
        raise ValidationFailed(
            details={"fields": {"tiers": [f"各等次名额合计 {total} 名，不能超过 200 名"]}}
        )
    if award_count is not None and award_count != total:
        raise ValidationFailed(
            details={
                "fields": {"award_count": [f"获奖名额须等于各等次名额之和（{total} 名），或不填写"]}
            }
        )
    stored = [{"code": t["code"], "name": t["name"], "count": int(t["count"])} for t in tiers]
    return stored, total


def add_category(campaign: Campaign, fields: dict[str, Any]) -> Category:
    if PHASES.index(campaign.phase) > PHASES.index("nominating"):
        raise Conflict("推荐阶段结束后不能再添加奖项", code="categories_locked")
    fields = dict(fields)
    fields["tiers"], fields["award_count"] = award_settings(
        fields.get("tiers"), fields.get("award_count")
    )
    clash = db.session.scalar(
        select(Category).where(
            Category.campaign_id == campaign.id,
            (Category.code == fields["code"]) | (Category.prefix == fields["prefix"]),
        )
    )
    if clash is not None:
        raise Conflict(
            "奖项代码或编号前缀已被使用",
            code="category_exists",
            details={"code": fields["code"], "prefix": fields["prefix"]},
        )
    position = db.session.scalar(
        select(func.count(Category.id)).where(Category.campaign_id == campaign.id)
    )
    category = Category(campaign=campaign, position=position or 0, **fields)
    db.session.add(category)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same code or prefix
        db.session.rollback()
        raise Conflict("奖项代码或编号前缀已被使用", code="category_exists") from exc
    audit.record(
        "category.create", "category", category.code, campaign_id=campaign.id, after=fields
    )
    # The public view lists the categories (their tabs): it is rebuilt after this commits.
    campaign_changed.send(campaign)
    return category


def _award_snapshot(category: Category) -> dict[str, Any]:
    return {"award_count": category.award_count, "tiers": category.tiers}


def update_category(campaign: Campaign, category: Category, changes: dict[str, Any]) -> Category:
    """Change a category's award count or tiers, until the results go to publicity: a published
    list (and a reopened one) must keep the tiers it was announced with."""
    if PHASES.index(campaign.phase) >= PHASES.index("publicity"):
        raise Conflict("评选结果公示后不能再修改获奖名额或等次", code="awards_locked")
    tiers = changes.get("tiers", category.tiers)
    if "award_count" in changes:
        award_count = changes["award_count"]
    elif "tiers" in changes and not tiers:
        award_count = category.award_count  # tiers cleared: the total stays
    else:
        award_count = None if tiers else category.award_count
    before = _award_snapshot(category)
    category.tiers, category.award_count = award_settings(tiers, award_count)
    db.session.flush()
    audit.record(
        "category.update",
        "category",
        category.code,
        campaign_id=campaign.id,
        before=before,
        after=_award_snapshot(category),
    )
    campaign_changed.send(campaign)
    return category


def get_category(campaign: Campaign, code: str) -> Category:
    for category in campaign.categories:
        if category.code == code:
            return category
    raise NotFound("奖项不存在", code="category_not_found", details={"category": code})
