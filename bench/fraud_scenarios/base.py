"""What every scenario module shares: the vote attempt with its ground truth, the context a
scenario is generated in, and plausible Chinese addresses and WeChat agents.

The scenarios describe what a client does and what the server can see of it (address, agent,
cookies, the device's own fingerprint header, whether the page was opened first). They know
nothing of the detectors: they were written before any tuning, against the product's public
behaviour only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

DAY = 86400.0
HOUR_WEIGHTS = [
    0.25, 0.12, 0.06, 0.05, 0.05, 0.1, 0.4, 1.0, 1.4, 1.5, 1.4, 1.6,
    3.0, 2.6, 1.5, 1.3, 1.3, 1.5, 2.0, 2.8, 3.2, 3.0, 2.0, 0.8,
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Attempt:
    """One thing a client does at ``t`` seconds after traffic begins: open a nominee's page and,
    unless ``view_only``, vote for that nominee.

    ``identity`` is the voter's identity key (the device id the device identity is made from, or
    a WeChat account that the platform has known for ``account_age_days``); ``device`` is the
    physical phone (its cookie jar, when cookies are kept); ``fingerprint`` is what the client
    itself sends as ``X-Device-Fingerprint`` (None: nothing, as the H5 page sends)."""

    t: float
    scenario: str
    attack: bool
    identity: str
    address: str
    agent: str
    device: str
    nominee: int
    viewed: bool
    keep_cookies: bool = True
    fingerprint: str | None = None
    account_age_days: float | None = None
    view_only: bool = False


@dataclass
class Context:
    """Where a scenario is generated.

    ``realtime``: one young campaign, ``span`` seconds of traffic (at most five minutes), every
    pattern compressed into it. Otherwise ``days`` simulated days from a local midnight (t=0 is
    00:00 Asia/Shanghai of the first day) and ``span`` = days × 86400."""

    rng: random.Random
    nominees: int
    realtime: bool
    days: int = 1
    span: float = 300.0
    scale: float = 1.0
    votes_per_day: int = 3
    _taken: list[int] = field(default_factory=list)

    @classmethod
    def make(
        cls,
        seed: int,
        nominees: int,
        *,
        realtime: bool,
        days: int = 1,
        span: float = 300.0,
        scale: float = 1.0,
        votes_per_day: int = 3,
    ) -> Context:
        if nominees < 12:
            raise ValueError("the scenarios need at least 12 nominees")
        if realtime and not 0 < span <= 300:
            raise ValueError("real-time traffic is compressed to at most 300 s")
        if realtime:
            days = 1
        else:
            span = days * DAY
        return cls(random.Random(seed), nominees, realtime, days, span, scale, votes_per_day)

    def n(self, base: float) -> int:
        """A scenario's head count at this run's scale (never below two)."""
        return max(2, round(base * self.scale))

    def popularity(self) -> list[float]:
        """Organic shares: a few well-known nominees, a long tail (Zipf-like)."""
        return [1 / (k + 1) ** 0.8 for k in range(self.nominees)]

    def favourites(self, k: int, noise: float = 0.3) -> list[int]:
        """``k`` distinct nominees in proportion to popularity, each weight shaken by ``noise``."""
        weights = [w * self.rng.uniform(1 - noise, 1 + noise) for w in self.popularity()]
        chosen: list[int] = []
        while len(chosen) < min(k, self.nominees):
            pick = self.rng.choices(range(self.nominees), weights=weights)[0]
            if pick not in chosen:
                chosen.append(pick)
        return chosen

    def targets(self, k: int) -> list[int]:
        """Nominees an attack pushes: mid-table ones (a brusher lifts someone who would
        otherwise lose), each attack its own, none of the three favourites."""
        pool = [i for i in range(3, self.nominees) if i not in self._taken]
        if len(pool) < k:
            pool = list(range(3, self.nominees))
        picked = self.rng.sample(pool, k)
        self._taken.extend(picked)
        return picked

    def at(self, day: int, hour: float) -> float:
        """Days mode: a local hour of a simulated day, as seconds from t=0."""
        return day * DAY + hour * 3600

    def window(self, start: float, end: float) -> tuple[float, float]:
        """Real-time mode: the part of the span between fractions ``start`` and ``end``."""
        return self.span * start, self.span * end

    def rhythm_hour(self) -> float:
        """Days mode: a local hour from the daily rhythm (lunch and evening peaks, quiet nights)."""
        return self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0] + self.rng.random()

    def arrival(self, start: float, mean: float, end: float | None = None) -> float:
        """A moment after ``start`` drawn from a decaying rate with the given mean, kept before
        ``end`` (the span's end by default): how a shared link's clicks arrive."""
        end = self.span - 0.5 if end is None else end
        for _ in range(20):
            t = start + self.rng.expovariate(1 / mean)
            if t < end:
                return t
        return self.rng.uniform(start, end)

    def jitter(self, t: float) -> float:
        """Clamp to the traffic's span (a pattern near the edge stays inside it)."""
        return min(max(t, 0.0), self.span - 0.5)


# --- addresses -----------------------------------------------------------------------------------
# Made-up but plausible: the first two octets are ranges the carriers and clouds really announce.

MOBILE_NAT = ("117.136", "223.104", "111.55", "112.97", "27.38", "120.229", "39.144", "36.157")
HOME_BROADBAND = ("113.116", "114.222", "115.192", "180.111", "183.14", "222.209", "61.140")
HOME_BROADBAND += ("123.139", "125.70", "60.176", "221.232", "116.21")
DATACENTER = ("47.98", "47.103", "39.105", "101.132", "120.24", "49.232", "81.68", "106.52")
DATACENTER += ("119.29", "129.204", "150.158", "121.37", "124.70", "122.112")


def mobile_address(rng: random.Random, pool: Sequence[str] = MOBILE_NAT) -> str:
    """A phone on 4G/5G: carrier-grade NAT, so many subscribers share few /24s."""
    return f"{rng.choice(pool)}.{rng.randrange(0, 64)}.{rng.randrange(1, 255)}"


def home_address(rng: random.Random, pool: Sequence[str] = HOME_BROADBAND) -> str:
    """A home broadband line (the phone on the family's Wi-Fi)."""
    return f"{rng.choice(pool)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def datacenter_address(rng: random.Random) -> str:
    return f"{rng.choice(DATACENTER)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def any_organic_address(rng: random.Random) -> str:
    return mobile_address(rng) if rng.random() < 0.6 else home_address(rng)


# --- agents --------------------------------------------------------------------------------------

IOS = ("17_5_1", "17_6", "16_7_8", "18_1", "18_0_1", "17_4_1", "15_8_3")
ANDROID = (
    ("14", "V2309A", "UP1A.231005.007"),
    ("13", "PJD110", "TP1A.220905.001"),
    ("14", "23013RK75C", "UKQ1.230804.001"),
    ("12", "ALN-AL00", "HUAWEIALN-AL00"),
    ("14", "SM-S9180", "UP1A.231005.007"),
    ("13", "PHB110", "TP1A.220905.001"),
    ("12", "NOH-AN00", "HUAWEINOH-AN00"),
    ("13", "22081212C", "TKQ1.220829.002"),
    ("11", "M2012K11AC", "RKQ1.200826.002"),
    ("14", "PGEM10", "UKQ1.230924.001"),
    ("13", "V2227A", "TP1A.220624.014"),
    ("10", "PCAM00", "QKQ1.191222.002"),
)
WECHAT = (("8.0.49", "0x18003130", "0x2800313D"), ("8.0.47", "0x18002F2C", "0x28002F35"))
WECHAT += (("8.0.50", "0x18003237", "0x28003252"), ("8.0.44", "0x18002C2F", "0x28002C3B"))


def ios_agent(version: str, wechat: tuple[str, str, str], net: str) -> str:
    return (
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {version} like Mac OS X) AppleWebKit/605.1.15 "
        f"(KHTML, like Gecko) Mobile/15E148 MicroMessenger/{wechat[0]}({wechat[1]}) "
        f"NetType/{net} Language/zh_CN"
    )


def android_agent(
    model: tuple[str, str, str], wechat: tuple[str, str, str], net: str, webid: int
) -> str:
    release, name, build = model
    return (
        f"Mozilla/5.0 (Linux; Android {release}; {name} Build/{build}; wv) AppleWebKit/537.36 "
        f"(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160117 "
        f"MMWEBSDK/20240404 MMWEBID/{webid} MicroMessenger/{wechat[0]}.2600({wechat[2]}) "
        f"WeChat/arm64 Weixin NetType/{net} Language/zh_CN ABI/arm64"
    )


def wechat_agent(rng: random.Random, net: str | None = None, family: str | None = None) -> str:
    """A phone's WeChat in-app browser. ``family``: "ios" or "android" (None: either, about
    half each as WeChat's own figures put it). Android agents carry the install's MMWEBID."""
    net = net or rng.choice(("WIFI", "4G", "5G", "5G"))
    wechat = rng.choice(WECHAT)
    if (family or rng.choice(("ios", "android"))) == "ios":
        return ios_agent(rng.choice(IOS), wechat, net)
    return android_agent(rng.choice(ANDROID), wechat, net, rng.randrange(1000, 9999))


def identity_key(rng: random.Random, prefix: str) -> str:
    """A device id as the H5 page makes one (letters, digits, - and _; 8–128 characters)."""
    return f"{prefix}-{rng.getrandbits(64):016x}"


@dataclass(frozen=True, slots=True)
class Person:
    """Who acts: an identity on a device, seen from an address with an agent."""

    scenario: str
    attack: bool
    identity: str
    device: str
    agent: str
    keep_cookies: bool = True
    fingerprint: str | None = None
    account_age_days: float | None = None


def session(
    ctx: Context,
    person: Person,
    t: float,
    address: str,
    nominees: Sequence[int],
    *,
    view_p: float,
    gap: tuple[float, float] = (4.0, 30.0),
    end: float | None = None,
) -> list[Attempt]:
    """One visit: for each nominee in turn, perhaps open the page, then vote, a human pause
    apart. Votes past ``end`` (the span's end by default) are not cast."""
    end = ctx.span - 0.5 if end is None else end
    out: list[Attempt] = []
    for nominee in nominees[: ctx.votes_per_day]:
        if t >= end:
            break
        out.append(
            Attempt(
                t=t,
                scenario=person.scenario,
                attack=person.attack,
                identity=person.identity,
                address=address,
                agent=person.agent,
                device=person.device,
                nominee=nominee,
                viewed=ctx.rng.random() < view_p,
                keep_cookies=person.keep_cookies,
                fingerprint=person.fingerprint,
                account_age_days=person.account_age_days,
            )
        )
        t += ctx.rng.uniform(*gap)
    return out


def browse(ctx: Context, person: Person, t: float, address: str, nominee: int) -> Attempt:
    """A page view with no vote (most visitors look and leave)."""
    return Attempt(
        t=ctx.jitter(t),
        scenario=person.scenario,
        attack=person.attack,
        identity=person.identity,
        address=address,
        agent=person.agent,
        device=person.device,
        nominee=nominee,
        viewed=True,
        keep_cookies=person.keep_cookies,
        view_only=True,
    )
