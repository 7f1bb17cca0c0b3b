"""Patients' phone numbers as the 个人信息保护法 expects: encrypted at rest, hashed for look-ups,
masked on every page and export.

The key is ``ZUIMEI_PII_KEY`` (32 random bytes, 64 hex digits or URL-safe base64). Without it
development derives one from ``SECRET_KEY``; production refuses to store a number (503).

Cipher ``g1``: AES-256-GCM (the ``cryptography`` package) under a key derived from the master
key for this purpose, a 96-bit random nonce per number, the cipher's name as associated data.
The stored text names its cipher (``g1.``), so a later cipher can be added beside it and old
values still read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from core.auth import keyed_digest
from core.errors import AppError, ServiceUnavailable
from core.sms import mask, normalise

__all__ = ["decrypt", "encrypt", "mask", "normalise", "phone_hash"]

_VERSION = b"g1"
_NONCE = 12
_TAG = 16


class PiiKeyMissing(ServiceUnavailable):
    code = "pii_key_missing"
    message = "个人信息加密密钥未配置，暂不能保存手机号"


class PiiUnreadable(AppError):
    status, code, message = 500, "pii_unreadable", "加密数据无法解读（密钥不符或数据损坏）"


def _master_key() -> bytes:
    raw = current_app.config.get("PII_KEY")
    if raw not in (None, ""):
        text = str(raw).strip()
        try:
            key = bytes.fromhex(text) if len(text) == 64 else b""
        except ValueError:
            key = b""
        if not key:
            try:
                key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                key = b""
        if len(key) < 32:
            raise PiiKeyMissing("ZUIMEI_PII_KEY 需为 32 字节的随机密钥", code="pii_key_invalid")
        return key
    if current_app.config.get("ENV_NAME") == "production":
        raise PiiKeyMissing()
    return keyed_digest("appraisal-pii-dev-key", "v1")


def _cipher() -> AESGCM:
    return AESGCM(hmac.new(_master_key(), b"zuimei.pii.aes-gcm", hashlib.sha256).digest())


def encrypt(phone: str) -> str:
    """The number sealed for storage: ``g1.<base64url(nonce | ciphertext and tag)>``."""
    nonce = secrets.token_bytes(_NONCE)
    sealed = _cipher().encrypt(nonce, phone.encode(), _VERSION)
    return "g1." + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decrypt(sealed: str) -> str:
    """The number back; PiiUnreadable when the key is not the one it was sealed with."""
    version, _, body = sealed.partition(".")
    if version != _VERSION.decode():
        raise PiiUnreadable(details={"cipher": version})
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PiiUnreadable() from exc
    if len(raw) < _NONCE + _TAG:
        raise PiiUnreadable()
    try:
        plain = _cipher().decrypt(raw[:_NONCE], raw[_NONCE:], _VERSION)
    except InvalidTag as exc:
        raise PiiUnreadable() from exc
    return plain.decode()


def phone_hash(phone: str) -> str:
    """The keyed hash of a normalised number: opt-outs and duplicates are found by it."""
    return keyed_digest("appraisal-phone", phone).hex()
