"""Voters, the vote ledger (system of record), its hash-chain head, and nominee freezes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.types import UTCDateTime, utcnow

PROVIDERS = ("wechat", "sms", "device")
VOTE_STATUSES = ("valid", "pending", "invalid")


class Voter(db.Model):
    """An identity made by the server's own exchange with a provider, never by the browser."""

    __tablename__ = "voters"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(10))
    # wechat: the openid; sms and device: a keyed hash, so phone numbers and device ids are not
    # stored in the clear.
    subject: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    blocked: Mapped[bool] = mapped_column(default=False)


class VoterPhone(db.Model):
    """The phone a voter proved by a one-time code (voting/phone.py): one phone verifies one
    voter, and one voter holds one phone. ``phone_hash`` is the keyed hash (an ``sms`` voter's
    subject); the row is the claim, so it outlives any Redis."""

    __tablename__ = "voter_phones"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    voter_id: Mapped[int] = mapped_column(ForeignKey("voters.id"), unique=True)
    # When the phone first verified the voter (verifying it again changes nothing).
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Vote(db.Model):
    """One ledger entry, drained from the Redis stream; ``id`` is the id the voter was given."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("campaign_id", "chain_index"),
        Index("ix_votes_campaign_nominee_status", "campaign_id", "nominee_number", "status"),
        Index("ix_votes_campaign_at", "campaign_id", "at"),
        # Reconciliation looks for gaps in the vote numbers a failover may leave.
        Index("ix_votes_campaign_seq", "campaign_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    category_code: Mapped[str] = mapped_column(String(40))
    nominee_number: Mapped[str] = mapped_column(String(16))
    voter_id: Mapped[int] = mapped_column(Integer, index=True)
    voter_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[str] = mapped_column(String(10))
    ip: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # valid / pending / invalid; written_status is what the vote script decided and never changes.
    status: Mapped[str] = mapped_column(String(10), index=True)
    written_status: Mapped[str] = mapped_column(String(10))
    status_reason: Mapped[str | None] = mapped_column(String(200))
    chain_index: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    drained_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The request's Idempotency-Key, carried by the ledger entry: after a vote Redis rewind the
    # idempotency answers are re-seeded from it, so a client's retry is a replay.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))


class QuarantinedVote(db.Model):
    """A ledger entry the database could not store, set aside so that its batch and the drain go
    on: the stream entry's raw fields and the reason, until someone resolves it.

    It is outside the hash chain (it never got a link) and outside the counts; its vote number,
    when readable, keeps it from being reported as lost (docs/voting.md, "Quarantine")."""

    __tablename__ = "quarantined_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    # The ledger position: the stream entry id (one quarantine row per entry).
    stream_id: Mapped[str] = mapped_column(String(48), unique=True)
    kind: Mapped[str | None] = mapped_column(String(10))
    vote_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    quarantined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(Text)


class VoterBlock(db.Model):
    """A committee's block of one voter in one campaign, with its reason; lifted, not deleted.

    While ``lifted_at`` is empty the voter is refused at vote time (the vote script checks the
    campaign's blocked set, rebuilt from these rows whenever the campaign state is written)."""

    __tablename__ = "voter_blocks"
    __table_args__ = (Index("ix_voter_blocks_campaign_voter", "campaign_id", "voter_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    voter_id: Mapped[int] = mapped_column(ForeignKey("voters.id"))
    reason: Mapped[str] = mapped_column(String(500))
    # Where the block came from: the vote browser, or a fraud flag (its id).
    source: Mapped[str] = mapped_column(String(20), default="browser")
    flag_id: Mapped[int | None] = mapped_column(Integer)
    blocked_by: Mapped[str] = mapped_column(String(64))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(64))
    lift_reason: Mapped[str | None] = mapped_column(String(500))


class LedgerHead(db.Model):
    """The last link of a campaign's vote chain; locked while a batch is appended."""

    __tablename__ = "ledger_heads"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    chain_index: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SequenceFloor(db.Model):
    """The highest vote number known acknowledged in a campaign, kept outside the vote Redis.

    Raised (never lowered) by each drain batch and by the per-second watch job, which also reads
    the processes' published marks and the Redis sequence. ``redis_id`` is the identity token of
    the vote Redis data set last seen: a data set without it has restarted empty or from an
    older file (docs/voting.md, "Durability: rewinds")."""

    __tablename__ = "sequence_floors"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    redis_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerRewind(db.Model):
    """A vote Redis found behind what was acknowledged (restored from an older file, restarted
    empty, a failover that lost its tail): the sequence was lifted, quotas rebuilt, and the
    event stays an alarm until someone acknowledges it after review."""

    __tablename__ = "ledger_rewinds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    # The detector's own token for the event (persisting it twice stores it once).
    event_key: Mapped[str] = mapped_column(String(40), unique=True)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Where it was seen (state, vote, watch) and what was seen (rewound, restarted).
    detected_by: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(20))
    redis_seq: Mapped[int] = mapped_column(BigInteger)  # the sequence Redis came back with
    known_seq: Mapped[int] = mapped_column(BigInteger)  # the highest number known acknowledged
    lifted_to: Mapped[int] = mapped_column(BigInteger)  # where the sequence goes on from
    # Acknowledged numbers above what Redis came back with (known_seq - redis_seq): the votes
    # the rewind may have cost; reconciliation names those in neither the database nor stream.
    possibly_lost: Mapped[int] = mapped_column(BigInteger, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledgement: Mapped[str | None] = mapped_column(Text)


class NomineeFreeze(db.Model):
    """A nominee auto-frozen by the vote script (or lifted by the committee), with the why."""

    __tablename__ = "nominee_freezes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    nominee_number: Mapped[str] = mapped_column(String(16))
    stream_id: Mapped[str] = mapped_column(String(40), unique=True)
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    frozen_until: Mapped[datetime] = mapped_column(UTCDateTime())
    minute_votes: Mapped[int] = mapped_column(Integer)
    baseline_per_minute: Mapped[str] = mapped_column(String(20))
    explanation: Mapped[str] = mapped_column(Text)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(64))
    lift_reason: Mapped[str | None] = mapped_column(Text)


class TallySnapshot(db.Model):
    """Each nominee's valid and pending counts, once a minute: the committee's trend data."""

    __tablename__ = "tally_snapshots"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    nominee_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    valid: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer)


class FraudScan(db.Model):
    __tablename__ = "fraud_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued|running|done|failed
    trigger: Mapped[str] = mapped_column(String(10), default="manual")  # manual | schedule
    requested_by: Mapped[str | None] = mapped_column(String(64))
    votes_scanned: Mapped[int | None] = mapped_column(Integer)
    flags_created: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FraudFlag(db.Model):
    """What a detector found: rule, nominee, score, evidence, the exact votes; and the decision."""

    __tablename__ = "fraud_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("fraud_scans.id"))
    rule: Mapped[str] = mapped_column(String(40))
    nominee_number: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float] = mapped_column()
    severity: Mapped[str] = mapped_column(String(10), index=True)
    vote_count: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(Text)
    # The same finding from a later scan is not filed twice.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("campaign_id", "fingerprint"),)


class FlagVote(db.Model):
    """A vote a flag covers, with the status it had before a confirmation (for undo)."""

    __tablename__ = "flag_votes"

    flag_id: Mapped[int] = mapped_column(ForeignKey("fraud_flags.id"), primary_key=True)
    vote_id: Mapped[str] = mapped_column(ForeignKey("votes.id"), primary_key=True, index=True)
    prior_status: Mapped[str | None] = mapped_column(String(10))


class CommitteeDecision(db.Model):
    """Every committee adjustment of votes, chained by hash like the ledger."""

    __tablename__ = "committee_decisions"
    __table_args__ = (UniqueConstraint("campaign_id", "chain_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    chain_index: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    flag_id: Mapped[int | None] = mapped_column(Integer)
    undoes_id: Mapped[int | None] = mapped_column(Integer)
    vote_ids: Mapped[list[str]] = mapped_column(JSON)
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str | None] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ReceiptPublication(db.Model):
    """A campaign's published receipt leaves (docs/receipts.md), computed once in publicity.

    ``status`` is ``building`` while one process computes it (a stale claim is taken over) and
    ``done`` after; ``nominees`` holds each nominee's number, count and Merkle root, and ``root``
    commits to them and to the ledger chain's head (``chain_index``, ``chain_head``) read in the
    same transaction as the counted votes."""

    __tablename__ = "receipt_publications"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="building")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    chain_index: Mapped[int] = mapped_column(BigInteger, default=0)
    chain_head: Mapped[str] = mapped_column(String(64), default="")
    root: Mapped[str | None] = mapped_column(String(64))
    leaf_count: Mapped[int] = mapped_column(BigInteger, default=0)
    nominees: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ReceiptNode(db.Model):
    """One node of a nominee's receipt tree: level 0 holds the sorted leaves (with the vote each
    stands for, never published), the levels above the inner nodes, so a voter's Merkle path is
    a few indexed reads instead of a rebuild."""

    __tablename__ = "receipt_nodes"
    __table_args__ = (Index("ix_receipt_nodes_campaign_vote", "campaign_id", "vote_id"),)

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    nominee_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    vote_id: Mapped[str | None] = mapped_column(String(40))
