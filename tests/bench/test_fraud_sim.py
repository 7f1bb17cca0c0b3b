"""The fraud evaluation (bench/fraud_sim.py, bench/fraud_scenarios/): the scenarios' ground truth
and the mix's organic share, the scoring's arithmetic on a hand-made case, and both modes run end
to end on a tiny mix, their reports checked for structure and arithmetic (not for detector
quality: those are bench figures, docs/fraud-evaluation.md).

The runs are subprocesses: they make an instance of their own (and, in real time, start gunicorn
and an RQ worker)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.fraud_scenarios import (
    ATTACKS,
    MIN_ORGANIC_SHARE,
    ORGANIC,
    SCENARIOS,
    Attempt,
    Context,
    build_mix,
    organic_share,
    votes_by_scenario,
)
from bench.fraud_scenarios.base import DATACENTER, MOBILE_NAT
from bench.fraud_scenarios.score import score

ROOT = Path(__file__).resolve().parent.parent.parent


def test_ten_scenarios_each_a_module_with_its_ground_truth() -> None:
    assert set(ORGANIC) == {
        "launch",
        "carrier_nat",
        "hospital_wifi",
        "village_evening",
        "evening_peak",
    }
    assert set(ATTACKS) == {
        "scripted_subnet",
        "rotating_proxies",
        "human_farm",
        "phone_farm",
        "aged_accounts",
    }
    for realtime in (True, False):
        ctx = Context.make(3, 20, realtime=realtime, days=3, span=300)
        for name, module in SCENARIOS.items():
            attempts = module.generate(ctx)
            votes = [a for a in attempts if not a.view_only]
            assert votes, name
            assert {a.scenario for a in attempts} == {name}
            assert {a.attack for a in attempts} == {module.ATTACK}
            assert all(0 <= a.t < ctx.span for a in attempts), name
            assert all(0 <= a.nominee < 20 for a in attempts), name
            # Nobody votes twice for one nominee on one campaign day, nor past the daily quota.
            per_day = Counter((a.identity, int(a.t // 86400)) for a in votes)
            pairs = Counter((a.identity, a.nominee, int(a.t // 86400)) for a in votes)
            assert max(per_day.values()) <= ctx.votes_per_day, name
            assert max(pairs.values()) == 1, name


def test_scenarios_show_what_they_say() -> None:
    ctx = Context.make(5, 20, realtime=True, span=300)
    scripted = SCENARIOS["scripted_subnet"].generate(ctx)
    assert len({a.address.rsplit(".", 1)[0] for a in scripted}) == 1  # one /24
    assert len({a.agent for a in scripted}) == 1
    gaps = [b.t - a.t for a, b in itertools.pairwise(scripted)]
    assert max(gaps) - min(gaps) < 0.02  # machine-regular
    proxies = SCENARIOS["rotating_proxies"].generate(ctx)
    assert all(a.address.rsplit(".", 2)[0] in DATACENTER for a in proxies)
    assert len({a.agent for a in proxies}) == 1
    farm = SCENARIOS["phone_farm"].generate(ctx)
    assert len({a.agent for a in farm}) == 1
    assert len({a.identity for a in farm}) > len({a.device for a in farm})
    nat = SCENARIOS["carrier_nat"].generate(ctx)
    votes = [a for a in nat if not a.view_only]
    assert len({a.address for a in votes}) * 10 < len({a.identity for a in votes})
    assert all(a.address.rsplit(".", 2)[0] in MOBILE_NAT for a in votes)
    hospital = SCENARIOS["hospital_wifi"].generate(ctx)
    assert len({a.address for a in hospital}) == 1
    _, count = Counter(a.nominee for a in hospital).most_common(1)[0]
    assert count / len(hospital) > 0.6 and len({a.nominee for a in hospital}) > 1
    aged = SCENARIOS["aged_accounts"].generate(ctx)
    assert all((a.account_age_days or 0) >= 60 for a in aged)
    human = SCENARIOS["human_farm"].generate(ctx)
    assert len({a.nominee for a in human}) == 3
    launch = [a for a in SCENARIOS["launch"].generate(ctx) if not a.view_only]
    early = sum(1 for a in launch if a.t < 120)
    assert early > len(launch) / 2 and len({a.nominee for a in launch}) == 20


def test_every_mix_keeps_organic_votes_at_sixty_percent_or_more() -> None:
    for names in (None, ["evening_peak", *ATTACKS], ["hospital_wifi", "phone_farm"]):
        for realtime in (True, False):
            ctx = Context.make(11, 20, realtime=realtime, days=3, scale=1.0)
            mix = build_mix(ctx, names)
            assert organic_share(mix) >= MIN_ORGANIC_SHARE
            assert [a.t for a in mix] == sorted(a.t for a in mix)
    # Attacks are cut by whole identities: a scripted attack of 120 votes against 100 organic
    # votes keeps at most 66 of them, and each kept identity keeps all its votes.
    ctx = Context.make(11, 20, realtime=True, scale=1.0)
    mix = build_mix(ctx, ["hospital_wifi", "aged_accounts"])
    counts = votes_by_scenario(mix)
    assert counts["aged_accounts"] <= counts["hospital_wifi"] * 0.4 / 0.6 + 1e-9
    per_identity = Counter(a.identity for a in mix if a.attack)
    assert set(per_identity.values()) == {2}
    with pytest.raises(ValueError, match="organic"):
        build_mix(Context.make(1, 20, realtime=True), ["scripted_subnet"])
    with pytest.raises(ValueError, match="unknown"):
        build_mix(Context.make(1, 20, realtime=True), ["launch", "nope"])


def _attempt(scenario: str, attack: bool, view_only: bool = False) -> Attempt:
    return Attempt(0.0, scenario, attack, "id", "1.2.3.4", "ua", "d", 0, True, view_only=view_only)


def test_scoring_counts_each_vote_once() -> None:
    attempts = [
        *[_attempt("launch", False) for _ in range(6)],
        _attempt("launch", False, view_only=True),
        *[_attempt("scripted_subnet", True) for _ in range(4)],
    ]
    outcomes: list[dict[str, Any] | None] = [
        {"vote_id": "o1", "status": "valid"},  # named by a low flag
        {"vote_id": "o2", "status": "pending"},  # held and named by a medium flag: once
        {"vote_id": "o3", "status": "valid"},
        {"refused": "challenge_required"},
        {"error": "HTTP 503"},  # left out of the rate
        {"vote_id": "o4", "status": "valid"},  # named only by a watch flag: not counted
        None,
        {"vote_id": "a1", "status": "valid"},  # high
        {"vote_id": "a2", "status": "valid"},  # low
        {"refused": "rate_limited"},
        {"vote_id": "a3", "status": "valid"},
    ]
    flags = [
        {"rule": "r", "severity": "low", "vote_ids": {"o1", "a2"}},
        {"rule": "r", "severity": "medium", "vote_ids": {"o2"}},
        {"rule": "r", "severity": "high", "vote_ids": {"a1"}},
        {"rule": "w", "severity": "watch", "vote_ids": {"o4", "a3"}},
    ]
    report = score(attempts, outcomes, flags, mode="test")
    launch, scripted = report["scenarios"]["launch"], report["scenarios"]["scripted_subnet"]
    assert launch["error_kinds"] == {"HTTP 503": 1}
    assert launch | {"refusals": None, "by_flag": None, "error_kinds": None} == {
        "kind": "organic",
        "votes": 6,
        "errors": 1,
        "refused": 1,
        "held": 1,
        "flagged": 2,
        "flagged_mh": 1,
        "caught": 3,
        "caught_mh": 2,
        "rate": 0.6,
        "rate_mh": 0.4,
        "refusals": None,
        "by_flag": None,
        "error_kinds": None,
    }
    assert launch["refusals"] == {"challenge_required": 1}
    assert launch["by_flag"] == {"r/low": 1, "r/medium": 1, "w/watch": 1}
    assert scripted["by_flag"] == {"r/high": 1, "r/low": 1, "w/watch": 1}
    assert (scripted["caught"], scripted["caught_mh"], scripted["rate"]) == (3, 2, 0.75)
    assert report["precision"] == round(3 / 6, 4)
    assert report["precision_mh"] == 0.5
    assert report["organic_share"] == 0.6
    assert report["uncounted_flags"] == 1


def _run(args: list[str], tmp_path: Path, timeout: float) -> tuple[dict[str, Any], str]:
    out = tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fraud_sim", *args, "--json", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),  # a moved clock (docs/testing.md) goes along
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # it stops its servers and drops its data
        stdout, stderr = process.communicate(timeout=60)
        pytest.fail(f"bench.fraud_sim {args} took over {timeout} s:\n{stdout}{stderr[-6000:]}")
    assert process.returncode == 0, stdout[-3000:] + stderr[-6000:]
    return json.loads(out.read_text()), stdout


def _check_report(report: dict[str, Any], stdout: str, ctx: Context) -> None:
    expected = votes_by_scenario(build_mix(ctx))  # the same seed makes the same mix
    rows = report["scenarios"]
    assert set(rows) == set(SCENARIOS)
    assert {name: row["votes"] for name, row in rows.items()} == dict(expected)
    caught = caught_attack = caught_mh = caught_attack_mh = 0
    for name, row in rows.items():
        assert row["kind"] == ("attack" if SCENARIOS[name].ATTACK else "organic")
        assert row["errors"] == 0, (name, row["error_kinds"], stdout[-2000:])
        assert sum(row["refusals"].values()) == row["refused"]
        low = row["refused"] + max(row["held"], row["flagged"])
        assert low <= row["caught"] <= row["refused"] + row["held"] + row["flagged"]
        assert row["flagged_mh"] <= row["flagged"] and row["caught_mh"] <= row["caught"]
        assert row["rate"] == round(row["caught"] / row["votes"], 4)
        assert row["rate_mh"] == round(row["caught_mh"] / row["votes"], 4)
        caught += row["caught"]
        caught_mh += row["caught_mh"]
        caught_attack += row["caught"] if row["kind"] == "attack" else 0
        caught_attack_mh += row["caught_mh"] if row["kind"] == "attack" else 0
        line = next(line for line in stdout.splitlines() if line.startswith(name + " "))
        assert line.split()[1:4] == [row["kind"], str(row["votes"]), str(row["errors"])]
    organic = sum(row["votes"] for row in rows.values() if row["kind"] == "organic")
    assert report["organic_share"] == round(organic / sum(expected.values()), 4) >= 0.6
    assert report["precision"] == (round(caught_attack / caught, 4) if caught else None)
    assert report["precision_mh"] == (round(caught_attack_mh / caught_mh, 4) if caught_mh else None)
    assert "overall precision:" in stdout


def test_in_process_mode_on_a_tiny_mix(tmp_path: Path) -> None:
    report, stdout = _run(["--quick"], tmp_path, timeout=300)
    assert report["mode"] == "in-process"
    _check_report(report, stdout, Context.make(7, 12, realtime=False, days=2, scale=0.06))
    mix = build_mix(Context.make(7, 12, realtime=False, days=2, scale=0.06))
    assert report["run"]["page_views"] == report["run"]["views_counted"]
    assert report["run"]["page_views"] == sum(1 for a in mix if a.viewed)


@pytest.mark.slow
def test_realtime_quick_mode_over_http(tmp_path: Path) -> None:
    url = os.environ.get("DATABASE_URL", "")
    backend = "postgres" if url.startswith("postgres") else "embedded"
    report, stdout = _run(["--realtime", "--quick", "--backend", backend], tmp_path, timeout=300)
    assert report["mode"] == f"realtime/{backend}"
    _check_report(report, stdout, Context.make(7, 12, realtime=True, span=15, scale=0.06))
    run = report["run"]
    assert run["span_seconds"] == 15 and run["replay_seconds"] < 60
    assert run["views_counted"] == run["page_views"] > 0
    assert 5 <= run["campaign_age_at_scan_minutes"] < 15  # a young campaign
