"""The one clock the app reads for calendar time; a test run may move it ahead as a whole.

Everything that decides by the calendar — campaign windows, the voting day in the campaign's
time zone, token lifetimes, timestamps stored in the database — reads ``utcnow()`` or
``epoch()`` from here. ``ZUIMEI_CLOCK_OFFSET`` (seconds, default 0) shifts it, so the suite can
run "400 days from now" or "a minute before a campaign-local midnight" (docs/testing.md) and
prove that nothing depends on today's date. Production refuses a non-zero offset
(core/config.py). Durations measured against another process's clock (Redis stream ids, file
modification times, WeChat's timestamps) keep reading ``time.time()`` directly.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OFFSET_VARIABLE = "ZUIMEI_CLOCK_OFFSET"


class ClockError(ValueError):
    """ZUIMEI_CLOCK_OFFSET is not a number of seconds."""


def _offset_from_environment() -> float:
    raw = os.environ.get(OFFSET_VARIABLE, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError as exc:
        raise ClockError(f"{OFFSET_VARIABLE} must be a number of seconds, not {raw!r}") from exc


_offset_seconds = _offset_from_environment()


def offset_seconds() -> float:
    """How far this process's clock is moved from the machine's."""
    return _offset_seconds


def set_offset(seconds: float) -> None:
    """Move the clock of this process, and of every process it starts from now on."""
    global _offset_seconds
    _offset_seconds = float(seconds)
    if _offset_seconds:
        os.environ[OFFSET_VARIABLE] = repr(_offset_seconds)
    else:
        os.environ.pop(OFFSET_VARIABLE, None)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC) + timedelta(seconds=_offset_seconds)


def epoch() -> float:
    """Now, in seconds since the epoch."""
    return time.time() + _offset_seconds


def zone(name: str | None, default: str = "Asia/Shanghai") -> ZoneInfo:
    """A campaign's or programme's time zone by name; ``default`` when unset or unknown (a zone
    the machine's tz database lacks must not make a page or a job fail)."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)
