"""Sending invitations: claim due ones, text each through core.sms at a bounded rate, record
what the provider said.

An invitation is ``queued`` when its encounter is registered. A dispatch run claims up to
``APPRAISAL_SMS_BATCH`` due invitations (``queued``, or ``retrying`` whose time has come) by one
conditional ``UPDATE … RETURNING`` to ``sending`` committed before anything is sent, so two runs
never text the same patient, and reads them in a few queries; the RQ jobs of appraisal/jobs.py
go on batch after batch, the next one claimed and read while the last texts of the one before
are on their way. Each is then sent at most ``APPRAISAL_SMS_PER_SECOND`` a second over all
workers (a per-second counter in Redis), a few at once, and ends ``sent`` (with the provider's
message id), ``retrying`` after a transient failure (after ``APPRAISAL_SMS_RETRY_SECONDS``,
doubled each time, at most ``APPRAISAL_SMS_MAX_ATTEMPTS`` tries) or ``failed`` (a refusal, or
out of tries); outcomes are written ``FLUSH_ROWS`` at a time in one executemany. Before sending,
the batch takes its places in the per-phone cap (``appraisal.phone_cap``, one short locked
transaction): an invitation whose phone had its share ends ``capped`` without a text. A phone
that opted out meanwhile is not texted (``opted_out``: checked when the batch is read and again
before each ``FLUSH_ROWS`` messages are handed to the sending threads). A run that died leaves
``sending`` rows (those whose outcome was not yet written); after ten minutes they are put back
as ``retrying`` (the message may have gone: at most one duplicate text, never a lost one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import bindparam, select, update

from appraisal import phone_cap, pii
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


class _Slots:
    """The per-second budget shared by every worker (a counter per second in Redis), taken a
    few slots at a time so that a fast run does not ask Redis before each message: at most a
    tenth of a second's budget (and never more than 50) is held by one run. Taken by the
    sending threads, each just before its message leaves (hence the lock, and the Redis client
    and key fixed when made: those threads have no app context)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.chunk = max(1, min(50, per_second // 10))
        self.second = -1
        self.held = 0
        self._lock = threading.Lock()
        if per_second > 0:
            self._client = redis_store.client
            self._prefix = redis_store.key("appraisal", "sms-rate")

    def wait(self) -> None:
        """Block until one more send fits in the budget."""
        if self.per_second <= 0:
            return
        while True:
            with self._lock:
                now = time.time()
                if int(now) == self.second and self.held > 0:
                    self.held -= 1
                    return
                key = f"{self._prefix}:{int(now)}"
                pipe = self._client.pipeline(transaction=False)
                pipe.incrby(key, self.chunk)
                pipe.expire(key, 3)
                count = int(pipe.execute()[0])
                granted = min(self.chunk, self.per_second - (count - self.chunk))
                if granted > 0:
                    self.second, self.held = int(now), granted - 1
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


_CLAIMABLE = ("queued", "retrying")
# Outcomes are written this many at a time (or after FLUSH_SECONDS): a run that dies loses at
# most these and the texts on their way (SEND_THREADS), which stay "sending" and go out again
# after STALE_SENDING; texts handed over but not yet begun are then not sent at all.
FLUSH_ROWS = 100
FLUSH_SECONDS = 0.5
# Messages on their way at once (each a provider call in a thread of the run; the database is
# only touched by the run's own thread), and at most this many handed to those threads ahead.
SEND_THREADS = 4
AHEAD = 2 * FLUSH_ROWS


def claim(now: datetime, batch: int) -> list[int]:
    """Take up to ``batch`` due invitations for this run, in one conditional UPDATE … RETURNING
    (committed). A row another run took meanwhile no longer matches and is not returned.

    On PostgreSQL the due rows are picked ``FOR UPDATE SKIP LOCKED``: rows another run is
    claiming at this moment (its claim not yet committed) are passed over for the next ones.
    Without it, two claims at once picked the same first rows, the second waited for the first
    to commit and then found every one of them taken: an empty claim, and its run ended with
    plenty still due. SQLite lets one writer in at a time (claims never overlap there) and
    renders no FOR UPDATE."""
    release_stale(now)
    due = (
        select(Invitation.id)
        .where(Invitation.status.in_(_CLAIMABLE), Invitation.next_attempt_at <= now)
        .order_by(Invitation.next_attempt_at, Invitation.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    taken = db.session.scalars(
        update(Invitation)
        .where(Invitation.id.in_(due.scalar_subquery()), Invitation.status.in_(_CLAIMABLE))
        .values(status="sending", claimed_at=now, updated_at=now)
        .returning(Invitation.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(taken)


@dataclass
class _Pending:
    """One claimed invitation, as read before sending (plain values: no ORM objects are kept)."""

    id: int
    attempts: int
    next_attempt_at: datetime
    phone_hash: str = ""
    programme_id: int = 0
    phone: str = ""
    params: list[str] = field(default_factory=list)


_OUTCOME_COLUMNS = (
    "status",
    "attempts",
    "next_attempt_at",
    "provider",
    "message_id",
    "error_code",
    "provider_code",
    "sent_at",
)


def _outcome_row(pending: _Pending, status: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "status": status,
        "attempts": pending.attempts,
        "next_attempt_at": pending.next_attempt_at,
        "provider": None,
        "message_id": None,
        "error_code": None,
        "provider_code": None,
        "sent_at": None,
    }
    row.update(values)
    row["b_id"] = pending.id
    return row


def _write(rows: list[dict[str, object]]) -> None:
    """Record outcomes in one executemany (only rows this run still holds) and commit."""
    if not rows:
        return
    table = Invitation.__table__
    now = utcnow()
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status == "sending")
        .values(
            {
                **{name: bindparam(name) for name in _OUTCOME_COLUMNS},
                "claimed_at": None,
                "updated_at": now,
            }
        ),
        rows,
    )
    db.session.commit()


def _prepare(ids: list[int]) -> tuple[list[_Pending], list[dict[str, object]]]:
    """Read the claimed invitations in a few queries: those to text (number decrypted, template
    parameters), and the outcomes of those with nothing to send."""
    rows = db.session.execute(
        select(
            Invitation.id,
            Invitation.attempts,
            Invitation.next_attempt_at,
            Encounter.id.label("encounter_id"),
            Encounter.link_nonce,
            Encounter.phone_cipher,
            Encounter.phone_hash,
            Encounter.unit_id,
            Encounter.programme_id,
        )
        .join(Encounter, Encounter.id == Invitation.encounter_id)
        .where(Invitation.id.in_(ids), Invitation.status == "sending")
        .order_by(Invitation.id)
    ).all()
    hashes = {r.phone_hash for r in rows if r.phone_hash is not None}
    opted = set(db.session.scalars(select(OptOut.phone_hash).where(OptOut.phone_hash.in_(hashes))))
    units = dict(
        db.session.execute(
            select(Unit.id, Unit.name).where(Unit.id.in_({r.unit_id for r in rows}))
        ).all()
    )
    active = set(
        db.session.scalars(
            select(Programme.id).where(
                Programme.id.in_({r.programme_id for r in rows}), Programme.status == "active"
            )
        )
    )
    base = link_base()
    to_send: list[_Pending] = []
    settled: list[dict[str, object]] = []
    for r in rows:
        pending = _Pending(r.id, r.attempts, r.next_attempt_at, r.phone_hash or "", r.programme_id)
        if r.phone_cipher is None or r.phone_hash is None:
            settled.append(_outcome_row(pending, "failed", error_code="purged"))
        elif r.phone_hash in opted:
            settled.append(_outcome_row(pending, "opted_out"))
        elif r.programme_id not in active:
            settled.append(_outcome_row(pending, "failed", error_code="programme_closed"))
        else:
            pending.phone = pii.decrypt(r.phone_cipher)
            link = link_path(SimpleNamespace(id=r.encounter_id, link_nonce=r.link_nonce))
            pending.params = [units.get(r.unit_id, ""), base + link]
            to_send.append(pending)
    return to_send, settled


def _opted_out_since(group: list[_Pending]) -> set[str]:
    """The numbers of ``group`` that opted out after the batch was read (one short read)."""
    hashes = {p.phone_hash for p in group}
    opted = set(db.session.scalars(select(OptOut.phone_hash).where(OptOut.phone_hash.in_(hashes))))
    db.session.commit()
    return opted


def _record(pending: _Pending, outcome: sms.SendResult | sms.SmsError) -> dict[str, object]:
    pending.attempts += 1
    if isinstance(outcome, sms.SmsError):
        codes = {"error_code": outcome.code, "provider_code": outcome.provider_code}
        max_attempts = int(current_app.config.get("APPRAISAL_SMS_MAX_ATTEMPTS") or 1)
        if outcome.transient and pending.attempts < max_attempts:
            delay = int(current_app.config.get("APPRAISAL_SMS_RETRY_SECONDS") or 60)
            pending.next_attempt_at = utcnow() + timedelta(
                seconds=delay * 2 ** (pending.attempts - 1)
            )
            return _outcome_row(pending, "retrying", **codes)
        return _outcome_row(pending, "failed", **codes)
    return _outcome_row(
        pending,
        "sent",
        provider=outcome.provider,
        message_id=outcome.message_id,
        sent_at=utcnow(),
    )


_UNSENT = ("failed", "opted_out")


class _Sender:
    """The sending side of a run: provider calls in ``SEND_THREADS`` threads (each takes its
    slot of the rate just before its message leaves), up to ``AHEAD`` messages handed to them
    at once so that they keep sending while this (the run's) thread writes outcomes or claims
    the next batch; outcomes settled in order here and written ``FLUSH_ROWS`` at a time. The
    places in the cap of those that ended without a text are given back with each write."""

    def __init__(self, provider: sms.SmsProvider, template: str, counts: dict[str, int]) -> None:
        self.provider = provider
        self.template = template
        self.counts = counts
        self.slots = _Slots(int(current_app.config.get("APPRAISAL_SMS_PER_SECOND") or 0))
        self.pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="appraisal-sms")
        self.in_flight: deque[tuple[_Pending, Future[sms.SendResult]]] = deque()
        self.written: list[dict[str, object]] = []
        self.unsent: list[tuple[int, int, str]] = []
        self.flushed = time.monotonic()

    def _send(self, pending: _Pending) -> sms.SendResult:  # in a sending thread
        self.slots.wait()
        return self.provider.send(pending.phone, pending.params, template=self.template)

    def send(self, to_send: list[_Pending]) -> None:
        """Hand a batch's messages over, ``FLUSH_ROWS`` at a time, each group checked for
        退订 again just before it is handed over (the first one was, when the batch was read).
        Returns with up to ``AHEAD`` messages still on their way."""
        for start in range(0, len(to_send), FLUSH_ROWS):
            group = to_send[start : start + FLUSH_ROWS]
            self._collect(AHEAD - len(group))
            if start:
                opted = _opted_out_since(group)
                for pending in group:
                    if pending.phone_hash in opted:
                        self._add(pending, _outcome_row(pending, "opted_out"))
                group = [p for p in group if p.phone_hash not in opted]
            for pending in group:
                self.in_flight.append((pending, self.pool.submit(self._send, pending)))
        self._collect(AHEAD)

    def _add(self, pending: _Pending, row: dict[str, object]) -> None:
        self.counts[str(row["status"])] = self.counts.get(str(row["status"]), 0) + 1
        self.written.append(row)
        if row["status"] in _UNSENT:
            self.unsent.append((pending.id, pending.programme_id, pending.phone_hash))
        if len(self.written) >= FLUSH_ROWS:
            self.flush()

    def _collect(self, keep: int) -> None:
        """Settle outcomes in order until at most ``keep`` messages are on their way (and those
        already answered); write them when ``FLUSH_ROWS`` are due or ``FLUSH_SECONDS`` passed."""
        while self.in_flight and (len(self.in_flight) > keep or self.in_flight[0][1].done()):
            pending, answer = self.in_flight.popleft()
            try:
                outcome: sms.SendResult | sms.SmsError = answer.result()
            except sms.SmsError as exc:
                outcome = exc
            self._add(pending, _record(pending, outcome))
        if self.written and time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        _write(self.written)
        # Places of the cap taken by invitations that ended without a text are given back.
        phone_cap.release(self.unsent)
        self.written, self.unsent, self.flushed = [], [], time.monotonic()

    def finish(self) -> None:
        self._collect(0)
        self.flush()
        self.pool.shutdown()

    def abandon(self) -> None:
        """The run failed: messages not yet on their way are not sent (their invitations stay
        ``sending`` and go out again after STALE_SENDING)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _take(ids: list[int], counts: dict[str, int]) -> list[_Pending]:
    """Read a claimed batch and take its places in the per-phone cap (for the whole batch at
    once: exact over all workers); writes the outcomes of those with nothing to send (and of
    those the cap stops: ``capped``). Returns those to text."""
    to_send, settled = _prepare(ids)
    db.session.commit()  # the read ends here; the claim ("sending") keeps others off these rows
    capped = phone_cap.reserve([(p.id, p.programme_id, p.phone_hash) for p in to_send])
    if capped:
        settled += [
            _outcome_row(p, "capped", error_code="phone_cap") for p in to_send if p.id in capped
        ]
        to_send = [p for p in to_send if p.id not in capped]
    _write(settled)
    for row in settled:
        counts[str(row["status"])] = counts.get(str(row["status"]), 0) + 1
    return to_send


def dispatch(batch: int | None = None, until: float | None = None) -> dict[str, int]:
    """Claim due invitations and send them: one batch, or (``until``, a ``time.monotonic()``
    deadline) batch after batch while any is due and the deadline has not passed, the next
    batch claimed and read while the last messages of the one before are on their way. Counts
    by outcome.

    The provider is called from ``SEND_THREADS`` threads; this thread alone uses the database,
    and no database lock (SQLite's write lock, a PostgreSQL transaction) is held while it waits
    for a text to go out: the claim, the read, the cap's reservation, each re-check of opt-outs
    and each write of outcomes are short transactions of their own."""
    provider = sms.provider()
    template = current_app.config.get("APPRAISAL_SMS_TEMPLATE_ID")
    counts: dict[str, int] = {}
    if provider is None or not template:
        return counts
    size = batch or int(current_app.config.get("APPRAISAL_SMS_BATCH") or 500)
    sender: _Sender | None = None
    try:
        while True:
            ids = claim(utcnow(), size)
            if ids:
                to_send = _take(ids, counts)
                sender = sender or _Sender(provider, str(template), counts)
                sender.send(to_send)
            if not ids or until is None or time.monotonic() >= until:
                break
        if sender is not None:
            sender.finish()
    except BaseException:
        if sender is not None:
            sender.abandon()
        raise
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
