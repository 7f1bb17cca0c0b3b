"""machine_rhythm: a voter, or a group, voting at intervals too regular for people.

Streams (each in time order): every voter's votes; every nominee's votes from one prefix; from
one device id; and every nominee's votes as a whole (a script rotating addresses and identities
still keeps its clock). A stream is cut where it pauses longer than ``max_gap_seconds``.

Two tests per stream piece:

- **Chains.** Candidate periods are the modes of the gaps (log-spaced bins 5% wide) in chunks of
  up to 400 votes. For a period P, every vote is linked to the first vote of the stream
  P ± tolerance later (two pointers, O(n)); links form chains. Other votes interleaved between
  a script's beats do not break its chain. A chain of ≥ ``min_votes`` votes is kept when the
  share of the chain's votes among all the stream's votes over its span beats what chance gives
  at that rate (1 − e^(−4·tol·rate)) by ``min_excess`` of the remaining room.
- **Even gaps.** A piece whose gaps have a robust coefficient of variation (1.4826·MAD/median)
  of at most ``max_robust_cv`` — a script with jitter — over ≥ ``min_votes`` votes. Human
  clicking varies by 30% and more; Poisson arrivals by about 100%.

Overlapping candidates are resolved greedily (best first; a candidate is kept if at least half
of its votes are not already in a kept one). The flag covers the chain's (or piece's) votes."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import median

from .model import Finding
from .prep import DAY, Campaign, clamp, robust_cv
from .signals import evidence, finding, fmt_span, gap_entropy

RULE = "machine_rhythm"
CHUNK = 400
BIN = math.log(1.05)


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    min_votes = int(cfg["min_votes"])
    min_voter_votes = int(cfg["min_voter_votes"])
    streams: list[tuple[str, int | None, str, list[int]]] = []

    # A piece of ≥ n votes (gaps ≤ max_gap) lasts ≤ n × max_gap, so it has ≥ n × day ÷ (day +
    # n × max_gap) of its votes on one local day: streams without such a day are skipped.
    first_day = c.day[0]
    days = [d - first_day for d in c.day]
    n_days = days[-1] + 1

    def dense(keys: list[int], need: int) -> set[int]:
        floor = need * DAY / (DAY + need * cfg["max_gap_seconds"])
        per_day = Counter([k * n_days + d for k, d in zip(keys, days, strict=True)])
        return {kd // n_days for kd, n in per_day.items() if n >= floor}

    by_voter = c.by_voter
    for v in sorted(dense(c.voter, min_voter_votes)):
        streams.append(("voter", None, str(v), by_voter[v]))

    n_nom = len(c.nominees)
    for kind, column, none, names in (
        ("prefix", c.pfx, -1, c.prefixes),
        ("device", c.dev, c.no_device, c.devices),
    ):
        keys = [g * n_nom + m for g, m in zip(column, c.nom, strict=True)]
        wanted = {k for k in dense(keys, min_votes) if k // n_nom != none}
        groups: dict[int, list[int]] = {k: [] for k in wanted}
        for i, k in enumerate(keys):
            if k in wanted:
                groups[k].append(i)
        for key, idxs in groups.items():
            g, m = divmod(key, n_nom)
            streams.append((kind, m, names[g], idxs))
    for m, idxs in enumerate(c.by_nominee):
        if len(idxs) >= min_votes:
            streams.append(("nominee", m, c.nominees[m], idxs))

    candidates: list[tuple[float, list[int], dict]] = []
    for kind, m, name, idxs in streams:
        need = min_voter_votes if kind == "voter" else min_votes
        for piece in _pieces(c.at, idxs, cfg["max_gap_seconds"], need):
            candidates.extend(_test(c, cfg, kind, m, name, piece, need))

    candidates.sort(key=lambda cand: (-cand[0], -len(cand[1])))
    covered: set[int] = set()
    out = []
    for score, idxs, info in candidates:
        new = sum(1 for i in idxs if i not in covered)
        if new * 2 < len(idxs):
            continue
        covered.update(idxs)
        found = _finding(c, cfg, score, idxs, info)
        if found is not None:
            out.append(found)
    return out


def _pieces(at: list[float], idxs: list[int], max_gap: float, need: int) -> list[list[int]]:
    pieces: list[list[int]] = []
    current = [idxs[0]]
    for prev, i in itertools.pairwise(idxs):
        if at[i] - at[prev] > max_gap:
            if len(current) >= need:
                pieces.append(current)
            current = [i]
        else:
            current.append(i)
    if len(current) >= need:
        pieces.append(current)
    return pieces


def _periods(times: Sequence[float], cfg: Mapping[str, float], need: int) -> list[float]:
    floor = cfg["min_period_seconds"]
    found: list[float] = []
    for lo in range(0, len(times) - 1, CHUNK):
        chunk = times[lo : lo + CHUNK + 1]
        gaps = [b - a for a, b in itertools.pairwise(chunk) if b - a >= floor]
        if len(gaps) < need - 1:
            continue
        bins: dict[int, list[float]] = {}
        for g in gaps:
            bins.setdefault(int(math.log(g) / BIN), []).append(g)
        best = max(
            bins, key=lambda b: len(bins[b]) + len(bins.get(b - 1, ())) + len(bins.get(b + 1, ()))
        )
        near = bins[best] + bins.get(best - 1, []) + bins.get(best + 1, [])
        if len(near) < max(8, need // 2) or len(near) < 0.25 * len(gaps):
            continue
        period = median(near)
        if all(abs(period - p) > 0.05 * p for p in found):
            found.append(period)
    return found


def _chains(times: Sequence[float], period: float, tol: float) -> list[list[int]]:
    n = len(times)
    nxt = [-1] * n
    j = 0
    for i in range(n):
        lo = times[i] + period - tol
        if j <= i:
            j = i + 1
        while j < n and times[j] < lo:
            j += 1
        if j < n and times[j] <= lo + 2 * tol:
            nxt[i] = j
    chain = [-1] * n
    chains: list[list[int]] = []
    for i in range(n):
        if chain[i] < 0:
            chain[i] = len(chains)
            chains.append([i])
        k = nxt[i]
        if k >= 0 and chain[k] < 0:
            chain[k] = chain[i]
            chains[chain[i]].append(k)
    return chains


def _test(
    c: Campaign,
    cfg: Mapping[str, float],
    kind: str,
    m: int | None,
    name: str,
    piece: list[int],
    need: int,
) -> list[tuple[float, list[int], dict]]:
    at = c.at
    times = [at[i] for i in piece]
    out: list[tuple[float, list[int], dict]] = []
    for period in _periods(times, cfg, need):
        tol = clamp(cfg["rel_tolerance"] * period, cfg["min_tolerance"], cfg["max_tolerance"])
        tol = min(tol, period / 3)
        for chain in _chains(times, period, tol):
            if len(chain) < need:
                continue
            first, last = chain[0], chain[-1]
            span = times[last] - times[first]
            if span <= 0:
                continue
            total = last - first + 1
            rate = (total - 1) / span
            chance = 1 - math.exp(-4 * tol * rate)
            share = len(chain) / total
            excess = (share - chance) / (1 - chance) if chance < 1 else 0.0
            if excess < cfg["min_excess"]:
                continue
            strength = 1 - 0.25 ** (len(chain) / need)
            score = strength * (0.55 + 0.45 * excess)
            idxs = [piece[k] for k in chain]
            info = {
                "test": "period",
                "stream": kind,
                "nominee": m,
                "name": name,
                "period": period,
                "tolerance": tol,
                "chance": chance,
                "excess": excess,
            }
            out.append((score, idxs, info))
    if not out and len(times) >= need:
        gaps = [b - a for a, b in itertools.pairwise(times)]
        cv = robust_cv(gaps)
        mid = median(gaps)
        if cv <= cfg["max_robust_cv"] and mid >= cfg["min_period_seconds"]:
            strength = 1 - 0.25 ** (len(times) / need)
            evenness = clamp(1 - cv / (2 * cfg["max_robust_cv"]))
            score = strength * (0.5 + 0.5 * evenness)
            info = {"test": "even", "stream": kind, "nominee": m, "name": name, "period": mid}
            info["robust_cv"] = cv
            out.append((score, list(piece), info))
    return out


STREAM_TEXT = {
    "voter": "投票身份 {name}",
    "prefix": "网段 {name} 投给候选人 {nominee} 的票",
    "device": "设备 {name} 投给候选人 {nominee} 的票",
    "nominee": "候选人 {nominee} 收到的票",
}


def _finding(
    c: Campaign, cfg: Mapping[str, float], score: float, idxs: list[int], info: dict
) -> Finding | None:
    idxs = sorted(idxs)
    times = [c.at[i] for i in idxs]
    m = info["nominee"]
    if m is None:
        noms = {c.nom[i] for i in idxs}
        m = next(iter(noms)) if len(noms) == 1 else None
    nominee = c.nominees[m] if m is not None else "（多位）"
    who = STREAM_TEXT[info["stream"]].format(name=info["name"][:24], nominee=nominee)
    voters = len({c.voter[i] for i in idxs})
    entropy = gap_entropy(times)
    span = fmt_span(c, times[0], times[-1])
    if info["test"] == "period":
        text = (
            f"{who}在 {span} 期间有 {len(idxs)} 票（{voters} 个投票身份）一票接一票地"
            f"按约 {info['period']:.1f} 秒的固定节拍出现（误差 ±{info['tolerance']:.2f} 秒，"
            f"间隔熵 {entropy:.1f} 比特）；按该时段的票速，偶然踩中节拍的票约占 "
            f"{info['chance']:.0%}，而这里远高于此。人手投票的间隔不会如此整齐，应为程序定时投票。"
        )
    else:
        text = (
            f"{who}在 {span} 期间共 {len(idxs)} 票（{voters} 个投票身份），相邻两票的间隔"
            f"中位数 {info['period']:.1f} 秒、相对离散度仅 {info['robust_cv']:.2f}"
            f"（间隔熵 {entropy:.1f} 比特）；人手投票的离散度通常在 0.3 以上，"
            f"如此均匀的节奏应为程序带随机抖动的定时投票。"
        )
    extra = {k: v for k, v in info.items() if k not in ("nominee", "name")}
    ev = evidence(c, idxs, stream_key=info["name"], gap_entropy_bits=entropy, **extra)
    return finding(c, RULE, m, score, cfg, idxs, ev, text)
