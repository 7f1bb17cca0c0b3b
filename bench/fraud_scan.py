"""Fraud-scan benchmark: ``voting.detectors.scan`` over a large synthetic campaign, one core.

    .venv/bin/python -m bench.fraud_scan [--votes 1000000] [--days 14] [--seed 5] [--no-views]

Generates (seeded, not timed) organic voters — addresses across many /24s plus a few busy
mobile-carrier NAT prefixes, their own devices, a skewed pool of WeChat user agents, favourite
nominees voted for on some days at daily-rhythm times, 3–10 page views per vote, hospital
lunchtime shares on one NAT address — and a few attacks: a scripted /24, a device farm, a surge
of new identities, a 03:00 burst, a lockstep group, a human farm with no page views. Then
times ``scan()`` and prints seconds, votes/s, findings per rule and severity, and recall and
precision per attack (precision: of the votes in the flags touching the attack, how many are
the attack's) and the share of organic votes flagged."""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter

from bench.common import local_midnight
from voting.detectors import RULES, Finding, VoteRow
from voting.detectors.scan import timed_scan

TZ = 8 * 3600
T0 = int(local_midnight(days_ago=30).timestamp())  # a Shanghai midnight a month ago
HOUR_WEIGHTS = [
    0.25, 0.12, 0.06, 0.05, 0.05, 0.1, 0.4, 1.0, 1.4, 1.5, 1.4, 1.6,
    3.0, 2.6, 1.5, 1.3, 1.3, 1.5, 2.0, 2.8, 3.2, 3.0, 2.0, 0.8,
]  # fmt: skip
UAS = [
    f"Mozilla/5.0 ({os}) AppleWebKit/605.1.15 Mobile MicroMessenger/8.0.{b} NetType/{net}"
    for os in (
        "iPhone; CPU iPhone OS 17_5 like Mac OS X",
        "iPhone; CPU iPhone OS 16_7 like Mac OS X",
        "iPhone; CPU iPhone OS 18_1 like Mac OS X",
        "Linux; Android 14; V2302A",
        "Linux; Android 13; PJD110",
        "Linux; Android 12; M2012K11AC",
        "Linux; Android 14; ALN-AL00",
        "Linux; Android 13; 22081212C",
        "Linux; Android 14; SM-S9180",
        "Linux; Android 12; NOH-AN00",
    )
    for b in (40, 42, 44, 47, 49)
    for net in ("WIFI", "4G", "5G")
]


class Gen:
    def __init__(self, seed: int, days: int, nominees: int) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.nominees = [f"N{k:03d}" for k in range(1, nominees + 1)]
        self.category = {n: f"C{k % 4}" for k, n in enumerate(self.nominees)}
        self.rows: list[VoteRow] = []
        self.labels: list[str] = []
        self.views: Counter[tuple[str, int]] = Counter()
        self.next_voter = 1
        self.hours = self.rng.choices(range(24), weights=HOUR_WEIGHTS, k=1 << 16)
        self.ua_weights = [1 / (k + 1) ** 0.7 for k in range(len(UAS))]

    def voter(self) -> int:
        self.next_voter += 1
        return self.next_voter - 1

    def at(self, day: int, hour: float) -> float:
        return T0 + day * 86400 + hour * 3600

    def hour(self) -> float:
        return self.hours[self.rng.getrandbits(16)] + self.rng.random()

    def ip(self) -> str:
        r = self.rng
        if r.random() < 0.12:
            return f"117.136.{r.randrange(32)}.{r.randrange(1, 255)}"
        first = r.choice((36, 42, 58, 112, 120, 183, 223))
        return f"{first}.{r.getrandbits(8)}.{r.getrandbits(8)}.{r.randrange(1, 255)}"

    def ua(self) -> str:
        return self.rng.choices(UAS, weights=self.ua_weights)[0]

    def vote(self, label: str, voter: int, nominee: str, t: float, ip: str, device: str | None,
             ua: str | None, created: float | None) -> None:  # fmt: skip
        self.rows.append(
            VoteRow(
                f"v{len(self.rows):08d}",
                voter,
                nominee,
                self.category[nominee],
                t,
                ip,
                device,
                ua,
                created,
                "valid",
            )
        )
        self.labels.append(label)

    def look(self, nominee: str, t: float, low: int = 3, high: int = 10) -> None:
        r = self.rng
        for _ in range(r.randint(low, high)):
            self.views[(nominee, int((t - r.random() * 600) // 60))] += 1

    # --- organic ------------------------------------------------------------------------------

    def organic(self, votes: int) -> None:
        r = self.rng
        popularity = [1 / (k + 1) ** 0.8 for k in range(len(self.nominees))]
        while len(self.rows) < votes:
            vid = self.voter()
            favourites = sorted(
                set(r.choices(self.nominees, weights=popularity, k=r.choice((1, 1, 2, 3))))
            )
            home, ua = self.ip(), self.ua()
            device = None if r.random() < 0.2 else f"d{vid}-{r.getrandbits(24)}"
            created: float | None = T0 - r.random() * 9e6 if r.random() < 0.5 else None
            keen = r.random()
            for day in range(self.days):
                if r.random() >= keen:
                    continue
                t = self.at(day, self.hour())
                ip = home if r.random() < 0.7 else self.ip()
                if created is None:
                    created = t - r.uniform(20, 300)
                for nominee in favourites:
                    self.look(nominee, t)
                    self.vote("organic", vid, nominee, t, ip, device, ua, created)
                    t += r.uniform(4, 40)
        for nominee in self.rng.sample(self.nominees, 8):  # hospital lunchtime shares
            nat = f"218.{r.getrandbits(8)}.{r.getrandbits(8)}.{r.randrange(1, 255)}"
            share = self.at(r.randrange(self.days), 12 + r.random() / 2)
            for _ in range(r.randint(40, 120)):
                vid = self.voter()
                t = share + r.expovariate(1 / 600)
                self.look(nominee, t)
                self.vote(
                    "organic", vid, nominee, t, nat, f"h{vid}", self.ua(), t - r.uniform(30, 300)
                )
        for _ in range(len(self.rows) * 2):  # browsing without voting
            nominee = r.choices(self.nominees, weights=popularity)[0]
            self.views[(nominee, int(self.at(r.randrange(self.days), self.hour()) // 60))] += 1

    # --- attacks ------------------------------------------------------------------------------

    def attacks(self) -> None:
        r, n = self.rng, self.nominees
        aged = T0 - 86400 * 40
        t = self.at(2, 14.2)  # scripted: one /24, one agent, every 2 s
        for _ in range(400):
            self.vote("scripted", self.voter(), n[5], t, f"103.7.9.{r.randrange(1, 255)}",
                      None, "python-requests/2.31", aged)  # fmt: skip
            t += 2.0
        for k in range(150):  # device farm: 150 identities on 3 phones
            vid = self.voter()
            for day in r.sample(range(self.days), 2):
                self.vote("device_reuse", vid, n[6], self.at(day, self.hour()), self.ip(),
                          f"farm-{k % 3}", UAS[7], aged)  # fmt: skip
        surge = self.at(3, 16.0)  # new identities
        for _ in range(250):
            vid = self.voter()
            made = surge + r.uniform(0, 1200)
            self.vote("new_identity", vid, n[7], made + r.uniform(20, 120), self.ip(),
                      f"n{vid}", self.ua(), made)  # fmt: skip
        for _ in range(200):  # 03:00 burst
            vid = self.voter()
            self.vote("night", vid, n[8], self.at(4, 3.0) + r.uniform(0, 1500), self.ip(),
                      f"x{vid}", self.ua(), aged)  # fmt: skip
        group = [(self.voter(), self.ip(), f"l{k}", self.ua()) for k in range(50)]
        for day in range(self.days):  # lockstep: same 3 nominees, same 2 minutes, daily
            window = self.at(day, r.uniform(9, 22))
            for vid, ip, device, ua in group:
                start = window + r.uniform(0, 100)
                for k, nominee in enumerate(n[9:12]):
                    self.vote("lockstep", vid, nominee, start + 5 * k, ip, device, ua, aged)
        for _ in range(100):  # human farm: own phones, irregular, daily, no page views
            vid, ip, ua = self.voter(), self.ip(), self.ua()
            for day in range(self.days):
                self.vote("human_farm", vid, n[12], self.at(day, 15 + r.uniform(0, 3)), ip,
                          f"f{vid}", ua, aged)  # fmt: skip


def report(gen: Gen, findings: list[Finding]) -> None:
    by_id = {row.id: label for row, label in zip(gen.rows, gen.labels, strict=True)}
    flagged = {v for f in findings for v in f.vote_ids}
    kinds = sorted(set(gen.labels))
    print(f"{'votes':<14}{'total':>8}{'flagged':>9}{'recall':>8}{'precision':>11}")
    for kind in kinds:
        ids = {v for v, label in by_id.items() if label == kind}
        hit = len(ids & flagged)
        if kind == "organic":
            print(f"{kind:<14}{len(ids):>8}{hit:>9}   flagged share {hit / len(ids):.4f}")
            continue
        touching: set[str] = set()
        for f in findings:
            if ids.intersection(f.vote_ids):
                touching.update(f.vote_ids)
        precision = len(touching & ids) / len(touching) if touching else math.nan
        print(f"{kind:<14}{len(ids):>8}{hit:>9}{hit / len(ids):>8.2f}{precision:>11.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--nominees", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--no-views", action="store_true")
    opts = parser.parse_args()

    started = time.perf_counter()
    gen = Gen(opts.seed, opts.days, opts.nominees)
    gen.organic(opts.votes - 3000)
    gen.attacks()
    rows = sorted(gen.rows, key=lambda row: row.id)
    views = None if opts.no_views else dict(gen.views)
    print(
        f"generated {len(rows)} votes from {gen.next_voter - 1} voters, "
        f"{sum(gen.views.values())} page views over {opts.days} days in "
        f"{time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    findings, stages = timed_scan(rows, views=views, tz_offset_hours=8.0)
    seconds = time.perf_counter() - started
    print(f"scan: {seconds:.2f} s, {len(rows) / seconds:,.0f} votes/s, {len(findings)} findings")
    print("  stages: " + ", ".join(f"{name} {s:.2f} s" for name, s in stages.items()))
    per_rule = Counter((f.rule, f.severity) for f in findings)
    for rule in RULES:
        counts = {s: per_rule[(rule, s)] for s in ("high", "medium", "low") if per_rule[(rule, s)]}
        print(f"  {rule:<22} {sum(counts.values()):>4}  {counts}")
    report(gen, findings)


if __name__ == "__main__":
    main()
