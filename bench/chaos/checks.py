"""What the run checks after each fault and at the end, read from the private services.

Nothing here repairs anything: counters are compared read-only (the arithmetic of
``voting.services.reconcile`` without its repairs), RQ registries are read without RQ's
clean-up side effect (``cleanup=False``), and stored votes are looked up by id.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

# The same atomic read ``reconcile`` takes (counters, sequence and the undrained stream at once).
# The counters are the standings: there is no ranking of its own to compare them with.
_SNAPSHOT = """
local counts = redis.call('HGETALL', KEYS[1])
local pending = redis.call('HGETALL', KEYS[2])
local seq = redis.call('GET', KEYS[3])
local stream = redis.call('XRANGE', KEYS[4], '-', '+')
return {counts, pending, seq or '0', stream}
"""


def retrying(func: Callable[[], T], *, seconds: float = 60) -> T:
    """Call ``func`` until it stops failing on a dead PostgreSQL or Redis (the faults)."""
    from core.extensions import db

    deadline = time.monotonic() + seconds
    while True:
        try:
            return func()
        except (DBAPIError, redis.RedisError, OSError):
            with contextlib.suppress(Exception):  # the connection may be as dead as the server
                db.session.rollback()
                db.session.remove()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# How late a periodic job's next run may start after its period (scheduler tick, the previous
# run's worker found dead, a busy queue) before a missing run counts as stuck.
PERIODIC_GRACE = 30.0


@dataclass
class JobsState:
    """RQ's registries as they are (read, not cleaned)."""

    live_workers: list[dict[str, Any]] = field(default_factory=list)
    dead_workers: list[dict[str, Any]] = field(default_factory=list)
    # In a StartedJobRegistry, run by a worker that is not alive: the worker died mid-run.
    # "superseded": the same function has started since (a later periodic run), so the dead
    # run blocks nothing and waits for RQ's registry maintenance to be moved away.
    # "next_run_due": for a periodic function, when its next run is due at the latest (its
    # period, plus PERIODIC_GRACE); until then a missing later run is not yet a stuck one.
    abandoned: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    queued: dict[str, int] = field(default_factory=dict)
    drain_lock_ttl_ms: int = -2
    drain_lock_holder: str | None = None

    @property
    def stuck(self) -> list[dict[str, Any]]:
        """Jobs nothing will finish or replace: abandoned runs with no later run of the same
        function, and failed jobs that are not periodic (a failed periodic run is followed by
        the next one; a failed one-off job is not run again)."""
        now = time.time()
        return [
            job
            for job in self.abandoned
            if not job["superseded"] and (job["next_run_due"] is None or now > job["next_run_due"])
        ] + [job for job in self.failed if not job["periodic"]]


def _latest_periodic_run(client: Any, func_name: str) -> str | None:
    """The id of the newest run the scheduler enqueued for a periodic job (core.jobs)."""
    from core.extensions import redis_store

    latest = client.get(redis_store.key("periodic", func_name))
    return latest.decode() if latest else None


class Checker:
    def __init__(self, app: Flask, slug: str) -> None:
        self.app = app
        self.slug = slug
        with app.app_context():
            from campaigns.models import Campaign
            from core.extensions import db, redis_store
            from voting.services import CampaignKeys

            campaign = db.session.query(Campaign).filter_by(slug=slug).one()
            self.campaign_id = campaign.id
            self.per_nominee = int((campaign.rules or {}).get("votes_per_nominee_per_day", 1))
            self.keys = CampaignKeys.of(slug)
            self.lock_key = redis_store.key("lock", "drain", slug)
            db.session.remove()

    # --- stored votes --------------------------------------------------------------------------

    def stored_among(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are in the votes table."""
        from core.extensions import db

        def query() -> set[str]:
            found: set[str] = set()
            for start in range(0, len(ids), 20000):
                chunk = ids[start : start + 20000]
                found.update(
                    db.session.execute(
                        text("SELECT id FROM votes WHERE id = ANY(:ids)"), {"ids": chunk}
                    ).scalars()
                )
            db.session.rollback()
            return found

        with self.app.app_context():
            return retrying(query)

    def wait_stored(self, ids: list[str], timeout: float) -> tuple[set[str], float]:
        """Wait until every id is stored; returns (the ones still missing, seconds waited)."""
        began = time.monotonic()
        missing = set(ids)
        while True:
            if missing:
                missing -= self.stored_among(sorted(missing))
            waited = time.monotonic() - began
            if not missing or waited >= timeout:
                return missing, waited
            time.sleep(0.5)

    def table_figures(self) -> dict[str, int]:
        """Rows, and rows too many: the same (voter, nominee, day) stored more often than the
        quota allows, and the same vote sequence number stored twice."""
        from core.extensions import db

        def query() -> dict[str, int]:
            row = db.session.execute(
                text(
                    "SELECT count(*),"
                    " count(*) - count(DISTINCT (voter_id, nominee_number, day)),"
                    " count(*) - count(DISTINCT seq)"
                    " FROM votes WHERE campaign_id = :c"
                ),
                {"c": self.campaign_id},
            ).one()
            over_quota = db.session.execute(
                text(
                    "SELECT coalesce(sum(n - :quota), 0) FROM ("
                    " SELECT count(*) AS n FROM votes WHERE campaign_id = :c"
                    " GROUP BY voter_id, nominee_number, day HAVING count(*) > :quota) AS t"
                ),
                {"c": self.campaign_id, "quota": self.per_nominee},
            ).scalar_one()
            db.session.rollback()
            return {
                "rows": int(row[0]),
                "same_pair_twice": int(row[1]),
                "same_seq_twice": int(row[2]),
                "over_quota": int(over_quota),
            }

        with self.app.app_context():
            return retrying(query)

    def all_stored_ids(self) -> set[str]:
        from core.extensions import db

        def query() -> set[str]:
            found = set(
                db.session.execute(
                    text("SELECT id FROM votes WHERE campaign_id = :c"), {"c": self.campaign_id}
                ).scalars()
            )
            db.session.rollback()
            return found

        with self.app.app_context():
            return retrying(query)

    def chain_index(self) -> int:
        """How many votes the drain has appended (the ledger head); one cheap row."""
        from core.extensions import db

        with self.app.app_context():
            value = db.session.execute(
                text("SELECT chain_index FROM ledger_heads WHERE campaign_id = :c"),
                {"c": self.campaign_id},
            ).scalar()
            db.session.rollback()
            return int(value or 0)

    # --- the ledger stream ---------------------------------------------------------------------

    def stream(self) -> dict[str, int]:
        """Undrained entries; entries read by a drainer and not acknowledged; and of those, the
        stale ones (unacknowledged for a second or more: left by a drainer that died or failed,
        they wait for the drain's idle time before they are claimed again)."""
        from core.extensions import redis_store

        with self.app.app_context():
            client = redis_store.votes
            length = int(client.xlen(self.keys.ledger))
            try:
                pending = int(client.xpending(self.keys.ledger, "drain")["pending"])
                stale = (
                    len(
                        client.xpending_range(
                            self.keys.ledger, "drain", "-", "+", 1_000_000, idle=1000
                        )
                    )
                    if pending
                    else 0
                )
            except redis.ResponseError:  # no consumer group yet
                pending = stale = 0
            return {"length": length, "pending": pending, "stale": stale}

    def pending_ids(self) -> list[str]:
        """Vote ids of the entries read by a drainer and not acknowledged."""
        from core.extensions import redis_store

        with self.app.app_context():
            client = redis_store.votes
            try:
                rows = client.xpending_range(self.keys.ledger, "drain", "-", "+", 100000)
            except redis.ResponseError:
                return []
            ids = []
            for row in rows:
                entry = client.xrange(self.keys.ledger, row["message_id"], row["message_id"])
                if entry and entry[0][1].get(b"kind") == b"vote":
                    ids.append(entry[0][1][b"id"].decode())
            return ids

    # --- counters ------------------------------------------------------------------------------

    def drift(self) -> dict[str, Any]:
        """Redis counters against what the ledger proves, per nominee (every vote in the ledger
        stream at the snapshot, plus the stored votes up to the snapshot's sequence that are not
        in the stream)."""
        from core.extensions import db, redis_store

        def measure() -> dict[str, Any]:
            client = redis_store.votes
            counts_raw, pending_raw, seq_raw, stream = client.eval(
                _SNAPSHOT, 4, self.keys.counts, self.keys.pending, self.keys.seq, self.keys.ledger
            )
            live_valid = _pairs(counts_raw)
            live_pending = _pairs(pending_raw)
            seq = int(seq_raw)
            undrained = []
            for _, flat in stream:
                fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
                if fields.get("kind") == "vote":
                    undrained.append(fields)
            # Every vote the snapshot's stream holds is counted from the stream; the table gives
            # the others (up to the snapshot's sequence) in ONE statement. Two statements (rows
            # up to the sequence, then "which undrained ids are stored") would race a drain
            # batch committing between them and miss the whole batch.
            expected: dict[str, Counter[str]] = {"valid": Counter(), "pending": Counter()}
            for number, status, count in db.session.execute(
                text(
                    "SELECT nominee_number, status, count(*) FROM votes"
                    " WHERE campaign_id = :c AND seq <= :seq AND NOT (id = ANY(:undrained))"
                    " GROUP BY nominee_number, status"
                ),
                {"c": self.campaign_id, "seq": seq, "undrained": [f["id"] for f in undrained]},
            ):
                if status in expected:
                    expected[status][number] += int(count)
            db.session.rollback()
            for fields in undrained:
                expected["valid" if fields["st"] == "valid" else "pending"][fields["n"]] += 1
            differences = []
            for status, live in (("valid", live_valid), ("pending", live_pending)):
                for number in sorted(set(expected[status]) | set(live)):
                    want, have = expected[status][number], live.get(number, 0)
                    if want != have:
                        differences.append(
                            {"nominee": number, "counter": status, "redis": have, "ledger": want}
                        )
            return {
                "drift": sum(abs(d["redis"] - d["ledger"]) for d in differences),
                "differences": differences,
                "sequence": seq,
                "counted": sum(live_valid.values()) + sum(live_pending.values()),
                "undrained": len(undrained),
            }

        with self.app.app_context():
            return retrying(measure)

    # --- jobs ----------------------------------------------------------------------------------

    def jobs(self) -> JobsState:
        import importlib

        from rq import Worker
        from rq.exceptions import NoSuchJobError
        from rq.executions import Execution
        from rq.job import Job

        from core.extensions import QUEUE_NAMES, redis_store
        from core.jobs import JOB_MODULES, PERIODIC

        for module in JOB_MODULES:
            importlib.import_module(module)
        periodic = {f"{p.func.__module__}.{p.func.__name__}": p.seconds for p in PERIODIC}

        def read() -> JobsState:
            state = JobsState()
            client = redis_store.client
            host = socket.gethostname()
            live_names: set[str] = set()
            for worker in Worker.all(connection=client):
                info = {"name": worker.name, "pid": worker.pid, "job": worker.get_current_job_id()}
                if worker.hostname == host and _pid_alive(worker.pid):
                    state.live_workers.append(info)
                    live_names.add(worker.name)
                else:
                    state.dead_workers.append(info)
            for name in QUEUE_NAMES:
                queue = redis_store.queue(name)
                state.queued[name] = queue.count
                later: list[Job] = []
                pairs = queue.started_job_registry.get_job_and_execution_ids(cleanup=False)
                started = [job_id for job_id, _ in pairs]
                for job_id, execution_id in pairs:
                    job = _fetch(job_id)
                    # A live worker runs it (or has just finished it): not abandoned. RQ 3
                    # registers the execution, with its worker, before the work horse writes
                    # the worker into the job: in between the job names none (a chaos run once
                    # counted such a run, taken a moment before the check, as stuck).
                    runner = _execution_worker(job_id, execution_id) or (
                        job.worker_name if job is not None else None
                    )
                    if job is not None and runner in live_names:
                        continue
                    if not later:
                        later = [
                            j
                            for j in Job.fetch_many(
                                queue.finished_job_registry.get_job_ids(cleanup=False)
                                + [i for i in started if i != job_id],
                                connection=client,
                            )
                            if j is not None
                        ]
                    info = _info(job)
                    period = periodic.get(info["func"] or "")
                    # A dying worker can leave the hash half-written: "started", but no worker
                    # and no start time (a chaos run once counted such a run as stuck at once,
                    # though the scheduler had enqueued later runs). Then the time it was
                    # enqueued stands for its start.
                    began = (job.started_at or job.enqueued_at) if job is not None else None
                    state.abandoned.append(
                        {
                            "queue": name,
                            "id": job_id,
                            **info,
                            "next_run_due": began.timestamp() + period + PERIODIC_GRACE
                            if began is not None and period
                            else None,
                            "superseded": job is not None
                            and (
                                (
                                    began is not None
                                    and any(
                                        j.func_name == job.func_name
                                        and j.id != job.id
                                        and j.started_at is not None
                                        and j.started_at > began
                                        for j in later
                                    )
                                )
                                # A later run whose result already expired from the finished
                                # registry (kept 60 s) still shows as the scheduler's latest.
                                or _latest_periodic_run(client, job.func_name) not in (None, job.id)
                            ),
                        }
                    )
                for job_id in queue.failed_job_registry.get_job_ids(cleanup=False):
                    job = _fetch(job_id)
                    info = _info(job)
                    state.failed.append(
                        {
                            "queue": name,
                            "id": job_id,
                            **info,
                            "periodic": info["func"] in periodic,
                        }
                    )
            state.drain_lock_ttl_ms = int(client.pttl(self.lock_key))
            holder = client.get(self.lock_key)
            state.drain_lock_holder = holder.decode() if holder else None
            return state

        def _execution_worker(job_id: str, execution_id: str) -> str | None:
            try:
                execution = Execution.fetch(execution_id, job_id, connection=redis_store.client)
            except Exception:  # gone (ended meanwhile) or never written whole
                return None
            return execution.worker_name or None

        def _fetch(job_id: str) -> Job | None:
            try:
                return Job.fetch(job_id, connection=redis_store.client)
            except NoSuchJobError:
                return None

        def _info(job: Job | None) -> dict[str, Any]:
            if job is None:
                return {"func": None, "worker": None, "error": None}
            error = None
            result = job.latest_result()
            if result is not None and result.exc_string:
                # The last "SomeError: message" line (SQLAlchemy adds [SQL: …], [parameters: …]
                # and a link after it).
                every = [line.strip() for line in result.exc_string.splitlines() if line.strip()]
                lines = [
                    line for line in every if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)
                ] or every
                error = lines[-1][:300] if lines else None
            return {"func": job.func_name, "worker": job.worker_name, "error": error}

        with self.app.app_context():
            return retrying(read)


def _pairs(raw: Any) -> dict[str, int]:
    if isinstance(raw, dict):
        return {k.decode(): int(v) for k, v in raw.items()}
    return {raw[i].decode(): int(raw[i + 1]) for i in range(0, len(raw), 2)}
