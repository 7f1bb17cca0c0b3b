"""Two versions of the vote script side by side in one Redis: what a change to it costs or saves.

    .venv/bin/python -m bench.vote_script_ab [--base HEAD] [--votes 4000] [--rounds 5]

Version A is ``voting/lua/vote.lua`` as committed at ``--base``; version B is the working tree's,
or ``--b-file PATH`` (a variant kept outside the tree, e.g. one with a part taken out to see what
that part costs).
Both are called through the same vote path (``voting.cast.cast_vote``, no HTTP) with every check
the product runs on (the per-address soft limit, the pace check, idempotency keys), in
alternating blocks of ``--votes`` calls, so a noisy machine slows both alike. Each block's
server-side time per call comes from ``INFO commandstats`` (reset before the block); the figures
are the medians over ``--rounds`` blocks per version, and B / A.

Both versions must take the same KEYS and ARGV (the working tree's ``voting/cast.py`` builds
them): compare scripts, not call conventions.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.common import ROOT, cleanup, voting_campaign

SCRIPT = "voting/lua/vote.lua"


def _committed(revision: str) -> str:
    return subprocess.run(
        ["git", "show", f"{revision}:{SCRIPT}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision of version A")
    parser.add_argument("--votes", type=int, default=4000, help="calls per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per version")
    parser.add_argument(
        "--b-file", type=Path, default=None, help="version B from this file (default: the tree's)"
    )
    opts = parser.parse_args()
    b_source = (opts.b_file or ROOT / SCRIPT).read_text()
    sources = {"A": _committed(opts.base), "B": b_source}
    instance = Path(tempfile.mkdtemp(prefix="zm-scriptab-"))
    app, numbers = voting_campaign(
        instance,
        slug="ab",
        nominees=30,
        rules={
            "votes_per_day": 5,
            "votes_per_nominee_per_day": 1,
            # every check runs; none refuses or holds the bench's votes
            "ip_soft_limit": 10000,
            "velocity_factor": 1000,
            "velocity_floor": 1000000,
        },
        test_config={"VOTE_IP_PER_MINUTE": 0, "VOTE_VOTER_PER_MINUTE": 0},
    )
    from core.extensions import redis_store
    from voting import cast

    usec: dict[str, list[float]] = {"A": [], "B": []}
    try:
        with app.app_context():
            client = redis_store.votes
            scripts = {name: client.register_script(text) for name, text in sources.items()}
            voter = 0
            for round_ in range(opts.rounds * 2 + 1):
                # a first, unmeasured block warms both scripts and the campaign's state
                name = "AB"[round_ % 2]
                cast._script = scripts[name]
                client.config_resetstat()
                for _ in range(opts.votes):
                    voter_id = 1 + voter // 5
                    cast.cast_vote(
                        "ab",
                        {"sub": voter_id, "c": 1},
                        numbers[voter % len(numbers)],
                        idempotency_key=f"k{voter}",
                        ip=f"10.{voter % 250}.{(voter // 250) % 250}.1",
                        device=f"dev-{voter_id}",
                        user_agent="Mozilla/5.0 (bench) MicroMessenger/8.0",
                        browser_device=f"dev-{voter_id}",
                    )
                    voter += 1
                stats = client.info("commandstats").get("cmdstat_evalsha") or {}
                if round_ and stats:
                    usec[name].append(float(stats["usec_per_call"]))
            cast._script = None
    finally:
        cleanup(instance)
    a, b = statistics.median(usec["A"]), statistics.median(usec["B"])
    print(f"vote script inside Redis, median of {opts.rounds} blocks of {opts.votes} calls:")
    print(f"  A ({opts.base}): {a:.1f} µs   blocks {', '.join(f'{x:.1f}' for x in usec['A'])}")
    b_name = opts.b_file or "working tree"
    print(f"  B ({b_name}): {b:.1f} µs   blocks {', '.join(f'{x:.1f}' for x in usec['B'])}")
    print(f"  B / A = {b / a:.3f}")


if __name__ == "__main__":
    main()
