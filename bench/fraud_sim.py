"""Traffic simulator and detector evaluation.

    .venv/bin/python -m bench.fraud_sim [--organic-voters 4000] [--days 3] [--strength 1.0]

Organic voters with a daily rhythm (lunch and evening peaks, quiet nights), social spread
(nominees' pages shared in bursts: a hospital's colleagues voting at lunchtime from the
hospital's one NAT address, on their own phones, with page views rising alongside), plus each
attack at a configurable strength:

- scripted: one /24, many identities, one user agent, machine-regular intervals;
- device_reuse: many identities on a few devices;
- new_identity: a surge of identities created minutes before they vote;
- night: a 03:00 burst unlike the campaign's rhythm;
- lockstep: a group voting for the same nominees in the same short windows, varied addresses;
- human_farm: paid people on their own phones and networks, irregular timing, concentrated
  on one nominee with no page views behind it.

Every vote goes through the real vote endpoint (the Flask app, the Lua script, Redis) with the
client address in X-Forwarded-For (ZUIMEI_TRUSTED_PROXIES=1); a simulated clock lets days pass in
seconds. Voter identities are minted with the app's own signing, as the WeChat exchange would.
Then the ledger is drained, a fraud scan runs, and every flag is treated as confirmed: the
command prints precision and recall per attack and the false-positive rate on organic votes.
Hard rate limits and the per-address captcha are off, so the detectors are measured alone.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import cleanup, local_midnight

ROOT = Path(__file__).resolve().parent.parent
UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) MicroMessenger/8.0.{}",
    "Mozilla/5.0 (Linux; Android 13; V2{} Build/TP1A) MicroMessenger/8.0.47",
    "Mozilla/5.0 (Linux; Android 12; PCLM{} Build/SKQ1) MicroMessenger/8.0.44",
    "Mozilla/5.0 (Linux; Android 11; M20{} Build/RKQ1) MicroMessenger/8.0.42",
]


class Sim:
    def __init__(self, seed: int, days: int, strength: float) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.strength = strength
        self.start = local_midnight(days_ago=days + 1).astimezone(UTC)  # 00:00 Shanghai
        self.events: list[tuple[float, str, dict[str, Any]]] = []  # (t, label, vote spec)
        self.views: list[tuple[float, str]] = []
        self.next_voter = 1
        self.voter_created: dict[int, float] = {}

    def voter(self, created: float | None = None) -> int:
        vid = self.next_voter
        self.next_voter += 1
        self.voter_created[vid] = created if created is not None else self.start.timestamp()
        return vid

    def t(self, day: int, hour: float) -> float:
        return self.start.timestamp() + day * 86400 + hour * 3600

    def rhythm_hour(self) -> float:
        """A local hour drawn from a daily rhythm: lunch and evening peaks, quiet nights."""
        weights = [
            0.2,
            0.1,
            0.05,
            0.05,
            0.05,
            0.1,
            0.4,
            1.0,
            1.5,
            1.5,
            1.4,
            1.8,
            3.0,
            2.6,
            1.6,
            1.4,
            1.4,
            1.6,
            2.0,
            2.8,
            3.2,
            3.0,
            2.0,
            0.8,
        ]
        hour = self.rng.choices(range(24), weights=weights)[0]
        return hour + self.rng.random()

    def mobile_ip(self) -> str:
        return (
            f"{self.rng.choice([36, 39, 42, 58, 112, 117, 120, 183, 223])}."
            f"{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        )

    def ua(self) -> str:
        return self.rng.choice(UAS).format(self.rng.randrange(10, 99))

    def add(
        self, t: float, label: str, voter: int, nominee: str, ip: str, device: str, ua: str
    ) -> None:
        self.events.append(
            (t, label, {"voter": voter, "nominee": nominee, "ip": ip, "device": device, "ua": ua})
        )

    # --- organic ----------------------------------------------------------------------------

    def organic(self, voters: int, nominees: list[str]) -> None:
        popularity = [1 / (i + 1) ** 0.8 for i in range(len(nominees))]
        for _ in range(voters):
            vid = self.voter()
            favourite = self.rng.choices(nominees, weights=popularity)[0]
            device, ua, home_ip = f"dev-{vid}", self.ua(), self.mobile_ip()
            for day in range(self.days):
                if self.rng.random() < 0.55:
                    t = self.t(day, self.rhythm_hour())
                    ip = home_ip if self.rng.random() < 0.6 else self.mobile_ip()
                    self.add(t, "organic", vid, favourite, ip, device, ua)
                    for _ in range(self.rng.randint(2, 6)):
                        self.views.append((t - self.rng.uniform(0, 600), favourite))
        # Social spread: a hospital shares a colleague's page at lunchtime; 40–90 colleagues vote
        # within half an hour through the hospital's one NAT address, on their own phones.
        for nominee in self.rng.sample(nominees, k=min(6, len(nominees))):
            day = self.rng.randrange(self.days)
            octets = (self.rng.randrange(256), self.rng.randrange(256), self.rng.randrange(1, 255))
            nat = "218.{}.{}.{}".format(*octets)
            share = self.t(day, 12 + self.rng.random() * 0.5)
            for _ in range(self.rng.randint(40, 90)):
                vid = self.voter()
                t = share + self.rng.expovariate(1 / 600)
                self.add(t, "organic", vid, nominee, nat, f"dev-{vid}", self.ua())
                for _ in range(self.rng.randint(2, 5)):
                    self.views.append((t - self.rng.uniform(0, 300), nominee))

    # --- attacks ----------------------------------------------------------------------------

    def n(self, base: int) -> int:
        return max(1, int(base * self.strength))

    def scripted(self, nominee: str) -> None:
        prefix = f"103.{self.rng.randrange(256)}.{self.rng.randrange(256)}"
        t = self.t(1, 14.2)
        for _ in range(self.n(300)):
            vid = self.voter()
            self.add(
                t,
                "scripted",
                vid,
                nominee,
                f"{prefix}.{self.rng.randrange(1, 255)}",
                f"script-{vid}",
                "python-requests/2.31",
            )
            t += 2.0

    def device_reuse(self, nominee: str) -> None:
        devices = [f"farm-phone-{i}" for i in range(3)]
        for i in range(self.n(120)):
            vid = self.voter()
            t = self.t(self.rng.randrange(self.days), self.rhythm_hour())
            self.add(t, "device_reuse", vid, nominee, self.mobile_ip(), devices[i % 3], self.ua())

    def new_identity(self, nominee: str) -> None:
        surge = self.t(2, 16.0)
        for _ in range(self.n(200)):
            created = surge + self.rng.uniform(0, 1200)
            vid = self.voter(created=created)
            self.add(
                created + self.rng.uniform(20, 120),
                "new_identity",
                vid,
                nominee,
                self.mobile_ip(),
                f"dev-{vid}",
                self.ua(),
            )

    def night(self, nominee: str) -> None:
        burst = self.t(1, 3.0)
        for _ in range(self.n(150)):
            vid = self.voter()
            self.add(
                burst + self.rng.uniform(0, 1500),
                "night",
                vid,
                nominee,
                self.mobile_ip(),
                f"dev-{vid}",
                self.ua(),
            )

    def lockstep(self, targets: list[str]) -> None:
        group = [self.voter() for _ in range(self.n(40))]
        profile = {v: (self.mobile_ip(), f"dev-{v}", self.ua()) for v in group}
        for day in range(self.days):
            for slot in (10.0, 20.5):
                window = self.t(day, slot + self.rng.random())
                for v in group:
                    ip, device, ua = profile[v]
                    for k, nominee in enumerate(targets):
                        self.add(
                            window + self.rng.uniform(0, 100) + k * 5,
                            "lockstep",
                            v,
                            nominee,
                            ip,
                            device,
                            ua,
                        )

    def human_farm(self, nominee: str) -> None:
        for _ in range(self.n(80)):
            vid = self.voter()
            ip, device, ua = self.mobile_ip(), f"dev-{vid}", self.ua()
            for day in range(self.days):
                t = self.t(day, 15 + self.rng.uniform(0, 3))
                self.add(t, "human_farm", vid, nominee, ip, device, ua)


def _prepare(instance: Path, start: datetime, days: int) -> tuple[Any, list[str]]:
    from bench.common import voting_campaign

    return voting_campaign(
        instance,
        slug="sim",
        nominees=20,
        rules={
            "votes_per_day": 5,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": 0,
            "velocity_factor": 0,
        },
        voting_start=start,
        voting_end=start + timedelta(days=days),
        test_config={"TRUSTED_PROXIES": 1, "VOTE_IP_PER_MINUTE": 0, "VOTE_VOTER_PER_MINUTE": 0},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organic-voters", type=int, default=4000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    opts = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="zm-sim-"))
    sim = Sim(opts.seed, opts.days, opts.strength)
    app, numbers = _prepare(instance, sim.start, opts.days)
    sim.organic(opts.organic_voters, numbers)
    sim.scripted(numbers[5])
    sim.device_reuse(numbers[6])
    sim.new_identity(numbers[7])
    sim.night(numbers[8])
    sim.lockstep(numbers[9:12])
    sim.human_farm(numbers[12])

    from core.auth import issue_token
    from core.extensions import db
    from voting import cast, fraud, jobs, services

    clock: dict[str, float] = {"t": sim.start.timestamp()}
    cast.clock = lambda: datetime.fromtimestamp(clock["t"], UTC)
    labels: dict[str, str] = {}
    refused: defaultdict[str, int] = defaultdict(int)
    timeline = sorted(
        [(t, "vote", label, spec) for t, label, spec in sim.events]
        + [(t, "view", nominee, None) for t, nominee in sim.views],
        key=lambda e: e[0],
    )
    client = app.test_client()
    started = time.perf_counter()
    with app.app_context():
        tokens = {
            vid: issue_token(
                "voter", {"sub": vid, "p": "wechat", "c": int(created * 1000)}, 30 * 86400
            ).token
            for vid, created in sim.voter_created.items()
        }
    for t, kind, label, spec in timeline:
        clock["t"] = t
        if kind == "view":
            client.get(f"/api/v1/campaigns/sim/nominees/{label}").close()
            continue
        response = client.post(
            "/api/v1/campaigns/sim/votes",
            json={"nominee": spec["nominee"]},
            headers={
                "Authorization": f"Bearer {tokens[spec['voter']]}",
                "X-Forwarded-For": spec["ip"],
                "User-Agent": spec["ua"],
                "X-Device-Fingerprint": spec["device"],
            },
        )
        if response.status_code == 201:
            labels[response.json["vote_id"]] = label
        else:
            refused[response.json["error"]["code"]] += 1
    sent = time.perf_counter() - started

    with app.app_context():
        services.drain_campaign("sim")
        from campaigns.models import Campaign

        campaign = db.session.query(Campaign).filter_by(slug="sim").one()
        scan = fraud.start_scan(campaign, "sim")
        db.session.commit()
        scan_started = time.perf_counter()
        jobs.fraud_scan(scan.id)
        scan_seconds = time.perf_counter() - scan_started
        flags = fraud.list_flags(campaign)
        flagged: set[str] = set()
        by_rule: defaultdict[str, int] = defaultdict(int)
        from voting.models import FlagVote

        for flag in flags:
            by_rule[f"{flag.rule}/{flag.severity}"] += 1
            flagged |= set(
                db.session.scalars(db.select(FlagVote.vote_id).where(FlagVote.flag_id == flag.id))
            )
    print(
        f"sent {len(labels) + sum(refused.values())} votes and {len(sim.views)} page views "
        f"through the API in {sent:.1f} s; accepted {len(labels)}; refused {dict(refused)}"
    )
    print(f"scan: {scan_seconds:.2f} s; flags: {dict(sorted(by_rule.items()))}")
    kinds = sorted(set(labels.values()))
    print(f"{'votes':<14}{'total':>7}{'flagged':>9}{'recall':>8}{'precision':>11}")
    for kind in kinds:
        ids = {v for v, label in labels.items() if label == kind}
        hit = len(ids & flagged)
        if kind == "organic":
            print(f"{kind:<14}{len(ids):>7}{hit:>9}   false-positive rate {hit / len(ids):.4f}")
            continue
        # Precision for an attack: of the votes in the flags that touch it, how many are attack.
        touching = set()
        for flag in flags:
            with app.app_context():
                members = set(
                    db.session.scalars(
                        db.select(FlagVote.vote_id).where(FlagVote.flag_id == flag.id)
                    )
                )
            if members & ids:
                touching |= members
        precision = len(touching & ids) / len(touching) if touching else math.nan
        print(f"{kind:<14}{len(ids):>7}{hit:>9}{hit / len(ids):>8.2f}{precision:>11.2f}")
    all_attack = {v for v, label in labels.items() if label != "organic"}
    overall = len(flagged & all_attack) / len(flagged) if flagged else math.nan
    print(f"overall precision of flagged votes: {overall:.3f}")
    cleanup(instance)


if __name__ == "__main__":
    main()
