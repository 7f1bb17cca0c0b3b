"""The chaos run on the embedded default (``python -m bench.chaos --embedded``): ``flask up`` in a
fresh instance folder under a vote load; its embedded redis-server is killed with SIGKILL three
times (once in quick mode) and its RQ worker once; a poison entry goes into the ledger stream.
Then: every acknowledged vote is in ``votes``, no id or sequence number was given twice, no
voter went over a quota, ``up`` still serves, and ``flask votes reconcile`` / ``verify`` agree.

docs/chaos.md ("The embedded default") describes the run and its figures.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.chaos import setup
from bench.chaos.embedded_stack import EmbeddedStack, descendants
from bench.chaos.load import Ack, VoteLoad
from bench.chaos.stack import StackError
from core import clock

SLUG = "chaos-embedded"
NOMINEES = 8
QUOTA = 5  # votes a voter may cast a day
PER_NOMINEE = 1  # votes a voter may give one nominee a day
# Each voter tries SLOTS votes, QUOTA of which may count: even voters vote for their first
# nominee a second time after three votes (refused: nominee_daily_limit), odd voters try a sixth
# nominee after five (refused: daily_quota_exhausted). A Redis that came back without its quota
# counters would accept them, and the table would show it.
SLOTS = QUOTA + 1
REPEAT_AT = 3
RULES = {
    "votes_per_day": QUOTA,
    "votes_per_nominee_per_day": PER_NOMINEE,
    "ip_soft_limit": 0,
    "velocity_floor": 1_000_000,
}
# A vote the drain cannot store: the address field of the issue (#14), longer than its column.
POISON_IP = "1.2.3.4, " + "9" * 100


@dataclass(frozen=True)
class EmbeddedPlan:
    name: str
    rate: float  # votes sent per second (SLOTS - 1 of every SLOTS are acknowledged)
    threads: int
    steady: float  # load held before the first fault and after each one
    # The faults in order: "redis" (kill -9 the embedded redis-server), "worker" (kill -9 the
    # RQ worker and its work horse), "poison" (a ledger entry the database cannot store).
    faults: tuple[str, ...]
    recovery: float  # seconds the final drain may take after the load stops
    min_acks: int  # fewer acknowledged votes than this and the run proves too little
    min_rate: float  # acknowledged votes per second the load must hold


EMBEDDED_QUICK = EmbeddedPlan(
    "embedded quick", 30, 6, 5.0, ("poison", "worker", "redis"), 60, 300, 15
)
EMBEDDED_FULL = EmbeddedPlan(
    "embedded full", 40, 8, 15.0, ("redis", "poison", "worker", "redis", "redis"), 120, 1000, 20
)


class QuotaLoad(VoteLoad):
    """The load of load.py, walking SLOTS votes per voter: QUOTA distinct nominees and one vote
    past a quota (see SLOTS)."""

    def _pair(self, index: int) -> tuple[int, str]:
        voter, slot = divmod(index, SLOTS)
        count = len(self.numbers)
        if voter % 2 == 0 and slot >= REPEAT_AT:
            # The repeat of the first nominee, then the rest of the quota.
            slot = 0 if slot == REPEAT_AT else slot - 1
        return voter, self.numbers[(voter + slot) % count]


@dataclass
class EmbeddedFault:
    number: int
    kind: str
    title: str
    started: float = 0.0
    ended: float = 0.0
    injected: bool = True
    problem: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """What the table and the acknowledgements say (``judge``)."""

    lost: list[str] = field(default_factory=list)
    # Two acknowledged votes with one sequence number; one vote id acknowledged with two
    # contents; a stored row whose nominee differs from its acknowledgement; one sequence
    # number stored twice.
    seq_shared_by_acks: int = 0
    id_with_two_contents: int = 0
    stored_differs_from_ack: int = 0
    seq_stored_twice: int = 0
    over_daily_quota: int = 0
    over_nominee_limit: int = 0

    @property
    def reissued(self) -> int:
        return (
            self.seq_shared_by_acks
            + self.id_with_two_contents
            + self.stored_differs_from_ack
            + self.seq_stored_twice
        )

    @property
    def quota_breaches(self) -> int:
        return self.over_daily_quota + self.over_nominee_limit


def sequence_of(vote_id: str) -> str:
    """A vote id is ``<campaign>-<sequence>-<random>`` (voting/lua/vote.lua)."""
    parts = vote_id.split("-")
    return parts[-2] if len(parts) >= 3 else vote_id


def judge(
    acks: Iterable[tuple[str, str]],
    stored: dict[str, tuple[int, int, str, str]],
    *,
    quota: int,
    per_nominee: int,
) -> Verdict:
    """``acks``: (vote id, nominee) per acknowledgement (a replay repeats its vote id);
    ``stored``: vote id -> (sequence, voter id, nominee, campaign day) of every stored vote."""
    verdict = Verdict()
    contents: dict[str, set[str]] = defaultdict(set)
    for vote_id, nominee in acks:
        contents[vote_id].add(nominee)
    verdict.id_with_two_contents = sum(1 for seen in contents.values() if len(seen) > 1)
    verdict.lost = sorted(vote_id for vote_id in contents if vote_id not in stored)
    by_seq = Counter(sequence_of(vote_id) for vote_id in contents)
    verdict.seq_shared_by_acks = sum(n - 1 for n in by_seq.values() if n > 1)
    verdict.stored_differs_from_ack = sum(
        1
        for vote_id, seen in contents.items()
        if vote_id in stored and seen != {stored[vote_id][2]}
    )
    stored_seq = Counter(row[0] for row in stored.values())
    verdict.seq_stored_twice = sum(n - 1 for n in stored_seq.values() if n > 1)
    per_day = Counter((row[1], row[3]) for row in stored.values())
    per_pair = Counter((row[1], row[2], row[3]) for row in stored.values())
    verdict.over_daily_quota = sum(n - quota for n in per_day.values() if n > quota)
    verdict.over_nominee_limit = sum(n - per_nominee for n in per_pair.values() if n > per_nominee)
    return verdict


class EmbeddedRun:
    def __init__(self, plan: EmbeddedPlan, *, keep: bool = False) -> None:
        self.plan = plan
        self.keep = keep
        self.began = time.monotonic()
        self.stack: EmbeddedStack | None = None
        self.load: QuotaLoad | None = None
        self.voters: setup.VoterPool | None = None
        self.numbers: list[str] = []
        self.campaign_id = 0
        self.faults: list[EmbeddedFault] = []
        self.final: dict[str, Any] = {}
        self.setup_s: dict[str, float] = {}
        self.app: Any = None

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] {message}", file=sys.stderr, flush=True)

    def _stack(self) -> EmbeddedStack:
        assert self.stack is not None
        return self.stack

    # --- set-up ----------------------------------------------------------------------------------

    def set_up(self) -> None:
        stack = self.stack = EmbeddedStack(keep=self.keep)
        self.say(f"folder {stack.folder}")
        self.setup_s["up_serving"] = round(stack.start(), 1)
        self.say(
            f"flask --app wsgi up --port {stack.port}: serving after "
            f"{self.setup_s['up_serving']} s (redis pid {stack.redis_pid()}, worker pid "
            f"{stack.worker_pid()})"
        )
        began = time.monotonic()
        self.app = setup.harness_app(stack.harness_env())
        # This process writes to the SQLite file beside `up` (the campaign, the voiding of the
        # poison entry): like the app's requests and jobs, with BEGIN IMMEDIATE, so that it
        # queues for the write lock instead of failing with "database is locked".
        from core.extensions import sqlite_write_intent

        sqlite_write_intent.set(True)
        self.numbers = setup.make_campaign(self.app, slug=SLUG, nominees=NOMINEES, rules=RULES)
        with self._db() as conn:
            self.campaign_id = int(
                conn.execute("SELECT id FROM campaigns WHERE slug = ?", (SLUG,)).fetchone()[0]
            )
        self.say(f"campaign {SLUG}: {len(self.numbers)} approved nominees, voting open")
        self.voters = setup.VoterPool(stack.base_url)
        per_second = self.plan.rate / SLOTS
        self.voters.fill(math.ceil(per_second * 10))
        self.voters.keep_ahead(math.ceil(per_second * 30))
        self.setup_s["campaign_and_voters"] = round(time.monotonic() - began, 1)
        self.say(f"{len(self.voters.tokens)} voters from POST /api/v1/voters/device (more follow)")

    def _db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"file:{self._stack().db_path}?mode=ro", uri=True, timeout=30, isolation_level=None
        )
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        conn = self._db()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    # --- helpers -------------------------------------------------------------------------------

    def _load(self) -> QuotaLoad:
        assert self.load is not None
        return self.load

    def hold(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def _wait_for(self, predicate: Any, timeout: float, step: float = 0.05) -> float | None:
        """Seconds until ``predicate()`` held, or None after ``timeout``."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if predicate():
                return time.monotonic() - began
            time.sleep(step)
        return None

    def _acks_after(self, moment: float) -> int:
        return sum(1 for ack in list(self._load().result.acks) if ack.at > moment)

    # --- the faults ----------------------------------------------------------------------------

    def fault_redis(self, number: int) -> EmbeddedFault:
        stack = self._stack()
        count = sum(1 for f in self.faults if f.kind == "redis") + 1
        fault = EmbeddedFault(number, "redis", f"kill -9 the embedded redis-server (#{count})")
        # Kill a Redis that is up and counting votes.
        up = self._wait_for(lambda: stack.redis_pid() is not None and stack.redis_answers(), 60)
        if up is None:
            fault.injected = False
            fault.problem = "no embedded redis-server answered within 60 s"
            return fault
        pid = stack.redis_pid()
        assert pid is not None
        fault.details["acknowledged_before_kill"] = self._load().acked_count()
        fault.started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        self.say(f"fault {number}: SIGKILL embedded redis-server {pid}")
        back = self._wait_for(
            lambda: stack.redis_answers() and stack.redis_pid() not in (None, pid), 90
        )
        if back is None:
            fault.problem = "the embedded redis-server was not running again 90 s after the kill"
            return fault
        fault.details["redis_answering_after_s"] = round(back, 2)
        fault.details["new_pid"] = stack.redis_pid()
        voting = self._wait_for(lambda: self._acks_after(fault.started + back) > 0, 60)
        if voting is None:
            fault.problem = "no vote was acknowledged within 60 s after redis came back"
        else:
            fault.details["first_vote_acknowledged_after_s"] = round(back + voting, 2)
        aof = stack.instance / "appendonlydir"
        sizes = [p.stat().st_size for p in aof.glob("*")] if aof.is_dir() else []
        single = stack.instance / "appendonly.aof"
        fault.details["aof_bytes"] = sum(sizes) or (single.stat().st_size if single.exists() else 0)
        self.say(f"fault {number}: redis back: {fault.details}")
        return fault

    def fault_worker(self, number: int) -> EmbeddedFault:
        stack = self._stack()
        fault = EmbeddedFault(number, "worker", "kill -9 the RQ worker (and its work horse)")
        if self._wait_for(lambda: stack.worker_pid() is not None, 90, 0.2) is None:
            fault.injected = False
            fault.problem = "no worker ran under flask up within 90 s"
            return fault
        # Aim at a drain batch in flight: entries read by the drainer and not acknowledged.
        client = stack.redis_client()
        ledger = self._ledger_key()

        def in_batch() -> bool:
            try:
                return int(client.xpending(ledger, "drain")["pending"]) > 0
            except Exception:
                return False

        fault.details["mid_batch"] = self._wait_for(in_batch, 5, 0.002) is not None
        client.close()
        pid = stack.worker_pid()
        if pid is None:
            fault.injected = False
            fault.problem = "the worker vanished before the kill"
            return fault
        victims = [pid, *descendants(pid)]
        fault.started = time.monotonic()
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
        fault.details["killed_pids"] = victims
        self.say(f"fault {number}: SIGKILL worker {pid} and its children {victims[1:]}")
        again = self._wait_for(lambda: stack.worker_pid() not in (None, pid), 90, 0.2)
        if again is None:
            fault.problem = "flask up did not start a new worker within 90 s"
        else:
            fault.details["new_worker_after_s"] = round(again, 2)
        return fault

    def _ledger_key(self) -> str:
        from voting.keys import CampaignKeys

        with self.app.app_context():
            return CampaignKeys.of(SLUG).ledger

    def _seq_key(self) -> str:
        from voting.keys import CampaignKeys

        with self.app.app_context():
            return CampaignKeys.of(SLUG).seq

    def fault_poison(self, number: int) -> EmbeddedFault:
        """XADD a vote whose address is longer than its column, under a sequence number taken
        from the vote sequence (as a real vote's would be): the drain must quarantine it and
        store the rest."""
        stack = self._stack()
        fault = EmbeddedFault(number, "poison", "a poison entry in the ledger stream")
        acks = list(self._load().result.acks)
        voter = self._query("SELECT min(id) FROM voters")[0][0]
        if not acks or voter is None:
            fault.injected = False
            fault.problem = "no vote acknowledged yet to model the poison entry on"
            return fault
        prefix = acks[-1].vote_id.split("-")[0]
        client = stack.redis_client()
        try:
            seq = int(client.incr(self._seq_key()))
            now = clock.utcnow()
            now_ms = int(now.timestamp() * 1000)
            day = self._campaign_day(now)
            fields = {
                "kind": "vote",
                "id": f"{prefix}-{seq}-poison00",
                "seq": str(seq),
                "v": str(voter),
                "n": self.numbers[0],
                "c": "doctor",
                "t": str(now_ms),
                "day": day,
                "ip": POISON_IP,
                "dev": "",
                "ua": "zuimei-chaos/1 (poison)",
                "st": "valid",
                "why": "",
                "vc": "",
            }
            fault.started = time.monotonic()
            stream_id = client.xadd(self._ledger_key(), fields).decode()
        except Exception as exc:
            fault.injected = False
            fault.problem = f"could not write the poison entry: {exc}"
            return fault
        finally:
            client.close()
        fault.details.update({"stream_id": stream_id, "seq": seq, "ip_chars": len(POISON_IP)})
        self.say(f"fault {number}: poison entry {stream_id} (sequence {seq}) in the ledger")

        def quarantined() -> bool:
            rows = self._query(
                "SELECT reason FROM quarantined_votes WHERE campaign_id = ? AND stream_id = ?",
                (self.campaign_id, stream_id),
            )
            if rows:
                fault.details["reason"] = rows[0][0]
            return bool(rows)

        waited = self._wait_for(quarantined, self.plan.recovery, 0.2)
        if waited is None:
            fault.problem = f"not quarantined within {self.plan.recovery:.0f} s"
        else:
            fault.details["quarantined_after_s"] = round(waited, 2)
        fault.details["poison_id"] = fields["id"]
        return fault

    def _campaign_day(self, moment: Any) -> str:
        from zoneinfo import ZoneInfo

        return str(moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d"))

    # --- the whole run -------------------------------------------------------------------------

    def execute(self) -> None:
        self.set_up()
        stack = self._stack()
        assert self.voters is not None
        self.load = QuotaLoad(
            host="127.0.0.1",
            port=stack.port,
            slug=SLUG,
            voters=self.voters,
            numbers=self.numbers,
            rate=self.plan.rate,
            threads=self.plan.threads,
            ack_log=stack.folder / "acknowledged.tsv",
        )
        self.load.start()
        self.say(f"load: {self.plan.rate:.0f} votes/s from {self.plan.threads} client threads")
        self.hold(self.plan.steady)
        inject = {
            "redis": self.fault_redis,
            "worker": self.fault_worker,
            "poison": self.fault_poison,
        }
        for number, kind in enumerate(self.plan.faults, start=1):
            turn = time.monotonic()
            fault = inject[kind](number)
            if not fault.started:
                fault.started = turn
            if self.faults:
                self.faults[-1].ended = fault.started
            self.faults.append(fault)
            self.hold(self.plan.steady)
        self.load.stop()
        self.voters.stop()
        if self.faults:
            self.faults[-1].ended = self.load.result.stopped
        self.say(f"load stopped: {self.load.acked_count()} votes acknowledged")
        self.finish()

    def _stored(self) -> dict[str, tuple[int, int, str, str]]:
        rows = self._query(
            "SELECT id, seq, voter_id, nominee_number, day FROM votes WHERE campaign_id = ?",
            (self.campaign_id,),
        )
        return {row[0]: (int(row[1]), int(row[2]), row[3], row[4]) for row in rows}

    def _last_vote(self) -> dict[str, Any]:
        """A new voter votes once after the last fault: 201, and the vote reaches the table."""
        stack = self._stack()
        outcome: dict[str, Any] = {"healthz": stack.healthy(), "readyz": stack.healthy("/readyz")}
        try:
            token = setup._device_voter(stack.base_url, 9_000_000)
            request = urllib.request.Request(  # noqa: S310 - our own loopback URL
                f"{stack.base_url}/api/v1/campaigns/{SLUG}/votes",
                data=json.dumps({"nominee": self.numbers[-1]}).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": "chaos-last-vote",
                },
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                outcome["status"] = response.status
                outcome["vote_id"] = json.loads(response.read())["vote_id"]
        except urllib.error.HTTPError as exc:
            outcome["status"] = exc.code
            outcome["error"] = exc.read()[:300].decode(errors="replace")
        except (OSError, ValueError, KeyError) as exc:
            outcome["status"] = 0
            outcome["error"] = str(exc)
        return outcome

    def finish(self) -> None:
        stack = self._stack()
        load = self._load()
        acks: list[Ack] = list(load.result.acks)
        final: dict[str, Any] = {}
        acked = {ack.vote_id for ack in acks}
        began = time.monotonic()

        def drained() -> bool:
            return acked <= set(self._stored())

        waited = self._wait_for(drained, self.plan.recovery, 0.5)
        final["drain_s"] = round(time.monotonic() - began, 1)
        final["drained"] = waited is not None
        last = self._last_vote()
        if last.get("vote_id"):
            vote_id = last["vote_id"]
            stored_in = self._wait_for(lambda: vote_id in self._stored(), 60, 0.25)
            last["stored_after_s"] = None if stored_in is None else round(stored_in, 1)
            acks.append(Ack(vote_id, -1, self.numbers[-1], time.monotonic(), 1))
        final["last_vote"] = last
        stored = self._stored()
        final["rows"] = len(stored)
        final["verdict"] = judge(
            ((ack.vote_id, ack.nominee) for ack in acks),
            stored,
            quota=QUOTA,
            per_nominee=PER_NOMINEE,
        )
        final["stored_unacknowledged"] = len(set(stored) - {ack.vote_id for ack in acks})
        final["up_alive"] = stack.alive()
        final["supervisor"] = stack.supervisor_lines()
        kills = [f for f in self.faults if f.kind in ("redis", "worker") and f.injected]
        last_kill = max((f.started for f in kills), default=0.0)
        final["acks_after_last_kill"] = sum(1 for ack in load.result.acks if ack.at > last_kill)
        final["quarantined"] = self._query(
            "SELECT stream_id, reason FROM quarantined_votes WHERE campaign_id = ?",
            (self.campaign_id,),
        )
        poison = [f for f in self.faults if f.kind == "poison"]
        moment = min((f.started for f in poison), default=0.0)
        after = [ack.vote_id for ack in load.result.acks if ack.at > moment]
        final["acks_after_poison"] = len(after)
        final["stored_after_poison"] = sum(1 for vote_id in after if vote_id in stored)
        final["reconcile"] = self._reconcile(poison)
        verify = stack.flask("votes", "verify", "--campaign", SLUG)
        final["verify"] = {
            "exit": verify.returncode,
            "said": (verify.stdout.strip() or verify.stderr.strip()).splitlines()[-1:],
        }
        self.final = final

    def _reconcile(self, poison: list[EmbeddedFault]) -> dict[str, Any]:
        """``flask votes reconcile`` as a newcomer runs it beside `up`: with the poison entry
        quarantined and unresolved it must exit 4 and name it; once it is voided (as the
        committee would, with a name and a reason), exit 0 with no vote missing."""
        stack = self._stack()
        first = stack.flask("votes", "reconcile", "--campaign", SLUG)
        outcome: dict[str, Any] = {"first_exit": first.returncode, "first": _report(first.stdout)}
        outcome["first_stderr"] = first.stderr.strip().splitlines()[-2:]
        for fault in poison:
            stream_id = fault.details.get("stream_id")
            if not stream_id:
                continue
            from campaigns.models import Campaign
            from core.extensions import db
            from voting.ledger import resolve_quarantined

            with self.app.app_context():
                campaign = db.session.query(Campaign).filter_by(slug=SLUG).one()
                resolve_quarantined(
                    campaign, stream_id, actor="chaos-suite", resolution="voided: injected poison"
                )
                db.session.commit()
                db.session.remove()
        second = stack.flask("votes", "reconcile", "--campaign", SLUG)
        outcome["second_exit"] = second.returncode
        outcome["second"] = _report(second.stdout)
        outcome["second_stderr"] = second.stderr.strip().splitlines()[-2:]
        return outcome


def _report(stdout: str) -> dict[str, Any]:
    """The JSON report ``flask votes reconcile`` prints before its summary line."""
    text = stdout.strip()
    end = text.rfind("}")
    if end < 0:
        return {}
    try:
        data: dict[str, Any] = json.loads(text[: end + 1])
    except ValueError:
        return {}
    return data


def check_plan(plan: EmbeddedPlan) -> None:
    if plan.rate <= 0 or plan.steady <= 0 or plan.recovery <= 0:
        raise StackError("--rate, --seconds and --recovery must be positive")
