"""Traffic scenarios for the fraud evaluation (issue #15 item 5), one module per scenario.

Each module has ``NAME``, ``ATTACK`` (ground truth for all its votes) and ``generate(ctx)``,
returning a timed list of :class:`~bench.fraud_scenarios.base.Attempt`: time offset, identity
key, client address, agent, device, nominee, whether the page was opened first, cookies kept or
not. They were written before any detector tuning and describe clients, not detectors.

:func:`build_mix` generates the chosen scenarios into one stream and keeps organic votes at 60 %
or more of it (whole attacking identities are left out until they are), so a precision figure
is never bought by the mix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from types import ModuleType

from bench.fraud_scenarios import (
    aged_accounts,
    carrier_nat,
    evening_peak,
    hospital_wifi,
    human_farm,
    launch,
    phone_farm,
    rotating_proxies,
    scripted_subnet,
    village_evening,
)
from bench.fraud_scenarios.base import Attempt, Context

SCENARIOS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        launch,
        carrier_nat,
        hospital_wifi,
        village_evening,
        evening_peak,
        scripted_subnet,
        rotating_proxies,
        human_farm,
        phone_farm,
        aged_accounts,
    )
}
ORGANIC = tuple(name for name, module in SCENARIOS.items() if not module.ATTACK)
ATTACKS = tuple(name for name, module in SCENARIOS.items() if module.ATTACK)
MIN_ORGANIC_SHARE = 0.6

__all__ = ["ATTACKS", "MIN_ORGANIC_SHARE", "ORGANIC", "SCENARIOS", "Attempt", "Context"]


class MixError(ValueError):
    pass


def votes_by_scenario(attempts: Iterable[Attempt]) -> Counter[str]:
    return Counter(a.scenario for a in attempts if not a.view_only)


def build_mix(ctx: Context, names: Iterable[str] | None = None) -> list[Attempt]:
    """The chosen scenarios (all by default) as one stream ordered by time, with organic votes
    at least :data:`MIN_ORGANIC_SHARE` of all votes."""
    chosen = list(dict.fromkeys(names or SCENARIOS))
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise MixError(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    if not any(name in ORGANIC for name in chosen):
        raise MixError("a mix needs at least one organic scenario")
    attempts: list[Attempt] = []
    for name in chosen:
        attempts += SCENARIOS[name].generate(ctx)
    return sorted(_keep_organic_share(ctx, attempts), key=lambda a: a.t)


def _keep_organic_share(ctx: Context, attempts: list[Attempt]) -> list[Attempt]:
    organic = sum(1 for a in attempts if not a.attack and not a.view_only)
    allowed = int(organic * (1 - MIN_ORGANIC_SHARE) / MIN_ORGANIC_SHARE)
    attack_votes = Counter(a.identity for a in attempts if a.attack and not a.view_only)
    total = sum(attack_votes.values())
    if total <= allowed:
        return attempts
    # Leave out whole identities, evenly across the attacks, until the share holds.
    order = sorted(attack_votes)
    ctx.rng.shuffle(order)
    dropped: set[str] = set()
    for identity in order:
        if total <= allowed:
            break
        dropped.add(identity)
        total -= attack_votes[identity]
    return [a for a in attempts if a.identity not in dropped]


def organic_share(attempts: Iterable[Attempt]) -> float:
    counts = Counter(a.attack for a in attempts if not a.view_only)
    votes = counts[True] + counts[False]
    return counts[False] / votes if votes else 0.0
