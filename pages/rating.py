"""The rating page (群众评议, docs/appraisal.md): phone first, no login, no heavy assets.

``/r/<token>`` is an invitation's one-time link; ``/r/u/<window token>`` a unit window's QR code
for walk-in patients (limited per device cookie and per address). Three choices — 满意, 基本满意,
不满意 — an optional comment and, optionally, the staff member; one answer per link. The form
posts without any script (rating.js only guards a double tap); every post carries the CSRF
token. A 「不满意」 answer opens a case for the unit (appraisal.cases)."""

from __future__ import annotations

from typing import Any

import segno
from flask import Blueprint, Response, current_app, request

from appraisal import cases, services
from appraisal.labels import CHOICE_LABELS
from appraisal.models import Encounter, Programme, Window
from core import device
from core.auth import client_ip
from core.errors import AppError, Forbidden
from core.extensions import db
from core.ratelimit import limit
from core.web import require_csrf
from pages.common import render_page

bp = Blueprint("rating", __name__, template_folder="templates")


def _message(title: str, text: str, status: int = 200) -> Response:
    return render_page("pages/rating/message.html", status=status, title=title, text=text)


def _refusal(exc: AppError) -> Response:
    titles = {
        "already_answered": "您已评价过",
        "link_expired": "链接已过期",
        "link_invalid": "链接无效",
        "window_not_found": "二维码已失效",
        "rate_limited": "操作太频繁",
        "csrf_failed": "页面已过期",
    }
    response = _message(titles.get(exc.code, "无法提交"), exc.message, exc.status)
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def _form(
    *,
    programme: Programme,
    unit_name: str,
    action: str,
    staff_name: str | None = None,
    opt_out_url: str | None = None,
    walk_in: bool = False,
    error: str | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return render_page(
        "pages/rating/form.html",
        status=status,
        programme=programme,
        bureau=programme.bureau.name,
        unit_name=unit_name,
        action=action,
        staff_name=staff_name,
        opt_out_url=opt_out_url,
        walk_in=walk_in,
        choices=list(CHOICE_LABELS.items()),
        error=error,
        values=values or {},
        max_comment=services.MAX_COMMENT,
    )


def _answer_fields() -> dict[str, Any]:
    return {
        "choice": request.form.get("choice", ""),
        "comment": request.form.get("comment", ""),
        "staff_name": request.form.get("staff_name", ""),
    }


@bp.route("/r/<token>", methods=["GET", "POST"])
def invited(token: str) -> Response:
    try:
        encounter: Encounter = services.encounter_for_token(token)
        programme = encounter.programme
        if programme.status != "active":
            return _message("评议已结束", "本次评议已结束，感谢您的关注。", 410)
        if request.method == "POST":
            require_csrf()
            limit("APPRAISAL_ANSWER_IP_LIMIT", "appraisal.answer", f"ip:{client_ip()}")
        if services.answered(encounter) is not None:
            raise AppError("您已经评价过了，感谢您的参与", code="already_answered", status=409)
        page = {
            "programme": programme,
            "unit_name": encounter.unit.name,
            "action": f"/r/{token}",
            "staff_name": encounter.staff_name,
            "opt_out_url": f"/r/{token}/unsubscribe",
        }
        if request.method == "GET":
            return _form(**page)
        fields = _answer_fields()
        try:
            rating = services.answer_invited(token, **fields)
        except AppError as exc:
            if exc.status != 422:
                raise
            return _form(**page, error=exc.message, values=fields, status=422)
        cases.open_for(rating, programme)
        db.session.commit()
        return _message("感谢您的评价", "您的意见已收到，我们会认真改进。")
    except AppError as exc:
        db.session.rollback()
        return _refusal(exc)


@bp.route("/r/<token>/unsubscribe", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    """退订: the number is never texted again, by any programme."""
    try:
        services.encounter_for_token(token)
        if request.method == "GET":
            return render_page("pages/rating/unsubscribe.html", action=f"/r/{token}/unsubscribe")
        require_csrf()
        services.opt_out_link(token)
        db.session.commit()
        return _message("已退订", "今后不会再向您的手机号发送评价短信。")
    except AppError as exc:
        db.session.rollback()
        return _refusal(exc)


def _device_id() -> str | None:
    return device.read(request.cookies.get(device.DEVICE_COOKIE))


@bp.route("/r/u/<window_token>", methods=["GET", "POST"])
def walk_in(window_token: str) -> Response:
    try:
        window: Window = services.get_window(window_token)
        page = {
            "programme": window.programme,
            "unit_name": f"{window.unit.name} · {window.name}",
            "action": f"/r/u/{window_token}",
            "walk_in": True,
        }
        if request.method == "GET":
            response = _form(**page)
            if _device_id() is None:
                _, value = device.issue()
                device.set_cookie(response, value)
            return response
        require_csrf()
        device_id = _device_id()
        if device_id is None:
            raise Forbidden("请允许浏览器保存 Cookie 后刷新页面再评价", code="device_required")
        # The device first: a phone past its own budget does not use up its address's.
        limit("APPRAISAL_WALKIN_DEVICE_LIMIT", "appraisal.walkin", f"dev:{device_id}")
        limit("APPRAISAL_WALKIN_IP_LIMIT", "appraisal.walkin", f"ip:{client_ip()}")
        fields = _answer_fields()
        try:
            rating = services.answer_walk_in(window, **fields)
        except AppError as exc:
            if exc.status != 422:
                raise
            return _form(**page, error=exc.message, values=fields, status=422)
        cases.open_for(rating, window.programme)
        db.session.commit()
        return _message("感谢您的评价", "您的意见已收到，我们会认真改进。")
    except AppError as exc:
        db.session.rollback()
        return _refusal(exc)


@bp.route("/r/u/<window_token>/qr.svg")
def window_qr(window_token: str) -> Response:
    """The window's QR code (SVG, for printing), pointing at its walk-in page."""
    try:
        window = services.get_window(window_token)
    except AppError as exc:
        return _refusal(exc)
    base = current_app.config.get("APPRAISAL_LINK_BASE") or request.host_url.rstrip("/")
    qr = segno.make(f"{str(base).rstrip('/')}/r/u/{window.token}", error="m")
    svg = qr.svg_inline(scale=8, border=2)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
