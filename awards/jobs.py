"""Awards jobs: building an export file, run by an RQ worker on the ``exports`` queue."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from rq import get_current_job
from rq.job import Job

from awards.export_audit import build_audit_csv
from awards.export_winners import build_winners_html
from awards.export_workbook import build_workbook
from awards.exports import (
    KINDS,
    QUEUE,
    RESULT_TTL,
    VOTE_KINDS,
    exports_dir,
    file_name,
    job_timeout,
    remember,
)
from core.errors import AppError
from core.extensions import db, sqlite_write_intent
from core.jobs import app_job, enqueue
from core.types import utcnow
from voting.exports import load_filters, write_votes_csv, write_votes_xlsx

# A vote export reports its rows at most this often (seconds), besides its first and last page.
ROWS_REPORT_EVERY = 0.5


def _begin_read_snapshot() -> bool:
    """On PostgreSQL, read the whole export in one REPEATABLE READ snapshot. True when this call
    began the session's transaction (the caller then ends it)."""
    if db.session().in_transaction():
        return False
    if db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return True


@app_job
def export_job(
    campaign_id: int, kind: str, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build one export into ``<instance>/exports/{campaign_id}-{kind}-{job_id}.{ext}``.

    The job only reads, so it never commits: on SQLite it opens a plain deferred transaction
    (never ``BEGIN IMMEDIATE``, which would hold the write lock for the whole export); on
    PostgreSQL it reads in one ``REPEATABLE READ`` snapshot, so every sheet describes the same
    moment. The file is written under a temporary name and renamed into place, so a retried job
    or a reader never sees half a file.

    The vote kinds take the vote browser's filters (``voting.exports.dump_filters``) and report
    their rows done and total as well as the percentage."""
    if kind not in KINDS:
        raise ValueError(f"unknown export kind {kind!r}")
    job = get_current_job()
    token = job.id if job is not None else secrets.token_hex(8)

    def report(pct: int) -> None:
        if job is not None:
            job.meta["progress"] = int(pct)
            job.save_meta()

    last_rows = [0.0]

    def report_rows(done: int, total: int) -> None:
        now = time.monotonic()
        if job is None or (0 < done < total and now - last_rows[0] < ROWS_REPORT_EVERY):
            return
        last_rows[0] = now
        # 99 at most until the file is in place: 100 means there is something to download.
        job.meta["progress"] = min(99, done * 100 // total) if total else 0
        job.meta["rows_done"] = done
        job.meta["rows_total"] = total
        job.save_meta()

    folder = exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(campaign_id, kind, token)
    final = folder / name
    partial = folder / f".{name}.{secrets.token_hex(4)}.part"
    # The export only reads: never take SQLite's write lock for minutes (app_job asks for it).
    intent = sqlite_write_intent.set(False)
    began = _begin_read_snapshot()
    try:
        report(0)
        if kind in VOTE_KINDS:
            writer = write_votes_xlsx if kind == "votes_xlsx" else write_votes_csv
            writer(campaign_id, load_filters(filters), partial, report_rows)
        elif kind == "workbook":
            build_workbook(campaign_id, partial, report)
        elif kind == "winners_html":
            build_winners_html(campaign_id, partial)
        else:
            build_audit_csv(campaign_id, partial)
        os.replace(partial, final)
    except AppError as exc:
        if job is not None:
            job.meta["error"] = {"code": exc.code, "message": exc.message}
            job.save_meta()
        raise
    finally:
        partial.unlink(missing_ok=True)
        if began:
            db.session.rollback()
        sqlite_write_intent.reset(intent)
    report(100)
    return {"file": name, "size": final.stat().st_size}


def enqueue_export(
    campaign_id: int,
    kind: str,
    job_id: str,
    filters: dict[str, Any] | None = None,
    requested_by: str | None = None,
) -> Job:
    """Queue the export ``awards.exports.start_export`` recorded (after the caller's commit),
    with the filters as ``voting.exports.dump_filters`` gives them (vote kinds only); list it
    among the campaign's recent exports."""
    args: tuple[Any, ...] = (campaign_id, kind, filters) if filters else (campaign_id, kind)
    job = enqueue(
        QUEUE,
        export_job,
        *args,
        job_id=job_id,
        job_timeout=job_timeout(kind),
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
        meta={
            "progress": 0,
            "requested_at": utcnow().isoformat(),
            "requested_by": requested_by,
        },
    )
    remember(campaign_id, kind, filters or {}, job_id)
    return job
