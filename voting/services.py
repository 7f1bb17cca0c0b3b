"""Voting: voter identity, the one-round-trip vote, counts and rankings, the ledger drain, the hash
chain and reconciliation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import redis
from flask import current_app, g
from sqlalchemy import event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Category
from core.auth import issue_token, read_token
from core.errors import AppError, Forbidden, NotFound, ServiceUnavailable, Unauthorized
from core.extensions import VOTE_REDIS_ERRORS, db, is_cluster, redis_store
from core.signals import campaign_changed
from core.types import utcnow
from core.web import VOTER_COOKIE, request_credential
from nominations.models import Nomination
from voting.models import LedgerHead, NomineeFreeze, Vote, Voter

log = logging.getLogger("zuimei.voting")

GENESIS = "0" * 64
META_TTL = 300  # seconds: a lost sync heals itself within this time
DRAIN_GROUP = "drain"

# The vote path reads the time through this, so tests can stand at 23:59 Asia/Shanghai.
clock: Callable[[], datetime] = utcnow


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignKeys:
    """Every key of one campaign shares the hash tag ``{c:<slug>}``."""

    base: str

    @classmethod
    def of(cls, slug: str) -> CampaignKeys:
        return cls(redis_store.key("{c:" + slug + "}", ""))

    def __getattr__(self, name: str) -> str:
        return self.base + name

    def quota(self, day: str, voter: int | str) -> str:
        return f"{self.base}q:{day}:{voter}"

    def idem(self, voter: int | str, key: str) -> str:
        return f"{self.base}idem:{voter}:{key}"

    def ip_minute(self, ip: str, minute: int) -> str:
        return f"{self.base}ip:{ip}:{minute}"

    def voter_minute(self, voter: int | str, minute: int) -> str:
        return f"{self.base}vm:{voter}:{minute}"

    @property
    def rank_prefix(self) -> str:
        return self.base + "rank:"

    def rank(self, category: str) -> str:
        return self.rank_prefix + category


# --- voter identity ---------------------------------------------------------------------------


def subject_hash(provider: str, value: str) -> str:
    """A keyed hash, so device ids and phone numbers never sit in the database in the clear."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{provider}:{value}".encode(), hashlib.sha256).hexdigest()


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


def voter_token(voter: Voter, device: str | None = None) -> Any:
    claims = {
        "sub": voter.id,
        "p": voter.provider,
        "c": int(voter.created_at.timestamp() * 1000),
    }
    if device:
        claims["d"] = device
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
        g.voter_claims = read_token("voter", token)
    except AppError as exc:
        raise Unauthorized("投票身份无效或已过期，请重新进入", code="invalid_voter") from exc
    return g.voter_claims  # type: ignore[no-any-return]


# --- what the vote script knows about a campaign ----------------------------------------------


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def campaign_state(campaign: Campaign) -> dict[str, Any]:
    rules = campaign.rules or {}
    nominees = dict(
        db.session.execute(
            select(Nomination.number, Category.code)
            .join(Category, Nomination.category_id == Category.id)
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        ).all()
    )
    max_seq = db.session.scalar(select(func.max(Vote.seq)).where(Vote.campaign_id == campaign.id))
    withdrawn = db.session.execute(
        select(Nomination.number, Category.code)
        .join(Category, Nomination.category_id == Category.id)
        .where(
            Nomination.campaign_id == campaign.id,
            Nomination.number.is_not(None),
            Nomination.status != "approved",
        )
    ).all()
    return {
        "slug": campaign.slug,
        "max_seq": int(max_seq or 0),
        "withdrawn": [tuple(row) for row in withdrawn],
        "meta": {
            "id": campaign.id,
            # Names this campaign row (ids can be reused after a delete): sequence floors and
            # acknowledged marks apply only within one epoch.
            "epoch": f"{campaign.id}.{_ms(campaign.created_at)}",
            "phase": campaign.phase,
            "start_ms": _ms(campaign.voting_start),
            "end_ms": _ms(campaign.voting_end),
            "tz": campaign.timezone,
            "per_day": rules.get("votes_per_day", 1),
            "per_nominee": rules.get("votes_per_nominee_per_day", 1),
            "ip_soft": rules.get("ip_soft_limit", 30),
            "velocity_factor": rules.get("velocity_factor", 10),
            "velocity_floor": rules.get("velocity_floor", 300),
            "freeze_seconds": rules.get("freeze_minutes", 10) * 60,
            "hide_from_ms": _hide_from_ms(rules),
        },
        "nominees": nominees,
    }


def _hide_from_ms(rules: dict[str, Any]) -> int:
    """0 hides from the start, -1 never; else the epoch ms from which counts are hidden."""
    if rules.get("hide_counts"):
        return 0
    if rules.get("hide_counts_from"):
        return _ms(datetime.fromisoformat(rules["hide_counts_from"]))
    return -1


_RAISE_SEQ = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
"""


def write_state(state: dict[str, Any]) -> None:
    keys = CampaignKeys.of(state["slug"])
    client = redis_store.votes
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.meta, keys.nominees)
    pipe.hset(keys.meta, mapping={k: str(v) for k, v in state["meta"].items()})
    pipe.expire(keys.meta, META_TTL)
    if state["nominees"]:
        pipe.hset(keys.nominees, mapping=state["nominees"])
    for number, category in state.get("withdrawn", []):
        pipe.zrem(keys.rank(category), number)  # a withdrawn nominee leaves the standings
    pipe.execute()
    # After Redis lost data the sequence must not run again over numbers already stored, nor
    # over numbers voters were given (the published mark): the lost ones stay a visible gap.
    floor = max(state.get("max_seq", 0), published_mark(state["slug"], state["meta"].get("epoch")))
    client.eval(_RAISE_SEQ, 1, keys.seq, floor)


def sync_campaign(campaign: Campaign) -> None:
    write_state(campaign_state(campaign))


@campaign_changed.connect
def _queue_sync(campaign: Campaign, **_: Any) -> None:
    pending = db.session.info.setdefault("zuimei_sync", {})
    pending[campaign.slug] = campaign


def _before_commit(session: Session) -> None:
    pending = session.info.pop("zuimei_sync", None)
    if not pending:
        return
    session.flush()
    states = []
    for campaign in pending.values():
        # Re-read the row: another transaction may have moved the phase since we loaded it, and
        # an old phase must never be published (it would reopen voting for META_TTL).
        session.refresh(campaign)
        states.append(campaign_state(campaign))
    session.info["zuimei_sync_states"] = states


def _after_commit(session: Session) -> None:
    for state in session.info.pop("zuimei_sync_states", None) or []:
        try:
            write_state(state)
        except VOTE_REDIS_ERRORS:
            log.warning(
                "could not publish campaign %s to redis; it heals within %ss",
                state["slug"],
                META_TTL,
            )


def _after_rollback(session: Session) -> None:
    session.info.pop("zuimei_sync", None)
    session.info.pop("zuimei_sync_states", None)


event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_soft_rollback", lambda session, _tx: _after_rollback(session))


# --- the vote ---------------------------------------------------------------------------------

_REFUSALS: dict[str, tuple[int, str]] = {
    "voting_closed": (403, "投票尚未开始或已经结束"),
    "nominee_not_found": (404, "候选人不存在"),
    "nominee_frozen": (403, "该候选人的投票暂时冻结，正在核查异常票数，请稍后再试"),
    "daily_quota_exhausted": (429, "今日票数已用完，明天再来吧"),
    "nominee_daily_limit": (429, "今天已为该候选人投过票，明天再来吧"),
    "challenge_required": (428, "投票过于频繁，请先完成验证"),
    "rate_limited": (429, "操作太频繁，请稍后再试"),
}

_script: Any = None
_script_lock = threading.Lock()


def _vote_script() -> Any:
    """The vote script, registered once per process and then called by its SHA (EVALSHA).
    redis-py loads it again by itself when a server answers NOSCRIPT (a restart, a Sentinel
    failover); on a cluster SCRIPT LOAD goes to every primary, so the node owning the
    campaign's slot has it."""
    global _script
    if _script is None:
        with _script_lock:
            if _script is None:
                source = resources.files("voting").joinpath("lua/vote.lua").read_text()
                _script = redis_store.votes.register_script(source)
    return _script


_tz_cache: dict[str, tuple[float, ZoneInfo]] = {}


def _campaign_zone(keys: CampaignKeys, slug: str) -> ZoneInfo:
    """The campaign's time zone, cached for a minute per process (it cannot change in voting)."""
    cached = _tz_cache.get(slug)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    name = redis_store.votes.hget(keys.meta, "tz")
    if name is None:
        _load_state(slug)
        name = redis_store.votes.hget(keys.meta, "tz")
    zone = ZoneInfo(name.decode() if name else "Asia/Shanghai")
    _tz_cache[slug] = (time.monotonic() + 60, zone)
    return zone


def _load_state(slug: str) -> None:
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None or campaign.phase == "draft":
        raise NotFound("评选活动不存在", code="campaign_not_found")
    sync_campaign(campaign)


def cast_vote(
    slug: str,
    voter: dict[str, Any],
    number: str,
    *,
    idempotency_key: str | None,
    ip: str,
    device: str | None,
    user_agent: str | None,
    has_pass: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Decide and record one vote in one Redis round trip. Returns (answer, replayed)."""
    keys = CampaignKeys.of(slug)
    voter_id = str(voter["sub"])
    number = number.strip().upper()
    slot = (redis_store.vote_url(), keys.base)
    floor_epoch, floor_seq = _acked.get(slot, ("", 0))
    try:
        client = redis_store.votes
        now = clock()
        zone = _campaign_zone(keys, slug)
        local = now.astimezone(zone)
        minute = int(now.timestamp() // 60)
        script_keys = [
            keys.meta,
            keys.nominees,
            keys.frozen,
            keys.quota(local.strftime("%Y-%m-%d"), voter_id),
            keys.idem(voter_id, idempotency_key or "-"),
            keys.counts,
            keys.pending,
            keys.ledger,
            keys.seq,
            keys.ip_minute(ip, minute),
            keys.velocity,
            keys.voter_minute(voter_id, minute),
        ]
        args = [
            _ms(now),
            local.strftime("%Y-%m-%d"),
            voter_id,
            number,
            ip,
            (device or "")[:128],
            (user_agent or "")[:300],
            keys.rank_prefix,
            "1" if has_pass else "0",
            str(voter.get("c", "")),
            minute,
            "1" if idempotency_key else "0",
            current_app.config["VOTE_IP_PER_MINUTE"],
            current_app.config["VOTE_VOTER_PER_MINUTE"],
            secrets.token_hex(4),
            floor_epoch,
            floor_seq,
            "1" if int(current_app.config.get("VOTE_WAIT_REPLICAS") or 0) > 0 else "0",
        ]
        result, replicated = _run_vote_script(client, script_keys, args)
        if result[0] == b"sync":
            _load_state(slug)
            result, replicated = _run_vote_script(client, script_keys, args)
    except VOTE_REDIS_ERRORS as exc:
        log.error("vote refused: redis unavailable (%s)", exc.__class__.__name__)
        raise ServiceUnavailable("投票服务暂时不可用，请稍后再试") from exc
    outcome = result[0].decode()
    if outcome == "err":
        code = result[1].decode()
        status, message = _REFUSALS[code]
        details: dict[str, Any] = {}
        if code == "nominee_daily_limit":
            details["remaining_today"] = int(result[2])
        if code == "daily_quota_exhausted":
            details["remaining_today"] = 0
        headers: dict[str, str] = {}
        if code == "rate_limited":
            details["retry_after"] = int(result[2])
            headers["Retry-After"] = result[2].decode()
        if code == "nominee_frozen":
            until = datetime.fromtimestamp(int(result[2]) / 1000, UTC)
            details["frozen_until"] = until.isoformat()
        raise AppError(message, code=code, status=status, details=details, headers=headers)
    if outcome == "sync":  # the campaign vanished from Redis twice in a row
        raise ServiceUnavailable()
    wanted = int(current_app.config.get("VOTE_WAIT_REPLICAS") or 0)
    if replicated is not None and replicated < wanted:
        # Recorded on the primary but not yet on enough replicas: a failover now could lose it,
        # so it is not acknowledged. A retry with the same Idempotency-Key gets the first
        # answer once it is replicated; the quota stops a retry without one from counting twice
        # beyond the voter's allowance.
        log.warning(
            "vote on %s not acknowledged: %d of %d replicas confirmed", slug, replicated, wanted
        )
        raise ServiceUnavailable(
            "投票结果尚未确认，请稍后重试",
            details={"replicas_confirmed": replicated, "replicas_required": wanted},
            headers={"Retry-After": "1"},
        )
    if outcome == "ok":
        epoch, seq, lifted = (value.decode() for value in result[2:5])
        if lifted:
            log.warning(
                "vote redis sequence of %s was %s, below the %d already acknowledged: lifted "
                "(votes were lost by a failover or restore; run votes reconcile)",
                slug,
                lifted,
                floor_seq,
            )
        _note_acked(slug, slot, epoch, int(seq))
    return json.loads(result[1]), outcome == "replay"


def _run_vote_script(client: Any, keys: list[str], args: list[Any]) -> tuple[Any, int | None]:
    """Run the vote script; in the strict mode (``VOTE_WAIT_REPLICAS``) also WAIT for replicas
    on the same connection. Returns (script reply, replicas confirmed or None)."""
    wanted = int(current_app.config.get("VOTE_WAIT_REPLICAS") or 0)
    script = _vote_script()
    if wanted <= 0:
        return script(keys=keys, args=args, client=client), None
    timeout = int(current_app.config.get("VOTE_WAIT_TIMEOUT_MS") or 100)
    # WAIT counts the writes of its own connection, so it must follow the script on the same
    # connection: a pipeline of two on one server (on a cluster, the node of the slot).
    for _ in range(3):
        target = client
        if is_cluster(client):
            target = client.get_redis_connection(client.get_node_from_key(keys[0]))
        pipe = target.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.wait(wanted, timeout)
        reply, confirmed = pipe.execute(raise_on_error=False)
        if isinstance(reply, redis.exceptions.NoScriptError):
            target.script_load(script.script)
            continue
        if isinstance(reply, redis.exceptions.MovedError | redis.exceptions.AskError):
            client.nodes_manager.initialize()  # the slot moved: map the cluster again
            continue
        if isinstance(reply, Exception):
            raise reply
        if isinstance(confirmed, Exception):
            raise confirmed
        return reply, int(confirmed)
    raise redis.ConnectionError("the vote script could not be placed on its node")


# --- acknowledged sequence marks --------------------------------------------------------------
#
# Every accepted vote takes the campaign's next sequence number. Each process remembers the
# highest number it acknowledged (per vote Redis and campaign epoch) and hands it to the vote
# script as a floor: a vote Redis that comes back lower (a Sentinel or cluster failover that
# lost the unreplicated tail, a restore from an older file) has its sequence lifted above every
# number a voter was given, so the lost votes stay a visible gap that reconciliation reports.
# Processes also publish their mark to the control Redis (REDIS_URL) every
# VOTE_ACK_MARK_INTERVAL seconds and take the highest mark back.

_acked: dict[tuple[str, str], tuple[str, int]] = {}
_acked_published: dict[tuple[str, str], float] = {}
_acked_lock = threading.Lock()
ACK_MARK_TTL = 90 * 86400

_PUBLISH_MARK = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  current = tonumber(ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return current
"""


def _mark_key(slug: str) -> str:
    return redis_store.key("ackmark", slug)


def _note_acked(slug: str, slot: tuple[str, str], epoch: str, seq: int) -> None:
    if not epoch:
        return
    interval = float(current_app.config.get("VOTE_ACK_MARK_INTERVAL") or 0)
    now = time.monotonic()
    with _acked_lock:
        known_epoch, known = _acked.get(slot, ("", 0))
        highest = max(seq, known) if known_epoch == epoch else seq
        _acked[slot] = (epoch, highest)
        due = now - _acked_published.get(slot, float("-inf")) >= interval
        if due:
            _acked_published[slot] = now
    if not due:
        return
    try:
        mark = int(
            redis_store.client.eval(_PUBLISH_MARK, 1, _mark_key(slug), epoch, highest, ACK_MARK_TTL)
        )
    except VOTE_REDIS_ERRORS:
        log.debug("acknowledged mark of %s not published", slug)
        return
    with _acked_lock:
        known_epoch, known = _acked.get(slot, ("", 0))
        if known_epoch == epoch and mark > known:
            _acked[slot] = (epoch, mark)


def published_mark(slug: str, epoch: str | None) -> int:
    """The highest vote sequence any process published as acknowledged for this campaign
    epoch (0 if none, or if the control Redis does not answer)."""
    if not epoch:
        return 0
    try:
        value = redis_store.client.hget(_mark_key(slug), epoch)
    except VOTE_REDIS_ERRORS:
        log.warning("acknowledged mark of %s unreadable", slug)
        return 0
    return int(value or 0)


def my_quota(slug: str, voter: dict[str, Any]) -> dict[str, Any]:
    """What the voter has left today (in the campaign's time zone), read from the same quota
    hash the vote script spends; for the H5 page's "votes left today"."""
    keys = CampaignKeys.of(slug)
    voter_id = str(voter["sub"])
    try:
        zone = _campaign_zone(keys, slug)
        day = clock().astimezone(zone).strftime("%Y-%m-%d")
        per_day, per_nominee = redis_store.votes.hmget(keys.meta, ["per_day", "per_nominee"])
        spent = redis_store.votes.hgetall(keys.quota(day, voter_id))
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable("投票服务暂时不可用，请稍后再试") from exc
    per_day_n = int(per_day or 0)
    used = int(spent.pop(b"_t", 0) or 0)
    return {
        "day": day,
        "votes_per_day": per_day_n,
        "votes_per_nominee_per_day": int(per_nominee or 0),
        "remaining_today": max(per_day_n - used, 0),
        "voted_today": {k.decode(): int(v) for k, v in spent.items()},
    }


# --- counts and rankings ----------------------------------------------------------------------


def counts_hidden(campaign: Campaign, now: datetime | None = None) -> bool:
    rules = campaign.rules or {}
    if rules.get("hide_counts"):
        return True
    since = rules.get("hide_counts_from")
    if since:
        return (now or utcnow()) >= datetime.fromisoformat(since)
    return False


def vote_counts(campaign: Campaign, nominees: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """{number: {votes, rank}} for (number, category) pairs, from Redis, in one pipeline."""
    if not nominees:
        return {}
    keys = CampaignKeys.of(campaign.slug)
    try:
        raw = redis_store.votes.hmget(keys.counts, [number for number, _ in nominees])
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    counts = [int(value or 0) for value in raw]
    result: dict[str, dict[str, int]] = {}
    # One campaign's rank keys share its slot: on a cluster this pipeline goes to one node.
    rank_pipe = redis_store.votes.pipeline(transaction=False)
    for (number, category), votes in zip(nominees, counts, strict=True):
        # Competition ranking: 1 + how many in the category have strictly more votes.
        rank_pipe.zcount(keys.rank(category), f"({votes}", "+inf")
        result[number] = {"votes": votes}
    try:
        above = rank_pipe.execute()
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    for (number, _), higher in zip(nominees, above, strict=True):
        result[number]["rank"] = int(higher) + 1
    return result


def ranking(campaign: Campaign, category: Category, limit: int = 100) -> list[dict[str, Any]]:
    keys = CampaignKeys.of(campaign.slug)
    try:
        rows = redis_store.votes.zrevrange(keys.rank(category.code), 0, -1, withscores=True)
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    scores = {member.decode(): int(score) for member, score in rows}
    nominees = db.session.scalars(
        select(Nomination).where(
            Nomination.campaign_id == campaign.id,
            Nomination.category_id == category.id,
            Nomination.status == "approved",
        )
    ).all()
    ordered = sorted(nominees, key=lambda n: (-scores.get(n.number or "", 0), n.number_seq or 0))
    items: list[dict[str, Any]] = []
    previous: int | None = None
    rank = 0
    for position, nomination in enumerate(ordered[:limit], start=1):
        votes = scores.get(nomination.number or "", 0)
        if votes != previous:
            rank = position
            previous = votes
        items.append(
            {
                "number": nomination.number,
                "name": nomination.name,
                "unit": nomination.unit.name,
                "votes": votes,
                "rank": rank,
            }
        )
    return items


# --- the ledger drain -------------------------------------------------------------------------


def _chain_hash(prev: str, row: dict[str, Any]) -> str:
    material = "|".join(
        [
            prev,
            row["id"],
            str(row["campaign_id"]),
            row["nominee_number"],
            str(row["voter_id"]),
            str(_ms(row["at"])),
            row["ip"],
            row["device"] or "",
            row["written_status"],
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _ensure_group(client: Any, stream: str) -> None:
    try:
        client.xgroup_create(stream, DRAIN_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _decode(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in fields.items()}


def drain_campaign(
    slug: str,
    *,
    batch: int = 500,
    consumer: str = "drain",
    idle_ms: int = 30000,
    max_seconds: float | None = None,
    on_batch: Callable[[], object] | None = None,
) -> int:
    """Move ledger entries into the votes table; acknowledge them only after commit.

    Entries a crashed drainer had read but not acknowledged are claimed again after ``idle_ms``.
    Inserting is idempotent on the vote id, so an entry drained twice is stored once.

    ``max_seconds``: return after this long even if entries keep arriving (under a steady vote
    load the stream is never empty, and a drain that never returns cannot be stopped warmly);
    the next drain carries on. ``on_batch`` is called after each acknowledged batch (the drain
    job renews its lock there)."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        return 0
    keys = CampaignKeys.of(slug)
    client = redis_store.votes
    _ensure_group(client, keys.ledger)
    total = 0
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while True:
        claimed = client.xautoclaim(
            keys.ledger, DRAIN_GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=batch
        )
        entries = list(claimed[1]) if claimed else []
        if not entries:
            fresh = client.xreadgroup(DRAIN_GROUP, consumer, {keys.ledger: ">"}, count=batch)
            entries = list(fresh[0][1]) if fresh else []
        if not entries:
            return total
        _store_batch(campaign, entries)
        db.session.commit()
        ids = [entry_id for entry_id, _ in entries]
        pipe = client.pipeline(transaction=True)
        pipe.xack(keys.ledger, DRAIN_GROUP, *ids)
        pipe.xdel(keys.ledger, *ids)
        pipe.execute()
        total += len(entries)
        if on_batch is not None:
            on_batch()
        if deadline is not None and time.monotonic() >= deadline:
            return total


def _insert(model: Any) -> Any:
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(model)


def _store_batch(campaign: Campaign, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
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
    votes = [(entry_id, _decode(fields)) for entry_id, fields in entries]
    vote_ids = [f["id"] for _, f in votes if f.get("kind") == "vote"]
    existing = (
        set(db.session.scalars(select(Vote.id).where(Vote.id.in_(vote_ids)))) if vote_ids else set()
    )
    rows = []
    index, prev = head.chain_index, head.head_hash
    for entry_id, fields in votes:
        if fields.get("kind") == "freeze":
            _store_freeze(campaign, entry_id.decode(), fields)
            continue
        if fields["id"] in existing:
            continue  # drained before a crash lost the acknowledgement
        existing.add(fields["id"])
        at = datetime.fromtimestamp(int(fields["t"]) / 1000, UTC)
        created = fields.get("vc")
        row = {
            "id": fields["id"],
            "campaign_id": campaign.id,
            "seq": int(fields["seq"]),
            "category_code": fields["c"],
            "nominee_number": fields["n"],
            "voter_id": int(fields["v"]),
            "voter_created_at": datetime.fromtimestamp(int(created) / 1000, UTC)
            if created
            else None,
            "at": at,
            "day": fields["day"],
            "ip": fields["ip"],
            "device": fields.get("dev") or None,
            "user_agent": fields.get("ua") or None,
            "status": fields["st"],
            "written_status": fields["st"],
            "status_reason": fields.get("why") or None,
        }
        index += 1
        row["chain_index"] = index
        row["prev_hash"] = prev
        row["hash"] = _chain_hash(prev, row)
        prev = row["hash"]
        row["drained_at"] = utcnow()
        rows.append(row)
    if rows:
        # One cached statement sent as an executemany (batched VALUES by the driver): a
        # multi-VALUES statement built per batch cost more to compile than to run.
        db.session.connection().execute(
            _insert(Vote.__table__).on_conflict_do_nothing(index_elements=["id"]), rows
        )
        head.chain_index = index
        head.head_hash = prev
    db.session.flush()


def _store_freeze(campaign: Campaign, stream_id: str, fields: dict[str, str]) -> None:
    frozen_at = datetime.fromtimestamp(int(fields["t"]) / 1000, UTC)
    until = datetime.fromtimestamp(int(fields["until"]) / 1000, UTC)
    baseline = float(fields.get("baseline") or 0)
    explanation = (
        f"候选人 {fields['n']} 在一分钟内获得 {fields['minute_votes']} 票，"
        f"远高于其前十分钟平均每分钟 {baseline:.1f} 票的节奏，系统自动冻结投票至 "
        f"{until.isoformat()}，触发的这一票已暂存待核。"
    )
    db.session.execute(
        _insert(NomineeFreeze)
        .values(
            campaign_id=campaign.id,
            nominee_number=fields["n"],
            stream_id=stream_id,
            frozen_at=frozen_at,
            frozen_until=until,
            minute_votes=int(fields["minute_votes"]),
            baseline_per_minute=f"{baseline:.2f}",
            explanation=explanation,
        )
        .on_conflict_do_nothing(index_elements=["stream_id"])
    )


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
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    oldest_age = None
    if oldest:
        ms = int(oldest[0][0].decode().split("-")[0])
        oldest_age = max(0.0, time.time() - ms / 1000)
    drained = db.session.scalar(select(func.count(Vote.id)).where(Vote.campaign_id == campaign.id))
    return {
        "stream_length": length,
        "pending": pending,
        "oldest_undrained_age_seconds": oldest_age,
        "drained_votes": drained or 0,
    }


# --- verification and reconciliation ----------------------------------------------------------


def verify_chain(campaign: Campaign) -> dict[str, Any]:
    """Recompute every link of the campaign's vote chain; report the first break."""
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
                or _chain_hash(prev, row) != vote.hash
            ):
                return {"ok": False, "checked": checked, "broken_at": vote.id, "head": prev}
            prev = vote.hash
    finally:
        result.close()
    head = db.session.get(LedgerHead, campaign.id)
    if head is not None and (head.head_hash != prev or head.chain_index != checked):
        return {"ok": False, "checked": checked, "broken_at": "head", "head": prev}
    return {"ok": True, "checked": checked, "head": prev}


_SNAPSHOT = """
local counts = redis.call('HGETALL', KEYS[1])
local pending = redis.call('HGETALL', KEYS[2])
local seq = redis.call('GET', KEYS[3])
local stream = redis.call('XRANGE', KEYS[4], '-', '+')
return {counts, pending, seq or '0', stream}
"""


_RERANK = """
local fixed = 0
local wanted = {}
for i = 1, #ARGV do
  local number = ARGV[i]
  wanted[number] = true
  local count = tonumber(redis.call('HGET', KEYS[1], number) or '0')
  local score = redis.call('ZSCORE', KEYS[2], number)
  if (score == false and count > 0) or (score ~= false and tonumber(score) ~= count) then
    redis.call('ZADD', KEYS[2], count, number)
    fixed = fixed + 1
  end
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if not wanted[member] then
    redis.call('ZREM', KEYS[2], member)
    fixed = fixed + 1
  end
end
return fixed
"""


def reconcile(campaign: Campaign) -> dict[str, Any]:
    """Rebuild counters and rankings from the votes table plus the undrained stream.

    Safe during voting: counters, sequence and stream are read in one atomic snapshot, database
    rows are taken up to the snapshot's sequence, and repairs are applied as increments, so votes
    cast meanwhile are neither lost nor counted twice."""
    keys = CampaignKeys.of(campaign.slug)
    client = redis_store.votes
    state = campaign_state(campaign)
    write_state(state)  # also lifts the sequence above every stored and acknowledged vote
    mark = published_mark(campaign.slug, state["meta"]["epoch"])
    counts_raw, pending_raw, seq_raw, stream = client.eval(
        _SNAPSHOT, 4, keys.counts, keys.pending, keys.seq, keys.ledger
    )
    live_valid = _pairs(counts_raw)
    live_pending = _pairs(pending_raw)
    seq = int(seq_raw)
    categories = dict(
        db.session.execute(
            select(Nomination.number, Category.code)
            .join(Category, Nomination.category_id == Category.id)
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        ).all()
    )

    # Raw EVAL replies give each stream entry's fields as a flat [key, value, ...] list.
    undrained = [_decode(dict(zip(flat[::2], flat[1::2], strict=True))) for _, flat in stream]
    undrained = [f for f in undrained if f.get("kind") == "vote"]
    # The stored counts and "which undrained votes are stored" are two statements: a drain batch
    # committing between them would be in neither, and the repairs below would take a whole
    # batch off correct counters. The drain moves the ledger head in the batch's own
    # transaction, so a head unchanged across both reads proves no batch landed between them.
    for _attempt in range(20):
        head = _chain_index(campaign)
        expected_valid: Counter[str] = Counter()
        expected_pending: Counter[str] = Counter()
        for number, status, count in db.session.execute(
            select(Vote.nominee_number, Vote.status, func.count(Vote.id))
            .where(Vote.campaign_id == campaign.id, Vote.seq <= seq)
            .group_by(Vote.nominee_number, Vote.status)
        ).all():
            if status == "valid":
                expected_valid[number] += count
            elif status == "pending":
                expected_pending[number] += count
        stored = set()
        if undrained:
            stored = set(
                db.session.scalars(select(Vote.id).where(Vote.id.in_([f["id"] for f in undrained])))
            )
        if _chain_index(campaign) == head:
            break
    else:
        raise ServiceUnavailable("计票入库持续进行中，请稍后再对账")
    for fields in undrained:
        if fields["id"] in stored:
            continue
        target = expected_valid if fields["st"] == "valid" else expected_pending
        target[fields["n"]] += 1
    missing = missing_sequences(
        campaign, max(seq, mark), {int(f["seq"]) for f in undrained if f.get("seq")}
    )

    repairs: list[dict[str, Any]] = []
    pipe = client.pipeline(transaction=True)
    for number in sorted(set(expected_valid) | set(live_valid)):
        delta = expected_valid[number] - live_valid.get(number, 0)
        if delta:
            pipe.hincrby(keys.counts, number, delta)
            repairs.append(
                {
                    "nominee": number,
                    "counter": "valid",
                    "was": live_valid.get(number, 0),
                    "now": expected_valid[number],
                }
            )
    for number in sorted(set(expected_pending) | set(live_pending)):
        delta = expected_pending[number] - live_pending.get(number, 0)
        if delta:
            pipe.hincrby(keys.pending, number, delta)
            repairs.append(
                {
                    "nominee": number,
                    "counter": "pending",
                    "was": live_pending.get(number, 0),
                    "now": expected_pending[number],
                }
            )
    pipe.execute()

    # Rankings follow the (now repaired) counters, each category rewritten by one script so a
    # vote landing meanwhile cannot be overwritten with a stale count.
    by_category: dict[str, list[str]] = {}
    for number, code in categories.items():
        by_category.setdefault(code, []).append(number)
    ranking_fixes = 0
    for code, numbers in by_category.items():
        ranking_fixes += int(client.eval(_RERANK, 2, keys.counts, keys.rank(code), *numbers))
    if repairs:
        log.warning("reconcile %s repaired %d counters", campaign.slug, len(repairs))
    if missing["count"]:
        log.error(
            "reconcile %s: %d numbered vote(s) are in neither the database nor the stream "
            "(lost by the vote Redis): %s",
            campaign.slug,
            missing["count"],
            missing["ranges"],
        )
    return {
        "campaign": campaign.slug,
        "sequence": seq,
        "acknowledged_mark": mark,
        "undrained": len(undrained),
        "repairs": repairs,
        "ranking_fixes": ranking_fixes,
        "missing": missing,
    }


def _chain_index(campaign: Campaign) -> int:
    return int(
        db.session.scalar(
            select(LedgerHead.chain_index).where(LedgerHead.campaign_id == campaign.id)
        )
        or 0
    )


MISSING_RANGES_SHOWN = 50


def missing_sequences(campaign: Campaign, top: int, undrained: set[int]) -> dict[str, Any]:
    """Vote numbers 1..``top`` that are neither stored nor waiting in the stream.

    The vote script numbers only accepted votes, one by one, and every numbered vote goes to
    the stream in the same atomic step; the drain moves it to the database. So a number found
    in neither place is a vote Redis accepted (and normally acknowledged) and then lost: an
    asynchronous replica promoted before it had the vote, or a restore from older data."""
    if top <= 0:
        return {"count": 0, "ranges": []}
    in_range = (Vote.campaign_id == campaign.id, Vote.seq >= 1, Vote.seq <= top)
    distinct, low, high = db.session.execute(
        select(func.count(func.distinct(Vote.seq)), func.min(Vote.seq), func.max(Vote.seq)).where(
            *in_range
        )
    ).one()
    if distinct == top:
        return {"count": 0, "ranges": []}
    holes: list[tuple[int, int]] = []
    if not distinct:
        holes.append((1, top))
    else:
        if low > 1:
            holes.append((1, low - 1))
        previous = func.lag(Vote.seq).over(order_by=Vote.seq).label("previous")
        steps = select(Vote.seq.label("seq"), previous).where(*in_range).subquery()
        for before, after in db.session.execute(
            select(steps.c.previous, steps.c.seq)
            .where(steps.c.seq - steps.c.previous > 1)
            .order_by(steps.c.seq)
        ):
            holes.append((before + 1, after - 1))
        if high < top:
            holes.append((high + 1, top))
    waiting = sorted(undrained)
    ranges: list[list[int]] = []
    count = 0
    for start, end in holes:
        cursor = start
        for number in waiting[bisect_left(waiting, start) : bisect_right(waiting, end)]:
            if number > cursor:
                ranges.append([cursor, number - 1])
                count += number - cursor
            cursor = number + 1
        if cursor <= end:
            ranges.append([cursor, end])
            count += end - cursor + 1
    return {"count": count, "ranges": ranges[:MISSING_RANGES_SHOWN]}


def _pairs(raw: Any) -> dict[str, int]:
    if isinstance(raw, dict):
        return {k.decode(): int(v) for k, v in raw.items()}
    return {raw[i].decode(): int(raw[i + 1]) for i in range(0, len(raw), 2)}


# --- challenges (captcha) ---------------------------------------------------------------------

# No 0/O, 1/I, 2/Z, 5/S, 8/B: characters a person on a small screen cannot mix up.
CAPTCHA_ALPHABET = "ACDEFHJKLMNPRTUVWXY34679"


def _captcha_text() -> str:
    return "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(4))


def _captcha_png(text: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

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
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{challenge_id}:{answer.strip().upper()}".encode(), "sha256").hexdigest()


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
