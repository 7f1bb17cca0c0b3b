"""Acknowledged sequence marks: the highest vote number each process gave a voter, kept and shared.

Every accepted vote takes the campaign's next sequence number. Each process remembers the
highest number it acknowledged (per vote Redis and campaign epoch) and hands it to the vote
script as a floor: a vote Redis that comes back lower (a Sentinel or cluster failover that
lost the unreplicated tail, a restore from an older file) has its sequence lifted above every
number a voter was given, so the lost votes stay a visible gap that reconciliation reports.
Processes also publish their mark to the control Redis (REDIS_URL) every
VOTE_ACK_MARK_INTERVAL seconds and take the highest mark back.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import current_app

from core.extensions import VOTE_REDIS_ERRORS, redis_store

log = logging.getLogger("zuimei.voting")

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


def acked_floor(slot: tuple[str, str]) -> tuple[str, int]:
    """(epoch, highest sequence) this process acknowledged for a (vote Redis, campaign) slot."""
    return _acked.get(slot, ("", 0))


def note_acked(slug: str, slot: tuple[str, str], epoch: str, seq: int) -> None:
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
