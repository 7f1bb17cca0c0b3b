"""Voters the committee blocked in a campaign: who is refused at vote time, and why."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from voting.models import Voter, VoterBlock


def blocked_voter_ids(campaign_id: int) -> list[int]:
    """Every voter refused in this campaign: blocked by its committee (and not lifted), or
    blocked everywhere (``Voter.blocked``, a short list). The vote script's blocked set is
    rebuilt from this list whenever the campaign state is written."""
    by_committee = select(VoterBlock.voter_id).where(
        VoterBlock.campaign_id == campaign_id, VoterBlock.lifted_at.is_(None)
    )
    everywhere = select(Voter.id).where(Voter.blocked.is_(True))
    ids = set(db.session.scalars(by_committee)) | set(db.session.scalars(everywhere))
    return sorted(ids)
