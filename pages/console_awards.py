"""The console's second half: judging progress, judges' score sheets, combined results with the
sensitivity view, finalisation, publicity and objections, exports.

The pages are server-rendered shells; what the API does not list (judge assignments, declared
conflicts, result versions, organiser scores) is read here through the awards models and handed
to the page script as JSON. Every write goes through the /api/v1 endpoints with the cookie and
the CSRF header. Two reads live here because the API has none: the rank shifts of a result
version under other weights (``rank_shifts``) and an objection's attachment."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, send_file
from sqlalchemy import func, select

from awards import exports, scoring
from awards import services as award_services
from awards.models import (
    JudgeAssignment,
    JudgeConflict,
    Objection,
    OrganizerScore,
    ResultEntry,
    ResultVersion,
    ScoreSheet,
)
from campaigns import services as campaign_services
from campaigns.models import Account, Campaign
from core.errors import AppError, NotFound, error_response
from core.extensions import db
from core.types import utcnow
from nominations.models import Nomination
from pages.common import error_page, local_time, render_page, staff_page

bp = Blueprint("console_awards", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

PHASE_NAMES = {
    "draft": "筹备中",
    "nominating": "推荐申报",
    "reviewing": "资格审核",
    "voting": "公众投票",
    "judging": "专家评审",
    "publicity": "结果公示",
    "closed": "已结束",
}
VERSION_STATUS_NAMES = {
    "draft": "草稿",
    "final": "定稿",
    "published": "已公示",
    "superseded": "已被取代",
}
OBJECTION_STATUS_NAMES = {"open": "待答复", "upheld": "异议成立", "dismissed": "已驳回"}
EXPORT_KINDS = (
    (
        "workbook",
        "评选档案（Excel）",
        "推荐材料、投票统计、异常处理、评委评分、评选结果与操作日志，一个工作簿六张表。",
    ),
    (
        "winners_html",
        "公示名单（可打印网页）",
        "已公示（或已定稿）版本的获奖名单，含公示期与异议受理方式，可直接打印或转 PDF。",
    ),
    (
        "audit_csv",
        "操作日志（CSV）",
        "本活动的全部操作记录：时间、操作人、动作、对象、理由与前后值。",
    ),
)
# Points of weight moved from the jury to the public (negative: the other way), as the API's
# sensitivity report does; 0 is the version's own weights.
SHIFT_STEPS = (-10, -5, 0, 5, 10)


# --- small helpers ----------------------------------------------------------------------------


def _campaign(slug: str) -> Campaign:
    return campaign_services.get_campaign(slug)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _weights(campaign_or_version: Any) -> dict[str, int]:
    raw = campaign_or_version.weights or {}
    return {key: int(raw.get(key) or 0) for key in ("public", "jury", "organizer")}


def _categories(campaign: Campaign) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "name": c.name, "award_count": c.award_count} for c in campaign.categories
    ]


def _page(template: str, campaign: Campaign, section: str, **context: Any) -> Any:
    return render_page(
        template,
        campaign=campaign,
        section=section,
        phase_name=PHASE_NAMES.get(campaign.phase, campaign.phase),
        **context,
    )


# --- judging overview -------------------------------------------------------------------------


def judging_overview(campaign: Campaign) -> dict[str, Any]:
    """Judges with their categories and sheets done / expected, per judge and per category;
    the declared conflicts; whether the criteria are still open to change."""
    categories = {c.id: c for c in campaign.categories}
    approved: dict[int, int] = defaultdict(int)
    for category_id, count in db.session.execute(
        select(Nomination.category_id, func.count(Nomination.id))
        .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        .group_by(Nomination.category_id)
    ):
        approved[category_id] = count
    assignments: dict[int, list[int]] = defaultdict(list)
    for account_id, category_id in db.session.execute(
        select(JudgeAssignment.account_id, JudgeAssignment.category_id).where(
            JudgeAssignment.campaign_id == campaign.id
        )
    ):
        assignments[account_id].append(category_id)
    judges = (
        db.session.scalars(
            select(Account).where(Account.id.in_(list(assignments))).order_by(Account.username)
        ).all()
        if assignments
        else []
    )
    conflicts = db.session.execute(
        select(JudgeConflict, Nomination)
        .join(Nomination, Nomination.id == JudgeConflict.nomination_id)
        .where(Nomination.campaign_id == campaign.id)
        .order_by(JudgeConflict.created_at)
    ).all()
    declared: dict[int, int] = defaultdict(int)
    for conflict, _ in conflicts:
        declared[conflict.account_id] += 1

    by_category: dict[str, dict[str, Any]] = {
        c.code: {
            "code": c.code,
            "name": c.name,
            "nominees": approved[c.id],
            "judges": 0,
            "expected": 0,
            "submitted": 0,
            "drafts": 0,
        }
        for c in campaign.categories
    }
    rows = []
    for judge in judges:
        queue = award_services.judge_queue(judge, campaign)
        cells = []
        for category_id in sorted(assignments[judge.id], key=lambda i: categories[i].position):
            category = categories[category_id]
            items = [q for q in queue if q["category"] == category.code]
            cell = {
                "code": category.code,
                "name": category.name,
                "expected": len(items),
                "submitted": sum(1 for q in items if q["sheet_status"] == "submitted"),
                "drafts": sum(1 for q in items if q["sheet_status"] == "draft"),
            }
            cells.append(cell)
            total = by_category[category.code]
            total["judges"] += 1
            for key in ("expected", "submitted", "drafts"):
                total[key] += cell[key]
        expected = sum(c["expected"] for c in cells)
        submitted = sum(c["submitted"] for c in cells)
        assigned_total = sum(approved[i] for i in assignments[judge.id])
        rows.append(
            {
                "username": judge.username,
                "display_name": judge.display_name or judge.username,
                "unit": judge.unit.name if judge.unit else "",
                "active": judge.is_active,
                "categories": cells,
                "expected": expected,
                "submitted": submitted,
                "drafts": sum(c["drafts"] for c in cells),
                "percent": round(submitted * 100 / expected) if expected else 0,
                "declared": declared[judge.id],
                # Nominees the judge never sees: their own unit's and declared conflicts.
                "recused": assigned_total - expected,
            }
        )

    unscored: dict[str, list[str]] = defaultdict(list)
    scored_ids = set(
        db.session.scalars(
            select(ScoreSheet.nomination_id).where(
                ScoreSheet.campaign_id == campaign.id, ScoreSheet.status == "submitted"
            )
        )
    )
    for nomination in db.session.scalars(
        select(Nomination)
        .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        .order_by(Nomination.category_id, Nomination.number_seq)
    ):
        if nomination.id not in scored_ids:
            unscored[nomination.category.code].append(f"{nomination.number} {nomination.name}")
    for code, total in by_category.items():
        total["percent"] = (
            round(total["submitted"] * 100 / total["expected"]) if total["expected"] else 0
        )
        total["unscored"] = unscored.get(code, [])

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
                "judge_name": _account_label(conflict.account_id),
                "number": nomination.number,
                "name": nomination.name,
                "reason": conflict.reason,
                "at": local_time(conflict.created_at, campaign),
            }
            for conflict, nomination in conflicts
        ],
        "criteria": [
            {"code": c.code, "name": c.name, "max_points": c.max_points}
            for c in award_services.criteria(campaign)
        ],
        "criteria_locked": locked,
        "assignments": {
            judge.username: [categories[i].code for i in assignments[judge.id]] for judge in judges
        },
    }


def _account_label(account_id: int) -> str:
    account = db.session.get(Account, account_id)
    if account is None:
        return ""
    return (
        f"{account.display_name} ({account.username})" if account.display_name else account.username
    )


def _judge_accounts() -> list[dict[str, str]]:
    return [
        {
            "username": a.username,
            "label": (a.display_name or a.username) + (f" · {a.unit.name}" if a.unit else ""),
        }
        for a in db.session.scalars(
            select(Account)
            .where(Account.role == "judge", Account.is_active.is_(True))
            .order_by(Account.username)
        )
    ]


def _organizer_rows(campaign: Campaign) -> list[dict[str, Any]]:
    points = {
        s.nomination_id: float(s.points)
        for s in db.session.scalars(
            select(OrganizerScore).where(OrganizerScore.campaign_id == campaign.id)
        )
    }
    return [
        {
            "number": n.number,
            "name": n.name,
            "category": n.category.name,
            "unit": n.unit.name,
            "points": points.get(n.id),
        }
        for n in db.session.scalars(
            select(Nomination)
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
            .order_by(Nomination.category_id, Nomination.number_seq)
        )
    ]


@bp.route("/c/<slug>/judging")
@staff_page("admin", login="console")
def judging(slug: str) -> Any:
    campaign = _campaign(slug)
    overview = judging_overview(campaign)
    weights = _weights(campaign)
    data = {
        "slug": campaign.slug,
        "phase": campaign.phase,
        "criteria": overview["criteria"],
        "criteria_locked": overview["criteria_locked"],
        "categories": _categories(campaign),
        "assignments": overview["assignments"],
    }
    return _page(
        "pages/console/judging.html",
        campaign,
        "judging",
        overview=overview,
        judges_available=_judge_accounts(),
        organizer_rows=_organizer_rows(campaign) if weights["organizer"] else None,
        weights=weights,
        data=data,
    )


# --- the judge's score sheets -----------------------------------------------------------------


def sheet_queue(judge: Account, campaign: Campaign) -> list[dict[str, Any]]:
    """The judge's queue as the API gives it, plus the category's name and the nominee's photo
    and video (never a vote count)."""
    from media import services as media_services

    queue = award_services.judge_queue(judge, campaign)
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


@bp.route("/c/<slug>/sheets")
@staff_page("judge", login="console")
def sheets(slug: str) -> Any:
    campaign = _campaign(slug)
    queue = sheet_queue(g.account, campaign)
    criteria = [
        {"code": c.code, "name": c.name, "max_points": c.max_points}
        for c in award_services.criteria(campaign)
    ]
    done = sum(1 for q in queue if q["sheet_status"] == "submitted")
    data = {
        "slug": campaign.slug,
        "phase": campaign.phase,
        "open": campaign.phase == "judging",
        "criteria": criteria,
        "items": queue,
    }
    return _page(
        "pages/console/sheets.html",
        campaign,
        "sheets",
        queue=queue,
        criteria=criteria,
        done=done,
        data=data,
    )


# --- results ----------------------------------------------------------------------------------


def _version_summary(version: ResultVersion, campaign: Campaign) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status,
        "status_name": VERSION_STATUS_NAMES.get(version.status, version.status),
        "weights": _weights(version),
        "reason": version.reason,
        "created_by": version.created_by,
        "created_at": local_time(version.created_at, campaign),
        "finalized_at": local_time(version.finalized_at, campaign),
        "published_at": local_time(version.published_at, campaign),
        "publicity_ends_at": local_time(version.publicity_ends_at, campaign),
    }


def rank_shifts(campaign: Campaign, version: ResultVersion) -> dict[str, Any]:
    """How each nominee's rank and the winners move when 5 or 10 points of weight go from the
    jury to the public or back, recomputed with the scoring method from the version's own figures
    (its valid votes, jury and organiser scores and adjustments), so later sheets or votes do not
    blur the comparison."""
    weights = _weights(version)
    scenarios = []
    for step in SHIFT_STEPS:
        public, jury = weights["public"] + step, weights["jury"] - step
        if public < 0 or jury < 0:
            continue
        scenarios.append({"step": step, "weights": dict(weights, public=public, jury=jury)})
    entries: list[ResultEntry] = list(version.entries)
    seqs = dict(
        db.session.execute(
            select(Nomination.id, Nomination.number_seq).where(
                Nomination.id.in_([e.nomination_id for e in entries])
            )
        ).all()
    )
    categories = []
    for category in campaign.categories:
        rows = [e for e in entries if e.category_code == category.code]
        rows.sort(key=lambda e: e.rank)
        candidates = [
            scoring.Candidate(
                nomination_id=e.nomination_id,
                number=e.number,
                number_seq=seqs.get(e.nomination_id) or 0,
                valid_votes=e.valid_votes,
                # The stored jury score is already the mean on 0–100: one "sheet" out of 100
                # gives it back unchanged.
                sheet_totals=(Decimal(str(e.jury_score)),) if e.jury_count else (),
                organizer=Decimal(str(e.organizer_score)),
                adjustment=e.adjustment,
            )
            for e in rows
        ]
        base_winners = {e.number for e in rows if e.winner}
        outcomes = []
        for scenario in scenarios:
            scored = {
                s.candidate.number: s
                for s in scoring.score_category(
                    candidates,
                    weights=scenario["weights"],
                    criteria_max=100,
                    award_count=category.award_count,
                )
            }
            winners = {n for n, s in scored.items() if s.winner}
            outcomes.append(
                {
                    "step": scenario["step"],
                    "weights": scenario["weights"],
                    "current": scenario["step"] == 0,
                    "changed": winners != base_winners,
                    "new_winners": sorted(winners - base_winners),
                    "dropped": sorted(base_winners - winners),
                    "scored": scored,
                }
            )
        categories.append(
            {
                "code": category.code,
                "name": category.name,
                "award_count": category.award_count,
                "scenarios": [{k: v for k, v in o.items() if k != "scored"} for o in outcomes],
                "rows": [
                    {
                        "number": e.number,
                        "name": e.name,
                        "unit": e.unit,
                        "rank": e.rank,
                        "winner": e.winner,
                        "adjustment": e.adjustment,
                        "ranks": [o["scored"][e.number].rank for o in outcomes],
                        "combined": [float(o["scored"][e.number].combined) for o in outcomes],
                        "winners": [o["scored"][e.number].winner for o in outcomes],
                    }
                    for e in rows
                ],
            }
        )
    return {"version": version.version, "weights": weights, "categories": categories}


@bp.route("/c/<slug>/results")
@staff_page("admin", login="console")
def results(slug: str) -> Any:
    campaign = _campaign(slug)
    versions = db.session.scalars(
        select(ResultVersion)
        .where(ResultVersion.campaign_id == campaign.id)
        .order_by(ResultVersion.version.desc())
    ).all()
    wanted = request.args.get("v", type=int)
    numbers = [v.version for v in versions]
    selected = wanted if wanted in numbers else (numbers[0] if numbers else None)
    data = {
        "slug": campaign.slug,
        "phase": campaign.phase,
        "weights": _weights(campaign),
        "categories": _categories(campaign),
        "versions": [_version_summary(v, campaign) for v in versions],
        "selected": selected,
    }
    return _page(
        "pages/console/results.html",
        campaign,
        "results",
        versions=data["versions"],
        selected=selected,
        weights=data["weights"],
        data=data,
    )


@bp.route("/c/<slug>/results/<int:number>/shifts")
@staff_page("admin", login="console")
def results_shifts(slug: str, number: int) -> Response:
    """The rank shifts of a version (JSON for the results page's sensitivity view)."""
    try:
        campaign = _campaign(slug)
        body = rank_shifts(campaign, award_services.get_version(campaign, number))
    except AppError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- publicity and objections -----------------------------------------------------------------


def _objection_row(
    objection: Objection, campaign: Campaign, names: dict[str, str]
) -> dict[str, Any]:
    kind = None
    if objection.attachment_key:
        kind = objection.attachment_key.rsplit(".", 1)[-1]
    return {
        "id": objection.id,
        "nominee": objection.nominee_number,
        "nominee_name": names.get(objection.nominee_number or "", ""),
        "contact_name": objection.contact_name,
        "contact_phone": objection.contact_phone,
        "text": objection.text,
        "status": objection.status,
        "status_name": OBJECTION_STATUS_NAMES.get(objection.status, objection.status),
        "answer": objection.answer,
        "answered_by": objection.answered_by,
        "answered_at": local_time(objection.answered_at, campaign),
        "created_at": local_time(objection.created_at, campaign),
        "ip": objection.ip,
        "attachment": kind,
        "version": objection.version_id,
    }


@bp.route("/c/<slug>/publicity")
@staff_page("admin", login="console")
def publicity(slug: str) -> Any:
    campaign = _campaign(slug)
    current = award_services.published(campaign)
    now = utcnow()
    window = None
    if current is not None:
        ends = current.publicity_ends_at
        remaining = (ends - now).total_seconds() if ends else 0
        window = {
            "version": current.version,
            "published_at": local_time(current.published_at, campaign),
            "ends_at": local_time(ends, campaign),
            "ends_iso": _iso(ends),
            "open": campaign.phase == "publicity" and remaining > 0,
            "days_left": max(0, int(remaining // 86400)),
            "hours_left": max(0, int(remaining % 86400 // 3600)),
            "ledger_head": current.ledger_head,
            "ledger_votes": current.ledger_votes,
            "winners": [
                {"category": e.category_code, "number": e.number, "name": e.name, "unit": e.unit}
                for e in current.entries
                if e.winner
            ],
        }
    names = dict(
        db.session.execute(
            select(Nomination.number, Nomination.name).where(
                Nomination.campaign_id == campaign.id, Nomination.number.is_not(None)
            )
        ).all()
    )
    objections = [
        _objection_row(o, campaign, names)
        for o in db.session.scalars(
            select(Objection)
            .where(Objection.campaign_id == campaign.id)
            .order_by(Objection.status != "open", Objection.id.desc())
        )
    ]
    versions = {
        v.id: v.version
        for v in db.session.scalars(
            select(ResultVersion).where(ResultVersion.campaign_id == campaign.id)
        )
    }
    for row in objections:
        row["version"] = versions.get(row["version"])
    pending_drafts = [
        v.version
        for v in db.session.scalars(
            select(ResultVersion)
            .where(
                ResultVersion.campaign_id == campaign.id,
                ResultVersion.status.in_(("draft", "final")),
            )
            .order_by(ResultVersion.version)
        )
        if current is not None
        and v.version > current.version
        and current.published_at is not None
        and v.created_at > current.published_at
    ]
    counts = {
        key: sum(1 for o in objections if o["status"] == key)
        for key in ("open", "upheld", "dismissed")
    }
    category_names = {c.code: c.name for c in campaign.categories}
    return _page(
        "pages/console/publicity.html",
        campaign,
        "publicity",
        window=window,
        objections=objections,
        counts=counts,
        pending_drafts=pending_drafts,
        category_names=category_names,
        publicity_days=campaign.publicity_days,
        data={"slug": campaign.slug, "phase": campaign.phase},
    )


@bp.route("/c/<slug>/objections/<int:objection_id>/attachment")
@staff_page("admin", login="console")
def objection_attachment(slug: str, objection_id: int) -> Response:
    """An objection's attachment, for the office only: images inline (for the preview), PDFs
    as a download; sandboxed and never sniffed, since the public uploaded them."""
    campaign = _campaign(slug)
    objection = db.session.get(Objection, objection_id)
    if objection is None or objection.campaign_id != campaign.id:
        raise NotFound("异议不存在", code="objection_not_found")
    path, mimetype = award_services.attachment_path(objection)
    if not path.is_file():
        raise NotFound("附件文件已不存在", code="attachment_not_found")
    is_pdf = mimetype == "application/pdf"
    response = send_file(
        path,
        mimetype=mimetype,
        as_attachment=is_pdf,
        download_name=f"{campaign.slug}-异议{objection.id}附件.{path.suffix.lstrip('.')}",
        conditional=True,
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- exports ----------------------------------------------------------------------------------


@bp.route("/c/<slug>/exports")
@staff_page("admin", login="console")
def exports_page(slug: str) -> Any:
    campaign = _campaign(slug)
    kinds = [
        {"kind": kind, "label": label, "help": text, "ext": exports.EXTENSIONS[kind]}
        for kind, label, text in EXPORT_KINDS
        if kind in exports.KINDS
    ]
    return _page(
        "pages/console/exports.html",
        campaign,
        "exports",
        kinds=kinds,
        data={"slug": campaign.slug, "kinds": kinds},
    )
