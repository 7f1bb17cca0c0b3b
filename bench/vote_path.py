"""The vote path's unit costs, for the capacity model (docs/capacity.md): what one vote costs the
vote Redis (the script's server-side time), what the app spends per vote without HTTP, and how
many ledger rows per second one drainer moves into the votes table.

    .venv/bin/python -m bench.vote_path [--votes 20000]

Uses DATABASE_URL / REDIS_URL (and ZUIMEI_VOTE_REDIS_URL) when set, else the embedded default.
The vote Redis's command statistics are reset at the start (CONFIG RESETSTAT), so run it on a
Redis nothing else is measuring.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _evalsha_usec(info: dict) -> tuple[int, float]:
    stats = info.get("cmdstat_evalsha") or {}
    return int(stats.get("calls", 0)), float(stats.get("usec_per_call", 0.0))


def _inside_script(info: dict, calls: int) -> str:
    """The commands the script ran, per vote (Redis counts them apart in INFO commandstats):
    what they took, and the rest of the script's time (Lua, the call bridge, propagation)."""
    parts = []
    total = 0.0
    for name, stats in info.items():
        command = name.removeprefix("cmdstat_")
        if not name.startswith("cmdstat_") or command in ("evalsha", "config", "info", "eval"):
            continue
        per_vote = float(stats["usec"]) / max(calls, 1)
        total += per_vote
        if per_vote >= 0.05:
            parts.append((per_vote, f"{command} {per_vote:.1f}"))
    listed = ", ".join(text for _, text in sorted(parts, reverse=True))
    return f"{total:.1f} µs in its {len(parts)} commands ({listed})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=20_000)
    parser.add_argument("--nominees", type=int, default=30)
    parser.add_argument("--batch", type=int, default=500, help="drain batch size")
    opts = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="zm-votepath-"))
    from bench.common import cleanup, voting_campaign

    app, numbers = voting_campaign(
        instance,
        slug="path",
        nominees=opts.nominees,
        rules={
            "votes_per_day": 5,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": 0,
            "velocity_factor": 0,
        },
        test_config={"VOTE_IP_PER_MINUTE": 0, "VOTE_VOTER_PER_MINUTE": 0},
    )
    from core.extensions import db, redis_store
    from voting import services

    try:
        with app.app_context():
            client = redis_store.votes
            # Warm the script cache and the campaign's state in Redis.
            services.cast_vote(
                "path", {"sub": 0, "c": 1}, numbers[0], idempotency_key=None, ip="10.0.0.1",
                device=None, user_agent="bench",
            )  # fmt: skip
            client.config_resetstat()
            memory_before = int(client.info("memory")["used_memory"])
            latencies: list[float] = []
            started = time.perf_counter()
            for i in range(opts.votes):
                voter = {"sub": 1 + i // 5, "c": 1}
                t0 = time.perf_counter()
                services.cast_vote(
                    "path",
                    voter,
                    numbers[i % len(numbers)],
                    idempotency_key=f"k{i}",
                    ip=f"10.{i % 250}.{(i // 250) % 250}.1",
                    device=f"dev-{i // 5}",
                    user_agent="Mozilla/5.0 (bench) MicroMessenger/8.0",
                )
                latencies.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
            commandstats = client.info("commandstats")
            calls, usec = _evalsha_usec(commandstats)
            inside = _inside_script(commandstats, calls)
            memory_per_vote = (int(client.info("memory")["used_memory"]) - memory_before) / max(
                opts.votes, 1
            )
            ledger = services.CampaignKeys.of("path").ledger
            ledger_bytes = int(client.memory_usage(ledger, samples=0) or 0)
            ledger_entries = int(client.xlen(ledger))

            drain_started = time.perf_counter()
            drained = services.drain_campaign("path", batch=opts.batch)
            drain_elapsed = time.perf_counter() - drain_started
            db.session.remove()

        latencies.sort()
        engine = app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0]
        print(f"database: {engine}; vote redis: {redis_store_mode(app)}")
        print(f"votes cast in-process (one thread, no HTTP): {opts.votes}")
        print(f"  app + round trip per vote: median {statistics.median(latencies) * 1e3:.3f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:.3f} ms; "
              f"{opts.votes / elapsed:,.0f} votes/s on one core")  # fmt: skip
        if usec:
            print(f"  vote script inside Redis: {usec:.1f} µs per call over {calls} calls "
                  f"→ one Redis core saturates near {1e6 / usec:,.0f} votes/s")  # fmt: skip
            print(f"    of which {inside}; the rest is Lua, the redis.call bridge and, "
                  "on Redis 6, feeding the writes to the AOF and replicas")  # fmt: skip
        else:
            print("  vote script inside Redis: no EVALSHA statistics (commandstats unavailable)")
        print(f"vote redis memory: {memory_per_vote:,.0f} bytes per vote in all (ledger entry, "
              f"quota, idempotency and rate keys); the ledger alone "
              f"{ledger_bytes / max(ledger_entries, 1):,.0f} bytes per entry")  # fmt: skip
        rate = drained / drain_elapsed
        print(f"drain: {drained} ledger entries → votes table in {drain_elapsed:.2f} s "
              f"= {rate:,.0f} rows/s (one drainer, batches of {opts.batch})")  # fmt: skip
    finally:
        cleanup(instance)


def redis_store_mode(app) -> str:  # type: ignore[no-untyped-def]
    from core.extensions import redis_store

    with app.app_context():
        return redis_store.vote_mode()


if __name__ == "__main__":
    main()
