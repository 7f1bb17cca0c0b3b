"""Judging: criteria, judges and conflicts, sheets, queues, progress, organiser scores."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from awards.models import (
    PANELS,
    Criterion,
    JudgeAssignment,
    JudgeConflict,
    OrganizerScore,
    ScoreSheet,
)
from awards.panels import panel_conflict
from campaigns import categories as campaign_categories
from campaigns.models import Account, Campaign, Category, Unit
from core import audit
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.types import utcnow
from media import services as media_services
from nominations import services as nomination_services
from nominations.models import Nomination

# --- criteria, judges, conflicts --------------------------------------------------------------


def set_criteria(campaign: Campaign, items: list[dict[str, Any]]) -> list[Criterion]:
    """Replace the campaign's criteria; refused once any sheet was saved."""
    if db.session.scalar(
        select(func.count(ScoreSheet.id)).where(ScoreSheet.campaign_id == campaign.id)
    ):
        raise Conflict("已有评委打分，不能再修改评分标准", code="criteria_locked")
    codes = [item["code"] for item in items]
    if len(set(codes)) != len(codes):
        raise ValidationFailed("评分项代码不能重复", code="duplicate_criterion")
    for old in db.session.scalars(select(Criterion).where(Criterion.campaign_id == campaign.id)):
        db.session.delete(old)
    db.session.flush()
    made = [Criterion(campaign_id=campaign.id, position=i, **item) for i, item in enumerate(items)]
    db.session.add_all(made)
    db.session.flush()
    audit.record(
        "criteria.set",
        "campaign",
        campaign.slug,
        campaign_id=campaign.id,
        after={"criteria": items},
    )
    return made


def criteria(campaign: Campaign) -> list[Criterion]:
    return list(
        db.session.scalars(
            select(Criterion)
            .where(Criterion.campaign_id == campaign.id)
            .order_by(Criterion.position)
        )
    )


def _find_judge(username: str) -> Account | None:
    judge = db.session.scalar(select(Account).where(Account.username == username))
    return judge if judge is not None and judge.role == "judge" else None


def get_judge(username: str) -> Account:
    """The judge account called ``username`` (an admin acting for a judge names one)."""
    judge = _find_judge(username)
    if judge is None:
        raise NotFound("评委账号不存在", code="judge_not_found")
    return judge


def assign_judge(
    campaign: Campaign, username: str, categories: list[str], panel: str = "jury"
) -> list[JudgeAssignment]:
    """Replace a judge's categories in the campaign, on one panel (jury, peer or leader). A judge
    who has saved sheets keeps their panel (409 panel_locked): a sheet counts for the panel it
    was scored for."""
    judge = _find_judge(username)
    if judge is None:
        raise NotFound("评委账号不存在", code="judge_not_found", details={"username": username})
    if panel not in PANELS:
        raise ValidationFailed(
            "未知的评分组", code="unknown_panel", details={"fields": {"panel": list(PANELS)}}
        )
    other_panel = db.session.scalar(
        select(ScoreSheet.panel)
        .where(
            ScoreSheet.campaign_id == campaign.id,
            ScoreSheet.judge_id == judge.id,
            ScoreSheet.panel != panel,
        )
        .limit(1)
    )
    if other_panel is not None:
        raise Conflict(
            "该评委已按原评分组打分，不能改到其他评分组",
            code="panel_locked",
            details={"panel": other_panel},
        )
    wanted = [campaign_categories.get_category(campaign, code) for code in categories]
    existing = {
        a.category_id: a
        for a in db.session.scalars(
            select(JudgeAssignment).where(
                JudgeAssignment.account_id == judge.id, JudgeAssignment.campaign_id == campaign.id
            )
        )
    }
    for category in wanted:
        if category.id not in existing:
            db.session.add(
                JudgeAssignment(
                    campaign_id=campaign.id,
                    account_id=judge.id,
                    category_id=category.id,
                    panel=panel,
                )
            )
    for category_id, assignment in existing.items():
        if category_id not in {c.id for c in wanted}:
            db.session.delete(assignment)
        else:
            assignment.panel = panel
    db.session.flush()
    audit.record(
        "judge.assign",
        "account",
        judge.username,
        campaign_id=campaign.id,
        after={"categories": categories, "panel": panel},
    )
    return list(
        db.session.scalars(
            select(JudgeAssignment).where(
                JudgeAssignment.account_id == judge.id, JudgeAssignment.campaign_id == campaign.id
            )
        )
    )


def judge_campaigns(judge: Account) -> list[tuple[Campaign, list[str]]]:
    """The campaigns a judge is assigned to, newest first, each with the names of the categories
    they score there (in the order they were assigned). One query."""
    rows = db.session.execute(
        select(Campaign, Category.name)
        .join(JudgeAssignment, JudgeAssignment.campaign_id == Campaign.id)
        .join(Category, JudgeAssignment.category_id == Category.id)
        .where(JudgeAssignment.account_id == judge.id)
        .order_by(Campaign.id.desc(), JudgeAssignment.id)
    ).all()
    by_campaign: dict[int, tuple[Campaign, list[str]]] = {}
    for campaign, name in rows:
        by_campaign.setdefault(campaign.id, (campaign, []))[1].append(name)
    return list(by_campaign.values())


def approved_nominee(campaign: Campaign, number: str) -> Nomination:
    return nomination_services.public_nominee(campaign, number)


def declare_conflict(judge: Account, campaign: Campaign, number: str, reason: str) -> JudgeConflict:
    if campaign.phase != "judging":
        raise Conflict("只能在评审阶段声明回避", code="judging_closed")
    nomination = approved_nominee(campaign, number)
    conflict = db.session.scalar(
        select(JudgeConflict).where(
            JudgeConflict.account_id == judge.id, JudgeConflict.nomination_id == nomination.id
        )
    )
    if conflict is None:
        conflict = JudgeConflict(account_id=judge.id, nomination_id=nomination.id, reason=reason)
        db.session.add(conflict)
    # A conflict found after scoring withdraws the sheet from the average.
    sheet = db.session.scalar(
        select(ScoreSheet).where(
            ScoreSheet.judge_id == judge.id, ScoreSheet.nomination_id == nomination.id
        )
    )
    if sheet is not None:
        db.session.delete(sheet)
    db.session.flush()
    audit.record(
        "judge.conflict",
        "nomination",
        nomination.id,
        campaign_id=campaign.id,
        after={"judge": judge.username},
        reason=reason,
    )
    return conflict


def declared_conflicts(
    campaign: Campaign, judge_ids: Iterable[int] | None = None
) -> set[tuple[int, int]]:
    """(judge id, nomination id) of the conflicts declared in the campaign, in one query."""
    statement = (
        select(JudgeConflict.account_id, JudgeConflict.nomination_id)
        .join(Nomination, Nomination.id == JudgeConflict.nomination_id)
        .where(Nomination.campaign_id == campaign.id)
    )
    if judge_ids is not None:
        statement = statement.where(JudgeConflict.account_id.in_(list(judge_ids)))
    return {(judge_id, nomination_id) for judge_id, nomination_id in db.session.execute(statement)}


def _conflicted(judge: Account, nomination: Nomination, panel: str) -> bool:
    declared = db.session.scalar(
        select(JudgeConflict.id).where(
            JudgeConflict.account_id == judge.id, JudgeConflict.nomination_id == nomination.id
        )
    )
    return panel_conflict(
        panel,
        judge.unit_id,
        judge.display_name,
        nomination.unit_id,
        nomination.name,
        declared is not None,
    )


# --- queues and progress ----------------------------------------------------------------------


def _queues(
    judges: list[Account], campaign: Campaign
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, set[int]], dict[int, str]]:
    """Per judge id: the judge's queue, the ids of the categories the judge is assigned, and
    the judge's panel (jury, peer, leader).

    Four queries however many judges and nominees: assignments, nominees, sheets, conflicts.
    Each item carries the ``panel`` the judge scores it for (``panel_conflict`` decides who
    is left out)."""
    queues: dict[int, list[dict[str, Any]]] = {judge.id: [] for judge in judges}
    assigned: dict[int, set[int]] = defaultdict(set)
    panels: dict[int, str] = {}
    if not judges:
        return queues, assigned, panels
    judge_ids = list(queues)
    for judge_id, category_id, panel in db.session.execute(
        select(
            JudgeAssignment.account_id, JudgeAssignment.category_id, JudgeAssignment.panel
        ).where(
            JudgeAssignment.campaign_id == campaign.id, JudgeAssignment.account_id.in_(judge_ids)
        )
    ):
        assigned[judge_id].add(category_id)
        panels[judge_id] = panel or "jury"
    if not assigned:
        return queues, assigned, panels
    nominees = db.session.execute(
        select(Nomination, Category.code, Unit.name)
        .join(Category, Category.id == Nomination.category_id)
        .join(Unit, Unit.id == Nomination.unit_id)
        .where(
            Nomination.campaign_id == campaign.id,
            Nomination.status == "approved",
            Nomination.category_id.in_(set().union(*assigned.values())),
        )
        .order_by(Nomination.category_id, Nomination.number_seq)
    ).all()
    sheets = {
        (s.judge_id, s.nomination_id): s
        for s in db.session.scalars(
            select(ScoreSheet).where(
                ScoreSheet.campaign_id == campaign.id, ScoreSheet.judge_id.in_(judge_ids)
            )
        )
    }
    declared = declared_conflicts(campaign, judge_ids)
    for judge in judges:
        categories = assigned.get(judge.id, set())
        panel = panels.get(judge.id, "jury")
        for nomination, category_code, unit_name in nominees:
            if nomination.category_id not in categories or panel_conflict(
                panel,
                judge.unit_id,
                judge.display_name,
                nomination.unit_id,
                nomination.name,
                (judge.id, nomination.id) in declared,
            ):
                continue
            sheet = sheets.get((judge.id, nomination.id))
            queues[judge.id].append(
                {
                    "number": nomination.number,
                    "panel": panel,
                    "name": nomination.name,
                    "category": category_code,
                    "unit": unit_name,
                    "title": nomination.title,
                    "summary": nomination.summary,
                    "deeds": nomination.deeds,
                    "sheet_status": sheet.status if sheet else "none",
                    "scores": sheet.scores if sheet else {},
                    "total": float(sheet.total) if sheet else None,
                    "comment": sheet.comment if sheet else None,
                }
            )
    return queues, assigned, panels


def judge_queues(judges: list[Account], campaign: Campaign) -> dict[int, list[dict[str, Any]]]:
    """Per judge id: the nominees the judge scores, with their sheet state; never a vote count.

    Four queries however many judges and nominees: assignments, nominees, sheets, conflicts."""
    return _queues(judges, campaign)[0]


def judge_queue(judge: Account, campaign: Campaign) -> list[dict[str, Any]]:
    """The nominees this judge scores, with their sheet state; never a vote count."""
    return judge_queues([judge], campaign)[judge.id]


def sheet_queue(judge: Account, campaign: Campaign) -> list[dict[str, Any]]:
    """The judge's queue as the API gives it, plus the category's name and the nominee's photo
    and video (never a vote count)."""
    queue = judge_queue(judge, campaign)
    ids = dict(
        db.session.execute(
            select(Nomination.number, Nomination.id).where(
                Nomination.campaign_id == campaign.id,
                Nomination.number.in_([q["number"] for q in queue]),
            )
        ).all()
    )
    media = media_services.public_media(list(ids.values()))
    names = {c.code: c.name for c in campaign.categories}
    items = []
    for q in queue:
        found = media.get(ids.get(q["number"], 0), {})
        video = found.get("video")
        items.append(
            q
            | {
                "category_name": names.get(q["category"], q["category"]),
                "photo_url": found.get("photo_url"),
                "video": {"poster_url": video["poster_url"], "renditions": video["renditions"]}
                if video
                else None,
            }
        )
    return items


def _assigned_judges(campaign: Campaign) -> list[Account]:
    """The judges assigned to any of the campaign's categories, by username, with their unit."""
    return list(
        db.session.scalars(
            select(Account)
            .options(joinedload(Account.unit))
            .join(JudgeAssignment, JudgeAssignment.account_id == Account.id)
            .where(JudgeAssignment.campaign_id == campaign.id)
            .distinct()
            .order_by(Account.username)
        )
    )


def _tally(queue: list[dict[str, Any]]) -> dict[str, int]:
    """Nominees to score, sheets submitted and sheets in draft, in a judge's queue (or part)."""
    return {
        "to_score": len(queue),
        "submitted": sum(1 for q in queue if q["sheet_status"] == "submitted"),
        "drafts": sum(1 for q in queue if q["sheet_status"] == "draft"),
    }


def progress(campaign: Campaign) -> list[dict[str, Any]]:
    """Per judge: how many nominees to score, how many sheets submitted or in draft."""
    judges = _assigned_judges(campaign)
    queues, _, panels = _queues(judges, campaign)
    return [
        {
            "judge": judge.username,
            "display_name": judge.display_name,
            "panel": panels.get(judge.id, "jury"),
        }
        | _tally(queues[judge.id])
        for judge in judges
    ]


def _percent(part: int, whole: int) -> int:
    return round(part * 100 / whole) if whole else 0


def judging_overview(campaign: Campaign) -> dict[str, Any]:
    """Judges with their categories and sheets done / expected, per judge (the figures of
    ``progress``) and per category; the declared conflicts; the nominees nobody has scored yet;
    the criteria and whether they are still open to change.

    A dozen queries however many judges, categories and nominees the campaign has."""
    categories = list(campaign.categories)
    by_id = {c.id: c for c in categories}
    judges = _assigned_judges(campaign)
    queues, assigned, panels = _queues(judges, campaign)
    approved = db.session.execute(
        select(Nomination.id, Nomination.category_id, Nomination.number, Nomination.name)
        .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        .order_by(Nomination.category_id, Nomination.number_seq)
    ).all()
    scored = set(
        db.session.scalars(
            # A nominee the jury has not scored is listed, whatever the peers or leaders did.
            select(ScoreSheet.nomination_id).where(
                ScoreSheet.campaign_id == campaign.id,
                ScoreSheet.status == "submitted",
                ScoreSheet.panel == "jury",
            )
        )
    )
    approved_count: dict[int, int] = defaultdict(int)
    unscored: dict[int, list[str]] = defaultdict(list)
    for nomination_id, category_id, number, name in approved:
        approved_count[category_id] += 1
        if nomination_id not in scored:
            unscored[category_id].append(f"{number} {name}")
    conflicts = db.session.execute(
        select(JudgeConflict, Nomination.number, Nomination.name, Account)
        .join(Nomination, Nomination.id == JudgeConflict.nomination_id)
        .outerjoin(Account, Account.id == JudgeConflict.account_id)
        .where(Nomination.campaign_id == campaign.id)
        .order_by(JudgeConflict.created_at)
    ).all()
    declared = Counter(conflict.account_id for conflict, *_ in conflicts)
    by_category = {
        c.id: {
            "code": c.code,
            "name": c.name,
            "nominees": approved_count[c.id],
            "judges": 0,
            "expected": 0,
            "submitted": 0,
            "drafts": 0,
        }
        for c in categories
    }
    rows = []
    for judge in judges:
        mine = sorted(assigned[judge.id], key=lambda i: by_id[i].position)
        cells = []
        for category_id in mine:
            category = by_id[category_id]
            tally = _tally([q for q in queues[judge.id] if q["category"] == category.code])
            cell = {
                "code": category.code,
                "name": category.name,
                "expected": tally["to_score"],
                "submitted": tally["submitted"],
                "drafts": tally["drafts"],
            }
            cells.append(cell)
            total = by_category[category_id]
            total["judges"] += 1
            for key in ("expected", "submitted", "drafts"):
                total[key] += cell[key]
        tally = _tally(queues[judge.id])
        rows.append(
            {
                "username": judge.username,
                "display_name": judge.display_name or judge.username,
                "panel": panels.get(judge.id, "jury"),
                "unit": judge.unit.name if judge.unit else "",
                "active": judge.is_active,
                "categories": cells,
                "expected": tally["to_score"],
                "submitted": tally["submitted"],
                "drafts": tally["drafts"],
                "percent": _percent(tally["submitted"], tally["to_score"]),
                "declared": declared[judge.id],
                # Nominees the judge never sees: their own unit's (not for peers), declared
                # conflicts, themselves.
                "recused": sum(approved_count[i] for i in mine) - tally["to_score"],
            }
        )
    for category_id, total in by_category.items():
        total["percent"] = _percent(total["submitted"], total["expected"])
        total["unscored"] = unscored.get(category_id, [])
    locked = bool(
        db.session.scalar(
            select(func.count(ScoreSheet.id)).where(ScoreSheet.campaign_id == campaign.id)
        )
    )
    return {
        "judges": rows,
        "categories": list(by_category.values()),
        "conflicts": [
            {
                "judge": conflict.account_id,
                "judge_name": _account_label(account),
                "number": number,
                "name": name,
                "reason": conflict.reason,
                "created_at": conflict.created_at,
            }
            for conflict, number, name, account in conflicts
        ],
        "criteria": [
            {"code": c.code, "name": c.name, "max_points": c.max_points} for c in criteria(campaign)
        ],
        "criteria_locked": locked,
        "assignments": {
            judge.username: [
                by_id[i].code for i in sorted(assigned[judge.id], key=lambda i: by_id[i].position)
            ]
            for judge in judges
        },
    }


def _account_label(account: Account | None) -> str:
    if account is None:
        return ""
    return (
        f"{account.display_name} ({account.username})" if account.display_name else account.username
    )


def available_judges() -> list[Account]:
    """The active judge accounts, by username, with their unit: who may be assigned."""
    return list(
        db.session.scalars(
            select(Account)
            .options(joinedload(Account.unit))
            .where(Account.role == "judge", Account.is_active.is_(True))
            .order_by(Account.username)
        )
    )


def organizer_scores(campaign: Campaign) -> list[dict[str, Any]]:
    """The approved nominees by category and number, each with the organiser's points (or None)."""
    return [
        {
            "number": number,
            "name": name,
            "category": category,
            "unit": unit,
            "points": float(points) if points is not None else None,
        }
        for number, name, category, unit, points in db.session.execute(
            select(
                Nomination.number, Nomination.name, Category.name, Unit.name, OrganizerScore.points
            )
            .join(Category, Category.id == Nomination.category_id)
            .join(Unit, Unit.id == Nomination.unit_id)
            .outerjoin(
                OrganizerScore,
                (OrganizerScore.nomination_id == Nomination.id)
                & (OrganizerScore.campaign_id == campaign.id),
            )
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
            .order_by(Nomination.category_id, Nomination.number_seq)
        )
    ]


# --- score sheets and the organiser's score ---------------------------------------------------


def save_sheet(
    judge: Account,
    campaign: Campaign,
    number: str,
    scores: dict[str, Any],
    comment: str | None,
    submit: bool,
) -> ScoreSheet:
    if campaign.phase != "judging":
        raise Conflict("评审已结束或尚未开始，评分已锁定", code="judging_closed")
    nomination = approved_nominee(campaign, number)
    panel = db.session.scalar(
        select(JudgeAssignment.panel).where(
            JudgeAssignment.account_id == judge.id,
            JudgeAssignment.category_id == nomination.category_id,
        )
    )
    if panel is None:
        raise Forbidden("您未被分配评审该奖项", code="not_assigned")
    if _conflicted(judge, nomination, panel):
        raise Forbidden(
            "您与该候选人存在利益关系（同单位、本人或已声明回避），不能打分",
            code="conflict_of_interest",
        )
    items = {c.code: c for c in criteria(campaign)}
    unknown = set(scores) - set(items)
    errors: dict[str, list[str]] = {code: ["未知的评分项"] for code in unknown}
    for code, value in scores.items():
        points = Decimal(str(value))
        if code in items and not (points.is_finite() and 0 <= points <= items[code].max_points):
            errors[code] = [f"分值应在 0 到 {items[code].max_points} 之间"]
    sheet = db.session.scalar(
        select(ScoreSheet).where(
            ScoreSheet.judge_id == judge.id, ScoreSheet.nomination_id == nomination.id
        )
    )
    # A submitted sheet counts in the average: a revision of it must stay complete.
    if submit or (sheet is not None and sheet.status == "submitted"):
        for code in items:
            if code not in scores:
                errors[code] = ["提交前请为每一项打分"]
    if errors:
        raise ValidationFailed(
            "评分有误，请检查", code="invalid_scores", details={"fields": errors}
        )
    before = {"scores": sheet.scores, "status": sheet.status} if sheet else None
    if sheet is None:
        sheet = ScoreSheet(
            campaign_id=campaign.id, judge_id=judge.id, nomination_id=nomination.id, panel=panel
        )
        db.session.add(sheet)
    sheet.panel = panel
    sheet.scores = {code: float(Decimal(str(v))) for code, v in scores.items()}
    sheet.total = sum((Decimal(str(v)) for v in scores.values()), Decimal(0))
    sheet.comment = comment
    if submit:
        sheet.status = "submitted"
        sheet.submitted_at = utcnow()
    db.session.flush()
    audit.record(
        "score.save",
        "score_sheet",
        sheet.id,
        campaign_id=campaign.id,
        before=before,
        after={"scores": sheet.scores, "status": sheet.status, "nominee": number, "panel": panel},
    )
    return sheet


def set_organizer_score(
    campaign: Campaign, number: str, points: float, reason: str | None
) -> OrganizerScore:
    if campaign.phase not in ("judging",):
        raise Conflict("只能在评审阶段录入主办方评分", code="judging_closed")
    nomination = approved_nominee(campaign, number)
    score = db.session.scalar(
        select(OrganizerScore).where(OrganizerScore.nomination_id == nomination.id)
    )
    if score is None:
        score = OrganizerScore(campaign_id=campaign.id, nomination_id=nomination.id, points=points)
        db.session.add(score)
    score.points = points
    score.reason = reason
    db.session.flush()
    audit.record(
        "organizer.score",
        "nomination",
        nomination.id,
        campaign_id=campaign.id,
        after={"points": points},
        reason=reason,
    )
    return score
