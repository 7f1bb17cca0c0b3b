"""covote_group's membership: a chain of sessions voting the same nominee set is the group's
evidence, but only the sessions tied to its rounds are named. In a campaign minutes old every
session is in every window, so an honest voter who happens to pick exactly the farm's nominees,
away from the farm's rounds, must not be named with it; the farm's rounds (each a new cohort of
workers, as the daily quota makes them) and, days apart, its repeating workers stay named."""

from __future__ import annotations

import math
import random

from core.clock import utcnow
from voting.detectors import DEFAULTS, Finding, VoteRow, covote
from voting.detectors.prep import Campaign

NOMINEES = [f"N{i:02d}" for i in range(20)]
FARM_SET = ("N03", "N05")  # just below the favourites: a pair chance brings now and then
POPULARITY = [1 / (k + 1) ** 0.8 for k in range(len(NOMINEES))]


class Mix:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t0 = float(math.floor(utcnow().timestamp()) - 86400 * 4)
        self.votes: list[VoteRow] = []
        self.labels: dict[str, str] = {}
        self.voters = 0

    def ip(self) -> str:
        r = self.rng
        head = r.choice((117, 223, 113, 180))
        return f"{head}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def session(self, label: str, nominees: list[str], t: float, voter: int | None = None) -> None:
        if voter is None:
            self.voters += 1
            voter = self.voters
        ip, ua = self.ip(), f"agent-{self.rng.randrange(40)}"
        for nominee in nominees:
            vid = f"v{len(self.votes):06d}"
            at = self.t0 + t
            self.votes.append(VoteRow(vid, voter, nominee, "A", at, ip, None, ua, at - 30, "valid"))
            self.labels[vid] = label
            t += self.rng.uniform(3, 15)

    def organic(self, count: int, start: float, end: float) -> None:
        """Voters for one to three favourites by popularity; never exactly the farm's set."""
        for _ in range(count):
            size = self.rng.choice((1, 1, 2, 3))
            picks: list[str] = []
            while len(picks) < size:
                pick = self.rng.choices(NOMINEES, weights=POPULARITY)[0]
                if pick not in picks:
                    picks.append(pick)
            if tuple(sorted(picks)) == FARM_SET:
                continue
            self.session("organic", picks, self.rng.uniform(start, end))

    def round(self, post: float, workers: list[int], mean: float, cap: float) -> None:
        for voter in workers:
            t = post + min(self.rng.expovariate(1 / mean), cap)
            self.session("farm", self.rng.sample(FARM_SET, len(FARM_SET)), t, voter)

    def new_workers(self, count: int) -> list[int]:
        self.voters += count
        return list(range(self.voters - count + 1, self.voters + 1))

    def named(self) -> dict[str, set[str]]:
        findings = covote.detect(Campaign(self.votes, None, 8.0), DEFAULTS["covote_group"])
        return _by_label(findings, self.labels)


def _by_label(findings: list[Finding], labels: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        for v in f.vote_ids:
            out.setdefault(labels[v], set()).add(v)
    return out


def _votes(labels: dict[str, str], label: str) -> set[str]:
    return {v for v, lab in labels.items() if lab == label}


def test_young_campaign_names_the_rounds_not_a_lone_coincident_voter() -> None:
    """Five minutes of traffic: three rounds of ten new workers each on the farm's two
    nominees, and two honest voters who pick exactly those two between the rounds."""
    mix = Mix(seed=3)
    mix.organic(900, 0, 290)
    for post in (20, 110, 200):
        mix.round(post, mix.new_workers(10), mean=8, cap=30)
    mix.session("honest", list(FARM_SET), 80)
    mix.session("honest", list(FARM_SET), 170)
    named = mix.named()
    assert named.get("farm") == _votes(mix.labels, "farm")  # every round, every worker
    assert not named.get("honest")  # the two coincident sessions are not named with them
    assert not named.get("organic")


def test_a_farm_repeating_over_evenings_keeps_its_late_workers() -> None:
    """Days apart the background is thin: the same workers round after round, stragglers
    minutes after the others, are all named; an honest voter hours away is not."""
    mix = Mix(seed=5)
    day = 86400.0
    for d in range(3):
        mix.organic(700, d * day + 8 * 3600, d * day + 23 * 3600)
    workers = mix.new_workers(24)
    for d in range(3):
        mix.round(d * day + 20 * 3600, workers, mean=240, cap=1500)
    mix.session("honest", list(FARM_SET), day + 12 * 3600)
    named = mix.named()
    farm = _votes(mix.labels, "farm")
    assert len(named.get("farm", set())) >= 0.9 * len(farm)
    assert not named.get("honest")
    assert not named.get("organic")
