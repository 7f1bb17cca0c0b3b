"""HTTP routes of phone voters (the ``sms`` provider): ask for a code, answer it, get a voter
token with ``pv: 1`` (voting/phone.py). The H5 page has its own cookie-setting twins
(pages/h5_phone.py); these answer API clients with the token in the body."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from core import device, sms
from core.auth import read_voter_token
from core.errors import AppError
from core.extensions import db
from core.http import client_address
from core.ratelimit import rate_limit
from core.schemas import ErrorEnvelopeSchema
from core.web import VOTER_COOKIE, request_credential
from voting import phone

blp = Blueprint(
    "voting_phone",
    __name__,
    url_prefix="/api/v1",
    description="手机号验证投票身份 (phone voters: one-time codes by SMS)",
)


class PhoneField(fields.String):
    """A Chinese mainland mobile number (1[3-9] and 9 digits, ``+86`` allowed), as 11 digits."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        number = sms.normalise(text[:32])
        if number is None:
            raise ValidationError("请输入正确的手机号")
        return number


class SmsCodeRequestSchema(Schema):
    phone = PhoneField(
        required=True,
        metadata={
            "description": "a mainland mobile number: 1[3-9] and nine digits (+86, spaces and "
            "dashes allowed)",
            "example": "13812341234",
        },
    )
    campaign = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[a-z0-9-]{1,80}$", error="活动标识格式不正确"),
        metadata={"description": "the campaign the voter came from (optional)"},
    )


class SmsCodeSentSchema(Schema):
    phone = fields.String(required=True, metadata={"description": "masked: 138****1234"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "seconds the code stays valid (300)"}
    )
    resend_after = fields.Integer(
        required=True, metadata={"description": "seconds before another code may be asked (60)"}
    )


class SmsVerifySchema(Schema):
    phone = PhoneField(
        required=True,
        metadata={"description": "the number the code was sent to", "example": "13812341234"},
    )
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{6}$", error="请输入6位数字验证码"),
        metadata={"description": "the six digits of the text message", "example": "204816"},
    )


class PhoneVoterTokenSchema(Schema):
    voter_token = fields.String(
        required=True,
        metadata={"description": "signed voter token with pv: 1; send it as Authorization: Bearer"},
    )
    expires_at = fields.AwareDateTime(
        required=True, metadata={"description": "when the token stops working (7 days)"}
    )
    phone_verified = fields.Boolean(required=True, metadata={"description": "always true"})
    upgraded = fields.Boolean(
        required=True, metadata={"description": "the caller's WeChat voter, now phone-verified"}
    )


def current_claims() -> dict[str, Any] | None:
    """The caller's voter claims if a valid voter token came with the request (bearer, or the
    page cookie with its CSRF token), else None: an expired token is a plain phone login."""
    token = request_credential(VOTER_COOKIE)
    if not token:
        return None
    try:
        return read_voter_token(token)
    except AppError:
        return None


def device_id() -> str | None:
    """The signed device cookie's id, if this browser has one (core.device)."""
    return device.read(request.cookies.get(device.DEVICE_COOKIE))


@blp.route("/voters/sms/codes", methods=["POST"])
@blp.arguments(SmsCodeRequestSchema)
@blp.response(202, SmsCodeSentSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="provider_disabled")
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error, sms_bad_number")
@blp.alt_response(
    429,
    schema=ErrorEnvelopeSchema,
    description="rate_limited (per phone 1/minute and 10/day, per address, per device), "
    "sms_frequency_limit (the provider's); with Retry-After",
)
@blp.alt_response(502, schema=ErrorEnvelopeSchema, description="sms_provider_refused")
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="sms_unavailable")
def send_code(body: dict[str, Any]) -> dict[str, Any]:
    """Text a one-time code to a mainland mobile number (phone voters).

    Anyone may call it (no token); 404 provider_disabled unless the SMS provider is configured.
    The code has six random digits, is valid 5 minutes and for one answer. Limits are counted
    per client address, per device cookie and per phone (1 a minute and 10 a day by default);
    past one: 429 rate_limited with Retry-After. Provider failures: 422 sms_bad_number, 429
    sms_frequency_limit, 502 sms_provider_refused, 503 sms_unavailable; an earlier code stays
    good when the provider fails. The answer shows the number masked."""
    return phone.send_code(
        body["phone"], address=client_address(), device=device_id(), campaign=body["campaign"]
    )


@blp.route("/voters/sms", methods=["POST"])
@rate_limit("SMS_VERIFY_IP_LIMIT")
@blp.arguments(SmsVerifySchema)
@blp.response(201, PhoneVoterTokenSchema)
@blp.alt_response(400, schema=ErrorEnvelopeSchema, description="sms_code_invalid (tries_left)")
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="invalid_voter (blocked)")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="provider_disabled")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="phone_in_use: the phone verified another voter; voter_has_other_phone: this "
    "WeChat voter verified another phone",
)
@blp.alt_response(410, schema=ErrorEnvelopeSchema, description="sms_code_expired (or used)")
@blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
def verify(body: dict[str, Any]) -> dict[str, Any]:
    """Answer the code: a phone-verified voter token.

    Anyone may call it; with a WeChat voter token (bearer, or the page cookie with its CSRF
    token) the same WeChat voter is upgraded (``upgraded: true``), else the answer is the
    phone's own voter. Every token from here carries ``pv: 1``, which campaigns requiring a
    phone (``rules.require_phone``) ask for. A right code is spent; a wrong one is 400
    sms_code_invalid with ``details.tries_left`` (the fifth wrong answer burns it); a used,
    burned or expired code is 410 sms_code_expired. One phone verifies one voter: 409
    phone_in_use (and 409 voter_has_other_phone for a WeChat voter that verified another
    phone). Answers per address are rate limited (429 rate_limited)."""
    claims = current_claims()
    _, token, upgraded = phone.verify(body["phone"], body["code"], claims)
    db.session.commit()
    return {
        "voter_token": token.token,
        "expires_at": token.expires_at,
        "phone_verified": True,
        "upgraded": upgraded,
    }
