"""``python -m bench.chaos``: see docs/chaos.md."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from bench.chaos import embedded_report
from bench.chaos.embedded_run import EMBEDDED_FULL, EMBEDDED_QUICK, EmbeddedRun
from bench.chaos.report import render
from bench.chaos.run import FULL, QUICK, Run
from bench.chaos.stack import StackError


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description="Kill gunicorn and RQ workers, Redis and PostgreSQL under a vote load; check "
        "that no acknowledged vote is lost or counted twice and that nothing stays stuck.",
    )
    parser.add_argument("--quick", action="store_true", help="the CI mode: about 90 s, 150 votes/s")
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="steady load held before the first fault and after each one "
        f"(default {FULL.steady:g}; quick {QUICK.steady:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"votes per second sent (default {FULL.rate:g}; quick {QUICK.rate:g})",
    )
    parser.add_argument(
        "--recovery",
        type=float,
        default=None,
        help="seconds the drain may take to store every acknowledged vote after a fault before "
        f"the fault counts as a stall (default {FULL.recovery:g}; quick {QUICK.recovery:g})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (data and logs)"
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="the embedded default instead: `flask --app wsgi up` (SQLite, the embedded "
        "redis-server) in a fresh instance folder; kill -9 its Redis three times (quick: once) "
        f"and its worker once, inject a poison ledger entry (full: {EMBEDDED_FULL.rate:g} "
        f"votes/s sent; quick {EMBEDDED_QUICK.rate:g})",
    )
    opts = parser.parse_args(argv)
    if opts.embedded:
        plan: Any = EMBEDDED_QUICK if opts.quick else EMBEDDED_FULL
    else:
        plan = QUICK if opts.quick else FULL
    changes = {
        name: value
        for name, value in (
            ("steady", opts.seconds),
            ("rate", opts.rate),
            ("recovery", opts.recovery),
        )
        if value is not None
    }
    if any(value <= 0 for value in changes.values()):
        parser.error("--seconds, --rate and --recovery must be positive")
    plan = dataclasses.replace(plan, **changes)

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if opts.embedded:
        run: Any = EmbeddedRun(plan, keep=opts.keep)
        report: Callable[[Any], tuple[list[str], int]] = embedded_report.render
    else:
        run = Run(plan, keep=opts.keep)
        report = render
    try:
        run.execute()
        lines, status = report(run)
        print("\n".join(lines), flush=True)
        return status
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
        return 130
    except StackError as exc:
        print(f"set-up failed: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 2
    finally:
        # Ctrl-C during the clean-up itself must not leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if run.load is not None:
            run.load.stop()
        if run.voters is not None:
            run.voters.stop()
        if run.stack is not None:
            run.stack.close()


if __name__ == "__main__":
    sys.exit(main())
