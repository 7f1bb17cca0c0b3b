"""The console's fraud desk and vote browser, as pages read them: the flag-status tabs, the vote
browser's filters read as the API reads them, in Chinese. The held votes, flag counts and the
reasons a vote has its status are voting's (voting.services); the words are voting.labels'."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from campaigns.models import Campaign
from pages.common import campaign_zone
from voting.labels import FLAG_STATUS_LABELS, VOTE_STATUS_LABELS
from voting.schemas import VoteFilterSchema

# The fraud desk's tabs (an empty status is every flag) and the vote browser's status choices.
FLAG_STATUSES = (*FLAG_STATUS_LABELS.items(), ("", "全部"))
VOTE_STATUSES = (("", "全部"), *VOTE_STATUS_LABELS.items())
VOTE_FILTERS = ("status", "nominee", "prefix", "voter", "flag", "start", "end")
VOTE_FILTER_ERRORS = {
    "nominee": "候选人编号格式不正确",
    "prefix": "网段前缀只能包含数字、字母 a–f、点和冒号，如 10.2.3.",
    "voter": "投票人编号应为正整数",
    "flag": "线索编号应为正整数",
    "start": "请填写有效的时间",
    "end": "请填写有效的时间",
}


def _wall_time(value: str, campaign: Campaign) -> str | None:
    """A datetime-local value read as a wall time in the campaign's time zone → ISO 8601 with
    that zone's offset (what the API's time filters take)."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            naive = datetime.strptime(value, fmt)  # a wall time; its zone is set below
        except ValueError:
            continue
        return naive.replace(tzinfo=campaign_zone(campaign)).isoformat()
    return None


def vote_filters(
    campaign: Campaign, args: Any
) -> tuple[dict[str, str], dict[str, str], dict[str, Any] | None, dict[str, str]]:
    """The vote browser's filters from the page's query string: the values the form shows, the
    API's query (the CSV and Excel links carry exactly it), the filters loaded by the API's own
    VoteFilterSchema for voting's browse_votes (None when something is wrong), and the problems in
    Chinese by field."""
    form = {name: str(args.get(name) or "").strip() for name in VOTE_FILTERS}
    if form["status"] not in VOTE_STATUS_LABELS:
        form["status"] = ""
    form["nominee"] = form["nominee"].upper()
    query = {name: form[name] for name in VOTE_FILTERS[:5] if form[name]}
    errors: dict[str, str] = {}
    for name in ("start", "end"):
        if form[name]:
            iso = _wall_time(form[name], campaign)
            if iso is None:
                errors[name] = VOTE_FILTER_ERRORS[name]
            else:
                query[name] = iso
    try:
        loaded: dict[str, Any] | None = VoteFilterSchema().load(query)
    except ValidationError as exc:
        for name in exc.messages_dict:
            errors.setdefault(name, VOTE_FILTER_ERRORS.get(name, "筛选条件有误"))
        loaded = None
    if loaded and loaded["start"] and loaded["end"] and loaded["end"] <= loaded["start"]:
        errors["end"] = "截止时间应晚于开始时间"
    return form, query, (None if errors else loaded), errors
