"""Exports for the office: the campaign workbook, the printable winners' list, the audit CSV.

They are built by an RQ job on the ``exports`` queue (``export_job``) into
``<instance>/exports/`` and downloaded by admins once the job has finished. Choices worth knowing:

* The workbook is an openpyxl *write-only* workbook: rows are streamed to disk as they are read
  (queries use ``yield_per``), so memory stays flat however large the campaign is.
* The job reads only. On SQLite it opens a plain deferred transaction (never ``BEGIN IMMEDIATE``,
  which would hold the write lock for the whole export); on PostgreSQL it reads in one
  ``REPEATABLE READ`` snapshot, so every sheet describes the same moment.
* User text never becomes a formula: a string cell that would start with ``=`` is forced to be
  text in the workbook, and CSV cells starting with ``= + - @`` (or a tab / CR) get a leading
  apostrophe, as OWASP recommends against CSV injection. Characters XML cannot carry are dropped.
* Times are shown in the campaign's time zone: as real Excel date-times in the data sheets (the
  header names the zone), as ISO 8601 with offset in the audit sheet and the CSV.
* A file is written under a temporary name and renamed into place, so a retried job or a reader
  never sees half a file. Files older than ``KEEP_SECONDS`` (past the job result's life, after
  which no download link reaches them) are removed when a new export is started.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from marshmallow import Schema, fields, validate
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from rq import get_current_job
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import Job
from sqlalchemy import case, func, select

from awards.models import Criterion, ResultVersion, ScoreSheet
from campaigns.models import Account, Campaign, Category, Unit
from core import audit
from core.audit import AuditLog
from core.errors import AppError, Conflict, NotFound, ValidationFailed
from core.extensions import db, redis_store, sqlite_write_intent
from core.jobs import app_job
from nominations.models import Nomination

Progress = Callable[[int], None]

KINDS = ("workbook", "winners_html", "audit_csv")
EXTENSIONS = {"workbook": "xlsx", "winners_html": "html", "audit_csv": "csv"}
MIMETYPES = {
    "workbook": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "winners_html": "text/html",
    "audit_csv": "text/csv",
}
# What the downloaded file is called (the campaign slug goes in front).
DOWNLOAD_NAMES = {
    "workbook": "评选档案.xlsx",
    "winners_html": "评选结果公示.html",
    "audit_csv": "操作日志.csv",
}
JOB_TIMEOUT = 1800
RESULT_TTL = 86400
KEEP_SECONDS = RESULT_TTL + JOB_TIMEOUT + 3600
BATCH = 500

_JOB_NAME = "awards.exports.export_job"
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME = re.compile(r"^\d+-[a-z_]+-[A-Za-z0-9_-]+\.(xlsx|html|csv)$")

_BOLD = Font(bold=True)

_STATUS_NAMES = {
    "draft": "草稿",
    "submitted": "已提交",
    "returned": "已退回",
    "approved": "已审定",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
_GENDER_NAMES = {"male": "男", "female": "女"}
_VERSION_STATUS = {
    "draft": "草稿",
    "final": "定稿",
    "published": "已公示",
    "superseded": "已被取代",
}


# --- schemas for the routes -------------------------------------------------------------------


class ExportCreateSchema(Schema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS),
        metadata={"description": "workbook (xlsx), winners_html (printable list), audit_csv"},
    )


class ExportErrorSchema(Schema):
    code = fields.String()
    message = fields.String()


class ExportStatusSchema(Schema):
    job_id = fields.String()
    kind = fields.String()
    status = fields.String(
        metadata={"description": "queued, started, finished, failed (rq's job status)"}
    )
    progress = fields.Integer(metadata={"description": "0–100"})
    file = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)
    download_url = fields.String(allow_none=True)
    error = fields.Nested(ExportErrorSchema, allow_none=True)


# --- small helpers ----------------------------------------------------------------------------


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("评选活动不存在", code="campaign_not_found")
    return campaign


def _zone(campaign: Campaign) -> ZoneInfo:
    try:
        return ZoneInfo(campaign.timezone or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """An aware UTC time as a naive local one (Excel has no time zones)."""
    return value.astimezone(zone).replace(tzinfo=None) if value is not None else None


def _iso(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(timespec="seconds") if value is not None else ""


def _day(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    local = value.astimezone(zone)
    return f"{local.year}年{local.month}月{local.day}日"


def _json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _streamed(statement: Any) -> Iterator[Any]:
    """Rows of ``statement`` fetched ``BATCH`` at a time (a server-side cursor on PostgreSQL)."""
    yield from db.session.execute(statement.execution_options(yield_per=BATCH))


# --- the workbook -----------------------------------------------------------------------------


class _Sheet:
    """A write-only sheet that turns Python values into safe cells."""

    def __init__(self, workbook: Workbook, title: str, zone: ZoneInfo) -> None:
        self.ws = workbook.create_sheet(title)
        self.zone = zone

    def header(self, *values: Any) -> None:
        row = []
        for value in values:
            cell = WriteOnlyCell(self.ws, value=self._value(value))
            cell.font = _BOLD
            row.append(cell)
        self.ws.append(row)

    def row(self, *values: Any) -> None:
        self.ws.append([self._cell(value) for value in values])

    def blank(self) -> None:
        self.ws.append([])

    def widths(self, *widths: int) -> None:
        for index, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(index)].width = width

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return ILLEGAL_CHARACTERS_RE.sub("", value)[:32767]
        if isinstance(value, bool):
            return "✓" if value else ""
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, datetime):
            return _local(value, self.zone) if value.tzinfo else value
        if isinstance(value, dict | list):
            return _json(value)
        return value

    def _cell(self, value: Any) -> Any:
        value = self._value(value)
        if isinstance(value, str) and (
            (len(value) > 1 and value.startswith("=")) or value in ERROR_CODES
        ):
            # openpyxl would store "=…" as a formula: user text must stay text.
            cell = WriteOnlyCell(self.ws, value=value)
            cell.data_type = "s"
            return cell
        return value


def build_workbook(campaign_id: int, path: Path, progress: Progress | None = None) -> Path:
    """The campaign's archive workbook, streamed (openpyxl write-only). Sheets:

    * 推荐材料 (nominations): every nomination but drafts, with its dossier fields.
    * 投票统计 (vote tallies): valid / pending / invalid per approved nominee, from the votes table.
    * 异常处理 (fraud decisions): nominee freezes and the non-valid votes counted by reason.
    * 评委评分 (jury scores): one row per submitted score sheet, a column per criterion.
    * 评选结果 (results): the latest final or published version (else the latest draft, marked),
      followed by the method, the weights and the vote ledger's chain head.
    * 操作日志 (audit log): every audit entry of the campaign.
    """
    report = progress or (lambda _pct: None)
    campaign = _campaign(campaign_id)
    zone = _zone(campaign)
    workbook = Workbook(write_only=True)
    steps: list[Callable[[Workbook, Campaign, ZoneInfo], None]] = [
        _nominations_sheet,
        _tallies_sheet,
        _fraud_sheet,
        _jury_sheet,
        _results_sheet,
        _audit_sheet,
    ]
    report(0)
    for done, step in enumerate(steps, start=1):
        step(workbook, campaign, zone)
        report(done * 90 // len(steps))
    workbook.save(path)
    report(100)
    return path


def _nominations_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "推荐材料", zone)
    sheet.widths(8, 8, 14, 20, 10, 6, 12, 14, 12, 8, 30, 60, 30, 18, 18)
    sheet.header(
        "编号",
        "状态",
        "奖项",
        "推荐单位",
        "姓名",
        "性别",
        "职称",
        "职务",
        "科室",
        "从业年限",
        "简要事迹",
        "主要事迹",
        "单位推荐意见",
        f"提交时间（{zone.key}）",
        f"审定时间（{zone.key}）",
    )
    statement = (
        select(
            Nomination.number,
            Nomination.status,
            Category.name,
            Unit.name,
            Nomination.name,
            Nomination.gender,
            Nomination.title,
            Nomination.position,
            Nomination.department,
            Nomination.years_of_service,
            Nomination.summary,
            Nomination.deeds,
            Nomination.unit_opinion,
            Nomination.submitted_at,
            Nomination.approved_at,
        )
        .join(Category, Category.id == Nomination.category_id)
        .join(Unit, Unit.id == Nomination.unit_id)
        .where(Nomination.campaign_id == campaign.id, Nomination.status != "draft")
        .order_by(
            Category.position,
            Category.id,
            Nomination.number_seq.is_(None),
            Nomination.number_seq,
            Nomination.id,
        )
    )
    for row in _streamed(statement):
        (number, status, category, unit, name, gender, *rest) = row
        sheet.row(
            number or "",
            _STATUS_NAMES.get(status, status),
            category,
            unit,
            name,
            _GENDER_NAMES.get(gender, gender),
            *rest,
        )


def _tallies_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    from voting.models import Vote

    sheet = _Sheet(workbook, "投票统计", zone)
    sheet.widths(10, 12, 16, 10, 10, 10, 10)
    sheet.header("编号", "姓名", "奖项", "有效票", "待核票", "无效票", "合计")
    counted = db.session.execute(
        select(
            Vote.nominee_number,
            func.sum(case((Vote.status == "valid", 1), else_=0)),
            func.sum(case((Vote.status == "pending", 1), else_=0)),
            func.sum(case((Vote.status == "invalid", 1), else_=0)),
            func.count(Vote.id),
        )
        .where(Vote.campaign_id == campaign.id)
        .group_by(Vote.nominee_number)
    ).all()
    tallies = {number: tuple(int(n or 0) for n in counts) for number, *counts in counted}
    nominees = (
        select(Nomination.number, Nomination.name, Category.name)
        .join(Category, Category.id == Nomination.category_id)
        .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        .order_by(Category.position, Category.id, Nomination.number_seq, Nomination.id)
    )
    for number, name, category in _streamed(nominees):
        sheet.row(number, name, category, *tallies.pop(number, (0, 0, 0, 0)))
    # Votes for a number that is no longer an approved nominee still belong in the count.
    for number in sorted(tallies):
        sheet.row(number, "（非现有候选人）", "", *tallies[number])


def _fraud_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    """For now: the vote script's automatic nominee freezes (and their lifting), and the votes
    that are not valid counted by status and reason. The fraud-flag tables (suspicious voters,
    IP clusters, the committee's decisions on them) come later and will get their own section."""
    from voting.models import NomineeFreeze, Vote

    sheet = _Sheet(workbook, "异常处理", zone)
    sheet.widths(12, 18, 18, 10, 12, 60, 18, 12, 30)
    sheet.header("自动冻结记录")
    sheet.header(
        "候选人编号",
        f"冻结时间（{zone.key}）",
        f"冻结至（{zone.key}）",
        "一分钟票数",
        "此前每分钟均值",
        "说明",
        f"解除时间（{zone.key}）",
        "解除人",
        "解除理由",
    )
    freezes = (
        select(
            NomineeFreeze.nominee_number,
            NomineeFreeze.frozen_at,
            NomineeFreeze.frozen_until,
            NomineeFreeze.minute_votes,
            NomineeFreeze.baseline_per_minute,
            NomineeFreeze.explanation,
            NomineeFreeze.lifted_at,
            NomineeFreeze.lifted_by,
            NomineeFreeze.lift_reason,
        )
        .where(NomineeFreeze.campaign_id == campaign.id)
        .order_by(NomineeFreeze.frozen_at, NomineeFreeze.id)
    )
    for number, at, until, minute, baseline, explanation, lifted, by, why in _streamed(freezes):
        try:
            baseline_value: Any = float(baseline)
        except (TypeError, ValueError):
            baseline_value = baseline
        sheet.row(number, at, until, minute, baseline_value, explanation, lifted, by, why)
    sheet.blank()
    sheet.header("非有效选票（按原因）")
    sheet.header("状态", "原因", "票数")
    reasons = db.session.execute(
        select(Vote.status, Vote.status_reason, func.count(Vote.id))
        .where(Vote.campaign_id == campaign.id, Vote.status != "valid")
        .group_by(Vote.status, Vote.status_reason)
        .order_by(Vote.status, Vote.status_reason)
    ).all()
    names = {"pending": "待核", "invalid": "无效"}
    for status, reason, count in reasons:
        sheet.row(names.get(status, status), reason or "（未注明）", int(count))


def _jury_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "评委评分", zone)
    items = list(
        db.session.scalars(
            select(Criterion)
            .where(Criterion.campaign_id == campaign.id)
            .order_by(Criterion.position, Criterion.id)
        )
    )
    sheet.widths(12, 12, 10, 12, *([12] * len(items)), 10, 18, 30)
    sheet.header(
        "评委账号",
        "评委姓名",
        "候选人编号",
        "候选人姓名",
        *(f"{c.name}（{c.max_points}分）" for c in items),
        "总分",
        f"提交时间（{zone.key}）",
        "评语",
    )
    statement = (
        select(
            Account.username,
            Account.display_name,
            Nomination.number,
            Nomination.name,
            ScoreSheet.scores,
            ScoreSheet.total,
            ScoreSheet.submitted_at,
            ScoreSheet.comment,
        )
        .join(Account, Account.id == ScoreSheet.judge_id)
        .join(Nomination, Nomination.id == ScoreSheet.nomination_id)
        .where(ScoreSheet.campaign_id == campaign.id, ScoreSheet.status == "submitted")
        .order_by(Account.username, Nomination.number_seq, Nomination.id)
    )
    for username, display, number, name, scores, total, at, comment in _streamed(statement):
        scores = scores or {}
        sheet.row(
            username,
            display or "",
            number,
            name,
            *(_number(scores.get(c.code)) for c in items),
            total,
            at,
            comment or "",
        )


def _report_version(campaign: Campaign) -> ResultVersion | None:
    """The latest final or published version; else the latest draft."""
    for statuses in (("final", "published"), ("draft",)):
        version = db.session.scalar(
            select(ResultVersion)
            .where(ResultVersion.campaign_id == campaign.id, ResultVersion.status.in_(statuses))
            .order_by(ResultVersion.version.desc())
            .limit(1)
        )
        if version is not None:
            return version
    return None


def _weights_text(weights: dict[str, Any]) -> str:
    names = (("public", "公众投票"), ("jury", "评委评分"), ("organizer", "主办方评分"))
    return "，".join(f"{label} {weights.get(key, 0)}%" for key, label in names)


def _results_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "评选结果", zone)
    sheet.widths(16, 6, 10, 10, 24, 10, 10, 10, 10, 10, 10, 8, 10, 30)
    version = _report_version(campaign)
    if version is None:
        sheet.header("尚未计算评选结果")
        return
    status = _VERSION_STATUS.get(version.status, version.status)
    title = f"结果版本：第 {version.version} 版（{status}）"
    if version.status == "draft":
        title += " —— 草稿，尚未定稿，仅供参考"
    sheet.header(title)
    sheet.header(
        "奖项",
        "排名",
        "编号",
        "姓名",
        "单位",
        "有效票",
        "公众得分",
        "评委得分",
        "评委人数",
        "主办方得分",
        "综合得分",
        "获奖",
        "调整",
        "调整理由",
    )
    categories = {c.code: c.name for c in campaign.categories}
    adjustments = {"exclude": "排除", "promote": "增补"}
    for entry in version.entries:
        sheet.row(
            categories.get(entry.category_code, entry.category_code),
            entry.rank,
            entry.number,
            entry.name,
            entry.unit,
            entry.valid_votes,
            entry.public_score,
            entry.jury_score,
            entry.jury_count,
            entry.organizer_score,
            entry.combined,
            bool(entry.winner),
            adjustments.get(entry.adjustment or "", entry.adjustment or ""),
            entry.adjustment_reason or "",
        )
    sheet.blank()
    sheet.header("计算方法")
    for line in version.method.splitlines():
        sheet.row(line)
    sheet.blank()
    sheet.row("权重", _weights_text(version.weights or {}))
    sheet.row("结果版本", version.version)
    sheet.row("版本状态", status)
    sheet.row("投票账本链头（SHA-256）", version.ledger_head or "")
    sheet.row("账本收录选票数", version.ledger_votes or 0)
    if version.reason:
        sheet.row("计算说明", version.reason)


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
)


def _audit_rows(campaign: Campaign, zone: ZoneInfo) -> Iterator[tuple[str, ...]]:
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
    for at, actor, role, action, object_type, object_id, reason, before, after, ip in _streamed(
        statement
    ):
        yield (
            _iso(at, zone),
            actor or "system",
            role or "",
            action,
            object_type,
            object_id,
            reason or "",
            _json(before),
            _json(after),
            ip or "",
        )


def _audit_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "操作日志", zone)
    sheet.widths(26, 12, 10, 20, 14, 12, 30, 40, 40, 16)
    sheet.header(*(f"时间（{zone.key}）" if h == "时间" else h for h in AUDIT_HEADERS))
    for row in _audit_rows(campaign, zone):
        sheet.row(*row)


# --- the audit CSV ----------------------------------------------------------------------------

_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    return "'" + value if value.startswith(_CSV_FORMULA) else value


def build_audit_csv(campaign_id: int, path: Path) -> Path:
    """The campaign's audit log as CSV: UTF-8 with a BOM, so Excel reads the Chinese right."""
    campaign = _campaign(campaign_id)
    zone = _zone(campaign)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow((f"时间（{zone.key}）", *AUDIT_HEADERS[1:]))
        for row in _audit_rows(campaign, zone):
            writer.writerow([_csv_safe(value) for value in row])
    return path


# --- the printable winners' list --------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 18mm 16mm; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f3f3; color: #111;
  font-family: "Songti SC", "SimSun", "Noto Serif CJK SC", serif; font-size: 11pt; }
.sheet { width: 210mm; min-height: 297mm; margin: 12px auto; padding: 18mm 16mm;
  background: #fff; }
h1 { text-align: center; font-size: 20pt; margin: 0 0 6mm; letter-spacing: 1px; }
h2 { font-size: 13pt; margin: 7mm 0 3mm; border-left: 4px solid #b22; padding-left: 6px; }
.meta { text-align: center; color: #333; margin: 0 0 2mm; }
.status { text-align: center; color: #b22; font-weight: bold; }
.lead { text-indent: 2em; line-height: 1.8; }
table { width: 100%; border-collapse: collapse; page-break-inside: auto; }
tr { page-break-inside: avoid; }
thead { display: table-header-group; }
th, td { border: 1px solid #444; padding: 2mm 2.5mm; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: center; white-space: nowrap; }
.notice p { line-height: 1.8; text-indent: 2em; margin: 1.5mm 0; }
.fine { margin-top: 10mm; font-size: 8pt; color: #555; line-height: 1.6; word-break: break-all; }
.fine code { font-family: "Courier New", monospace; }
@media print {
  body { background: #fff; }
  .sheet { width: auto; min-height: 0; margin: 0; padding: 0; }
  h2 { page-break-after: avoid; }
}
"""


def _winners_version(campaign: Campaign) -> ResultVersion:
    for status in ("published", "final"):
        version = db.session.scalar(
            select(ResultVersion)
            .where(ResultVersion.campaign_id == campaign.id, ResultVersion.status == status)
            .order_by(ResultVersion.version.desc())
            .limit(1)
        )
        if version is not None:
            return version
    raise Conflict("尚无定稿或已公示的评选结果，不能生成公示名单", code="no_final_result")


def build_winners_html(campaign_id: int, path: Path) -> Path:
    """A printable, self-contained page (inline CSS, no script, no outside asset) announcing the
    winners of the published version, or of the final one before it is published."""
    campaign = _campaign(campaign_id)
    zone = _zone(campaign)
    version = _winners_version(campaign)
    e = html.escape
    winners = [entry for entry in version.entries if entry.winner]
    titles = dict(
        db.session.execute(
            select(Nomination.id, Nomination.title).where(
                Nomination.id.in_([w.nomination_id for w in winners])
            )
        ).all()
    )
    # "{title}评选结果公示", without doubling a title that already ends in 评选.
    stem = campaign.title.removesuffix("评选")
    title = f"{stem}评选结果公示"
    published = version.status == "published"
    if published:
        date = _day(version.published_at, zone)
        window = f"公示期自{date}起至{_day(version.publicity_ends_at, zone)}止。"
        status_line = ""
    else:
        date = "待正式发布"
        window = f"公示期为{campaign.publicity_days}天，自正式发布之日起计算。"
        status_line = '<p class="status">本名单为定稿结果，尚未正式公示</p>'
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        '<main class="sheet">',
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">主办单位：{e(campaign.organizer)}　发布日期：{e(date)}</p>',
        status_line,
        f'<p class="lead">经单位推荐、资格审核、公众投票和专家评审，并按公布的计分办法综合评定，'
        f"{e(stem)}评选结果已经产生，现将获奖人员名单予以公示。</p>",
    ]
    for category in campaign.categories:
        rows = [w for w in winners if w.category_code == category.code]
        if not rows:
            continue
        parts.append("<section>")
        parts.append(f"<h2>{e(category.name)}（{len(rows)}名）</h2>")
        parts.append(
            "<table><thead><tr><th>排名</th><th>编号</th><th>姓名</th><th>单位</th>"
            "<th>职称</th></tr></thead><tbody>"
        )
        for w in sorted(rows, key=lambda r: r.rank):
            parts.append(
                f'<tr><td class="num">{w.rank}</td><td class="num">{e(w.number)}</td>'
                f"<td>{e(w.name)}</td><td>{e(w.unit)}</td>"
                f"<td>{e(titles.get(w.nomination_id) or '')}</td></tr>"
            )
        parts.append("</tbody></table>")
        parts.append("</section>")
    parts += [
        '<section class="notice">',
        "<h2>公示期与异议受理</h2>",
        f"<p>{e(window)}</p>",
        "<p>公示期内，任何单位或个人对公示名单有异议的，可通过本次评选活动页面的“提出异议”"
        "功能实名提交书面意见，写明异议对象的编号、具体事实和依据，并留下联系人姓名和联系电话。"
        "匿名、无具体事实或超出公示期提出的异议不予受理。</p>",
        f"<p>异议受理单位：{e(campaign.organizer)}。受理后将调查核实并答复，"
        "答复情况在活动页面公开（不公开异议人的联系方式）。</p>",
        "</section>",
        '<footer class="fine">',
        f"结果版本：第 {version.version} 版。投票账本链头（SHA-256）："
        f"<code>{e(version.ledger_head or '—')}</code>；"
        f"账本收录选票 {int(version.ledger_votes or 0)} 张。"
        "链头可与活动页面公布的值核对，用以确认计票所依据的选票记录未被改动。",
        "</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    path.write_text("\n".join(part for part in parts if part) + "\n", encoding="utf-8")
    return path


# --- the job ----------------------------------------------------------------------------------


def exports_dir() -> Path:
    return Path(current_app.instance_path) / "exports"


def _begin_read_snapshot() -> bool:
    """On PostgreSQL, read the whole export in one REPEATABLE READ snapshot. True when this call
    began the session's transaction (the caller then ends it)."""
    if db.session().in_transaction():
        return False
    if db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return True


@app_job
def export_job(campaign_id: int, kind: str) -> dict[str, Any]:
    """Build one export into ``<instance>/exports/{campaign_id}-{kind}-{job_id}.{ext}``."""
    if kind not in KINDS:
        raise ValueError(f"unknown export kind {kind!r}")
    job = get_current_job()
    token = job.id if job is not None else secrets.token_hex(8)

    def report(pct: int) -> None:
        if job is not None:
            job.meta["progress"] = int(pct)
            job.save_meta()

    folder = exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{campaign_id}-{kind}-{token}.{EXTENSIONS[kind]}"
    final = folder / name
    partial = folder / f".{name}.{secrets.token_hex(4)}.part"
    # The export only reads: never take SQLite's write lock for minutes (app_job asks for it).
    intent = sqlite_write_intent.set(False)
    began = _begin_read_snapshot()
    try:
        report(0)
        if kind == "workbook":
            build_workbook(campaign_id, partial, report)
        elif kind == "winners_html":
            build_winners_html(campaign_id, partial)
        else:
            build_audit_csv(campaign_id, partial)
        os.replace(partial, final)
    except AppError as exc:
        if job is not None:
            job.meta["error"] = {"code": exc.code, "message": exc.message}
            job.save_meta()
        raise
    finally:
        partial.unlink(missing_ok=True)
        if began:
            db.session.rollback()
        sqlite_write_intent.reset(intent)
    report(100)
    return {"file": name, "size": final.stat().st_size}


# --- services for the routes ------------------------------------------------------------------


def _prune(folder: Path, keep_seconds: int = KEEP_SECONDS) -> None:
    """Remove exports no download link can reach any more (and leftovers of crashed jobs)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - keep_seconds
    for entry in folder.iterdir():
        if not (_FILE_NAME.match(entry.name) or entry.name.endswith(".part")):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()


def start_export(campaign: Campaign, kind: str) -> Job:
    """Queue an export of ``campaign`` (audited: exports carry personal data)."""
    if kind not in KINDS:
        raise ValidationFailed("不支持的导出类型", code="invalid_kind", details={"kind": kind})
    _prune(exports_dir())
    job = redis_store.queue("exports").enqueue(
        export_job,
        campaign.id,
        kind,
        job_timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
        meta={"progress": 0},
    )
    audit.record("export.start", "export", job.id, campaign_id=campaign.id, after={"kind": kind})
    return job


def _job_of(campaign: Campaign, job_id: str) -> Job:
    missing = NotFound("导出任务不存在或已过期", code="export_not_found")
    if not _JOB_ID.match(job_id or ""):
        raise missing
    try:
        job = Job.fetch(job_id, connection=redis_store.client)
        belongs = job.func_name == _JOB_NAME and list(job.args[:1]) == [campaign.id]
    except (NoSuchJobError, DeserializationError, ValueError, TypeError, AttributeError) as exc:
        raise missing from exc
    if not belongs:
        raise missing
    return job


def _status_text(job: Job) -> str:
    try:
        status = job.get_status(refresh=True)
    except InvalidJobOperation:  # the job's hash expired between fetch and now
        raise NotFound("导出任务不存在或已过期", code="export_not_found") from None
    return str(getattr(status, "value", status))


def _export_error(job: Job, status: str) -> dict[str, str] | None:
    if status not in ("failed", "stopped", "canceled"):
        return None
    error = job.meta.get("error")
    if isinstance(error, dict) and error.get("code"):
        return {"code": str(error["code"]), "message": str(error.get("message") or "")}
    return {"code": "export_failed", "message": "导出失败，请稍后重试或联系系统管理员"}


def export_status(campaign: Campaign, job_id: str) -> dict[str, Any]:
    """Where a campaign's export job stands: status, progress 0–100, its file, its error."""
    job = _job_of(campaign, job_id)
    status = _status_text(job)
    result = job.return_value() if status == "finished" else None
    finished = isinstance(result, dict) and bool(result.get("file"))
    return {
        "job_id": job.id,
        "kind": job.args[1] if len(job.args) > 1 else None,
        "status": status,
        "progress": 100 if finished else int(job.meta.get("progress") or 0),
        "file": result["file"] if finished else None,
        "size": result.get("size") if finished else None,
        "error": _export_error(job, status),
    }


def export_file(campaign: Campaign, job_id: str) -> Path:
    """The finished export's file; 409 ``export_not_ready`` before the job finished."""
    state = export_status(campaign, job_id)
    if state["status"] != "finished" or not state["file"]:
        if state["error"]:
            raise Conflict(
                "导出失败，没有可下载的文件", code="export_failed", details=state["error"]
            )
        raise Conflict(
            "导出尚未完成，请稍后再试",
            code="export_not_ready",
            details={"status": state["status"], "progress": state["progress"]},
        )
    name = state["file"]
    path = exports_dir() / name
    if not _FILE_NAME.match(name) or not path.is_file():
        raise NotFound("导出文件已过期，请重新导出", code="export_not_found")
    return path


def kind_of(path: Path) -> str:
    """The export kind a file holds, from its extension."""
    suffix = path.suffix.lstrip(".")
    return next(kind for kind, ext in EXTENSIONS.items() if ext == suffix)


def download_name(campaign: Campaign, kind: str) -> str:
    return f"{campaign.slug}-{DOWNLOAD_NAMES[kind]}"
