"""Fixed-window rate limits on the app's own Redis: one pipelined round trip per request.

Flask-Limiter was tried first; it binds one storage per Limiter instance, so several app
instances in one process (the test suite, a worker beside a web app) overwrite each other's
storage. This keeps the same semantics ("120/minute;1000/hour") per app.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app

from core.auth import client_ip
from core.errors import RateLimited
from core.extensions import redis_store

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_PART = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


def parse_limits(spec: str) -> list[tuple[int, int]]:
    """'120/minute;1000/hour' → [(120, 60), (1000, 3600)]."""
    limits = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"bad rate limit {part!r}")
        limits.append((int(match.group(1)), _UNITS[match.group(2)]))
    return limits


def rate_limit(config_key: str, key_func: Callable[[], str] | None = None) -> Callable[[F], F]:
    """Refuse with 429 rate_limited (and Retry-After) past the limits in ``config[config_key]``,
    counted per client address or per ``key_func()``."""

    def decorator(view: F) -> F:
        scope = f"{view.__module__}.{view.__name__}"

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            limit(config_key, scope, key_func() if key_func else f"ip:{client_ip()}")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def limit(config_key: str, scope: str, who: str) -> None:
    """Count one hit of ``who`` in ``scope`` against the limits in ``config[config_key]``
    ("" or unset: none; none either when RATELIMIT_ENABLED is off): 429 ``RateLimited`` past
    any of them."""
    spec = current_app.config.get(config_key)
    if spec and current_app.config.get("RATELIMIT_ENABLED", True):
        _hit(scope, who, parse_limits(spec))


def _hit(scope: str, who: str, limits: list[tuple[int, int]]) -> None:
    """Count one hit of ``who`` in ``scope``; 429 ``RateLimited`` past any of ``limits``."""
    now = time.time()
    pipe = redis_store.client.pipeline(transaction=False)
    keys = []
    for _, seconds in limits:
        window = int(now // seconds)
        key = redis_store.key("rl", scope, who, seconds, window)
        keys.append(key)
        pipe.incr(key)
        pipe.expire(key, seconds + 1)
    counts = pipe.execute()[::2]
    for (amount, seconds), count in zip(limits, counts, strict=True):
        if count > amount:
            retry = max(1, int(seconds - now % seconds + 0.999))
            raise RateLimited(
                "操作太频繁，请稍后再试",
                details={"retry_after": retry, "limit": f"{amount}/{seconds}s"},
                headers={"Retry-After": str(retry)},
            )
