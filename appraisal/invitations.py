"""Sending invitations: claim due ones, text each through core.sms at a bounded rate, record
what the provider said.

An invitation is ``queued`` when its encounter is registered. A dispatch run (an RQ job,
enqueued after each upload and every minute by the scheduler) claims up to
``APPRAISAL_SMS_BATCH`` due invitations (``queued``, or ``retrying`` whose time has come) by a
conditional update to ``sending`` committed before anything is sent, so two runs never text
the same patient. Each is then sent at most ``APPRAISAL_SMS_PER_SECOND`` a second over all
workers (a per-second counter in Redis), and ends ``sent`` (with the provider's message id),
``retrying`` after a transient failure (after ``APPRAISAL_SMS_RETRY_SECONDS``, doubled each
time, at most ``APPRAISAL_SMS_MAX_ATTEMPTS`` tries) or ``failed`` (a refusal, or out of tries).
A phone that opted out meanwhile is not texted (``opted_out``). A run that died leaves
``sending`` rows; after ten minutes they are put back as ``retrying`` (the message may have
gone: at most one duplicate text, never a lost one).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from appraisal import pii
from appraisal.models import Encounter, Invitation, OptOut, Programme
from appraisal.services import link_path
from campaigns.models import Unit
from core import sms
from core.clock import utcnow
from core.extensions import db, redis_store

log = logging.getLogger("zuimei.appraisal")

STALE_SENDING = timedelta(minutes=10)


def link_base() -> str:
    base = current_app.config.get("APPRAISAL_LINK_BASE")
    if base:
        return str(base).rstrip("/")
    server = current_app.config.get("SERVER_NAME")
    if server:
        return f"{current_app.config.get('PREFERRED_URL_SCHEME') or 'https'}://{server}"
    return "http://127.0.0.1:8000"


def _wait_for_slot() -> None:
    """Block until this send fits in the per-second budget shared by every worker."""
    per_second = int(current_app.config.get("APPRAISAL_SMS_PER_SECOND") or 0)
    if per_second <= 0:
        return
    while True:
        now = time.time()
        key = redis_store.key("appraisal", "sms-rate", int(now))
        pipe = redis_store.client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 3)
        count = pipe.execute()[0]
        if count <= per_second:
            return
        time.sleep(max(0.005, 1 - now % 1))


def release_stale(now: datetime) -> int:
    result = db.session.execute(
        update(Invitation)
        .where(Invitation.status == "sending", Invitation.claimed_at < now - STALE_SENDING)
        .values(status="retrying", next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(now: datetime, batch: int) -> list[int]:
    """Take up to ``batch`` due invitations for this run (committed)."""
    release_stale(now)
    ids = list(
        db.session.scalars(
            select(Invitation.id)
            .where(
                Invitation.status.in_(("queued", "retrying")),
                Invitation.next_attempt_at <= now,
            )
            .order_by(Invitation.next_attempt_at, Invitation.id)
            .limit(batch)
        )
    )
    taken = []
    for invitation_id in ids:
        result = db.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id, Invitation.status.in_(("queued", "retrying")))
            .values(status="sending", claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            taken.append(invitation_id)
    db.session.commit()
    return taken


def _prepare(invitation: Invitation) -> tuple[str, list[str]] | str:
    """(phone, template params) to send, or the outcome when nothing is to be sent."""
    encounter: Encounter = invitation.encounter
    if encounter.phone_cipher is None or encounter.phone_hash is None:
        invitation.status, invitation.error_code = "failed", "purged"
        return "failed"
    if db.session.get(OptOut, encounter.phone_hash) is not None:
        invitation.status = "opted_out"
        return "opted_out"
    unit = db.session.get(Unit, encounter.unit_id)
    programme = db.session.get(Programme, encounter.programme_id)
    if programme is None or programme.status != "active":
        invitation.status, invitation.error_code = "failed", "programme_closed"
        return "failed"
    phone = pii.decrypt(encounter.phone_cipher)
    return phone, [unit.name if unit else "", link_base() + link_path(encounter)]


def _record(invitation: Invitation, outcome: sms.SendResult | sms.SmsError) -> str:
    invitation.attempts += 1
    if isinstance(outcome, sms.SmsError):
        invitation.error_code = outcome.code
        invitation.provider_code = outcome.provider_code
        max_attempts = int(current_app.config.get("APPRAISAL_SMS_MAX_ATTEMPTS") or 1)
        if outcome.transient and invitation.attempts < max_attempts:
            delay = int(current_app.config.get("APPRAISAL_SMS_RETRY_SECONDS") or 60)
            invitation.status = "retrying"
            invitation.next_attempt_at = utcnow() + timedelta(
                seconds=delay * 2 ** (invitation.attempts - 1)
            )
            return "retrying"
        invitation.status = "failed"
        return "failed"
    invitation.status = "sent"
    invitation.provider = outcome.provider
    invitation.message_id = outcome.message_id
    invitation.error_code = None
    invitation.provider_code = None
    invitation.sent_at = utcnow()
    return "sent"


def _send_one(invitation_id: int, provider: sms.SmsProvider, template: str) -> str | None:
    """One invitation, in two short transactions around the provider's call: no database
    lock (SQLite's write lock, a PostgreSQL transaction) is held while the text goes out."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.status != "sending":
        db.session.rollback()
        return None
    prepared = _prepare(invitation)
    if isinstance(prepared, str):
        invitation.claimed_at = None
        db.session.commit()
        return prepared
    db.session.commit()  # ends the read; the claim ("sending") keeps others off it
    phone, params = prepared
    _wait_for_slot()
    try:
        outcome: sms.SendResult | sms.SmsError = provider.send(phone, params, template=template)
    except sms.SmsError as exc:
        outcome = exc
    invitation = db.session.get(Invitation, invitation_id)
    assert invitation is not None
    status = _record(invitation, outcome)
    invitation.claimed_at = None
    db.session.commit()  # each message's fate is kept as soon as it is known
    return status


def dispatch(batch: int | None = None) -> dict[str, int]:
    """One run: claim due invitations and send them. Counts by outcome."""
    provider = sms.provider()
    template = current_app.config.get("APPRAISAL_SMS_TEMPLATE_ID")
    counts: dict[str, int] = {}
    if provider is None or not template:
        return counts
    size = batch or int(current_app.config.get("APPRAISAL_SMS_BATCH") or 500)
    for invitation_id in claim(utcnow(), size):
        outcome = _send_one(invitation_id, provider, str(template))
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        log.info("appraisal invitations: %s", counts)
    return counts


# Replies that mean 退订 (Tencent Cloud's own opt-out words and the usual Chinese ones).
OPT_OUT_WORDS = {"td", "t", "n", "退订", "退", "取消", "不要再发", "unsubscribe", "stop"}


def record_receipt(message_id: str, delivered: bool, at: datetime | None = None) -> bool:
    """The provider's delivery receipt for one message (by its serial number)."""
    invitation = db.session.scalar(select(Invitation).where(Invitation.message_id == message_id))
    if invitation is None:
        return False
    invitation.delivery = "delivered" if delivered else "undelivered"
    invitation.delivered_at = at or utcnow()
    return True


def is_opt_out_reply(text: str) -> bool:
    return (text or "").strip().strip("。.!！").lower() in OPT_OUT_WORDS
