"""Combined results: versions computed from votes, sheets and organiser scores, adjusted, final."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from flask import g, has_request_context
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import joinedload

from awards import components, scoring
from awards.models import (
    Criterion,
    OrganizerScore,
    ResultAdjustment,
    ResultEntry,
    ResultVersion,
)
from campaigns.models import Account, Campaign, Category
from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.types import utcnow
from nominations.labels import STATUS_LABELS as NOMINATION_STATUS_LABELS
from nominations.models import Nomination
from voting.models import LedgerHead, Vote
from voting.services import open_items

# --- what a result is computed from -----------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """Everything a campaign's result is computed from, read once for every category."""

    votes: dict[str, int]
    nominees: list[Nomination]  # approved, with their unit loaded
    sheets: dict[int, list[Decimal]]
    organizer: dict[int, Decimal]
    criteria_max: int
    panels: dict[str, dict[int, list[Decimal]]]  # peer and leader sheets (awards.components)
    satisfaction: dict[int, tuple[int, int]]  # invited answers, of which satisfied


def _valid_votes(campaign: Campaign) -> dict[str, int]:
    return dict(
        db.session.execute(
            select(Vote.nominee_number, func.count(Vote.id))
            .where(Vote.campaign_id == campaign.id, Vote.status == "valid")
            .group_by(Vote.nominee_number)
        ).all()
    )


def _inputs(campaign: Campaign) -> _Inputs:
    """Seven queries, however many nominees, judges and categories the campaign has."""
    organizer = {
        s.nomination_id: Decimal(str(s.points))
        for s in db.session.scalars(
            select(OrganizerScore).where(OrganizerScore.campaign_id == campaign.id)
        )
    }
    nominees = list(
        db.session.scalars(
            select(Nomination)
            .options(joinedload(Nomination.unit))
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
            .order_by(Nomination.id)
        )
    )
    criteria_max = db.session.scalar(
        select(func.coalesce(func.sum(Criterion.max_points), 0)).where(
            Criterion.campaign_id == campaign.id
        )
    )
    panels = components.panel_sheet_totals(campaign)
    return _Inputs(
        votes=_valid_votes(campaign),
        nominees=nominees,
        sheets=panels["jury"],
        organizer=organizer,
        criteria_max=int(criteria_max or 0),
        panels=panels,
        satisfaction=components.satisfaction_counts(campaign),
    )


class _Applied(NamedTuple):
    """An adjustment in force, as the scoring applies it."""

    action: str  # exclude | promote | tier
    reason: str | None = None
    tier: str | None = None  # the target tier of a ``tier`` adjustment


def _candidates(
    inputs: _Inputs, category: Category, adjustments: dict[int, _Applied]
) -> list[scoring.Candidate]:
    candidates = []
    for n in inputs.nominees:
        if n.category_id != category.id:
            continue
        applied = adjustments.get(n.id)
        answers, positive = inputs.satisfaction.get(n.id, (0, 0))
        candidates.append(
            scoring.Candidate(
                nomination_id=n.id,
                number=n.number or "",
                number_seq=n.number_seq or 0,
                valid_votes=inputs.votes.get(n.number or "", 0),
                sheet_totals=tuple(inputs.sheets.get(n.id, [])),
                organizer=inputs.organizer.get(n.id, Decimal(0)),
                adjustment=applied.action if applied else None,
                tier=applied.tier if applied else None,
                peer_totals=tuple(inputs.panels["peer"].get(n.id, [])),
                leader_totals=tuple(inputs.panels["leader"].get(n.id, [])),
                satisfaction_answers=answers,
                satisfaction_positive=positive,
            )
        )
    return candidates


def tiers_of(category: Category) -> tuple[scoring.Tier, ...]:
    """The category's award tiers in order; () for one implicit tier."""
    return tuple(
        scoring.Tier(code=t["code"], name=t["name"], count=int(t["count"]))
        for t in category.tier_list
    )


# --- versions ---------------------------------------------------------------------------------


def _require_drained(campaign: Campaign) -> None:
    """Results come from the votes table; every acknowledged vote must have reached it, and
    nothing the ledger knows may be unaccounted for: a quarantined entry could be a real vote,
    and a rewind of the vote Redis may have lost votes, until someone has looked."""
    health = open_items(campaign)
    if health["stream_length"]:
        raise Conflict("投票记录尚未全部入库，请稍后再计算", code="ledger_not_drained")
    if health["quarantined"]:
        raise Conflict(
            f"有 {health['quarantined']} 条投票记录被隔离待处理，"
            "请先在「账本」页面核查处理后再计算",
            code="ledger_quarantine_unresolved",
        )
    if health["unacknowledged_rewinds"]:
        raise Conflict(
            "投票服务的数据曾发生回退，可能有票丢失，请先在「账本」页面核查并确认后再计算",
            code="ledger_rewind_unacknowledged",
        )


def compute(campaign: Campaign, actor: Account, reason: str | None = None) -> ResultVersion:
    """A new draft version from the ledger's valid votes, submitted sheets and organiser scores.

    Once a result has been published, a new version reopens it (an upheld objection): it carries
    the adjustments of the version it replaces forward, see ``_carry``."""
    if campaign.phase not in ("judging", "publicity"):
        raise Conflict("只能在评审或公示阶段计算结果", code="results_closed")
    _require_drained(campaign)
    replaced = _replaced_version(campaign)
    number = (
        db.session.scalar(
            select(func.max(ResultVersion.version)).where(ResultVersion.campaign_id == campaign.id)
        )
        or 0
    ) + 1
    head = db.session.get(LedgerHead, campaign.id)
    version = ResultVersion(
        campaign_id=campaign.id,
        version=number,
        status="draft",
        weights=dict(campaign.weights),
        method=scoring.METHOD,
        reason=reason,
        ledger_head=head.head_hash if head else None,
        ledger_votes=head.chain_index if head else 0,
        created_by=actor.username,
    )
    db.session.add(version)
    db.session.flush()
    inputs = _inputs(campaign)
    audit.record(
        "results.compute",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        after={
            "version": number,
            "carried_from_version": replaced.version if replaced else None,
        },
        reason=reason,
        actor=actor,
    )
    carried: dict[int, _Applied] = {}
    if replaced is not None:
        _carry(campaign, version, replaced, inputs, actor)
        carried = _in_force(version)
    _fill_entries(campaign, version, carried, inputs)
    return version


def _fill_entries(
    campaign: Campaign,
    version: ResultVersion,
    adjustments: dict[int, _Applied],
    inputs: _Inputs | None = None,
) -> None:
    """Replace the version's entries: one DELETE and one bulk INSERT, however many nominees."""
    db.session.execute(delete(ResultEntry).where(ResultEntry.version_id == version.id))
    inputs = inputs or _inputs(campaign)
    nominees = {n.id: n for n in inputs.nominees}
    rows: list[dict[str, Any]] = []
    for category in campaign.categories:
        tiers = tiers_of(category)
        tier_names = {t.code: t.name for t in tiers}
        ranked = scoring.score_category(
            _candidates(inputs, category, adjustments),
            weights=version.weights,
            criteria_max=inputs.criteria_max,
            award_count=category.award_count,
            tiers=tiers,
        )
        for s in ranked:
            n = nominees[s.candidate.nomination_id]
            adjustment = adjustments.get(n.id)
            rows.append(
                {
                    "version_id": version.id,
                    "nomination_id": n.id,
                    "category_code": category.code,
                    "category_position": category.position,
                    "number": s.candidate.number,
                    "name": n.name,
                    "unit": n.unit.name,
                    "valid_votes": s.candidate.valid_votes,
                    "public_score": s.public,
                    "jury_score": s.jury,
                    "jury_count": len(s.candidate.sheet_totals),
                    "organizer_score": s.organizer,
                    "peer_score": s.peer,
                    "peer_count": len(s.candidate.peer_totals),
                    "leader_score": s.leader,
                    "leader_count": len(s.candidate.leader_totals),
                    "satisfaction_score": s.satisfaction,
                    "satisfaction_answers": s.candidate.satisfaction_answers,
                    "satisfaction_positive": s.candidate.satisfaction_positive,
                    "combined": s.combined,
                    "rank": s.rank,
                    "winner": s.winner,
                    "tier": s.tier,
                    "tier_name": tier_names.get(s.tier or ""),
                    "adjustment": adjustment.action if adjustment else None,
                    "adjustment_reason": adjustment.reason if adjustment else None,
                }
            )
    if rows:
        db.session.execute(insert(ResultEntry), rows)
    db.session.expire(version, ["entries"])


def get_version(campaign: Campaign, number: int) -> ResultVersion:
    version = db.session.scalar(
        select(ResultVersion).where(
            ResultVersion.campaign_id == campaign.id, ResultVersion.version == number
        )
    )
    if version is None:
        raise NotFound("结果版本不存在", code="result_not_found")
    return version


# --- adjustments ------------------------------------------------------------------------------


def _replaced_version(campaign: Campaign) -> ResultVersion | None:
    """The version a new computation replaces once a result has been published: the newest one
    computed since the publication (a reopening not yet published), else the published one.
    None before any publication: a computation in judging starts from scratch."""
    current = published(campaign) if campaign.phase == "publicity" else None
    if current is None or current.published_at is None:
        return None
    newer = db.session.scalar(
        select(ResultVersion)
        .where(
            ResultVersion.campaign_id == campaign.id,
            ResultVersion.version > current.version,
            ResultVersion.status.in_(("draft", "final")),
            ResultVersion.created_at > current.published_at,
        )
        .order_by(ResultVersion.version.desc())
        .limit(1)
    )
    return newer or current


def _in_force(version: ResultVersion) -> dict[int, _Applied]:
    """The adjustments the scoring applies: nomination id → (action, reason, tier)."""
    return {
        a.nomination_id: _Applied(a.action, a.reason, a.tier)
        for a in version.adjustments
        if a.status == "applied"
    }


def _actor_name(actor: Account | None) -> str:
    if actor is None and has_request_context():
        actor = getattr(g, "account", None)
    return getattr(actor, "username", None) or "system"


def _describe(adjustment: ResultAdjustment) -> dict[str, Any]:
    """An adjustment as the audit log keeps it."""
    return {
        "adjustment_id": adjustment.id,
        "nominee": adjustment.number,
        "action": adjustment.action,
        "tier": adjustment.tier,
        "reason": adjustment.reason,
        "created_by": adjustment.created_by,
        "created_at": adjustment.created_at,
        "made_in_version": adjustment.made_in_version,
        "carried_from_version": adjustment.carried_from_version,
        "status": adjustment.status,
        "not_applied_reason": adjustment.not_applied_reason,
    }


def _no_longer_fits(
    old: ResultAdjustment,
    nominee: Nomination | None,
    status: str | None,
    categories: dict[int, Category],
) -> str | None:
    """Why a carried adjustment cannot apply to the new computation, or None when it can."""
    if nominee is None:
        label = NOMINATION_STATUS_LABELS.get(status or "", status or "未知")
        return f"候选人已不在评选名单中（{label}），该调整未生效"
    category = categories.get(nominee.category_id)
    code = category.code if category else None
    if code != old.category_code:
        return f"候选人的奖项已由 {old.category_code} 改为 {code}，该调整未生效"
    if (
        old.action == "tier"
        and category is not None
        and old.tier not in {t.code for t in tiers_of(category)}
    ):
        return f"奖项已没有等次 {old.tier}，该调整未生效"
    return None


def _carry(
    campaign: Campaign,
    version: ResultVersion,
    replaced: ResultVersion,
    inputs: _Inputs,
    actor: Account,
) -> None:
    """Copy every adjustment of ``replaced`` still in force (applied or not applied, never a
    removed one) into ``version`` with its reason, author and time, marked with the version it
    came from. One that no longer fits (the nominee withdrawn, moved to another category) is
    kept, as ``not_applied`` with why: only the committee removes an adjustment."""
    kept = [a for a in replaced.adjustments if a.status != "removed"]
    if not kept:
        return
    nominees = {n.id: n for n in inputs.nominees}
    categories = {c.id: c for c in campaign.categories}
    missing = [a.nomination_id for a in kept if a.nomination_id not in nominees]
    statuses = (
        dict(
            db.session.execute(
                select(Nomination.id, Nomination.status).where(Nomination.id.in_(missing))
            ).all()
        )
        if missing
        else {}
    )
    for old in kept:
        nominee = nominees.get(old.nomination_id)
        why = _no_longer_fits(old, nominee, statuses.get(old.nomination_id), categories)
        carried = ResultAdjustment(
            version=version,
            nomination_id=old.nomination_id,
            number=old.number,
            name=nominee.name if nominee else old.name,
            category_code=old.category_code,
            action=old.action,
            tier=old.tier,
            reason=old.reason,
            created_by=old.created_by,
            created_at=old.created_at,
            made_in_version=old.made_in_version,
            carried_from_version=replaced.version,
            status="not_applied" if why else "applied",
            not_applied_reason=why,
        )
        db.session.add(carried)
    db.session.flush()
    for carried in version.adjustments:
        audit.record(
            "results.carry",
            "result_version",
            version.id,
            campaign_id=campaign.id,
            after=_describe(carried),
            reason=carried.reason,
            actor=actor,
        )


def _take_out(adjustment: ResultAdjustment, actor: Account | None, reason: str) -> None:
    adjustment.status = "removed"
    adjustment.removed_by = _actor_name(actor)
    adjustment.removed_at = utcnow()
    adjustment.removed_reason = reason


def _require_draft(version: ResultVersion, reason: str) -> None:
    if version.status != "draft":
        raise Conflict("只有草稿版本可以调整", code="version_locked")
    if not reason.strip():
        raise ValidationFailed("调整必须填写理由", code="reason_required")


def _check_tier_move(
    campaign: Campaign, version: ResultVersion, entry: ResultEntry, tier: str | None
) -> scoring.Tier:
    """The tier a ``tier`` adjustment moves ``entry`` into, or why it may not: the category has
    no tiers (409 tiers_not_set), no such tier (422 unknown_tier), the nominee does not win
    (409 not_a_winner: promote first), or the committee has already placed as many winners in
    that tier as it holds (409 tier_full: a tier never ends up over its count)."""
    category = next((c for c in campaign.categories if c.code == entry.category_code), None)
    tiers = tiers_of(category) if category is not None else ()
    if not tiers:
        raise Conflict("该奖项未设置等次", code="tiers_not_set")
    target = next((t for t in tiers if t.code == tier), None)
    if target is None:
        raise ValidationFailed(
            "该奖项没有这个等次",
            code="unknown_tier",
            details={"fields": {"tier": [f"可选等次：{'、'.join(t.code for t in tiers)}"]}},
        )
    if not entry.winner:
        raise Conflict("只能调整获奖者的等次；未获奖的候选人请先破格入选", code="not_a_winner")
    placed = [
        a.number
        for a in version.adjustments
        if a.status == "applied"
        and a.action == "tier"
        and a.tier == target.code
        and a.category_code == entry.category_code
        and a.nomination_id != entry.nomination_id
    ]
    if len(placed) >= target.count:
        raise Conflict(
            f"「{target.name}」的 {target.count} 个名额已全部由调整指定，"
            "请先把其中一位调出该等次或取消其调整",
            code="tier_full",
            details={"tier": target.code, "count": target.count, "placed": placed},
        )
    return target


def adjust(
    campaign: Campaign,
    version: ResultVersion,
    number: str,
    action: str | None,
    reason: str,
    actor: Account | None = None,
    tier: str | None = None,
) -> ResultVersion:
    """Exclude or promote a nominee, or move a winner to another award tier (or clear the
    adjustment) with a written reason; the draft is rescored and its tiers derived again.

    Clearing removes the nominee's adjustment, a carried one included, and keeps it listed as
    removed with who, when and why. A new action replaces the nominee's standing adjustment (a
    promoted winner moved to a tier stays a winner: the tier placement keeps them in)."""
    _require_draft(version, reason)
    number = number.strip().upper()
    entry = next((e for e in version.entries if e.number == number), None)
    standing = next(
        (
            a
            for a in version.adjustments
            if a.status != "removed"
            and (a.nomination_id == entry.nomination_id if entry else a.number == number)
        ),
        None,
    )
    if entry is None and (action or standing is None):
        raise NotFound("候选人不在该结果中", code="nominee_not_found")
    target = (
        _check_tier_move(campaign, version, entry, tier)
        if action == "tier" and entry is not None
        else None
    )
    before = _describe(standing) if standing else None
    if standing is not None:
        _take_out(standing, actor, reason)
    if action and entry is not None:
        db.session.add(
            ResultAdjustment(
                version=version,
                nomination_id=entry.nomination_id,
                number=entry.number,
                name=entry.name,
                category_code=entry.category_code,
                action=action,
                tier=target.code if target else None,
                reason=reason,
                created_by=_actor_name(actor),
                made_in_version=version.version,
            )
        )
    db.session.flush()
    _fill_entries(campaign, version, _in_force(version))
    after: dict[str, Any] = {"nominee": number, "action": action}
    if target is not None:
        after |= {"tier": target.code, "tier_name": target.name}
    audit.record(
        f"results.{action or 'clear'}",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        before=before,
        after=after,
        reason=reason,
        actor=actor,
    )
    return version


def remove_adjustment(
    campaign: Campaign,
    version: ResultVersion,
    adjustment_id: int,
    actor: Account | None,
    reason: str,
) -> ResultVersion:
    """Take one adjustment of a draft out of force by its id (a carried one, or one that no
    longer applies), with a written reason; it stays listed as removed and the draft is
    rescored."""
    _require_draft(version, reason)
    adjustment = next(
        (a for a in version.adjustments if a.id == adjustment_id and a.status != "removed"), None
    )
    if adjustment is None:
        raise NotFound("该调整不存在或已移除", code="adjustment_not_found")
    before = _describe(adjustment)
    _take_out(adjustment, actor, reason)
    db.session.flush()
    _fill_entries(campaign, version, _in_force(version))
    audit.record(
        "results.clear",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        before=before,
        after={"nominee": adjustment.number, "action": None, "adjustment_id": adjustment.id},
        reason=reason,
        actor=actor,
    )
    return version


def sensitivity(campaign: Campaign, version: ResultVersion) -> list[dict[str, Any]]:
    adjustments = {
        e.nomination_id: _Applied(e.adjustment, tier=e.tier)
        for e in version.entries
        if e.adjustment
    }
    inputs = _inputs(campaign)
    report = []
    for category in campaign.categories:
        report.append(
            {
                "category": category.code,
                "scenarios": scoring.sensitivity(
                    _candidates(inputs, category, adjustments),
                    weights=version.weights,
                    criteria_max=inputs.criteria_max,
                    award_count=category.award_count,
                ),
            }
        )
    return report


def winners_of(campaign: Campaign, version: ResultVersion) -> list[ResultEntry]:
    """A version's winners by category, then award tier (in the category's order), then rank."""
    order = {c.code: {t["code"]: i for i, t in enumerate(c.tier_list)} for c in campaign.categories}

    def key(entry: ResultEntry) -> tuple[int, int, int]:
        tiers = order.get(entry.category_code, {})
        return (entry.category_position, tiers.get(entry.tier or "", len(tiers)), entry.rank)

    return sorted((e for e in version.entries if e.winner), key=key)


def finalize(campaign: Campaign, version: ResultVersion) -> ResultVersion:
    if version.status != "draft":
        raise Conflict("该版本已定稿", code="version_locked")
    for other in db.session.scalars(
        select(ResultVersion).where(
            ResultVersion.campaign_id == campaign.id, ResultVersion.status == "final"
        )
    ):
        other.status = "superseded"
    version.status = "final"
    version.finalized_at = utcnow()
    db.session.flush()
    audit.record(
        "results.finalize",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        after={"version": version.version},
    )
    return version


def publish(campaign: Campaign, version: ResultVersion) -> ResultVersion:
    """Publish a final version for the publicity period (公示)."""
    if version.status != "final":
        raise Conflict("只有定稿版本可以公示", code="not_final")
    for other in db.session.scalars(
        select(ResultVersion).where(
            ResultVersion.campaign_id == campaign.id, ResultVersion.status == "published"
        )
    ):
        other.status = "superseded"
    version.status = "published"
    version.published_at = utcnow()
    version.publicity_ends_at = version.published_at + timedelta(days=campaign.publicity_days)
    db.session.flush()
    audit.record(
        "results.publish",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        after={"version": version.version, "ledger_head": version.ledger_head},
    )
    return version


def republish(campaign: Campaign, number: int) -> ResultVersion:
    """During publicity: publish a newer final version (after an upheld objection)."""
    if campaign.phase != "publicity":
        raise Conflict("只能在公示阶段发布新版本", code="not_in_publicity")
    return publish(campaign, get_version(campaign, number))


def published(campaign: Campaign) -> ResultVersion | None:
    return db.session.scalar(
        select(ResultVersion).where(
            ResultVersion.campaign_id == campaign.id, ResultVersion.status == "published"
        )
    )


def versions(campaign: Campaign) -> list[ResultVersion]:
    """The campaign's result versions, newest first."""
    return list(
        db.session.scalars(
            select(ResultVersion)
            .where(ResultVersion.campaign_id == campaign.id)
            .order_by(ResultVersion.version.desc())
        )
    )
