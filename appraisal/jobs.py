"""Appraisal jobs: send due invitations (after each upload and every minute), delete phone
numbers past their retention and the cap's old rows (hourly). Idempotent; they commit here."""

from __future__ import annotations

import time

from rq.job import Job

from appraisal import cases, invitations, phone_cap, services
from core.extensions import db
from core.jobs import app_job, enqueue, periodic

# One run sends batch after batch while any is due, for at most this long (below the period,
# so runs of the periodic job seldom overlap; when they do, the claims keep them apart).
RUN_SECONDS = 50.0


def _dispatch_all() -> dict[str, int]:
    return invitations.dispatch(until=time.monotonic() + RUN_SECONDS)


@periodic(seconds=60)
@app_job
def dispatch_invitations() -> dict[str, int]:
    """Send the invitations that are due (appraisal.invitations), a batch at a time."""
    return _dispatch_all()


@app_job
def dispatch_now() -> dict[str, int]:
    """The same, enqueued at once after encounters arrive."""
    return _dispatch_all()


@periodic(seconds=3600)
@app_job
def purge_expired_phones() -> int:
    """Delete phone numbers past their programme's retention period, in batches, and the
    per-phone cap's rows past every period."""
    phone_cap.purge()
    db.session.commit()
    total = 0
    while True:
        count = services.purge_expired()
        db.session.commit()
        total += count
        if count == 0:
            return total


@periodic(seconds=900)
@app_job
def escalate_overdue_cases() -> int:
    """Escalate to the bureau the cases past their deadline (once each, audited)."""
    count = cases.escalate_overdue()
    db.session.commit()
    return count


# Dispatch runs enqueued after each upload: one sending process tops out at 440-540 texts a
# second on PostgreSQL (CPU in the SMS SDK, under one interpreter lock), two at once reached
# 970 on two cores (docs/appraisal.md, Benchmark). They share the work through their claims
# (on PostgreSQL a claim passes over rows another run is claiming) and the rate and the cap
# through Redis and the database; a run that finds nothing due ends at once. Each needs an
# idle RQ worker.
SENDING_RUNS = 2


def enqueue_dispatch() -> list[Job]:
    return [enqueue("default", dispatch_now, job_timeout=600) for _ in range(SENDING_RUNS)]
