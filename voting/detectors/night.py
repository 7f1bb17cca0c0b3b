"""night_burst: a burst in the campaign's quiet hours, unlike its own daily rhythm.

The campaign's rhythm is the median, over whole days, of each local hour's share of the day's
votes (robust to a single night's attack). Quiet hours are those whose share is below
``quiet_share`` / 24; with fewer than ``min_days`` days of votes, 00:00–06:00 local. A nominee's
votes in quiet hours are clustered (gaps ≤ ``burst_gap_seconds``); a cluster is a burst when it
has ≥ ``min_votes`` votes and ≥ ``min_ratio`` × what the nominee's average daily votes and the
rhythm predict for that span (at least 10 minutes) — scaled up by how far the rest of the campaign
(every other nominee) is itself above what the rhythm predicts for that span. A night burst is one
nominee's night, not the campaign's: a campaign launched at 1 a.m. (the link shared into WeChat
groups at night), or one whose first hours are all night, has every nominee "above its night
rhythm" together, and that is no flag; a farm working one nominee while the rest of the campaign
sleeps keeps its ratio. When nothing but night is known this degrades to no flag, never to
"every nominee bursts".

Score = strength × (base + (1 − base) × suspicion) × (1 − ½ × explained): night-shift wards do
share pages at 3 a.m., and then page views rise with the votes. The flag covers the cluster."""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Mapping

from .model import Finding
from .prep import HOUR, Campaign
from .signals import (
    burst_signals,
    evidence,
    finding,
    fmt_span,
)

RULE = "night_burst"


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    if not c.n:
        return []
    profile = c.hour_profile
    if c.days_known >= cfg["min_days"]:
        quiet = {h for h in range(24) if profile[h] < cfg["quiet_share"] / 24}
    else:
        quiet = set(range(6))
        profile = [0.3 / 24 if h in quiet else (1 - 6 * 0.3 / 24) / 18 for h in range(24)]
    if not quiet:
        return []
    days = max(c.span / 86400, 1.0)
    out = []
    gap = cfg["burst_gap_seconds"]
    for m, idxs in enumerate(c.by_nominee):
        hours = c.hour
        night = [i for i in idxs if hours[i] in quiet]
        if len(night) < cfg["min_votes"]:
            continue
        daily = len(idxs) / days
        cluster = [night[0]]
        for prev, i in itertools.pairwise(night):
            if c.at[i] - c.at[prev] <= gap:
                cluster.append(i)
                continue
            _emit(c, cfg, m, cluster, daily, profile, out)
            cluster = [i]
        _emit(c, cfg, m, cluster, daily, profile, out)
    return out


def _span(start: float, end: float) -> tuple[float, float]:
    """The span a cluster is judged over: at least 10 minutes, centred on it."""
    if end - start < 600:
        pad = (600 - (end - start)) / 2
        start, end = start - pad, end + pad
    return start, end


def _day_share(c: Campaign, start: float, end: float, profile: list[float]) -> float:
    """The share of a day's votes the rhythm puts in [start, end)."""
    total = 0.0
    t = start
    while t < end:
        hour_end = (t // HOUR + 1) * HOUR
        stop = min(end, hour_end)
        total += profile[c.local_hour(t)] * (stop - t) / HOUR
        t = stop
    return total


def _campaign_lift(
    c: Campaign, m: int, start: float, end: float, share: float, days: float
) -> float:
    """How far every other nominee's votes in [start, end) are above what the rhythm predicts
    (their daily votes × the span's share of a day); at least 1. The +1 on both sides keeps a
    quiet campaign's few votes from making a lift out of noise."""
    rest_in = bisect_right(c.at, end) - bisect_left(c.at, start)
    own = c.by_nominee[m]
    times = [c.at[i] for i in own]
    rest_in -= bisect_right(times, end) - bisect_left(times, start)
    rest_expected = (c.n - len(own)) / days * share
    return max(1.0, (rest_in + 1) / (rest_expected + 1))


def _emit(
    c: Campaign,
    cfg: Mapping[str, float],
    m: int,
    cluster: list[int],
    daily: float,
    profile: list[float],
    out: list[Finding],
) -> None:
    n = len(cluster)
    if n < cfg["min_votes"]:
        return
    start, end = c.at[cluster[0]], c.at[cluster[-1]]
    lo, hi = _span(start, end)
    share = _day_share(c, lo, hi, profile)
    campaign_lift = _campaign_lift(c, m, lo, hi, share, max(c.span / 86400, 1.0))
    expected = daily * share * campaign_lift
    ratio = n / max(expected, 0.5)
    if ratio < cfg["min_ratio"]:
        return
    strength = 1 - 0.25 ** min(n / cfg["min_votes"], ratio / cfg["min_ratio"])
    b = burst_signals(c, m, cluster, start, end, cfg, net_weight=0.5)
    explained, view_figures = b.explained, b.view_figures
    top_prefix, top_votes, one_net = b.top_prefix, b.top_votes, b.one_net
    ua_same, ua_distinct, dev_shared, regular = b.ua_same, b.ua_distinct, b.dev_shared, b.regular
    score = b.score(strength, cfg["base_score"])

    hours = sorted({c.local_hour(c.at[i]) for i in cluster})
    hour_share = sum(profile[h] for h in hours) / len(hours)
    voters = len({c.voter[i] for i in cluster})
    text = (
        f"候选人 {c.nominees[m]} 在夜间 {fmt_span(c, start, end)} 收到 {n} 票"
        f"（{voters} 个投票身份），而按本活动自身的作息，这个时段每小时只占全天投票的约 "
        f"{hour_share:.1%}；按该候选人平均每天 {daily:.0f} 票推算，此时段应{_about(expected)}，"
        f"实际是其 {ratio:.0f} 倍。"
    )
    if campaign_lift >= 1.5:
        text += f"（已计入全活动其他候选人同时段的投票是平常的 {campaign_lift:.1f} 倍。）"
    signs = []
    if one_net >= 0.5:
        signs.append(f"其中 {top_votes} 票来自同一网段 {c.prefixes[top_prefix]}")
    if ua_same is not None and ua_same >= 0.5:
        signs.append(f"只用了 {ua_distinct} 种浏览器标识")
    if regular is not None and regular >= 0.5:
        signs.append("投票间隔几乎一致")
    if explained is not None:
        can = view_figures["votes_views_account_for"]
        if explained < 0.5:
            signs.append(f"同期页面浏览 {view_figures['page_views']} 次，只能解释约 {can:.0f} 票")
        else:
            signs.append(f"同期页面浏览 {view_figures['page_views']} 次，与票数的上升相符")
    if signs:
        text += "；".join(signs) + "。"
    ev = evidence(
        c,
        cluster,
        expected_votes=expected,
        ratio=ratio,
        campaign_lift=campaign_lift,
        quiet_hours=hours,
        campaign_hour_share=hour_share,
        nominee_daily_votes=daily,
        views_explain_share=explained,
        **view_figures,
        signals={
            "strength": strength,
            "one_network": one_net,
            "one_user_agent": ua_same,
            "shared_devices": dev_shared,
            "regular": regular,
        },
    )
    found = finding(c, RULE, m, score, cfg, cluster, ev, text)
    if found is not None:
        out.append(found)


def _about(votes: float) -> str:
    return "几乎没有票" if votes < 0.1 else f"约 {votes:.1f} 票"
