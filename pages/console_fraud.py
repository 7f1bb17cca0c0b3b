"""The console's fraud desk and vote browser, as pages read them: the flag-status tabs, the vote
browser's filters read as the API reads them, in Chinese, and its blocked voters (the block and
lift forms' ids, the page to go back to, what to tell after a block). The held votes, flag counts
and the reasons a vote has its status are voting's (voting.services); blocks are voting.blocks';
the words are voting.labels'."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from marshmallow import ValidationError

from campaigns.models import Campaign
from core.errors import ValidationFailed
from pages.common import campaign_zone
from voting import blocks
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


# --- blocked voters (the vote browser's 屏蔽 / 解除屏蔽 forms) -------------------------------

BLOCKS_SHOWN = 100  # the newest active blocks the vote browser lists
BLOCK_SOURCES = {"browser": "投票明细", "flag": "刷票线索"}
_MAX_ID = 2_147_483_647


def form_voter_id(value: Any) -> int:
    """The voter id a block form sends; 422 ``invalid_voter_id`` unless a database id."""
    text = str(value or "").strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_ID:
        raise ValidationFailed("投票人编号应为正整数", code="invalid_voter_id")
    return int(text)


def back_query(raw: str | None) -> dict[str, str]:
    """The vote browser's filters (and page) a block form came from: only those names, so the
    redirect after the form goes back to the same page of the same votes and nowhere else."""
    keep = (*VOTE_FILTERS, "page")
    pairs = parse_qsl(str(raw or "")[:2000], keep_blank_values=False)
    return {name: value[:100] for name, value in pairs if name in keep}


def back_url(campaign: Campaign, back: dict[str, str], **notice: Any) -> str:
    query = urlencode({**back, **{k: v for k, v in notice.items() if v}})
    return f"/console/c/{campaign.slug}/votes" + (f"?{query}" if query else "") + "#blocked-voters"


def block_notice(args: Any) -> dict[str, str] | None:
    """What the page says after a block or a lift (read from the redirect's query)."""
    for name, text in (("blocked", "已屏蔽投票人 {}。"), ("lifted", "已解除对投票人 {} 的屏蔽。")):
        value = str(args.get(name) or "")
        if value.isascii() and value.isdigit():
            message = text.format(value)
            if args.get("unpublished") == "1":
                return {"kind": "warning", "text": message + blocks.NOT_PUBLISHED["message"]}
            return {"kind": "ok", "text": message}
    return None


def blocked_rows(campaign: Campaign) -> tuple[list[dict[str, Any]], int]:
    """The newest active blocks with each voter's stored votes in the campaign, and how many
    active blocks there are in all."""
    shown = blocks.list_blocks(campaign, True, per_page=BLOCKS_SHOWN)
    votes = blocks.votes_by_voter(campaign, [b.voter_id for b in shown])
    rows = [
        {
            "voter_id": b.voter_id,
            "votes": votes.get(b.voter_id, 0),
            "reason": b.reason,
            "source": BLOCK_SOURCES.get(b.source, b.source),
            "flag_id": b.flag_id,
            "blocked_by": b.blocked_by,
            "blocked_at": b.blocked_at,
        }
        for b in shown
    ]
    total = len(rows) if len(rows) < BLOCKS_SHOWN else blocks.count_blocks(campaign, True)
    return rows, total
