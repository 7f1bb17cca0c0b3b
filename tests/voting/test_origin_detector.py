"""proxy_origin: votes for one nominee from datacenter (cloud) or foreign addresses.

A small organic campaign on domestic carrier lines (three nominees, two days) with votes
injected from addresses the bundled ip2region data (XdbSearchIP, 2022) places in 阿里云, 腾讯
and 亚马逊 networks or abroad. The first test pins what the data says of every address used, so
a newer data file that moves one fails there, not somewhere obscure."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import timedelta

import pytest

from core import geo
from core.types import utcnow
from voting import labels
from voting.detectors import DEFAULTS, RULES, SEVERITIES, WATCH, Finding, VoteRow, scan
from voting.detectors import origin as origin_rule
from voting.detectors.prep import Campaign as Prepared

RULE = "proxy_origin"
# a local midnight-ish moment well in the past, derived from today's clock
T0 = float(int((utcnow() - timedelta(days=10)).timestamp()) // 86400 * 86400 - 8 * 3600)
NOMINEES = ("N001", "N002", "N003")

# What the bundled data says (checked in test_the_addresses_are_what_the_data_says).
ALIYUN = "47.98.{}.{}"  # 浙江省杭州市 阿里云
TENCENT = "42.192.{}.{}"  # 上海 腾讯
AMAZON = "52.1.{}.{}"  # 美国 亚马逊: a cloud abroad is a datacenter
JAPAN = "126.1.{}.{}"  # 日本 软银, a home line abroad
NTT = "60.32.{}.{}"  # 日本 日本电信电话
ABROAD = ("126.1.2.3", "8.8.4.4", "81.2.69.142", "1.1.1.2", "103.20.30.5", "139.162.1.1")
DOMESTIC = ("117.136.{}.{}", "223.104.{}.{}", "113.116.{}.{}", "218.76.{}.{}")  # carriers
UNKNOWN = ("10.1.2.{}", "192.168.1.{}", "100.64.3.{}", "2408:8207:1:{}::1", "not-an-ip-{}")


class Campaign:
    def __init__(self, seed: int = 3) -> None:
        self.rng = random.Random(seed)
        self.votes: list[VoteRow] = []
        self.views: dict[tuple[str, int], int] = {}
        self.next_voter = 1

    def voter(self) -> int:
        self.next_voter += 1
        return self.next_voter - 1

    def vote(self, voter: int, nominee: str, at: float, ip: str) -> str:
        vid = f"v{len(self.votes):06d}"
        ua = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.49 NetType/WIFI"
        self.votes.append(
            VoteRow(vid, voter, nominee, "C", at, ip, f"d{voter}", ua, T0 - 86400 * 30, "valid")
        )
        return vid

    def domestic(self) -> str:
        return self.rng.choice(DOMESTIC).format(self.rng.randrange(64), self.rng.randrange(1, 255))

    def organic(self, voters: int = 400) -> None:
        """Voters on carrier lines, a vote on each of two days at a daytime hour."""
        for _ in range(voters):
            v, home = self.voter(), self.domestic()
            nominee = self.rng.choice(NOMINEES)
            for day in (0, 1):
                self.vote(v, nominee, T0 + day * 86400 + self.rng.uniform(8, 22) * 3600, home)

    def cohort(
        self, addresses: Iterable[str], nominee: str = "N002", hour: float = 30.0
    ) -> set[str]:
        """One identity per address, voting for ``nominee`` a minute or two apart."""
        t = T0 + hour * 3600
        ids = set()
        for ip in addresses:
            ids.add(self.vote(self.voter(), nominee, t, ip))
            t += self.rng.uniform(30, 120)
        return ids

    def findings(self, **settings: float) -> list[Finding]:
        overrides = {RULE: settings} if settings else None
        found = scan(self.votes, views=self.views or None, settings=overrides)
        return [f for f in found if f.rule == RULE]


def spread(template: str, n: int, rng: random.Random) -> list[str]:
    """n addresses of ``template`` in n different /24s."""
    thirds = rng.sample(range(256), n)
    return [template.format(third, rng.randrange(1, 255)) for third in thirds]


def test_the_addresses_are_what_the_data_says() -> None:
    assert geo.is_proxy_like(ALIYUN.format(7, 9)) == (True, "datacenter")
    assert geo.lookup(ALIYUN.format(7, 9)).isp == "阿里云"  # type: ignore[union-attr]
    assert geo.is_proxy_like(TENCENT.format(1, 1)) == (True, "datacenter")
    assert geo.lookup(TENCENT.format(1, 1)).isp == "腾讯"  # type: ignore[union-attr]
    amazon = geo.lookup(AMAZON.format(2, 3))
    assert amazon is not None and amazon.isp == "亚马逊" and amazon.foreign
    assert geo.is_proxy_like(AMAZON.format(2, 3)) == (True, "datacenter")
    japan = geo.lookup(JAPAN.format(1, 1))
    assert japan is not None and japan.country == "日本"
    assert geo.is_proxy_like(JAPAN.format(1, 1)) == (True, "foreign")
    ntt = geo.lookup(NTT.format(9, 9))
    assert ntt is not None and (ntt.country, ntt.isp) == ("日本", "日本电信电话")
    assert geo.is_proxy_like(NTT.format(9, 9)) == (True, "foreign")
    countries = {geo.lookup(ip).country for ip in ABROAD}  # type: ignore[union-attr]
    assert len(countries) == len(ABROAD) and "中国" not in countries
    assert all(geo.is_proxy_like(ip) == (True, "foreign") for ip in ABROAD)
    for template in DOMESTIC:
        assert geo.is_proxy_like(template.format(5, 6)) == (False, None)
        assert geo.lookup(template.format(5, 6)).country == "中国"  # type: ignore[union-attr]
    for template in UNKNOWN:
        assert geo.lookup(template.format(7)) is None


def test_a_datacenter_cohort_is_flagged_and_only_its_votes_named() -> None:
    c = Campaign()
    c.organic()
    proxies = c.cohort(spread(ALIYUN, 8, c.rng), hour=34.0)
    # the nominee's own organic votes around the same time are not named
    t = T0 + 34 * 3600
    honest = {c.vote(c.voter(), "N002", t + k * 90, c.domestic()) for k in range(10)}
    found = c.findings()
    assert len(found) == 1
    flag = found[0]
    assert flag.nominee == "N002" and flag.severity in SEVERITIES
    assert set(flag.vote_ids) == proxies and not honest & set(flag.vote_ids)
    assert flag.evidence["identities"] == 8 and flag.evidence["datacenter_votes"] == 8
    assert flag.evidence["networks"][0] == {
        "network": "阿里云",
        "kind": "datacenter",
        "votes": 8,
        "voters": 8,
    }
    assert flag.evidence["distinct_prefixes"] == 8 and flag.evidence["kind"] == "cluster"
    json.dumps(flag.evidence)
    text = flag.explanation
    assert "8 个投票身份" in text and "阿里云 8 票" in text and "N002" in text
    assert "机房" in text and "8 个网段" in text and "刷票" in text
    assert labels.RULE_LABELS[RULE] == "机房/境外地址投票"


def test_one_or_two_identities_are_a_watch_note_at_most() -> None:
    c = Campaign()
    c.organic()
    c.cohort([TENCENT.format(3, 4)], nominee="N001", hour=15.0)
    assert c.findings() == []  # one identity: nothing
    # two at 03:00, when hardly anyone votes: more than chance, still a note
    pair = c.cohort([TENCENT.format(3, 5), TENCENT.format(3, 6)], nominee="N003", hour=27.0)
    found = c.findings()
    assert len(found) == 1
    note = found[0]
    assert note.severity == WATCH and note.nominee == "N003" and set(note.vote_ids) == pair
    assert "2 个投票身份" in note.explanation and "观察" in note.explanation
    assert "腾讯 2 票" in note.explanation
    # the same pair amid a busy hour of the nominee's is what chance gives (Poisson tail)
    busy = Campaign()
    busy.organic()
    busy.cohort([busy.domestic() for _ in range(40)], nominee="N003", hour=19.5)
    busy.cohort([TENCENT.format(3, 5), TENCENT.format(3, 6)], nominee="N003", hour=20.0)
    assert busy.findings() == []
    # four identities: still a note; the fifth starts a flag
    c2 = Campaign()
    c2.organic()
    c2.cohort(spread(ALIYUN, 4, c2.rng), hour=20.0)
    assert [f.severity for f in c2.findings()] == [WATCH]
    c3 = Campaign()
    c3.organic()
    c3.cohort(spread(ALIYUN, 5, c3.rng), hour=20.0)
    assert [f.severity for f in c3.findings()] != [WATCH]
    assert c3.findings()[0].severity in SEVERITIES


def test_domestic_carrier_lines_are_nothing() -> None:
    c = Campaign()
    c.organic()
    c.cohort([c.domestic() for _ in range(40)], hour=30.0)
    c.cohort([DOMESTIC[0].format(9, k) for k in range(1, 30)], nominee="N003", hour=31.0)
    assert c.findings() == []


@pytest.mark.parametrize("template", UNKNOWN)
def test_unknown_private_and_ipv6_addresses_are_ignored(template: str) -> None:
    c = Campaign()
    c.organic()
    c.cohort([template.format(k) for k in range(1, 21)], hour=30.0)
    assert c.findings() == []


def test_score_rises_with_identities_and_concentration() -> None:
    def flag_for(addresses: list[str]) -> Finding:
        c = Campaign()
        c.organic()
        c.cohort(addresses, hour=30.0)
        (found,) = c.findings()
        return found

    rng = random.Random(5)
    few = flag_for(spread(ALIYUN, 6, rng))
    many = flag_for(spread(ALIYUN, 30, rng))
    assert few.severity in SEVERITIES and many.score > few.score and many.severity == "high"
    # six identities from one /24 of one cloud beat six across clouds and networks
    one_net = flag_for([ALIYUN.format(77, k) for k in range(1, 7)])
    mixed = [ALIYUN.format(1, 1), TENCENT.format(2, 2), AMAZON.format(3, 3)]
    mixed += [ALIYUN.format(4, 4), TENCENT.format(5, 5), AMAZON.format(6, 6)]
    scattered = flag_for(mixed)
    assert one_net.score > few.score > scattered.score
    assert one_net.evidence["distinct_prefixes"] == 1
    assert "6 个身份只用了 1 个网段" in one_net.explanation
    assert scattered.evidence["networks"][0]["votes"] == 2
    assert "美国 亚马逊 2 票" in scattered.explanation


def test_foreign_lines_scattered_are_a_note_one_network_is_a_flag() -> None:
    c = Campaign()
    c.organic()
    abroad = c.cohort([*ABROAD, "126.2.3.4", "81.2.70.1"], hour=30.0)
    (note,) = c.findings()
    assert note.severity == WATCH and set(note.vote_ids) == abroad
    assert note.evidence["foreign_votes"] == 8 and note.evidence["datacenter_votes"] == 0
    assert {row["country"] for row in note.evidence["countries"]} >= {"日本", "美国", "英国"}
    assert "境外" in note.explanation and "真实支持者" in note.explanation

    c2 = Campaign()
    c2.organic()
    one = c2.cohort([JAPAN.format(200, k) for k in range(1, 11)], hour=30.0)
    (flag,) = c2.findings()
    assert flag.severity in SEVERITIES and set(flag.vote_ids) == one
    assert "日本 10 票" in flag.explanation and "境外" in flag.explanation

    # thirty home lines in Japan on two carriers, each in its own /24: a group chat in Tokyo
    # looks like that; however many, a note (its score alone would make it a flag)
    c3 = Campaign()
    c3.organic()
    tokyo = c3.cohort([*spread(JAPAN, 25, c3.rng), *spread(NTT, 5, c3.rng)], hour=30.0)
    (note,) = c3.findings()
    assert note.severity == WATCH and set(note.vote_ids) == tokyo
    assert note.score >= DEFAULTS[RULE]["low_score"] and note.evidence["identities"] == 30
    top = {"network": "日本 软银", "kind": "foreign", "votes": 25, "voters": 25}
    assert note.evidence["networks"][0] == top and "真实支持者" in note.explanation


def test_page_views_account_for_foreign_votes_never_for_datacenter_ones() -> None:
    def score(addresses: list[str], viewed: bool) -> float:
        c = Campaign()
        c.organic()
        for vote in c.votes:  # the page's usual views: four per vote
            key = (vote.nominee, int(vote.at // 60))
            c.views[key] = c.views.get(key, 0) + 4
        c.cohort(addresses, hour=30.0)
        if viewed:
            for minute in range(int((T0 + 29.9 * 3600) // 60), int((T0 + 30.5 * 3600) // 60)):
                c.views[("N002", minute)] = c.views.get(("N002", minute), 0) + 3
        found = c.findings()
        return found[0].score if found else 0.0

    japan = [JAPAN.format(200, k) for k in range(1, 11)]
    assert score(japan, viewed=True) < score(japan, viewed=False)
    cloud = [ALIYUN.format(200, k) for k in range(1, 11)]
    assert score(cloud, viewed=True) == pytest.approx(score(cloud, viewed=False))


def test_a_campaign_with_many_voters_abroad_sets_the_baseline() -> None:
    c = Campaign()
    c.organic()
    # a quarter of every nominee's voters are abroad (a diaspora campaign)
    for _ in range(150):
        v, ip = c.voter(), JAPAN.format(c.rng.randrange(256), c.rng.randrange(1, 255))
        nominee = c.rng.choice(NOMINEES)
        for day in (0, 1):
            c.vote(v, nominee, T0 + day * 86400 + c.rng.uniform(8, 22) * 3600, ip)
    assert c.findings() == []
    # six more from Japan in an hour is what the campaign looks like; six from a cloud is not
    c.cohort(spread(JAPAN, 6, c.rng), hour=33.0)
    assert c.findings() == []
    cloud = c.cohort(spread(ALIYUN, 6, c.rng), nominee="N001", hour=40.0)
    (flag,) = c.findings()
    assert set(flag.vote_ids) == cloud and flag.severity in SEVERITIES


def test_a_slow_trickle_is_judged_as_one_set() -> None:
    c = Campaign()
    c.organic()
    trickle = set()
    for k, ip in enumerate(spread(ALIYUN, 6, c.rng)):  # one every three hours
        trickle.add(c.vote(c.voter(), "N003", T0 + 8 * 3600 + k * 3 * 3600, ip))
    (flag,) = c.findings()
    assert set(flag.vote_ids) == trickle and flag.evidence["kind"] == "slow"
    assert flag.evidence["identities"] == 6 and "零散" in flag.explanation
    # judged as clusters only (one gap spanning them all), the same votes form one cluster
    (whole,) = c.findings(gap_seconds=86400)
    assert set(whole.vote_ids) == trickle and whole.evidence["kind"] == "cluster"


def test_registered_with_its_settings() -> None:
    assert RULE in RULES and RULES[-1] == "share_jump"
    assert tuple(DEFAULTS) == RULES and DEFAULTS[RULE]["min_voters"] == 5
    assert set(labels.RULE_LABELS) == set(RULES)
    c = Campaign()
    c.organic()
    c.cohort(spread(ALIYUN, 8, c.rng), hour=30.0)
    assert c.findings(enabled=0) == []
    assert [f.severity for f in c.findings(min_voters=20)] == [WATCH]
    with pytest.raises(ValueError, match="unknown setting"):
        c.findings(min_voterz=3)


def test_each_distinct_address_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Campaign()
    c.organic()
    c.cohort(spread(ALIYUN, 8, c.rng), hour=30.0)
    calls: list[str] = []
    real = geo.lookup

    def counting(ip: str) -> geo.Region | None:
        calls.append(ip)
        return real(ip)

    monkeypatch.setattr(geo, "lookup", counting)
    campaign = Prepared(c.votes, None, 8.0)
    found = origin_rule.detect(campaign, DEFAULTS[RULE])
    assert len(found) == 1 and found[0].evidence["identities"] == 8
    distinct = {v.ip for v in c.votes}
    assert len(distinct) < len(c.votes)  # organic voters vote twice from home
    # each address once, plus is_proxy_like's own lookup once per region of the data
    regions = {id(region) for region in map(real, distinct) if region is not None}
    assert set(calls) == distinct and len(calls) == len(distinct) + len(regions)
