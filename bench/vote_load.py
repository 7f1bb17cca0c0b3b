"""Vote path load benchmark: gunicorn on this machine's cores, wrk with many distinct voters.

    .venv/bin/python -m bench.vote_load [--duration 15] [--rounds 1] [--connections 32]
                                        [--workers N]

Uses DATABASE_URL / REDIS_URL when set (e.g. PostgreSQL and the machine's Redis); otherwise the
embedded default. Prints, for each of ``--rounds`` paired runs (a /healthz run, then a vote run
of the same length), accepted votes/s, /healthz requests/s, their ratio and p99s, then the median
ratios: on a shared machine /healthz alone swings by a fifth between minutes. Each run also
prints where the CPU went per request (read from /proc and the vote Redis's ``INFO cpu``): the
gunicorn processes, the vote Redis, and the whole machine (wrk included), so a ratio can be
explained by what each request cost rather than guessed at.
Needs `wrk` (Debian package). Traffic goes to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import NamedTuple

from bench.chaos.stack import children_of
from bench.common import (
    ROOT,
    cleanup,
    start_gunicorn,
    wait_healthy,
    wrk_latency_ms,
    wrk_requests,
    wrk_rps,
)


def _prepare(instance: Path, voters: int) -> list[str]:
    """A campaign open for voting with 30 nominees, and signed tokens of distinct voters."""
    from bench.common import voting_campaign
    from core.auth import issue_token

    # One address (wrk) sends everything: the per-address soft limit is off; the velocity hold
    # stays on, as in a real campaign, with a floor no single nominee reaches here.
    app, numbers = voting_campaign(
        instance,
        slug="bench",
        nominees=30,
        rules={
            "votes_per_day": 5,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": 0,
            "velocity_floor": 1000000,
        },
    )
    with app.app_context():
        tokens = [
            issue_token("voter", {"sub": 10_000_000 + i, "p": "device", "c": 0}, 86400).token
            for i in range(voters)
        ]
    (instance / "tokens.txt").write_text("\n".join(tokens) + "\n")
    return numbers


_TICK = os.sysconf("SC_CLK_TCK")


class CpuPerRequest(NamedTuple):
    """Milliseconds of CPU one request cost: gunicorn's processes, the vote Redis, the machine."""

    server: float
    redis: float
    machine: float


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, and those of its children, recursively."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / _TICK
    return own + sum(_process_cpu(child) for child in children_of(pid))


def _machine_cpu() -> float:
    """CPU seconds the whole machine spent busy: user, nice, system, irq and softirq (not idle,
    I/O wait, or time the hypervisor gave to other guests)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:7]) - values[3] - values[4]) / _TICK


def _redis_cpu_reader(instance: Path) -> Callable[[], float]:
    """A reader of the CPU seconds the vote Redis has used: the server's own INFO cpu when
    REDIS_URL names one (one client for the whole run), else the embedded server's process."""
    if os.environ.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])

        def server() -> float:
            info = client.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        return server
    from core import embedded

    def local() -> float:
        pid = embedded.pid(instance)
        return _process_cpu(pid) if pid else 0.0

    return local


class _Cpu:
    """CPU spent during one wrk run, by the server, the vote Redis and the machine."""

    def __init__(self, server: int, redis_cpu: Callable[[], float]) -> None:
        self.server, self.redis_cpu = server, redis_cpu
        self.start = self._read()

    def _read(self) -> CpuPerRequest:
        return CpuPerRequest(_process_cpu(self.server), self.redis_cpu(), _machine_cpu())

    def per_request_ms(self, requests: int) -> CpuPerRequest:
        """Milliseconds of CPU per request since this meter started."""
        end = self._read()
        count = max(requests, 1)
        return CpuPerRequest(
            *(1000 * (b - a) / count for a, b in zip(self.start, end, strict=True))
        )


def _wrk(args: list[str]) -> str:
    result = subprocess.run(["wrk", *args], capture_output=True, text=True, check=True)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument(
        "--rounds", type=int, default=1, help="paired /healthz and vote runs; medians reported"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--voters", type=int, default=200_000)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--worker-class", default="sync", choices=("sync", "gthread"), help="gunicorn's"
    )
    parser.add_argument("--worker-threads", type=int, default=4, help="per gthread worker")
    opts = parser.parse_args()
    if not 1 <= opts.rounds <= 5:
        sys.exit("--rounds is 1 to 5 (a voter has 5 votes a day, one per round)")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    instance = Path(tempfile.mkdtemp(prefix="zm-bench-"))
    env = dict(
        os.environ,
        ZUIMEI_INSTANCE_PATH=str(instance),
        ZUIMEI_VOTE_IP_PER_MINUTE="0",
        ZUIMEI_VOTE_VOTER_PER_MINUTE="20",
    )
    os.environ.update(env)
    numbers = _prepare(instance, opts.voters)
    env.update(
        {k: os.environ[k] for k in ("DATABASE_URL", "ZUIMEI_REDIS_PREFIX") if k in os.environ}
    )
    server = start_gunicorn(
        opts.port,
        opts.workers,
        env,
        worker_class=opts.worker_class,
        threads=opts.worker_threads,
    )
    base = f"http://127.0.0.1:{opts.port}"
    rounds: list[tuple[float, float, float, float, int, int, int]] = []
    cpu: list[tuple[CpuPerRequest, CpuPerRequest]] = []
    redis_cpu = _redis_cpu_reader(instance)
    try:
        wait_healthy(base)
        common = [
            "-t",
            str(opts.threads),
            "-c",
            str(opts.connections),
            "-d",
            f"{opts.duration}s",
            "--latency",
        ]
        _wrk(["-t1", "-c4", "-d2s", f"{base}/healthz"])  # warm up every worker
        for index in range(opts.rounds):
            meter = _Cpu(server.pid, redis_cpu)
            health = _wrk([*common, f"{base}/healthz"])
            health_cpu = meter.per_request_ms(wrk_requests(health))
            meter = _Cpu(server.pid, redis_cpu)
            votes = _wrk(
                [
                    *common,
                    "-s",
                    str(ROOT / "bench" / "vote_load.lua"),
                    f"{base}/api/v1/campaigns/bench/votes",
                    "--",
                    str(instance / "tokens.txt"),
                    ",".join(numbers),
                    str(opts.threads),
                    str(index),
                ]
            )
            counts = re.search(r"ZUIMEI accepted=(\d+) refused=(\d+) errors=(\d+)", votes)
            accepted, refused, errors = (int(x) for x in counts.groups()) if counts else (0, 0, 0)
            cpu.append((health_cpu, meter.per_request_ms(accepted + refused + errors)))
            rounds.append(
                (
                    wrk_rps(health),
                    wrk_latency_ms(health, "99"),
                    accepted / opts.duration,
                    wrk_latency_ms(votes, "99"),
                    accepted,
                    refused,
                    errors,
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(
        f"setup: gunicorn {opts.worker_class} workers={opts.workers}"
        + (f" x {opts.worker_threads} threads" if opts.worker_class == "gthread" else "")
        + f", wrk -t{opts.threads} "
        f"-c{opts.connections} -d{opts.duration}s, rounds={opts.rounds}, database="
        f"{'postgresql' if os.environ.get('DATABASE_URL') else 'sqlite'}, redis="
        f"{'server' if os.environ.get('REDIS_URL') else 'embedded'}"
    )
    for (health_rps, health_p99, vote_rps, vote_p99, accepted, refused, errors), (
        health_cpu,
        vote_cpu,
    ) in zip(rounds, cpu, strict=True):
        print(
            f"healthz: {health_rps:.0f} req/s p99 {health_p99:.2f} ms | votes: {vote_rps:.0f} "
            f"accepted/s ({accepted} accepted, {refused} refused, {errors} errors) p99 "
            f"{vote_p99:.2f} ms | ratio {vote_rps / health_rps:.2f}, p99 ratio "
            f"{vote_p99 / health_p99:.2f}"
        )
        print(
            "  CPU ms per request (gunicorn / vote Redis / whole machine): healthz "
            + " / ".join(f"{v:.3f}" for v in health_cpu)
            + " | vote "
            + " / ".join(f"{v:.3f}" for v in vote_cpu)
        )
    ratio = median(r[2] / r[0] for r in rounds)
    p99_ratio = median(r[3] / r[1] for r in rounds)
    # The machine's CPU per /healthz over its CPU per vote: the share of /healthz's rate the
    # votes would reach on a saturated machine. It moves less than req/s with the machine's
    # swing, but it counts every process here: take it on an otherwise idle machine.
    costs = [h.machine / v.machine for h, v in cpu if v.machine > 0]
    cost_ratio = median(costs) if costs else float("nan")
    print(
        f"median of {len(rounds)} paired rounds: ratio vote/healthz: {ratio:.2f} (target >= 0.6); "
        f"p99 vote/healthz: {p99_ratio:.2f} (target <= 1.5); machine CPU per request "
        f"healthz/vote: {cost_ratio:.2f}"
    )
    cleanup(instance)


if __name__ == "__main__":
    main()
