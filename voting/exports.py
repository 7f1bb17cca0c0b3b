"""The vote browser's exports: the filtered votes as CSV or as an Excel workbook, for millions of
rows.

Rows come from the database in keyset pages (``chain_index`` after the last one seen, under the
campaign's ``(campaign_id, chain_index)`` unique index), never as one list and never through an
``OFFSET`` that grows with the export. The set is fixed when the export starts: only votes up to
the highest ``chain_index`` stored at that moment are written, so votes drained while a long
export runs neither shift its pages nor change its total. The workbook is written with openpyxl's
write-only mode (rows go to disk as they come) and continues on a new sheet (投票明细-1, -2, …)
before a sheet reaches Excel's limit of 1,048,576 rows, header included.

Both writers report ``progress(done, total)`` after every page, which the export job turns into
its progress. The CSV can also be streamed straight into a response (:func:`csv_chunks`) when
the export is small enough (:func:`exceeds`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.errors import NotFound
from core.extensions import db
from core.types import utcnow
from voting.fraud import votes_query
from voting.models import Vote

COLUMNS = (
    "id",
    "nominee_number",
    "category_code",
    "status",
    "status_reason",
    "at",
    "day",
    "voter_id",
    "ip",
    "device",
    "user_agent",
    "hash",
)
_AT = COLUMNS.index("at")

# Excel's rows per sheet (the header row counts). Tests lower it to prove the split.
SHEET_MAX_ROWS = 1_048_576
SHEET_TITLE = "投票明细"
INFO_TITLE = "导出说明"
# Votes read per database round trip (one keyset page), and between two progress reports.
BATCH = 5000
# Above this many rows ``GET …/votes.csv`` no longer streams in the request: it starts a job.
CSV_STREAM_MAX_ROWS = 100_000

FILTER_KEYS = ("status", "nominee", "flag", "voter", "prefix", "start", "end")
FILTER_LABELS = {
    "status": "状态",
    "nominee": "候选人编号",
    "flag": "线索",
    "voter": "投票人",
    "prefix": "地址前缀",
    "start": "开始时间",
    "end": "结束时间",
}

Progress = Callable[[int, int], None]


# --- filters ----------------------------------------------------------------------------------


def dump_filters(filters: dict[str, Any] | None) -> dict[str, Any]:
    """The vote browser's filters (as ``VoteFilterSchema`` loads them) in a canonical JSON form:
    unset ones dropped, the nominee number as stored, times as ISO 8601 with offset. Two exports
    with the same dump select the same votes."""
    out: dict[str, Any] = {}
    for key in FILTER_KEYS:
        value = (filters or {}).get(key)
        if value is None or value == "":
            continue
        if key == "nominee":
            value = str(value).strip().upper()
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[key] = value
    return out


def load_filters(dumped: dict[str, Any] | None) -> dict[str, Any]:
    """Filters back from :func:`dump_filters` (times as aware datetimes again)."""
    out = dict(dumped or {})
    for key in ("start", "end"):
        if isinstance(out.get(key), str):
            out[key] = datetime.fromisoformat(out[key])
    return out


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("评选活动不存在", code="campaign_not_found")
    return campaign


# --- reading the votes ------------------------------------------------------------------------


def last_chain_index(campaign: Campaign) -> int:
    """The highest ``chain_index`` stored for the campaign (0 when none): an export's bound."""
    return db.session.scalar(
        select(func.coalesce(func.max(Vote.chain_index), 0)).where(Vote.campaign_id == campaign.id)
    )


def count_votes(campaign: Campaign, filters: dict[str, Any], upto: int | None = None) -> int:
    query = votes_query(campaign, filters)
    if upto is not None:
        query = query.where(Vote.chain_index <= upto)
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def exceeds(campaign: Campaign, filters: dict[str, Any], limit: int) -> bool:
    """Whether more than ``limit`` votes match, reading at most ``limit + 1`` index entries
    (cheaper than a full count on a campaign of millions)."""
    query = (
        votes_query(campaign, filters)
        .with_only_columns(Vote.chain_index)
        .order_by(Vote.chain_index)
        .offset(limit)
        .limit(1)
    )
    return db.session.scalar(query) is not None


def vote_rows(
    campaign: Campaign, filters: dict[str, Any], upto: int, batch: int | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """The matching votes up to ``chain_index <= upto`` in chain order, one page of at most
    ``batch`` rows (``COLUMNS``) at a time, by keyset: each page starts after the last index."""
    batch = batch or BATCH
    columns = [getattr(Vote, name) for name in COLUMNS]
    base = votes_query(campaign, filters).with_only_columns(*columns, Vote.chain_index)
    after = 0
    while True:
        page = db.session.execute(
            base.where(Vote.chain_index > after, Vote.chain_index <= upto)
            .order_by(Vote.chain_index)
            .limit(batch)
        ).all()
        if not page:
            return
        after = page[-1][-1]
        yield [tuple(row[:-1]) for row in page]
        if len(page) < batch:
            return


# --- CSV --------------------------------------------------------------------------------------

_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_row(row: tuple[Any, ...]) -> list[Any]:
    """A vote as CSV cells: the time in ISO 8601 (UTC), and a text cell that Excel would run as
    a formula (``= + - @``, tab, CR first) behind an apostrophe, as OWASP recommends."""
    values = list(row)
    values[_AT] = values[_AT].isoformat()
    return [f"'{v}" if isinstance(v, str) and v.startswith(_CSV_FORMULA) else v for v in values]


def csv_chunks(campaign: Campaign, filters: dict[str, Any]) -> Iterator[str]:
    """The CSV (UTF-8 BOM first, for Excel) in chunks of one keyset page, for a response that
    streams it. Meant for bounded exports: the request holds a worker while it streams."""
    upto = last_chain_index(campaign)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for page in vote_rows(campaign, filters, upto):
        writer.writerows(_csv_row(row) for row in page)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def write_votes_csv(
    campaign_id: int, filters: dict[str, Any], path: Path, progress: Progress | None = None
) -> int:
    """The CSV into ``path``; the number of votes written."""
    report = progress or (lambda _done, _total: None)
    campaign = _campaign(campaign_id)
    upto = last_chain_index(campaign)
    total = count_votes(campaign, filters, upto)
    done = 0
    report(done, total)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for page in vote_rows(campaign, filters, upto):
            writer.writerows(_csv_row(row) for row in page)
            done += len(page)
            report(done, total)
    return done


# --- the workbook -----------------------------------------------------------------------------


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # UTC; Excel has no time zones
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)[:32767]
    if (len(value) > 1 and value.startswith("=")) or value in ERROR_CODES:
        # openpyxl would store "=…" as a formula: text the voter's browser sent stays text.
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def _info_sheet(
    workbook: Workbook, campaign: Campaign, filters: dict[str, Any], total: int, sheets: int
) -> None:
    info = workbook.create_sheet(INFO_TITLE)
    info.append(["评选活动", campaign.title])
    info.append(["活动标识", campaign.slug])
    info.append(["导出时间（UTC）", utcnow().replace(tzinfo=None, microsecond=0)])
    info.append(["投票数", total])
    names = "、".join(f"{SHEET_TITLE}-{n}" for n in range(1, sheets + 1)) or "（无）"
    info.append(["明细工作表", names])
    dumped = dump_filters(filters)
    info.append(
        [
            "筛选条件",
            "；".join(f"{FILTER_LABELS[k]}={v}" for k, v in dumped.items()) or "全部投票",
        ]
    )
    info.append(["说明", "时间列 at 为 UTC；day 为活动时区的投票日。每张明细表第一行为列名。"])
    info.append(["", f"每张明细表最多 {SHEET_MAX_ROWS - 1} 行投票，超出部分续在下一张表。"])


def write_votes_xlsx(
    campaign_id: int, filters: dict[str, Any], path: Path, progress: Progress | None = None
) -> int:
    """The workbook into ``path``: a 导出说明 sheet (campaign, filters, total), then the votes on
    投票明细-1, -2, … with the header on each, a new sheet before ``SHEET_MAX_ROWS`` rows. Returns
    the number of votes written."""
    report = progress or (lambda _done, _total: None)
    campaign = _campaign(campaign_id)
    upto = last_chain_index(campaign)
    total = count_votes(campaign, filters, upto)
    per_sheet = SHEET_MAX_ROWS - 1
    if per_sheet < 1:
        raise ValueError("SHEET_MAX_ROWS must leave room for one vote under the header")
    sheets = max(1, -(-total // per_sheet))
    workbook = Workbook(write_only=True)
    _info_sheet(workbook, campaign, filters, total, sheets)
    done = 0
    sheet: Any = None
    used = per_sheet  # start a sheet on the first row
    numbered = 0
    report(done, total)
    for page in vote_rows(campaign, filters, upto):
        for row in page:
            if used == per_sheet:
                numbered += 1
                sheet = workbook.create_sheet(f"{SHEET_TITLE}-{numbered}")
                sheet.freeze_panes = "A2"  # write-only: before the first row
                sheet.append(list(COLUMNS))
                used = 0
            assert sheet is not None
            sheet.append([_xlsx_cell(sheet, value) for value in row])
            used += 1
        done += len(page)
        report(done, total)
    if numbered == 0:
        sheet = workbook.create_sheet(f"{SHEET_TITLE}-1")
        sheet.freeze_panes = "A2"
        sheet.append(list(COLUMNS))
    workbook.save(path)
    return done
