"""The H5 phone page: prove a phone number by a one-time code, then back to the campaign.

``/c/<slug>/phone?next=/c/<slug>/n/D001`` — enter the phone (with the consent line) → 获取验证码
→ enter the 6-digit code (a new code can be asked for after a 60-second countdown) → the voter
cookie is set (HttpOnly: the token never reaches page scripts) and the browser goes back to
``next``. Plain forms: it works without the script, which only runs the countdown. Inside
WeChat (with the official account configured) the page first gets the WeChat identity, so the
code upgrades that voter (``pv: 1``) instead of making a second one (voting/phone.py).

Not a public body: it carries the CSRF token, so it is never cached (``no-store``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from marshmallow import ValidationError

from core import sms
from core.auth import read_voter_token
from core.errors import AppError, ValidationFailed
from core.extensions import db
from core.http import client_address
from core.ratelimit import rate_limit
from core.web import VOTER_COOKIE, require_csrf, set_credential
from nominations import public_view
from pages.common import error_page, in_wechat, render_page, safe_next, wechat_enabled
from voting import phone
from voting.phone_routes import SmsCodeRequestSchema, SmsVerifySchema, current_claims, device_id

bp = Blueprint("h5_phone", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)

TEMPLATE = "pages/h5/phone.html"
CONSENT = "手机号仅用于身份验证，不会公开或用于其他用途"
_PHONE_STEP_CODES = ("sms_code_expired", "phone_in_use", "voter_has_other_phone")


def _voter_claims() -> dict[str, Any] | None:
    token = request.cookies.get(VOTER_COOKIE)
    if not token:
        return None
    try:
        return read_voter_token(token)
    except AppError:
        return None


def _next(slug: str) -> str:
    return safe_next(request.values.get("next"), f"/c/{slug}")


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _form() -> dict[str, Any]:
    """The posted fields: a form (no script) or a JSON object (a script)."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form.to_dict()


def _page(slug: str, step: str, *, status: int = 200, **context: Any) -> Response:
    view = public_view.campaign_view(slug)
    ttl = int(current_app.config.get("SMS_CODE_TTL") or 300)
    response: Response = render_page(
        TEMPLATE,
        status=status,
        campaign=view,
        step=step,
        next=_next(slug),
        consent=CONSENT,
        ttl_minutes=max(1, ttl // 60),
        resend_after=phone.RESEND_AFTER,
        **context,
    )
    return response


@bp.route("/c/<slug>/phone")
def page(slug: str) -> Any:
    """Step one: the phone number. 404 (a Chinese page) when phone voting is off."""
    view = public_view.campaign_view(slug)
    if not phone.enabled():
        raise AppError("本活动暂未开放手机号验证", code="provider_disabled", status=404)
    claims = _voter_claims()
    if claims is not None and phone.phone_verified(claims):
        return redirect(_next(view.slug), code=303)
    if claims is None and in_wechat() and wechat_enabled():
        back = f"/c/{view.slug}/phone?next={quote(_next(view.slug), safe='')}"
        return redirect(
            f"/api/v1/wechat/oauth/start?campaign={quote(view.slug)}&next={quote(back, safe='')}",
            code=302,
        )
    return _page(view.slug, "phone", reason=request.args.get("reason", ""))


@bp.route("/c/<slug>/phone/code", methods=["POST"])
def send_code(slug: str) -> Any:
    """Step two: text the code (form: the code page; JSON: 202 with the masked phone)."""
    require_csrf()
    view = public_view.campaign_view(slug)
    data = _form()
    number = str(data.get("phone") or "")[:32]
    try:
        if not data.get("consent"):
            raise ValidationFailed(
                "请先阅读并同意手机号使用说明", details={"fields": {"consent": [CONSENT]}}
            )
        try:
            body = SmsCodeRequestSchema().load({"phone": number, "campaign": view.slug})
        except ValidationError as exc:
            raise ValidationFailed(
                "请输入正确的手机号", details={"fields": exc.messages_dict}
            ) from exc
        sent = phone.send_code(
            body["phone"], address=client_address(), device=device_id(), campaign=view.slug
        )
    except AppError as exc:
        if _wants_json():
            raise
        return _page(view.slug, "phone", status=exc.status, error=exc, phone=number)
    if _wants_json():
        return jsonify(sent), 202
    return _page(view.slug, "code", phone=body["phone"], masked=sent["phone"])


@bp.route("/c/<slug>/phone/verify", methods=["POST"])
@rate_limit("SMS_VERIFY_IP_LIMIT")
def verify(slug: str) -> Any:
    """Step three: check the code, set the voter cookie, back to ``next`` (303)."""
    require_csrf()
    view = public_view.campaign_view(slug)
    data = _form()
    number = str(data.get("phone") or "")[:32]
    try:
        try:
            body = SmsVerifySchema().load(
                {"phone": number, "code": str(data.get("code") or "").strip()[:12]}
            )
        except ValidationError as exc:
            raise ValidationFailed(
                "请输入6位数字验证码", details={"fields": exc.messages_dict}
            ) from exc
        _, token, _ = phone.verify(body["phone"], body["code"], current_claims())
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        if _wants_json():
            raise
        # A refusal about the phone itself sends the visitor back to the phone step.
        step = "phone" if exc.code in _PHONE_STEP_CODES else "code"
        return _page(
            view.slug,
            step,
            status=exc.status,
            error=exc,
            phone=number,
            masked=sms.mask(number),
        )
    target = _next(view.slug)
    if _wants_json():
        response = jsonify({"identity": "ready", "phone_verified": True, "next": target})
    else:
        response = redirect(target, code=303)
    set_credential(response, VOTER_COOKIE, token.token, current_app.config["VOTER_TOKEN_TTL"])
    return response
