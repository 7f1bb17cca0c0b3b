"""The first-party device cookie: a random id the server issues and signs, HttpOnly.

A phone's browser keeps it across visits and identities, so the fraud detectors can tell one
phone casting many identities' votes (a phone farm, 群控) from many phones behind one address
(a hospital's Wi-Fi, a carrier's NAT), without trusting anything the client says about itself:

- the client cannot forge one (the HMAC covers the id and its issue time) and cannot frame a
  rival with one (a vote carries the device of the browser that sent it, not a device it
  names); a header such as ``X-Device-Fingerprint`` is never read for this;
- page scripts cannot read or copy it (HttpOnly);
- the public pages stay cacheable: it is set by the page script's beacon
  (``POST /c/<slug>/beacon``), never by a cached body.

Value: ``<id>.<issued, hex epoch seconds>.<signature>``; ``read`` returns the id, or None for
anything that does not verify (the vote then simply carries no device)."""

from __future__ import annotations

import base64
import hmac
import secrets
import time

from flask import Response

from core.auth import keyed_digest
from core.web import cookie_secure

DEVICE_COOKIE = "zm_dev"
# Browsers keep a cookie at most 400 days; a year covers any campaign.
DEVICE_COOKIE_MAX_AGE = 365 * 86400
_MAX_LEN = 80


def _signature(payload: str) -> str:
    digest = keyed_digest("device", payload)
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def issue(now: float | None = None) -> tuple[str, str]:
    """A new device: (id, signed cookie value)."""
    device_id = secrets.token_urlsafe(12)
    payload = f"{device_id}.{int(now if now is not None else time.time()):x}"
    return device_id, f"{payload}.{_signature(payload)}"


def read(value: str | None) -> str | None:
    """The device id of a cookie value the server signed, else None."""
    if not value or len(value) > _MAX_LEN or value.count(".") != 2:
        return None
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature, _signature(payload)):
        return None
    return payload.partition(".")[0]


def set_cookie(response: Response, value: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_MAX_AGE,
        httponly=True,
        secure=cookie_secure(),
        samesite="Lax",
        path="/",
    )
