"""device_reuse: one device id behind many voter identities; one rare user agent string behind
many identities from one network.

A phone is one person's; a household may share a tablet, so a few identities per device pass
(``min_voters`` is where a flag starts, scoring ``report_score``; ``full_voters`` scores 1). The
flag covers the votes cast from that device by the identities sharing it.

User agents repeat across honest voters (the same phone and WeChat build), so an agent counts
only when at least ``ua_min_voters`` identities use it, ``ua_prefix_share`` of them from a single
/24 or /64, while outside that network the agent is rare in the campaign (``ua_campaign_share``
of all voters). The flag covers those identities' votes with that agent from that network."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from .model import Finding
from .prep import Campaign, clamp
from .signals import evidence, finding, fmt_span

RULE = "device_reuse"
AUTOMATION = ("python", "curl", "wget", "headless", "okhttp", "go-http", "java/", "scrapy", "bot")


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    findings = _devices(c, cfg)
    findings.extend(_user_agents(c, cfg))
    return findings


def _devices(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    min_voters = int(cfg["min_voters"])
    full = max(cfg["full_voters"], min_voters + 1)
    voters: dict[int, set[int]] = {}
    none = c.no_device
    for d, v in zip(c.dev, c.voter, strict=True):
        if d != none:
            s = voters.get(d)
            if s is None:
                voters[d] = {v}
            else:
                s.add(v)
    shared = {d for d, s in voters.items() if len(s) >= min_voters}
    if not shared:
        return []
    votes: dict[int, list[int]] = {d: [] for d in shared}
    for i, d in enumerate(c.dev):
        if d in shared:
            votes[d].append(i)
    out = []
    for d, idxs in votes.items():
        k = len(voters[d])
        score = 0.5 + 0.5 * clamp((k - min_voters) / (full - min_voters))
        score = max(score, cfg["report_score"])
        nominee, top = _top_nominee(c, idxs)
        device = c.devices[d]
        start, end = c.at[idxs[0]], c.at[idxs[-1]]
        uas = len({c.ua[i] for i in idxs})
        prefixes = len({c.pfx[i] for i in idxs})
        target = (
            f"，其中 {top} 票投给候选人 {c.nominees[nominee]}"
            if nominee is not None
            else f"，分投给 {len({c.nom[i] for i in idxs})} 位候选人"
        )
        text = (
            f"同一台设备（设备号 {device[:16]}）在 {fmt_span(c, start, end)} 期间被 {k} 个不同的"
            f"投票身份使用，共投出 {len(idxs)} 票{target}；这些票来自 {prefixes} 个网段、"
            f"{uas} 种浏览器标识。正常情况下一台手机只对应一个微信身份，"
            f"多个身份轮流在同一设备上投票是买号或养号刷票的典型特征。"
        )
        ev = evidence(
            c,
            idxs,
            device=device,
            identities=k,
            distinct_user_agents=uas,
            distinct_prefixes=prefixes,
            kind="device",
        )
        found = finding(c, RULE, nominee, score, cfg, idxs, ev, text)
        if found is not None:
            out.append(found)
    return out


def _user_agents(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    min_voters = int(cfg["ua_min_voters"])
    shares, total_voters, _ = c.ua_voter_shares
    candidates = {
        ua for ua, s in shares.items() if s * total_voters >= min_voters and ua != c.no_ua
    }
    if not candidates:
        return []
    by_ua: dict[int, dict[int, int]] = {}  # ua -> voter -> prefix of first vote
    for v, ua, p in zip(c.voter, c.ua, c.pfx, strict=True):
        if ua in candidates:
            seen = by_ua.setdefault(ua, {})
            if v not in seen:
                seen[v] = p
    out = []
    for ua, seen in by_ua.items():
        counts = Counter(seen.values())
        prefix, inside = counts.most_common(1)[0]
        outside = len(seen) - inside
        if inside < min_voters or inside / len(seen) < cfg["ua_prefix_share"]:
            continue
        if outside / total_voters > cfg["ua_campaign_share"]:
            continue
        members = {v for v, p in seen.items() if p == prefix}
        idxs = [
            i
            for i, (v, u, p) in enumerate(zip(c.voter, c.ua, c.pfx, strict=True))
            if u == ua and p == prefix and v in members
        ]
        agent = c.uas[ua]
        automated = any(word in agent.lower() for word in AUTOMATION)
        score = 0.55 + 0.25 * clamp((inside - min_voters) / (3 * min_voters))
        if automated:
            score += 0.2
        nominee, top = _top_nominee(c, idxs)
        start, end = c.at[idxs[0]], c.at[idxs[-1]]
        target = f"，其中 {top} 票投给候选人 {c.nominees[nominee]}" if nominee is not None else ""
        text = (
            f"{inside} 个投票身份使用同一个浏览器标识“{agent[:60]}”，且都来自网段 "
            f"{c.prefixes[prefix]}，在 {fmt_span(c, start, end)} 期间共投出 {len(idxs)} 票"
            f"{target}；该标识在活动其余投票者中几乎没有出现（{outside} 个）。"
        )
        if automated:
            text += "该标识属于自动化程序（脚本）而非手机浏览器。"
        ev = evidence(
            c,
            idxs,
            user_agent=agent,
            identities=inside,
            identities_elsewhere=outside,
            automation_agent=automated,
            kind="user_agent",
        )
        found = finding(c, RULE, nominee, score, cfg, idxs, ev, text)
        if found is not None:
            out.append(found)
    return out


def _top_nominee(c: Campaign, idxs: list[int]) -> tuple[int | None, int]:
    nominee, top = Counter(c.nom[i] for i in idxs).most_common(1)[0]
    if top * 2 >= len(idxs):
        return nominee, top
    return None, top
