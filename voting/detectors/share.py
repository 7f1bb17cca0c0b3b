"""share_jump: a nominee's share of its category jumping with no matching rise in page views.

Each nominee's votes are counted per ``window_seconds`` and per ``long_window_seconds`` (a
slow, steady farm), each on two grids offset by half a window.
With page views, a window's organic expectation is the nominee's views (shifted back by half of
``view_lead_seconds``: people look before they vote) × its usual votes per view (pooled over
hours, leaving out hours far above its median conversion). Without page views it is the rest of
the category's votes in the window × the nominee's usual odds against them (pooled the same
way) — a plain share jump, capped at ``no_views_max_score`` because a real share of the page
would look the same. A window jumps when it has ≥ ``min_votes`` votes, ≥ ``min_excess`` above the
expectation, ≥ ``min_ratio`` × it and z = excess / √(expectation + 1) ≥ ``min_z``.

Votes other rules already flagged are set aside first: the jump is judged on the rest (a
lockstep group's burst is the lockstep flag's, not a share jump around it). Jumping windows are
merged and trimmed to the first and last 5-minute piece still above the
expectation. The flag covers the votes inside by voters who had not already voted for the
nominee before it (outside earlier jumps): supporters who come back every day are not the jump."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Set
from statistics import median

from .model import Finding
from .prep import HOUR, Campaign, clamp
from .signals import evidence, finding, fmt_rate, fmt_span

RULE = "share_jump"
PIECE = 300.0


def detect(c: Campaign, cfg: Mapping[str, float], claimed: Set[int] = frozenset()) -> list[Finding]:
    """``claimed``: indices of votes other rules flagged. They are set aside first, so a jump is
    judged (and flagged) on what those rules do not already explain."""
    if not c.n:
        return []
    width = cfg["window_seconds"]
    category_times: dict[int, list[float]] = {}
    for t, k in zip(c.at, c.cat, strict=True):
        category_times.setdefault(k, []).append(t)
    odds = _odds(c, category_times)
    out: list[Finding] = []
    for m, idxs in enumerate(c.by_nominee):
        if claimed:
            idxs = [i for i in idxs if i not in claimed]
        if len(idxs) < cfg["min_votes"]:
            continue
        times = [c.at[i] for i in idxs]
        model = _Model(c, cfg, m, idxs, times, category_times[c.nominee_category[m]], odds)
        if not model.usable:
            continue
        spans: list[list[float]] = []
        raised: list[list[float]] = []
        for size in (width, cfg["long_window_seconds"]):
            for offset in (0.0, size / 2):
                counts = Counter(int((t + offset) // size) for t in times)
                for slot, votes in counts.items():
                    if votes < 5:
                        continue
                    start = slot * size - offset
                    expected = model.expected(start, start + size)
                    if model.jumps(votes, expected):
                        spans.append([start, start + size])
                        raised.append([start, start + size])
                    elif model.raised(votes, expected):
                        raised.append([start, start + size])
        if spans:
            out.extend(_flag(c, cfg, m, model, _merge(spans), _merge(raised)))
    return out


def _merge(spans: list[list[float]]) -> list[list[float]]:
    spans.sort()
    merged = [spans[0]]
    for s, e in spans[1:]:
        if s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def _odds(c: Campaign, category_times: dict[int, list[float]]) -> list[float]:
    """Each nominee's usual votes per vote of the rest of its category, by hour, pooled over
    hours whose own ratio is not far above the median hour's."""
    cat_hours = {k: Counter(int(t // HOUR) for t in ts) for k, ts in category_times.items()}
    out = []
    for m, times in enumerate(c.nominee_times):
        own = Counter(int(t // HOUR) for t in times)
        cat = cat_hours[c.nominee_category[m]]
        ratios = [own.get(h, 0) / (n - own.get(h, 0)) for h, n in cat.items() if n > own.get(h, 0)]
        if not ratios:
            out.append(0.0)
            continue
        ceiling = 3 * max(median(ratios), 1e-9)
        mine = rest = 0
        for h, n in cat.items():
            o = own.get(h, 0)
            if n > o and o / (n - o) <= ceiling:
                mine += o
                rest += n - o
        out.append(mine / rest if rest else 0.0)
    return out


class _Model:
    def __init__(
        self,
        c: Campaign,
        cfg: Mapping[str, float],
        m: int,
        idxs: list[int],
        times: list[float],
        category: list[float],
        odds: list[float],
    ) -> None:
        self.c, self.cfg, self.m, self.category = c, cfg, m, category
        self.idxs, self.times = idxs, times
        self.per_vote = c.views_per_vote[m] if c.has_views else None
        self.odds = odds[m]
        self.usable = self.per_vote is not None or bool(self.odds)
        self.shift = cfg["view_lead_seconds"] / 2

    def with_views(self, start: float, end: float) -> bool:
        return self.per_vote is not None and self.c.views_cover(start - self.shift, end)

    def votes(self, start: float, end: float) -> int:
        """The nominee's (unclaimed) votes in [start, end)."""
        return bisect_left(self.times, end) - bisect_left(self.times, start)

    def expected(self, start: float, end: float) -> float:
        if self.with_views(start, end):
            views = self._views(start - self.shift, end - self.shift)
            return views / self.per_vote  # type: ignore[operator]
        rest = bisect_left(self.category, end) - bisect_left(self.category, start)
        rest -= self.c.nominee_votes_between(self.m, start, end - 1e-6)
        return max(rest, 0) * (self.odds or 0.0)

    def _views(self, start: float, end: float) -> float:
        """Views in [start, end), minutes at the edges counted pro rata."""
        c, m = self.c, self.m
        first, last = int(start // 60), int(end // 60)
        if first == last:
            return c.views_between(m, start, start) * (end - start) / 60
        whole = c.views_between(m, (first + 1) * 60, (last - 1) * 60) if last > first + 1 else 0
        head = c.views_between(m, start, start) * ((first + 1) * 60 - start) / 60
        tail = c.views_between(m, end, end) * (end - last * 60) / 60
        return whole + head + tail

    def raised(self, votes: int, expected: float) -> bool:
        expected = max(expected, 0.0)
        """Above the expectation, if not enough for a flag: voting here proves no loyalty."""
        excess = votes - expected
        return excess >= 5 and votes >= 1.5 * expected and excess / math.sqrt(expected + 1) >= 2

    def jumps(self, votes: int, expected: float) -> bool:
        cfg = self.cfg
        expected = max(expected, 0.0)
        excess = votes - expected
        return (
            votes >= cfg["min_votes"]
            and excess >= cfg["min_excess"]
            and votes >= cfg["min_ratio"] * expected
            and excess / math.sqrt(expected + 1) >= cfg["min_z"]
        )


def _trim(model: _Model, start: float, end: float) -> tuple[float, float]:
    pieces = math.ceil((end - start) / PIECE)
    hot = []
    for k in range(pieces):
        s = start + k * PIECE
        e = min(s + PIECE, end)
        votes = model.votes(s, e)
        if votes >= 2 and votes >= 2 * model.expected(s, e) + 1:
            hot.append(k)
    if not hot:
        return start, end
    return start + hot[0] * PIECE, min(start + (hot[-1] + 1) * PIECE, end)


def _flag(
    c: Campaign,
    cfg: Mapping[str, float],
    m: int,
    model: _Model,
    spans: list[list[float]],
    raised: list[list[float]],
) -> list[Finding]:
    idxs, times = model.idxs, model.times
    established: set[int] = set()
    pointer = 0
    out = []
    for span_start, span_end in spans:
        start, end = _trim(model, span_start, span_end)
        lo = bisect_left(times, start)
        hi = bisect_left(times, end)
        while pointer < lo:
            t = times[pointer]
            if not any(a <= t < b for a, b in raised):
                established.add(c.voter[idxs[pointer]])
            pointer += 1
        votes = hi - lo
        expected = model.expected(start, end)
        if not model.jumps(votes, expected):
            continue
        excess = votes - expected
        covered = [i for i in idxs[lo:hi] if c.voter[i] not in established]
        if len(covered) < 0.5 * excess:
            continue  # the jump is voters who came before: nothing here singles it out
        z = excess / math.sqrt(expected + 1)
        unexplained = clamp(excess / votes)
        strength = 1 - 0.25 ** min(excess / cfg["min_excess"], z / cfg["min_z"])
        score = strength * (0.4 + 0.6 * unexplained)
        with_views = model.with_views(start, end)
        if not with_views:
            score = min(score, cfg["no_views_max_score"])

        category = model.category
        cat_votes = bisect_left(category, end) - bisect_left(category, start)
        share = votes / cat_votes if cat_votes else 0.0
        cat_all = len(category)
        usual_share = (len(idxs) - votes) / max(cat_all - cat_votes, 1)
        minutes = (end - start) / 60
        returning = votes - len(covered)
        text = (
            f"候选人 {c.nominees[m]} 在 {fmt_span(c, start, end)} 收到 {votes} 票"
            f"（每分钟约 {fmt_rate(votes / minutes)} 票），占本组别同期投票的 {share:.0%}，"
            f"而平时约占 {usual_share:.0%}。"
        )
        if with_views:
            views = model._views(start - model.shift, end - model.shift)
            text += (
                f"同期该候选人页面浏览 {views:.0f} 次，按其平时每票约 "
                f"{model.per_vote:.1f} 次浏览，只能解释约 {expected:.0f} 票，"
                f"多出约 {excess:.0f} 票没有相应的浏览或转发传播。"
            )
            view_figures = {"page_views": round(views), "usual_views_per_vote": model.per_vote}
        else:
            text += f"按平时占比只应约 {expected:.0f} 票（未提供页面浏览数据，无法核对传播）。"
            view_figures = {}
        text += f"标记的 {len(covered)} 票来自此前未给该候选人投过票的身份"
        text += f"（另有 {returning} 票来自老支持者，未列入）。" if returning else "。"
        ev = evidence(
            c,
            covered,
            jump_window={"start": start, "end": end},
            window_votes=votes,
            expected_votes=expected,
            excess_votes=excess,
            z=z,
            category_share=share,
            usual_category_share=usual_share,
            returning_supporter_votes=returning,
            **view_figures,
        )
        found = finding(c, RULE, m, score, cfg, covered, ev, text)
        if found is not None:
            out.append(found)
    return out
