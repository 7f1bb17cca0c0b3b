"""Rank shifts: how each nominee's rank and the winners move when weight goes from the jury (or
another weighted component: organiser, satisfaction, peers, leaders) to the public or back,
recomputed from a result version's own figures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from awards import scoring
from awards.models import ResultEntry, ResultVersion
from campaigns.models import Campaign
from core.extensions import db
from nominations.models import Nomination

# Points of weight moved from the jury to the public (negative: the other way), as the
# sensitivity report does; 0 is the version's own weights.
SHIFT_STEPS = (-10, -5, 0, 5, 10)


def weights_of(campaign_or_version: Campaign | ResultVersion) -> dict[str, int]:
    """The public, jury and organiser weights (percent) of a campaign or a result version, plus
    each further component it gives a weight (and then, for satisfaction, its minimum of
    answers): a campaign without them reads exactly as before."""
    raw = campaign_or_version.weights or {}
    weights = {key: int(raw.get(key) or 0) for key in ("public", "jury", "organizer")}
    for key in scoring.EXTRA_COMPONENTS:
        if int(raw.get(key) or 0) > 0:
            weights[key] = int(raw[key])
    if "satisfaction" in weights:
        weights["satisfaction_min_answers"] = scoring.min_answers(raw)
    return weights


def rank_shifts(campaign: Campaign, version: ResultVersion) -> dict[str, Any]:
    """How each nominee's rank and the winners move when 5 or 10 points of weight go from the
    jury (then from each other weighted component, ``scoring.shifted_components``) to the public
    or back, recomputed with the scoring method from the version's own figures (its valid votes,
    component scores, satisfaction answers and adjustments), so later sheets, answers or votes do
    not blur the comparison. The version's own weights appear once, in the jury's scenarios."""
    weights = weights_of(version)
    scenarios = []
    for component in scoring.shifted_components(weights):
        for step in SHIFT_STEPS:
            if step == 0 and component != "jury":
                continue
            shifted = scoring.shift(weights, component, step)
            if shifted is not None:
                scenarios.append({"component": component, "step": step, "weights": shifted})
    entries: list[ResultEntry] = list(version.entries)
    seqs = dict(
        db.session.execute(
            select(Nomination.id, Nomination.number_seq).where(
                Nomination.id.in_([e.nomination_id for e in entries])
            )
        ).all()
    )
    categories = []
    for category in campaign.categories:
        rows = sorted(
            (e for e in entries if e.category_code == category.code), key=lambda e: e.rank
        )
        candidates = [
            scoring.Candidate(
                nomination_id=e.nomination_id,
                number=e.number,
                number_seq=seqs.get(e.nomination_id) or 0,
                valid_votes=e.valid_votes,
                # The stored jury score is already the mean on 0–100: one "sheet" out of 100
                # gives it back unchanged.
                sheet_totals=(Decimal(str(e.jury_score)),) if e.jury_count else (),
                organizer=Decimal(str(e.organizer_score)),
                adjustment=e.adjustment,
                tier=e.tier if e.adjustment == "tier" else None,
                peer_totals=(Decimal(str(e.peer_score)),) if e.peer_count else (),
                leader_totals=(Decimal(str(e.leader_score)),) if e.leader_count else (),
                satisfaction_answers=e.satisfaction_answers or 0,
                satisfaction_positive=e.satisfaction_positive or 0,
            )
            for e in rows
        ]
        base_winners = {e.number for e in rows if e.winner}
        outcomes = []
        for scenario in scenarios:
            scored = {
                s.candidate.number: s
                for s in scoring.score_category(
                    candidates,
                    weights=scenario["weights"],
                    criteria_max=100,
                    award_count=category.award_count,
                )
            }
            winners = {n for n, s in scored.items() if s.winner}
            outcomes.append(
                {
                    "component": scenario["component"],
                    "step": scenario["step"],
                    "weights": scenario["weights"],
                    "current": scenario["step"] == 0,
                    "changed": winners != base_winners,
                    "new_winners": sorted(winners - base_winners),
                    "dropped": sorted(base_winners - winners),
                    "scored": scored,
                }
            )
        categories.append(
            {
                "code": category.code,
                "name": category.name,
                "award_count": category.award_count,
                "scenarios": [{k: v for k, v in o.items() if k != "scored"} for o in outcomes],
                "rows": [
                    {
                        "number": e.number,
                        "name": e.name,
                        "unit": e.unit,
                        "rank": e.rank,
                        "winner": e.winner,
                        "tier_name": e.tier_name,
                        "adjustment": e.adjustment,
                        "ranks": [o["scored"][e.number].rank for o in outcomes],
                        "combined": [float(o["scored"][e.number].combined) for o in outcomes],
                        "winners": [o["scored"][e.number].winner for o in outcomes],
                    }
                    for e in rows
                ],
            }
        )
    return {"version": version.version, "weights": weights, "categories": categories}
