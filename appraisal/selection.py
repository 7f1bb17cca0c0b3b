"""What a campaign's result takes from the patients' answers (issue #19 item 5): per nominee,
the answers that name it and how many of them are satisfied. awards.scoring.METHOD says how they
count; awards reads them through ``nominations.ports.satisfaction_counts``."""

from __future__ import annotations

from sqlalchemy import case, func, select

from appraisal.models import Rating
from campaigns.models import Campaign
from core.extensions import db
from nominations.models import Nomination

# The answers that count as satisfied: 满意 and 基本满意 (appraisal.models.CHOICES).
POSITIVE_CHOICES = ("satisfied", "basic")
# Only answers through an invitation (one per visit) count; walk-in answers do not: nothing ties
# one to a single patient and visit (they are reported apart, docs/appraisal.md).
COUNTED_KINDS = ("invited",)


def satisfaction_counts(campaign: Campaign) -> dict[int, tuple[int, int]]:
    """{nomination id: (invited answers naming it, of which 满意 or 基本满意)} for the campaign's
    nominees; one grouped query, a nomination without answers absent."""
    positive = func.sum(case((Rating.choice.in_(POSITIVE_CHOICES), 1), else_=0))
    rows = db.session.execute(
        select(Rating.nomination_id, func.count(Rating.id), positive)
        .join(Nomination, Nomination.id == Rating.nomination_id)
        .where(Nomination.campaign_id == campaign.id, Rating.kind.in_(COUNTED_KINDS))
        .group_by(Rating.nomination_id)
    )
    return {nomination_id: (int(n), int(p or 0)) for nomination_id, n, p in rows}
