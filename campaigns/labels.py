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

# The audited actions on a campaign and its categories (core.audit action names): the settings
# page's change log lists exactly these (campaigns.services.settings_history).
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

# Every action core.audit.record writes, in Chinese: the audit log as the office reads it (the
# exports' 操作日志). The settings' actions above, then every other domain's, worded as its own
# screens word them (nominations.labels.ACTION_LABELS, voting.labels.DECISION_LABELS,
# awards.labels; tests/awards/test_exports.py holds them to it and finds every recorded action).
AUDIT_ACTION_LABELS = {
    **AUDIT_LABELS,
    "unit.create": "新建单位",
    # nominations (nomination.<ReviewStep action>)
    "nomination.create": "新建推荐",
    "nomination.update": "修改推荐材料",
    "nomination.submit": "提交",
    "nomination.recommend": "推荐至评选办",
    "nomination.approve": "审核通过",
    "nomination.return": "退回修改",
    "nomination.reject": "审核未通过",
    "nomination.withdraw": "撤回",
    # recommendation level by level (nominations.levels)
    "nomination.pass_up": "推荐上报",
    "nomination.level_return": "退回修改",
    "nomination.level_reject": "不予推荐",
    "levels.set": "设置推荐层级",
    "levels.extend": "延长推荐截止",
    "levels.unit_quota": "设置单位名额",
    "level_form.upload": "上传盖章推荐表",
    # a level's 公示 (nominations.level_publicity)
    "level_publicity.open": "发布推荐名单公示",
    "level_publicity.withdraw": "撤回推荐名单公示",
    # the campaign's own recommendation form (nominations.form_fields)
    "form_fields.set": "设置推荐表字段",
    # 群众评议 (appraisal)
    "appraisal.programme.create": "创建评议项目",
    "appraisal.programme.update": "修改评议项目",
    "appraisal.window.create": "新增评议窗口",
    "appraisal.upload": "上传就诊记录",
    "appraisal.register": "登记就诊记录",
    "appraisal.export": "导出评议数据",
    "appraisal.report.export": "导出评议通报",
    "appraisal.opt_out": "退订评议短信",
    "appraisal.case.open": "不满意转办",
    "appraisal.case.respond": "单位核实反馈",
    "appraisal.case.escalate": "逾期上报",
    # photos and videos
    "media.upload_start": "开始上传视频",
    "media.uploaded": "视频上传完成",
    "media.photo": "上传照片",
    "media.photo_removed": "删除照片",
    "media.cover": "设为封面照片",
    "media.ready": "视频转码完成",
    # the fraud desk (votes.<CommitteeDecision action>) and the vote browser
    "votes.confirm": "确认刷票",
    "votes.dismiss": "排除线索",
    "votes.undo": "撤销决定",
    "votes.release": "放行待审票",
    "votes.void": "作废待审票",
    "votes.lift_freeze": "解除冻结",
    "voter.block": "屏蔽投票人",
    "voter.unblock": "解除屏蔽",
    # judging
    "criteria.set": "设置评分标准",
    "judge.assign": "分配评委",
    "judge.conflict": "评委回避",
    "score.save": "保存评分",
    "organizer.score": "主办方评分",
    # results (results.<adjustment>, or clear)
    "results.compute": "计算结果",
    "results.carry": "沿用调整",
    "results.exclude": "排除",
    "results.promote": "破格入选",
    "results.tier": "调整等次",
    "results.clear": "撤销调整",
    "results.finalize": "定稿",
    "results.publish": "发布公示",
    # publicity (objection.<decision>)
    "objection.file": "提出异议",
    "objection.upheld": "异议成立",
    "objection.dismissed": "驳回异议",
    # exports
    "export.start": "发起导出",
}

# What an audit entry's object is (AuditLog.object_type).
AUDIT_OBJECT_LABELS = {
    "level_publicity": "推荐名单公示",
    "campaign": "评选活动",
    "category": "奖项",
    "unit": "单位",
    "account": "账号",
    "nomination": "推荐材料",
    "media": "照片视频",
    "committee_decision": "评选办决定",
    "voter": "投票人",
    "score_sheet": "评分表",
    "result_version": "结果版本",
    "objection": "异议",
    "export": "导出",
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


def audit_label(action: str | None) -> str:
    """An audited action in Chinese; an unknown code shows as itself."""
    return AUDIT_ACTION_LABELS.get(action or "", action or "")


def audit_object_label(object_type: str | None) -> str:
    """What an audit entry is about, in Chinese; an unknown type shows as itself."""
    return AUDIT_OBJECT_LABELS.get(object_type or "", object_type or "")
