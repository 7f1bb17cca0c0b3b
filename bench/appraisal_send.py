"""Sending appraisal invitations: N encounters registered, then texted through Tencent Cloud's
SDK against the loopback fake of its SMS API (which checks every TC3 signature), by the job the
worker runs (target: >= 500 a second, the sending process's memory flat and <= 300 MB).

    .venv/bin/python -m bench.appraisal_send [--invitations 100000] [--senders 1]

Uses DATABASE_URL / REDIS_URL when set, else the embedded default. The encounters are registered
through ``appraisal.services.register`` (the path uploads and the API take, in batches); the fake
runs in this process; the sending runs in ``--senders`` processes of their own (``--send``),
started at once as that many RQ workers would run the job: each calls the job function
``appraisal.jobs.dispatch_now`` as the worker does, run after run until nothing is due, and
samples its own resident memory and CPU as it goes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

PER_SECOND = 5000  # the rate limit: above the target, so the bench measures the sending path
UNITS = 46
REGISTER_BATCH = 2000


def _sms_config(endpoint: str) -> dict[str, Any]:
    from tests.voting.sms_fake import APP_ID, SECRET_ID, SECRET_KEY, SIGN_NAME, TEMPLATE_ID

    return {
        "SMS_PROVIDER": "tencent",
        "TENCENTCLOUD_SECRET_ID": SECRET_ID,
        "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
        "SMS_APP_ID": APP_ID,
        "SMS_SIGN_NAME": SIGN_NAME,
        "SMS_TEMPLATE_ID": TEMPLATE_ID,
        "SMS_ENDPOINT": endpoint,
        "SMS_TIMEOUT": 5,
        "APPRAISAL_SMS_TEMPLATE_ID": TEMPLATE_ID,
        "APPRAISAL_LINK_BASE": "https://pj.example.cn",
        "APPRAISAL_SMS_PER_SECOND": PER_SECOND,
        "PII_KEY": "ab" * 32,
    }


def _rss_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in kB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (/proc/stat's first line)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def register(app: Any, total: int) -> float:
    """A county bureau, its units, an active programme, and ``total`` encounters (seconds)."""
    from flask_migrate import upgrade

    from appraisal import services
    from bench.common import ROOT, local_midnight
    from campaigns import services as campaign_services
    from campaigns.models import Account
    from core.extensions import db

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        bureau = campaign_services.create_unit("BK1", "压测县卫健局", "county")
        units = [
            campaign_services.create_unit(f"BH{n:02d}", f"压测医院{n}", "institution", "BK1")
            for n in range(UNITS)
        ]
        # No login: the programme's creator only (a hash no password matches).
        admin = Account(username="bench-admin", password_hash="!", role="admin")  # noqa: S106
        db.session.add(admin)
        db.session.flush()
        programme = services.create_programme(
            admin, {"code": "bench", "title": "压测评议", "bureau_code": bureau.code}
        )
        db.session.commit()
        day = local_midnight(days_ago=1).date().isoformat()
        started = time.perf_counter()
        for first in range(0, total, REGISTER_BATCH):
            count = min(REGISTER_BATCH, total - first)
            unit = units[(first // REGISTER_BATCH) % UNITS]
            rows = [
                (n + 1, {"phone": f"1{3 + i % 7}{i:09d}", "date": day, "department": "内科"})
                for n, i in enumerate(range(first, first + count))
            ]
            outcome = services.register(programme, unit, rows, source="api")
            assert not outcome.refused, outcome.refused[:3]
            db.session.commit()
        seconds = time.perf_counter() - started
        db.session.remove()
    return seconds


def send(config: dict[str, Any]) -> dict[str, Any]:
    """The worker side (a process of its own): run the dispatch job until nothing is due."""
    from core import create_app
    from core.jobs import set_job_app

    app = create_app(config)
    set_job_app(app)
    from appraisal import jobs

    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append((time.perf_counter(), _rss_kb()[0]))

    counts: dict[str, int] = {}
    sampler = threading.Thread(target=sample, daemon=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall_started = time.time()
    started = time.perf_counter()
    sampler.start()
    runs = 0
    while True:
        result = jobs.dispatch_now()  # as the worker runs it: outside any app context
        runs += 1
        for key, value in result.items():
            counts[key] = counts.get(key, 0) + value
        if not result:
            break
    seconds = time.perf_counter() - started
    wall_ended = time.time()
    after = resource.getrusage(resource.RUSAGE_SELF)
    done.set()
    sampler.join()
    rss, hwm = _rss_kb()
    samples.append((time.perf_counter(), rss))
    return {
        "seconds": seconds,
        "wall": [wall_started, wall_ended],
        "cpu": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
        "counts": counts,
        "runs": runs,
        "samples": [[t - started, kb] for t, kb in samples],
        "hwm_kb": hwm,
    }


def _statuses(app: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from appraisal.models import Invitation
    from core.extensions import db

    with app.app_context():
        rows = db.session.execute(
            select(Invitation.status, func.count()).group_by(Invitation.status)
        ).all()
        db.session.remove()
    return {status: int(count) for status, count in rows}


def _rss_at(samples: list[list[float]], share: float) -> float:
    """RSS (MB) of the sample nearest ``share`` of the sending time."""
    end = samples[-1][0]
    nearest = min(samples, key=lambda s: abs(s[0] - share * end))
    return nearest[1] / 1024


def _sampled(path: str, run: Any) -> Any:
    """``run()`` with every thread's stack sampled every 5 ms (cProfile sees only the main
    thread; the provider calls are in the pool's): self and inclusive counts per function and
    thread kind, written to ``path``."""
    import collections
    import sys as _sys

    own: collections.Counter[tuple[str, str]] = collections.Counter()
    inclusive: collections.Counter[tuple[str, str]] = collections.Counter()
    ticks: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def sample() -> None:
        me = threading.get_ident()
        while not done.wait(0.005):
            names = {
                t.ident: t.name.split("_")[0].rstrip("-0123456789") for t in threading.enumerate()
            }
            for ident, frame in _sys._current_frames().items():
                if ident == me:
                    continue
                kind = names.get(ident, "?")
                ticks[kind] += 1
                seen: set[str] = set()
                leaf = True
                while frame is not None:
                    code = frame.f_code
                    where = f"{code.co_filename.split('site-packages/')[-1]}:{code.co_name}"
                    if leaf:
                        own[(kind, where)] += 1
                        leaf = False
                    if where not in seen:
                        seen.add(where)
                        inclusive[(kind, where)] += 1
                    frame = frame.f_back

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        return run()
    finally:
        done.set()
        sampler.join()
        with open(path, "w") as out:
            for kind, total in ticks.most_common():
                out.write(f"== thread {kind}: {total} samples\n-- self\n")
                for (k, where), count in own.most_common():
                    if k == kind and count * 200 >= total:
                        out.write(f"{count / total:6.1%} {where}\n")
                out.write("-- inclusive\n")
                for (k, where), count in inclusive.most_common():
                    if k == kind and count * 100 >= total:
                        out.write(f"{count / total:6.1%} {where}\n")


def _run_senders(config: dict[str, Any], senders: int) -> list[dict[str, Any]]:
    """Start ``senders`` sending processes at once and wait for them all; their reports."""
    root = Path(__file__).resolve().parent.parent
    procs = []
    for n in range(senders):
        env = {**os.environ, "BENCH_SENDER": str(n + 1)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.appraisal_send", "--send", json.dumps(config)],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
            )
        )
    runs = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a sender failed (exit {proc.returncode})")
        runs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return runs


def _profile_path(variable: str) -> str | None:
    """The path in ``variable`` (BENCH_PROFILE, BENCH_SAMPLE), one per sender when several."""
    path = os.environ.get(variable)
    sender = os.environ.get("BENCH_SENDER", "1")
    return f"{path}.{sender}" if path and sender != "1" else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invitations", type=int, default=100_000)
    parser.add_argument(
        "--senders", type=int, default=1, help="sending processes started at once (RQ workers)"
    )
    # The worker side: its config as JSON. BENCH_PROFILE=path profiles it (cProfile, the main
    # thread); BENCH_SAMPLE=path samples every thread's stacks.
    parser.add_argument("--send", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.send:
        profile = _profile_path("BENCH_PROFILE")  # a path: cProfile the sending into it
        sampled = _profile_path("BENCH_SAMPLE")  # a path: every thread's stacks sampled into it
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            result = profiler.runcall(send, json.loads(opts.send))
            profiler.dump_stats(profile)
        elif sampled:
            result = _sampled(sampled, lambda: send(json.loads(opts.send)))
        else:
            result = send(json.loads(opts.send))
        print(json.dumps(result))
        return
    instance = Path(tempfile.mkdtemp(prefix="zm-appraisal-send-"))
    os.environ["ZUIMEI_INSTANCE_PATH"] = str(instance)
    from bench.common import cleanup, private_services
    from core import create_app
    from tests.voting.sms_fake import FakeTencentSms

    with FakeTencentSms() as fake:
        config = {**private_services(), **_sms_config(fake.endpoint)}
        app = create_app(config)
        registered = register(app, opts.invitations)
        # The CPU split while sending: the senders (the children), this process (the fake's
        # HTTP server and signature checks: it does nothing else meanwhile), the machine.
        own, machine = resource.getrusage(resource.RUSAGE_SELF), _machine_busy()
        runs = _run_senders(config, opts.senders)
        calls, verified = fake.calls, fake.verified
        links = Counter(str(m["params"][-1]) for m in fake.sent)
        accepted = len(fake.sent)
        own_after, machine_after = resource.getrusage(resource.RUSAGE_SELF), _machine_busy()
    fake_cpu = own_after.ru_utime + own_after.ru_stime - own.ru_utime - own.ru_stime
    busy = (machine_after[0] - machine[0]) / max(1, machine_after[1] - machine[1])
    statuses = _statuses(app)
    # The whole send: from the first sender's start to the last one's end.
    seconds = max(r["wall"][1] for r in runs) - min(r["wall"][0] for r in runs)
    counts: Counter[str] = Counter()
    for r in runs:
        counts.update(r["counts"])
    rate = opts.invitations / seconds if seconds else float("nan")
    duplicates = sum(n - 1 for n in links.values() if n > 1)
    exact = (
        statuses == {"sent": opts.invitations}
        and accepted == opts.invitations
        and len(links) == opts.invitations
        and duplicates == 0
    )
    print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}")
    print(f"registered {opts.invitations:,} encounters in {registered:.1f} s")
    print(
        f"sent: {counts.get('sent', 0):,} in {seconds:.1f} s by {opts.senders} sender(s) over "
        f"{sum(r['runs'] for r in runs)} job runs: {rate:.0f} invitations/s (target >= 500)"
    )
    print(f"statuses: {json.dumps(statuses, sort_keys=True)}")
    print(
        f"fake: {calls:,} requests, {verified:,} signatures verified, {accepted:,} accepted, "
        f"{len(links):,} distinct invitations, {duplicates} duplicates: "
        f"{'each invitation sent exactly once' if exact else 'NOT exactly once'}"
    )
    per = 1e6 / max(1, opts.invitations)
    sender_cpu = sum(r["cpu"] for r in runs)
    print(
        f"CPU while sending: senders {sender_cpu:.1f} s ({sender_cpu * per:.0f} us/invitation), "
        f"fake (this process) {fake_cpu:.1f} s ({fake_cpu * per:.0f} us/invitation), "
        f"machine {busy:.0%} busy over {os.cpu_count()} cores"
    )
    for n, r in enumerate(runs, 1):
        samples = r["samples"]
        at10, at100 = _rss_at(samples, 0.1), _rss_at(samples, 1.0)
        peak = max(r["hwm_kb"], max(kb for _, kb in samples)) / 1024
        flat = at100 <= at10 * 1.10 + 5 and peak <= 300
        print(
            f"sender {n}: {r['counts'].get('sent', 0):,} sent in {r['seconds']:.1f} s "
            f"({r['runs']} job runs), CPU {r['cpu']:.1f} s; RSS peak {peak:.0f} MB (limit 300), "
            f"at 10 % {at10:.0f} MB, at 100 % {at100:.0f} MB: {'flat' if flat else 'NOT flat'}"
        )
    cleanup(instance)


if __name__ == "__main__":
    main()
