"""Fraud evaluation: replay the scenarios of bench/fraud_scenarios and score every one apart.

    .venv/bin/python -m bench.fraud_sim [--days 3] [--scale 1.0] [--seed 7] [--scenarios a,b]
    .venv/bin/python -m bench.fraud_sim --realtime [--span 300] [--backend embedded|postgres]
    .venv/bin/python -m bench.fraud_sim --realtime --quick        # a smoke run within 60 s

In-process mode (the default): the Flask app in this process, days of simulated time (rounds
across days, lockstep sessions hours apart); every page view and vote goes through the real H5
page and vote endpoint (routes, vote script, Redis) with the client address in X-Forwarded-For
(one trusted proxy), a simulated clock swapped in at the vote path's clock seam; identities are
made with the app's own identity service, back-dated to when the scenario says they began. The
ledger is drained and one scan runs in process. Per-minute hard limits, the per-address captcha
and the velocity hold are off, because they read real time: this mode measures the detectors.

Real-time mode (``--realtime``): gunicorn and an RQ worker on a private database and Redis (the
embedded default, or ``--backend postgres``: a database of its own on 127.0.0.1:5432 and a key
prefix of its own on 127.0.0.1:6379), a campaign five minutes old with the product's default
pressure checks, and the mix replayed over HTTP in real time compressed to at most five minutes
by concurrent clients: each identity made through the device identity endpoint (the scenario's
address in X-Forwarded-For, ZUIMEI_TRUSTED_PROXIES=1), page views through the H5 nominee page,
agents, cookies and fingerprint headers as the scenario says. Bought aged accounts are voters
the platform has known for months, so they are put in the database before the run. Then, as
the committee does: wait for the drain, start a scan through the API, wait for it, read the
flags and the votes each names through the vote browser.

Both print the per-scenario table of bench/fraud_scenarios/score.py; ``--json PATH`` also
writes the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import cleanup, local_midnight, voting_campaign
from bench.fraud_scenarios import Attempt, Context, build_mix
from bench.fraud_scenarios.score import score, table

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"  # noqa: S105 - bench.common seeds the demo logins with it
RULES = {"votes_per_day": 3, "votes_per_nominee_per_day": 1}
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"

Getter = Callable[[str, dict[str, Any] | None], Any]


# --- shared ----------------------------------------------------------------------------------


def _identities(
    app: Any, attempts: Sequence[Attempt], began: Callable[[Attempt], datetime | None]
) -> dict[str, str]:
    """Voter tokens, made by the app's identity service as the device endpoint (or the WeChat
    exchange, for aged accounts) would, for every identity ``began`` gives a creation moment;
    the voter row is back-dated to it."""
    from core.extensions import db
    from voting.identity import subject_hash, voter_for, voter_token

    tokens: dict[str, str] = {}
    with app.app_context():
        for attempt in attempts:
            if attempt.identity in tokens or attempt.view_only:
                continue
            moment = began(attempt)
            if moment is None:
                continue
            provider = "device" if attempt.account_age_days is None else "wechat"
            subject = subject_hash(provider, attempt.identity)
            voter = voter_for(provider, subject)
            voter.created_at = moment
            device = subject[:32] if provider == "device" else None
            tokens[attempt.identity] = voter_token(voter, device=device).token
        db.session.commit()
    return tokens


def _flags(get: Getter, slug: str) -> list[dict[str, Any]]:
    """Every flag the committee's list shows by default, with the ids of the votes each names
    (read through the vote browser, ``…/votes?flag=``)."""
    flags = get(f"/api/v1/admin/campaigns/{slug}/fraud/flags", None)["items"]
    for flag in flags:
        ids: set[str] = set()
        page = 1
        while True:
            listing = get(
                f"/api/v1/admin/campaigns/{slug}/votes",
                {"flag": flag["id"], "page": page, "per_page": 500},
            )
            ids.update(row["id"] for row in listing["items"])
            if page * 500 >= listing["total"]:
                break
            page += 1
        flag["vote_ids"] = ids
    return flags


def _outcome(status: int, body: Any) -> dict[str, Any]:
    if status == 201:
        return {"vote_id": body["vote_id"], "status": body.get("status", "valid")}
    code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
    if 400 <= status < 500 and code:
        return {"refused": code}
    return {"error": f"HTTP {status} {code or ''}".strip()}


def _page_calls(slug: str, number: str) -> list[tuple[str, str, Any]]:
    """What opening a nominee page does: the page itself, then what its script calls — the
    visitor's own state and the view beacon (where the page has them; an older page counts the
    view when it is rendered, and these answer 404)."""
    return [
        ("GET", f"/c/{slug}/n/{number}", None),
        ("GET", f"/c/{slug}/me", None),
        ("POST", f"/c/{slug}/beacon", {"number": number}),
    ]


def _views_counted(app: Any, slug: str) -> int:
    """Page views the server counted (read from its store: a check that views reached it)."""
    from campaigns.models import Campaign
    from core.extensions import db
    from voting import fraud

    with app.app_context():
        campaign = db.session.query(Campaign).filter_by(slug=slug).one()
        return sum(fraud.page_views(campaign).values())


def _headers(attempt: Attempt) -> dict[str, str]:
    headers = {"X-Forwarded-For": attempt.address, "User-Agent": attempt.agent}
    if attempt.fingerprint:
        headers["X-Device-Fingerprint"] = attempt.fingerprint
    return headers


# --- in-process ------------------------------------------------------------------------------


def run_in_process(opts: argparse.Namespace) -> dict[str, Any]:
    ctx = Context.make(opts.seed, opts.nominees, realtime=False, days=opts.days, scale=opts.scale)
    attempts = build_mix(ctx, opts.scenarios)
    instance = Path(tempfile.mkdtemp(prefix="zm-sim-"))
    # Today's local midnight onwards: bench.common opens nominations a day before now, and a
    # campaign's voting may not start before its nominations; the simulated clock runs ahead.
    start = local_midnight(days_ago=0).astimezone(UTC)
    try:
        app, numbers = voting_campaign(
            instance,
            slug="sim",
            nominees=opts.nominees,
            rules={**RULES, "ip_soft_limit": 0, "velocity_factor": 0, "freeze_minutes": 0},
            voting_start=start,
            voting_end=start + timedelta(days=opts.days),
            test_config={
                "TRUSTED_PROXIES": 1,
                "VOTE_IP_PER_MINUTE": 0,
                "VOTE_VOTER_PER_MINUTE": 0,
                "DEVICE_IDENTITY": True,
            },
        )
        return _replay_in_process(app, numbers, attempts, start)
    finally:
        cleanup(instance)


def _replay_in_process(
    app: Any, numbers: list[str], attempts: list[Attempt], start: datetime
) -> dict[str, Any]:
    from campaigns.models import Campaign
    from core.extensions import db
    from voting import cast, fraud, jobs, services

    first: dict[str, float] = {}
    for attempt in attempts:
        first.setdefault(attempt.identity, attempt.t)

    def began(attempt: Attempt) -> datetime:
        if attempt.account_age_days is not None:
            return start - timedelta(days=attempt.account_age_days)
        return start + timedelta(seconds=max(0.0, first[attempt.identity] - 60))

    tokens = _identities(app, attempts, began)
    clock = {"at": start}
    saved = cast.clock
    cast.clock = lambda: clock["at"]
    jars: dict[str, Any] = {}
    outcomes: list[dict[str, Any] | None] = []
    started = time.perf_counter()
    try:
        for attempt in attempts:
            clock["at"] = start + timedelta(seconds=attempt.t)
            if attempt.keep_cookies:
                client = jars.setdefault(attempt.device, app.test_client())
            else:
                client = app.test_client()
            headers = _headers(attempt)
            number = numbers[attempt.nominee]
            if attempt.viewed:
                for method, path, body in _page_calls("sim", number):
                    client.open(path, method=method, json=body, headers=headers).close()
            if attempt.view_only:
                outcomes.append(None)
                continue
            headers["Authorization"] = f"Bearer {tokens[attempt.identity]}"
            response = client.post(
                "/api/v1/campaigns/sim/votes", json={"nominee": number}, headers=headers
            )
            outcomes.append(_outcome(response.status_code, response.get_json(silent=True)))
    finally:
        cast.clock = saved
    sent = time.perf_counter() - started
    with app.app_context():
        services.drain_campaign("sim")
        campaign = db.session.query(Campaign).filter_by(slug="sim").one()
        scan = fraud.start_scan(campaign, "admin")
        db.session.commit()
        scan_started = time.perf_counter()
        jobs.fraud_scan(scan.id)
        scan_seconds = time.perf_counter() - scan_started
    admin = app.test_client()
    login = admin.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {login.get_json()['access_token']}"}

    def get(path: str, params: dict[str, Any] | None) -> Any:
        response = admin.get(path, query_string=params or {}, headers=auth)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.get_data(True)}")
        return response.get_json()

    report = score(attempts, outcomes, _flags(get, "sim"), mode="in-process")
    report["run"] = {
        "days": (attempts[-1].t // 86400) + 1 if attempts else 0,
        "requests_seconds": round(sent, 1),
        "scan_seconds": round(scan_seconds, 2),
        "page_views": sum(1 for a in attempts if a.viewed),
        "views_counted": _views_counted(app, "sim"),
        "identities": len(tokens),
    }
    return report


# --- real time -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Process:
    """A child in its own session with its output in a log file; stopped by its own id."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=wait)
        self._out.close()


class _Client:
    """Concurrent HTTP clients: one pooled connection set per thread; cookies kept per device
    (the phone's jar) when the scenario keeps them, none otherwise."""

    def __init__(self, base: str, slug: str, numbers: list[str], tokens: dict[str, str]) -> None:
        self.base, self.slug, self.numbers = base, slug, numbers
        self.tokens = dict(tokens)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.identity_locks: dict[str, threading.Lock] = {}
        self.jars: dict[str, Any] = {}
        self.lags: list[float] = []

    def _session(self) -> Any:
        import requests

        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        session = self.local.session
        session.cookies.clear()
        return session

    def _send(self, method: str, path: str, attempt: Attempt, **kwargs: Any) -> Any:
        import requests

        session = self._session()
        jar = None
        if attempt.keep_cookies:
            with self.lock:
                jar = self.jars.setdefault(attempt.device, requests.cookies.RequestsCookieJar())
        response = session.request(
            method, self.base + path, cookies=jar, timeout=30, allow_redirects=False, **kwargs
        )
        if jar is not None:
            jar.update(response.cookies)
        return response

    def _token(self, attempt: Attempt, headers: dict[str, str]) -> tuple[str | None, Any]:
        with self.lock:
            lock = self.identity_locks.setdefault(attempt.identity, threading.Lock())
        with lock:
            if attempt.identity in self.tokens:
                return self.tokens[attempt.identity], None
            response = self._send(
                "POST", "/api/v1/voters/device", attempt,
                json={"device_id": attempt.identity}, headers=headers,
            )  # fmt: skip
            body = response.json() if response.content else {}
            if response.status_code != 201:
                outcome = _outcome(response.status_code, body)
                if "refused" in outcome:
                    outcome["refused"] = f"identity:{outcome['refused']}"
                return None, outcome
            self.tokens[attempt.identity] = body["voter_token"]
            return body["voter_token"], None

    def act(self, attempt: Attempt, due: float) -> dict[str, Any] | None:
        with self.lock:
            self.lags.append(time.monotonic() - due)
        try:
            headers = _headers(attempt)
            number = self.numbers[attempt.nominee]
            if attempt.viewed:
                for method, path, body in _page_calls(self.slug, number):
                    self._send(method, path, attempt, json=body, headers=headers).close()
            if attempt.view_only:
                return None
            token, refused = self._token(attempt, headers)
            if token is None:
                return refused
            response = self._send(
                "POST", f"/api/v1/campaigns/{self.slug}/votes", attempt,
                json={"nominee": number},
                headers={**headers, "Authorization": f"Bearer {token}"},
            )  # fmt: skip
            body = response.json() if response.content else {}
            return _outcome(response.status_code, body)
        except Exception as exc:  # a broken connection is reported, not scored
            return {"error": type(exc).__name__}


def _wait(what: str, check: Callable[[], bool], timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def run_realtime(opts: argparse.Namespace) -> dict[str, Any]:
    import requests

    ctx = Context.make(opts.seed, opts.nominees, realtime=True, span=opts.span, scale=opts.scale)
    attempts = build_mix(ctx, opts.scenarios)
    instance = Path(tempfile.mkdtemp(prefix="zm-rt-"))
    logs = instance / "logs"
    logs.mkdir()
    if opts.backend == "postgres":
        os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL") or PG_URL
        os.environ["REDIS_URL"] = os.environ.get("REDIS_URL") or REDIS_URL
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    port = _free_port()
    os.environ.update(
        {
            "ZUIMEI_INSTANCE_PATH": str(instance),
            "ZUIMEI_TRUSTED_PROXIES": "1",
            "ZUIMEI_DEVICE_IDENTITY": "1",
            # The device endpoint stands in for the WeChat login here, which has no per-address
            # creation limit of ours; every other limit stays at the product's defaults.
            "ZUIMEI_VOTER_CREATE_IP_LIMIT": "1000000/minute",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(opts.web_workers),
            "GUNICORN_THREADS": "8",
            "GUNICORN_LOG_LEVEL": "warning",
            "PROMETHEUS_MULTIPROC_DIR": str(instance / "prometheus"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    processes: list[_Process] = []
    try:
        from core.clock import utcnow

        now = utcnow()
        began = time.monotonic()
        app, numbers = voting_campaign(
            instance,
            slug="rt",
            nominees=opts.nominees,
            rules=RULES,
            voting_start=now - timedelta(minutes=5),
            voting_end=now + timedelta(days=1),
        )
        aged = _identities(
            app,
            attempts,
            lambda a: (
                None if a.account_age_days is None else now - timedelta(days=a.account_age_days)
            ),
        )
        env = dict(os.environ)
        processes.append(
            _Process(
                [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                env,
                logs / "gunicorn.log",
            )
        )
        processes.append(
            _Process(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env, logs / "worker.log"
            )
        )
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if not all(p.alive() for p in processes):
                raise RuntimeError(
                    "a server exited: " + (logs / "gunicorn.log").read_text()[-3000:]
                )
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{base}/healthz", timeout=1).status_code == 200
            return False

        set_up = time.monotonic() - began
        _wait("gunicorn /healthz", healthy, 60, 0.2)
        servers_up = time.monotonic() - began - set_up
        admin = requests.Session()
        login = admin.post(
            f"{base}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        login.raise_for_status()
        admin.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

        def get(path: str, params: dict[str, Any] | None) -> Any:
            response = admin.get(base + path, params=params, timeout=60)
            response.raise_for_status()
            return response.json()

        client = _Client(base, "rt", numbers, aged)
        replay_started = time.monotonic()
        pool = ThreadPoolExecutor(opts.clients)
        try:
            futures = []
            t0 = time.monotonic() + 1.0
            for attempt in attempts:
                due = t0 + attempt.t
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(client.act, attempt, due))
            outcomes = [future.result() for future in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        replay_seconds = time.monotonic() - replay_started
        settle = time.monotonic()
        slug_path = "/api/v1/admin/campaigns/rt"
        _wait("the drain", lambda: get(f"{slug_path}/tally", None)["undrained"] == 0, 300, 1)
        drained = time.monotonic() - settle
        scan = admin.post(base + f"{slug_path}/fraud/scans", timeout=60)
        scan.raise_for_status()
        scan_id = scan.json()["id"]
        scan_started = time.monotonic()
        state: dict[str, Any] = {}

        def scanned() -> bool:
            state.update(get(f"{slug_path}/fraud/scans/{scan_id}", None))
            return state["status"] in ("done", "failed")

        _wait("the scan", scanned, 600, 0.5)
        if state["status"] != "done":
            raise RuntimeError(f"the scan failed: {state.get('error')}")
        scan_seconds = time.monotonic() - scan_started
        report = score(attempts, outcomes, _flags(get, "rt"), mode=f"realtime/{opts.backend}")
        lags = sorted(client.lags) or [0.0]
        report["run"] = {
            "setup_seconds": round(set_up, 1),
            "servers_start_seconds": round(servers_up, 1),
            "span_seconds": opts.span,
            "replay_seconds": round(replay_seconds, 1),
            "requests_late_p50_s": round(lags[len(lags) // 2], 3),
            "requests_late_p95_s": round(lags[int(len(lags) * 0.95)], 3),
            "drain_wait_seconds": round(drained, 1),
            "scan_seconds": round(scan_seconds, 1),
            "page_views": sum(1 for a in attempts if a.viewed),
            "views_counted": _views_counted(app, "rt"),
            "identities": len({a.identity for a in attempts if not a.view_only}),
            "campaign_age_at_scan_minutes": round(
                (utcnow() - now).total_seconds() / 60 + 5,
                1,
            ),
        }
        return report
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            print(f"--- {log.name} (last lines) ---\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        for process in reversed(processes):
            process.stop()
        cleanup(instance)


# --- command ---------------------------------------------------------------------------------


def _summary(report: dict[str, Any]) -> str:
    run = ", ".join(f"{k} {v}" for k, v in report.get("run", {}).items())
    return f"mode {report['mode']}: {run}\n" + table(report)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realtime", action="store_true", help="gunicorn + worker, over HTTP")
    parser.add_argument("--quick", action="store_true", help="a small mix: a smoke run")
    parser.add_argument("--days", type=int, default=3, help="in-process: simulated days")
    parser.add_argument("--span", type=float, default=300, help="realtime: seconds of traffic")
    parser.add_argument("--scale", type=float, default=None, help="head counts × this")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nominees", type=int, default=20)
    parser.add_argument("--scenarios", default=None, help="comma-separated (default: all)")
    parser.add_argument("--backend", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--clients", type=int, default=48, help="realtime: concurrent clients")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    opts = parser.parse_args(argv)
    # A SIGTERM (a test's timeout, kill <pid>) unwinds like an error: servers stopped, the
    # private database dropped, the instance folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    opts.scenarios = opts.scenarios.split(",") if opts.scenarios else None
    if opts.quick:
        opts.scale = 0.06 if opts.scale is None else opts.scale
        opts.span = min(opts.span, 15)
        opts.days = min(opts.days, 2)
        opts.nominees = min(opts.nominees, 12)
    opts.scale = 1.0 if opts.scale is None else opts.scale
    if opts.realtime and not 0 < opts.span <= 300:
        parser.error("--span: real-time traffic is at most 300 s (five minutes)")
    report = run_realtime(opts) if opts.realtime else run_in_process(opts)
    print(_summary(report))
    if opts.json:
        opts.json.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=sorted))
    return report


if __name__ == "__main__":
    main()
