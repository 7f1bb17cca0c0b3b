"""The vote route, lean: the one request a campaign's crowd sends most.

``POST /api/v1/campaigns/<slug>/votes`` skips flask-smorest's argument and response wrappers
(webargs parsing the body a second time, marshmallow loading and dumping): the body that
``core.http`` already parsed and checked is read from ``g``, checked field by field here, and the
script's answer is written with orjson. Its OpenAPI operation is written out below from the same
schemas (``VoteCreateSchema``, ``VoteResultSchema``); tests/voting/test_vote_fast_path.py
compares that document with what the route does. A body the quick check refuses goes through
``VoteCreateSchema`` itself, so a refusal reads exactly as on every other route.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, g, request
from marshmallow import ValidationError

from core import device
from core.errors import ValidationFailed
from core.http import client_address, parsed_json_body
from core.schemas import ErrorEnvelopeSchema
from voting import challenges, identity
from voting.cast import cast_vote
from voting.schemas import VoteCreateSchema, VoteResultSchema

NOMINEE_MAX = 16
IDEMPOTENCY_KEY_MAX = 64

_VOTE_SCHEMA = VoteCreateSchema()


def plain_nominee(body: Any) -> str | None:
    """The nominee of a body that is exactly ``{"nominee": "<1 to 16 printable characters>"}``
    (what ``VoteCreateSchema`` accepts), else None."""
    if type(body) is dict and len(body) == 1:
        value = body.get("nominee")
        if (
            type(value) is str
            and 0 < len(value) <= NOMINEE_MAX
            and all(ord(ch) >= 32 and not 0xD800 <= ord(ch) <= 0xDFFF for ch in value)
        ):
            return value
    return None


def _nominee(body: Any) -> str:
    """The body's nominee number; a body the quick check refuses goes through the schema, so
    its 422 reads as on every route."""
    quick = plain_nominee(body)
    if quick is not None:
        return quick
    try:
        return str(_VOTE_SCHEMA.load(body if body is not None else {})["nominee"])
    except ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise ValidationFailed(details={"fields": fields}) from exc


def vote(slug: str) -> Response:
    """Cast one vote: checked and counted by one Redis script, no SQL on this path.

    The script also enforces the hard per-address and per-voter limits per minute
    (ZUIMEI_VOTE_IP_PER_MINUTE, ZUIMEI_VOTE_VOTER_PER_MINUTE): 429 rate_limited with Retry-After.

    Past the campaign's per-address soft limit the answer is 428 challenge_required: solve a
    challenge (POST /challenges) and send its pass in the X-Challenge-Pass header. The soft
    limit counts each browser holding the page's device cookie on its own, and the votes of
    browsers without one together, so the phones behind one Wi-Fi or NAT are not counted as one.

    The H5 page votes here with its cookie: then the X-CSRF-Token header is required (403
    csrf_failed without it).

    A campaign restricted to regions (rules.regions, 地区限制) refuses an address the offline
    IP data places outside them: 403 region_restricted, naming the allowed regions. Addresses the
    data cannot place (IPv6, private, unknown) may vote."""
    number = _nominee(parsed_json_body())  # 422 first, as on every route with a body
    voter = identity.current_voter()
    ip = client_address()
    headers = request.headers
    key = headers.get("Idempotency-Key", "").strip()[:IDEMPOTENCY_KEY_MAX] or None
    challenge = headers.get("X-Challenge-Pass")
    # The device is the browser's signed device cookie (core.device), never a header the client
    # writes: X-Device-Fingerprint is not read (anyone could frame a rival with it).
    browser = device.read(request.cookies.get(device.DEVICE_COOKIE))
    answer, replayed = cast_vote(
        slug,
        voter,
        number,
        idempotency_key=key,
        ip=ip,
        device=browser or voter.get("d"),
        browser_device=browser,
        user_agent=headers.get("User-Agent"),
        has_pass=bool(challenge) and challenges.has_valid_pass(challenge, voter, ip),
    )
    response = Response(orjson.dumps(answer), status=201, mimetype="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    g.vote_status = answer.get("status")
    return response


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": ErrorEnvelopeSchema}},
    }


# The operation as flask-smorest documents it (voting/routes.py registers the view with it).
vote._apidoc = {  # type: ignore[attr-defined]
    "manual_doc": {
        "summary": "Cast one vote for a nominee",
        "description": (
            "Voters only: a voter token from WeChat (`/wechat/oauth/start`), a phone "
            "(`/voters/sms`) or, in demos, a device (`/voters/device`), sent as "
            "`Authorization: Bearer …` or as the H5 page's cookie (then the `X-CSRF-Token` "
            "header is required: 403 csrf_failed). The voter is read from the token only; a "
            "voter id in the body is refused (422).\n\nOne Redis script checks and counts the "
            "vote, no SQL on this path; the answer says whether it counts at once (`valid`) or "
            "is held for the committee's review (`pending`, when the nominee's pace explodes). "
            "Refusals, in the order they are checked: a blocked voter (403 voter_blocked), the "
            "hard per-address and per-voter limits per minute (429 rate_limited with "
            "Retry-After), the voting window (403 voting_closed), the nominee (404 "
            "nominee_not_found; 403 nominee_frozen), the daily quotas in the campaign's time "
            "zone (429 daily_quota_exhausted, nominee_daily_limit), the per-address soft limit "
            "(428 challenge_required: solve `POST /challenges` and send the pass as "
            "`X-Challenge-Pass`). Also 403 region_restricted (地区限制) and phone_required (the "
            "campaign requires a verified phone).\n\nSend an `Idempotency-Key` (up to 64 "
            "characters) with every vote and the same key when retrying after a timeout, a "
            "dropped connection or a 503: a repeat answers the first answer again "
            "(`Idempotent-Replayed: true`) and counts nothing. If Redis does not answer the "
            "vote is refused with 503, never counted unchecked."
        ),
        "security": [{"bearerAuth": []}],
        "parameters": [
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
                "description": "a repeat returns the first answer and counts nothing",
            },
            {
                "in": "header",
                "name": "X-Challenge-Pass",
                "required": False,
                "schema": {"type": "string"},
                "description": "the pass earned by solving a challenge after 428",
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": VoteCreateSchema, "example": {"nominee": "D001"}}
            },
        },
        "responses": {
            "201": {
                "description": "Created (Idempotent-Replayed: true on a repeated key)",
                "content": {"application/json": {"schema": VoteResultSchema}},
            },
            "401": _error("invalid_voter"),
            "403": _error(
                "voting_closed, nominee_frozen, voter_blocked, csrf_failed, region_restricted, "
                "phone_required (the campaign requires a verified phone: POST /voters/sms)"
            ),
            "404": _error("campaign_not_found, nominee_not_found"),
            "422": _error("validation_error: the body is not {nominee: <1 to 16 characters>}"),
            "428": _error("challenge_required"),
            "429": _error("daily_quota_exhausted, nominee_daily_limit, rate_limited"),
            "503": _error("service_unavailable: the vote is not counted"),
            "default": "DEFAULT_ERROR",
        },
    }
}
