"""The awards domain's words in zh-CN (sheets, adjustments, versions, objections, exports)."""

from __future__ import annotations

# A judge's score sheet for one nominee (ScoreSheet.status; "none": not started).
SHEET_STATUS_LABELS = {"none": "未评", "draft": "暂存", "submitted": "已提交"}

# The panel a judge scores for (JudgeAssignment.panel, ScoreSheet.panel).
PANEL_LABELS = {"jury": "专家评审", "peer": "同行互评", "leader": "领导点评"}

# Every weighted part of a combined score (awards.scoring.COMPONENTS), as results, exports and
# the console name them.
COMPONENT_LABELS = {
    "public": "公众投票",
    "jury": "专家评审",
    "organizer": "组织评价",
    "satisfaction": "群众满意度",
    "peer": "同行互评",
    "leader": "领导点评",
}
# A nominee's satisfaction with fewer answers than the campaign's minimum.
INSUFFICIENT = "样本不足"

# What the office may do to a nominee in a draft result (ResultEntry.adjustment).
ADJUSTMENT_LABELS = {"exclude": "排除", "promote": "破格入选", "tier": "调整等次"}

# Every status of a result version (ResultVersion.status).
VERSION_STATUS_LABELS = {
    "draft": "草稿",
    "final": "定稿",
    "published": "已公示",
    "superseded": "已被取代",
}

# Every status of an objection to a published result (Objection.status).
OBJECTION_STATUS_LABELS = {"open": "待答复", "upheld": "异议成立", "dismissed": "已驳回"}

# Every export kind of awards.exports.KINDS: its name and what it holds, as the office reads them.
EXPORT_LABELS = {
    "workbook": "评选档案（Excel）",
    "winners_html": "公示名单（可打印网页）",
    "audit_csv": "操作日志（CSV）",
}
EXPORT_HELP = {
    "workbook": "推荐材料、投票统计、异常处理、评委评分、评选结果与操作日志，一个工作簿六张表。",
    "winners_html": (
        "已公示（或已定稿）版本的获奖名单，含公示期与异议受理方式，可直接打印或转 PDF。"
    ),
    "audit_csv": "本活动的全部操作记录：时间、操作人、动作、对象、理由与前后值。",
}


def version_status_label(status: str | None) -> str:
    """A result version's status in Chinese; an unknown code shows as itself."""
    return VERSION_STATUS_LABELS.get(status or "", status or "")


def objection_status_label(status: str | None) -> str:
    """An objection's status in Chinese; an unknown code shows as itself."""
    return OBJECTION_STATUS_LABELS.get(status or "", status or "")
