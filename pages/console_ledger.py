"""The console's ledger health page: what is waiting to be stored, what was set aside
(quarantine, with reasons), the vote Redis rewinds (with an acknowledgement after review) and
the sequence floors that detect them. Reads and the acknowledgement are voting's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, g, redirect, request

from campaigns import services as campaign_services
from core.errors import AppError, ServiceUnavailable
from core.extensions import db
from core.web import require_csrf
from pages.common import error_page, local_time, render_page, staff_page
from voting import rewinds, services
from voting.reconciliation import quarantined_entries

bp = Blueprint("console_ledger", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

REASON_LABELS = {"rewound": "序号回退（数据早于已确认的票）", "restarted": "重启后数据集标识丢失"}
DETECTED_BY_LABELS = {"state": "发布活动状态时", "vote": "投票时", "watch": "每秒巡检时"}


def _page(slug: str, *, status: int = 200, error: AppError | None = None) -> Any:
    campaign = campaign_services.get_campaign(slug)
    try:
        health: dict[str, Any] | None = services.ledger_health(campaign)
    except ServiceUnavailable:
        health = None  # the vote Redis is away: the database's part is still shown
    return render_page(
        "pages/console/ledger.html",
        status=status,
        campaign=campaign,
        section="dashboard",
        health=health,
        quarantine=quarantined_entries(campaign),
        rewinds=[_in_zone(row, campaign) for row in rewinds.list_rewinds(campaign)],
        reason_labels=REASON_LABELS,
        detected_by_labels=DETECTED_BY_LABELS,
        local_time=local_time,
        error=error,
    )


def _in_zone(row: dict[str, Any], campaign: Any) -> dict[str, Any]:
    """A rewind's times (ISO 8601 in UTC as listed) as the campaign's people read them."""
    return row | {
        key: local_time(datetime.fromisoformat(row[key]), campaign) if row.get(key) else None
        for key in ("detected_at", "acknowledged_at")
    }


@bp.route("/c/<slug>/ledger")
@staff_page("admin", login="console")
def ledger(slug: str) -> Any:
    return _page(slug)


@bp.route("/c/<slug>/ledger/rewinds/<int:rewind_id>/ack", methods=["POST"])
@staff_page("admin", login="console")
def acknowledge_rewind(slug: str, rewind_id: int) -> Any:
    """Acknowledge a rewind after review, with a note; the alarm stops for it."""
    require_csrf()
    campaign = campaign_services.get_campaign(slug)
    try:
        rewinds.acknowledge(
            campaign, rewind_id, actor=g.account.username, note=request.form.get("note", "")
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        if exc.code == "rewind_not_found":
            raise
        return _page(slug, status=exc.status, error=exc)
    return redirect(f"/console/c/{slug}/ledger", code=303)
