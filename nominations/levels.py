"""Recommendation level by level (逐级推荐): a campaign's chain of bureau levels over the unit tree.

A campaign may name 1–3 bureau levels (county, city, province, lowest first) above the nominating
institutions; the committee sits on top. A nomination climbs the bureaus among its unit's
ancestors: a unit directly under a city (三级医院) skips the county level and nominates straight to
its city. At each level the bureau holding it passes it up (推荐上报, one of its places per
category), returns it to the level below (退回修改, freeing that level's place) or rejects it
(不予推荐). Each level's list locks at its deadline unless the committee extends it. A campaign
without a chain works as before: one reviewer's recommendation, the committee's decision.

The committee's settings (the chain, extensions, single units' places) are in level_config.
The step primitive (record_step) lives here too: every workflow change of a nomination writes one
trail row and one audit entry through it.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import and_, exists, false, func, select
from sqlalchemy.orm.exc import StaleDataError

from campaigns.models import Account, Campaign, Unit
from core import audit
from core.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.types import utcnow
from nominations import level_forms
from nominations.labels import level_label
from nominations.models import (
    COMMITTEE,
    EDITABLE,
    LevelDecision,
    Nomination,
    NominationReview,
    RecommendationLevel,
    UnitQuota,
)

BUREAU_LEVELS = ("county", "city", "province")
RANK = {"institution": 0, "county": 1, "city": 2, "province": 3}
MAX_LEVELS = len(BUREAU_LEVELS)
QUOTA_MAX = 1000


# --- the step primitive -------------------------------------------------------------------------


def state(nomination: Nomination) -> dict[str, Any]:
    """What an audit entry keeps of a nomination's workflow state."""
    out = {
        "status": nomination.status,
        "number": nomination.number,
        "category": nomination.category.code if nomination.category else None,
        "recommended": nomination.recommended,
    }
    if nomination.at_level is not None:
        out["at_level"] = nomination.at_level
    return out


def flush_or_conflict() -> None:
    try:
        db.session.flush()
    except StaleDataError as exc:
        db.session.rollback()
        raise Conflict("该材料刚被其他人处理过，请刷新后重试", code="concurrent_update") from exc


def record_step(
    account: Account,
    nomination: Nomination,
    action: str,
    to_status: str,
    comment: str | None = None,
    *,
    before: dict[str, Any] | None = None,
    audit_reason: str | None = None,
) -> None:
    """Move ``nomination`` to ``to_status`` with one trail step and one audit entry
    (``nomination.<action>``). ``before``: the state before changes the caller already made."""
    from_status = nomination.status
    before = before or state(nomination)
    nomination.status = to_status
    db.session.add(
        NominationReview(
            nomination=nomination,
            actor_id=account.id,
            actor_role=account.role,
            actor_unit=account.unit.name if account.unit else None,
            action=action,
            from_status=from_status,
            to_status=to_status,
            comment=comment,
        )
    )
    flush_or_conflict()
    audit.record(
        f"nomination.{action}",
        "nomination",
        nomination.id,
        campaign_id=nomination.campaign_id,
        before=before,
        after=state(nomination),
        reason=audit_reason or comment,
    )


# --- the chain ----------------------------------------------------------------------------------


def chain(campaign: Campaign) -> list[RecommendationLevel]:
    """The campaign's bureau levels, lowest first (empty: a single-level campaign)."""
    return list(
        db.session.scalars(
            select(RecommendationLevel)
            .where(RecommendationLevel.campaign_id == campaign.id)
            .order_by(RecommendationLevel.position)
        )
    )


def has_chain(campaign: Campaign) -> bool:
    return bool(
        db.session.scalar(select(exists().where(RecommendationLevel.campaign_id == campaign.id)))
    )


def get_level(campaign: Campaign, unit_level: str) -> RecommendationLevel:
    level = db.session.scalar(
        select(RecommendationLevel).where(
            RecommendationLevel.campaign_id == campaign.id,
            RecommendationLevel.unit_level == unit_level,
        )
    )
    if level is None:
        raise NotFound(
            "本活动没有该推荐层级", code="level_not_found", details={"unit_level": unit_level}
        )
    return level


def _unit_quota(campaign_id: int, unit_id: int, category_id: int) -> int | None:
    return db.session.scalar(
        select(UnitQuota.quota).where(
            UnitQuota.campaign_id == campaign_id,
            UnitQuota.unit_id == unit_id,
            UnitQuota.category_id == category_id,
        )
    )


def own_places(unit: Unit, campaign_ids: list[int]) -> dict[tuple[int, int], int]:
    """The places set for ``unit`` itself, by (campaign id, category id): one statement."""
    if not campaign_ids:
        return {}
    rows = db.session.execute(
        select(UnitQuota.campaign_id, UnitQuota.category_id, UnitQuota.quota).where(
            UnitQuota.unit_id == unit.id, UnitQuota.campaign_id.in_(campaign_ids)
        )
    )
    return {(campaign_id, category_id): places for campaign_id, category_id, places in rows}


def submit_quota(nomination: Nomination) -> int:
    """The places the nominating unit has in the category: its own figure if the committee set
    one (厅直属单位, 三级医院), else the category's ``max_per_unit``."""
    own = _unit_quota(nomination.campaign_id, nomination.unit_id, nomination.category_id)
    return nomination.category.max_per_unit if own is None else own


# --- where a nomination goes --------------------------------------------------------------------


def route(levels: list[RecommendationLevel], unit: Unit) -> list[tuple[RecommendationLevel, Unit]]:
    """The (level, bureau) steps a unit's nominations climb: for each chain level, the unit's
    ancestor of that level, when it has one (a unit directly under a city skips the county)."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part and int(part) != unit.id]
    ancestors = {u.level: u for u in db.session.scalars(select(Unit).where(Unit.id.in_(ids)))}
    return [
        (level, ancestors[level.unit_level]) for level in levels if level.unit_level in ancestors
    ]


def _closed(level: RecommendationLevel) -> Conflict:
    return Conflict(
        f"{level_label(level.unit_level)}推荐已截止，如需延长请联系评选办",
        code="level_closed",
        details={"unit_level": level.unit_level, "deadline": level.deadline.isoformat()},
    )


def _require_open(level: RecommendationLevel) -> None:
    if utcnow() >= level.deadline:
        raise _closed(level)


def _place(nomination: Nomination, level: str, unit: Unit | None) -> None:
    nomination.at_level = level
    nomination.at_unit_id = unit.id if unit is not None else None
    nomination.at_unit = unit


def enter(nomination: Nomination) -> None:
    """On submit: the nomination goes to the first bureau on its way (409 level_closed when that
    level's list is locked), or straight to the committee when none is. No chain: nothing."""
    levels = chain(nomination.campaign)
    if not levels:
        return
    level_forms.require(nomination, level_forms.UNIT)  # 409 stamped_form_required
    steps = route(levels, nomination.unit)
    if not steps:
        _place(nomination, COMMITTEE, None)
        return
    level, bureau = steps[0]
    _require_open(level)
    _place(nomination, level.unit_level, bureau)


def _release(nomination: Nomination, unit_id: int | None = None) -> None:
    """Free the places the nomination holds (of one bureau with ``unit_id``)."""
    for decision in nomination.level_decisions:
        if decision.holds_place and (unit_id is None or decision.unit_id == unit_id):
            decision.holds_place = False


def leave(nomination: Nomination) -> None:
    """On withdrawal: every bureau's place it held is free again."""
    _release(nomination)
    nomination.at_level = None
    nomination.at_unit_id = None


def _decision(
    account: Account,
    nomination: Nomination,
    unit_level: str,
    unit: Unit | None,
    decision: str,
    comment: str | None,
    *,
    returned_to: str | None = None,
) -> None:
    db.session.add(
        LevelDecision(
            nomination=nomination,
            campaign_id=nomination.campaign_id,
            category_id=nomination.category_id,
            unit_id=unit.id if unit is not None else None,
            unit_level=unit_level,
            decision=decision,
            returned_to=returned_to,
            holds_place=decision == "pass",
            comment=comment,
            actor_id=account.id,
            actor_name=account.display_name or account.username,
            actor_role=account.role,
            at=utcnow(),
        )
    )


def _holding(campaign_id: int) -> tuple[Any, ...]:
    """The passes that hold a place: kept by the bureau, for a nomination not withdrawn."""
    return (
        LevelDecision.campaign_id == campaign_id,
        LevelDecision.holds_place.is_(True),
        Nomination.status != "withdrawn",
    )


def _used(campaign_id: int, category_id: int, unit_id: int) -> int:
    return (
        db.session.scalar(
            select(func.count(LevelDecision.id))
            .join(Nomination, Nomination.id == LevelDecision.nomination_id)
            .where(
                *_holding(campaign_id),
                LevelDecision.category_id == category_id,
                LevelDecision.unit_id == unit_id,
            )
        )
        or 0
    )


def places_used(campaign_id: int) -> dict[tuple[int, int], int]:
    """Places taken in the whole campaign, by (bureau id, category id), in one query (the
    console's 推荐层级 page); the same count a pass checks against its quota."""
    rows = db.session.execute(
        select(LevelDecision.unit_id, LevelDecision.category_id, func.count(LevelDecision.id))
        .join(Nomination, Nomination.id == LevelDecision.nomination_id)
        .where(*_holding(campaign_id), LevelDecision.unit_id.is_not(None))
        .group_by(LevelDecision.unit_id, LevelDecision.category_id)
    )
    return {(unit_id, category_id): int(n) for unit_id, category_id, n in rows}


def bureau_quota(level: RecommendationLevel, category_id: int, unit_id: int) -> int:
    own = _unit_quota(level.campaign_id, unit_id, category_id)
    if own is not None:
        return own
    return next((q.quota for q in level.quotas if q.category_id == category_id), 0)


def _check_place(nomination: Nomination, level: RecommendationLevel, bureau: Unit) -> None:
    # Lock the bureau's row: two passes by one bureau cannot both see its last free place
    # (PostgreSQL); SQLite write transactions are already serialised by BEGIN IMMEDIATE.
    db.session.execute(select(Unit.id).where(Unit.id == bureau.id).with_for_update())
    limit = bureau_quota(level, nomination.category_id, bureau.id)
    if _used(nomination.campaign_id, nomination.category_id, bureau.id) >= limit:
        raise Conflict(
            f"本单位在「{nomination.category.name}」奖项的推荐上报名额（{limit} 名）已用完",
            code="level_quota_exceeded",
            details={
                "category": nomination.category.code,
                "unit_level": level.unit_level,
                "quota": limit,
            },
        )


def _require_comment(decision: str, comment: str | None) -> None:
    if decision in ("return", "reject") and not comment:
        raise ValidationFailed(
            "退回或不予推荐时必须填写意见",
            code="comment_required",
            details={"fields": {"comment": ["必填"]}},
        )


def _holder_step(
    account: Account, nomination: Nomination
) -> tuple[int, list[tuple[RecommendationLevel, Unit]]]:
    """Where the caller's bureau stands on the nomination's way: 403 not_a_level when its unit
    is no bureau of the chain, 409 not_at_your_level when the nomination waits elsewhere."""
    levels = chain(nomination.campaign)
    unit = account.unit
    if account.role != "reviewer" or unit is None or not levels:
        raise Forbidden("只有推荐层级的主管部门可以逐级推荐", code="not_a_level")
    if unit.level not in {level.unit_level for level in levels}:
        raise Forbidden("本单位不在本活动的推荐层级中", code="not_a_level")
    steps = route(levels, nomination.unit)
    index = next((i for i, (_, bureau) in enumerate(steps) if bureau.id == unit.id), None)
    if nomination.status != "submitted" or index is None or nomination.at_unit_id != unit.id:
        raise _elsewhere(nomination)
    return index, steps


def _elsewhere(nomination: Nomination) -> Conflict:
    return Conflict(
        "该材料当前不在本级待推荐名单中",
        code="not_at_your_level",
        details={"status": nomination.status, "at_level": nomination.at_level},
    )


def decide(account: Account, nomination: Nomination, decision: str, comment: str | None) -> None:
    """A bureau's decision on a nomination waiting at its level: pass, return or reject."""
    if nomination.campaign.phase not in ("nominating", "reviewing"):
        raise Conflict("当前阶段不能审核", code="review_closed")
    comment = (comment or "").strip() or None
    _require_comment(decision, comment)
    index, steps = _holder_step(account, nomination)
    level, bureau = steps[index]
    _require_open(level)
    before = state(nomination)
    if decision == "pass":
        level_forms.require(nomination, level.unit_level)  # 409 stamped_form_required
        _check_place(nomination, level, bureau)
        _decision(account, nomination, level.unit_level, bureau, "pass", comment)
        if index + 1 < len(steps):
            _place(nomination, steps[index + 1][0].unit_level, steps[index + 1][1])
        else:
            _place(nomination, COMMITTEE, None)
            nomination.recommended_at = utcnow()
            nomination.recommended_by_id = account.id
        record_step(account, nomination, "pass_up", "submitted", comment, before=before)
    elif decision == "return":
        _return_below(account, nomination, steps, index, level.unit_level, bureau, comment, before)
    else:
        _decision(account, nomination, level.unit_level, bureau, "reject", comment)
        record_step(account, nomination, "level_reject", "rejected", comment, before=before)


def _return_below(
    account: Account,
    nomination: Nomination,
    steps: list[tuple[RecommendationLevel, Unit]],
    index: int,
    unit_level: str,
    bureau: Unit | None,
    comment: str | None,
    before: dict[str, Any],
) -> None:
    """Back to the level that passed it up (its place is freed), or to the unit from the first."""
    action = "level_return" if bureau is not None else "return"
    if index > 0:
        below_level, below = steps[index - 1]
        _release(nomination, below.id)
        _decision(
            account,
            nomination,
            unit_level,
            bureau,
            "return",
            comment,
            returned_to=below_level.unit_level,
        )
        _place(nomination, below_level.unit_level, below)
        nomination.recommended_at = None
        nomination.recommended_by_id = None
        record_step(account, nomination, action, "submitted", comment, before=before)
        return
    _decision(account, nomination, unit_level, bureau, "return", comment, returned_to="unit")
    nomination.at_level = None
    nomination.at_unit_id = None
    nomination.recommended_at = None
    nomination.recommended_by_id = None
    record_step(account, nomination, action, "returned", comment, before=before)


def committee_gate(nomination: Nomination) -> None:
    """In a chain campaign the committee decides only what every level passed up."""
    if nomination.at_level != COMMITTEE:
        raise Conflict(
            "该材料尚未经各级推荐至评选办",
            code="recommendation_required",
            details={"at_level": nomination.at_level},
        )


def committee_return(account: Account, nomination: Nomination, comment: str | None) -> None:
    """The committee's return: to the last level that passed it up (or to the unit)."""
    steps = route(chain(nomination.campaign), nomination.unit)
    _return_below(
        account, nomination, steps, len(steps), COMMITTEE, None, comment, state(nomination)
    )


def committee_reject(account: Account, nomination: Nomination, comment: str | None) -> None:
    _decision(account, nomination, COMMITTEE, None, "reject", comment)


def may_fix(account: Account, nomination: Nomination) -> bool:
    """A bureau may correct the dossier of a nomination waiting at its open level (退回修改 from
    above lands there; it fixes it or returns it further down)."""
    if account.role != "reviewer" or account.unit_id is None:
        return False
    if nomination.status != "submitted" or nomination.at_unit_id != account.unit_id:
        return False
    if nomination.campaign.phase not in ("nominating", "reviewing"):
        return False
    level = db.session.scalar(
        select(RecommendationLevel).where(
            RecommendationLevel.campaign_id == nomination.campaign_id,
            RecommendationLevel.unit_level == nomination.at_level,
        )
    )
    return level is not None and utcnow() < level.deadline


# --- stamped forms (nominations.level_forms) ----------------------------------------------------


def form_holder(account: Account, nomination: Nomination, unit_level: str) -> Unit:
    """The unit whose stamped form of ``unit_level`` the caller may upload now: the nominating
    unit's (its clerk, or an admin acting for it, as at submit) while the nomination is a draft or
    returned; a bureau's (its reviewer) while the nomination waits at the bureau's open level.
    Refusals: 404 level_not_found (no such level in the chain), 403 forbidden (another role's
    form) or not_a_level, 409 not_at_your_level, nomination_closed, review_closed, level_closed."""
    names = {level.unit_level for level in chain(nomination.campaign)}
    if not names or (unit_level != level_forms.UNIT and unit_level not in names):
        raise NotFound(
            "本活动没有该推荐层级", code="level_not_found", details={"unit_level": unit_level}
        )
    phase_open = nomination.campaign.phase in ("nominating", "reviewing")
    if unit_level == level_forms.UNIT:
        if account.role not in ("unit", "admin") or (
            account.role == "unit" and account.unit_id != nomination.unit_id
        ):
            raise Forbidden("只有推荐单位可以上传本单位的盖章推荐表")
        if not phase_open:
            raise Conflict("当前阶段不能上传盖章推荐表", code="nomination_closed")
        if nomination.status not in EDITABLE:
            raise _elsewhere(nomination)
        return nomination.unit
    if account.role != "reviewer":
        raise Forbidden(f"只有{level_label(unit_level)}主管部门可以上传本级的盖章推荐表")
    if not phase_open:
        raise Conflict("当前阶段不能审核", code="review_closed")
    index, steps = _holder_step(account, nomination)
    level, bureau = steps[index]
    if level.unit_level != unit_level:
        raise _elsewhere(nomination)
    _require_open(level)
    return bureau


def may_download(account: Account, form: level_forms.LevelForm) -> bool:
    """Who may fetch a stamped form of a nomination they see: the committee, the unit whose form
    it is, and the bureaus above its level. Everyone else only reads that it is there."""
    if account.role == "admin" or account.unit_id == form.unit_id:
        return True
    unit = account.unit
    return (
        account.role == "reviewer"
        and unit is not None
        and RANK.get(unit.level, 0) > RANK.get(form.unit_level, 0)
    )


def form_to_download(
    account: Account, nomination: Nomination, unit_level: str, form_id: int | None
) -> level_forms.LevelForm:
    """The current form of a level (or an earlier one by id) if the caller may fetch it; 404
    level_form_not_found otherwise, exactly as when there is none."""
    form = level_forms.get_form(nomination.id, unit_level, form_id)
    if form is None or not may_download(account, form):
        raise NotFound("盖章推荐表不存在", code="level_form_not_found")
    return form


def _may_upload(account: Account, nomination: Nomination, unit_level: str) -> bool:
    try:
        form_holder(account, nomination, unit_level)
    except AppError:
        return False
    return True


def form_overview(account: Account | None, nomination: Nomination) -> dict[str, Any]:
    """The stamped forms of the nomination's way, its unit first, then each bureau on its way:
    whether the level requires one, the current form (when, by whom) and the replaced ones, with
    download links only where the caller may follow them, and whether the caller may upload
    there now (no ``account``: neither links nor uploads). A single-level campaign has none
    (``chained`` false)."""
    campaign = nomination.campaign
    levels = chain(campaign)
    answer: dict[str, Any] = {
        "chained": bool(levels),
        "max_bytes": level_forms.max_bytes(),
        "timezone": campaign.timezone,
        "levels": [],
    }
    if not levels:
        return answer
    required = level_forms.required_levels(campaign.id)
    uploaded = level_forms.forms_of(nomination.id)
    steps = [(level_forms.UNIT, nomination.unit)] + [
        (level.unit_level, bureau) for level, bureau in route(levels, nomination.unit)
    ]

    def shown(form: level_forms.LevelForm) -> dict[str, Any]:
        link = None
        if account is not None and may_download(account, form):
            link = url_for(
                "nominations.download_level_form",
                nomination_id=nomination.id,
                unit_level=form.unit_level,
                form=None if form.is_current else form.id,
            )
        return level_forms.describe(form, link)

    for unit_level, unit in steps:
        forms = uploaded.get(unit_level, [])
        current = next((form for form in forms if form.is_current), None)
        answer["levels"].append(
            {
                "unit_level": unit_level,
                "level_label": level_label(unit_level),
                "unit": unit.name,
                "unit_code": unit.code,
                "required": unit_level in required,
                "uploaded": current is not None,
                "current": shown(current) if current is not None else None,
                "history": [shown(form) for form in forms if not form.is_current],
                "can_upload": account is not None and _may_upload(account, nomination, unit_level),
            }
        )
    return answer


# --- what a bureau sees ---------------------------------------------------------------------------


def awaiting(account: Account) -> Any:
    """A condition on Nomination: what waits for the caller's decision in a chain campaign (a
    bureau: at its unit; the committee: at the committee)."""
    # Never null, so that its negation (awaiting=false) holds every other nomination.
    if account.role == "admin":
        return and_(
            Nomination.status == "submitted",
            func.coalesce(Nomination.at_level, "") == COMMITTEE,
        )
    if account.role == "reviewer" and account.unit_id is not None:
        return and_(
            Nomination.status == "submitted",
            func.coalesce(Nomination.at_unit_id, 0) == account.unit_id,
        )
    return false()


def awaiting_count(account: Account, campaign: Campaign) -> int:
    """How many nominations of the campaign wait for the caller's decision (see awaiting)."""
    return (
        db.session.scalar(
            select(func.count(Nomination.id)).where(
                Nomination.campaign_id == campaign.id, awaiting(account)
            )
        )
        or 0
    )


def awaiting_by_campaign(account: Account, campaign_ids: list[int]) -> dict[int, int | None]:
    """Per campaign id: what waits for the caller in a chain campaign (see awaiting), or None
    for a single-level campaign. Two statements for any number of campaigns."""
    if not campaign_ids:
        return {}
    chained = set(
        db.session.scalars(
            select(RecommendationLevel.campaign_id)
            .where(RecommendationLevel.campaign_id.in_(campaign_ids))
            .distinct()
        )
    )
    out: dict[int, int | None] = {cid: (0 if cid in chained else None) for cid in campaign_ids}
    if chained:
        rows = db.session.execute(
            select(Nomination.campaign_id, func.count(Nomination.id))
            .where(Nomination.campaign_id.in_(list(chained)), awaiting(account))
            .group_by(Nomination.campaign_id)
        )
        for campaign_id, total in rows:
            out[campaign_id] = total
    return out


def my_level(account: Account, campaign: Campaign) -> dict[str, Any] | None:
    """A bureau's own standing in the chain: its level, deadline, and places per category."""
    unit = account.unit
    if account.role != "reviewer" or unit is None:
        return None
    level = next((lv for lv in chain(campaign) if lv.unit_level == unit.level), None)
    if level is None:
        return None
    return {
        "unit_level": level.unit_level,
        "label": level_label(level.unit_level),
        "unit": unit.name,
        "unit_code": unit.code,
        "deadline": level.deadline,
        "locked": utcnow() >= level.deadline,
        "waiting": awaiting_count(account, campaign),
        "places": [
            {
                "category": category.code,
                "name": category.name,
                "used": _used(campaign.id, category.id, unit.id),
                "quota": bureau_quota(level, category.id, unit.id),
            }
            for category in campaign.categories
        ],
    }


def trail(nomination: Nomination) -> list[dict[str, Any]]:
    """Every level's decision on the nomination, oldest first: level, bureau, who, when, why."""
    return [
        {
            "unit_level": d.unit_level,
            "level_label": level_label(d.unit_level),
            "unit": d.unit.name if d.unit is not None else None,
            "decision": d.decision,
            "returned_to": d.returned_to,
            "holds_place": d.holds_place,
            "actor": d.actor_name,
            "actor_role": d.actor_role,
            "comment": d.comment,
            "at": d.at,
        }
        for d in nomination.level_decisions
    ]
