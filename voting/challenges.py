"""Challenges: the captcha a voter solves after 428 challenge_required, and the pass it earns."""

from __future__ import annotations

import base64
import hmac
import io
import secrets
from datetime import timedelta
from typing import Any

import redis
from flask import current_app
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from core.auth import issue_token, keyed_digest, read_token
from core.errors import AppError, ServiceUnavailable
from core.extensions import redis_store
from core.types import utcnow

# No 0/O, 1/I, 2/Z, 5/S, 8/B: characters a person on a small screen cannot mix up.
CAPTCHA_ALPHABET = "ACDEFHJKLMNPRTUVWXY34679"


def _captcha_text() -> str:
    return "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(4))


def _captcha_png(text: str) -> bytes:
    rng = secrets.SystemRandom()
    width, height = 176, 60
    image = Image.new("RGB", (width, height), (246, 246, 240))
    draw = ImageDraw.Draw(image)
    for _ in range(6):  # background strokes
        draw.line(
            [(rng.randint(0, width), rng.randint(0, height)) for _ in range(2)],
            fill=(rng.randint(150, 210), rng.randint(150, 210), rng.randint(150, 210)),
            width=2,
        )
    font = ImageFont.load_default(size=38)
    for index, char in enumerate(text):
        glyph = Image.new("RGBA", (48, 56), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text(
            (8, 2), char, font=font, fill=(rng.randint(10, 90), rng.randint(10, 90), 120, 255)
        )
        glyph = glyph.rotate(rng.uniform(-28, 28), resample=Image.Resampling.BICUBIC, expand=False)
        image.paste(glyph, (8 + index * 36 + rng.randint(-4, 4), rng.randint(-2, 6)), glyph)
    for _ in range(200):  # speckle
        draw.point(
            (rng.randint(0, width - 1), rng.randint(0, height - 1)),
            fill=(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)),
        )
    draw.line([(0, rng.randint(20, 40)), (width, rng.randint(20, 40))], fill=(60, 60, 120), width=2)
    image = image.filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _answer_digest(challenge_id: str, answer: str) -> str:
    return keyed_digest(challenge_id, answer.strip().upper()).hex()


def new_challenge() -> dict[str, Any]:
    """A captcha image; its answer is kept (as a keyed digest) in Redis for a short while."""
    challenge_id = secrets.token_urlsafe(18)
    text = _captcha_text()
    ttl = current_app.config["CHALLENGE_TTL"]
    try:
        redis_store.client.set(
            redis_store.key("challenge", challenge_id), _answer_digest(challenge_id, text), ex=ttl
        )
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    png = base64.b64encode(_captcha_png(text)).decode()
    return {
        "challenge_id": challenge_id,
        "image": f"data:image/png;base64,{png}",
        "expires_at": utcnow() + timedelta(seconds=ttl),
    }


def answer_challenge(challenge_id: str, answer: str, voter: dict[str, Any], ip: str) -> Any:
    """One try per challenge: right earns a short-lived pass bound to this voter and address."""
    try:
        stored = redis_store.client.getdel(redis_store.key("challenge", challenge_id))
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    if stored is None:
        raise AppError("验证码已过期，请刷新后重试", code="challenge_expired", status=410)
    if not hmac.compare_digest(stored.decode(), _answer_digest(challenge_id, answer)):
        raise AppError("验证码不正确，请重试", code="challenge_failed", status=422)
    return issue_token(
        "pass", {"v": voter["sub"], "ip": ip}, current_app.config["CHALLENGE_PASS_TTL"]
    )


def has_valid_pass(token: str | None, voter: dict[str, Any], ip: str) -> bool:
    if not token:
        return False
    try:
        claims = read_token("pass", token)
    except AppError:
        return False
    return claims.get("v") == voter["sub"] and claims.get("ip") == ip
