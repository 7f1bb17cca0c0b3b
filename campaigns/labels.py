"""The campaign domain's words in zh-CN (phases, staff roles, audited changes): one wording each."""

from __future__ import annotations

# Every phase of campaigns.models.PHASES, in the same order.
PHASE_LABELS = {
    "draft": "筹备中",
    "nominating": "推荐申报",
    "reviewing": "资格审核",
    "voting": "公众投票",
    "judging": "专家评审",
    "publicity": "结果公示",
    "closed": "已结束",
}

# Every role of campaigns.models.ROLES; "评选办" is the committee office (评选活动办公室).
ROLE_LABELS = {
    "admin": "评选办",
    "reviewer": "主管部门",
    "unit": "推荐单位",
    "judge": "评委",
}

# The audited actions on a campaign and its categories (core.audit action names).
AUDIT_LABELS = {
    "campaign.create": "创建活动",
    "campaign.update": "修改设置",
    "category.update": "修改奖项",
    "campaign.phase": "调整阶段",
    "category.create": "新增奖项",
    "account.create": "新建账号",
    "account.password_change": "修改密码",
    "account.password_reset": "重置密码",
    "account.deactivate": "停用账号",
    "account.activate": "启用账号",
}

# A campaign's settings as a change log names them (keys of CampaignUpdateSchema, and phase).
SETTING_LABELS = {
    "title": "名称",
    "organizer": "主办单位",
    "description": "简介",
    "timezone": "时区",
    "nomination_start": "推荐开始",
    "nomination_end": "推荐截止",
    "voting_start": "投票开始",
    "voting_end": "投票截止",
    "rules": "投票规则",
    "weights": "计分权重",
    "require_recommendation": "须经主管部门推荐",
    "publicity_days": "公示天数",
    "phase": "阶段",
}


def phase_label(phase: str | None) -> str:
    """A phase in Chinese; an unknown code shows as itself."""
    return PHASE_LABELS.get(phase or "", phase or "")


def role_label(role: str | None) -> str:
    """A staff role in Chinese; an unknown code shows as itself."""
    return ROLE_LABELS.get(role or "", role or "")
