"""lockstep_group: voters who keep voting for the same nominees within the same short windows
(after CopyCatch and SynchroTrap). Addresses and devices play no part, so it also finds groups
of people on their own phones and networks.

1. Buckets. Each vote falls into a bucket (nominee, time slot of 2 × ``window_seconds``) on two
   grids offset by ``window_seconds``: votes up to ``window_seconds`` apart always share a
   bucket on at least one grid.
2. Hot buckets. A group voting together lifts its buckets above what the nominee usually gets
   in such a slot at that hour (its votes per day × the campaign's hourly rhythm): only buckets
   above ``hot_factor`` × that + ``hot_margin`` are used to find pairs. This is what keeps the
   work small: organic buckets are mostly not hot.
3. Candidates. Only voters with ≥ ``min_events`` votes can be in lockstep; a voter must also be
   in ≥ ``min_pair_shared`` hot buckets holding another candidate (pruned twice).
4. Pairs. Co-occurring pairs are counted inside each bucket only — never across the campaign —
   in buckets of ≤ ``bucket_cap`` candidates, smallest first, up to ``max_pairs`` pairs.
5. Edges. A pair is an edge when it shares ≥ ``min_pair_shared`` buckets and ≥ ``pair_lift``
   × what chance gives: each vote of u meets a vote of v for the same nominee with probability
   (v's votes for it) × (the campaign's share of votes in a bucket-long slot at that hour of
   that day), on each grid.
6. Groups. Connected components of ≥ ``min_group`` voters. A group's events are buckets where
   ≥ ``event_share`` of it (and ≥ 4) voted; then everyone with ≥ ``min_member_events`` votes in
   those events (and ≥ ``member_share`` × the median member's) is a member — the group is
   widened from the pairs found to all who took part. A component with no event (a chain of
   loosely linked voters) is split again with stricter edges.

The flag covers the members' votes inside the group's events. Score = strength (members,
events, sessions more than two hours apart) × (0.6 + 0.4 × suspicion: several nominees at once,
tight windows, votes the page views cannot account for) × (1 − 0.4 × share the page views do
account for) × (1 − 0.4 × how much the group sits on one network: colleagues voting together
from their office are not a farm on many networks, and a farm in one room is an address
burst)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, combinations, pairwise
from statistics import median

from .model import Finding
from .prep import DAY, Campaign, clamp
from .signals import evidence, finding, fmt_span, noisy_or, view_explained

RULE = "lockstep_group"


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    if not c.n:
        return []
    window = cfg["window_seconds"]
    width = 2 * window
    min_events = int(cfg["min_events"])
    min_shared = cfg["min_pair_shared"]
    n_nom = len(c.nominees)

    votes_of = c.by_voter
    eligible = {v for v, idxs in votes_of.items() if len(idxs) >= min_events}
    if len(eligible) < cfg["min_group"]:
        return []

    # bucket keys of every vote on both grids: (slot * 2 + grid) * n_nom + nominee
    key0 = [int(t // width) * 2 * n_nom + m for t, m in zip(c.at, c.nom, strict=True)]
    key1 = [
        (int((t + window) // width) * 2 + 1) * n_nom + m for t, m in zip(c.at, c.nom, strict=True)
    ]
    members: defaultdict[int, list[int]] = defaultdict(list)  # bucket → vote indices
    for keys in (key0, key1):
        for i, key in enumerate(keys):
            members[key].append(i)
    hot = _hot_buckets(c, cfg, members, width, n_nom)

    voter = c.voter
    buckets = {}
    for key in hot:
        kept = {voter[i] for i in members[key] if voter[i] in eligible}
        if len(kept) >= 2:
            buckets[key] = kept
    for _ in range(2):  # a voter needs min_shared buckets with another candidate in them
        together = Counter(chain.from_iterable(buckets.values()))
        keep = {v for v, k in together.items() if k >= min_shared}
        buckets = {key: kept for key, group in buckets.items() if len(kept := group & keep) >= 2}
    # Work is Σ k(k−1)/2 over the buckets counted: buckets above bucket_cap are crowds, and if the
    # rest would still exceed max_pairs the largest go first (the budget keeps a scan bounded)
    sizes = sorted(
        (len(group), key) for key, group in buckets.items() if len(group) <= cfg["bucket_cap"]
    )
    budget = cfg["max_pairs"]
    counted = []
    for size, key in sizes:
        budget -= size * (size - 1) / 2
        if budget < 0:
            break
        counted.append(key)
    pairs: Counter[tuple[int, int]] = Counter()
    for key in counted:
        pairs.update(combinations(sorted(buckets[key]), 2))

    chance = _chance_model(c, votes_of, width)
    edges: list[tuple[int, int, int]] = []
    for (u, v), shared in pairs.items():
        if shared < min_shared:
            continue
        if shared >= cfg["pair_lift"] * max(chance(u, v), 0.05):
            edges.append((u, v, shared))
    del pairs

    ctx = _Context(c, cfg, votes_of, key0, key1, members)
    out: list[Finding] = []
    for group in _groups(ctx, edges, min_shared):
        found = _finding(c, cfg, group)
        if found is not None:
            out.append(found)
    return out


@dataclass(frozen=True, slots=True)
class _Context:
    c: Campaign
    cfg: Mapping[str, float]
    votes_of: Mapping[int, list[int]]
    key0: list[int]
    key1: list[int]
    members: Mapping[int, list[int]]  # bucket → vote indices


def _hot_buckets(
    c: Campaign,
    cfg: Mapping[str, float],
    members: Mapping[int, list[int]],
    width: float,
    n_nom: int,
) -> list[int]:
    """Buckets holding more votes than the nominee usually gets in such a slot at that hour:
    more than hot_factor × expected + hot_margin (expected = its votes per day × the hour's share
    of a day × the slot's length)."""
    profile = c.hour_profile
    days = max(c.span / DAY, 1.0)
    per_day = [len(idxs) / days for idxs in c.by_nominee]
    factor, margin = cfg["hot_factor"], cfg["hot_margin"]
    hot = []
    for key, who in members.items():
        if len(who) < margin + 2:
            continue
        slot_grid, m = divmod(key, n_nom)
        slot, grid = divmod(slot_grid, 2)
        start = slot * width - grid * width / 2
        hour = c.local_hour(start + width / 2)
        expected = per_day[m] * profile[hour] * width / 3600
        if len(who) > factor * expected + margin:
            hot.append(key)
    return hot


def _chance_model(
    c: Campaign, votes_of: Mapping[int, list[int]], width: float
) -> Callable[[int, int], float]:
    """Expected shared buckets of two voters if each voted when the campaign at large does."""
    profile = c.hour_profile
    day_totals = Counter(c.day)
    n = c.n
    cache: dict[int, tuple[dict[int, int], dict[int, float]]] = {}

    def profile_of(u: int) -> tuple[dict[int, int], dict[int, float]]:
        got = cache.get(u)
        if got is None:
            counts: dict[int, int] = {}
            weight: dict[int, float] = {}
            for i in votes_of[u]:
                m = c.nom[i]
                share = day_totals[c.day[i]] * profile[c.hour[i]] * width / 3600 / n
                counts[m] = counts.get(m, 0) + 1
                weight[m] = weight.get(m, 0.0) + share
            got = cache[u] = (counts, weight)
        return got

    def expected(u: int, v: int) -> float:
        cu, wu = profile_of(u)
        cv, wv = profile_of(v)
        one = sum(w * cv.get(m, 0) for m, w in wu.items())
        two = sum(w * cu.get(m, 0) for m, w in wv.items())
        return one + two  # two grids, averaged over both directions

    return expected


def _groups(
    ctx: _Context, edges: list[tuple[int, int, int]], min_shared: float, depth: int = 0
) -> Iterator[tuple[set[int], list[int]]]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for u, v, _ in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
    components: dict[int, set[int]] = {}
    for u, v, _ in edges:
        components.setdefault(find(u), set()).update((u, v))
    min_group = ctx.cfg["min_group"]
    for members in components.values():
        if len(members) < min_group:
            continue
        group = _events(ctx, members)
        if group is not None:
            yield group
        elif depth < 3 and len(members) >= 2 * min_group:
            stricter = min_shared * 1.5
            inner = [e for e in edges if e[2] >= stricter and e[0] in members]
            yield from _groups(ctx, inner, stricter, depth + 1)


def _events(ctx: _Context, members: set[int]) -> tuple[set[int], list[int]] | None:
    """The group's events (buckets where enough of it voted), then everyone who voted in enough
    of those events (the core found from pairs, widened to the whole group), pruned again."""
    c, cfg, key0, key1 = ctx.c, ctx.cfg, ctx.key0, ctx.key1
    for _ in range(4):
        need = max(4, cfg["event_share"] * len(members))
        present: defaultdict[int, set[int]] = defaultdict(set)
        for v in members:
            for i in ctx.votes_of[v]:
                present[key0[i]].add(v)
                present[key1[i]].add(v)
        events = [key for key, who in present.items() if len(who) >= need]
        if not events:
            return None
        in_events = set(chain.from_iterable(ctx.members[key] for key in events))
        attendance = Counter(c.voter[i] for i in in_events)
        core = sorted(attendance[v] for v in members)
        floor = max(cfg["min_member_events"], cfg["member_share"] * core[len(core) // 2])
        kept = {v for v, k in attendance.items() if k >= floor}
        if len(kept) < cfg["min_group"]:
            return None
        if kept == members:
            return kept, sorted(i for i in in_events if c.voter[i] in kept)
        members = kept
    return None


def _finding(
    c: Campaign, cfg: Mapping[str, float], group: tuple[set[int], list[int]]
) -> Finding | None:
    members, covered = group
    window = cfg["window_seconds"]
    # events: the covered votes by nominee, split where a nominee's votes pause > 2 windows
    by_nominee: dict[int, list[int]] = {}
    for i in covered:
        by_nominee.setdefault(c.nom[i], []).append(i)
    events: list[tuple[int, list[int]]] = []
    for m, idxs in by_nominee.items():
        current = [idxs[0]]
        for prev, i in pairwise(idxs):
            if c.at[i] - c.at[prev] > 2 * window:
                events.append((m, current))
                current = [i]
            else:
                current.append(i)
        events.append((m, current))
    events.sort(key=lambda e: c.at[e[1][0]])
    n_events = len(events)
    nominees = sorted(by_nominee, key=lambda m: -len(by_nominee[m]))
    size = len(members)
    sessions = 1
    starts = sorted(c.at[e[1][0]] for e in events)
    for a, b in pairwise(starts):
        if b - a > 7200:
            sessions += 1
    strength = 1 - 0.25 ** min(
        size / cfg["min_group"], n_events / cfg["min_events"], sessions / cfg["min_sessions"]
    )
    spreads = [c.at[e[1][-1]] - c.at[e[1][0]] for e in events]
    spread = median(spreads)
    tight = clamp(1 - spread / (4 * window))
    several = clamp((len(nominees) - 1) / 2)
    explained_votes = 0.0
    view_votes = 0
    for m, idxs in events:
        explained, _ = view_explained(
            c,
            m,
            c.at[idxs[0]],
            c.at[idxs[-1]],
            len(idxs),
            cfg["view_leniency"],
            cfg["view_lead_seconds"],
        )
        if explained is not None:
            explained_votes += explained * len(idxs)
            view_votes += len(idxs)
    explained_share = explained_votes / view_votes if view_votes else None
    suspicion = noisy_or(
        [
            (0.5, several),
            (0.4, tight),
            (0.8, None if explained_share is None else 1 - explained_share),
        ]
    )
    score = strength * (0.6 + 0.4 * suspicion)
    if explained_share is not None:
        score *= 1 - 0.4 * explained_share
    prefixes = len({c.pfx[i] for i in covered})
    colocated = clamp(1 - (prefixes - 1) / max(size - 1, 1))
    score *= 1 - 0.4 * colocated  # colleagues on one network; a farm there is an address burst

    days = len({c.local_day(c.at[e[1][0]]) for e in events})
    devices = len({c.dev[i] for i in covered if c.dev[i] != c.no_device})
    names = "、".join(c.nominees[m] for m in nominees[:5]) + (" 等" if len(nominees) > 5 else "")
    per_event = median(len({c.voter[i] for i in e[1]}) for e in events)
    text = (
        f"{size} 个投票身份在 {days} 天里 {n_events} 次在同一时间窗内集体投票给候选人 {names}"
        f"（每次约 {per_event:.0f} 人、前后相差中位 {spread / 60:.1f} 分钟，"
        f"{fmt_span(c, c.at[covered[0]], c.at[covered[-1]])}），共 {len(covered)} 票。"
    )
    if colocated < 0.5:
        text += (
            f"他们使用 {prefixes} 个网段、{devices} 台设备，地址和设备各不相同，"
            f"但投票对象和时间高度同步，随机巧合的可能极低，符合组织化刷票（刷票群、人工众包）的特征。"
        )
    else:
        text += (
            f"他们大多来自同一网络（{prefixes} 个网段），可能是同一单位的同事相约投票，"
            f"也可能是集中在一处的刷票团伙，请结合其他线索判断。"
        )
    if explained_share is not None and explained_share < 0.5:
        text += "这些时段候选人页面浏览没有相应增加。"
    ev = evidence(
        c,
        covered,
        members=size,
        events=[
            {
                "nominee": c.nominees[m],
                "start": c.at[idxs[0]],
                "end": c.at[idxs[-1]],
                "voters": len({c.voter[i] for i in idxs}),
            }
            for m, idxs in events[:200]
        ],
        nominees=[c.nominees[m] for m in nominees],
        median_event_spread_seconds=spread,
        distinct_prefixes=prefixes,
        distinct_devices=devices,
        views_explain_share=explained_share,
        sessions=sessions,
        signals={
            "strength": strength,
            "several_nominees": several,
            "tight": tight,
            "one_network": colocated,
        },
    )
    nominee = nominees[0] if len(nominees) == 1 else None
    _ = DAY
    return finding(c, RULE, nominee, score, cfg, covered, ev, text)
