"""Judging, combined results, finalisation, publicity and objections."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from awards import scoring
from awards.models import (
    Criterion,
    JudgeAssignment,
    JudgeConflict,
    Objection,
    OrganizerScore,
    ResultEntry,
    ResultVersion,
    ScoreSheet,
)
from campaigns import services as campaign_services
from campaigns.models import Account, Campaign, Category
from core import audit
from core.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.signals import phase_changing
from core.types import utcnow
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


def assign_judge(campaign: Campaign, username: str, categories: list[str]) -> list[JudgeAssignment]:
    judge = db.session.scalar(select(Account).where(Account.username == username))
    if judge is None or judge.role != "judge":
        raise NotFound("评委账号不存在", code="judge_not_found", details={"username": username})
    wanted = [campaign_services.get_category(campaign, code) for code in categories]
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
                    campaign_id=campaign.id, account_id=judge.id, category_id=category.id
                )
            )
    for category_id, assignment in existing.items():
        if category_id not in {c.id for c in wanted}:
            db.session.delete(assignment)
    db.session.flush()
    audit.record(
        "judge.assign",
        "account",
        judge.username,
        campaign_id=campaign.id,
        after={"categories": categories},
    )
    return list(
        db.session.scalars(
            select(JudgeAssignment).where(
                JudgeAssignment.account_id == judge.id, JudgeAssignment.campaign_id == campaign.id
            )
        )
    )


def _approved(campaign: Campaign, number: str) -> Nomination:
    from nominations import services as nomination_services

    return nomination_services.public_nominee(campaign, number)


def declare_conflict(judge: Account, campaign: Campaign, number: str, reason: str) -> JudgeConflict:
    if campaign.phase != "judging":
        raise Conflict("只能在评审阶段声明回避", code="judging_closed")
    nomination = _approved(campaign, number)
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


def _conflicted(judge: Account, nomination: Nomination) -> bool:
    if judge.unit_id is not None and judge.unit_id == nomination.unit_id:
        return True
    return (
        db.session.scalar(
            select(JudgeConflict.id).where(
                JudgeConflict.account_id == judge.id, JudgeConflict.nomination_id == nomination.id
            )
        )
        is not None
    )


# --- score sheets -----------------------------------------------------------------------------


def judge_queue(judge: Account, campaign: Campaign) -> list[dict[str, Any]]:
    """The nominees this judge scores, with their sheet state; never a vote count."""
    category_ids = set(
        db.session.scalars(
            select(JudgeAssignment.category_id).where(
                JudgeAssignment.account_id == judge.id, JudgeAssignment.campaign_id == campaign.id
            )
        )
    )
    if not category_ids:
        return []
    sheets = {
        s.nomination_id: s
        for s in db.session.scalars(
            select(ScoreSheet).where(
                ScoreSheet.judge_id == judge.id, ScoreSheet.campaign_id == campaign.id
            )
        )
    }
    queue = []
    for nomination in db.session.scalars(
        select(Nomination)
        .where(
            Nomination.campaign_id == campaign.id,
            Nomination.status == "approved",
            Nomination.category_id.in_(category_ids),
        )
        .order_by(Nomination.category_id, Nomination.number_seq)
    ):
        if _conflicted(judge, nomination):
            continue
        sheet = sheets.get(nomination.id)
        queue.append(
            {
                "number": nomination.number,
                "name": nomination.name,
                "category": nomination.category.code,
                "unit": nomination.unit.name,
                "title": nomination.title,
                "summary": nomination.summary,
                "deeds": nomination.deeds,
                "sheet_status": sheet.status if sheet else "none",
                "scores": sheet.scores if sheet else {},
                "total": float(sheet.total) if sheet else None,
                "comment": sheet.comment if sheet else None,
            }
        )
    return queue


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
    nomination = _approved(campaign, number)
    assigned = db.session.scalar(
        select(JudgeAssignment.id).where(
            JudgeAssignment.account_id == judge.id,
            JudgeAssignment.category_id == nomination.category_id,
        )
    )
    if assigned is None:
        raise Forbidden("您未被分配评审该奖项", code="not_assigned")
    if _conflicted(judge, nomination):
        raise Forbidden(
            "您与该候选人存在利益关系（同单位或已声明回避），不能打分", code="conflict_of_interest"
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
        sheet = ScoreSheet(campaign_id=campaign.id, judge_id=judge.id, nomination_id=nomination.id)
        db.session.add(sheet)
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
        after={"scores": sheet.scores, "status": sheet.status, "nominee": number},
    )
    return sheet


def progress(campaign: Campaign) -> list[dict[str, Any]]:
    """Per judge: how many nominees to score, how many sheets submitted or in draft."""
    rows = []
    judges = db.session.scalars(
        select(Account)
        .join(JudgeAssignment, JudgeAssignment.account_id == Account.id)
        .where(JudgeAssignment.campaign_id == campaign.id)
        .distinct()
        .order_by(Account.username)
    ).all()
    for judge in judges:
        queue = judge_queue(judge, campaign)
        rows.append(
            {
                "judge": judge.username,
                "display_name": judge.display_name,
                "to_score": len(queue),
                "submitted": sum(1 for q in queue if q["sheet_status"] == "submitted"),
                "drafts": sum(1 for q in queue if q["sheet_status"] == "draft"),
            }
        )
    return rows


def set_organizer_score(
    campaign: Campaign, number: str, points: float, reason: str | None
) -> OrganizerScore:
    if campaign.phase not in ("judging",):
        raise Conflict("只能在评审阶段录入主办方评分", code="judging_closed")
    nomination = _approved(campaign, number)
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


# --- results ----------------------------------------------------------------------------------


def _valid_votes(campaign: Campaign) -> dict[str, int]:
    from voting.models import Vote

    return dict(
        db.session.execute(
            select(Vote.nominee_number, func.count(Vote.id))
            .where(Vote.campaign_id == campaign.id, Vote.status == "valid")
            .group_by(Vote.nominee_number)
        ).all()
    )


def _candidates(
    campaign: Campaign, category: Category, adjustments: dict[int, str]
) -> list[scoring.Candidate]:
    votes = _valid_votes(campaign)
    sheets: dict[int, list[Decimal]] = defaultdict(list)
    for sheet in db.session.scalars(
        select(ScoreSheet).where(
            ScoreSheet.campaign_id == campaign.id, ScoreSheet.status == "submitted"
        )
    ):
        if not _conflicted(sheet.judge, sheet.nomination):
            sheets[sheet.nomination_id].append(Decimal(str(sheet.total)))
    organizer = {
        s.nomination_id: Decimal(str(s.points))
        for s in db.session.scalars(
            select(OrganizerScore).where(OrganizerScore.campaign_id == campaign.id)
        )
    }
    return [
        scoring.Candidate(
            nomination_id=n.id,
            number=n.number or "",
            number_seq=n.number_seq or 0,
            valid_votes=votes.get(n.number or "", 0),
            sheet_totals=tuple(sheets.get(n.id, [])),
            organizer=organizer.get(n.id, Decimal(0)),
            adjustment=adjustments.get(n.id),
        )
        for n in db.session.scalars(
            select(Nomination).where(
                Nomination.campaign_id == campaign.id,
                Nomination.category_id == category.id,
                Nomination.status == "approved",
            )
        )
    ]


def _criteria_max(campaign: Campaign) -> int:
    return sum(c.max_points for c in criteria(campaign))


def compute(
    campaign: Campaign,
    actor: Account,
    reason: str | None = None,
    adjustments: dict[int, tuple[str, str]] | None = None,
) -> ResultVersion:
    """A new draft version from the ledger's valid votes, submitted sheets and organiser scores."""
    if campaign.phase not in ("judging", "publicity"):
        raise Conflict("只能在评审或公示阶段计算结果", code="results_closed")
    from voting.models import LedgerHead

    adjustments = adjustments or {}
    _require_drained(campaign)
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
    _fill_entries(campaign, version, adjustments)
    audit.record(
        "results.compute",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        after={"version": number},
        reason=reason,
    )
    return version


def _fill_entries(
    campaign: Campaign, version: ResultVersion, adjustments: dict[int, tuple[str, str]]
) -> None:
    for entry in list(version.entries):
        db.session.delete(entry)
    db.session.flush()
    nominations = {
        n.id: n
        for n in db.session.scalars(select(Nomination).where(Nomination.campaign_id == campaign.id))
    }
    for category in campaign.categories:
        ranked = scoring.score_category(
            _candidates(campaign, category, {k: v[0] for k, v in adjustments.items()}),
            weights=version.weights,
            criteria_max=_criteria_max(campaign),
            award_count=category.award_count,
        )
        for s in ranked:
            n = nominations[s.candidate.nomination_id]
            adjustment = adjustments.get(n.id)
            db.session.add(
                ResultEntry(
                    version=version,
                    nomination_id=n.id,
                    category_code=category.code,
                    category_position=category.position,
                    number=s.candidate.number,
                    name=n.name,
                    unit=n.unit.name,
                    valid_votes=s.candidate.valid_votes,
                    public_score=s.public,
                    jury_score=s.jury,
                    jury_count=len(s.candidate.sheet_totals),
                    organizer_score=s.organizer,
                    combined=s.combined,
                    rank=s.rank,
                    winner=s.winner,
                    adjustment=adjustment[0] if adjustment else None,
                    adjustment_reason=adjustment[1] if adjustment else None,
                )
            )
    db.session.flush()
    db.session.expire(version, ["entries"])


def _require_drained(campaign: Campaign) -> None:
    """Results come from the votes table; every acknowledged vote must have reached it."""
    from voting.services import ledger_health

    if ledger_health(campaign)["stream_length"]:
        raise Conflict("投票记录尚未全部入库，请稍后再计算", code="ledger_not_drained")


def get_version(campaign: Campaign, number: int) -> ResultVersion:
    version = db.session.scalar(
        select(ResultVersion).where(
            ResultVersion.campaign_id == campaign.id, ResultVersion.version == number
        )
    )
    if version is None:
        raise NotFound("结果版本不存在", code="result_not_found")
    return version


def adjust(
    campaign: Campaign, version: ResultVersion, number: str, action: str | None, reason: str
) -> ResultVersion:
    """Exclude or promote a nominee (or clear it) with a written reason; the draft is rescored."""
    if version.status != "draft":
        raise Conflict("只有草稿版本可以调整", code="version_locked")
    if not reason.strip():
        raise ValidationFailed("调整必须填写理由", code="reason_required")
    entry = next((e for e in version.entries if e.number == number.strip().upper()), None)
    if entry is None:
        raise NotFound("候选人不在该结果中", code="nominee_not_found")
    current = {
        e.nomination_id: (e.adjustment, e.adjustment_reason or "")
        for e in version.entries
        if e.adjustment
    }
    if action:
        current[entry.nomination_id] = (action, reason)
    else:
        current.pop(entry.nomination_id, None)
    _fill_entries(campaign, version, current)  # type: ignore[arg-type]
    audit.record(
        f"results.{action or 'clear'}",
        "result_version",
        version.id,
        campaign_id=campaign.id,
        after={"nominee": number, "action": action},
        reason=reason,
    )
    return version


def sensitivity(campaign: Campaign, version: ResultVersion) -> list[dict[str, Any]]:
    adjustments = {e.nomination_id: e.adjustment for e in version.entries if e.adjustment}
    report = []
    for category in campaign.categories:
        report.append(
            {
                "category": category.code,
                "scenarios": scoring.sensitivity(
                    _candidates(campaign, category, adjustments),  # type: ignore[arg-type]
                    weights=version.weights,
                    criteria_max=_criteria_max(campaign),
                    award_count=category.award_count,
                ),
            }
        )
    return report


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


def published(campaign: Campaign) -> ResultVersion | None:
    return db.session.scalar(
        select(ResultVersion).where(
            ResultVersion.campaign_id == campaign.id, ResultVersion.status == "published"
        )
    )


@phase_changing.connect
def _guard_phases(campaign: Campaign, *, phase: str, **_: Any) -> None:
    """Publicity needs a final result and publishes it; closing waits for the window and the
    objections."""
    if phase == "publicity":
        final = db.session.scalar(
            select(ResultVersion).where(
                ResultVersion.campaign_id == campaign.id, ResultVersion.status == "final"
            )
        )
        if final is None and published(campaign) is None:
            raise Conflict("请先定稿评选结果，再进入公示", code="no_final_result")
        if final is not None:
            publish(campaign, final)
    if phase == "closed":
        current = published(campaign)
        if current is None or campaign.phase != "publicity":
            raise Conflict("评选结果须经公示后才能结束活动", code="not_published")
        newer = db.session.scalar(
            select(func.count(ResultVersion.id)).where(
                ResultVersion.campaign_id == campaign.id,
                ResultVersion.version > current.version,
                ResultVersion.status.in_(("draft", "final")),
                # a result reopened after publication (an upheld objection), not old drafts
                ResultVersion.created_at > current.published_at,
            )
        )
        if newer:
            raise Conflict("有重新核算的结果尚未公示", code="unpublished_result")
        if current.publicity_ends_at and utcnow() < current.publicity_ends_at:
            raise Conflict(
                "公示期尚未结束",
                code="publicity_running",
                details={"ends_at": current.publicity_ends_at.isoformat()},
            )
        if db.session.scalar(
            select(func.count(Objection.id)).where(
                Objection.campaign_id == campaign.id, Objection.status == "open"
            )
        ):
            raise Conflict("还有未答复的异议", code="objections_open")


# --- objections -------------------------------------------------------------------------------


def file_objection(campaign: Campaign, fields: dict[str, Any], ip: str) -> Objection:
    current = published(campaign)
    now = utcnow()
    if (
        campaign.phase != "publicity"
        or current is None
        or current.publicity_ends_at is None
        or now >= current.publicity_ends_at
    ):
        raise Conflict("当前不在公示期内，不能提出异议", code="publicity_closed")
    number = (fields.get("nominee") or "").strip().upper() or None
    if number and not any(e.number == number for e in current.entries):
        raise NotFound("候选人不存在", code="nominee_not_found")
    objection = Objection(
        campaign_id=campaign.id,
        version_id=current.id,
        nominee_number=number,
        contact_name=fields["contact_name"],
        contact_phone=fields["contact_phone"],
        text=fields["text"],
        attachment_key=_store_attachment(fields.get("attachment")),
        ip=ip,
    )
    db.session.add(objection)
    db.session.flush()
    audit.record(
        "objection.file",
        "objection",
        objection.id,
        campaign_id=campaign.id,
        after={"nominee": number},
        actor=None,
    )
    return objection


_ATTACHMENT_KINDS = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"%PDF-", "pdf"))
ATTACHMENT_MIME = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}


def _store_attachment(data_url: str | None) -> str | None:
    """A data: URL holding a JPEG, PNG or PDF (checked by content) of at most 1 MB."""
    if not data_url:
        return None
    header, _, payload = data_url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise ValidationFailed("附件格式不正确", code="bad_attachment")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValidationFailed("附件格式不正确", code="bad_attachment") from exc
    if len(raw) > current_app.config["OBJECTION_ATTACHMENT_MAX_BYTES"]:
        raise AppError("附件不能超过 1 MB", code="attachment_too_large", status=413)
    kind = next((ext for magic, ext in _ATTACHMENT_KINDS if raw.startswith(magic)), None)
    if kind is None:
        raise ValidationFailed("附件只能是 JPG、PNG 图片或 PDF 文件", code="bad_attachment")
    key = f"{secrets.token_hex(16)}.{kind}"
    folder = Path(current_app.config["MEDIA_ROOT"]) / "objections"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_bytes(raw)
    return key


def attachment_path(objection: Objection) -> tuple[Path, str]:
    if not objection.attachment_key:
        raise NotFound("该异议没有附件", code="attachment_not_found")
    path = Path(current_app.config["MEDIA_ROOT"]) / "objections" / objection.attachment_key
    return path, ATTACHMENT_MIME[objection.attachment_key.rsplit(".", 1)[1]]


def answer_objection(
    campaign: Campaign, objection_id: int, decision: str, answer: str, actor: Account
) -> tuple[Objection, ResultVersion | None]:
    objection = db.session.get(Objection, objection_id)
    if objection is None or objection.campaign_id != campaign.id:
        raise NotFound("异议不存在", code="objection_not_found")
    if objection.status != "open":
        raise Conflict("该异议已答复", code="objection_answered")
    if not answer.strip():
        raise ValidationFailed("请填写答复内容", code="answer_required")
    objection.status = decision
    objection.answer = answer
    objection.answered_by = actor.username
    objection.answered_at = utcnow()
    reopened = None
    if decision == "upheld":
        # The result reopens: a new draft from the current data, for the office to adjust,
        # finalise and publish again; the published list stands until then.
        reopened = compute(campaign, actor, reason=f"异议 #{objection.id} 成立：{answer}")
    db.session.flush()
    audit.record(
        f"objection.{decision}",
        "objection",
        objection.id,
        campaign_id=campaign.id,
        after={"answer": answer},
        reason=answer,
    )
    return objection, reopened


def public_objections(campaign: Campaign) -> list[Objection]:
    return list(
        db.session.scalars(
            select(Objection)
            .where(Objection.campaign_id == campaign.id, Objection.status != "open")
            .order_by(Objection.id)
        )
    )


def audit_trail(campaign: Campaign, page: int, per_page: int) -> tuple[list[Any], int]:
    from core.audit import AuditLog

    query = select(AuditLog).where(AuditLog.campaign_id == campaign.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(AuditLog.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total
