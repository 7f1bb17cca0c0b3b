"""The audit log of a campaign as rows (actions, roles and objects in Chinese, the action's code
kept in the last column), and as a CSV file that Excel opens safely."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from awards.export_format import as_json, campaign_of, iso_time, streamed, zone_of
from campaigns.labels import audit_label, audit_object_label, role_label
from campaigns.models import Campaign
from core.audit import AuditLog

AUDIT_HEADERS = (
    "时间",
    "操作人",
    "角色",
    "操作",
    "对象类型",
    "对象编号",
    "理由",
    "变更前",
    "变更后",
    "IP",
    "操作代码",
)


def audit_rows(campaign: Campaign, zone: ZoneInfo) -> Iterator[tuple[str, ...]]:
    statement = (
        select(
            AuditLog.at,
            AuditLog.actor_name,
            AuditLog.actor_role,
            AuditLog.action,
            AuditLog.object_type,
            AuditLog.object_id,
            AuditLog.reason,
            AuditLog.before,
            AuditLog.after,
            AuditLog.ip,
        )
        .where(AuditLog.campaign_id == campaign.id)
        .order_by(AuditLog.id)
    )
    for at, actor, role, action, object_type, object_id, reason, before, after, ip in streamed(
        statement
    ):
        # The action, role and object in the words the screens use (campaigns.labels); the
        # action's code stays in the last column, for whoever reads the log by machine.
        yield (
            iso_time(at, zone),
            actor or "system",
            role_label(role),
            audit_label(action),
            audit_object_label(object_type),
            object_id,
            reason or "",
            as_json(before),
            as_json(after),
            ip or "",
            action,
        )


# --- the audit CSV ----------------------------------------------------------------------------

_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    """A cell starting with ``= + - @`` (or a tab / CR) gets a leading apostrophe, as OWASP
    recommends against CSV injection."""
    return "'" + value if value.startswith(_CSV_FORMULA) else value


def build_audit_csv(campaign_id: int, path: Path) -> Path:
    """The campaign's audit log as CSV: UTF-8 with a BOM, so Excel reads the Chinese right."""
    campaign = campaign_of(campaign_id)
    zone = zone_of(campaign)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow((f"时间（{zone.key}）", *AUDIT_HEADERS[1:]))
        for row in audit_rows(campaign, zone):
            writer.writerow([_csv_safe(value) for value in row])
    return path
