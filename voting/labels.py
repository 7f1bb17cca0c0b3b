"""The voting domain's words in zh-CN (votes, holds, flags, rules, decisions): one wording each."""

from __future__ import annotations

# Every status of voting.models.VOTE_STATUSES.
VOTE_STATUS_LABELS = {"valid": "有效", "pending": "待审", "invalid": "无效"}

# What a vote's status_reason says, by its kind (the part before ":"; "{}" takes the rest): the
# vote script's hold, a confirmed flag, or a committee release or void with the decider's name.
VOTE_REASON_LABELS = {
    "velocity": "速度异常暂扣",
    "flag": "刷票线索 #{}",
    "release": "已放行（{}）",
    "void": "已作废（{}）",
}

# Why the vote script held a nominee's votes, as the fraud desk explains it beside the count
# (the long form of VOTE_REASON_LABELS; "" is a hold with no reason recorded).
HELD_REASON_LABELS = {
    "velocity": "得票速度远超该候选人自身平均，系统自动暂扣",
    "": "未注明",
}

# Every status of a fraud flag (FraudFlag.status).
FLAG_STATUS_LABELS = {"open": "待处理", "confirmed": "已确认刷票", "dismissed": "已排除"}

# Every rule of voting.detectors.RULES.
RULE_LABELS = {
    "address_concentration": "同一网段集中投票",
    "device_reuse": "一台设备多个身份",
    "machine_rhythm": "机器般的投票节奏",
    "new_identity_surge": "新身份集中涌入",
    "night_burst": "深夜集中投票",
    "lockstep_group": "同步投票团伙",
    "install_reuse": "一部手机多个账号（群控）",
    "address_hopping": "代理池换地址投票",
    "covote_group": "同一名单协同投票（刷票群）",
    "proxy_origin": "机房/境外地址投票",
    "share_jump": "票数异常跃升",
}

# Every tier of voting.detectors.model.TIERS (the flag severities and 观察 watch).
SEVERITY_LABELS = {"high": "高", "medium": "中", "low": "低", "watch": "观察"}

# Every committee decision on votes (CommitteeDecision.action).
DECISION_LABELS = {
    "confirm": "确认刷票",
    "dismiss": "排除线索",
    "undo": "撤销决定",
    "release": "放行待审票",
    "void": "作废待审票",
    "lift_freeze": "解除冻结",
}
