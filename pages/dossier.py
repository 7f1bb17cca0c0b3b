"""The printable 推荐审批表: one nomination's basic information (with the campaign's own fields
and the photo), its deeds and every level's opinion with a place for signature and seal, on
A4 paper; and the bound set a bureau prints for what it passed up at its level.

Who may read a sheet is the API's own rule (nominations.services.get_for): admins, the unit's
clerk, reviewers of the bureaus above the unit. Anyone else gets the same 404 as a missing id."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from campaigns import services as campaign_services
from campaigns.models import Account, Campaign, Category, Unit
from core.errors import AppError, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from media import gallery as media_gallery
from media import services as media_services
from nominations import form_fields, level_forms, levels
from nominations import services as nomination_services
from nominations.labels import GENDER_LABELS, LEVEL_DECISION_LABELS, level_label
from nominations.models import LevelDecision, Nomination
from pages.common import error_page, local_time, render_page, staff_page

bp = Blueprint("dossier", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

DATE_FORMAT = "%Y年%m月%d日"
REVIEW_LABELS = {
    "recommend": "同意推荐",
    "approve": "同意",
    "return": "退回修改",
    "reject": "不予推荐",
}


def _value(value: Any) -> str:
    """An extra field's value as the paper shows it (a date in Chinese, 1980年05月01日)."""
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        try:
            return date.fromisoformat(value).strftime(DATE_FORMAT)
        except ValueError:
            return value
    return str(value)


def _photo(nomination: Nomination) -> str | None:
    """The gallery's cover (media's one definition of it), with a signed preview link."""
    cover = media_gallery.cover_of(nomination.id)
    if cover is None:
        return None
    shown = media_services.describe(cover, token=media_services.preview_token(cover))
    return str(shown.get("photo_url") or "") or None


def _basic(nomination: Nomination) -> list[tuple[str, str]]:
    years = nomination.years_of_service
    rows = [
        ("姓名", nomination.name),
        ("性别", GENDER_LABELS.get(nomination.gender, nomination.gender)),
        ("推荐单位", nomination.unit.name),
        ("奖项", nomination.category.name),
        ("职称", nomination.title),
        ("职务", nomination.position or ""),
        ("科室 / 部门", nomination.department),
        ("从业年限", f"{years} 年" if years is not None else ""),
    ]
    shown = form_fields.shown(nomination.campaign_id, nomination.extra, public_only=False)
    return rows + [(item["label"], _value(item["value"])) for item in shown]


def _box(title: str, signer: str, opinion: str, at: str, stamp: str = "") -> dict[str, str]:
    return {"title": title, "signer": signer, "opinion": opinion, "date": at, "stamp": stamp}


def _stamp_text(step: dict[str, Any] | None, day: Any) -> str:
    """What a box says of its level's stamped form (盖章推荐表, nominations.level_forms)."""
    if not step:
        return ""
    current = step.get("current")
    if current:
        pages = f"，共 {current['pages']} 页" if current.get("pages") else ""
        return f"盖章推荐表已上传（{day(current['uploaded_at'])}{pages}）"
    return "盖章推荐表：须上传，尚未上传" if step.get("required") else ""


def _opinions(nomination: Nomination) -> list[dict[str, str]]:
    """The unit's opinion, each level's latest decision (blank where none yet) and the
    committee's, each with its date; the page leaves room to sign and seal every one."""
    campaign = nomination.campaign
    day = lambda moment: local_time(moment, campaign, DATE_FORMAT)  # noqa: E731
    chain = levels.chain(campaign)
    stamps = (
        {step["unit_level"]: step for step in levels.form_overview(None, nomination)["levels"]}
        if chain
        else {}
    )
    boxes = [
        _box(
            "推荐单位意见",
            nomination.unit.name,
            nomination.unit_opinion,
            day(nomination.submitted_at),
            _stamp_text(stamps.get(level_forms.UNIT), day),
        )
    ]
    trail = levels.trail(nomination)
    for level in chain:
        decided = [step for step in trail if step["unit_level"] == level.unit_level]
        last = decided[-1] if decided else None
        boxes.append(
            _box(
                f"{level_label(level.unit_level)}主管部门意见",
                (last or {}).get("unit") or "",
                _decision_text(last["decision"], last["comment"]) if last else "",
                day(last["at"]) if last else "",
                _stamp_text(stamps.get(level.unit_level), day),
            )
        )
    if not chain:
        steps = [s for s in nomination.reviews if s.action == "recommend"]
        step = steps[-1] if steps else None
        boxes.append(
            _box(
                "主管部门意见",
                step.actor_unit or "" if step else "",
                _decision_text("recommend", step.comment) if step else "",
                day(step.at) if step else "",
            )
        )
    final = [
        s
        for s in nomination.reviews
        if s.action in ("approve", "reject") and s.actor_role == "admin"
    ]
    step = final[-1] if final else None
    boxes.append(
        _box(
            "评选委员会意见",
            "",
            _decision_text(step.action, step.comment) if step else "",
            day(step.at) if step else "",
        )
    )
    return boxes


def _decision_text(decision: str, comment: str | None) -> str:
    label = LEVEL_DECISION_LABELS.get(decision) or REVIEW_LABELS.get(decision, decision)
    return f"{label}。{comment}" if comment else f"{label}。"


def sheet(nomination: Nomination) -> dict[str, Any]:
    """Everything one 推荐审批表 shows."""
    return {
        "id": nomination.id,
        "name": nomination.name,
        "number": nomination.number,
        "category": nomination.category.name,
        "unit": nomination.unit.name,
        "basic": _basic(nomination),
        "photo_url": _photo(nomination),
        "summary": nomination.summary,
        "deeds": nomination.deeds,
        "opinions": _opinions(nomination),
    }


@bp.route("/campaigns/<slug>/nominations/<id:nomination_id>/dossier")
@staff_page("unit", "reviewer", "admin", login="console")
def dossier(slug: str, nomination_id: int) -> Any:
    account: Account = g.account
    nomination = nomination_services.get_for(account, nomination_id)
    if nomination.campaign.slug != slug:
        raise NotFound("推荐材料不存在", code="nomination_not_found")
    campaign = nomination.campaign
    return render_page(
        "pages/console/dossier.html",
        campaign=campaign,
        sheets=[sheet(nomination)],
        heading=f"{nomination.name} · 推荐审批表",
        bound=None,
    )


def _bureau(account: Account, campaign: Campaign, level: str, code: str) -> Unit:
    if level not in {lv.unit_level for lv in levels.chain(campaign)}:
        raise NotFound("该活动没有这一推荐层级", code="level_not_found", details={"level": level})
    unit = campaign_services.get_unit(code)
    if unit.level != level:
        raise ValidationFailed("该单位不属于这一推荐层级", code="invalid_unit_level")
    if account.role == "reviewer" and (
        account.unit is None or not unit.path.startswith(account.unit.path)
    ):
        raise Forbidden("只能打印本部门及下级部门的推荐材料", code="foreign_unit")
    return unit


def passed_up(campaign: Campaign, unit: Unit, level: str) -> list[Nomination]:
    """What ``unit`` passed up from ``level`` and still holds a place for, by category then id."""
    held = select(LevelDecision.nomination_id).where(
        LevelDecision.campaign_id == campaign.id,
        LevelDecision.unit_id == unit.id,
        LevelDecision.unit_level == level,
        LevelDecision.decision == "pass",
        LevelDecision.holds_place.is_(True),
    )
    return list(
        db.session.scalars(
            select(Nomination)
            .join(Category, Nomination.category_id == Category.id)
            .where(Nomination.id.in_(held))
            .options(joinedload(Nomination.unit), joinedload(Nomination.category))
            .order_by(Category.id, Nomination.id)
        ).unique()
    )


@bp.route("/campaigns/<slug>/dossiers")
@staff_page("reviewer", "admin", login="console")
def bound_set(slug: str) -> Any:
    account: Account = g.account
    campaign = campaign_services.get_campaign(slug)
    level = (request.args.get("level") or "").strip()
    code = (request.args.get("unit") or "").strip()
    if not level or not code:
        raise ValidationFailed("请指定层级和部门", code="level_and_unit_required")
    unit = _bureau(account, campaign, level, code)
    nominations = [
        n for n in passed_up(campaign, unit, level) if nomination_services.can_see(account, n)
    ]
    return render_page(
        "pages/console/dossier.html",
        campaign=campaign,
        sheets=[sheet(n) for n in nominations],
        heading=f"{unit.name} · {level_label(level)}推荐上报材料",
        bound={"unit": unit.name, "level": level_label(level), "count": len(nominations)},
    )
