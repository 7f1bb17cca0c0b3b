"""The ledger: the vote stream, its drain into the hash-chained votes table, the chain's check.

The drain's loop, which commits each batch before acknowledging its entries, is the drain job's
body (voting.jobs.drain_campaign); here are its steps, which flush and never commit.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import BigInteger, Integer, String, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from campaigns.models import Campaign
from core.errors import NotFound, ServiceUnavailable
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.types import utcnow
from voting.keys import CampaignKeys, ms
from voting.models import VOTE_STATUSES, LedgerHead, NomineeFreeze, QuarantinedVote, Vote
from voting.rewinds import floor_summary, rewind_summary, unacknowledged_count

log = logging.getLogger("zuimei.voting")

GENESIS = "0" * 64
DRAIN_GROUP = "drain"
# A quarantined entry keeps each raw field up to this many characters (the door bounds real
# votes far below it; only a crafted entry is longer).
RAW_FIELD_MAX = 4000
REASON_MAX = QuarantinedVote.__table__.c.reason.type.length

Entry = tuple[bytes, dict[bytes, bytes]]


class Unstorable(ValueError):
    """A ledger entry its table cannot hold as it is; the message says which field and why."""


@dataclass
class _Readable:
    """A stream entry read into the values of its row (a vote, or a freeze record)."""

    entry_id: bytes
    raw: dict[bytes, bytes]
    kind: str
    values: dict[str, Any]


def _limits(table: Table) -> tuple[dict[str, int], dict[str, int]]:
    """The text lengths and integer bounds of a table's columns."""
    text = {
        c.name: c.type.length for c in table.columns if isinstance(c.type, String) and c.type.length
    }
    bound = {
        c.name: 2**63 if isinstance(c.type, BigInteger) else 2**31
        for c in table.columns
        if isinstance(c.type, Integer)
    }
    return text, bound


# Checked before the insert, so that SQLite (which enforces no length) and PostgreSQL set aside
# the same entries, and with a reason that names the field.
_VOTE_LIMITS = _limits(Vote.__table__)  # type: ignore[arg-type]
_FREEZE_LIMITS = _limits(NomineeFreeze.__table__)  # type: ignore[arg-type]


def chain_hash(prev: str, row: dict[str, Any]) -> str:
    material = "|".join(
        [
            prev,
            row["id"],
            str(row["campaign_id"]),
            row["nominee_number"],
            str(row["voter_id"]),
            str(ms(row["at"])),
            row["ip"],
            row["device"] or "",
            row["written_status"],
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


def ensure_group(client: Any, stream: str) -> None:
    try:
        client.xgroup_create(stream, DRAIN_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def decode(fields: dict[bytes, bytes]) -> dict[str, str]:
    """A stream entry's fields as text; bytes that are not UTF-8 (only a crafted entry has
    them) are shown as escapes rather than stopping the reader."""
    return {
        k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace")
        for k, v in fields.items()
    }


def open_stream(slug: str) -> tuple[Any, CampaignKeys]:
    """The vote Redis and the campaign's keys, with the drain's consumer group in place."""
    keys = CampaignKeys.of(slug)
    client = redis_store.votes
    ensure_group(client, keys.ledger)
    return client, keys


def next_entries(
    client: Any, keys: CampaignKeys, *, consumer: str, batch: int, idle_ms: int
) -> list[Entry]:
    """The next entries to drain: first those a crashed drainer read and never acknowledged
    (idle for ``idle_ms``), then new ones."""
    claimed = client.xautoclaim(
        keys.ledger, DRAIN_GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=batch
    )
    entries = list(claimed[1]) if claimed else []
    if not entries:
        fresh = client.xreadgroup(DRAIN_GROUP, consumer, {keys.ledger: ">"}, count=batch)
        entries = list(fresh[0][1]) if fresh else []
    return entries


def acknowledge(client: Any, keys: CampaignKeys, entries: list[Entry]) -> None:
    """Take stored entries off the stream; only once the batch holding them is committed."""
    ids = [entry_id for entry_id, _ in entries]
    pipe = client.pipeline(transaction=True)
    pipe.xack(keys.ledger, DRAIN_GROUP, *ids)
    pipe.xdel(keys.ledger, *ids)
    pipe.execute()


def _insert(model: Any) -> Any:
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(model)


def count_voters(client: Any, keys: CampaignKeys, entries: list[Entry]) -> None:
    """Add a drained batch's voters to the campaign's distinct-voter estimate (a HyperLogLog,
    about 0.8 % off; the H5 stats bar's 参与人数). Counted here rather than in the vote script,
    which stays as lean as it can; the figure lags the votes by the drain (a second or so) and
    is a display figure only: a lost key (a Redis rewind) counts again from the next batch, so
    it may then show fewer voters than have voted."""
    voters = {raw[b"v"] for _, raw in entries if raw.get(b"kind") == b"vote" and raw.get(b"v")}
    if voters:
        client.pfadd(keys.voters, *voters)


def store_batch(campaign: Campaign, entries: list[Entry]) -> int:
    """Append a batch of stream entries to the chain (votes) and the freezes (flush only).

    Inserting is idempotent on the vote id, so an entry drained twice is stored once. An entry
    that cannot be stored (a field its column cannot hold, or a row the database refuses) is
    quarantined instead, and the rest of the batch is stored: every entry is handled, so the
    caller acknowledges the whole batch after commit. Returns how many were quarantined."""
    head = db.session.scalar(
        select(LedgerHead).where(LedgerHead.campaign_id == campaign.id).with_for_update()
    )
    if head is None:
        db.session.execute(
            _insert(LedgerHead)
            .values(campaign_id=campaign.id, chain_index=0, head_hash=GENESIS, updated_at=utcnow())
            .on_conflict_do_nothing()
        )
        head = db.session.scalar(
            select(LedgerHead).where(LedgerHead.campaign_id == campaign.id).with_for_update()
        )
    readable: list[_Readable] = []
    refused: list[tuple[bytes, dict[bytes, bytes], str]] = []
    for entry_id, raw in entries:
        try:
            readable.append(_read_entry(campaign, entry_id, raw))
        except Unstorable as exc:
            refused.append((entry_id, raw, str(exc)))
    vote_ids = [item.values["id"] for item in readable if item.kind == "vote"]
    existing = (
        set(db.session.scalars(select(Vote.id).where(Vote.id.in_(vote_ids)))) if vote_ids else set()
    )
    fresh = []
    for item in readable:
        if item.kind == "vote":
            if item.values["id"] in existing:
                continue  # drained before a crash lost the acknowledgement
            existing.add(item.values["id"])
        fresh.append(item)
    index, prev = head.chain_index, head.head_hash
    try:
        with db.session.begin_nested():
            index, prev = _append(fresh, index, prev)
    except StatementError as exc:
        if not _refused(exc):
            raise  # the database is away or broken: nothing is acknowledged, the batch waits
        # One row the database refuses must not hold up the others (nor the drain): store
        # them one by one, each in its own savepoint, and set aside those refused.
        for item in fresh:
            try:
                with db.session.begin_nested():
                    index, prev = _append([item], index, prev)
            except StatementError as row_exc:
                if not _refused(row_exc):
                    raise
                refused.append((item.entry_id, item.raw, _database_reason(row_exc)))
    if index != head.chain_index:
        head.chain_index = index
        head.head_hash = prev
    for entry_id, raw, reason in refused:
        _quarantine(campaign, entry_id, raw, reason)
    db.session.flush()
    return len(refused)


def _append(items: list[_Readable], index: int, prev: str) -> tuple[int, str]:
    """Insert ``items``, linking the votes after (``index``, ``prev``); the new chain end."""
    rows = []
    for item in items:
        if item.kind == "freeze":
            db.session.execute(
                _insert(NomineeFreeze)
                .values(**item.values)
                .on_conflict_do_nothing(index_elements=["stream_id"])
            )
            continue
        row = item.values
        index += 1
        row["chain_index"] = index
        row["prev_hash"] = prev
        row["hash"] = chain_hash(prev, row)
        prev = row["hash"]
        row["drained_at"] = utcnow()
        rows.append(row)
    if rows:
        # One cached statement sent as an executemany (batched VALUES by the driver): a
        # multi-VALUES statement built per batch cost more to compile than to run.
        db.session.connection().execute(
            _insert(Vote.__table__).on_conflict_do_nothing(index_elements=["id"]), rows
        )
    return index, prev


def _refused(exc: StatementError) -> bool:
    """The database (or a bind step) refused these values, as opposed to being unreachable:
    only then is an entry quarantined."""
    return isinstance(exc, DataError | IntegrityError) or type(exc) is StatementError


def _database_reason(exc: StatementError) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return (lines[0] if lines else cause.__class__.__name__)[:REASON_MAX]


def _from_ms(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _checked(values: dict[str, Any], limits: tuple[dict[str, int], dict[str, int]]) -> None:
    text, bound = limits
    for name, value in values.items():
        if isinstance(value, str):
            if "\x00" in value:
                raise Unstorable(f"{name}: holds a NUL character")
            if name in text and len(value) > text[name]:
                raise Unstorable(f"{name}: {len(value)} characters, the column holds {text[name]}")
        elif isinstance(value, int) and name in bound and not -bound[name] <= value < bound[name]:
            raise Unstorable(f"{name}: out of the column's integer range")


def _read_entry(campaign: Campaign, entry_id: bytes, raw: dict[bytes, bytes]) -> _Readable:
    """The row a stream entry stores, checked against its table; Unstorable if it cannot be."""
    try:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
    except UnicodeDecodeError as exc:
        raise Unstorable("a field is not UTF-8 text") from exc
    kind = fields.get("kind")
    if kind not in ("vote", "freeze"):
        raise Unstorable(f"kind: not a ledger entry kind ({(kind or '')[:20]!r})")
    try:
        if kind == "vote":
            values, limits = _vote_values(campaign, fields), _VOTE_LIMITS
        else:
            values = _freeze_values(campaign, entry_id.decode(), fields)
            limits = _FREEZE_LIMITS
    except KeyError as exc:
        raise Unstorable(f"{exc.args[0]}: missing") from exc
    except (ValueError, OverflowError, OSError) as exc:
        raise Unstorable(f"unreadable number or time: {str(exc)[:200]}") from exc
    if kind == "vote" and values["status"] not in VOTE_STATUSES:
        raise Unstorable(f"st: not a vote status ({values['status'][:20]!r})")
    _checked(values, limits)
    return _Readable(entry_id, raw, kind, values)


def _vote_values(campaign: Campaign, fields: dict[str, str]) -> dict[str, Any]:
    created = fields.get("vc")
    return {
        "id": fields["id"],
        "campaign_id": campaign.id,
        "seq": int(fields["seq"]),
        "category_code": fields["c"],
        "nominee_number": fields["n"],
        "voter_id": int(fields["v"]),
        "voter_created_at": _from_ms(created) if created else None,
        "at": _from_ms(fields["t"]),
        "day": fields["day"],
        "ip": fields["ip"],
        "device": fields.get("dev") or None,
        "user_agent": fields.get("ua") or None,
        "status": fields["st"],
        "written_status": fields["st"],
        "status_reason": fields.get("why") or None,
        "idempotency_key": fields.get("ik") or None,
    }


def _freeze_values(campaign: Campaign, stream_id: str, fields: dict[str, str]) -> dict[str, Any]:
    frozen_at = _from_ms(fields["t"])
    until = _from_ms(fields["until"])
    baseline = float(fields.get("baseline") or 0)
    explanation = (
        f"候选人 {fields['n']} 在一分钟内获得 {fields['minute_votes']} 票，"
        f"远高于其前十分钟平均每分钟 {baseline:.1f} 票的节奏，系统自动冻结投票至 "
        f"{until.isoformat()}，触发的这一票已暂存待核。"
    )
    return {
        "campaign_id": campaign.id,
        "nominee_number": fields["n"],
        "stream_id": stream_id,
        "frozen_at": frozen_at,
        "frozen_until": until,
        "minute_votes": int(fields["minute_votes"]),
        "baseline_per_minute": f"{baseline:.2f}",
        "explanation": explanation,
    }


def _quarantine(campaign: Campaign, entry_id: bytes, raw: dict[bytes, bytes], reason: str) -> None:
    """Set an entry aside with its raw fields and the reason (idempotent on the stream id)."""
    fields = {key[:100]: value[:RAW_FIELD_MAX] for key, value in decode(raw).items()}
    values = {
        "campaign_id": campaign.id,
        "stream_id": entry_id.decode(errors="backslashreplace")[:48],
        "kind": _label(fields.get("kind"), 10),
        "vote_id": _label(fields.get("id"), 64),
        "seq": readable_sequence(fields.get("seq")),
        "fields": fields,
        "reason": reason[:REASON_MAX],
        "quarantined_at": utcnow(),
    }
    statement = _insert(QuarantinedVote).on_conflict_do_nothing(index_elements=["stream_id"])
    try:
        with db.session.begin_nested():
            db.session.execute(statement.values(**values))
    except StatementError as exc:
        if not _refused(exc):
            raise
        # The raw text itself is refused: keep it as ASCII escapes, which any database takes.
        values["fields"] = {"ascii": ascii(raw)[: RAW_FIELD_MAX * 4]}
        db.session.execute(statement.values(**values))
    log.error(
        "ledger entry %s of %s quarantined (vote %s, sequence %s): %s",
        values["stream_id"],
        campaign.slug,
        values["vote_id"],
        values["seq"],
        values["reason"],
    )


def _label(value: str | None, limit: int) -> str | None:
    """A short column copied from a raw field: NUL shown as an escape, cut to fit."""
    if not value:
        return None
    return value.replace("\x00", "\\x00")[:limit]


def readable_sequence(value: str | None) -> int | None:
    """A vote number that can be accounted for, or None."""
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def quarantined_count(campaign: Campaign) -> int:
    """Entries of the campaign's ledger set aside and not yet resolved."""
    return int(
        db.session.scalar(
            select(func.count(QuarantinedVote.id)).where(
                QuarantinedVote.campaign_id == campaign.id, QuarantinedVote.resolved_at.is_(None)
            )
        )
        or 0
    )


def resolve_quarantined(
    campaign: Campaign, stream_id: str, *, actor: str, resolution: str
) -> QuarantinedVote:
    """Record what was done about a quarantined entry (stored again by hand, or voided), by
    whom (flush only). The row stays: its vote number remains accounted for."""
    entry = db.session.scalar(
        select(QuarantinedVote).where(
            QuarantinedVote.campaign_id == campaign.id, QuarantinedVote.stream_id == stream_id
        )
    )
    if entry is None:
        raise NotFound("没有这条隔离的记账条目", code="quarantine_not_found")
    entry.resolved_at = utcnow()
    entry.resolved_by = actor[:64]
    entry.resolution = resolution
    db.session.flush()
    return entry


def ledger_health(campaign: Campaign) -> dict[str, Any]:
    keys = CampaignKeys.of(campaign.slug)
    client = redis_store.votes
    try:
        length = client.xlen(keys.ledger)
        pending = 0
        try:
            summary = client.xpending(keys.ledger, DRAIN_GROUP)
            pending = int(summary["pending"])
        except redis.ResponseError:
            pending = 0
        oldest = client.xrange(keys.ledger, count=1)
        floor = floor_summary(campaign)
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    oldest_age = None
    if oldest:
        first_ms = int(oldest[0][0].decode().split("-")[0])
        oldest_age = max(0.0, time.time() - first_ms / 1000)
    drained = db.session.scalar(select(func.count(Vote.id)).where(Vote.campaign_id == campaign.id))
    return {
        "stream_length": length,
        "pending": pending,
        "oldest_undrained_age_seconds": oldest_age,
        "drained_votes": drained or 0,
        "quarantined": quarantined_count(campaign),
        "chain_head": chain_head(campaign),
        # Rewinds of the vote Redis (restart or restore from older data) and the sequence
        # floors that detect them (docs/voting.md, "Durability: rewinds").
        "rewinds": rewind_summary(campaign),
        "floor": floor,
    }


def open_items(campaign: Campaign) -> dict[str, int]:
    """What stands between the votes table and a result, cheaply (one Redis call, two counts):
    entries not yet drained, quarantined entries not resolved, rewinds not acknowledged."""
    try:
        length = redis_store.votes.xlen(CampaignKeys.of(campaign.slug).ledger)
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    return {
        "stream_length": int(length),
        "quarantined": quarantined_count(campaign),
        "unacknowledged_rewinds": unacknowledged_count(campaign),
    }


def chain_head(campaign: Campaign) -> str | None:
    """The hash at the head of the campaign's vote chain (None before the first drain)."""
    head = db.session.get(LedgerHead, campaign.id)
    return head.head_hash if head else None


def chain_index(campaign: Campaign) -> int:
    """How many votes the chain holds; a drain batch moves it in its own transaction."""
    return int(
        db.session.scalar(
            select(LedgerHead.chain_index).where(LedgerHead.campaign_id == campaign.id)
        )
        or 0
    )


def verify_chain(campaign: Campaign) -> dict[str, Any]:
    """Recompute every link of the campaign's vote chain; report the first break.

    ``quarantined``: entries set aside unresolved. They never got a link, so they cannot break
    the chain; they are counted here so that a verification never reads as "everything is in
    the chain" while some are not (reconcile accounts for their vote numbers)."""
    prev = GENESIS
    checked = 0
    result = db.session.execute(
        select(Vote)
        .where(Vote.campaign_id == campaign.id)
        .order_by(Vote.chain_index)
        .execution_options(yield_per=2000)  # a server-side cursor on PostgreSQL: flat memory
    )
    try:
        for vote in result.scalars():
            checked += 1
            row = {
                "id": vote.id,
                "campaign_id": vote.campaign_id,
                "nominee_number": vote.nominee_number,
                "voter_id": vote.voter_id,
                "at": vote.at,
                "ip": vote.ip,
                "device": vote.device,
                "written_status": vote.written_status,
            }
            if (
                vote.chain_index != checked
                or vote.prev_hash != prev
                or chain_hash(prev, row) != vote.hash
            ):
                return {
                    "ok": False,
                    "checked": checked,
                    "broken_at": vote.id,
                    "head": prev,
                    "quarantined": quarantined_count(campaign),
                }
            prev = vote.hash
    finally:
        result.close()
    head = db.session.get(LedgerHead, campaign.id)
    quarantined = quarantined_count(campaign)
    if head is not None and (head.head_hash != prev or head.chain_index != checked):
        return {
            "ok": False,
            "checked": checked,
            "broken_at": "head",
            "head": prev,
            "quarantined": quarantined,
        }
    return {"ok": True, "checked": checked, "head": prev, "quarantined": quarantined}
