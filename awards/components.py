"""The components a combined result may add beside public votes, the jury and the organiser
(issue #19 item 5): 同行互评 (peer) and 领导点评 (leader) score sheets, and the patients'
satisfaction from the 群众评议 answers. How they count is written in ``awards.scoring.METHOD``;
this module reads what they are computed from and describes them for results and exports.

The answers live in the appraisal domain, which awards may not import (docs/architecture.md:
the two are siblings): appraisal registers its count with ``nominations.ports``
(``appraisal.init_app``), and this module reads it there."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from awards import scoring
from awards.judging import declared_conflicts
from awards.models import PANELS, ScoreSheet
from awards.panels import panel_conflict
from campaigns.models import Account, Campaign
from core.extensions import db
from nominations import ports
from nominations.models import Nomination


def panel_sheet_totals(campaign: Campaign) -> dict[str, dict[int, list[Decimal]]]:
    """Submitted sheet totals per panel and nomination, each panel under its own conflict rule
    (``judging.panel_conflict``): declared conflicts and a judge's sheet about themselves never
    count; the own-unit rule keeps jury and leader sheets out but not the peers'. Two queries."""
    declared = declared_conflicts(campaign)
    totals: dict[str, dict[int, list[Decimal]]] = {p: defaultdict(list) for p in PANELS}
    rows = db.session.execute(
        select(
            ScoreSheet.panel,
            ScoreSheet.nomination_id,
            ScoreSheet.judge_id,
            ScoreSheet.total,
            Account.unit_id,
            Account.display_name,
            Nomination.unit_id,
            Nomination.name,
        )
        .join(Account, Account.id == ScoreSheet.judge_id)
        .join(Nomination, Nomination.id == ScoreSheet.nomination_id)
        .where(ScoreSheet.campaign_id == campaign.id, ScoreSheet.status == "submitted")
        .order_by(ScoreSheet.id)
    )
    for panel, nomination_id, judge_id, total, judge_unit, judge_name, unit_id, name in rows:
        if panel_conflict(
            panel or "jury",
            judge_unit,
            judge_name,
            unit_id,
            name,
            (judge_id, nomination_id) in declared,
        ):
            continue
        totals.setdefault(panel or "jury", defaultdict(list))[nomination_id].append(
            Decimal(str(total))
        )
    return totals


def satisfaction_counts(campaign: Campaign) -> dict[int, tuple[int, int]]:
    """Per nomination of the campaign: (invited answers naming it, of which 满意 or 基本满意),
    from appraisal through ``nominations.ports`` (appraisal.selection says which answers count)."""
    return ports.satisfaction_counts(campaign)


def weighted(weights: dict[str, Any] | None) -> list[str]:
    """The components a campaign or a version gives a weight, in display order. Public and jury
    are always listed (every result has them); the others only with a weight above 0."""
    raw = weights or {}
    return [k for k in scoring.COMPONENTS if k in ("public", "jury") or int(raw.get(k) or 0) > 0]


def extra_weighted(weights: dict[str, Any] | None) -> list[str]:
    """The further components (satisfaction, peer, leader) a version gives a weight."""
    return [k for k in weighted(weights) if k in scoring.EXTRA_COMPONENTS]
