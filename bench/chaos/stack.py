"""The private services the chaos run owns and may kill: PostgreSQL, Redis, gunicorn, RQ workers.

Nothing here touches the machine's shared PostgreSQL or Redis: every server is started from a
fresh temporary folder on a free loopback port, and everything started is stopped again by
``Stack.close`` (also after Ctrl-C or a failure).
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import redis

from core import clock

ROOT = Path(__file__).resolve().parent.parent.parent

# Settings of the app that the stack does not want from the caller's environment.
_SCRUBBED = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
    "GUNICORN_BIND",
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
)


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid`` (every child was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def session_members(sid: int) -> list[int]:
    """Every live process of session ``sid``. Each child here is started in a session of its
    own, so this is the child and everything it forked, even a child that moved to a process
    group of its own (an RQ work horse calls ``os.setpgrp``) or was orphaned."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def kill_session(sid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Signal every process of session ``sid``; returns their pids."""
    members = session_members(sid)
    for pid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return members


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (fsync on), run as the ``postgres`` user when we are root:
    PostgreSQL refuses to run as root."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.sockets = folder / "pgsock"
        self.log = folder / "postgres.log"
        self.port = free_port()
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
        )
        found = shutil.which("pg_ctl")
        self.bindir = Path(candidates[-1]) if candidates else Path(found).parent if found else None
        if self.bindir is None or not (self.bindir / "initdb").exists():
            raise StackError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise StackError("running as root needs runuser to start PostgreSQL as postgres")
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/zuimei"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200"
        )

    def init(self) -> None:
        for path in (self.data, self.sockets):
            path.mkdir(mode=0o700)
        self.log.touch()
        if self.as_user:
            import pwd

            user = pwd.getpwnam("postgres")
            for path in (self.data, self.sockets, self.log):
                os.chown(path, user.pw_uid, user.pw_gid)
        # --no-sync only skips initdb's own flush of the template files; the server runs with
        # fsync=on (see _options).
        done = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode:
            raise StackError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        done = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            self._options(),
            "-w",
            "-t",
            "60",
            "start",
        )
        if done.returncode:
            raise StackError(f"pg_ctl start failed: {done.stderr.strip()}; see {self.log}")
        self.started = True

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE zuimei")

    def restart(self, mode: str = "immediate") -> float:
        """``pg_ctl restart -m <mode>``: with ``immediate`` the server stops like a crash and
        replays its WAL on start. Returns the seconds it took to answer again."""
        began = time.monotonic()
        done = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            self._options(),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "restart",
        )
        if done.returncode:
            raise StackError(f"pg_ctl restart failed: {done.stderr.strip()}; see {self.log}")
        return time.monotonic() - began

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if not self.started:
            return
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
        )
        pid = self.postmaster_pid()
        if pid and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.started = False


class PrivateRedis:
    """A redis-server with ``appendonly yes`` and ``appendfsync always`` in its own folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        system = shutil.which("redis-server")
        if system:
            self.binary = system
        else:
            from core.embedded import redis_server_binary

            self.binary = redis_server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
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
                "--daemonize",
                "no",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise StackError(f"redis-server exited; see {self.folder / 'redis.log'}")
                try:
                    # LOADING while the AOF replays answers with an error; wait for a real PONG.
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    time.sleep(0.02)
            raise StackError("redis-server did not answer within 30 s")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; only what the AOF already has on disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Managed:
    """A child process in its own session (so its whole group can be killed), with a log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> list[int]:
        """SIGKILL the process and everything it forked, at once (its session: an RQ work
        horse puts itself in a process group of its own, so the group alone would miss it).
        Returns the pids killed besides the process itself."""
        killed = kill_session(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        return [pid for pid in killed if pid != self.pid]

    def stop(self, grace: float = 10) -> None:
        if self.alive():
            kill_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # Whatever is left (a stuck child, a work horse in its own group) goes too.
        kill_session(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._log.close()


class Stack:
    """Temporary folder, private PostgreSQL and Redis, gunicorn with 2 workers, RQ workers."""

    def __init__(self, *, keep: bool = False, web_workers: int = 2, web_threads: int = 4) -> None:
        self.keep = keep
        self.web_workers = web_workers
        self.web_threads = web_threads
        # Short and world-traversable: PostgreSQL (another user) lives below it.
        self.folder = Path(tempfile.mkdtemp(prefix="zm-chaos-"))
        self.folder.chmod(0o755)
        self.logs = self.folder / "logs"
        self.logs.mkdir()
        self.postgres = PrivatePostgres(self.folder)
        self.redis = PrivateRedis(self.folder / "redis")
        self.web_port = free_port()
        self.web: Managed | None = None
        self.workers: list[Managed] = []
        self.retired: list[Managed] = []
        self._worker_serial = 0
        self._workers_lock = threading.Lock()
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        # (monotonic time, what happened) for every worker the supervisor found dead.
        self.events: list[tuple[float, str]] = []
        self.env = self._environment()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        for name in list(env):
            if name.startswith("ZUIMEI_") or name.startswith("WECHAT_"):
                env.pop(name)
        # The harness and the stack read one clock: a moved one (the calendar guard,
        # docs/testing.md) goes to the children too. Production refuses a moved clock, so such a
        # run uses development mode with every production setting below given explicitly.
        moved = clock.offset_seconds()
        instance = self.folder / "instance"
        instance.mkdir()
        (self.folder / "prometheus").mkdir()
        env.update(
            {
                "DATABASE_URL": self.postgres.url,
                "REDIS_URL": self.redis.url,
                "SECRET_KEY": secrets.token_urlsafe(48),
                "ZUIMEI_METRICS_TOKEN": secrets.token_urlsafe(32),
                # Production settings (no .env, no embedded fallbacks), plus the demo device
                # identity so the load can make voters through the public API.
                "ZUIMEI_ENV": "development" if moved else "production",
                "ZUIMEI_DEVICE_IDENTITY": "1",
                "ZUIMEI_INSTANCE_PATH": str(instance),
                "ZUIMEI_MEDIA_ROOT": str(instance / "media"),
                "ZUIMEI_LOG_FORMAT": "text",
                # One client address sends every vote: the per-address and per-voter hard
                # limits would refuse the load itself, which is not what is being measured.
                "ZUIMEI_VOTE_IP_PER_MINUTE": "0",
                "ZUIMEI_VOTE_VOTER_PER_MINUTE": "0",
                "ZUIMEI_VOTER_CREATE_IP_LIMIT": "1000000/minute",
                "PYTHONUNBUFFERED": "1",
                "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
                "GUNICORN_WORKERS": str(self.web_workers),
                "GUNICORN_THREADS": str(self.web_threads),
                "PROMETHEUS_MULTIPROC_DIR": str(self.folder / "prometheus"),
            }
        )
        if moved:
            env[clock.OFFSET_VARIABLE] = repr(moved)
        return env

    # --- start ---------------------------------------------------------------------------------

    def start_data(self) -> None:
        self.postgres.init()
        self.postgres.start()
        self.postgres.create_database()
        self.redis.start()

    def flask(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def migrate(self) -> None:
        """``flask --app wsgi db upgrade``."""
        done = self.flask("db", "upgrade")
        if done.returncode:
            raise StackError(f"flask --app wsgi db upgrade failed:\n{done.stderr[-3000:]}")

    def start_web(self) -> None:
        self.web = Managed(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "wsgi:app",
            ],
            self.env,
            self.logs / "gunicorn.log",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.web.alive():
                raise StackError(f"gunicorn exited; see {self.web.log_path}")
            if len(self.web_worker_pids()) >= self.web_workers and self._healthy():
                return
            time.sleep(0.1)
        raise StackError("gunicorn did not answer /healthz within 60 s")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def web_worker_pids(self) -> list[int]:
        return children_of(self.web.pid) if self.web else []

    def start_worker(self) -> Managed:
        with self._workers_lock:
            self._worker_serial += 1
            worker = Managed(
                f"rq-worker-{self._worker_serial}",
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                self.env,
                self.logs / f"rq-worker-{self._worker_serial}.log",
            )
            self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Managed]:
        with self._workers_lock:
            return [worker for worker in self.workers if worker.alive()]

    def supervise(self, restart_after: float = 2.0) -> None:
        """Do what the process manager does in production (deploy/systemd/
        zuimei-worker@.service: ``Restart=always``, ``RestartSec=2``): an RQ worker that exits,
        for whatever reason, is started again ``restart_after`` seconds later."""

        def loop() -> None:
            due: list[float] = []
            while not self._closing.is_set():
                now = time.monotonic()
                with self._workers_lock:
                    exited = [worker for worker in self.workers if not worker.alive()]
                    for worker in exited:
                        self.workers.remove(worker)
                        self.retired.append(worker)
                for worker in exited:
                    code = worker.process.returncode
                    how = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
                    self.events.append(
                        (now, f"{worker.name} (pid {worker.pid}) ended, {how}; restarted")
                    )
                    due.append(now + restart_after)
                for moment in [m for m in due if m <= now]:
                    due.remove(moment)
                    if not self._closing.is_set():
                        self.start_worker()
                self._closing.wait(0.2)

        self._supervisor = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._supervisor.start()

    # --- stop ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything that was started and remove the folder (unless asked to keep it)."""
        errors: list[str] = []
        self._closing.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for worker in [*self.workers, *self.retired]:
            try:
                worker.stop(grace=5)
            except Exception as exc:  # keep stopping the rest
                errors.append(f"{worker.name}: {exc}")
        if self.web is not None:
            try:
                self.web.stop(grace=10)
            except Exception as exc:
                errors.append(f"gunicorn: {exc}")
        for name, stop in (("redis", self.redis.stop), ("postgres", self.postgres.stop)):
            try:
                stop()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
        if self.keep:
            print(f"kept {self.folder} (logs in {self.logs})", file=sys.stderr)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        if errors:
            print("clean-up problems: " + "; ".join(errors), file=sys.stderr)
