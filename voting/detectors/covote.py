"""covote_group: paid humans (刷票群) who each spend a small quota on the same few nominees within
the same short window, round after round (after CopyCatch, on the nominee *set* rather than on
single votes, so two or three votes per identity are enough).

1. Sessions. Each identity's votes are cut into sessions where it pauses longer than
   ``session_gap_seconds``; a session's *set* is the nominees it voted for. Only sets of
   ``min_set`` to ``max_set`` nominees count: one nominee is what fans, a village or a ward's
   colleagues do, and is no farm signal.
2. Clusters. Sessions with the same set, ordered by start, are chained while they start at most
   ``chain_gap_seconds`` apart; a chain of ≥ ``min_voters`` identities is a candidate.
3. Lift. What the campaign predicts for the set in that window: every multi-nominee session
   starting in it (padded by ``pad_seconds`` each side) × the set's share of the campaign's
   multi-nominee sessions. A farm's set is rare outside its rounds and packed inside them; a
   popular pair or trio of favourites turns up all evening in proportion to the traffic
   (lift ≈ 1), including at a launch. A candidate needs ≥ ``min_lift`` × the prediction and a
   Poisson tail below ``max_p``.
4. Membership. The chain is the group's evidence; only the sessions tied to its rounds are named.
   The chain is cut again at pauses longer than the time in which chance would bring
   ``CORE_CHANCE`` of a session of the set (the prediction above, per second), or ``CORE_SPACING``
   × the chain's median pause if that is longer (capped at ``chain_gap_seconds``), and only
   pieces of ≥ ``CORE_MIN`` identities are kept. Where most of the group (``AGENT_SHARE``) shares
   one user agent, sessions on another are left out. In a campaign minutes old every session is
   in every window: an honest voter who picks exactly the farm's nominees between its rounds, or
   on their own phone in a scripted stream, is not named with it. In a quiet background (days,
   evenings) the cut stays at ``chain_gap_seconds``. What is kept must pass the test of 3 again.
5. Repetition. Identities that appear in another cluster of the same set (another round, another
   day) make the group stronger.

The flag names the cluster's sessions' votes for the set — nothing else. Score = 0.45 + size
(``min_voters`` → ``full_voters``) + lift (log scale, ``min_lift`` → ``full_lift``) + repetition,
less up to 0.4 × how much the cluster sits on one network (colleagues voting from their office are
an address matter, not a paid group on many networks)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from .model import Finding
from .prep import Campaign, clamp
from .signals import evidence, finding, fmt_span, poisson_tail

RULE = "covote_group"
# Membership (step 4); read from the rule's settings when they carry these keys.
CORE_CHANCE = 0.03
CORE_SPACING = 10.0
CORE_MIN = 3.0
AGENT_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class _Session:
    voter: int
    start: float
    votes: tuple[int, ...]


@dataclass
class _Cluster:
    nominees: tuple[int, ...]
    sessions: list[_Session]
    expected: float
    lift: float
    p_value: float


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    if not c.n:
        return []
    min_voters = int(cfg["min_voters"])
    by_set = _sessions_by_set(c, cfg)
    starts: dict[int, list[float]] = {}  # set size → session starts
    picked = [0.0] * len(c.nominees)  # multi-nominee sessions naming each nominee
    for nominees, group in by_set.items():
        starts.setdefault(len(nominees), []).extend(s.start for s in group)
        for m in nominees:
            picked[m] += len(group)
    for times in starts.values():
        times.sort()
    clusters: list[_Cluster] = []
    pad = cfg["pad_seconds"]
    for nominees, group in by_set.items():
        if len(group) < min_voters:
            continue
        chance = _set_chance(picked, nominees, len(group), cfg["smoothing"])
        times = starts[len(nominees)]
        for chain in _chains(group, cfg["chain_gap_seconds"]):
            if len({s.voter for s in chain}) < min_voters:
                continue
            lo, hi = chain[0].start - pad, chain[-1].start + pad
            window = bisect_right(times, hi) - bisect_left(times, lo)
            expected = window * chance
            k = len({s.voter for s in chain})
            lift = k / max(expected, 1e-9)
            p_value = poisson_tail(k, expected)
            if lift < cfg["min_lift"] or p_value > cfg["max_p"]:
                continue
            members = _members(c, cfg, chain, expected / (hi - lo))
            k = len({s.voter for s in members})
            lift = k / max(expected, 1e-9)
            p_value = poisson_tail(k, expected)
            if k >= min_voters and lift >= cfg["min_lift"] and p_value <= cfg["max_p"]:
                clusters.append(_Cluster(nominees, members, expected, lift, p_value))
    if not clusters:
        return []
    seen: dict[tuple[int, ...], Counter[int]] = {}
    for cl in clusters:
        seen.setdefault(cl.nominees, Counter()).update({s.voter for s in cl.sessions})
    return [f for cl in clusters if (f := _finding(c, cfg, cl, seen[cl.nominees])) is not None]


def _members(
    c: Campaign, cfg: Mapping[str, float], chain: list[_Session], rate: float
) -> list[_Session]:
    """The chain's sessions tied to its rounds (step 4); ``rate``: sessions of the set per second
    that chance predicts in the chain's window."""
    cap = cfg["chain_gap_seconds"]
    gap = min(cap, cfg.get("core_chance", CORE_CHANCE) / max(rate, 1e-12))
    if gap < cap and len(chain) > 2:
        pauses = sorted(b.start - a.start for a, b in pairwise(chain))
        gap = min(cap, max(gap, cfg.get("core_spacing", CORE_SPACING) * pauses[len(pauses) // 2]))
    least = cfg.get("core_min", CORE_MIN)
    members = [
        s for piece in _chains(chain, gap) if len({s.voter for s in piece}) >= least for s in piece
    ]
    if not members:
        return members
    agent, n = Counter(c.ua[s.votes[0]] for s in members).most_common(1)[0]
    if n / len(members) >= cfg.get("agent_share", AGENT_SHARE):
        members = [s for s in members if c.ua[s.votes[0]] == agent]
    return members


def _set_chance(
    picked: list[float], nominees: tuple[int, ...], own: int, smoothing: float
) -> float:
    """Chance that a session of ``len(nominees)`` nominees names exactly these, if voters chose
    by the nominees' popularity among multi-nominee sessions — leaving out the set's own
    sessions, so a farm does not make its own set look popular: ∏ w_j ÷ e_k(w), the k-th
    elementary symmetric polynomial of the weights (drawing k distinct nominees by weight)."""
    weights = [w + smoothing for w in picked]
    for m in nominees:
        weights[m] = max(weights[m] - own, 0.0) + smoothing
    size = len(nominees)
    elem = [1.0] + [0.0] * size
    for w in weights:
        for j in range(size, 0, -1):
            elem[j] += elem[j - 1] * w
    product = math.prod(weights[m] for m in nominees)
    return product / elem[size] if elem[size] > 0 else 1.0


def _sessions_by_set(
    c: Campaign, cfg: Mapping[str, float]
) -> dict[tuple[int, ...], list[_Session]]:
    gap = cfg["session_gap_seconds"]
    lo, hi = int(cfg["min_set"]), int(cfg["max_set"])
    at, nom = c.at, c.nom
    out: dict[tuple[int, ...], list[_Session]] = {}
    for voter, idxs in c.by_voter.items():
        if len(idxs) < lo:
            continue
        run = [idxs[0]]
        for i in idxs[1:]:
            if at[i] - at[run[-1]] > gap:
                _add(out, voter, run, at, nom, lo, hi)
                run = [i]
            else:
                run.append(i)
        _add(out, voter, run, at, nom, lo, hi)
    for group in out.values():
        group.sort(key=lambda s: s.start)
    return out


def _add(
    out: dict[tuple[int, ...], list[_Session]],
    voter: int,
    run: list[int],
    at: list[float],
    nom: list[int],
    lo: int,
    hi: int,
) -> None:
    if len(run) < lo:
        return
    nominees = tuple(sorted({nom[i] for i in run}))
    if lo <= len(nominees) <= hi:
        out.setdefault(nominees, []).append(_Session(voter, at[run[0]], tuple(run)))


def _chains(group: list[_Session], gap: float) -> list[list[_Session]]:
    chains = [[group[0]]]
    for s in group[1:]:
        if s.start - chains[-1][-1].start > gap:
            chains.append([s])
        else:
            chains[-1].append(s)
    return chains


def _finding(
    c: Campaign, cfg: Mapping[str, float], cl: _Cluster, seen: Counter[int]
) -> Finding | None:
    sessions = cl.sessions
    voters = {s.voter for s in sessions}
    k = len(voters)
    idxs = sorted(i for s in sessions for i in s.votes if c.nom[i] in cl.nominees)
    min_voters = cfg["min_voters"]
    size = clamp((k - min_voters) / max(cfg["full_voters"] - min_voters, 1.0))
    strong = clamp(
        math.log(cl.lift / cfg["min_lift"]) / math.log(cfg["full_lift"] / cfg["min_lift"])
    )
    repeat = sum(1 for v in voters if seen[v] > 1) / k
    prefixes = Counter(c.pfx[s.votes[0]] for s in sessions)
    one_net = prefixes.most_common(1)[0][1] / len(sessions)
    score = 0.45 + 0.15 * size + 0.25 * strong + 0.15 * repeat
    score *= 1 - 0.4 * clamp(2 * one_net - 1)
    start, end = sessions[0].start, c.at[idxs[-1]]
    names = "、".join(c.nominees[m] for m in cl.nominees)
    agents = len({c.ua[i] for i in idxs})
    text = (
        f"{k} 个投票身份在 {fmt_span(c, start, end)} 各自把票投给了完全相同的 "
        f"{len(cl.nominees)} 位候选人（{names}），共 {len(idxs)} 票；按全活动的投票规律，这段时间"
        f"同样组合的投票约 {cl.expected:.1f} 人次，实际是其 {cl.lift:.1f} 倍。"
        f"他们来自 {len(prefixes)} 个网段、使用 {agents} 种浏览器标识，"
        f"像是刷票群里接到任务后各自用自己的手机按同一份名单投票。"
    )
    if repeat >= 0.3:
        text += f"其中 {repeat:.0%} 的身份在其他轮次也以同样的组合一起投票。"
    ev = evidence(
        c,
        idxs,
        identities=k,
        nominee_set=[c.nominees[m] for m in cl.nominees],
        expected_sessions=round(cl.expected, 2),
        lift=round(cl.lift, 2),
        p_value=float(f"{cl.p_value:.3g}"),
        repeat_share=round(repeat, 3),
        distinct_prefixes=len(prefixes),
        top_prefix_share=round(one_net, 3),
        distinct_agents=agents,
        kind="covote",
    )
    return finding(c, RULE, None, score, cfg, idxs, ev, text)
