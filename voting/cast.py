"""The vote itself (the hot path): one Redis script decides, counts and records it; no SQL."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import redis
from flask import current_app

from core import geo
from core.errors import AppError, ServiceUnavailable
from core.extensions import VOTE_REDIS_ERRORS, is_cluster, redis_store
from core.types import utcnow
from voting import marks, script_call, state
from voting.keys import CampaignKeys, ms
from voting.models import Vote
from voting.phone import PHONE_CLAIM
from voting.phone import REFUSAL as PHONE_REFUSAL

log = logging.getLogger("zuimei.voting")

# The vote path reads the time through this, so tests can stand at 23:59 Asia/Shanghai.
clock: Callable[[], datetime] = utcnow

_REFUSALS: dict[str, tuple[int, str]] = {
    "voting_closed": (403, "投票尚未开始或已经结束"),
    "nominee_not_found": (404, "候选人不存在"),
    "nominee_frozen": (403, "该候选人的投票暂时冻结，正在核查异常票数，请稍后再试"),
    "daily_quota_exhausted": (429, "今日票数已用完，明天再来吧"),
    "nominee_daily_limit": (429, "今天已为该候选人投过票，明天再来吧"),
    "challenge_required": (428, "投票过于频繁，请先完成验证"),
    "rate_limited": (429, "操作太频繁，请稍后再试"),
    "voter_blocked": (403, "你的投票资格已被本活动暂停，如有疑问请联系主办方"),
}

_script: Any = None
_script_lock = threading.Lock()

# What the drain can store: free text from the request is cut to its column here, at the door,
# so that nothing unbounded enters the ledger stream and no entry is refused by the database.
DEVICE_MAX = Vote.__table__.c.device.type.length
USER_AGENT_MAX = Vote.__table__.c.user_agent.type.length


def _bounded(text: str | None, limit: int) -> str:
    """``text`` without NUL characters (PostgreSQL text cannot hold one), cut to ``limit``."""
    if not text:
        return ""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:limit]


def _vote_script() -> Any:
    """The vote script, registered once per process and then called by its SHA (EVALSHA).
    When a server answers NOSCRIPT (a restart, a Sentinel failover) it is loaded again:
    by ``voting.script_call`` on a plain server, by redis-py otherwise; on a cluster SCRIPT LOAD
    goes to every primary, so the node owning the campaign's slot has it."""
    global _script
    if _script is None:
        with _script_lock:
            if _script is None:
                source = resources.files("voting").joinpath("lua/vote.lua").read_text()
                _script = redis_store.votes.register_script(source)
    return _script


class _Local(NamedTuple):
    """What the vote path needs of a campaign's rules besides the script's meta."""

    zone: ZoneInfo
    regions: frozenset[str]  # 地区限制; empty: any
    phone: bool  # 一人一号: a verified phone (the token's pv claim) is required


_local_cache: dict[str, tuple[float, int, _Local]] = {}


def _campaign_local(keys: CampaignKeys, slug: str) -> _Local:
    """The campaign's time zone, allowed regions and phone rule, cached for a minute per process
    (rules cannot change while voting) and dropped at once when this process publishes the
    campaign again (``voting.state.published``)."""
    generation = state.published.get(slug, 0)
    cached = _local_cache.get(slug)
    if cached and cached[0] > time.monotonic() and cached[1] == generation:
        return cached[2]
    fields = ["tz", "regions", "phone"]
    name, regions, phone = redis_store.votes.hmget(keys.meta, fields)
    if name is None:
        state.load_state(slug)
        generation = state.published.get(slug, 0)
        name, regions, phone = redis_store.votes.hmget(keys.meta, fields)
    local = _Local(
        zone=ZoneInfo(name.decode() if name else "Asia/Shanghai"),
        regions=frozenset(regions.decode().split("\n")) if regions else frozenset(),
        phone=phone == b"1",
    )
    _local_cache[slug] = (time.monotonic() + 60, generation, local)
    return local


def _campaign_zone(keys: CampaignKeys, slug: str) -> ZoneInfo:
    return _campaign_local(keys, slug).zone


def check_region(ip: str, allowed: frozenset[str]) -> None:
    """Refuse (403 region_restricted) a voter whose address the data places outside ``allowed``.
    Addresses it cannot place (IPv6, private, unknown) pass: see docs/voting.md, "Regions"."""
    region = geo.lookup(ip)
    if geo.region_allowed(region, allowed):
        return
    names = sorted(allowed)
    raise AppError(
        f"本活动仅限{'、'.join(names)}地区的用户参与投票",
        code="region_restricted",
        status=403,
        details={"allowed_regions": names, "region": region.label() if region else None},
    )


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
    browser_device: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Decide and record one vote in one Redis round trip. Returns (answer, replayed).

    ``ip`` is already an IP address: the one caller, the vote route, parses it at the door with
    ``core.http.client_address()``. Device and user agent are cut to their columns.
    ``browser_device``: the id of the browser's signed device cookie (``core.device``), when it
    sent one; the per-address soft limit counts such a browser on its own."""
    keys = CampaignKeys.of(slug)
    voter_id = str(voter["sub"])
    number = number.strip().upper()
    config = current_app.config
    slot = (redis_store.vote_url(), keys.base)
    floor_epoch, floor_seq = marks.acked_floor(slot)
    try:
        client = redis_store.votes
        now = clock()
        zone, regions, phone_required = _campaign_local(keys, slug)
        if phone_required and voter.get(PHONE_CLAIM) != 1:
            code, status, message = PHONE_REFUSAL
            raise AppError(message, code=code, status=status)
        if regions:
            check_region(ip, regions)
        day = now.astimezone(zone).strftime("%Y-%m-%d")
        minute = int(now.timestamp() // 60)
        fixed = keys.vote_fixed
        # The order of KEYS in voting/lua/vote.lua.
        script_keys = [
            fixed[0],
            fixed[1],
            fixed[2],
            keys.quota(day, voter_id),
            keys.idem(voter_id, idempotency_key or "-"),
            *fixed[3:7],
            keys.ip_minute(ip, minute),
            *fixed[7:],
            keys.ip_minute(f"{ip}~{browser_device or '-'}", minute),
        ]
        # The order of ARGV in voting/lua/vote.lua.
        args = [
            ms(now),
            day,
            voter_id,
            ip,
            "1" if has_pass else "0",
            str(voter.get("c", "")),
            minute,
            "1" if idempotency_key else "0",
            int(config["VOTE_IP_PER_MINUTE"]),
            int(config["VOTE_VOTER_PER_MINUTE"]),
            secrets.token_hex(4),
            floor_epoch,
            floor_seq,
            "1" if int(config.get("VOTE_WAIT_REPLICAS") or 0) > 0 else "0",
            int(config.get("VOTE_SEQ_REWIND_MARGIN") or 0),
            number,
            _bounded(device, DEVICE_MAX),
            _bounded(user_agent, USER_AGENT_MAX),
            idempotency_key or "",
        ]
        result, replicated = _run_vote_script(client, script_keys, args)
        if result[0] == b"sync":
            state.load_state(slug)
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
                "past it plus the rewind margin (votes were lost by a failover or restore; "
                "the rewind is recorded and quotas rebuilt; run votes reconcile)",
                slug,
                lifted,
                floor_seq,
            )
        marks.note_acked(slug, slot, epoch, int(seq))
    return orjson.loads(result[1]), outcome == "replay"


def _run_vote_script(client: Any, keys: list[str], args: list[Any]) -> tuple[Any, int | None]:
    """Run the vote script; in the strict mode (``VOTE_WAIT_REPLICAS``) also WAIT for replicas
    on the same connection. Returns (script reply, replicas confirmed or None)."""
    wanted = int(current_app.config.get("VOTE_WAIT_REPLICAS") or 0)
    script = _vote_script()
    if wanted <= 0:
        return script_call.call_script(client, script, keys, args), None
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
        # "~m" and "~c" count the voter's attempts of a minute (the script's hard limit).
        "voted_today": {k.decode(): int(v) for k, v in spent.items() if not k.startswith(b"~")},
    }
