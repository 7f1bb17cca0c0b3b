"""``scan``: run every enabled rule over one campaign's votes and collect the findings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from . import (
    address,
    cohort,
    covote,
    devices,
    identities,
    lockstep,
    night,
    origin,
    rhythm,
    share,
)
from .model import RULES, Finding, VoteRow, merged_settings
from .prep import Campaign

DETECTORS: dict[str, Callable[[Campaign, Mapping[str, float]], list[Finding]]] = {
    "address_concentration": address.detect,
    "device_reuse": devices.detect,
    "machine_rhythm": rhythm.detect,
    "new_identity_surge": identities.detect,
    "night_burst": night.detect,
    "lockstep_group": lockstep.detect,
    "install_reuse": cohort.detect_installs,
    "address_hopping": cohort.detect_hops,
    "covote_group": covote.detect,
    "proxy_origin": origin.detect,
}
assert (*DETECTORS, "share_jump") == RULES


def scan(
    votes: Sequence[VoteRow],
    *,
    views: Mapping[tuple[str, int], int] | None = None,
    settings: Mapping[str, Mapping[str, float]] | None = None,
    tz_offset_hours: float = 8.0,
) -> list[Finding]:
    """Every rule's findings over ``votes`` (invalid votes are left out: already decided),
    highest score first. ``views``: public page views per (nominee, epoch minute).
    ``settings`` override DEFAULTS per rule; ``tz_offset_hours`` places the campaign's nights."""
    return timed_scan(votes, views=views, settings=settings, tz_offset_hours=tz_offset_hours)[0]


def timed_scan(
    votes: Sequence[VoteRow],
    *,
    views: Mapping[tuple[str, int], int] | None = None,
    settings: Mapping[str, Mapping[str, float]] | None = None,
    tz_offset_hours: float = 8.0,
) -> tuple[list[Finding], dict[str, float]]:
    """``scan`` plus the seconds each stage took (for the benchmark)."""
    cfg = merged_settings(settings)
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    campaign = Campaign(votes, views, tz_offset_hours)
    timings["prepare"] = time.perf_counter() - clock
    if not campaign.n:
        return [], timings
    findings: list[Finding] = []
    for rule, detect in DETECTORS.items():
        if cfg[rule]["enabled"]:
            clock = time.perf_counter()
            findings.extend(detect(campaign, cfg[rule]))
            timings[rule] = time.perf_counter() - clock
    if cfg["share_jump"]["enabled"]:
        # the catch-all runs last, on the votes no other rule explains
        clock = time.perf_counter()
        flagged = {v for f in findings for v in f.vote_ids}
        claimed = {i for i, v in enumerate(campaign.ids) if v in flagged} if flagged else set()
        findings.extend(share.detect(campaign, cfg["share_jump"], claimed))
        timings["share_jump"] = time.perf_counter() - clock
    findings.sort(key=lambda f: (-f.score, f.rule, f.nominee or "", f.vote_ids[:1]))
    return findings, timings
