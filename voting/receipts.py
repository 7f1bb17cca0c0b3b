"""我的投票 and vote receipts: a voter's own votes in plain words, and after 公示 a receipt each.

A counted vote's leaf hides the voter: it hashes the campaign, the vote id, the nominee and a
per-vote secret (a keyed digest only the server can make, shown only in that voter's receipt).
The leaves are grouped by nominee and sorted, each nominee gets a Merkle root, and the campaign
root commits to those and to the ledger chain's head. The algorithm is voting/receipt_check.py
(standard library only) and docs/receipts.md; the publication is computed once, in publicity,
into ``receipt_publications`` and ``receipt_nodes``, and streamed from there."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from campaigns.models import Campaign
from core import clock
from core.auth import keyed_digest
from core.errors import Conflict, NotFound
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store, sqlite_write_intent
from core.types import utcnow
from voting import ledger
from voting.keys import CampaignKeys
from voting.models import LedgerHead, ReceiptNode, ReceiptPublication, Vote
from voting.receipt_check import (
    FORMAT,
    RECEIPT_FORMAT,
    campaign_root,
    fold_path,
    leaf_hash,
    next_level,
)

log = logging.getLogger("zuimei.voting")

PUBLISHED_PHASES = ("publicity", "closed")
# A voter's list shows at most this many votes, newest first (a year of daily votes fits).
MY_VOTES_MAX = 1000
# Undrained entries looked at for the voter's own (the drain keeps the stream far shorter).
STREAM_SCAN = 5000
# A claim to build the publication older than this is taken over (its builder died).
BUILD_STALE = timedelta(minutes=15)
INSERT_CHUNK = 5000

STATE_LABELS = {
    "counted": "已计入",
    "held": "待审核",
    "invalidated": "已核减",
    "recording": "正在计入",
}


def vote_secret(slug: str, vote_id: str) -> str:
    """The per-vote secret of a receipt: only the server can make it, only the voter sees it."""
    return keyed_digest("receipt", f"{slug}:{vote_id}").hex()


def published_phase(campaign: Any) -> bool:
    """Receipts exist once 公示 has begun (and stay after the campaign closes)."""
    return campaign.phase in PUBLISHED_PHASES


def _explain(status: str, reason: str | None) -> tuple[str, str]:
    """A stored vote's state and, in plain Chinese, why (never a staff member's name)."""
    kind, _, rest = (reason or "").partition(":")
    if status == "valid":
        return "counted", "经复核后计入" if kind == "release" else ""
    if status == "pending":
        if kind == "velocity":
            return "held", "该候选人短时间内得票过快，系统暂扣此票，等待评审委员会复核"
        return "held", "等待评审委员会复核"
    if kind == "flag":
        return (
            "invalidated",
            f"评审委员会核查认定此票属于刷票线索 #{rest} 涉及的选票，已从总数中核减",
        )
    if kind == "void":
        return "invalidated", "此票曾被系统暂扣，评审委员会复核后决定不予计入"
    return "invalidated", "经评审委员会核查，此票不予计入"


def _item(
    zone: ZoneInfo, vote_id: str, number: str, category: str, at: datetime, state: str, why: str
) -> dict[str, Any]:
    local = at.astimezone(zone)
    return {
        "vote_id": vote_id,
        "nominee": number,
        "category": category,
        "at": local,
        "at_local": local.strftime("%Y-%m-%d %H:%M:%S"),
        "state": state,
        "state_label": STATE_LABELS[state],
        "reason": why,
        "receipt": False,
    }


def _undrained(slug: str, voter_id: int, known: set[str]) -> list[dict[str, str]] | None:
    """The voter's entries still in the ledger stream (acknowledged, not yet in the database);
    None when the vote Redis cannot be read."""
    try:
        entries = redis_store.votes.xrevrange(CampaignKeys.of(slug).ledger, count=STREAM_SCAN)
    except VOTE_REDIS_ERRORS:
        return None
    mine = []
    voter = str(voter_id)
    known = known | {""}
    for _entry_id, raw in entries:
        fields = ledger.decode(raw)
        vote_id = fields.get("id") or ""
        if fields.get("kind") == "vote" and fields.get("v") == voter and vote_id not in known:
            mine.append(fields)
    return mine


def my_votes(campaign: Campaign, voter_id: int, names: dict[str, str]) -> dict[str, Any]:
    """Every vote ``voter_id`` cast in ``campaign``, newest first: time in the campaign's zone,
    nominee, state (已计入 / 待审核 / 已核减 and why / 正在计入 while still in the stream), and
    whether a receipt is ready. ``names`` maps nominee numbers to names."""
    zone = clock.zone(campaign.timezone)
    rows = db.session.execute(
        select(
            Vote.id,
            Vote.nominee_number,
            Vote.category_code,
            Vote.at,
            Vote.status,
            Vote.status_reason,
        )
        .where(Vote.campaign_id == campaign.id, Vote.voter_id == voter_id)
        .order_by(Vote.at.desc(), Vote.seq.desc())
        .limit(MY_VOTES_MAX + 1)
    ).all()
    truncated = len(rows) > MY_VOTES_MAX
    items = [
        _item(zone, r[0], r[1], r[2], r[3], *_explain(r[4], r[5])) for r in rows[:MY_VOTES_MAX]
    ]
    pending = _undrained(campaign.slug, voter_id, {item["vote_id"] for item in items})
    recording = [
        _item(
            zone,
            f["id"],
            f.get("n", ""),
            f.get("c", ""),
            datetime.fromtimestamp(int(f.get("t") or 0) / 1000, zone),
            "recording",
            "投票已受理，正在写入账本"
            if f.get("st") == "valid"
            else "投票已受理，系统已暂扣待复核",
        )
        for f in pending or []
    ]
    items = sorted(recording, key=lambda i: i["at"], reverse=True) + items
    publication = db.session.get(ReceiptPublication, campaign.id)
    ready = publication is not None and publication.status == "done"
    if ready and items:
        with_receipt = set(
            db.session.scalars(
                select(ReceiptNode.vote_id).where(
                    ReceiptNode.campaign_id == campaign.id,
                    ReceiptNode.level == 0,
                    ReceiptNode.vote_id.in_([i["vote_id"] for i in items]),
                )
            )
        )
        for item in items:
            item["receipt"] = item["vote_id"] in with_receipt
    for item in items:
        item["nominee_name"] = names.get(item["nominee"], "")
    return {
        "campaign": campaign.slug,
        "time_zone": str(zone),
        "publicity": published_phase(campaign),
        "receipts_ready": ready,
        "stream_unavailable": pending is None,
        "truncated": truncated,
        "items": items,
    }


# --- the publication --------------------------------------------------------------------------


def publication(campaign: Campaign) -> ReceiptPublication:
    """The campaign's finished publication, computed now if it is the first ask in publicity.

    This commits (like a job body): the claim, then the built trees. 409 ``receipts_not_published``
    before 公示, ``receipts_not_ready`` while ledger entries wait to be drained (the leaves must
    be every counted vote), ``receipts_building`` while another process builds it."""
    current = db.session.get(ReceiptPublication, campaign.id)
    if current is not None and current.status == "done":
        return current
    if not published_phase(campaign):
        raise Conflict("公示开始后才能查验选票凭证", code="receipts_not_published")
    if ledger.open_items(campaign)["stream_length"]:
        raise Conflict("选票仍在计入中，请稍后再查看凭证", code="receipts_not_ready")
    campaign_id, slug = campaign.id, campaign.slug
    db.session.rollback()  # end the read transaction: the claim takes the write lock
    intent = sqlite_write_intent.set(True)
    try:
        token = _claim(campaign_id)
        if token is None:
            finished = db.session.get(ReceiptPublication, campaign_id)
            if finished is not None and finished.status == "done":
                return finished  # another process finished it meanwhile
            raise Conflict("选票凭证正在生成，请稍后再试", code="receipts_building")
        try:
            _build(campaign_id, slug)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            _abandon(campaign_id, token)
            raise
    finally:
        sqlite_write_intent.reset(intent)
    done = db.session.get(ReceiptPublication, campaign_id)
    assert done is not None
    return done


def _insert_ignoring(model: Any) -> Any:
    dialect = db.engine.dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


def _abandon(campaign_id: int, token: datetime) -> None:
    """Remove a failed build's rows, unless another process has taken the claim over since."""
    gone = db.session.execute(
        delete(ReceiptPublication)
        .where(
            ReceiptPublication.campaign_id == campaign_id,
            ReceiptPublication.status == "building",
            ReceiptPublication.started_at == token,
        )
        .returning(ReceiptPublication.campaign_id)
    ).scalar()
    if gone is not None:
        db.session.execute(delete(ReceiptNode).where(ReceiptNode.campaign_id == campaign_id))
    db.session.commit()


def _claim(campaign_id: int) -> datetime | None:
    """Take the right to build (a new row, or a stale ``building`` one); commits. The claim's
    start time, which identifies it, or None when another process holds it."""
    now = utcnow()
    existing = db.session.get(ReceiptPublication, campaign_id)
    if existing is None:
        # RETURNING, not rowcount: psycopg may report -1 for an INSERT … ON CONFLICT.
        inserted = db.session.execute(
            _insert_ignoring(ReceiptPublication)
            .values(campaign_id=campaign_id, status="building", started_at=now, nominees=[])
            .on_conflict_do_nothing()
            .returning(ReceiptPublication.campaign_id)
        ).scalar()
        db.session.commit()
        return now if inserted is not None else None
    if existing.status == "done" or now - existing.started_at < BUILD_STALE:
        return None
    taken = db.session.execute(
        update(ReceiptPublication)
        .where(
            ReceiptPublication.campaign_id == campaign_id,
            ReceiptPublication.status == "building",
            ReceiptPublication.started_at == existing.started_at,
        )
        .values(started_at=now)
        .returning(ReceiptPublication.campaign_id)
    ).scalar()
    if taken is None:
        db.session.rollback()
        return None
    db.session.execute(delete(ReceiptNode).where(ReceiptNode.campaign_id == campaign_id))
    db.session.commit()
    return now


def _build(campaign_id: int, slug: str) -> None:
    """Every counted vote's leaf, each nominee's tree and the campaign root (flush only)."""
    head = db.session.get(LedgerHead, campaign_id)
    chain_index = head.chain_index if head else 0
    chain_head = head.head_hash if head else ledger.GENESIS
    numbers = sorted(
        db.session.scalars(
            select(Vote.nominee_number)
            .where(Vote.campaign_id == campaign_id, Vote.status == "valid")
            .distinct()
        )
    )
    nominees: list[dict[str, Any]] = []
    total = 0
    for number in numbers:
        ids = db.session.scalars(
            select(Vote.id)
            .where(
                Vote.campaign_id == campaign_id,
                Vote.nominee_number == number,
                Vote.status == "valid",
            )
            .execution_options(yield_per=5000)
        )
        pairs = sorted((leaf_hash(slug, i, number, vote_secret(slug, i)), i) for i in ids)
        _store_level(campaign_id, number, 0, [leaf for leaf, _ in pairs], [i for _, i in pairs])
        level, depth, count = [leaf for leaf, _ in pairs], 0, len(pairs)
        del pairs
        while len(level) > 1:
            level, depth = next_level(level), depth + 1
            _store_level(campaign_id, number, depth, level, None)
        nominees.append({"number": number, "count": count, "root": level[0]})
        total += count
    root = campaign_root(
        slug, chain_index, chain_head, [(n["number"], n["count"], n["root"]) for n in nominees]
    )
    pub = db.session.get(ReceiptPublication, campaign_id)
    assert pub is not None
    pub.status = "done"
    pub.published_at = utcnow()
    pub.chain_index = chain_index
    pub.chain_head = chain_head
    pub.root = root
    pub.leaf_count = total
    pub.nominees = nominees
    db.session.flush()
    log.info("receipts of %s published: %s counted votes, root %s", slug, total, root)


def _store_level(
    campaign_id: int, number: str, depth: int, hashes: list[str], vote_ids: list[str] | None
) -> None:
    """Insert one level of a nominee's tree, a chunk at a time (flush only)."""
    for start in range(0, len(hashes), INSERT_CHUNK):
        rows = [
            {
                "campaign_id": campaign_id,
                "nominee_number": number,
                "level": depth,
                "position": position,
                "hash": hashes[position],
                "vote_id": vote_ids[position] if vote_ids else None,
            }
            for position in range(start, min(start + INSERT_CHUNK, len(hashes)))
        ]
        db.session.execute(insert(ReceiptNode), rows)


def summary(campaign: Campaign, pub: ReceiptPublication) -> dict[str, Any]:
    """The publication without its leaves: the nominee roots and counts, the campaign root."""
    return {
        "format": FORMAT,
        "campaign": campaign.slug,
        "published_at": pub.published_at,
        "chain_index": pub.chain_index,
        "chain_head": pub.chain_head,
        "root": pub.root,
        "leaf_count": pub.leaf_count,
        "nominees": pub.nominees,
    }


def stream_publication(campaign: Campaign, pub: ReceiptPublication) -> Iterator[bytes]:
    """The whole publication as one JSON document, written nominee by nominee from the stored
    leaves (memory stays flat however many votes there are)."""
    head = summary(campaign, pub)
    head["published_at"] = pub.published_at.isoformat() if pub.published_at else None
    nominees = head.pop("nominees")
    opening = orjson.dumps(head)[:-1] + b',"nominees":['
    yield opening
    campaign_id = campaign.id
    for index, entry in enumerate(nominees):
        prefix = orjson.dumps(
            {"number": entry["number"], "count": entry["count"], "root": entry["root"]}
        )[:-1]
        yield (b"," if index else b"") + prefix + b',"leaves":['
        leaves = db.session.scalars(
            select(ReceiptNode.hash)
            .where(
                ReceiptNode.campaign_id == campaign_id,
                ReceiptNode.nominee_number == entry["number"],
                ReceiptNode.level == 0,
            )
            .order_by(ReceiptNode.position)
            .execution_options(yield_per=5000)
        )
        chunk: list[bytes] = []
        first = True
        for leaf in leaves:
            chunk.append(b'"' + leaf.encode() + b'"')
            if len(chunk) >= 5000:
                yield (b"" if first else b",") + b",".join(chunk)
                first, chunk = False, []
        if chunk:
            yield (b"" if first else b",") + b",".join(chunk)
        yield b"]}"
    yield b"]}\n"


def receipt(campaign: Campaign, voter_id: int, vote_id: str) -> dict[str, Any]:
    """The receipt of one of the voter's counted votes: the secret, the leaf and its Merkle path
    to the nominee's root. Another voter's vote, or one not counted, is 404 ``receipt_not_found``
    (whether the vote exists is not told)."""
    pub = publication(campaign)
    vote = db.session.execute(
        select(Vote.id, Vote.nominee_number).where(
            Vote.id == vote_id[:40], Vote.campaign_id == campaign.id, Vote.voter_id == voter_id
        )
    ).first()
    node = None
    if vote is not None:
        node = db.session.scalar(
            select(ReceiptNode).where(
                ReceiptNode.campaign_id == campaign.id,
                ReceiptNode.vote_id == vote.id,
                ReceiptNode.level == 0,
            )
        )
    if vote is None or node is None:
        raise NotFound("没有这张选票的凭证（仅已计入的选票有凭证）", code="receipt_not_found")
    entry = next(n for n in pub.nominees if n["number"] == node.nominee_number)
    path = _path(campaign.id, node.nominee_number, node.position, entry["count"])
    secret = vote_secret(campaign.slug, vote.id)
    assert fold_path(node.hash, path) == entry["root"], "stored receipt tree is inconsistent"
    return {
        "format": RECEIPT_FORMAT,
        "campaign": campaign.slug,
        "vote_id": vote.id,
        "nominee": vote.nominee_number,
        "secret": secret,
        "leaf": node.hash,
        "path": path,
        "nominee_root": entry["root"],
        "nominee_count": entry["count"],
        "root": pub.root,
        "chain_index": pub.chain_index,
        "chain_head": pub.chain_head,
        "published_at": pub.published_at,
    }


def _path(campaign_id: int, number: str, position: int, count: int) -> list[dict[str, str]]:
    """The siblings of the leaf at ``position`` among ``count``, read from the stored levels."""
    wanted: list[tuple[int, int, str]] = []
    level, index, size = 0, position, count
    while size > 1:
        sibling = index ^ 1
        if sibling < size:
            wanted.append((level, sibling, "left" if sibling < index else "right"))
        level, index, size = level + 1, index // 2, (size + 1) // 2
    if not wanted:
        return []
    found = {
        (row.level, row.position): row.hash
        for row in db.session.execute(
            select(ReceiptNode.level, ReceiptNode.position, ReceiptNode.hash).where(
                ReceiptNode.campaign_id == campaign_id,
                ReceiptNode.nominee_number == number,
                or_(
                    *(
                        and_(ReceiptNode.level == lv, ReceiptNode.position == p)
                        for lv, p, _ in wanted
                    )
                ),
            )
        )
    }
    return [{"side": side, "hash": found[(lv, p)]} for lv, p, side in wanted]
