"""address_concentration: a burst of votes for one nominee from one IPv4 /24 or IPv6 /64.

Votes are counted per (prefix, nominee, ``window_seconds`` bucket). A bucket is hot when it holds
at least a third of ``min_votes`` and ``min_lift`` times what the prefix's share of the whole
campaign predicts for that nominee's votes in the bucket. Hot buckets of one (prefix, nominee)
less than a bucket apart are merged into a burst and the burst is widened to the prefix's
neighbouring votes while they keep the burst's pace. The flag covers exactly the prefix's votes
for the nominee inside the burst.

Concentration alone is what a hospital's Wi-Fi looks like when a nurse's page is shared at
lunch, so on its own it scores ``base_score`` (below the report line). The rest of the score
comes from signs a crowd of colleagues does not show: votes the nominee's page views cannot
account for, machine-even gaps, one user agent for many identities, shared device ids and
identities created minutes before voting."""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from statistics import median

from .model import Finding
from .prep import Campaign, clamp
from .signals import (
    device_sharing,
    evidence,
    finding,
    fmt_rate,
    fmt_span,
    fresh_fraction,
    noisy_or,
    regularity,
    ua_uniformity,
    view_explained,
)

RULE = "address_concentration"


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    if not c.n:
        return []
    width = cfg["window_seconds"]
    min_votes, min_lift = cfg["min_votes"], cfg["min_lift"]
    hot_min = max(3.0, min_votes / 3)
    n_nom = len(c.nominees)
    n_pfx = len(c.prefixes)
    base_slot = int(c.t0 // width)
    n_slots = int(c.t1 // width) - base_slot + 1

    # one pass: votes per (prefix, nominee, slot), per (nominee, slot), per prefix
    slots = [m * n_slots + int(t // width) - base_slot for t, m in zip(c.at, c.nom, strict=True)]
    nominee_slot = Counter(slots)  # (nominee, slot) → votes
    cell = Counter([p * n_nom * n_slots + ms for p, ms in zip(c.pfx, slots, strict=True)])
    prefix_total = [0] * n_pfx
    for p, count in Counter(c.pfx).items():
        prefix_total[p] = count

    hot: dict[tuple[int, int], list[int]] = {}
    for key, count in cell.items():
        if count < hot_min:
            continue
        pm, s = divmod(key, n_slots)
        p, m = divmod(pm, n_nom)
        share = (prefix_total[p] - count) / c.n
        expected = nominee_slot[m * n_slots + s] * share
        if count >= min_lift * max(expected, 0.5):
            hot.setdefault((p, m), []).append(s)
    if not hot:
        return []

    per_nominee: dict[int, dict[int, list[int]]] = {}
    for p, m in hot:
        per_nominee.setdefault(m, {})[p] = []
    for m, wanted in per_nominee.items():
        pfx = c.pfx
        for i in c.by_nominee[m]:
            lst = wanted.get(pfx[i])
            if lst is not None:
                lst.append(i)

    findings = []
    for (p, m), hot_slots in hot.items():
        idxs = per_nominee[m][p]
        times = [c.at[i] for i in idxs]
        done = 0
        for first, last in _runs(sorted(hot_slots)):
            start = (base_slot + first) * width
            end = (base_slot + last + 1) * width
            lo, hi = bisect_left(times, start), bisect_right(times, end)
            lo, hi = _widen(times, lo, hi)
            lo = max(lo, done)
            if hi <= lo:
                continue
            done = hi
            burst = idxs[lo:hi]
            found = _assess(c, cfg, p, m, burst, prefix_total[p])
            if found is not None:
                findings.append(found)
    return findings


def _runs(slots: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for s in slots:
        if runs and s - runs[-1][1] <= 2:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


def _widen(times: list[float], lo: int, hi: int) -> tuple[int, int]:
    """Take in the prefix's votes just before and after while they keep the burst's pace."""
    if hi - lo < 2:
        return lo, hi
    inner = [b - a for a, b in zip(times[lo:hi], times[lo + 1 : hi], strict=False)]
    reach = max(60.0, 3 * median(inner))
    while lo > 0 and times[lo] - times[lo - 1] <= reach:
        lo -= 1
    while hi < len(times) and times[hi] - times[hi - 1] <= reach:
        hi += 1
    return lo, hi


def _assess(
    c: Campaign, cfg: Mapping[str, float], p: int, m: int, burst: list[int], prefix_votes: int
) -> Finding | None:
    n = len(burst)
    voters = {c.voter[i] for i in burst}
    k = len(voters)
    if n < cfg["min_votes"] or k < cfg["min_voters"]:
        return None
    start, end = c.at[burst[0]], c.at[burst[-1]]
    window_votes = c.nominee_votes_between(m, start, end)
    expected = window_votes * (prefix_votes - n) / c.n
    lift = n / max(expected, 1.0)
    if lift < cfg["min_lift"]:
        return None
    strength = 1 - 0.25 ** min(n / cfg["min_votes"], k / cfg["min_voters"], lift / cfg["min_lift"])

    times = [c.at[i] for i in burst]
    explained, view_figures = view_explained(
        c, m, start, end, n, cfg["view_leniency"], cfg["view_lead_seconds"]
    )
    regular, cv = regularity(times)
    ua_same, ua_distinct, ua_expected = ua_uniformity(c, burst)
    dev_shared, dev_distinct, dev_voters = device_sharing(c, burst)
    fresh = fresh_fraction(c, burst, 900.0)
    suspicion = noisy_or(
        [
            (0.9, None if explained is None else 1 - explained),
            (0.9, regular),
            (0.7, ua_same),
            (0.8, dev_shared),
            (0.3, clamp((fresh - 0.5) / 0.5) * (1 if explained is None else 1 - explained)),
        ]
    )
    base = cfg["base_score"]
    score = strength * (base + (1 - base) * suspicion)

    usual = (len(c.by_nominee[m]) - n) / (c.span / 60)
    ips: dict[int, set[int]] = {}
    for i in burst:
        ips.setdefault(c.ip[i], set()).add(c.voter[i])
    top_ip, top_voters = max(ips.items(), key=lambda kv: len(kv[1]))
    prefix = c.prefixes[p]
    nominee = c.nominees[m]
    minutes = max((end - start) / 60, 1.0)
    parts = [
        f"候选人 {nominee} 在 {fmt_span(c, start, end)} 共收到 {window_votes} 票，"
        f"其中 {n} 票来自同一网段 {prefix}（{k} 个投票身份"
    ]
    if len(top_voters) >= max(5, k // 2):
        parts.append(f"，其中 {len(top_voters)} 个身份共用地址 {c.ips[top_ip]}")
    parts.append(
        f"），约每分钟 {fmt_rate(n / minutes)} 票，是按该网段平常占比预期的 {lift:.0f} 倍；"
        f"该候选人平时平均每分钟约 {fmt_rate(usual)} 票。"
    )
    signs = []
    if regular is not None and regular >= 0.5:
        signs.append(f"投票间隔几乎一致（中位间隔 {median(_gaps(times)):.1f} 秒），不像人手操作")
    if ua_same is not None and ua_same >= 0.5:
        signs.append(f"{k} 个身份只用了 {ua_distinct} 种浏览器标识")
    if dev_shared is not None and dev_shared >= 0.3:
        signs.append(f"{dev_voters} 个带设备号的身份只对应 {dev_distinct} 台设备")
    if fresh >= 0.5:
        signs.append(f"{fresh:.0%} 的身份在投票前 15 分钟内才注册")
    if explained is not None:
        can = view_figures["votes_views_account_for"]
        if explained < 0.5:
            signs.append(f"同期页面浏览 {view_figures['page_views']} 次，只能解释约 {can:.0f} 票")
        else:
            signs.append(f"同期页面浏览 {view_figures['page_views']} 次，与票数的上升相符")
    if signs:
        parts.append("；".join(signs) + "。")
    if suspicion < 0.2:
        parts.append("除集中度外未见明显的机器或刷票迹象，可能是单位内部转发（同一出口网络）。")

    ev = evidence(
        c,
        burst,
        prefix=prefix,
        lift=lift,
        nominee_window_votes=window_votes,
        usual_votes_per_minute=usual,
        top_ips=[
            {"ip": c.ips[ip], "votes": sum(1 for i in burst if c.ip[i] == ip), "voters": len(v)}
            for ip, v in sorted(ips.items(), key=lambda kv: -len(kv[1]))[:5]
        ],
        gap_robust_cv=cv,
        distinct_user_agents=ua_distinct,
        expected_distinct_user_agents=ua_expected,
        devices_for_voters=[dev_distinct, dev_voters],
        fresh_identity_share=fresh,
        views_explain_share=explained,
        **view_figures,
        signals={
            "strength": strength,
            "regular": regular,
            "one_user_agent": ua_same,
            "shared_devices": dev_shared,
            "unexplained_by_views": None if explained is None else 1 - explained,
        },
    )
    return finding(c, RULE, m, score, cfg, burst, ev, "".join(parts))


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)] or [0.0]
