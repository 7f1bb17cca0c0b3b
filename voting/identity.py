"""Voter identity: voters made on the server, their signed tokens, and the caller's claims."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from sqlalchemy import select

from core.auth import issue_token, keyed_digest, read_voter_token
from core.errors import AppError, Forbidden, NotFound, Unauthorized
from core.extensions import db
from core.web import VOTER_COOKIE, request_credential
from voting.models import Voter, VoterPhone


def subject_hash(provider: str, value: str) -> str:
    """A keyed hash, so device ids and phone numbers never sit in the database in the clear."""
    return keyed_digest(provider, value).hex()


def voter_for(provider: str, subject: str) -> Voter:
    voter = db.session.scalar(
        select(Voter).where(Voter.provider == provider, Voter.subject == subject)
    )
    if voter is None:
        voter = Voter(provider=provider, subject=subject)
        db.session.add(voter)
        db.session.flush()
    if voter.blocked:
        raise Forbidden("该投票身份已被停用", code="invalid_voter")
    return voter


def device_voter(device_id: str) -> tuple[Voter, Any]:
    if not current_app.config["DEVICE_IDENTITY"]:
        raise NotFound("未启用设备身份", code="provider_disabled")
    subject = subject_hash("device", device_id)
    voter = voter_for("device", subject)
    return voter, voter_token(voter, device=subject[:32])


def has_verified_phone(voter: Voter) -> bool:
    """Whether the voter proved a phone number before (``voter_phones``): a WeChat voter who
    logs in again keeps its ``pv`` claim without a new code."""
    return (
        db.session.scalar(select(VoterPhone.voter_id).where(VoterPhone.voter_id == voter.id))
        is not None
    )


def voter_token(voter: Voter, device: str | None = None, *, phone_verified: bool = False) -> Any:
    """The voter's signed token: ``sub`` (id), ``p`` (provider), ``c`` (made, epoch ms), ``d``
    (device, when known) and ``pv: 1`` once the voter has proved a phone number by a one-time
    code (voting/phone.py), so the vote path needs no look-up to apply a phone rule."""
    claims: dict[str, Any] = {
        "sub": voter.id,
        "p": voter.provider,
        "c": int(voter.created_at.timestamp() * 1000),
    }
    if device:
        claims["d"] = device
    if phone_verified:
        claims["pv"] = 1
    return issue_token("voter", claims, current_app.config["VOTER_TOKEN_TTL"])


def current_voter() -> dict[str, Any]:
    """The voter's claims from the signed token (verified once per request); an id sent in a
    body is never looked at."""
    if "voter_claims" in g:
        return g.voter_claims  # type: ignore[no-any-return]
    token = request_credential(VOTER_COOKIE)
    if not token:
        raise Unauthorized("请先完成身份验证", code="invalid_voter")
    try:
        g.voter_claims = read_voter_token(token)
    except AppError as exc:
        raise Unauthorized("投票身份无效或已过期，请重新进入", code="invalid_voter") from exc
    return g.voter_claims  # type: ignore[no-any-return]
