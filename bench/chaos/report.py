"""The figures of a chaos run, and its verdict (the exit status)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.chaos.checks import JobsState
from bench.chaos.load import RETRIES, Attempt, percentile
from bench.chaos.run import Run


def _fmt(details: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items()) or "-"


def _kinds(attempts: list[Attempt]) -> str:
    counted = Counter(a.kind for a in attempts if a.kind not in ("ack", "replay"))
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counted.items())) or "none"


def render(run: Run) -> tuple[list[str], int]:
    """The report's lines and the exit status: 1 if a vote was lost or stored twice, a counter
    drifted, a job stayed stuck, the drain stalled, a fault could not be injected or the chain
    is broken; else 0."""
    assert run.load is not None
    result = run.load.result
    final = run.final
    jobs: JobsState = final["jobs"]
    duration = time.monotonic() - run.began
    load_s = max(result.stopped - result.started, 1e-9)
    answered = [a.seconds * 1000 for a in result.attempts if a.kind in ("ack", "replay")]
    acks = result.acks

    def ended(attempt: Attempt) -> float:
        return attempt.at + attempt.seconds

    windows = [(f.started, f.ended) for f in run.faults]
    lines: list[str] = []
    out = lines.append
    out(f"== zuimei chaos suite ({run.plan.name}) ==")
    out(f"duration: {duration:.1f} s (load {load_s:.1f} s)")
    out(
        f"load held: {len(acks) / load_s:.1f} acknowledged votes/s (target "
        f"{run.plan.rate:.0f}/s, {run.plan.threads} client threads); latency of answered votes "
        f"p50 {percentile(answered, 50):.1f} ms, p99 {percentile(answered, 99):.1f} ms"
    )
    if result.starved_s > 0.5:
        out(f"the load waited {result.starved_s:.1f} s (over all threads) for new voters")
    out(f"faults injected: {sum(1 for f in run.faults if f.injected)} of {len(run.faults)}")
    events = run.stack.events if run.stack else []
    for fault in run.faults:
        inside = [a for a in result.attempts if fault.started <= ended(a) <= fault.ended]
        replays = sum(1 for a in inside if a.kind == "replay")
        verdict = "ok" if fault.ok else "FAILED" if fault.injected else "NOT INJECTED"
        out(f"  {fault.number}. {fault.title}: {verdict}")
        out(f"     proves: {fault.proves}")
        out(f"     details: {_fmt(fault.details)}")
        out(f"     errors seen by the clients: {_kinds(inside)}; idempotent replays {replays}")
        moved = (
            f"the drain stored past the fault's ledger head {fault.drain_moved_in:.1f} s after it"
            if fault.drain_moved_in is not None
            else "the drain did NOT move past the fault's ledger head"
            if fault.head_at is not None
            else ""
        )
        stored = (
            f"at the check ({fault.checked_after:.0f} s after the fault) every vote acknowledged "
            f"so far was stored after waiting {fault.recovered_in:.1f} s"
            if fault.recovered_in is not None
            else f"at the check ({fault.checked_after:.0f} s after the fault) acknowledged votes "
            f"were NOT all stored within {run.plan.recovery:.0f} s"
        )
        out(f"     recovery: {'; '.join(part for part in (moved, stored) if part)}")
        if fault.blocked_by:
            out(
                f"     its votes waited behind the stall of fault {fault.blocked_by} (the drain "
                "had moved on after this fault)"
            )
        if not fault.injected:
            out(f"     NOT INJECTED: {fault.stall}")
        elif fault.stall:
            out(f"     STALL: {fault.stall}")
        for action in fault.intervention:
            out(f"     operator step taken after the deadline: {action}")
        if fault.stored_after_operator_step_s is not None:
            out(f"     stored {fault.stored_after_operator_step_s} s after the operator step")
        out(
            f"     after the check: missing {fault.missing}, duplicates {fault.duplicates}, "
            f"counter drift {fault.drift}, stuck jobs {len(fault.stuck)}"
            + (
                f", failed periodic jobs (re-run at their next period) {len(fault.failed_periodic)}"
                if fault.failed_periodic
                else ""
            )
        )
        for job in fault.stuck:
            out(
                f"     stuck job: {job['id']} ({job['func']}) in {job['queue']}, worker "
                f"{job['worker']}: {job.get('error') or 'started by a dead worker'}"
            )
        for moment, event in events:
            if fault.started <= moment <= fault.ended:
                out(f"     process manager: {event}")
        for line in fault.log_lines:
            out(f"     log: {line}")
    probe = run.probe
    if probe:
        worst = probe.get("worst") or {}
        out(
            "reconciliation while the drain catches up a backlog of "
            f"{probe.get('backlog_entries', '?')} (voting.services.reconcile, as the periodic "
            f"reconcile_all runs it): {probe['passes']} passes, {probe['passes_with_repairs']} "
            f"repaired something, {probe.get('declined_passes', 0)} declined (the drain kept "
            f"committing between its reads), {probe['wrong_passes']} left the counters wrong"
            + (
                f" (worst: {worst['counters']} counters changed by {worst['net_change']:+d} "
                f"votes in all, drift {worst['drift']})"
                if worst
                else ""
            )
            + f"; drift after {probe.get('settling_passes', 0)} more passes: "
            f"{probe.get('drift_after', '?')}"
        )
        if probe.get("not_run"):
            out(f"reconciliation probe NOT RUN: {probe['not_run']}")
    outside = [a for a in result.attempts if not any(s <= ended(a) <= e for s, e in windows)]
    out(f"errors seen outside fault windows: {_kinds(outside)}")
    for moment, event in events:
        if not any(s <= moment <= e for s, e in windows):
            out(f"process manager, outside fault windows: {event}")
    retried = sum(1 for ack in acks if ack.attempts > 1)
    out(
        f"votes acknowledged: {len(acks)} ({retried} after a retry with the same "
        f"Idempotency-Key); refused with a 4xx: {result.refused}; given up after "
        f"{RETRIES + 1} tries: {result.abandoned}; stored but never acknowledged (the answer "
        f"was lost): {final['stored_unacknowledged']}"
    )
    figures = final["figures"]
    out(
        f"final: drain caught up {final['drain_s']} s after the load stopped; table "
        f"{figures['rows']} votes; reconcile: {final['reconcile']['repairs']} counters repaired, "
        f"{final['reconcile']['missing_sequences']} numbered votes missing; hash chain "
        + (
            f"verified ({final['verify']['checked']} votes)"
            if final["verify"]["ok"]
            else f"BROKEN at {final['verify']['broken_at']}"
        )
    )
    if final.get("stall"):
        out(f"final STALL: {final['stall']}")
    for action in final.get("intervention", []):
        out(f"final operator step taken: {action}")
    for job in jobs.stuck:
        out(
            f"stuck job at the end: {job['id']} ({job['func']}) in {job['queue']}, worker "
            f"{job['worker']}: {job.get('error') or 'started by a dead worker'}"
        )
    for job in jobs.abandoned:
        if job not in jobs.stuck:
            out(
                "abandoned run at the end (not stuck: "
                + ("a later run went ahead" if job["superseded"] else "its next run is not due")
                + f"): {job['id']} ({job['func']}) of dead worker {job['worker']}"
            )
    for job in jobs.failed:
        out(f"failed job at the end: {job['id']} ({job['func']}): {job['error']}")
    for line in final["log_lines"]:
        out(f"log after the last check: {line}")
    if final["lost"]:
        out("lost vote ids (first 20): " + ", ".join(final["lost"][:20]))

    lost = len(final["lost"])
    # Table figures are cumulative (rows never leave): the final ones cover every check.
    duplicates = final["duplicates"]
    # Drift is a state: the worst seen at any check, at the end, or repaired by reconcile.
    drift = max(
        [
            final["drift"]["drift"],
            final["reconcile"]["repairs"],
            *(fault.drift for fault in run.faults),
            (probe.get("worst") or {}).get("drift", 0),
            probe.get("drift_after", 0),
        ]
    )
    # One stuck job seen at several checks is one stuck job.
    stuck = {
        (job["queue"], job["id"], job["worker"])
        for job in [
            *jobs.stuck,
            *final["stuck_seen"],
            *(j for fault in run.faults for j in fault.stuck),
        ]
    }
    stalled = sum(1 for fault in run.faults if fault.stalled) + int(final["stalled"])
    not_injected = sum(1 for fault in run.faults if not fault.injected) + int(
        bool(probe.get("not_run"))
    )
    chain_broken = 0 if final["verify"]["ok"] else 1
    out(f"votes lost = {lost}")
    out(f"duplicates = {duplicates}")
    out(f"counter drift = {drift}")
    out(f"stuck jobs = {len(stuck)}")
    out(f"stalled drains = {stalled}")
    out(f"faults not injected = {not_injected}")
    out(f"chain broken = {chain_broken}")
    failed = lost or duplicates or drift or stuck or stalled or not_injected or chain_broken
    out("RESULT: " + ("FAIL" if failed else "PASS"))
    return lines, 1 if failed else 0
