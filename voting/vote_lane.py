"""The vote's own lane: ``POST /api/v1/campaigns/<slug>/votes`` answered beneath Flask.

A vote is the one request a campaign's crowd sends most, and Flask's machinery around it (the
request context, URL matching, the session, the before/after hooks, the signals) cost more than
the vote itself: about 0.5 ms of the 0.9 ms a vote took in-process against 0.23 ms for
``/healthz`` (docs/capacity.md). This WSGI middleware takes the plain vote — the form every
phone sends — straight to ``voting.cast.cast_vote`` inside an app context and writes the same
answer, headers, metrics and access line the Flask view (``voting.vote_route.vote``) would.

What the lane takes, checked before anything is counted (anything else goes to Flask unchanged,
body included, so every refusal of an unusual request reads exactly as before):

- ``POST`` to ``/api/v1/campaigns/<slug>/votes`` with a slug of letters, digits, ``-``/``_``;
- ``Content-Type: application/json`` and a ``Content-Length`` of 1 to 1,024 bytes (no chunked
  body);
- ``Authorization: Bearer <voter token>``, or the H5 page's voter cookie with a matching
  ``X-CSRF-Token`` header; the token must verify (a bad token or a failed CSRF check goes to
  Flask, which says why);
- no ``X-Challenge-Pass`` header;
- a body that is exactly ``{"nominee": "<1 to 16 printable characters>"}``.

From there the lane answers itself: 201 with the script's answer, or the script's refusal
(403/404/429/428, 503 when Redis does not answer) as the same error envelope. Nothing is run
twice: once the script has run, the answer is the lane's.

``ZUIMEI_VOTE_LANE=0`` turns it off (every vote then goes through the Flask view);
``tests/voting/test_vote_lane.py`` sends the same requests both ways and compares the answers.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import redis
from flask import Flask, Response, g
from werkzeug.http import parse_cookie

from core import device
from core.auth import read_voter_token
from core.errors import HTTP_CODES, AppError, error_response
from core.extensions import sqlite_write_intent
from core.http import address_of, request_id
from core.logs import log_access
from core.metrics import HTTP_SECONDS
from core.web import CSRF_COOKIE, CSRF_HEADER, VOTER_COOKIE, csrf_matches
from voting.cast import cast_vote
from voting.metrics import SCRIPT_OUTCOMES, VOTES
from voting.vote_route import IDEMPOTENCY_KEY_MAX, plain_nominee

log = logging.getLogger("zuimei.voting")

ENDPOINT = "voting.vote"
BODY_MAX = 1024
_PATH = re.compile(r"/api/v1/campaigns/([A-Za-z0-9_-]{1,64})/votes")
_CSRF_HEADER = "HTTP_" + CSRF_HEADER.upper().replace("-", "_")

# The metrics' children by label values (``labels()`` takes a lock and builds a key each time).
_timers: dict[int, Any] = {}
_counters: dict[tuple[str, str], Any] = {}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _bearer(environ: dict[str, Any]) -> str | None:
    scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def _nominee(body: bytes) -> str | None:
    """The nominee of a plain vote's body (``vote_route.plain_nominee``), else None."""
    try:
        return plain_nominee(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


class _Created:
    """A counted vote's 201, as a WSGI app: its JSON body and its headers."""

    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.body = body
        self.headers = headers

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("201 CREATED", self.headers)
        return [self.body]


class VoteLane:
    """WSGI middleware: plain votes to ``cast_vote`` directly, everything else to ``inner``."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.enabled = bool(app.config.get("VOTE_LANE", True))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.enabled and environ.get("REQUEST_METHOD") == "POST":
            match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None:
                response = self._take(environ, match.group(1))
                if response is not None:
                    return response(environ, start_response)
        return self.inner(environ, start_response)

    def _take(self, environ: dict[str, Any], slug: str) -> Response | _Created | None:
        """The answer to a plain vote, or None to leave the request to Flask."""
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type.partition(";")[0].strip().lower() != "application/json":
            return None
        if "HTTP_TRANSFER_ENCODING" in environ or "HTTP_X_CHALLENGE_PASS" in environ:
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= BODY_MAX:
            return None
        cookies = parse_cookie(environ["HTTP_COOKIE"]) if "HTTP_COOKIE" in environ else {}
        token = _bearer(environ)
        csrf: tuple[str, str] | None = None
        if token is None:  # the H5 page's vote: its cookie, with the CSRF token in a header
            token = cookies.get(VOTER_COOKIE)
            if not token:
                return None
            csrf = (cookies.get(CSRF_COOKIE, ""), environ.get(_CSRF_HEADER, ""))
        body = environ["wsgi.input"].read(length)
        # Flask reads the body again if the lane leaves the request to it.
        environ["wsgi.input"] = io.BytesIO(body)
        if len(body) != length:
            return None
        number = _nominee(body)
        if number is None:
            return None
        started = time.perf_counter()
        with self.app.app_context():
            if csrf is not None and not csrf_matches(*csrf):
                return None  # the view refuses it (403 csrf_failed)
            try:
                voter = read_voter_token(token)
            except AppError:
                return None  # the view explains (401 invalid_voter)
            return self._vote(environ, cookies, slug, number, voter, started)

    def _vote(
        self,
        environ: dict[str, Any],
        cookies: Mapping[str, str],
        slug: str,
        number: str,
        voter: dict[str, Any],
        started: float,
    ) -> Response | _Created:
        g.request_id = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        sqlite_write_intent.set(True)
        key = environ.get("HTTP_IDEMPOTENCY_KEY", "").strip()[:IDEMPOTENCY_KEY_MAX] or None
        browser = device.read(cookies.get(device.DEVICE_COOKIE))
        outcome = "accepted"
        try:
            answer, replayed = cast_vote(
                slug,
                voter,
                number,
                idempotency_key=key,
                ip=address_of(environ),
                device=browser or voter.get("d"),
                browser_device=browser,
                user_agent=environ.get("HTTP_USER_AGENT"),
            )
        except AppError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
            outcome = exc.code
        except Exception as exc:  # what core.errors answers for the Flask view
            if isinstance(exc, redis.RedisError | ConnectionError):
                log.error("redis unavailable on POST %s: %s", environ.get("PATH_INFO"), exc)
                status = 503
            else:
                log.exception(
                    "unhandled error on POST %s (request_id=%s)",
                    environ.get("PATH_INFO"),
                    g.request_id,
                )
                status = 500
            code, message = HTTP_CODES[status]
            response = error_response(status, code, message)
            outcome = code
        else:
            # The common answer is written straight to WSGI, without werkzeug's Response and
            # Headers (their per-header checks showed in the lane's profile).
            body = orjson.dumps(answer)
            fields = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *_common_headers(),
            ]
            if replayed:
                fields.append(("Idempotent-Replayed", "true"))
                outcome = "replayed"
            elif answer.get("status") == "pending":
                outcome = "held"
            self._observe(environ, slug, 201, outcome, started)
            return _Created(body, fields)
        for name, value in _common_headers():
            response.headers[name] = value  # replaced, not added beside one already set
        self._observe(environ, slug, response.status_code, outcome, started)
        return response

    def _observe(
        self, environ: dict[str, Any], slug: str, status: int, outcome: str, started: float
    ) -> None:
        """What ``core.metrics`` and ``core.logs`` record of a request, for this one."""
        try:
            seconds = time.perf_counter() - started
            timer = _timers.get(status)
            if timer is None:
                timer = HTTP_SECONDS.labels(ENDPOINT, "POST", f"{status // 100}xx")
                _timers[status] = timer
            timer.observe(seconds)
            label = (slug if outcome in SCRIPT_OUTCOMES else "-", outcome)
            counter = _counters.get(label)
            if counter is None:
                counter = _counters[label] = VOTES.labels(*label)
            counter.inc()
            if self.app.config.get("ACCESS_LOG"):
                path = environ.get("PATH_INFO", "")
                log_access(
                    "POST",
                    path,
                    status,
                    round(seconds * 1000, 2),
                    ENDPOINT,
                    environ.get("REMOTE_ADDR"),
                )
        except Exception:
            log.exception("metrics: could not observe a vote")


def install(app: Flask) -> None:
    """Put the lane in front of the app's WSGI callable (before ProxyFix wraps it)."""
    app.wsgi_app = VoteLane(app, app.wsgi_app)  # type: ignore[method-assign]


def _common_headers() -> tuple[tuple[str, str], ...]:
    """The headers every answer of the lane carries, the 201 and the refusals alike."""
    return (
        ("X-Request-ID", g.request_id),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    )
