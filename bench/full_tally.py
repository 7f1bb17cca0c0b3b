"""Full tally of 1,000,000 stored votes: valid / pending / invalid per nominee, compared with the
live counters (target: within 10 s).

    .venv/bin/python -m bench.full_tally [--votes 1000000]

Uses DATABASE_URL / REDIS_URL when set, else the embedded default. The votes are written straight
into the votes table (the vote path is measured by bench.vote_load); then the tally is timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    opts = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="zm-tally-"))
    from bench.common import cleanup, local_midnight, voting_campaign

    app, numbers = voting_campaign(
        instance,
        slug="tally",
        nominees=30,
        rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1},
    )
    from sqlalchemy import insert, select

    from campaigns.models import Campaign
    from core.extensions import db
    from voting import fraud
    from voting.models import Vote

    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "tally"))
        started = time.perf_counter()
        day = local_midnight(days_ago=1)
        at = day.astimezone(UTC)
        batch = 50_000
        for first in range(0, opts.votes, batch):
            rows = [
                {
                    "id": f"{campaign.id}-{i}-b",
                    "campaign_id": campaign.id,
                    "seq": i,
                    "category_code": "doctor",
                    "nominee_number": numbers[i % len(numbers)],
                    "voter_id": i // 3,
                    "at": at,
                    "day": day.date().isoformat(),
                    "ip": "10.0.0.1",
                    "status": "valid" if i % 50 else ("pending" if i % 100 else "invalid"),
                    "written_status": "valid",
                    "chain_index": i + 1,
                    "prev_hash": "0" * 64,
                    "hash": "0" * 64,
                    "drained_at": at,
                }
                for i in range(first, min(first + batch, opts.votes))
            ]
            db.session.execute(insert(Vote), rows)
            db.session.commit()
        loaded = time.perf_counter() - started
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            report = fraud.full_tally(campaign)
            timings.append(time.perf_counter() - started)
        db.session.remove()
    timings.sort()
    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}")
    print(f"loaded {opts.votes:,} votes in {loaded:.1f} s")
    print(
        f"full tally: median {timings[1]:.2f} s of 3 runs (target <= 10 s); "
        f"totals {report['totals']}"
    )
    cleanup(instance)


if __name__ == "__main__":
    main()
