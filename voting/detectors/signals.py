"""What the rules share: the organic-versus-machine signals of a set of votes, the evidence
block, time formatting in the campaign's zone, and building a Finding."""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import WATCH, Finding, severity_of
from .prep import Campaign, clamp, robust_cv

MAX_HISTOGRAM = 1440  # minutes listed in evidence (a day of minutes)


# --- formatting ---------------------------------------------------------------------------------


def fmt_time(c: Campaign, t: float) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(t + c.tz))


def fmt_span(c: Campaign, start: float, end: float) -> str:
    a, b = fmt_time(c, start), fmt_time(c, end)
    if a[:5] == b[:5]:
        return f"{a}–{b[6:]}"
    return f"{a}–{b}"


def fmt_rate(x: float) -> str:
    if x >= 10:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.1f}"
    return f"{x:.2f}"


# --- signals ------------------------------------------------------------------------------------


def noisy_or(signals: Iterable[tuple[float, float | None]]) -> float:
    """Combine (weight, signal) pairs; a missing signal (None) counts for nothing."""
    keep = 1.0
    for weight, signal in signals:
        if signal is not None:
            keep *= 1 - weight * clamp(signal)
    return 1 - keep


def view_explained(
    c: Campaign,
    nominee: int,
    start: float,
    end: float,
    suspect: int,
    leniency: float,
    lead: float,
) -> tuple[float | None, dict[str, Any]]:
    """How much of ``suspect`` votes the nominee's page views in the window can account for.

    Votes and views are both counted from ``lead`` seconds before the window (people look before
    they vote) to its end. Votes the views can account for = leniency × views ÷ the nominee's
    usual views per vote; everything above that (less two standard deviations) is unexplained.
    The answer is 1 − unexplained ÷ suspect, or None without view data."""
    per_vote = c.views_per_vote[nominee] if c.views_cover(start - lead, end) else None
    if not per_vote:
        return None, {}
    votes = c.nominee_votes_between(nominee, start - lead, end)
    views = c.views_between(nominee, start - lead, end)
    capacity = leniency * views / per_vote
    unexplained = max(0.0, votes - capacity - 2 * math.sqrt(capacity + 1))
    explained = clamp(1 - unexplained / max(suspect, 1))
    return explained, {
        "page_views": views,
        "nominee_votes": votes,
        "usual_views_per_vote": round(per_vote, 2),
        "votes_views_account_for": round(capacity, 1),
    }


def regularity(times: Sequence[float]) -> tuple[float | None, float]:
    """1 for machine-even gaps, 0 for human/Poisson ones (robust CV ≥ 0.3); None if too few."""
    if len(times) < 8:
        return None, math.inf
    ordered = sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    cv = robust_cv(gaps)
    if math.isinf(cv):
        # most gaps zero: many votes in the same instant
        return 1.0, 0.0
    return clamp(1 - cv / 0.3), cv


def gap_entropy(times: Sequence[float]) -> float:
    """Shannon entropy (bits) of the gaps, in bins 10% wide on a log scale."""
    ordered = sorted(times)
    counts = Counter(
        int(math.log(max(b - a, 0.05)) / math.log(1.1)) for a, b in itertools.pairwise(ordered)
    )
    total = sum(counts.values())
    if not total:
        return 0.0
    return max(0.0, -sum(n / total * math.log2(n / total) for n in counts.values()))


def voters_of(c: Campaign, idxs: Iterable[int]) -> dict[int, int]:
    """voter → its first vote index among ``idxs``."""
    first: dict[int, int] = {}
    voter = c.voter
    for i in idxs:
        first.setdefault(voter[i], i)
    return first


def ua_uniformity(c: Campaign, idxs: Sequence[int]) -> tuple[float | None, int, float]:
    """1 when the voters share one user agent where the campaign would show many."""
    first = voters_of(c, idxs)
    k = len(first)
    if k < 8:
        return None, k, float(k)
    distinct = len({c.ua[i] for i in first.values()})
    expected = c.expected_distinct_uas(k)
    if expected < 3:
        return 0.0, distinct, expected
    return clamp(1 - (distinct - 1) / (expected - 1)), distinct, expected


def device_sharing(c: Campaign, idxs: Sequence[int]) -> tuple[float | None, int, int]:
    """1 when all voters with a device id share one, 0 when each has its own."""
    first = voters_of(c, idxs)
    none = c.no_device
    with_device = [c.dev[i] for i in first.values() if c.dev[i] != none]
    k = len(with_device)
    if k < 5:
        return None, len(set(with_device)), k
    distinct = len(set(with_device))
    return clamp(1 - (distinct - 1) / (k - 1)), distinct, k


def fresh_fraction(c: Campaign, idxs: Sequence[int], fresh_seconds: float) -> float:
    first = voters_of(c, idxs)
    if not first:
        return 0.0
    at, created = c.at, c.created
    fresh = 0
    for i in first.values():
        made = created[i]
        if made is not None and 0 <= at[i] - made <= fresh_seconds:
            fresh += 1
    return fresh / len(first)


# --- evidence and findings ----------------------------------------------------------------------


def evidence(c: Campaign, idxs: Sequence[int], **extra: Any) -> dict[str, Any]:
    at, voter, pfx, dev = c.at, c.voter, c.pfx, c.dev
    by_prefix: dict[int, list[int]] = {}
    by_device: dict[int, set[int]] = {}
    minutes: Counter[int] = Counter()
    for i in idxs:
        by_prefix.setdefault(pfx[i], []).append(i)
        if dev[i] != c.no_device:
            by_device.setdefault(dev[i], set()).add(voter[i])
        minutes[int(at[i] // 60)] += 1
    top = sorted(by_prefix.items(), key=lambda kv: -len(kv[1]))[:5]
    addresses = [
        {"prefix": c.prefixes[p], "votes": len(v), "voters": len({voter[i] for i in v})}
        for p, v in top
    ]
    devices = [
        {"device": c.devices[d], "voters": len(v)}
        for d, v in sorted(by_device.items(), key=lambda kv: -len(kv[1]))[:5]
    ]
    histogram = [{"minute": m, "votes": n} for m, n in sorted(minutes.items())]
    if len(histogram) > MAX_HISTOGRAM:
        histogram = sorted(
            sorted(histogram, key=lambda h: -h["votes"])[:MAX_HISTOGRAM], key=lambda h: h["minute"]
        )
    times = [at[i] for i in idxs]
    voters = sorted({voter[i] for i in idxs})
    out: dict[str, Any] = {
        "top_addresses": addresses,
        "devices": devices,
        "histogram": histogram,
        "sample_voters": voters[:20],
        "window": {"start": min(times), "end": max(times)} if times else {},
        "votes": len(idxs),
        "voters": len(voters),
    }
    out.update({k: _jsonable(v) for k, v in extra.items()})
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, 4)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def finding(
    c: Campaign,
    rule: str,
    nominee: int | None,
    score: float,
    cfg: Mapping[str, float],
    idxs: Sequence[int],
    ev: dict[str, Any],
    explanation: str,
    *,
    watch: bool = False,
) -> Finding | None:
    """A Finding over ``idxs``, or None below ``report_score``. ``watch``: the evidence is weak
    whatever the score (e.g. nothing but timing), so it is a 观察 note, never a flag."""
    score = round(clamp(score), 4)
    if score < cfg["report_score"] or not idxs:
        return None
    ids = tuple(c.ids[i] for i in sorted(set(idxs)))
    return Finding(
        rule=rule,
        nominee=c.nominees[nominee] if nominee is not None else None,
        score=score,
        severity=WATCH if watch else severity_of(score, cfg),
        vote_ids=ids,
        evidence=ev,
        explanation=explanation,
    )


@dataclass(frozen=True)
class BurstSignals:
    """What makes a burst of votes look made rather than organic, and how much page views
    account for it; shared by the burst rules (new identities, night)."""

    explained: float | None
    view_figures: dict[str, Any]
    top_prefix: int
    top_votes: int
    one_net: float | None
    ua_same: float | None
    ua_distinct: int
    dev_shared: float | None
    regular: float | None
    suspicion: float

    def score(self, strength: float, base: float) -> float:
        """strength × (base + (1 − base) × suspicion), halved as far as views explain it."""
        score = strength * (base + (1 - base) * self.suspicion)
        if self.explained is not None:
            score *= 1 - 0.5 * self.explained
        return score


def burst_signals(
    c: Campaign,
    m: int,
    cluster: Sequence[int],
    start: float,
    end: float,
    cfg: Mapping[str, float],
    *,
    net_weight: float,
    net_min_votes: int = 0,
) -> BurstSignals:
    explained, view_figures = view_explained(
        c, m, start, end, len(cluster), cfg["view_leniency"], cfg["view_lead_seconds"]
    )
    top_prefix, top_votes = Counter(c.pfx[i] for i in cluster).most_common(1)[0]
    one_net = (
        clamp((top_votes / len(cluster) - 0.3) / 0.5) if len(cluster) >= net_min_votes else None
    )
    ua_same, ua_distinct, _ = ua_uniformity(c, cluster)
    dev_shared, _, _ = device_sharing(c, cluster)
    regular, _ = regularity([c.at[i] for i in cluster])
    suspicion = noisy_or(
        [
            (0.9, None if explained is None else 1 - explained),
            (net_weight, one_net),
            (0.6, ua_same),
            (0.8, dev_shared),
            (0.8, regular),
        ]
    )
    return BurstSignals(
        explained,
        view_figures,
        top_prefix,
        top_votes,
        one_net,
        ua_same,
        ua_distinct,
        dev_shared,
        regular,
        suspicion,
    )


def poisson_tail(k: int, mean: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if mean > 500:  # e^-mean underflows: the normal approximation
        return 0.5 * math.erfc((k - 0.5 - mean) / math.sqrt(2 * mean))
    term = math.exp(-mean)
    below = 0.0
    for j in range(k):
        below += term
        term *= mean / (j + 1)
    return max(0.0, 1.0 - below)
