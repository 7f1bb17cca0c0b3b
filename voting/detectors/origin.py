"""proxy_origin: votes for one nominee from datacenter or foreign addresses (机房/境外地址).

A phone votes from its carrier's network or a home line. A cloud server (阿里云, 腾讯, 亚马逊 …)
is nobody's phone, and an address abroad is rare in a Chinese campaign: both are where proxies
and rented servers send votes from. A real person does it now and then — a company VPN, a
traveller abroad — so a vote or two from such an address proves nothing.

Each distinct address is placed once (``core.geo.lookup``, offline ip2region data: IPv4 only,
data of 2022) and judged by ``core.geo.is_proxy_like``: *datacenter* (a cloud, hosting or CDN
network, at home or abroad) or *foreign*. Unknown, private, reserved and IPv6 addresses count as
neither. Proxy-like votes are grouped by nominee and kind (datacenter, at home or abroad; or
foreign lines) and cut into clusters where they pause longer than ``gap_seconds``; those
votes outside every reported cluster are judged once more as one slow set.

A set is judged against the campaign: its kind's share of every other nominee's votes (at least
``min_base_share``) × the nominee's votes from ``pad_seconds`` before the set to as long after
it is what chance gives. The set's identities must reach ``min_lift`` × that and a Poisson tail
≤ ``max_p`` (identities, not votes, are counted: one VPN user voting every day is one person).
Then:

- ``watch_voters`` .. ``min_voters`` − 1 identities: a 观察 (watch) note, never a flag;
- ≥ ``min_voters`` identities: score = ½ + ½ × suspicion × (0.4 + 0.6 × strength), strength
  rising to 1 at ``full_voters`` identities; suspicion combines the share of datacenter votes
  (0.8), one network owner (≥ 90 % from one ISP or country-and-ISP, 0.5) and few /24s per
  identity (0.6). Datacenter votes flag at ``min_voters``; mostly foreign votes with suspicion
  < 0.5 (spread over countries, carriers and networks: a nominee's supporters abroad) stay a
  watch note however many.
- Page views the nominee's page counted at the time can account for the foreign votes (people
  abroad who opened the page): the score × (1 − ½ × explained × foreign share). A datacenter
  vote gets no such credit.

The flag names exactly the set's votes from those addresses, never the nominee's other votes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, pairwise

from core import geo

from .model import Finding
from .prep import Campaign, clamp
from .signals import evidence, finding, fmt_span, noisy_or, poisson_tail, view_explained

RULE = "proxy_origin"
DATACENTER = "datacenter"
FOREIGN = "foreign"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a proxy-like address is: its kind (the group it is judged in), its network owner."""

    kind: str  # datacenter | foreign
    country: str
    network: str  # 阿里云, 美国 亚马逊, 韩国 SK电讯, 日本


def origins(ips: Sequence[str]) -> list[Origin | None]:
    """The origin of each of ``ips`` — distinct addresses, as the campaign interns them — or
    None (a voter's own line, or unknown): one lookup each, and ``is_proxy_like`` asked once per
    distinct region of the data (a few thousand at most)."""
    # the data hands out one Region object per record, kept for the process: its id is its key
    by_region: dict[int, Origin | None] = {}
    out: list[Origin | None] = []
    append = out.append
    lookup = geo.lookup
    for ip in ips:
        region = lookup(ip)
        if region is None:
            append(None)
            continue
        key = id(region)
        if key not in by_region:
            by_region[key] = _origin(ip, region)
        append(by_region[key])
    return out


def _origin(ip: str, region: geo.Region) -> Origin | None:
    proxy, reason = geo.is_proxy_like(ip)
    if not proxy:
        return None
    abroad = region.country != geo.CHINA
    if reason == DATACENTER:
        name = region.isp or "未知机房"
        return Origin(DATACENTER, region.country, f"{region.country} {name}" if abroad else name)
    network = f"{region.country} {region.isp}" if region.isp else region.country
    return Origin(FOREIGN, region.country, network)


def detect(c: Campaign, cfg: Mapping[str, float]) -> list[Finding]:
    of_address = origins(c.ips)
    if not any(of_address):
        return []
    kind_of = [origin.kind if origin is not None else "" for origin in of_address]
    proxy = {code for code, kind in enumerate(kind_of) if kind}
    at, nom, ip = c.at, c.nom, c.ip
    groups: dict[tuple[int, str], list[int]] = {}  # (nominee, kind) → vote indices in time order
    for i in compress(range(c.n), map(proxy.__contains__, ip)):
        key = (nom[i], kind_of[ip[i]])
        group = groups.get(key)
        if group is None:
            groups[key] = [i]
        else:
            group.append(i)
    per_kind: Counter[str] = Counter()
    for (_, kind), idxs in groups.items():
        per_kind[kind] += len(idxs)
    gap = cfg["gap_seconds"]
    out: list[Finding] = []
    for (m, kind), idxs in groups.items():
        others = c.n - len(c.by_nominee[m])
        share = (per_kind[kind] - len(idxs)) / others if others else 0.0
        base = max(cfg["min_base_share"], share)
        cuts = [n for n in range(1, len(idxs)) if at[idxs[n]] - at[idxs[n - 1]] > gap]
        clusters = [idxs[x:y] for x, y in pairwise([0, *cuts, len(idxs)])]
        rest: list[int] = []
        for cluster in clusters:
            found = _judge(c, cfg, m, cluster, base, of_address, slow=False)
            if found is not None:
                out.append(found)
            else:
                rest.extend(cluster)
        if rest and len(clusters) > 1:  # the slow set, when it is not one cluster judged
            found = _judge(c, cfg, m, rest, base, of_address, slow=True)
            if found is not None:
                out.append(found)
    return out


def _judge(
    c: Campaign,
    cfg: Mapping[str, float],
    m: int,
    idxs: list[int],
    base: float,
    of_address: list[Origin | None],
    *,
    slow: bool,
) -> Finding | None:
    least = max(cfg["watch_voters"], 1)
    if len(idxs) < least:  # identities ≤ votes: the cheap checks first
        return None
    start, end = c.at[idxs[0]], c.at[idxs[-1]]
    pad = cfg["pad_seconds"]
    around = c.nominee_votes_between(m, start - pad, end + pad)
    expected = base * around
    if len(idxs) < cfg["min_lift"] * expected:
        return None
    voter = c.voter
    k = len({voter[i] for i in idxs})
    if k < least:
        return None
    p_value = poisson_tail(k, expected)
    if k < cfg["min_lift"] * expected or p_value > cfg["max_p"]:
        return None

    votes = len(idxs)
    found = [of_address[c.ip[i]] for i in idxs]
    datacenter = sum(1 for o in found if o is not None and o.kind == DATACENTER)
    dc_share = datacenter / votes
    networks: dict[str, list[int]] = {}
    kinds: dict[str, str] = {}
    countries: Counter[str] = Counter()
    for i, o in zip(idxs, found, strict=True):
        if o is None:
            continue
        networks.setdefault(o.network, []).append(i)
        kinds[o.network] = o.kind
        if o.kind == FOREIGN:
            countries[o.country] += 1
    ranked = sorted(networks.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    top_network, top_votes = ranked[0][0], len(ranked[0][1])
    one_owner = clamp((top_votes / votes - 0.5) / 0.4)
    prefixes = len({c.pfx[i] for i in idxs})
    few_networks = clamp(1 - (prefixes - 1) / (k - 1)) if k > 1 else 1.0
    suspicion = noisy_or([(0.8, dc_share), (0.5, one_owner), (0.6, few_networks)])

    min_voters = max(cfg["min_voters"], 1.0)
    full = max(cfg["full_voters"], min_voters + 1)
    explained, view_figures = view_explained(
        c, m, start, end, votes, cfg["view_leniency"], cfg["view_lead_seconds"]
    )
    few = k < min_voters
    if few:
        score = cfg["report_score"] + 0.05 * suspicion
    else:
        strength = clamp((k - min_voters) / (full - min_voters))
        score = 0.5 + 0.5 * suspicion * (0.4 + 0.6 * strength)
    if explained is not None:
        score *= 1 - 0.5 * explained * (1 - dc_share)

    # foreign lines of many countries, carriers and networks: supporters abroad look like that
    scattered = dc_share < 0.5 and suspicion < 0.5
    name = c.nominees[m]
    parts = []
    if datacenter:
        dc_nets = [(net, v) for net, v in ranked if kinds[net] == DATACENTER]
        parts.append(
            f"{datacenter} 票来自机房/云服务器网络（"
            + "、".join(f"{net} {len(v)} 票" for net, v in dc_nets[:5])
            + "）"
        )
    if votes - datacenter:
        parts.append(
            f"{votes - datacenter} 票来自境外（"
            + "、".join(f"{country} {n} 票" for country, n in countries.most_common(5))
            + "）"
        )
    when = "间零散地" if slow else " "
    text = (
        f"{k} 个投票身份在 {fmt_span(c, start, end)}{when}从机房或境外地址给 {name} 投出 "
        f"{votes} 票：{'；'.join(parts)}，分布在 {prefixes} 个网段。按本活动其他候选人的情况，"
        f"这段时间 {name} 的 {around} 票里约 {expected:.1f} 票会来自这类地址，"
        f"实际有 {k} 个身份，是预期的 {k / max(expected, 1e-9):.0f} 倍。"
    )
    if few:
        text += f"只有 {k} 个身份，可能是公司 VPN、出差或身在境外的真实投票者，仅作观察。"
    elif scattered:
        text += (
            "这些境外地址分散在多个国家、运营商和网段，也可能是身在境外的真实支持者，"
            "请结合投票者身份判断。"
        )
    else:
        signs = []
        if one_owner >= 0.5:
            signs.append(f"{top_votes / votes:.0%} 来自同一网络（{top_network}）")
        if few_networks >= 0.5:
            signs.append(f"{k} 个身份只用了 {prefixes} 个网段")
        if signs:
            text += "其中 " + "，".join(signs) + "。"
        if dc_share >= 0.5:
            text += "真人很少从云服务器投票，公司 VPN 偶尔有之；"
        else:
            text += "出差或旅居境外的投票者偶尔会有；"
        text += "这么多身份集中从这类地址投给同一人，像是借代理、云主机或境外服务器刷票。"
    if explained is not None and explained >= 0.5 and dc_share < 0.5:
        text += f"同期页面浏览 {view_figures['page_views']} 次，基本能解释这些票。"
    ev = evidence(
        c,
        idxs,
        kind="slow" if slow else "cluster",
        identities=k,
        datacenter_votes=datacenter,
        foreign_votes=votes - datacenter,
        networks=[
            {
                "network": net,
                "kind": kinds[net],
                "votes": len(v),
                "voters": len({voter[i] for i in v}),
            }
            for net, v in ranked[:10]
        ],
        countries=[{"country": country, "votes": n} for country, n in countries.most_common(10)],
        distinct_prefixes=prefixes,
        kind_share_elsewhere=base,
        nominee_votes_around=around,
        expected_votes=expected,
        lift=k / expected if expected > 0 else None,
        p_value=p_value,
        views_explain_share=explained,
        **view_figures,
        signals={
            "datacenter_share": dc_share,
            "one_network_owner": one_owner,
            "few_prefixes": few_networks,
            "suspicion": suspicion,
        },
    )
    return finding(c, RULE, m, score, cfg, idxs, ev, text, watch=few or scattered)
