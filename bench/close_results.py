"""Seconds from the close of voting to computed results, on the embedded default, under load.

    .venv/bin/python -m bench.close_results [--load-seconds 40] [--rate 30] [--quick]

Starts Zuimei as a newcomer does (``flask --app wsgi up``: the SQLite file database and the
embedded redis-server of a fresh instance folder, gunicorn and one RQ worker with its
scheduler), with a campaign whose voting closes ``--load-seconds`` after the load starts.
Client threads make voters through the public API (``POST /api/v1/voters/device``, a database
write each) and cast their votes at ``--rate`` votes/s until the close. At the close the
committee's moves follow at once: the campaign goes to ``judging`` and results are requested
(``POST /api/v1/admin/campaigns/<slug>/results``) every 0.2 s until they are computed
(``409 ledger_not_drained`` until every acknowledged vote is in the votes table).

Prints the seconds from the close to the results (target <= 5 s), the 409s seen, the load's
figures, and whether every acknowledged vote is in the votes table and in the result. Uses
DATABASE_URL / REDIS_URL when set (then `up` uses them too); the subject is the default.
Exits non-zero when the target is missed or a vote is missing. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import cleanup

ROOT = Path(__file__).resolve().parent.parent
SLUG = "closing"
NOMINEES = 30
VOTES_PER_VOTER = 5
TARGET_SECONDS = 5.0
# bench.common.voting_campaign seeds the demo logins with it
PASSWORD = "bench-password-1"  # noqa: S105 - a throw-away instance's demo login


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """A keep-alive JSON client for one thread."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                try:
                    parsed = json.loads(data) if data else {}
                except ValueError:
                    parsed = {"raw": data[:200].decode(errors="replace")}
                return response.status, parsed
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@dataclass
class LoadFigures:
    acked: list[str] = field(default_factory=list)
    voters: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    first_closed_at: float | None = None  # app clock (epoch s) of the first voting_closed
    lock: threading.Lock = field(default_factory=threading.Lock)


def _prepare(instance: Path) -> list[str]:
    """The campaign, open for voting (its close is set once `up` is serving)."""
    from bench.common import voting_campaign
    from core.extensions import db

    app, numbers = voting_campaign(
        instance,
        slug=SLUG,
        nominees=NOMINEES,
        rules={
            "votes_per_day": VOTES_PER_VOTER,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": 0,
            "velocity_floor": 1_000_000,
        },
    )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return numbers


def _login(api: Api) -> str:
    status, body = api.call(
        "POST", "/api/v1/auth/login", {"username": "admin", "password": PASSWORD}
    )
    if status != 200:
        raise SystemExit(f"admin login failed: {status} {body}")
    return str(body["access_token"])


def _set_close(api: Api, token: str, seconds: float) -> float:
    """The committee sets the close ``seconds`` from now (the app's clock); its epoch."""
    from core.types import utcnow

    voting_end = (utcnow() + timedelta(seconds=seconds + 1)).replace(microsecond=0)
    status, body = api.call(
        "PATCH", f"/api/v1/campaigns/{SLUG}", {"voting_end": voting_end.isoformat()}, token
    )
    if status != 200:
        raise SystemExit(f"setting the close failed: {status} {body}")
    return voting_end.timestamp()


def _start_up(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - the child holds it; closed when we exit
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "up",
            "--no-demo",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(port: int, up: subprocess.Popen[bytes], timeout: float = 90) -> None:
    api = Api(port, timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up.poll() is not None:
            raise SystemExit(f"`flask up` exited with status {up.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if api.call("GET", "/readyz")[0] == 200:
                return
        time.sleep(0.3)
    raise SystemExit("`flask up` did not become ready")


def _stop_up(up: subprocess.Popen[bytes]) -> None:
    if up.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=10)


def _load(
    port: int,
    numbers: list[str],
    rate: float,
    threads: int,
    close_epoch: float,
    figures: LoadFigures,
) -> None:
    """Voters made through the API, each casting VOTES_PER_VOTER votes, paced to ``rate`` votes
    a second in total, until the close has passed (and been seen)."""
    from core.clock import epoch

    counter = iter(range(10**9))
    counter_lock = threading.Lock()
    begin = time.monotonic()
    stop_at = close_epoch + 0.5

    def work(thread: int) -> None:
        api = Api(port)
        while epoch() < stop_at:
            with counter_lock:
                voter = next(counter)
            status, body = api.call(
                "POST", "/api/v1/voters/device", {"device_id": f"close-bench-{voter:07d}"}
            )
            if status != 201:
                with figures.lock:
                    figures.errors.append(f"voter {voter}: {status} {body}")
                time.sleep(0.2)
                continue
            token = body["voter_token"]
            with figures.lock:
                figures.voters += 1
            for k in range(VOTES_PER_VOTER):
                # Paced: vote k of voter v is due at (v * VOTES_PER_VOTER + k) / rate.
                due = begin + (voter * VOTES_PER_VOTER + k) / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if epoch() >= stop_at:
                    return
                nominee = numbers[(voter + k * 7) % len(numbers)]
                status, body = api.call(
                    "POST", f"/api/v1/campaigns/{SLUG}/votes", {"nominee": nominee}, token
                )
                with figures.lock:
                    if status == 201:
                        figures.acked.append(body["vote_id"])
                    else:
                        code = (body.get("error") or {}).get("code") or str(status)
                        figures.refused[code] = figures.refused.get(code, 0) + 1
                        if code == "voting_closed" and figures.first_closed_at is None:
                            figures.first_closed_at = epoch()
                        if status >= 500:
                            figures.errors.append(f"vote: {status} {body}")

    pool = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _results_after_close(port: int, token: str, close_epoch: float) -> dict[str, Any]:
    """At the close move the campaign to judging and ask for results until they are computed.
    Seconds are counted from the close by the app's clock."""
    from core.clock import epoch

    api = Api(port, timeout=30)
    while epoch() < close_epoch:
        time.sleep(min(0.05, max(0.0, close_epoch - epoch())))
    status, body = api.call("POST", f"/api/v1/campaigns/{SLUG}/phase", {"phase": "judging"}, token)
    if status != 200:
        raise SystemExit(f"moving to judging failed: {status} {body}")
    phase_s = epoch() - close_epoch
    conflicts = 0
    other: dict[str, int] = {}
    while True:
        status, body = api.call(
            "POST", f"/api/v1/admin/campaigns/{SLUG}/results", {"reason": "投票结束"}, token
        )
        if status == 201:
            return {
                "seconds": epoch() - close_epoch,
                "phase_s": phase_s,
                "conflicts": conflicts,
                "other": other,
                "version": body,
            }
        code = (body.get("error") or {}).get("code") or str(status)
        if code == "ledger_not_drained":
            conflicts += 1
        else:
            other[code] = other.get(code, 0) + 1
        if epoch() - close_epoch > 120:
            raise SystemExit(f"no results 120 s after the close (last answer {status} {body})")
        time.sleep(0.2)


def _stored_votes(instance: Path, acked: list[str]) -> tuple[int, int]:
    """How many acknowledged votes the votes table holds, and how many rows it has."""
    from sqlalchemy import func, select

    from core import create_app
    from core.extensions import db
    from voting.models import Vote

    app = create_app()
    with app.app_context():
        rows = db.session.scalar(select(func.count(Vote.id))) or 0
        found = 0
        for start in range(0, len(acked), 500):
            chunk = acked[start : start + 500]
            found += db.session.scalar(select(func.count(Vote.id)).where(Vote.id.in_(chunk))) or 0
        db.session.remove()
        db.engine.dispose()
    return found, rows


def run(load_seconds: float, rate: float, threads: int, keep: bool = False) -> dict[str, Any]:
    """One run; returns its figures (also used by the quick test)."""
    from core.clock import epoch

    instance = Path(tempfile.mkdtemp(prefix="zm-close-"))
    port = _free_port()
    os.environ.update(
        {
            "ZUIMEI_INSTANCE_PATH": str(instance),
            # One client address sends everything: the per-address limits would refuse the
            # load itself, which is not what is measured. Rates per voter stay as they are.
            "ZUIMEI_VOTE_IP_PER_MINUTE": "0",
            "ZUIMEI_VOTER_CREATE_IP_LIMIT": "1000000/minute",
            "ZUIMEI_LOG_FORMAT": "text",
        }
    )
    up: subprocess.Popen[bytes] | None = None
    try:
        numbers = _prepare(instance)
        up = _start_up(port, dict(os.environ), instance / "up.log")
        _wait_ready(port, up)
        api = Api(port, timeout=30)
        token = _login(api)
        close_epoch = _set_close(api, token, load_seconds)
        figures = LoadFigures()
        started = epoch()
        result: dict[str, Any] = {}
        committee = threading.Thread(
            target=lambda: result.update(_results_after_close(port, token, close_epoch)),
            daemon=True,
        )
        committee.start()
        _load(port, numbers, rate, threads, close_epoch, figures)
        committee.join(timeout=150)
        if not result:
            raise SystemExit("the results thread ended without results (see its error above)")
        found, rows = _stored_votes(instance, figures.acked)
        version = result["version"]
        counted = sum(int(e.get("valid_votes") or 0) for e in version.get("entries") or [])
        figures_out = {
            "seconds": result["seconds"],
            "phase_s": result["phase_s"],
            "conflicts": result["conflicts"],
            "other_refusals": result["other"],
            "acked": len(figures.acked),
            "voters": figures.voters,
            "rate": len(figures.acked) / max(1e-9, close_epoch - started),
            "refused": figures.refused,
            "errors": figures.errors[:5],
            "error_count": len(figures.errors),
            "stored": found,
            "rows": rows,
            "result_votes": counted,
            "instance": str(instance),
        }
        return figures_out
    finally:
        if up is not None:
            _stop_up(up)
        if keep:
            print(f"kept {instance} (up.log inside)", file=sys.stderr)
        else:
            cleanup(instance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=40, help="vote load before the close")
    parser.add_argument("--rate", type=float, default=30, help="votes per second (>= 20)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="12 s of load at 24 votes/s")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    opts = parser.parse_args()
    if opts.quick:
        opts.load_seconds, opts.rate = 12, 24
    figures = run(opts.load_seconds, opts.rate, opts.threads, keep=opts.keep)
    database = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite (embedded)"
    redis_kind = "server" if os.environ.get("REDIS_URL") else "embedded"
    print(
        f"setup: flask up, database={database}, redis={redis_kind}, {opts.threads} client threads"
    )
    print(
        f"load:  {figures['acked']} votes acknowledged from {figures['voters']} voters in "
        f"{opts.load_seconds:.0f} s ({figures['rate']:.1f} votes/s), refused {figures['refused']}, "
        f"errors {figures['error_count']} {figures['errors']}"
    )
    print(
        f"close: phase moved to judging {figures['phase_s']:.2f} s after the close; "
        f"{figures['conflicts']} x 409 ledger_not_drained, "
        f"other refusals {figures['other_refusals']}"
    )
    print(
        f"votes: {figures['stored']}/{figures['acked']} acknowledged votes stored "
        f"({figures['rows']} rows), {figures['result_votes']} valid votes in the result"
    )
    ok = figures["seconds"] <= TARGET_SECONDS and figures["stored"] == figures["acked"]
    print(
        f"results ready {figures['seconds']:.2f} s after the close "
        f"(target <= {TARGET_SECONDS:.0f} s): {'PASS' if ok else 'FAIL'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
