"""Phone numbers at rest: sealed, tamper-evident, keyed; masked; no key in production."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from flask import Flask

from appraisal import pii
from core.errors import AppError


def test_a_number_is_sealed_and_read_back(ctx: Flask) -> None:
    sealed = pii.encrypt("13812341234")
    assert sealed.startswith("g1.") and "13812341234" not in sealed
    assert pii.decrypt(sealed) == "13812341234"
    # A fresh nonce each time: the same number never seals the same way twice.
    assert pii.encrypt("13812341234") != sealed


def test_a_tampered_value_is_refused(ctx: Flask) -> None:
    sealed = pii.encrypt("13812341234")
    body = sealed[3:]
    flipped = body[:30] + ("A" if body[30] != "A" else "B") + body[31:]
    with pytest.raises(AppError) as caught:
        pii.decrypt("g1." + flipped)
    assert caught.value.code == "pii_unreadable"
    with pytest.raises(AppError):
        pii.decrypt("g9." + body)


def test_another_key_cannot_read_it(make_app: Callable[..., Flask]) -> None:
    one = make_app(PII_KEY=secrets.token_hex(32))
    two = make_app(PII_KEY=secrets.token_urlsafe(32))
    with one.app_context():
        sealed = pii.encrypt("13998765432")
        assert pii.decrypt(sealed) == "13998765432"
    with two.app_context(), pytest.raises(AppError) as caught:
        pii.decrypt(sealed)
    assert caught.value.code == "pii_unreadable"


def test_a_short_key_or_none_in_production_is_refused(make_app: Callable[..., Flask]) -> None:
    short = make_app(PII_KEY="abcd")
    with short.app_context(), pytest.raises(AppError) as caught:
        pii.encrypt("13812341234")
    assert caught.value.code == "pii_key_invalid"
    app = make_app()
    with app.app_context():
        app.config["ENV_NAME"] = "production"
        with pytest.raises(AppError) as caught:
            pii.encrypt("13812341234")
        assert caught.value.code == "pii_key_missing" and caught.value.status == 503


def test_mask_and_hash(ctx: Flask) -> None:
    assert pii.mask("13812341234") == "138****1234"
    assert pii.phone_hash("13812341234") == pii.phone_hash("13812341234")
    assert pii.phone_hash("13812341234") != pii.phone_hash("13812341235")
    assert "13812341234" not in pii.phone_hash("13812341234")
