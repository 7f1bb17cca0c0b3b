"""Publicity (公示): the phase rules, objections and their answers, the audit trail."""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from awards.models import Objection, ResultVersion
from awards.results import compute, publish, published, winners_of
from campaigns.models import Account, Campaign
from core import audit
from core.audit import AuditLog
from core.errors import AppError, Conflict, NotFound, RateLimited, ValidationFailed
from core.extensions import db
from core.types import utcnow
from media import quotas
from nominations.models import Nomination

# --- the phase rules --------------------------------------------------------------------------


def guard_phases(campaign: Campaign, *, phase: str, **_: Any) -> None:
    """Publicity needs a final result and publishes it; closing waits for the window and the
    objections. A ``phase_changing`` receiver, connected by ``awards.init_app``."""
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
        if reopened_versions(campaign, current):
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


def reopened_versions(campaign: Campaign, current: ResultVersion | None) -> list[ResultVersion]:
    """The draft or final versions computed after ``current`` was published (an upheld objection
    reopened the result), not older drafts: they must be published before the campaign closes."""
    if current is None or current.published_at is None:
        return []
    return list(
        db.session.scalars(
            select(ResultVersion)
            .where(
                ResultVersion.campaign_id == campaign.id,
                ResultVersion.version > current.version,
                ResultVersion.status.in_(("draft", "final")),
                ResultVersion.created_at > current.published_at,
            )
            .order_by(ResultVersion.version)
        )
    )


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
    _check_person_limit(current, fields["contact_phone"])
    objection = Objection(
        campaign_id=campaign.id,
        version_id=current.id,
        nominee_number=number,
        contact_name=fields["contact_name"],
        contact_phone=fields["contact_phone"],
        text=fields["text"],
        attachment_key=_store_attachment(campaign, fields.get("attachment"), ip),
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


def phone_key(phone: str) -> str:
    """A contact phone as one person: digits only, without a leading +86 / 0086 country code
    (``138 0000 0000``, ``138-0000-0000`` and ``+86 13800000000`` are one person)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix) :]
    return digits


def _check_person_limit(current: ResultVersion, phone: str) -> None:
    """At most OBJECTION_PER_PERSON objections per contact phone against one published version
    (its publicity window): 429 ``objection_person_limit``. Counted from the stored objections,
    so it holds across addresses, restarts and Redis flushes; a new publication (a new window)
    starts afresh. The per-address limits are the route's rate limit and the attachment quota."""
    limit = int(current_app.config["OBJECTION_PER_PERSON"] or 0)
    if limit <= 0:
        return
    wanted = phone_key(phone)
    filed = db.session.scalars(
        select(Objection.contact_phone).where(
            Objection.campaign_id == current.campaign_id, Objection.version_id == current.id
        )
    )
    if sum(1 for stored in filed if phone_key(stored) == wanted) >= limit:
        raise RateLimited(
            f"同一联系电话在本次公示期内已提出 {limit} 条异议，已达上限",
            code="objection_person_limit",
            details={"limit": limit},
        )


_ATTACHMENT_KINDS = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"%PDF-", "pdf"))
ATTACHMENT_MIME = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}


def _store_attachment(campaign: Campaign, data_url: str | None, ip: str) -> str | None:
    """A data: URL holding a JPEG, PNG or PDF (checked by content) of at most 1 MB; at most
    OBJECTION_ATTACHMENTS_PER_IP_PER_DAY of them from one address per local day."""
    if not data_url:
        return None
    limit = int(current_app.config["OBJECTION_ATTACHMENTS_PER_IP_PER_DAY"] or 0)
    quotas.spend(
        f"objection-attachments:{campaign.id}",
        ip,
        limit=limit,
        timezone=campaign.timezone,
        code="objection_quota_exhausted",
        message=f"同一网络今天已提交 {limit} 份带附件的异议，已达上限，请明天再试",
    )
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


def get_objection(campaign: Campaign, objection_id: int) -> Objection:
    objection = db.session.get(Objection, objection_id)
    if objection is None or objection.campaign_id != campaign.id:
        raise NotFound("异议不存在", code="objection_not_found")
    return objection


def answer_objection(
    campaign: Campaign, objection_id: int, decision: str, answer: str, actor: Account
) -> tuple[Objection, ResultVersion | None]:
    objection = get_objection(campaign, objection_id)
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


def objections(campaign: Campaign) -> list[Objection]:
    """Every objection of the campaign, with its contact (for the office)."""
    return list(
        db.session.scalars(
            select(Objection).where(Objection.campaign_id == campaign.id).order_by(Objection.id)
        )
    )


def objection_rows(campaign: Campaign) -> list[dict[str, Any]]:
    """Every objection of the campaign for the office, open ones first then newest first, with
    the nominee's name, the number of the version it was filed against and its attachment's kind
    (jpg, png, pdf or None). One query."""
    rows = []
    for objection, nominee_name, version in db.session.execute(
        select(Objection, Nomination.name, ResultVersion.version)
        .outerjoin(
            Nomination,
            (Nomination.campaign_id == Objection.campaign_id)
            & (Nomination.number == Objection.nominee_number),
        )
        .outerjoin(ResultVersion, ResultVersion.id == Objection.version_id)
        .where(Objection.campaign_id == campaign.id)
        .order_by(Objection.status != "open", Objection.id.desc())
    ):
        key = objection.attachment_key
        rows.append(
            {
                "id": objection.id,
                "nominee": objection.nominee_number,
                "nominee_name": nominee_name or "",
                "contact_name": objection.contact_name,
                "contact_phone": objection.contact_phone,
                "text": objection.text,
                "status": objection.status,
                "answer": objection.answer,
                "answered_by": objection.answered_by,
                "answered_at": objection.answered_at,
                "created_at": objection.created_at,
                "ip": objection.ip,
                "attachment": key.rsplit(".", 1)[-1] if key else None,
                "version": version,
            }
        )
    return rows


def publicity_window(campaign: Campaign, current: ResultVersion) -> dict[str, Any]:
    """The published version's window: when it opened and ends, whether objections are still
    taken and for how long, the ledger head it was published with, and its winners."""
    ends = current.publicity_ends_at
    remaining = (ends - utcnow()).total_seconds() if ends else 0
    return {
        "version": current.version,
        "published_at": current.published_at,
        "ends_at": ends,
        "open": campaign.phase == "publicity" and remaining > 0,
        "days_left": max(0, int(remaining // 86400)),
        "hours_left": max(0, int(remaining % 86400 // 3600)),
        "ledger_head": current.ledger_head,
        "ledger_votes": current.ledger_votes,
        "winners": [
            {
                "category": e.category_code,
                "number": e.number,
                "name": e.name,
                "unit": e.unit,
                "tier_name": e.tier_name,
            }
            for e in winners_of(campaign, current)
        ],
    }


def public_objections(campaign: Campaign) -> list[Objection]:
    return list(
        db.session.scalars(
            select(Objection)
            .where(Objection.campaign_id == campaign.id, Objection.status != "open")
            .order_by(Objection.id)
        )
    )


# --- the audit trail --------------------------------------------------------------------------


def audit_trail(campaign: Campaign, page: int, per_page: int) -> tuple[list[Any], int]:
    query = select(AuditLog).where(AuditLog.campaign_id == campaign.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(AuditLog.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total
