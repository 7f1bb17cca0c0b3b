"""The nomination domain's words in zh-CN (statuses, review actions, genders): one wording each."""

from __future__ import annotations

# Every status of nominations.models.STATUSES, plus "recommended": a submitted nomination the
# supervising bureau has passed up (Nomination.recommended), shown as a status of its own.
STATUS_LABELS = {
    "draft": "草稿",
    "submitted": "已提交",
    "recommended": "已推荐",
    "returned": "已退回",
    "approved": "已通过",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}

# The steps of a nomination's trail (NominationReview.action): the unit's and the reviewers'.
ACTION_LABELS = {
    "submit": "提交",
    "recommend": "推荐至评选办",
    "approve": "审核通过",
    "return": "退回修改",
    "reject": "审核未通过",
    "withdraw": "撤回",
    # a bureau at a level of the recommendation chain (nominations.levels)
    "pass_up": "推荐上报",
    "level_return": "退回修改",
    "level_reject": "不予推荐",
}

# The levels of a recommendation chain: the bureaus' unit levels, and the committee on top.
LEVEL_LABELS = {
    "county": "县（旗）级",
    "city": "市（盟）级",
    "province": "省（区）级",
    "committee": "评选办",
    "unit": "推荐单位",
}

# A bureau's decision at its level (LevelDecision.decision); the committee's return reads the same.
LEVEL_DECISION_LABELS = {"pass": "推荐上报", "return": "退回修改", "reject": "不予推荐"}

GENDER_LABELS = {"male": "男", "female": "女"}


def status_key(status: str, recommended: bool = False) -> str:
    """The status a person reads: a recommended submission shows as "recommended"."""
    return "recommended" if status == "submitted" and recommended else status


def status_label(status: str | None, recommended: bool = False) -> str:
    """A nomination's status in Chinese; an unknown code shows as itself."""
    key = status_key(status or "", recommended)
    return STATUS_LABELS.get(key, key)


def level_label(level: str | None) -> str:
    """A chain level in Chinese; an unknown code shows as itself."""
    return LEVEL_LABELS.get(level or "", level or "")
