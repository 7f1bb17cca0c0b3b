"""A steady vote load from Python threads, logging every acknowledged vote.

Each logical vote is one (voter, nominee) pair, walked once: logical vote k is voter
``k div N``'s vote for nominee ``(k + k div N) mod N`` (N nominees), so no pair repeats and a
voter's quota (one vote per nominee per day, N a day) is never the reason for a refusal.

A vote is sent with an ``Idempotency-Key``. When the answer is lost (connection error) the
client retries the same vote with the same key, as the H5 page does (pages/static/h5.js); it
also retries a 5xx that way; up to ``RETRIES`` more times. Only a 201 with a ``vote_id`` is an
acknowledgement: that id goes to the acknowledgement log. Every attempt's outcome is kept
(time, kind, latency) so errors can be counted per fault window.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.setup import VoterPool

RETRIES = 4
BACKOFF = (0.05, 0.2, 0.5, 1.0)
TIMEOUT = 5.0


@dataclass(frozen=True)
class Attempt:
    at: float  # monotonic time the attempt started
    seconds: float
    kind: str  # "ack", "replay", "refused:<code>", "http-5xx:<code>", "conn:<Error>"


@dataclass(frozen=True)
class Ack:
    vote_id: str
    voter: int
    nominee: str
    at: float  # monotonic time of the acknowledgement
    attempts: int


@dataclass
class LoadResult:
    started: float = 0.0
    stopped: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    # Logical votes whose every try failed (no answer): they may or may not have been counted.
    abandoned: int = 0
    # Logical votes refused with a 4xx (a definite "not counted").
    refused: int = 0
    # Seconds client threads waited for the voter pool (the load fell behind its schedule).
    starved_s: float = 0.0


class VoteLoad:
    """``threads`` clients sending ``rate`` logical votes a second in total until stopped."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        slug: str,
        voters: VoterPool,
        numbers: list[str],
        rate: float,
        threads: int,
        ack_log: Path,
    ) -> None:
        self.host = host
        self.port = port
        self.path = f"/api/v1/campaigns/{slug}/votes"
        self.voters = voters
        self.numbers = numbers
        self.rate = rate
        self.threads = threads
        self.result = LoadResult()
        self._ack_file = open(ack_log, "w", buffering=1)  # noqa: SIM115 - closed in stop()
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self.result.started = time.monotonic()
        self._pool = [
            threading.Thread(target=self._client, name=f"voter-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for thread in self._pool:
            thread.start()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for thread in self._pool:
            thread.join(timeout=TIMEOUT * (RETRIES + 2))
        self.result.stopped = time.monotonic()
        self._ack_file.close()

    def acked_ids(self) -> list[str]:
        with self._lock:
            return [ack.vote_id for ack in self.result.acks]

    def acked_before(self, moment: float) -> list[str]:
        with self._lock:
            return [ack.vote_id for ack in self.result.acks if ack.at <= moment]

    def acked_count(self) -> int:
        with self._lock:
            return len(self.result.acks)

    # --- the clients ---------------------------------------------------------------------------

    def _take(self) -> tuple[int, float]:
        """The next logical vote and the moment it is due (a fixed schedule at ``rate``)."""
        with self._lock:
            index = self._next
            self._next += 1
        return index, self.result.started + index / self.rate

    def _pair(self, index: int) -> tuple[int, str]:
        voter, offset = divmod(index, len(self.numbers))
        return voter, self.numbers[(offset + voter) % len(self.numbers)]

    def _client(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            index, due = self._take()
            voter, nominee = self._pair(index)
            waited = time.monotonic()
            token = self.voters.get(voter, self._stop)
            if token is None:
                return
            waited = time.monotonic() - waited
            if waited > 0.01:
                with self._lock:
                    self.result.starved_s += waited
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            body = json.dumps({"nominee": nominee})
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": f"chaos-{index}",
                "User-Agent": "zuimei-chaos/1 (MicroMessenger)",
            }
            for attempt in range(RETRIES + 1):
                began = time.monotonic()
                status, payload, kind, replayed = 0, b"", "", False
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
                    conn.request("POST", self.path, body, headers)
                    response = conn.getresponse()
                    payload = response.read()
                    status = response.status
                    replayed = response.getheader("Idempotent-Replayed") == "true"
                    if response.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as exc:
                    kind = "conn:" + _error_name(exc)
                    if conn is not None:
                        conn.close()
                    conn = None
                seconds = time.monotonic() - began
                if not kind:
                    kind = _classify(status, payload, replayed)
                with self._lock:
                    self.result.attempts.append(Attempt(began, seconds, kind))
                if kind in ("ack", "replay"):
                    vote_id = json.loads(payload)["vote_id"]
                    ack = Ack(vote_id, voter, nominee, time.monotonic(), attempt + 1)
                    with self._lock:
                        self.result.acks.append(ack)
                        self._ack_file.write(
                            f"{vote_id}\t{voter}\t{nominee}\t{attempt + 1}\t{kind}\n"
                        )
                    break
                if kind.startswith("refused:"):
                    with self._lock:
                        self.result.refused += 1
                    break
                if attempt == RETRIES or self._stop.is_set():
                    with self._lock:
                        self.result.abandoned += 1
                    break
                time.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
        if conn is not None:
            conn.close()


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    # RemoteDisconnected is a ConnectionResetError: ask for it first.
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed-without-answer"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    return type(exc).__name__


def _classify(status: int, payload: bytes, replayed: bool) -> str:
    if status == 201:
        try:
            vote_id = json.loads(payload).get("vote_id")
        except ValueError:
            return "bad-body:201"
        if not vote_id:
            return "bad-body:201"
        return "replay" if replayed else "ack"
    code = str(status)
    with contextlib.suppress(ValueError, KeyError, TypeError):
        code = json.loads(payload)["error"]["code"]
    if status >= 500:
        return f"http-{status}:{code}"
    return f"refused:{status}:{code}"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]
