"""How public votes, jury scores and the organiser's score combine into a ranking.

The method, written next to every result version (``METHOD``):

1. Public score = valid votes ÷ the category leader's valid votes × 100 (0 when nobody has a
   vote). Raw volume therefore cannot exceed 100 however large it is.
2. Jury score = the mean, over the judges who submitted a sheet for the nominee (judges of the
   nominee's own unit and declared conflicts never score), of the sheet total ÷ the criteria's
   maximum × 100. No sheet: 0.
3. Organiser score = the organiser's 0–100 score (0 when none).
4. Combined = (public × w_public + jury × w_jury + organiser × w_organiser) ÷ 100, every step in
   decimal arithmetic rounded half-up to 2 places, so recomputing gives the same numbers.
   When the campaign weights further components (step 8), their weighted scores are added to
   the sum in the same way.
5. Rank by combined score; ties go to the higher jury score, then to more valid votes, then to
   the smaller public number (earlier approval). Equal on all of these is impossible: numbers are
   unique.
6. Winners are the category's top ``award_count`` after the committee's adjustments: an excluded
   nominee is skipped; a promoted one is a winner and the lowest-ranked unpromoted winner makes
   room for it.
7. Award tiers, when the category has them (e.g. 十佳 10, 优秀 10): the winners in rank order
   fill the tiers in order, the first ``count`` the first tier, the next ones the second, and so
   on. A winner the committee placed in a tier (with a written reason) stays there and takes one
   of its places; the others fill what remains in rank order, so moving a winner up lets the
   lowest-ranked of that tier down into the next one, and moving one down lets the best of the
   next tier up.
8. Further components, each counted only when the campaign gives it a weight:
   - 同行互评 (peer) and 领导点评 (leader) scores: the mean of the submitted sheets of that panel
     ÷ the criteria's maximum × 100, like the jury score (no sheet: 0). Declared conflicts
     never count; the own-unit rule applies to the leaders but not to the peers (a nominee's
     colleagues are who 同行互评 asks); nobody's sheet about themselves counts.
   - Satisfaction (群众评议): (满意 + 基本满意) ÷ answers × 100 over the patients' invited answers
     naming the nominee (one per invitation). Walk-in answers (QR code at a window) do not
     count: nothing ties them to one patient and one visit. With fewer answers than the
     campaign's minimum (``satisfaction_min_answers``, 30 by default) the satisfaction is 样本不足:
     the nominee is scored on the other components with their weights rescaled to 100
     (combined = their weighted sum ÷ (100 − w_satisfaction) × 100), so a small unit's nominee
     is neither punished with a 0 nor helped by a rate from a handful of answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

METHOD = __doc__.split("The method, written next to every result version (``METHOD``):")[1].strip()

TWO = Decimal("0.01")

# Every weighted part of a combined score, in the order results and exports show them.
COMPONENTS = ("public", "jury", "organizer", "satisfaction", "peer", "leader")
# The parts a campaign may add beside public, jury and organiser (awards.components).
EXTRA_COMPONENTS = ("satisfaction", "peer", "leader")
# Fewer invited answers than this (unless the campaign sets its own): 样本不足.
DEFAULT_MIN_ANSWERS = 30

# Adjustments that make a nominee a winner whatever the rank: promoted, or placed in a tier.
PINNED = ("promote", "tier")


def _round(value: Decimal) -> Decimal:
    return value.quantize(TWO, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Candidate:
    nomination_id: int
    number: str
    number_seq: int
    valid_votes: int
    sheet_totals: tuple[Decimal, ...]
    organizer: Decimal = Decimal(0)
    adjustment: str | None = None  # exclude | promote | tier
    tier: str | None = None  # the tier code a ``tier`` adjustment places the nominee in
    peer_totals: tuple[Decimal, ...] = ()
    leader_totals: tuple[Decimal, ...] = ()
    satisfaction_answers: int = 0  # invited answers naming the nominee
    satisfaction_positive: int = 0  # of which 满意 or 基本满意


@dataclass(frozen=True)
class Tier:
    code: str
    name: str
    count: int


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    public: Decimal
    jury: Decimal
    organizer: Decimal
    combined: Decimal
    rank: int
    winner: bool
    tier: str | None = None
    peer: Decimal = Decimal("0.00")
    leader: Decimal = Decimal("0.00")
    satisfaction: Decimal | None = None  # None: 样本不足


def min_answers(weights: dict[str, int]) -> int:
    """The invited answers a nominee's satisfaction needs to count."""
    return int(weights.get("satisfaction_min_answers") or DEFAULT_MIN_ANSWERS)


def sheet_mean(totals: tuple[Decimal, ...], criteria_max: int) -> Decimal:
    """A panel's score: the mean sheet total ÷ the criteria's maximum × 100 (no sheet: 0)."""
    if not totals or not criteria_max:
        return Decimal("0.00")
    return _round(sum(totals, Decimal(0)) / len(totals) * 100 / criteria_max)


def satisfaction_score(answers: int, positive: int, minimum: int) -> Decimal | None:
    """(满意 + 基本满意) ÷ answers × 100, or None (样本不足) below ``minimum`` answers."""
    if answers <= 0 or answers < minimum:
        return None
    return _round(Decimal(positive) * 100 / answers)


def combine(scores: dict[str, Decimal | None], weights: dict[str, int]) -> Decimal:
    """The weighted sum ÷ 100; a satisfaction of None (样本不足) leaves the other weights
    rescaled to 100 (0 when nothing else has a weight)."""
    total = Decimal(0)
    for key in COMPONENTS:
        weight = int(weights.get(key) or 0)
        value = scores.get(key)
        if weight and value is not None:
            total += value * weight
    missing = int(weights.get("satisfaction") or 0) if scores.get("satisfaction") is None else 0
    if not missing:
        return _round(total / 100)
    remaining = 100 - missing
    return _round(total / remaining) if remaining > 0 else Decimal("0.00")


def score_category(
    candidates: list[Candidate],
    *,
    weights: dict[str, int],
    criteria_max: int,
    award_count: int,
    tiers: Sequence[Tier] = (),
) -> list[Scored]:
    """Score and rank one category's candidates (see the module docstring for the rules)."""
    leader = max((c.valid_votes for c in candidates), default=0)
    scored = []
    for c in candidates:
        public = _round(Decimal(c.valid_votes) * 100 / leader) if leader else Decimal("0.00")
        if c.sheet_totals and criteria_max:
            mean = sum(c.sheet_totals, Decimal(0)) / len(c.sheet_totals)
            jury = _round(mean * 100 / criteria_max)
        else:
            jury = Decimal("0.00")
        organizer = _round(c.organizer)
        peer = sheet_mean(c.peer_totals, criteria_max)
        leader_score = sheet_mean(c.leader_totals, criteria_max)
        satisfaction = satisfaction_score(
            c.satisfaction_answers, c.satisfaction_positive, min_answers(weights)
        )
        parts = {
            "public": public,
            "jury": jury,
            "organizer": organizer,
            "satisfaction": satisfaction,
            "peer": peer,
            "leader": leader_score,
        }
        combined = combine(parts, weights)
        scored.append(
            Scored(
                c,
                public,
                jury,
                organizer,
                combined,
                0,
                False,
                None,
                peer,
                leader_score,
                satisfaction,
            )
        )
    scored.sort(
        key=lambda s: (-s.combined, -s.jury, -s.candidate.valid_votes, s.candidate.number_seq)
    )
    ranked = [replace(s, rank=i) for i, s in enumerate(scored, start=1)]
    return assign_tiers(_choose_winners(ranked, award_count), tiers)


def _choose_winners(ranked: list[Scored], award_count: int) -> list[Scored]:
    promoted = [s for s in ranked if s.candidate.adjustment in PINNED]
    eligible = [s for s in ranked if s.candidate.adjustment not in ("exclude", *PINNED)]
    room = max(0, award_count - len(promoted))
    winners = {s.candidate.nomination_id for s in promoted[:award_count]}
    winners |= {s.candidate.nomination_id for s in eligible[:room]}
    return [replace(s, winner=s.candidate.nomination_id in winners) for s in ranked]


def assign_tiers(ranked: list[Scored], tiers: Sequence[Tier]) -> list[Scored]:
    """Give each winner of ``ranked`` (in rank order) its tier: the committee's placement, else
    the first tier with a place left. No tiers: nobody gets one. A placement in a tier the
    category no longer has is ignored (the nominee still wins, placed by rank); more placements
    in a tier than its count are kept (the office refuses making them, see results.adjust) and
    the last tier takes whoever finds no place."""
    if not tiers:
        return ranked
    codes = {t.code for t in tiers}
    placed = {
        s.candidate.nomination_id: s.candidate.tier
        for s in ranked
        if s.winner and s.candidate.adjustment == "tier" and s.candidate.tier in codes
    }
    room = [max(0, t.count - sum(1 for c in placed.values() if c == t.code)) for t in tiers]
    for s in ranked:
        if not s.winner or s.candidate.nomination_id in placed:
            continue
        index = next((i for i, left in enumerate(room) if left > 0), len(tiers) - 1)
        room[index] = max(0, room[index] - 1)
        placed[s.candidate.nomination_id] = tiers[index].code
    return [replace(s, tier=placed.get(s.candidate.nomination_id)) for s in ranked]


def shifted_components(weights: dict[str, int]) -> tuple[str, ...]:
    """The components weight is moved to and from the public in the sensitivity scenarios: the
    jury always (as before components existed), then every other component with a weight."""
    others = tuple(k for k in COMPONENTS[2:] if int(weights.get(k) or 0) > 0)
    return ("jury", *others)


def shift(weights: dict[str, int], component: str, step: int) -> dict[str, int] | None:
    """``weights`` with ``step`` points moved from ``component`` to the public (negative: the
    other way), or None when either would fall below 0."""
    public = int(weights.get("public") or 0) + step
    other = int(weights.get(component) or 0) - step
    if public < 0 or other < 0:
        return None
    return dict(weights, public=public, **{component: other})


def sensitivity(
    candidates: list[Candidate],
    *,
    weights: dict[str, int],
    criteria_max: int,
    award_count: int,
    steps: tuple[int, ...] = (-10, -5, 5, 10),
) -> list[dict[str, object]]:
    """Would the winners change if ``steps`` points of weight moved between the public and the
    jury, or the public and each other weighted component (``shifted_components``)? Each
    scenario names the ``component`` it moves weight with."""
    base = {
        s.candidate.number
        for s in score_category(
            candidates, weights=weights, criteria_max=criteria_max, award_count=award_count
        )
        if s.winner
    }
    scenarios = []
    for component in shifted_components(weights):
        for step in steps:
            shifted = shift(weights, component, step)
            if shifted is None:
                continue
            winners = {
                s.candidate.number
                for s in score_category(
                    candidates, weights=shifted, criteria_max=criteria_max, award_count=award_count
                )
                if s.winner
            }
            scenarios.append(
                {
                    "component": component,
                    "weights": shifted,
                    "changed": winners != base,
                    "new_winners": sorted(winners - base),
                    "dropped": sorted(base - winners),
                }
            )
    return scenarios
