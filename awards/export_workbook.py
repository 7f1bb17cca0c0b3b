"""The campaign's archive workbook (评选档案, xlsx): dossiers, tallies, fraud, jury, results."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import selectinload

from awards import components, scoring
from awards.export_audit import AUDIT_HEADERS, audit_rows
from awards.export_format import (
    BATCH,
    as_json,
    campaign_of,
    plain_number,
    streamed,
    to_local,
    zone_of,
)
from awards.labels import (
    ADJUSTMENT_LABELS,
    COMPONENT_LABELS,
    INSUFFICIENT,
    PANEL_LABELS,
    version_status_label,
)
from awards.models import Criterion, ResultEntry, ResultVersion, ScoreSheet
from campaigns.models import Account, Campaign, Category, Unit
from core.extensions import db
from nominations.labels import GENDER_LABELS, LEVEL_DECISION_LABELS, STATUS_LABELS, level_label
from nominations.levels import has_chain, trail
from nominations.models import LevelDecision, Nomination
from voting.labels import VOTE_STATUS_LABELS
from voting.models import NomineeFreeze, Vote

Progress = Callable[[int], None]

_BOLD = Font(bold=True)


class _Sheet:
    """A write-only sheet that turns Python values into safe cells."""

    def __init__(self, workbook: Workbook, title: str, zone: ZoneInfo) -> None:
        self.ws = workbook.create_sheet(title)
        self.zone = zone

    def freeze(self, rows: int = 1) -> None:
        """Keep the top ``rows`` (a title and the column headers) in view while scrolling, and on
        every printed page. A write-only sheet takes this only before its first row."""
        self.ws.freeze_panes = f"A{rows + 1}"
        self.ws.print_title_rows = f"1:{rows}"

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
            return to_local(value, self.zone) if value.tzinfo else value
        if isinstance(value, dict | list):
            return as_json(value)
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

    * 推荐材料 (nominations): every nomination but drafts, with its dossier fields; in a campaign
      with a recommendation chain a last column 逐级推荐 holds every level's decision.
    * 投票统计 (vote tallies): valid / pending / invalid per approved nominee, from the votes table.
    * 异常处理 (fraud decisions): nominee freezes and the non-valid votes counted by reason.
    * 评委评分 (jury scores): one row per submitted score sheet, a column per criterion.
    * 评选结果 (results): the latest final or published version (else the latest draft, marked),
      followed by the method, the weights and the vote ledger's chain head.
    * 操作日志 (audit log): every audit entry of the campaign.

    Rows are streamed to disk as they are read (queries use ``yield_per``), so memory stays flat
    however large the campaign is. A string cell that would start with ``=`` is forced to be text
    and characters XML cannot carry are dropped: user text never becomes a formula. Times are
    real Excel date-times in the campaign's time zone (the header names the zone); the audit
    sheet shows them as ISO 8601 with offset. Every sheet keeps its header rows frozen (and
    repeated on printed pages); statuses and audited actions read as the console's screens read
    them (nominations.labels, voting.labels, campaigns.labels.AUDIT_ACTION_LABELS).
    """
    report = progress or (lambda _pct: None)
    campaign = campaign_of(campaign_id)
    zone = zone_of(campaign)
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
    sheet.freeze()
    # The 逐级推荐 column only where levels decided something: a single-level campaign keeps its
    # columns.
    chained = has_chain(campaign) or bool(
        db.session.scalar(select(exists().where(LevelDecision.campaign_id == campaign.id)))
    )
    sheet.widths(
        8, 8, 14, 20, 10, 6, 12, 14, 12, 8, 30, 60, 30, 18, 18, *((60,) if chained else ())
    )
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
        f"通过时间（{zone.key}）",
        *((f"逐级推荐（{zone.key}）",) if chained else ()),
    )
    statement = (
        select(
            Nomination.id,
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
    batch: list[Any] = []

    def write() -> None:
        trails = _trails([row[0] for row in batch], zone) if chained else {}
        for row in batch:
            (nomination_id, number, status, category, unit, name, gender, *rest) = row
            sheet.row(
                number or "",
                STATUS_LABELS.get(status, status),
                category,
                unit,
                name,
                GENDER_LABELS.get(gender, gender),
                *rest,
                *((trails.get(nomination_id, ""),) if chained else ()),
            )
        batch.clear()

    for row in streamed(statement):
        batch.append(row)
        if len(batch) >= BATCH:
            write()
    write()


def _trails(nomination_ids: list[int], zone: ZoneInfo) -> dict[int, str]:
    """The 逐级推荐 text of each nomination (nominations.levels.trail), one line per level's
    decision: when, level and bureau, decision, who, why. Two statements per batch of rows."""
    if not nomination_ids:
        return {}
    nominations = db.session.scalars(
        select(Nomination)
        .where(Nomination.id.in_(nomination_ids))
        .options(selectinload(Nomination.level_decisions).selectinload(LevelDecision.unit))
    ).all()
    out: dict[int, str] = {}
    for nomination in nominations:
        lines = []
        for step in trail(nomination):
            where = step["level_label"] + (f"·{step['unit']}" if step["unit"] else "")
            decision = LEVEL_DECISION_LABELS.get(step["decision"], step["decision"])
            if step["returned_to"]:
                decision += f"至{level_label(step['returned_to'])}"
            at = step["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M") if step["at"] else ""
            line = f"{at} {where} {decision}（{step['actor']}）"
            if step["comment"]:
                line += f"：{step['comment']}"
            lines.append(line)
        out[nomination.id] = "\n".join(lines)
        # Rows already written need not stay in the session: memory stays flat.
        for decision in nomination.level_decisions:
            db.session.expunge(decision)
        db.session.expunge(nomination)
    return out


def _tallies_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "投票统计", zone)
    sheet.freeze()
    sheet.widths(10, 12, 16, 10, 10, 10, 10)
    sheet.header(
        "编号",
        "姓名",
        "奖项",
        *(f"{VOTE_STATUS_LABELS[s]}票" for s in ("valid", "pending", "invalid")),
        "合计",
    )
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
    for number, name, category in streamed(nominees):
        sheet.row(number, name, category, *tallies.pop(number, (0, 0, 0, 0)))
    # Votes for a number that is no longer an approved nominee still belong in the count.
    for number in sorted(tallies):
        sheet.row(number, "（非现有候选人）", "", *tallies[number])


def _fraud_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    """For now: the vote script's automatic nominee freezes (and their lifting), and the votes
    that are not valid counted by status and reason. The fraud-flag tables (suspicious voters,
    IP clusters, the committee's decisions on them) come later and will get their own section."""
    sheet = _Sheet(workbook, "异常处理", zone)
    sheet.freeze(2)  # the section's title, then its headers
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
    for number, at, until, minute, baseline, explanation, lifted, by, why in streamed(freezes):
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
    for status, reason, count in reasons:
        sheet.row(VOTE_STATUS_LABELS.get(status, status), reason or "（未注明）", int(count))


def _jury_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "评委评分", zone)
    sheet.freeze()
    items = list(
        db.session.scalars(
            select(Criterion)
            .where(Criterion.campaign_id == campaign.id)
            .order_by(Criterion.position, Criterion.id)
        )
    )
    # A 评分组 column only when peers or leaders scored too: a jury-only campaign keeps its columns.
    panels = db.session.scalar(
        select(func.count(ScoreSheet.id)).where(
            ScoreSheet.campaign_id == campaign.id, ScoreSheet.panel != "jury"
        )
    )
    sheet.widths(12, 12, 10, 12, *([12] * len(items)), 10, 18, 30, *((10,) if panels else ()))
    sheet.header(
        "评委账号",
        "评委姓名",
        "候选人编号",
        "候选人姓名",
        *(f"{c.name}（{c.max_points}分）" for c in items),
        "总分",
        f"提交时间（{zone.key}）",
        "评语",
        *(("评分组",) if panels else ()),
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
            ScoreSheet.panel,
        )
        .join(Account, Account.id == ScoreSheet.judge_id)
        .join(Nomination, Nomination.id == ScoreSheet.nomination_id)
        .where(ScoreSheet.campaign_id == campaign.id, ScoreSheet.status == "submitted")
        .order_by(Account.username, Nomination.number_seq, Nomination.id)
    )
    for username, display, number, name, scores, total, at, comment, panel in streamed(statement):
        scores = scores or {}
        sheet.row(
            username,
            display or "",
            number,
            name,
            *(plain_number(scores.get(c.code)) for c in items),
            total,
            at,
            comment or "",
            *((PANEL_LABELS.get(panel or "jury", panel),) if panels else ()),
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
    """The weights as the office reads them; the further components only when weighted."""
    names = (("public", "公众投票"), ("jury", "评委评分"), ("organizer", "主办方评分"))
    text = "，".join(f"{label} {weights.get(key, 0)}%" for key, label in names)
    for key in components.extra_weighted(weights):
        text += f"，{COMPONENT_LABELS[key]} {weights[key]}%"
        if key == "satisfaction":
            text += f"（不少于 {scoring.min_answers(weights)} 份评议）"
    return text


# The further components' columns of the results sheet: (header, width, value of an entry).
_EXTRA_COLUMNS: dict[str, tuple[tuple[str, int, Callable[[ResultEntry], Any]], ...]] = {
    "satisfaction": (
        (
            "群众满意度",
            12,
            lambda e: INSUFFICIENT if e.satisfaction_score is None else e.satisfaction_score,
        ),
        ("评议份数", 10, lambda e: e.satisfaction_answers),
    ),
    "peer": (
        ("同行互评得分", 12, lambda e: e.peer_score),
        ("互评人数", 10, lambda e: e.peer_count),
    ),
    "leader": (
        ("领导点评得分", 12, lambda e: e.leader_score),
        ("点评人数", 10, lambda e: e.leader_count),
    ),
}


def _results_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "评选结果", zone)
    version = _report_version(campaign)
    sheet.freeze(1 if version is None else 2)  # the version's title, then the headers
    # An 等次 column after 获奖 only when some category awards tiers: a campaign without them
    # keeps its columns.
    tiered = any(c.tiers for c in campaign.categories) or any(
        e.tier for e in (version.entries if version else [])
    )
    extra = [
        column
        for key in components.extra_weighted(version.weights if version else {})
        for column in _EXTRA_COLUMNS[key]
    ]
    sheet.widths(
        16, 6, 10, 10, 24, 10, 10, 10, 10, 10, *(c[1] for c in extra), 10, 8,
        *((10,) if tiered else ()), 10, 30,
    )  # fmt: skip
    if version is None:
        sheet.header("尚未计算评选结果")
        return
    status = version_status_label(version.status)
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
        *(c[0] for c in extra),
        "综合得分",
        "获奖",
        *(("等次",) if tiered else ()),
        "调整",
        "调整理由",
    )
    categories = {c.code: c.name for c in campaign.categories}
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
            *(c[2](entry) for c in extra),
            entry.combined,
            bool(entry.winner),
            *((entry.tier_name or "",) if tiered else ()),
            ADJUSTMENT_LABELS.get(entry.adjustment or "", entry.adjustment or ""),
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


def _audit_sheet(workbook: Workbook, campaign: Campaign, zone: ZoneInfo) -> None:
    sheet = _Sheet(workbook, "操作日志", zone)
    sheet.freeze()
    sheet.widths(26, 12, 10, 16, 12, 12, 30, 40, 40, 16, 20)
    sheet.header(*(f"时间（{zone.key}）" if h == "时间" else h for h in AUDIT_HEADERS))
    for row in audit_rows(campaign, zone):
        sheet.row(*row)
