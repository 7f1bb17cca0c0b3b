"""Cohorts the server can see without trusting a device id: phone farms (群控) and proxy pools.

install_reuse — WeChat's in-app browser puts the install's id in its agent (``MMWEBID/<id>``,
beside the phone model and the WeChat build): one install is one phone. Many identities behind
one agent carrying one install id are many accounts logged in turn on one phone, or a rack of
phones cloned from one system image — a phone farm. Honest households share a phone now and
then, so ``min_voters`` identities is where a flag starts and ``full_voters`` scores 1; votes
cast all at once by the cohort (machine taps within ``burst_seconds``) raise the score. The
flag names the votes cast with that agent by those identities, nothing else.

address_hopping — a phone keeps its address from one vote to the next a few seconds later
(Wi-Fi or 4G, the carrier's NAT keeps a session's address); a proxy pool sends every request
from another exit. An identity *hops* when two of its votes ``hop_seconds`` or less apart come
from different networks (/24 or /64). Hoppers sharing one agent string, ≥ ``min_voters`` of
them, are a pool driven by one script; the flag names the hoppers' votes with that agent. A few
honest hoppers (a phone leaving the Wi-Fi) spread over many agents and never reach the count."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from itertools import pairwise

from .model import Finding
from .prep import Campaign, clamp
from .signals import evidence, finding, fmt_span

INSTALL_RULE = "install_reuse"
HOP_RULE = "address_hopping"
_INSTALL = re.compile(r"MMWEBID/(\w+)")


def detect_installs(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    min_voters = int(cfg["min_voters"])
    full = max(cfg["full_voters"], min_voters + 1)
    voters: dict[int, set[int]] = {}
    for ua, v in zip(c.ua, c.voter, strict=True):
        voters.setdefault(ua, set()).add(v)
    shared = {
        ua: _INSTALL.search(c.uas[ua])
        for ua, who in voters.items()
        if len(who) >= min_voters and ua != c.no_ua
    }
    shared = {ua: match for ua, match in shared.items() if match is not None}
    if not shared:
        return []
    votes: dict[int, list[int]] = {ua: [] for ua in shared}
    for i, ua in enumerate(c.ua):
        if ua in shared:
            votes[ua].append(i)
    out = []
    for ua, idxs in votes.items():
        k = len(voters[ua])
        install = shared[ua].group(1)
        together = _together(c, idxs, cfg["burst_seconds"])
        score = 0.5 + 0.4 * clamp((k - min_voters) / (full - min_voters)) + 0.1 * together
        start, end = c.at[idxs[0]], c.at[idxs[-1]]
        nominees = Counter(c.nom[i] for i in idxs)
        names = "、".join(c.nominees[m] for m, _ in nominees.most_common(5))
        prefixes = len({c.pfx[i] for i in idxs})
        text = (
            f"{k} 个不同的投票身份使用同一个微信安装标识（MMWEBID/{install}，同一机型、同一微信"
            f"版本）在 {fmt_span(c, start, end)} 投出 {len(idxs)} 票，投给 {names}；"
            f"来自 {prefixes} 个网段。一个安装标识对应一部手机上的一个微信，"
            f"这么多账号轮流在同一部手机（或同一系统镜像克隆的一批手机）上投票是群控刷票的典型特征。"
        )
        if together >= 0.5:
            text += f"其中 {together:.0%} 的票与同伙在同一秒内投出，像是控制台同时点击。"
        ev = evidence(
            c,
            idxs,
            user_agent=c.uas[ua],
            install_id=install,
            identities=k,
            distinct_prefixes=prefixes,
            together_share=together,
            kind="install",
        )
        nominee = nominees.most_common(1)[0][0] if len(nominees) == 1 else None
        found = finding(c, INSTALL_RULE, nominee, score, cfg, idxs, ev, text)
        if found is not None:
            out.append(found)
    return out


def _together(c: Campaign, idxs: list[int], window: float) -> float:
    """Share of the votes cast within ``window`` seconds of another identity's vote here."""
    at, voter = c.at, c.voter
    hit = 0
    for n, i in enumerate(idxs):
        near = False
        for j in (idxs[n - 1] if n else None, idxs[n + 1] if n + 1 < len(idxs) else None):
            if j is not None and voter[j] != voter[i] and abs(at[j] - at[i]) <= window:
                near = True
        hit += near
    return hit / len(idxs) if idxs else 0.0


def detect_hops(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    hop = cfg["hop_seconds"]
    hoppers: dict[int, dict[int, list[int]]] = {}  # agent → hopping voter → vote indices
    for v, idxs in c.by_voter.items():
        if len(idxs) < 2:
            continue
        for a, b in pairwise(idxs):
            if c.at[b] - c.at[a] <= hop and c.pfx[a] != c.pfx[b] and c.ua[a] == c.ua[b]:
                hoppers.setdefault(c.ua[a], {}).setdefault(v, []).extend((a, b))
    out = []
    for ua, who in hoppers.items():
        k = len(who)
        if k < cfg["min_voters"] or ua == c.no_ua:
            continue
        idxs = sorted({i for got in who.values() for i in got})
        full = max(cfg["full_voters"], cfg["min_voters"] + 1)
        score = 0.6 + 0.4 * clamp((k - cfg["min_voters"]) / (full - cfg["min_voters"]))
        start, end = c.at[idxs[0]], c.at[idxs[-1]]
        prefixes = len({c.pfx[i] for i in idxs})
        nominees = Counter(c.nom[i] for i in idxs)
        names = "、".join(c.nominees[m] for m, _ in nominees.most_common(5))
        text = (
            f"{k} 个投票身份在 {fmt_span(c, start, end)} 投票时，同一身份相隔不到 {hop:.0f} 秒的"
            f"两票来自不同网段（共 {prefixes} 个网段），且都用同一个浏览器标识；投给 {names}，"
            f"共 {len(idxs)} 票。手机几秒内不会换网，每次请求换一个出口地址是代理池刷票的特征。"
        )
        ev = evidence(
            c,
            idxs,
            user_agent=c.uas[ua],
            hopping_identities=k,
            distinct_prefixes=prefixes,
            hop_seconds=hop,
            kind="hopping",
        )
        nominee = nominees.most_common(1)[0][0] if len(nominees) == 1 else None
        found = finding(c, HOP_RULE, nominee, score, cfg, idxs, ev, text)
        if found is not None:
            out.append(found)
    return out
