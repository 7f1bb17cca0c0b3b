"""The console's second half: judging progress, judges' score sheets, combined results with the
sensitivity view, finalisation, publicity and objections, exports.

The pages are server-rendered shells; what the API does not list (judge assignments, declared
conflicts, result versions, organiser scores) comes from the awards services and is handed to the
page script as JSON, with the words it shows (awards.labels). Every write goes through the
/api/v1 endpoints with the cookie and the CSRF header. Two reads are served here because the API
has none: the rank shifts of a result version under other weights and an objection's
attachment."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request, send_file

from awards import exports as award_exports
from awards import services as award_services
from awards.labels import (
    ADJUSTMENT_LABELS,
    COMPONENT_LABELS,
    EXPORT_HELP,
    EXPORT_LABELS,
    OBJECTION_STATUS_LABELS,
    PANEL_LABELS,
    SHEET_STATUS_LABELS,
    VERSION_STATUS_LABELS,
    objection_status_label,
    version_status_label,
)
from awards.models import ResultVersion
from campaigns import services as campaign_services
from campaigns.labels import PHASE_LABELS, phase_label
from campaigns.models import Campaign
from core.errors import AppError, NotFound, error_response
from pages.common import error_page, local_time, render_page, staff_page
from voting.exports import FILTER_LABELS

bp = Blueprint("console_awards", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)


# --- small helpers ----------------------------------------------------------------------------


def _campaign(slug: str) -> Campaign:
    return campaign_services.get_campaign(slug)


def _categories(campaign: Campaign) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "name": c.name, "award_count": c.award_count} for c in campaign.categories
    ]


def _page(template: str, campaign: Campaign, section: str, **context: Any) -> Any:
    return render_page(
        template,
        campaign=campaign,
        section=section,
        phase_name=phase_label(campaign.phase),
        phase_labels=PHASE_LABELS,
        **context,
    )


# --- judging overview -------------------------------------------------------------------------


@bp.route("/c/<slug>/judging")
@staff_page("admin", login="console")
def judging(slug: str) -> Any:
    campaign = _campaign(slug)
    overview = award_services.judging_overview(campaign)
    overview["conflicts"] = [
        row | {"at": local_time(row["created_at"], campaign)} for row in overview["conflicts"]
    ]
    weights = award_services.weights_of(campaign)
    judges_available = [
        {
            "username": a.username,
            "label": (a.display_name or a.username) + (f" · {a.unit.name}" if a.unit else ""),
        }
        for a in award_services.available_judges()
    ]
    data = {
        "slug": campaign.slug,
        "phase": campaign.phase,
        "timezone": campaign.timezone,
        "criteria": overview["criteria"],
        "criteria_locked": overview["criteria_locked"],
        "categories": _categories(campaign),
        "assignments": overview["assignments"],
        # Each assigned judge's panel (jury, peer, leader), for the assignment form.
        "panels": {j["username"]: j["panel"] for j in overview["judges"]},
    }
    return _page(
        "pages/console/judging.html",
        campaign,
        "judging",
        overview=overview,
        judges_available=judges_available,
        organizer_rows=award_services.organizer_scores(campaign) if weights["organizer"] else None,
        weights=weights,
        panel_labels=PANEL_LABELS,
        data=data,
    )


# --- the judge's score sheets -----------------------------------------------------------------


@bp.route("/c/<slug>/sheets")
@staff_page("judge", login="console")
def sheets(slug: str) -> Any:
    campaign = _campaign(slug)
    queue = award_services.sheet_queue(g.account, campaign)
    criteria = [
        {"code": c.code, "name": c.name, "max_points": c.max_points}
        for c in award_services.criteria(campaign)
    ]
    done = sum(1 for q in queue if q["sheet_status"] == "submitted")
    data = {
        "slug": campaign.slug,
        "phase": campaign.phase,
        "timezone": campaign.timezone,
        "open": campaign.phase == "judging",
        "criteria": criteria,
        "items": queue,
        "labels": {"sheet_statuses": SHEET_STATUS_LABELS, "panels": PANEL_LABELS},
    }
    return _page(
        "pages/console/sheets.html",
        campaign,
        "sheets",
        queue=queue,
        criteria=criteria,
        done=done,
        sheet_status_labels=SHEET_STATUS_LABELS,
        panels=sorted({q["panel"] for q in queue}),
        panel_labels=PANEL_LABELS,
        data=data,
    )


# --- results ----------------------------------------------------------------------------------


def _version_summary(version: ResultVersion, campaign: Campaign) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status,
        "status_name": version_status_label(version.status),
        "weights": award_services.weights_of(version),
        "reason": version.reason,
        "created_by": version.created_by,
        "created_at": local_time(version.created_at, campaign),
        "finalized_at": local_time(version.finalized_at, campaign),
        "published_at": local_time(version.published_at, campaign),
        "publicity_ends_at": local_time(version.publicity_ends_at, campaign),
    }


@bp.route("/c/<slug>/results")
@staff_page("admin", login="console")
def results(slug: str) -> Any:
    campaign = _campaign(slug)
    versions = award_services.versions(campaign)
    wanted = request.args.get("v", type=int)
    numbers = [v.version for v in versions]
    selected = wanted if wanted in numbers else (numbers[0] if numbers else None)
    data = {
        "slug": campaign.slug,
        "phase": campaign.phase,
        "timezone": campaign.timezone,
        "weights": award_services.weights_of(campaign),
        "categories": _categories(campaign),
        # The award tiers by category code ([] for one implicit tier), in order.
        "tiers": {c.code: c.tier_list for c in campaign.categories},
        "versions": [_version_summary(v, campaign) for v in versions],
        "selected": selected,
        "labels": {"version_statuses": VERSION_STATUS_LABELS, "adjustments": ADJUSTMENT_LABELS},
    }
    return _page(
        "pages/console/results.html",
        campaign,
        "results",
        versions=data["versions"],
        selected=selected,
        weights=data["weights"],
        component_labels=COMPONENT_LABELS,
        data=data,
    )


@bp.route("/c/<slug>/results/<int:number>/shifts")
@staff_page("admin", login="console")
def results_shifts(slug: str, number: int) -> Response:
    """The rank shifts of a version (JSON for the results page's sensitivity view)."""
    try:
        campaign = _campaign(slug)
        body = award_services.rank_shifts(campaign, award_services.get_version(campaign, number))
    except AppError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- publicity and objections -----------------------------------------------------------------


@bp.route("/c/<slug>/publicity")
@staff_page("admin", login="console")
def publicity(slug: str) -> Any:
    campaign = _campaign(slug)
    current = award_services.published(campaign)
    window = None
    if current is not None:
        window = award_services.publicity_window(campaign, current)
        ends = window["ends_at"]
        window |= {
            "published_at": local_time(window["published_at"], campaign),
            "ends_at": local_time(ends, campaign),
            "ends_iso": ends.isoformat() if ends is not None else None,
        }
    objections = [
        row
        | {
            "status_name": objection_status_label(row["status"]),
            "answered_at": local_time(row["answered_at"], campaign),
            "created_at": local_time(row["created_at"], campaign),
        }
        for row in award_services.objection_rows(campaign)
    ]
    counts = {
        key: sum(1 for o in objections if o["status"] == key)
        for key in ("open", "upheld", "dismissed")
    }
    pending_drafts = [v.version for v in award_services.reopened_versions(campaign, current)]
    return _page(
        "pages/console/publicity.html",
        campaign,
        "publicity",
        window=window,
        objections=objections,
        counts=counts,
        pending_drafts=pending_drafts,
        close_blocked=_close_blocked(window, counts["open"], pending_drafts),
        objection_labels=OBJECTION_STATUS_LABELS,
        category_names={c.code: c.name for c in campaign.categories},
        publicity_days=campaign.publicity_days,
        data={"slug": campaign.slug, "phase": campaign.phase, "timezone": campaign.timezone},
    )


def _close_blocked(window: dict[str, Any] | None, open_objections: int, drafts: list[int]) -> str:
    """Why 「结束活动」 cannot run now ("" when it can): the page's own figures, read as the
    server's phase guard reads them (which still refuses on its own)."""
    if window is None:
        return "结果尚未公示，不能结束活动"
    if window["open"]:
        return f"公示期至 {window['ends_at']} 才结束"
    if open_objections:
        return f"还有 {open_objections} 条异议未答复"
    if drafts:
        listed = "、".join(f"第 {v} 版" for v in drafts)
        return f"重新核算的结果（{listed}）尚未公示"
    return ""


@bp.route("/c/<slug>/objections/<int:objection_id>/attachment")
@staff_page("admin", login="console")
def objection_attachment(slug: str, objection_id: int) -> Response:
    """An objection's attachment, for the office only: images inline (for the preview), PDFs
    as a download; sandboxed and never sniffed, since the public uploaded them."""
    campaign = _campaign(slug)
    objection = award_services.get_objection(campaign, objection_id)
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
    """Every export kind to start, and the campaign's recent exports (whoever started them,
    from here or from the vote browser's download links) with progress and download."""
    campaign = _campaign(slug)
    blocked = _export_blocked(campaign)
    labels = {**EXPORT_LABELS, **award_exports.VOTE_EXPORT_LABELS}
    helps = {**EXPORT_HELP, **award_exports.VOTE_EXPORT_HELP}
    kinds = [
        {
            "kind": kind,
            "label": labels[kind],
            "help": helps[kind],
            "ext": award_services.EXTENSIONS[kind],
            "blocked": blocked.get(kind, ""),
        }
        for kind in award_services.KINDS
    ]
    return _page(
        "pages/console/exports.html",
        campaign,
        "exports",
        kinds=kinds,
        data={
            "slug": campaign.slug,
            "kinds": kinds,
            "focus": request.args.get("job", "")[:64],
            "filter_labels": FILTER_LABELS,
            "timezone": campaign.timezone,
        },
    )


def _export_blocked(campaign: Campaign) -> dict[str, str]:
    """Per export kind, why it cannot be made now (no entry when it can): the winners' list
    needs a final or published result. The job refuses on its own as well."""
    statuses = {v.status for v in award_services.versions(campaign)}
    if statuses & {"final", "published"}:
        return {}
    return {"winners_html": "尚无定稿或已公示的评选结果：在「综合结果」中定稿后才能生成公示名单"}
