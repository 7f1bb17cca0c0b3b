"""Daily quotas on what is stored: uploads per nomination, objection attachments per address.

A quota counts attempts (a refused file cost the server as much as an accepted one) in Redis,
per day of the campaign's time zone, so it resets at local midnight like every "per day" rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from core.errors import RateLimited
from core.extensions import redis_store
from core.types import utcnow


def spend(
    scope: str,
    who: str | int,
    *,
    limit: int,
    timezone: str | None,
    code: str,
    message: str,
) -> int:
    """Count one attempt of ``who`` today; refuse it (429 ``code``, with Retry-After until the
    local midnight) past ``limit``. A limit of 0 or less is off. Returns today's count."""
    if limit <= 0:
        return 0
    zone = ZoneInfo(timezone or current_app.config["DEFAULT_TIMEZONE"])
    now = utcnow().astimezone(zone)
    key = redis_store.key("quota", scope, who, now.date().isoformat())
    pipe = redis_store.client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, 2 * 86400)
    count = int(pipe.execute()[0])
    if count > limit:
        retry = _seconds_to_midnight(now)
        raise RateLimited(
            message,
            code=code,
            details={"limit": limit, "retry_after": retry},
            headers={"Retry-After": str(retry)},
        )
    return count


def _seconds_to_midnight(now: datetime) -> int:
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    # In UTC: aware datetimes of one zone subtract as wall times, wrong across a DST change.
    left = midnight.astimezone(UTC) - now.astimezone(UTC)
    return max(1, int(left.total_seconds() + 0.999))
