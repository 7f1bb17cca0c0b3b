"""new_identity_surge: a nominee receiving a burst of votes from identities created minutes
before.

A vote is *fresh* when it is cast within ``fresh_seconds`` of its voter's creation. In this
system every voter's very first vote is usually fresh (the identity is made by the WeChat
exchange just before voting), so freshness alone proves nothing: what counts is a nominee's fresh
votes clustering (gaps ≤ ``burst_gap_seconds``) far beyond its usual share of the campaign's fresh
votes at that moment. Expected = the campaign's other fresh votes in the window × s / (1 − s),
where s is the nominee's expected share from what is known when the burst happens (the largest
of: its share of fresh and of all votes outside the burst, of the votes before it, of the page
views in the window, of the window's votes by established voters; a figure is known over
``min_known`` votes or views; the category's even share joins them once anything is known). When
nothing is known — a campaign minutes old, one burst — there is no baseline and no flag: a launch
shared into WeChat groups is not a surge. A cluster needs ≥ ``min_voters`` identities and
``min_lift`` × that expectation. A surge with no sign but its timing (suspicion < 0.3) is a
观察 (watch) note, never a flag.

Score = strength × (base + (1 − base) × suspicion) × (1 − ½ × explained), where suspicion comes
from votes the page views cannot account for, one network, one user agent, shared devices and
machine-even gaps, and ``explained`` is how much of the surge the page views do account for (a
share of the nominee's page that brings new voters brings its page views with it). The flag
covers the cluster's fresh votes for that nominee."""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Mapping

from .model import Finding
from .prep import Campaign
from .signals import (
    burst_signals,
    evidence,
    finding,
    fmt_span,
)

RULE = "new_identity_surge"


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    fresh_seconds = cfg["fresh_seconds"]
    fresh_times: list[float] = []
    per_nominee: dict[int, list[int]] = {}
    for i, (t, made) in enumerate(zip(c.at, c.created, strict=True)):
        if made is not None and 0 <= t - made <= fresh_seconds:
            fresh_times.append(t)
            per_nominee.setdefault(c.nom[i], []).append(i)
    out = []
    for m, idxs in per_nominee.items():
        if len(idxs) < cfg["min_voters"]:
            continue
        for cluster in _clusters(c, idxs, cfg["burst_gap_seconds"]):
            found = _assess(c, cfg, m, cluster, fresh_times, len(idxs))
            if found is not None:
                out.append(found)
    return out


def _clusters(c: Campaign, idxs: list[int], gap: float) -> list[list[int]]:
    clusters: list[list[int]] = [[idxs[0]]]
    for prev, i in itertools.pairwise(idxs):
        if c.at[i] - c.at[prev] <= gap:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    return clusters


def _assess(
    c: Campaign,
    cfg: Mapping[str, float],
    m: int,
    cluster: list[int],
    fresh_times: list[float],
    nominee_fresh: int,
) -> Finding | None:
    voters = {c.voter[i] for i in cluster}
    k = len(voters)
    if k < cfg["min_voters"]:
        return None
    start, end = c.at[cluster[0]], c.at[cluster[-1]]
    in_window = bisect_right(fresh_times, end) - bisect_left(fresh_times, start)
    others = max(in_window - len(cluster), 0)
    share, basis = expected_share(c, cfg, m, cluster, start, end, fresh_times, nominee_fresh)
    if share is None:
        return None  # nothing known yet about this nominee's share: no baseline, no flag
    share = min(share, 0.9)
    expected = others * share / (1 - share)
    lift = len(cluster) / max(expected, 1.0)
    if lift < cfg["min_lift"]:
        return None
    strength = 1 - 0.25 ** min(k / cfg["min_voters"], lift / cfg["min_lift"])

    b = burst_signals(c, m, cluster, start, end, cfg, net_weight=0.3, net_min_votes=10)
    explained, view_figures = b.explained, b.view_figures
    top_prefix, top_votes, one_net = b.top_prefix, b.top_votes, b.one_net
    ua_same, ua_distinct, dev_shared, regular = b.ua_same, b.ua_distinct, b.dev_shared, b.regular
    suspicion = b.suspicion
    score = b.score(strength, cfg["base_score"])

    ages = sorted(c.at[i] - c.created[i] for i in cluster)  # type: ignore[operator]
    made = sorted(c.created[i] for i in cluster)  # type: ignore[type-var]
    nominee = c.nominees[m]
    text = (
        f"候选人 {nominee} 在 {fmt_span(c, start, end)} 收到 {len(cluster)} 票来自 {k} 个"
        f"刚注册的投票身份（注册后中位 {ages[len(ages) // 2] / 60:.1f} 分钟即投票，这些身份在 "
        f"{fmt_span(c, made[0], made[-1])} 间集中注册），"
        f"是按该候选人平常在新身份投票中的占比预期的 {lift:.0f} 倍"
        f"（同期其他候选人共收到新身份投票 {others} 票）。"
    )
    signs = []
    if one_net is not None and one_net >= 0.5:
        signs.append(f"{top_votes} 票来自同一网段 {c.prefixes[top_prefix]}")
    if ua_same is not None and ua_same >= 0.5:
        signs.append(f"只用了 {ua_distinct} 种浏览器标识")
    if explained is not None:
        can = view_figures["votes_views_account_for"]
        if explained < 0.5:
            signs.append(f"同期页面浏览 {view_figures['page_views']} 次，只能解释约 {can:.0f} 票")
        else:
            signs.append(f"同期页面浏览 {view_figures['page_views']} 次，与新增投票相符")
    if signs:
        text += "；".join(signs) + "。"
    weak = suspicion < 0.3
    if weak:
        text += (
            "除此之外未见机器或集中来源的迹象，也可能是页面被转发后涌入的新用户，"
            "仅作观察，请结合页面浏览判断。"
        )
    else:
        text += "批量注册后立即投票是买号或接码刷票的典型特征。"
    ev = evidence(
        c,
        cluster,
        lift=lift,
        expected_share=share,
        expected_share_basis=basis,
        expected_fresh_votes=expected,
        other_fresh_votes_in_window=others,
        median_minutes_after_creation=ages[len(ages) // 2] / 60,
        created_window={"start": made[0], "end": made[-1]},
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
    return finding(c, RULE, m, score, cfg, cluster, ev, text, watch=weak)


def expected_share(
    c: Campaign,
    cfg: Mapping[str, float],
    m: int,
    cluster: list[int],
    start: float,
    end: float,
    fresh_times: list[float],
    nominee_fresh: int,
) -> tuple[float | None, dict[str, float]]:
    """The nominee's expected share of the window's fresh votes, from what is known when the
    burst happens: its share of fresh votes and of all votes outside the burst, of the votes cast
    before it, of the page views in the window (all nominees' views counted), of the window's
    votes by established voters (made before the window), and the category's even share. The
    largest known figure is used (the burst must beat every honest explanation); a figure counts
    as known only over ``min_known`` votes or views. None when nothing but the category prior is
    known: a campaign minutes old has no baseline, so its launch is not a surge."""
    known = cfg["min_known"]
    basis: dict[str, float] = {}
    outside = c.n - len(cluster)
    if outside >= known:
        basis["all_votes_outside"] = (len(c.by_nominee[m]) - len(cluster)) / outside
        elsewhere = len(fresh_times) - (
            bisect_right(fresh_times, end) - bisect_left(fresh_times, start)
        )
        if elsewhere >= known:
            basis["fresh_votes_outside"] = (nominee_fresh - len(cluster)) / elsewhere
    before = bisect_left(c.at, start)
    if before >= known:
        basis["votes_before"] = c.nominee_votes_between(m, c.t0, start - 1e-6) / before
    lead = cfg["view_lead_seconds"]
    if c.views_cover(start - lead, end):
        all_views = c.all_views_between(start - lead, end)
        if all_views >= known:
            basis["page_views"] = c.views_between(m, start - lead, end) / all_views
    lo, hi = bisect_left(c.at, start), bisect_right(c.at, end)
    established_times, established_cum = _established(c, cfg["fresh_seconds"])
    established = established_cum[hi] - established_cum[lo]
    if established >= known:
        times = established_times[m]
        mine = bisect_right(times, end) - bisect_left(times, start)
        basis["established_voters"] = mine / established
    if not basis:
        return None, basis
    category = c.nominee_category[m]
    peers = sum(1 for k in c.nominee_category if k == category)
    basis["category_prior"] = 1 / max(peers, 1)
    return max(basis.values()), basis


def _established(c: Campaign, fresh: float) -> tuple[list[list[float]], list[int]]:
    """Votes by established voters (made more than ``fresh`` seconds before the vote, or of
    unknown age): each nominee's times and a running count over the campaign's votes."""
    cached = getattr(c, "_established", None)
    if cached is not None and cached[0] == fresh:
        return cached[1], cached[2]
    times: list[list[float]] = [[] for _ in c.nominees]
    cum = [0]
    for t, made, m in zip(c.at, c.created, c.nom, strict=True):
        old = made is None or t - made > fresh
        if old:
            times[m].append(t)
        cum.append(cum[-1] + old)
    c._established = (fresh, times, cum)  # type: ignore[attr-defined]
    return times, cum
