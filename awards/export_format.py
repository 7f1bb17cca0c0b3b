"""How exports show values: the campaign, its time zone, dates, JSON; rows read in batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.models import Campaign
from core.errors import NotFound
from core.extensions import db

BATCH = 500


def campaign_of(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("评选活动不存在", code="campaign_not_found")
    return campaign


def zone_of(campaign: Campaign) -> ZoneInfo:
    try:
        return ZoneInfo(campaign.timezone or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def to_local(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """An aware UTC time as a naive local one (Excel has no time zones)."""
    return value.astimezone(zone).replace(tzinfo=None) if value is not None else None


def iso_time(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(timespec="seconds") if value is not None else ""


def chinese_day(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    local = value.astimezone(zone)
    return f"{local.year}年{local.month}月{local.day}日"


def as_json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def plain_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def streamed(statement: Any) -> Iterator[Any]:
    """Rows of ``statement`` fetched ``BATCH`` at a time (a server-side cursor on PostgreSQL)."""
    yield from db.session.execute(statement.execution_options(yield_per=BATCH))
