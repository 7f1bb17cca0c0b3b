"""The console's review queue: what each status holds for the caller, what waits for them, and a
page of the queue, all through the nominations service (so through its visibility rule: never a
draft, a reviewer only its own sub-tree)."""

from __future__ import annotations

from campaigns.models import Account, Campaign
from nominations import levels
from nominations import services as nomination_services
from nominations.labels import STATUS_LABELS
from nominations.models import Nomination

# The review queue's views. "todo" is what the caller should act on next.
QUEUE_VIEWS = (
    ("todo", "待我处理"),
    ("submitted", "全部待审"),
    ("recommended", "已推荐待审"),
    ("returned", STATUS_LABELS["returned"]),
    ("approved", STATUS_LABELS["approved"]),
    ("rejected", STATUS_LABELS["rejected"]),
    ("withdrawn", STATUS_LABELS["withdrawn"]),
    ("all", "全部"),
)
# What status_counts counts: its key for each status as nominations.services.count_by_status
# reads them (a submitted nomination is "recommended" once its bureau passed it up).
_COUNTED = (
    ("recommended", "recommended"),
    ("unrecommended", "submitted"),
    ("returned", "returned"),
    ("approved", "approved"),
    ("rejected", "rejected"),
    ("withdrawn", "withdrawn"),
)


def status_counts(account: Account, campaigns: list[Campaign]) -> dict[int, dict[str, int]]:
    """Per campaign id: the nominations the caller may review, per status, with submitted split
    into recommended (``recommended``) and not yet recommended (``unrecommended``), and ``all``;
    in a chain campaign (nominations.levels) also ``awaiting``: what waits at the caller's level
    (a bureau) or at the committee (an admin)."""
    out: dict[int, dict[str, int]] = {}
    waiting = levels.awaiting_by_campaign(account, [c.id for c in campaigns])
    for campaign_id, by_status in nomination_services.count_by_status(account, campaigns).items():
        counts = {key: by_status[status] for key, status in _COUNTED}
        counts["submitted"] = counts["recommended"] + counts["unrecommended"]
        counts["all"] = sum(counts[key] for key, _ in _COUNTED)
        if waiting.get(campaign_id) is not None:
            counts["awaiting"] = waiting[campaign_id] or 0
        out[campaign_id] = counts
    return out


def todo_count(account: Account, campaign: Campaign, counts: dict[str, int]) -> int:
    """What waits for the caller: a reviewer recommends; the committee decides (only on
    recommended nominations when the campaign requires a recommendation). In a chain campaign
    (nominations.levels): what waits at the caller's own level, or at the committee."""
    if "awaiting" in counts:
        return counts["awaiting"]
    if account.role == "reviewer":
        return counts.get("unrecommended", 0)
    if campaign.require_recommendation:
        return counts.get("recommended", 0)
    return counts.get("submitted", 0)


def view_counts(account: Account, campaign: Campaign, counts: dict[str, int]) -> dict[str, int]:
    """The figure beside each view's tab."""
    return {
        view: todo_count(account, campaign, counts) if view == "todo" else counts.get(view, 0)
        for view, _ in QUEUE_VIEWS
    }


def review_queue(
    account: Account,
    campaign: Campaign,
    view: str,
    category: str | None,
    page: int,
    per_page: int,
) -> tuple[list[Nomination], int]:
    """One page of the review queue in ``view`` (see QUEUE_VIEWS)."""
    if view in ("returned", "approved", "rejected", "withdrawn", "all"):
        return nomination_services.list_for(
            account,
            campaign,
            status=None if view == "all" else view,
            category=category,
            page=page,
            per_page=per_page,
        )
    if view == "todo" and levels.has_chain(campaign):
        return nomination_services.list_for(
            account, campaign, awaiting=True, category=category, page=page, per_page=per_page
        )
    recommended: bool | None = None
    if view == "recommended":
        recommended = True
    elif view == "todo" and account.role == "reviewer":
        recommended = False
    elif view == "todo" and campaign.require_recommendation:
        recommended = True
    return nomination_services.list_for(
        account,
        campaign,
        status="submitted",
        category=category,
        recommended=recommended,
        page=page,
        per_page=per_page,
    )
