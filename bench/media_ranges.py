"""Ranged media serving benchmark: send_media under werkzeug's threaded server, keep-alive clients.

    .venv/bin/python -m bench.media_ranges [--duration 5] [--threads 8] [--size-mb 50]
                                           [--range-kib 1024]

Writes a random file to a temporary folder, serves it from a tiny Flask app on 127.0.0.1 (a free
port), and for ``--duration`` seconds has ``--threads`` clients fetch random byte ranges over
kept-alive connections, checking each body against the file. Prints requests/s, MB/s and p50/p99
latency. Traffic goes to 127.0.0.1 only; everything stops and is removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response
from werkzeug.serving import make_server

from media.serving import send_media

MIB = 1024 * 1024


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    failures: list[str] = field(default_factory=list)


def _write_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = min(remaining, 4 * MIB)
            out.write(os.urandom(block))
            remaining -= block


def _app(path: Path) -> Flask:
    app = Flask(__name__)

    @app.get("/media")
    def media() -> Response:
        return send_media(path, mime="application/octet-stream", etag="bench", immutable=True)

    return app


def _client(
    port: int, path: Path, size: int, span: int, deadline: float, seed: int, tally: _Tally
) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        with path.open("rb") as source:
            while time.perf_counter() < deadline:
                start = rng.randrange(0, size - span + 1)
                end = start + span - 1
                began = time.perf_counter()
                conn.request("GET", "/media", headers={"Range": f"bytes={start}-{end}"})
                response = conn.getresponse()
                body = response.read()
                tally.latencies.append(time.perf_counter() - began)
                if response.status != 206 or len(body) != span:
                    tally.failures.append(f"{response.status} with {len(body)} bytes")
                    continue
                # Checked outside the timed span: correctness, not the client's memcmp, is measured.
                if body != os.pread(source.fileno(), span, start):
                    tally.failures.append(f"wrong bytes for {start}-{end}")
                tally.received += len(body)
    except (OSError, http.client.HTTPException) as exc:
        tally.failures.append(repr(exc))
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--range-kib", type=int, default=1024)
    args = parser.parse_args(argv)

    # One log line per request would cost more than the serving being measured.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    size = args.size_mb * MIB
    span = args.range_kib * 1024
    if not 0 < span <= size:
        parser.error("--range-kib must be positive and fit in the file")

    with tempfile.TemporaryDirectory(prefix="zuimei-media-bench-") as folder:
        path = Path(folder) / "media.bin"
        _write_file(path, size)
        server = make_server("127.0.0.1", 0, _app(path), threaded=True)
        serving = threading.Thread(target=server.serve_forever, name="bench-server", daemon=True)
        serving.start()
        try:
            tallies = [_Tally() for _ in range(args.threads)]
            began = time.perf_counter()
            deadline = began + args.duration
            clients = [
                threading.Thread(
                    target=_client,
                    args=(server.port, path, size, span, deadline, seed, tally),
                    name=f"bench-client-{seed}",
                )
                for seed, tally in enumerate(tallies)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            elapsed = time.perf_counter() - began
        finally:
            server.shutdown()
            serving.join()
            server.server_close()

    latencies = sorted(lat for tally in tallies for lat in tally.latencies)
    failures = [failure for tally in tallies for failure in tally.failures]
    received = sum(tally.received for tally in tallies)
    print(
        f"file {args.size_mb} MB, {args.threads} threads, {args.range_kib} KiB ranges, "
        f"{elapsed:.1f} s"
    )
    if latencies:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        print(f"requests/s  {len(latencies) / elapsed:10.1f}   ({len(latencies)} requests)")
        print(f"MB/s        {received / MIB / elapsed:10.1f}")
        print(f"latency p50 {cuts[49] * 1000:8.2f} ms   p99 {cuts[98] * 1000:8.2f} ms")
    print(f"failures    {len(failures)}")
    for failure in failures[:5]:
        print(f"  {failure}", file=sys.stderr)
    return 1 if failures or not latencies else 0


if __name__ == "__main__":
    sys.exit(main())
