"""The chaos run: set up, hold a vote load, inject the faults one after another, check."""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos import setup
from bench.chaos.checks import Checker, JobsState
from bench.chaos.load import VoteLoad
from bench.chaos.stack import Managed, Stack, StackError


@dataclass(frozen=True)
class Plan:
    name: str
    rate: float  # logical votes per second
    threads: int  # client threads
    steady: float  # load held before the first fault and after each one
    backlog: float  # seconds of votes held back before a drain is attacked
    redis_down: float  # seconds Redis stays dead
    recovery: float  # how long the drain may take to store every acknowledged vote
    final_timeout: float
    # The faults, in order, grouped by the check that follows them. Faults 2, 3 and 4 each
    # leave the batch a drainer had read to be claimed again after the drain's 30 s idle time;
    # three such waits in a row do not fit the CI budget, so quick mode checks them together
    # (each keeps its own verdict, see Run.check) and the full mode one by one.
    windows: tuple[tuple[int, ...], ...]


QUICK = Plan("quick", 150, 8, 2.5, 5, 1.0, 36, 30, ((1,), (4, 2, 3)))
FULL = Plan("full", 250, 16, 15, 20, 5.0, 120, 120, ((1,), (2,), (3,), (4,)))


@dataclass
class Fault:
    number: int
    title: str
    proves: str
    # Replaced by the moment of injection; until then, when the fault's turn began.
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    # The ledger head right after the fault, and how long until the drain stored past it.
    head_at: int | None = None
    drain_moved_in: float | None = None
    # The check began this long after the fault, and waited this long until every vote
    # acknowledged before the next fault (or the check) was stored.
    checked_after: float = 0.0
    recovered_in: float | None = None
    ids: list[str] = field(default_factory=list)
    missing: int = 0
    stalled: bool = False
    stall: str | None = None
    blocked_by: int | None = None
    intervention: list[str] = field(default_factory=list)
    stored_after_operator_step_s: float | None = None
    drift: int = 0
    duplicates: int = 0
    stuck: list[dict[str, Any]] = field(default_factory=list)
    failed_periodic: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    injected: bool = True

    @property
    def ok(self) -> bool:
        return self.injected and not (
            self.missing or self.stalled or self.drift or self.duplicates or self.stuck
        )


class _Background:
    """Run ``func`` in a thread; ``join`` re-raises what it raised."""

    def __init__(self, func: Callable[[], None]) -> None:
        self._error: list[BaseException] = []

        def target() -> None:
            try:
                func()
            except BaseException as exc:  # handed to join()
                self._error.append(exc)

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error:
            raise self._error[0]


class Run:
    def __init__(self, plan: Plan, *, keep: bool = False) -> None:
        self.plan = plan
        self.keep = keep
        self.began = time.monotonic()
        self.stack: Stack | None = None
        self.load: VoteLoad | None = None
        self.checker: Checker | None = None
        self.voters: setup.VoterPool | None = None
        self.numbers: list[str] = []
        self.faults: list[Fault] = []
        self.final: dict[str, Any] = {}
        self._log_marks: dict[Path, int] = {}
        self._pause: Any = None
        self.probe: dict[str, Any] = {}

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] {message}", file=sys.stderr, flush=True)

    # --- set-up --------------------------------------------------------------------------------

    def set_up(self) -> None:
        stack = self.stack = Stack(keep=self.keep)
        self.say(f"folder {stack.folder}")
        stack.start_data()
        self.say(
            f"postgresql {stack.postgres.bindir.parent.name} on 127.0.0.1:{stack.postgres.port} "
            f"(fsync on), redis on 127.0.0.1:{stack.redis.port} (appendfsync always)"
        )
        # gunicorn boots (imports the app, touches no table) while the schema is migrated.
        web = _Background(stack.start_web)
        stack.migrate()
        self.say("flask --app wsgi db upgrade: done")
        stack.start_worker()
        stack.start_worker()
        self.app = setup.harness_app(stack.env)
        self.numbers = setup.make_campaign(self.app)
        self.say(f"campaign {setup.SLUG}: {len(self.numbers)} approved nominees, voting open")
        web.join()
        self.say(f"gunicorn on {stack.base_url}: workers {stack.web_worker_pids()}")
        self.voters = setup.VoterPool(stack.base_url)
        # Voters for the first 10 s of load; then the pool keeps 30 s of load ahead.
        self.voters.fill(math.ceil(self.plan.rate * 10 / setup.NOMINEES))
        self.voters.keep_ahead(math.ceil(self.plan.rate * 30 / setup.NOMINEES))
        self.say(f"{len(self.voters.tokens)} voters from POST /api/v1/voters/device (more follow)")
        self.checker = Checker(self.app, setup.SLUG)
        deadline = time.monotonic() + 60
        while len(self.checker.jobs().live_workers) < 2:
            if time.monotonic() > deadline:
                raise StackError("the two RQ workers did not register within 60 s")
            time.sleep(0.2)
        stack.supervise()

    # --- helpers -------------------------------------------------------------------------------

    def _checker(self) -> Checker:
        assert self.checker is not None
        return self.checker

    def _stack(self) -> Stack:
        assert self.stack is not None
        return self.stack

    def _redis(self) -> Any:
        from core.extensions import redis_store

        return redis_store.client

    def pause_drain(self) -> bool:
        """Hold the campaign's ledger head row (``SELECT … FOR UPDATE`` in an open transaction,
        as a long database transaction would): the drainer blocks before its next batch is
        stored, so acknowledged votes pile up in the ledger stream. Nothing else changes."""
        import psycopg

        checker = self._checker()
        try:
            conn = psycopg.connect(self._stack().postgres.url, connect_timeout=10)
            conn.execute("SET statement_timeout = '30s'")
            conn.execute(
                "SELECT 1 FROM ledger_heads WHERE campaign_id = %s FOR UPDATE",
                (checker.campaign_id,),
            )
        except psycopg.Error as exc:
            self.say(f"could not pause the drain: {exc}")
            return False
        self._pause = conn
        return True

    def resume_drain(self) -> None:
        conn, self._pause = self._pause, None
        if conn is not None:
            conn.rollback()
            conn.close()

    def _drain_worker(self) -> Managed | None:
        """The managed RQ worker whose current job is the drain."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        from core.extensions import redis_store

        jobs = self._checker().jobs()
        with self.app.app_context():
            for info in jobs.live_workers:
                if not info["job"]:
                    continue
                try:
                    func = Job.fetch(info["job"], connection=redis_store.client).func_name
                except NoSuchJobError:  # finished and removed between the two reads
                    func = None
                if func and func.startswith("voting.jobs.drain"):
                    for worker in self._stack().live_workers():
                        if worker.pid == info["pid"]:
                            return worker
        return None

    def catch_drain_mid_batch(
        self,
        *,
        need_worker: bool,
        stored_first: int = 1,
        min_batch: int = 1,
        timeout: float = 30,
    ) -> tuple[dict[str, Any], Managed | None]:
        """After resume_drain: wait until the drain has stored at least ``stored_first`` votes
        and holds its next batch (``min_batch`` entries or more) read but not acknowledged
        (fresh pending entries, and the ledger head standing still across the look at the
        stream). Returns what was seen and, if asked, the worker running that drain."""
        checker = self._checker()
        start_head = checker.chain_index()
        deadline = time.monotonic() + timeout
        victim: Managed | None = None
        while time.monotonic() < deadline:
            head_before = checker.chain_index()
            stream = checker.stream()
            head_after = checker.chain_index()
            in_batch = stream["pending"] - stream["stale"]
            if need_worker and victim is None and in_batch > 0:
                victim = self._drain_worker()
            ready = (
                in_batch >= min_batch
                and head_before == head_after
                and head_after - start_head >= stored_first
            )
            if ready and (victim is not None or not need_worker):
                return (
                    {
                        "stored_since_resume": head_after - start_head,
                        "read_not_acknowledged": in_batch,
                        "left_by_earlier_faults": stream["stale"],
                        "left_in_stream": stream["length"],
                    },
                    victim,
                )
            if stream["length"] <= stream["stale"] and head_after > start_head:
                break  # the whole backlog drained between two looks
            time.sleep(0.002)
        return {}, None

    def _mark_logs(self) -> None:
        for path in self._stack().logs.glob("*.log"):
            self._log_marks[path] = path.stat().st_size

    def _new_log_lines(self) -> list[str]:
        """Errors and warnings the app's processes logged since the last mark, with counts."""
        pattern = re.compile(r"(ERROR|CRITICAL|WARNING|WARNI |Error\b|Exception\b|SIGKILL|quit)")
        seen: Counter[str] = Counter()
        for path in sorted(self._stack().logs.glob("*.log")):
            with open(path, "rb") as fh:
                fh.seek(self._log_marks.get(path, 0))
                chunk = fh.read().decode(errors="replace")
            for line in chunk.splitlines():
                if not pattern.search(line) or line.startswith(("  ", "Traceback")):
                    continue
                text = re.sub(r"^\d{2}:\d{2}:\d{2}(,\d+)? ", "", line)
                text = re.sub(r"\[\d{4}-\d\d-\d\d [^\]]*\] ", "", text)
                text = re.sub(r"\b[0-9a-f]{32}\b", "<worker>", text)
                text = re.sub(r"\b\d{4,6}\b", "N", text)
                name = re.sub(r"-\d+$", "", path.stem)
                seen[f"{name}: {text.strip()[:200]}"] += 1
        return [f"{count}x {line}" for line, count in seen.most_common(6)]

    def _watch_heads(self, faults: list[Fault]) -> None:
        """Note, for faults that wait for it, when the drain stored past their ledger head."""
        now = time.monotonic()
        waiting = [f for f in faults if f.head_at is not None and f.drain_moved_in is None]
        if not waiting:
            return
        try:
            head = self._checker().chain_index()
        except Exception:  # the database is the fault right now
            return
        for fault in waiting:
            if fault.head_at is not None and head > fault.head_at:
                fault.drain_moved_in = now - fault.started

    def hold(self, seconds: float, faults: list[Fault]) -> None:
        """Keep the load running for ``seconds``, watching the drain move after ``faults``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._watch_heads(faults)
            time.sleep(min(0.25, max(0.0, end - time.monotonic())))
        self._watch_heads(faults)

    def _head_now(self) -> int | None:
        try:
            return self._checker().chain_index()
        except Exception:
            return None

    # --- the faults ----------------------------------------------------------------------------

    def fault_web_worker(self) -> Fault:
        stack = self._stack()
        fault = Fault(
            1,
            "kill -9 one gunicorn worker",
            "a vote in flight on the dead worker is either not counted or counted once: the "
            "client's retry with the same Idempotency-Key gets a first count or the first "
            "answer again; gunicorn forks a new worker",
        )
        pids = stack.web_worker_pids()
        victim = pids[0]
        fault.started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        fault.head_at = self._head_now()
        self.say(f"fault 1: SIGKILL gunicorn worker {victim} (of {pids})")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now_pids = stack.web_worker_pids()
            if victim not in now_pids and len(now_pids) >= stack.web_workers:
                fault.details["respawned_in_s"] = round(time.monotonic() - fault.started, 2)
                fault.details["new_worker"] = [p for p in now_pids if p not in pids]
                break
            time.sleep(0.02)
        else:
            fault.stalled = True
            fault.stall = "gunicorn did not fork a new worker within 60 s"
        fault.details["killed_pid"] = victim
        self.say(f"fault 1: gunicorn worker replaced: {fault.details}")
        return fault

    def fault_rq_worker(self) -> Fault:
        checker = self._checker()
        fault = Fault(
            2,
            "kill -9 an RQ worker in the middle of a drain batch",
            "entries the dead drainer read but did not acknowledge are claimed again and stored "
            "once; the drain carries on; the process manager starts a new worker",
        )
        for attempt, backlog in enumerate((self.plan.backlog, self.plan.backlog * 2), start=1):
            if not self.pause_drain():
                fault.injected = False
                fault.stall = "the drain could not be paused"
                return fault
            time.sleep(backlog)
            stream = checker.stream()
            backlog_entries = stream["length"] - stream["stale"]
            fault.details["backlog_entries"] = backlog_entries
            self.resume_drain()
            # Kill once a quarter of the backlog is in the table: the drain is well under way.
            seen, victim = self.catch_drain_mid_batch(
                need_worker=True,
                stored_first=max(1, backlog_entries // 4),
                min_batch=max(1, min(100, backlog_entries // 10)),
            )
            if victim is not None:
                fault.started = time.monotonic()
                horses = victim.kill9()
                fault.head_at = checker.chain_index()
                fault.details.update(seen)
                fault.details["killed_pid"] = victim.pid
                fault.details["work_horse_pids"] = horses
                self.say(
                    f"fault 2: SIGKILL RQ worker {victim.pid} and its work horse {horses} while "
                    f"draining a backlog of {fault.details['backlog_entries']}: "
                    f"{seen['stored_since_resume']} stored, {seen['read_not_acknowledged']} read "
                    "and not acknowledged"
                )
                break
            self.say(f"fault 2: attempt {attempt}: the drain finished before it could be caught")
        else:
            fault.injected = False
            fault.stall = "the drain was never caught in the middle of a batch"
            return fault
        pending = checker.pending_ids()
        stored = checker.stored_among(pending)
        fault.details["pending_after_kill_not_stored"] = len(pending) - len(stored)
        fault.details["pending_after_kill_stored"] = len(stored)
        return fault

    def fault_redis(self) -> Fault:
        stack = self._stack()
        assert self.load is not None
        fault = Fault(
            3,
            "kill -9 Redis, restart it on the same append-only file",
            "with appendfsync always every vote acknowledged before the kill is on disk: it is "
            "replayed and drained; votes sent while Redis is down are refused (503), not counted",
        )
        fault.started = time.monotonic()
        fault.details["acknowledged_before_kill"] = self.load.acked_count()
        stack.redis.kill()
        self.say(
            f"fault 3: SIGKILL redis-server "
            f"({fault.details['acknowledged_before_kill']} votes acknowledged so far)"
        )
        time.sleep(self.plan.redis_down)
        began = time.monotonic()
        stack.redis.start()
        fault.details["down_s"] = round(time.monotonic() - fault.started, 2)
        fault.details["restart_s"] = round(time.monotonic() - began, 2)
        aof = stack.redis.folder / "appendonlydir"
        fault.details["aof_bytes"] = (
            sum(p.stat().st_size for p in aof.glob("*")) if aof.exists() else 0
        )
        fault.head_at = self._head_now()
        self.say(
            f"fault 3: redis answered again {fault.details['down_s']} s after the kill "
            f"(AOF of {fault.details['aof_bytes'] / 1e6:.1f} MB replayed in "
            f"{fault.details['restart_s']} s)"
        )
        return fault

    def fault_postgres(self) -> Fault:
        stack, checker = self._stack(), self._checker()
        fault = Fault(
            4,
            "restart PostgreSQL (pg_ctl restart -m immediate) during a drain",
            "a batch whose transaction dies with the server is not acknowledged, so it is "
            "drained again after the restart; committed batches survive the crash (fsync on)",
        )
        seen: dict[str, Any] = {}
        for attempt, backlog in enumerate((self.plan.backlog / 2, self.plan.backlog), start=1):
            if not self.pause_drain():
                fault.injected = False
                fault.stall = "the drain could not be paused"
                return fault
            time.sleep(backlog)
            stream = checker.stream()
            backlog_entries = stream["length"] - stream["stale"]
            fault.details["backlog_entries"] = backlog_entries
            self.resume_drain()
            # A batch of a good part of the backlog (a batch holds at most 500 entries): the
            # drain is busy inserting when the server dies.
            seen, _ = self.catch_drain_mid_batch(
                need_worker=False, min_batch=max(1, min(100, backlog_entries // 4))
            )
            if seen:
                break
            self.say(f"fault 4: attempt {attempt}: the drain finished before it could be caught")
        fault.details.update(seen)
        if not seen:
            # Restarted all the same, but what the fault is meant to prove was not exercised.
            fault.injected = False
            fault.stall = "the drain was never caught in the middle of a batch"
        fault.started = time.monotonic()
        self.say(
            "fault 4: pg_ctl restart -m immediate while draining a backlog of "
            f"{fault.details['backlog_entries']}: "
            + (
                f"{seen['stored_since_resume']} stored, {seen['read_not_acknowledged']} read "
                "and not acknowledged"
                if seen
                else "(the drain finished before it could be caught mid-batch)"
            )
        )
        fault.details["restart_s"] = round(stack.postgres.restart("immediate"), 2)
        fault.head_at = checker.chain_index()
        self.say(f"fault 4: postgresql answered again after {fault.details['restart_s']} s")
        return fault

    # --- reconciliation during a drain ----------------------------------------------------------

    def probe_reconcile(self, seconds: float) -> dict[str, Any]:
        """Reconcile while the drain catches up a backlog, as ``voting.jobs.reconcile_all``
        (every 5 minutes during voting) and ``flask votes reconcile`` may: docs/voting.md says
        it is safe during voting. After each pass the counters are compared (read-only) with
        what the ledger proves: a pass that "repaired" counters that were right shows as
        drift. Then further passes run until one leaves no drift (the damage lasts until the
        next clean pass)."""
        from campaigns.models import Campaign
        from core.errors import ServiceUnavailable
        from core.extensions import db
        from voting import services

        checker = self._checker()
        probe: dict[str, Any] = {
            "passes": 0,
            "passes_with_repairs": 0,
            "wrong_passes": 0,
            "declined_passes": 0,
        }
        probe["drift_before"] = checker.drift()["drift"]
        if not self.pause_drain():
            probe["not_run"] = "the drain could not be paused"
            return probe
        time.sleep(self.plan.backlog * 0.75)
        stream = checker.stream()
        probe["backlog_entries"] = stream["length"] - stream["stale"]
        self.resume_drain()
        worst: dict[str, Any] = {}

        # The service logs every repair; the report counts them instead.
        logging.getLogger("zuimei.voting").setLevel(logging.ERROR)

        def one_pass() -> tuple[int, int] | None:
            with self.app.app_context():
                campaign = db.session.query(Campaign).filter_by(slug=setup.SLUG).one()
                services.sync_campaign(campaign)
                try:
                    report = services.reconcile(campaign)
                except ServiceUnavailable:
                    # Batches kept landing between its two reads: reconcile declines rather
                    # than guess (a loaded machine sees this); it repaired nothing.
                    db.session.rollback()
                    db.session.remove()
                    return None
                db.session.commit()
                db.session.remove()
            net = sum(r["now"] - r["was"] for r in report["repairs"])
            return len(report["repairs"]), net

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            outcome = one_pass()
            probe["passes"] += 1
            if outcome is None:
                probe["declined_passes"] += 1
                time.sleep(0.2)
                continue
            repairs, net = outcome
            if not repairs:
                continue
            probe["passes_with_repairs"] += 1
            after = checker.drift()
            if after["drift"]:
                probe["wrong_passes"] += 1
                if after["drift"] > worst.get("drift", 0):
                    worst = {"drift": after["drift"], "net_change": net, "counters": repairs}
        probe["worst"] = worst
        settle = 0
        while checker.drift()["drift"] and settle < 10:
            one_pass()
            settle += 1
        probe["settling_passes"] = settle
        probe["drift_after"] = checker.drift()["drift"]
        return probe

    # --- checks --------------------------------------------------------------------------------

    def check(self, faults: list[Fault]) -> None:
        """Every vote acknowledged so far must reach the table within ``plan.recovery``; then
        duplicates, counter drift and jobs.

        A fault's own figures cover the votes acknowledged before the next fault of the check
        began (its ``ids``). When votes are still missing at the deadline, the stall is charged
        to the first fault after which the drain never stored another vote (or, if the drain
        kept moving, to the last fault with votes missing); the other faults with votes missing
        waited behind it, and their votes are judged after the operator step (``unstick``)."""
        checker = self._checker()
        assert self.load is not None
        now = time.monotonic()
        for index, fault in enumerate(faults):
            until = faults[index + 1].started if index + 1 < len(faults) else now
            fault.ids = self.load.acked_before(until)
        missing = set(faults[-1].ids)
        began = time.monotonic()
        for fault in faults:
            fault.checked_after = began - fault.started
        while True:
            if missing:
                missing -= checker.stored_among(sorted(missing))
            self._watch_heads(faults)
            for fault in faults:
                if fault.recovered_in is None and not missing.intersection(fault.ids):
                    fault.recovered_in = time.monotonic() - began
            if not missing or time.monotonic() - began >= self.plan.recovery:
                break
            time.sleep(0.5)
        if missing:
            jobs = checker.jobs()
            diagnosis = self._diagnose(jobs, checker.stream())
            self.say(
                f"check: {len(missing)} acknowledged votes not stored after "
                f"{self.plan.recovery:.0f} s: {diagnosis}"
            )
            # The stall is the first fault after which the drain never moved again (else, the
            # drain moving, the last fault with votes missing); the other faults with votes
            # missing waited behind it, and their votes are judged after the operator step.
            short = [fault for fault in faults if missing.intersection(fault.ids)]
            still = [f for f in short if f.head_at is not None and f.drain_moved_in is None]
            culprit = still[0] if still else short[-1]
            culprit.stalled = True
            culprit.stall = diagnosis
            culprit.stuck = list(jobs.stuck)
            for fault in short:
                if fault is not culprit:
                    fault.blocked_by = culprit.number
            actions = self.unstick(jobs)
            for fault in faults:
                if fault.stalled or fault.blocked_by:
                    fault.intervention = actions
            if actions:
                self.say("operator step: " + "; ".join(actions))
                again, waited = checker.wait_stored(sorted(missing), self.plan.recovery)
                for fault in faults:
                    if (fault.stalled or fault.blocked_by) and not again.intersection(fault.ids):
                        fault.stored_after_operator_step_s = round(waited, 1)
                missing = again
        figures = checker.table_figures()
        drift = checker.drift()
        jobs = checker.jobs()
        ended = time.monotonic()
        for index, fault in enumerate(faults):
            # A fault's window (for the errors the clients saw) ends where the next one begins.
            fault.ended = faults[index + 1].started if index + 1 < len(faults) else ended
            fault.missing = len(missing.intersection(fault.ids))
            fault.duplicates = figures["same_pair_twice"] + figures["same_seq_twice"]
            fault.drift = drift["drift"]
            known = {(j["queue"], j["id"], j["worker"]) for j in fault.stuck}
            fault.stuck += [
                j for j in jobs.stuck if (j["queue"], j["id"], j["worker"]) not in known
            ]
            fault.failed_periodic = [job for job in jobs.failed if job["periodic"]]
        faults[-1].log_lines = self._new_log_lines()
        self._mark_logs()
        for fault in faults:
            self.say(
                f"check after fault {fault.number}: "
                + (
                    f"every acknowledged vote stored (waited {fault.recovered_in:.1f} s)"
                    if fault.recovered_in is not None
                    else f"{fault.missing} acknowledged votes missing after the operator step"
                    if fault.intervention
                    else f"{fault.missing} acknowledged votes missing"
                )
                + f"; duplicates {fault.duplicates}, drift {fault.drift}, "
                f"stuck jobs {len(fault.stuck)}"
            )

    def _diagnose(self, jobs: JobsState, stream: dict[str, int]) -> str:
        parts = [
            f"the ledger stream holds {stream['length']} entries, {stream['pending']} of them "
            "read by a drainer and not acknowledged"
        ]
        if jobs.drain_lock_holder:
            parts.append(
                f"the campaign's drain lock is held, {jobs.drain_lock_ttl_ms / 1000:.0f} s of its "
                "TTL left"
            )
        for job in jobs.abandoned:
            parts.append(
                f"job {job['id']} ({job['func']}) is still 'started' in the {job['queue']} queue "
                f"by dead worker {job['worker']}"
                + (
                    " (a later run of it went ahead)"
                    if job["superseded"]
                    else ", and no later run of it went ahead"
                )
            )
        for job in jobs.failed:
            parts.append(f"job {job['id']} failed: {job['error']}")
        return "; ".join(parts)

    def unstick(self, jobs: JobsState) -> list[str]:
        """What an operator has to do today when a dead drainer left the drain stuck: delete
        the drain lock it still holds (it is dead: the ledger head does not move while the
        lock is held), and the 'started' record of the job its dead worker was running (which
        keeps the scheduler from enqueuing the drain again). Done only after the stall was
        recorded as a failure, so that the later faults still meet a working drain."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        from core.extensions import redis_store

        checker = self._checker()
        actions = []
        with self.app.app_context():
            client = redis_store.client
            holder = client.get(checker.lock_key)
            if holder:
                head = checker.chain_index()
                time.sleep(3)
                if checker.chain_index() == head and client.get(checker.lock_key) == holder:
                    ttl = client.pttl(checker.lock_key)
                    client.delete(checker.lock_key)
                    actions.append(
                        "deleted the drain lock its dead holder left (no batch stored for 3 s; "
                        f"{ttl / 1000:.0f} s of its 300 s TTL left)"
                    )
            for job in jobs.stuck:
                if job not in jobs.abandoned:
                    continue
                # RQ cannot delete a started job whose execution record expired (ValueError):
                # take its entries out of the started registry, then delete it as failed.
                registry = redis_store.queue(job["queue"]).started_job_registry
                stale = [
                    member
                    for member in client.zrange(registry.key, 0, -1)
                    if registry.parse_job_id(member) == job["id"]
                ]
                if stale:
                    client.zrem(registry.key, *stale)
                try:
                    record = Job.fetch(job["id"], connection=client)
                except NoSuchJobError:
                    continue  # gone meanwhile
                record.set_status(JobStatus.FAILED)
                try:
                    record.delete()
                except ValueError:
                    # RQ 3 raises when the run's execution record expired before the registry
                    # entry naming it: drop both keys by hand.
                    client.delete(record.execution_registry.key, record.key)
                actions.append(
                    f"deleted the 'started' job {job['id']} of dead worker {job['worker']}"
                )
        return actions

    # --- the whole run -------------------------------------------------------------------------

    def execute(self) -> None:
        self.set_up()
        stack = self._stack()
        assert self.voters is not None
        self.load = VoteLoad(
            host="127.0.0.1",
            port=stack.web_port,
            slug=setup.SLUG,
            voters=self.voters,
            numbers=self.numbers,
            rate=self.plan.rate,
            threads=self.plan.threads,
            ack_log=stack.folder / "acknowledged.tsv",
        )
        self._mark_logs()
        self.load.start()
        self.say(f"load: {self.plan.rate:.0f} votes/s from {self.plan.threads} client threads")
        self.hold(self.plan.steady, [])

        inject: dict[int, Callable[[], Fault]] = {
            1: self.fault_web_worker,
            2: self.fault_rq_worker,
            3: self.fault_redis,
            4: self.fault_postgres,
        }
        for position, window in enumerate(self.plan.windows):
            if position == 1:
                self.say("probe: reconcile while the drain catches up a backlog")
                self.probe = self.probe_reconcile(self.plan.steady)
                self.say(
                    f"probe: {self.probe['passes']} reconcile passes during the drain, "
                    f"{self.probe['wrong_passes']} left the counters wrong (worst drift "
                    f"{(self.probe.get('worst') or {}).get('drift', 0)})"
                )
                self._mark_logs()
            faults: list[Fault] = []
            for number in window:
                fault = inject[number]()
                self.faults.append(fault)
                faults.append(fault)
                self.hold(self.plan.steady, faults)
            self.check(faults)
            self.hold(1.0, [])  # a quiet stretch between fault windows
        self.faults.sort(key=lambda fault: fault.number)

        self.hold(self.plan.steady, [])
        self.load.stop()
        self.voters.stop()
        self.say(f"load stopped: {self.load.acked_count()} votes acknowledged")
        self.finish()

    def finish(self) -> None:
        """After the load: the final drain, the figures, then the app's own reconciliation and
        chain verification (in this process, through the service functions behind
        ``flask votes reconcile`` and ``flask votes verify``)."""
        checker = self._checker()
        assert self.load is not None
        acked = self.load.acked_ids()
        missing, waited = checker.wait_stored(acked, self.plan.final_timeout)
        final: dict[str, Any] = {"drain_s": round(waited, 1), "stalled": False}
        final["stuck_seen"] = []
        if missing:
            jobs = checker.jobs()
            final["stall"] = self._diagnose(jobs, checker.stream())
            final["stalled"] = True
            final["stuck_seen"] = list(jobs.stuck)
            self.say(f"final drain: {len(missing)} votes not stored: {final['stall']}")
            final["intervention"] = self.unstick(jobs)
            if final["intervention"]:
                missing, _ = checker.wait_stored(sorted(missing), self.plan.final_timeout)
        final["lost"] = sorted(missing)
        figures = checker.table_figures()
        final["figures"] = figures
        final["duplicate_acks"] = len(acked) - len(set(acked))
        final["duplicates"] = (
            figures["same_pair_twice"] + figures["same_seq_twice"] + final["duplicate_acks"]
        )
        final["drift"] = checker.drift()
        final["stored_unacknowledged"] = len(checker.all_stored_ids() - set(acked))
        final["jobs"] = checker.jobs()
        final["log_lines"] = self._new_log_lines()
        with self.app.app_context():
            from campaigns.models import Campaign
            from core.extensions import db
            from voting import services

            campaign = db.session.query(Campaign).filter_by(slug=setup.SLUG).one()
            services.sync_campaign(campaign)
            report = services.reconcile(campaign)
            final["reconcile"] = {
                "repairs": len(report["repairs"]),
                "missing_sequences": report["missing"]["count"],
                "undrained": report["undrained"],
            }
            final["verify"] = services.verify_chain(campaign)
            db.session.remove()
        self.final = final
