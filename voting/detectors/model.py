"""The contract: vote rows in, findings out, rule ids and their default thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RULES = (
    "address_concentration",
    "device_reuse",
    "machine_rhythm",
    "new_identity_surge",
    "night_burst",
    "lockstep_group",
    "install_reuse",
    "address_hopping",
    "covote_group",
    "proxy_origin",
    "share_jump",
)

SEVERITIES = ("high", "medium", "low")  # flags a committee acts on
WATCH = "watch"  # 观察: a weak observation, listed apart, never confirmed or invalidated
TIERS = (*SEVERITIES, WATCH)


@dataclass(frozen=True, slots=True)
class VoteRow:
    """One stored vote, as the scan job reads it from the ledger table."""

    id: str
    voter_id: int
    nominee: str
    category: str
    at: float  # epoch seconds
    ip: str
    device: str | None
    user_agent: str | None
    voter_created_at: float | None  # epoch seconds
    status: str  # valid | pending | invalid


@dataclass(frozen=True)
class Finding:
    """One flag for the committee: what, how sure, exactly which votes, why (in Chinese)."""

    rule: str
    nominee: str | None
    score: float
    severity: str
    vote_ids: tuple[str, ...]
    evidence: dict[str, Any]
    explanation: str


# Every rule shares the score thresholds: below ``report_score`` nothing is reported; from there
# to ``low_score`` a finding is a 观察 (watch) note, not a flag; ``low_score``, ``medium_score``
# and ``high_score`` set the severity of a flag. ``enabled`` 0 switches a rule off.
# ``view_leniency``: votes that page views can account for = leniency × views in the window ÷ the
# nominee's usual views per vote (views counted from ``view_lead_seconds`` before the window).
_COMMON = {
    "enabled": 1.0,
    "report_score": 0.5,
    "low_score": 0.6,
    "medium_score": 0.65,
    "high_score": 0.8,
}

DEFAULTS: dict[str, dict[str, float]] = {
    # Votes from one IPv4 /24 or IPv6 /64 towards one nominee, in ``window_seconds`` buckets that
    # are "hot" (≥ min_votes/3 votes and ≥ min_lift × what the prefix's usual share of the
    # campaign predicts); hot buckets are merged into a burst. A burst needs min_votes votes from
    # min_voters identities. Concentration alone scores at most ``base_score``; the rest comes
    # from votes page views cannot account for, machine-regular gaps, one user agent, shared
    # devices and brand-new identities.
    "address_concentration": {
        **_COMMON,
        "window_seconds": 300.0,
        "min_votes": 30.0,
        "min_voters": 10.0,
        "min_lift": 5.0,
        "base_score": 0.35,
        "view_leniency": 1.2,
        "view_lead_seconds": 600.0,
    },
    # One device id behind many voter identities (min_voters reported, full_voters = score 1);
    # and one user agent string used by many identities (ua_min_voters) almost only from one
    # prefix (ua_prefix_share) while the campaign at large hardly uses it (ua_campaign_share).
    "device_reuse": {
        **_COMMON,
        "min_voters": 5.0,
        "full_voters": 20.0,
        "ua_min_voters": 20.0,
        "ua_prefix_share": 0.9,
        "ua_campaign_share": 0.02,
    },
    # Streams: each voter; each nominee × prefix; nominee × device; each nominee. A stream is cut
    # where it pauses longer than max_gap_seconds. Chains of votes spaced by one period (± the
    # tolerance: rel_tolerance × period, clamped to min/max_tolerance) of ≥ min_votes, well above
    # what chance gives at that rate (min_excess); or a run whose gaps vary by less than
    # max_robust_cv (robust coefficient of variation: 1.4826·MAD/median) over ≥ min_votes votes.
    "machine_rhythm": {
        **_COMMON,
        "min_votes": 12.0,
        "min_voter_votes": 10.0,
        "min_period_seconds": 0.5,
        "rel_tolerance": 0.03,
        "min_tolerance": 0.25,
        "max_tolerance": 30.0,
        "max_gap_seconds": 900.0,
        "min_excess": 0.7,
        "max_robust_cv": 0.08,
    },
    # Votes cast within fresh_seconds of the voter's creation, towards one nominee, clustered
    # (gaps ≤ burst_gap_seconds): ≥ min_voters identities, ≥ min_lift × the nominee's expected
    # share of the window's fresh votes — the largest of its shares known at burst time (votes
    # outside the burst, before it, page views in it, established voters in it; each known only
    # over min_known votes or views; no flag when none is); page views, prefix concentration and
    # one user agent adjust. A burst with no sign but its timing is only a 观察 (watch) note.
    "new_identity_surge": {
        **_COMMON,
        "fresh_seconds": 900.0,
        "burst_gap_seconds": 300.0,
        "min_voters": 20.0,
        "min_lift": 5.0,
        "min_known": 200.0,
        "base_score": 0.45,
        "view_leniency": 1.2,
        "view_lead_seconds": 600.0,
    },
    # Quiet hours are the local hours whose median share of a day's votes is below quiet_share ×
    # 1/24 (00–06 when fewer than min_days days are known). A nominee's votes in quiet hours,
    # clustered (gaps ≤ burst_gap_seconds), ≥ min_votes and ≥ min_ratio × what its usual daily
    # votes and the campaign's rhythm predict for that span, times how far every other nominee
    # is above the rhythm in that span (at least 1).
    "night_burst": {
        **_COMMON,
        "quiet_share": 0.4,
        "min_days": 3.0,
        "burst_gap_seconds": 600.0,
        "min_votes": 25.0,
        "min_ratio": 5.0,
        "base_score": 0.6,
        "view_leniency": 1.2,
        "view_lead_seconds": 600.0,
    },
    # Votes bucketed by (nominee, 2 × window_seconds) on two grids offset by window_seconds.
    # Voter pairs are counted inside "hot" buckets only (> hot_factor × the nominee's usual
    # votes for such a slot at that hour + hot_margin) of ≤ bucket_cap voters, among voters with
    # ≥ min_events votes (at most max_pairs pairs: the largest buckets are dropped first if the
    # budget runs out); a pair is an edge if it shares ≥ min_pair_shared buckets and ≥
    # pair_lift × what the campaign's daily rhythm predicts. Components of ≥ min_group voters
    # are kept with their events: buckets where ≥ event_share of the group (≥ 4) voted together;
    # members (anyone voting in those events, not only the pairs found) need ≥ min_member_events
    # votes in them and ≥ member_share × the median member's. Full strength needs min_group
    # members, min_events events and min_sessions separate sessions (> 2 h apart).
    "lockstep_group": {
        **_COMMON,
        "window_seconds": 120.0,
        "hot_factor": 1.5,
        "hot_margin": 3.0,
        "min_events": 4.0,
        "min_pair_shared": 5.0,
        "pair_lift": 5.0,
        "bucket_cap": 400.0,
        "max_pairs": 20_000_000.0,
        "min_group": 8.0,
        "min_sessions": 3.0,
        "event_share": 0.3,
        "min_member_events": 3.0,
        "member_share": 0.25,
        "view_leniency": 1.2,
        "view_lead_seconds": 600.0,
    },
    # One agent carrying a WeChat install id (MMWEBID) behind many identities: min_voters
    # reported, full_voters at full strength; votes cast within burst_seconds of another
    # identity's (a controller tapping the rack at once) add to the score.
    "install_reuse": {
        **_COMMON,
        "min_voters": 5.0,
        "full_voters": 20.0,
        "burst_seconds": 1.0,
    },
    # Identities whose two votes hop_seconds or less apart come from different networks,
    # grouped by agent: ≥ min_voters hoppers on one agent (full_voters at full strength).
    "address_hopping": {
        **_COMMON,
        "hop_seconds": 60.0,
        "min_voters": 10.0,
        "full_voters": 30.0,
    },
    # Identities whose sessions (votes ≤ session_gap_seconds apart) cover the same set of
    # min_set..max_set nominees, starting ≤ chain_gap_seconds apart: ≥ min_voters of them, ≥
    # min_lift × what the set's share of all multi-nominee sessions predicts for the window
    # (padded by pad_seconds) and a Poisson tail ≤ max_p. The set's share is what drawing
    # nominees by their popularity in multi-nominee sessions gives (the set's own sessions left
    # out, each count + smoothing). full_voters and full_lift (log scale) score 1; identities
    # repeating the set in another cluster add to it. Of a group that passes, only its rounds
    # are named: the chain cut again where a pause exceeds what core_chance of a session would
    # take by chance (or core_spacing × the chain's median pause; at most chain_gap_seconds),
    # pieces of ≥ core_min identities kept; where agent_share of them share one user agent the
    # others go; what is left must pass the test again (voting/detectors/covote.py).
    "covote_group": {
        **_COMMON,
        "session_gap_seconds": 600.0,
        "min_set": 2.0,
        "max_set": 4.0,
        "chain_gap_seconds": 300.0,
        "pad_seconds": 60.0,
        "min_voters": 8.0,
        "full_voters": 30.0,
        "min_lift": 5.0,
        "full_lift": 500.0,
        "max_p": 1e-4,
        "smoothing": 1.0,
        "core_chance": 0.03,
        "core_spacing": 10.0,
        "core_min": 3.0,
        "agent_share": 0.8,
    },
    # Votes from datacenter or foreign addresses (core.geo.is_proxy_like), by nominee and kind
    # (datacenter, at home or abroad; or foreign lines), in clusters cut at pauses longer than
    # gap_seconds (and the rest as one slow set): identities ≥ min_lift × the kind's share of
    # the other nominees' votes (at least min_base_share) × the nominee's votes within
    # pad_seconds, with a Poisson tail ≤ max_p. watch_voters..min_voters−1 identities are a 观察
    # note; from min_voters a flag, full strength at full_voters, scored up by datacenter share,
    # one network owner and few /24s; page views can account for foreign (never datacenter) votes.
    "proxy_origin": {
        **_COMMON,
        "watch_voters": 2.0,
        "min_voters": 5.0,
        "full_voters": 30.0,
        "gap_seconds": 3600.0,
        "pad_seconds": 3600.0,
        "min_base_share": 0.002,
        "min_lift": 5.0,
        "max_p": 1e-3,
        "view_leniency": 1.2,
        "view_lead_seconds": 600.0,
    },
    # A nominee's votes per window_seconds and per long_window_seconds (each on two grids
    # offset by half) against what its page views predict (its usual votes per view, leaving
    # out hours far above its median) — or, where views are missing, its usual odds against the
    # rest of its category, then scoring at most no_views_max_score (below the report line by
    # default: a real share of the page looks the same). A window jumps with ≥ min_votes, ≥
    # min_excess above the prediction, ≥ min_ratio × it and z ≥ min_z. The flag covers the
    # window's votes by voters who had not voted for the nominee before it (outside raised
    # windows); a jump made of returning voters is not flagged.
    "share_jump": {
        **_COMMON,
        "window_seconds": 3600.0,
        "long_window_seconds": 10800.0,
        "min_votes": 20.0,
        "min_excess": 15.0,
        "min_ratio": 3.0,
        "min_z": 4.0,
        "no_views_max_score": 0.45,
        "view_lead_seconds": 600.0,
    },
}


def merged_settings(
    settings: Mapping[str, Mapping[str, float]] | None,
) -> dict[str, dict[str, float]]:
    """DEFAULTS with ``settings`` laid over them; an unknown rule or key is a ValueError."""
    merged = {rule: dict(values) for rule, values in DEFAULTS.items()}
    for rule, values in (settings or {}).items():
        if rule not in merged:
            raise ValueError(f"unknown detector rule: {rule!r}")
        for key, value in values.items():
            if key not in merged[rule]:
                raise ValueError(f"unknown setting {key!r} for rule {rule!r}")
            merged[rule][key] = float(value)
    return merged


def severity_of(score: float, cfg: Mapping[str, float]) -> str:
    if score >= cfg["high_score"]:
        return "high"
    if score >= cfg["medium_score"]:
        return "medium"
    if score >= cfg["low_score"]:
        return "low"
    return WATCH
