"""The appraisal domain's words in zh-CN."""

from __future__ import annotations

# Why a row of encounters was refused (code → message; {placeholders} filled in).
REFUSALS = {
    "bad_phone": "手机号码格式不正确（须为 11 位大陆手机号）",
    "bad_date": "就诊日期无法识别（请用 2024-05-01 这样的格式）",
    "future_date": "就诊日期晚于今天",
    "too_old": "就诊日期早于 {days} 天前，已超出保留期限",
    "missing_department": "缺少科室",
    "too_long": "科室、工作人员姓名或工号过长",
    "duplicate_in_file": "与第 {first} 行是同一次就诊（重复）",
    "duplicate": "该次就诊已登记过（重复）",
    "opted_out": "该号码已退订评价短信，不再邀请",
}

CHOICE_LABELS = {"satisfied": "满意", "basic": "基本满意", "dissatisfied": "不满意"}

INVITATION_STATUS_LABELS = {
    "queued": "待发送",
    "sending": "发送中",
    "retrying": "等待重试",
    "sent": "已发送",
    "failed": "发送失败",
    "opted_out": "已退订",
    "capped": "频次限制未发送",
}

# A case's state as the unit and the bureau read it (appraisal.cases.state_of).
CASE_STATE_LABELS = {
    "open": "待办理",
    "escalated": "已逾期 · 已上报",
    "overdue": "已逾期",
    "closed": "已办结",
    "closed_late": "逾期办结",
}

# The audited steps of a case (appraisal.case.* actions).
CASE_STEP_LABELS = {
    "appraisal.case.open": "收到不满意评价，立案",
    "appraisal.case.escalate": "逾期未办，上报主管局",
    "appraisal.case.respond": "单位答复办结",
}

KIND_LABELS = {"invited": "短信邀请", "walk_in": "现场扫码"}
