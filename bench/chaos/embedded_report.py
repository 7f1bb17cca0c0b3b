"""The figures of an embedded chaos run (``--embedded``), and its verdict (the exit status)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.chaos.embedded_run import QUOTA, SLOTS, EmbeddedRun, Verdict
from bench.chaos.load import RETRIES, Attempt, percentile

FIGURES = (
    "votes lost",
    "ids reissued",
    "quota breaches",
    "poison not handled",
    "up not serving",
    "counter drift",
    "reconcile not clean",
    "chain broken",
    "faults not injected",
    "faults not recovered",
    "load short",
)

# The answers the vote past a quota must get.
EXPECTED_REFUSALS = ("refused:429:nominee_daily_limit", "refused:429:daily_quota_exhausted")


def _kinds(attempts: list[Attempt]) -> str:
    counted = Counter(a.kind for a in attempts if a.kind not in ("ack", "replay"))
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counted.items())) or "none"


def _fmt(details: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items()) or "-"


def render(run: EmbeddedRun) -> tuple[list[str], int]:
    """The report's lines and the exit status: 1 if any figure is not zero, else 0."""
    assert run.load is not None
    result = run.load.result
    final = run.final
    verdict: Verdict = final["verdict"]
    duration = time.monotonic() - run.began
    load_s = max(result.stopped - result.started, 1e-9)
    answered = [a.seconds * 1000 for a in result.attempts if a.kind in ("ack", "replay")]
    acks = result.acks
    unique_acks = len({ack.vote_id for ack in acks})
    rate = unique_acks / load_s

    def ended(attempt: Attempt) -> float:
        return attempt.at + attempt.seconds

    lines: list[str] = []
    out = lines.append
    out(f"== zuimei chaos suite ({run.plan.name}): flask --app wsgi up, SQLite + embedded redis ==")
    out(
        f"duration: {duration:.1f} s (load {load_s:.1f} s); up serving after "
        f"{run.setup_s.get('up_serving', '?')} s, campaign and first voters "
        f"{run.setup_s.get('campaign_and_voters', '?')} s"
    )
    voters = len({ack.voter for ack in acks if ack.voter >= 0})
    out(
        f"load held: {rate:.1f} acknowledged votes/s (sent {run.plan.rate:.0f}/s, "
        f"{run.plan.threads} client threads; each voter {QUOTA} votes and 1 past a quota of "
        f"{SLOTS - 1}); {voters} voters, {len(run.numbers)} nominees; latency of answered votes "
        f"p50 {percentile(answered, 50):.1f} ms, p99 {percentile(answered, 99):.1f} ms"
    )
    if result.starved_s > 0.5:
        out(f"the load waited {result.starved_s:.1f} s (over all threads) for new voters")
    out(f"faults: {sum(1 for f in run.faults if f.injected)} of {len(run.faults)} injected")
    for fault in run.faults:
        inside = [a for a in result.attempts if fault.started <= ended(a) <= fault.ended]
        replays = sum(1 for a in inside if a.kind == "replay")
        verdict_word = "NOT INJECTED" if not fault.injected else "FAILED" if fault.problem else "ok"
        out(f"  {fault.number}. {fault.title}: {verdict_word}")
        out(f"     details: {_fmt(fault.details)}")
        out(f"     answers until the next fault: {_kinds(inside)}; idempotent replays {replays}")
        if fault.problem:
            out(f"     PROBLEM: {fault.problem}")
    out("flask up's supervisor said:")
    said = Counter(line.split("] up: ", 1)[1] for line in final["supervisor"])
    for line, count in sorted(said.items()):
        out(f"     {count}x {line}")
    if not said:
        out("     nothing")
    expected_refusals = sum(1 for a in result.attempts if a.kind in EXPECTED_REFUSALS)
    retried = sum(1 for ack in acks if ack.attempts > 1)
    out(
        f"votes acknowledged: {unique_acks} ({retried} after a retry with the same "
        f"Idempotency-Key); refused with a 4xx: {result.refused} ({expected_refusals} of them "
        f"the vote past a quota, refused as it must be); given up after {RETRIES + 1} tries: "
        f"{result.abandoned}; stored but never acknowledged (the answer was lost): "
        f"{final['stored_unacknowledged']}"
    )
    other_refusals = result.refused - expected_refusals
    out(
        f"final: every acknowledged vote stored {final['drain_s']} s after the load stopped"
        if final["drained"]
        else f"final: acknowledged votes NOT all stored {final['drain_s']} s after the load stopped"
    )
    out(
        f"table: {final['rows']} votes; the same sequence stored twice {verdict.seq_stored_twice}; "
        f"acknowledged votes sharing a sequence {verdict.seq_shared_by_acks}; an id acknowledged "
        f"with two contents {verdict.id_with_two_contents}; stored unlike its acknowledgement "
        f"{verdict.stored_differs_from_ack}; votes over a voter's {QUOTA} a day "
        f"{verdict.over_daily_quota}; votes over one a nominee a day {verdict.over_nominee_limit}"
    )
    last = final["last_vote"]
    out(
        f"after the last kill: {final['acks_after_last_kill']} votes acknowledged under load; "
        f"healthz {'200' if last['healthz'] else 'DOWN'}, readyz "
        f"{'200' if last['readyz'] else 'not ready'}; a new voter's vote answered "
        f"{last.get('status')}"
        + (
            f", stored {last['stored_after_s']} s later"
            if last.get("stored_after_s") is not None
            else f" ({last.get('error', 'not stored')})"
        )
        + f"; flask up {'running' if final['up_alive'] else 'GONE'}"
    )
    quarantined = final["quarantined"]
    out(
        f"quarantine: {len(quarantined)} entry(ies): "
        + "; ".join(f"{sid}: {reason}" for sid, reason in quarantined)
        + f"; votes acknowledged after the poison {final['acks_after_poison']}, stored "
        f"{final['stored_after_poison']}"
    )
    rec = final["reconcile"]
    first, second = rec["first"], rec["second"]
    out(
        f"flask votes reconcile: exit {rec['first_exit']} (quarantined "
        f"{(first.get('quarantined') or {}).get('count', '?')}, missing "
        f"{(first.get('missing') or {}).get('count', '?')}, counters repaired "
        f"{len(first.get('repairs') or [])}); "
        f"after voiding the poison entry: exit {rec['second_exit']} (missing "
        f"{(second.get('missing') or {}).get('count', '?')})"
    )
    for line in rec["first_stderr"] + rec["second_stderr"]:
        out(f"     reconcile said: {line[:300]}")
    out(f"flask votes verify: exit {final['verify']['exit']}: {' '.join(final['verify']['said'])}")
    if other_refusals:
        unexpected = [
            a
            for a in result.attempts
            if a.kind.startswith("refused:") and a.kind not in EXPECTED_REFUSALS
        ]
        out(f"unexpected refusals: {_kinds(unexpected)}")
    if verdict.lost:
        out("lost vote ids (first 20): " + ", ".join(verdict.lost[:20]))

    figures = _figures(run, verdict, rate, unique_acks)
    for name in FIGURES:
        out(f"{name} = {figures[name]}")
    failed = any(figures.values())
    out("RESULT: " + ("FAIL" if failed else "PASS"))
    return lines, 1 if failed else 0


def _figures(run: EmbeddedRun, verdict: Verdict, rate: float, acks: int) -> dict[str, int]:
    final = run.final
    poisons = [f for f in run.faults if f.kind == "poison"]
    poison_bad = sum(1 for f in poisons if f.injected and "quarantined_after_s" not in f.details)
    if final["stored_after_poison"] != final["acks_after_poison"] or not final["acks_after_poison"]:
        poison_bad += 1
    last = final["last_vote"]
    not_serving = (
        int(not final["up_alive"])
        + int(not last["healthz"])
        + int(last.get("status") != 201 or last.get("stored_after_s") is None)
        + int(final["acks_after_last_kill"] == 0)
    )
    rec = final["reconcile"]
    first = rec["first"]
    drift = len(first.get("repairs") or []) if first else 1
    quarantined = int((first.get("quarantined") or {}).get("count", -1))
    reconcile_bad = (
        int(not first)
        + int(rec["first_exit"] != (4 if poisons else 0))
        + int(quarantined != len(poisons))
        + int((first.get("missing") or {}).get("count", -1) != 0)
        + int(rec["second_exit"] != 0)
        + int((rec["second"].get("missing") or {}).get("count", -1) != 0)
    )
    kills = Counter(f.kind for f in run.faults if f.injected)
    wanted = Counter(run.plan.faults)
    not_injected = sum(max(0, n - kills[kind]) for kind, n in wanted.items())
    return {
        "votes lost": len(verdict.lost),
        "ids reissued": verdict.reissued,
        "quota breaches": verdict.quota_breaches,
        "poison not handled": poison_bad,
        "up not serving": not_serving,
        "counter drift": drift,
        "reconcile not clean": reconcile_bad,
        "chain broken": int(final["verify"]["exit"] != 0),
        "faults not injected": not_injected,
        "faults not recovered": sum(1 for f in run.faults if f.injected and f.problem)
        + int(not final["drained"]),
        "load short": int(acks < run.plan.min_acks) + int(rate < run.plan.min_rate),
    }
