"""The demo's past votes: days of organic voting and one brushing attack, cast through the real
vote path (the vote script, the ledger stream, the drain into the hash chain) with a seeding clock
swapped in at the vote path's clock seam (``voting.cast.clock``), never written around the chain.
Page views go through the counter the H5 page's beacon feeds (``nominations.ports.count_view``).

The organic side: people with their own phone, WeChat account (months old), address and agent,
coming back on one to three days at human hours (lunch and evening peaks, quiet nights), each
visit opening a few nominee pages and voting for some of them; popularity is skewed so the
ranking has a shape. The attack: a phone farm, two phones each logged in to account after
account (accounts made minutes before), a few seconds apart, all for one nominee: one device
behind many identities, which the scan files as a flag (device_reuse), not a 观察."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.errors import AppError
from core.extensions import db
from nominations import ports

# Local hours 0–23: how likely a visit is to start then (a county's phones: lunch, evening).
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 7, 9, 8, 7, 8, 12, 11, 7, 6, 6, 7, 10, 13, 14, 13, 9, 5)
MOBILE = ("117.136", "223.104", "111.55", "112.97", "27.38", "120.229", "39.144", "36.157")
BROADBAND = ("113.116", "114.222", "115.192", "180.111", "183.14", "222.209", "61.140", "125.70")
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
)
WECHAT = (("8.0.49", "0x18003130", "0x2800313D"), ("8.0.50", "0x18003237", "0x28003252"))
FARM_PHONES = 2
FARM_ACCOUNTS = 24  # per phone: far past device_reuse's full_voters (20), so a high flag


@dataclass(frozen=True)
class Person:
    key: str  # the identity's subject before hashing
    provider: str  # "wechat" or "device"
    created: datetime  # when the platform first saw the identity
    device: str
    agent: str


@dataclass(frozen=True)
class Visit:
    at: datetime
    person: Person
    address: str
    number: str
    vote: bool


@dataclass
class Tally:
    votes: int = 0
    refused: int = 0
    views: int = 0
    voters: int = 0


def _agent(rng: random.Random) -> str:
    net = rng.choice(("WIFI", "4G", "5G", "5G"))
    wechat = rng.choice(WECHAT)
    if rng.random() < 0.5:
        return (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {rng.choice(IOS)} like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
            f"MicroMessenger/{wechat[0]}({wechat[1]}) NetType/{net} Language/zh_CN"
        )
    return _android(rng.choice(ANDROID), wechat, net, rng.randrange(1000, 9999))


def _android(model: tuple[str, str, str], wechat: tuple[str, str, str], net: str, web: int) -> str:
    release, name, build = model
    return (
        f"Mozilla/5.0 (Linux; Android {release}; {name} Build/{build}; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160117 "
        f"MMWEBSDK/20240404 MMWEBID/{web} MicroMessenger/{wechat[0]}.2600({wechat[2]}) "
        f"WeChat/arm64 Weixin NetType/{net} Language/zh_CN ABI/arm64"
    )


def _address(rng: random.Random) -> str:
    pool = MOBILE if rng.random() < 0.6 else BROADBAND
    return f"{rng.choice(pool)}.{rng.randrange(0, 250)}.{rng.randrange(1, 255)}"


def _open_hours(day: datetime, start: datetime, end: datetime) -> list[tuple[float, float, float]]:
    """Local ``day``'s hours that overlap [start, end): (weight × overlap, from, to) in seconds
    after the day's midnight. A day already under way or not yet over is cut to what is inside,
    so the demo's traffic does not depend on the hour it is seeded at."""
    out = []
    for hour, weight in enumerate(HOUR_WEIGHTS):
        lo = max(day + timedelta(hours=hour), start)
        hi = min(day + timedelta(hours=hour + 1), end)
        if hi > lo:
            span = (hi - lo).total_seconds()
            offset = (lo - day).total_seconds()
            out.append((weight * span / 3600, offset, offset + span))
    return out


def _day_share(day: datetime, start: datetime, end: datetime) -> float:
    """How much of a whole day's visiting falls inside [start, end) on local ``day``."""
    return sum(w for w, _, _ in _open_hours(day, start, end)) / sum(HOUR_WEIGHTS)


def _moment(rng: random.Random, day: datetime, start: datetime, end: datetime) -> datetime | None:
    """A moment on local ``day`` at a human hour, inside [start, end)."""
    hours = _open_hours(day, start, end)
    if not hours:
        return None
    _, lo, hi = rng.choices(hours, weights=[w for w, _, _ in hours])[0]
    return day + timedelta(seconds=rng.uniform(lo, hi))


def organic(
    rng: random.Random,
    numbers: list[str],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    people: int,
    per_day: int,
) -> list[Visit]:
    """Visits of ``people`` honest voters between ``start`` and ``end`` (aware datetimes)."""
    weights = [1.0 / (rank + 2) ** 0.9 for rank in range(len(numbers))]
    order = numbers[:]
    rng.shuffle(order)  # which nominees are popular: not simply the first numbers
    first_day = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    day = first_day
    while day < end:
        # A day counts when most of its visiting hours are inside the window: seeded at 01:30,
        # today is not a voting day yet (its few minutes would swallow people's visits).
        if _day_share(day, start, end) >= 0.5:
            days.append(day)
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)  # next local midnight
    visits: list[Visit] = []
    for index in range(people):
        agent = _agent(rng)
        person = Person(
            key=f"demo-wx-{index:05d}-{rng.getrandbits(32):08x}",
            provider="wechat",
            created=start - timedelta(days=rng.uniform(40, 900)),
            device=f"{rng.getrandbits(128):032x}",
            agent=agent,
        )
        favourites = list(dict.fromkeys(rng.choices(order, weights=weights, k=per_day + 2)))
        address = _address(rng)
        active = rng.sample(days, k=min(len(days), rng.choice((1, 1, 2, 2, 3))))
        for day in sorted(active):
            at = _moment(rng, day, start, end)
            if at is None:
                continue
            if rng.random() < 0.3:  # at home on the Wi-Fi one day, on 4G another
                address = _address(rng)
            browsing = favourites[: rng.randint(1, min(len(favourites), per_day))]
            for number in browsing:
                at += timedelta(seconds=rng.uniform(5, 40))
                if at >= end:
                    break
                visits.append(Visit(at, person, address, number, vote=rng.random() < 0.85))
            if rng.random() < 0.4 and at + timedelta(seconds=60) < end:  # only looked around
                other = rng.choice(numbers)
                visits.append(Visit(at + timedelta(seconds=30), person, address, other, False))
    return visits


def phone_farm(rng: random.Random, target: str, when: datetime) -> list[Visit]:
    """Two phones of one controller, each logging in to account after account every few
    seconds, opening the page and voting for ``target``."""
    release, name, build = ANDROID[0]
    agent = _android((release, name, build), WECHAT[0], "4G", 5173)
    visits: list[Visit] = []
    for phone in range(FARM_PHONES):
        device = f"farm{phone}{rng.getrandbits(96):024x}"
        address = f"{MOBILE[phone]}.{rng.randrange(0, 64)}.{rng.randrange(1, 255)}"
        for account in range(FARM_ACCOUNTS):
            at = when + timedelta(seconds=account * 5 + rng.uniform(0, 0.05))
            person = Person(
                key=f"demo-farm-{phone}-{account}-{rng.getrandbits(32):08x}",
                provider="wechat",
                created=at - timedelta(minutes=rng.uniform(20, 90)),
                device=device,
                agent=agent,
            )
            visits.append(Visit(at, person, address, target, vote=True))
    return visits


def cast(domains: Any, slug: str, visits: list[Visit]) -> Tally:
    """Every visit in time order with the vote path's clock standing at its moment: the page
    view counted, the vote cast through ``voting.services.cast_vote``. Refusals (a day's quota
    spent) are what a real voter would meet, and are counted, not raised."""
    identity, cast_module = domains.identity, domains.cast
    tally = Tally()
    claims: dict[str, dict[str, Any]] = {}
    visits = sorted(visits, key=lambda v: v.at)
    for visit in visits:
        person = visit.person
        if person.key not in claims and visit.vote:
            subject = identity.subject_hash(person.provider, person.key)
            voter = identity.voter_for(person.provider, subject)
            voter.created_at = person.created
            claims[person.key] = {
                "sub": voter.id,
                "p": person.provider,
                "c": int(person.created.timestamp() * 1000),
            }
    db.session.commit()
    tally.voters = len(claims)
    saved = cast_module.clock
    moment = {"at": visits[0].at if visits else None}
    cast_module.clock = lambda: moment["at"]
    try:
        for visit in visits:
            moment["at"] = visit.at
            ports.count_view(slug, visit.number)
            tally.views += 1
            if not visit.vote:
                continue
            try:
                domains.voting.cast_vote(
                    slug,
                    claims[visit.person.key],
                    visit.number,
                    idempotency_key=None,
                    ip=visit.address,
                    device=visit.person.device,
                    user_agent=visit.person.agent,
                )
                tally.votes += 1
            except AppError:
                tally.refused += 1
    finally:
        cast_module.clock = saved
    return tally


def drain_and_scan(domains: Any, campaign: Any) -> Any:
    """Drain the ledger stream into the chain, then run one fraud scan as the scan job does."""
    domains.voting.drain_campaign(campaign.slug)
    scan = domains.fraud.start_scan(campaign, "admin", trigger="manual")
    db.session.commit()
    domains.voting_jobs.fraud_scan(scan.id)
    db.session.expire_all()
    return scan
