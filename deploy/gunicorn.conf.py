"""gunicorn settings for the Zuimei API in production.

    gunicorn -c deploy/gunicorn.conf.py wsgi:app

Every value can be changed from the environment (the systemd unit reads /etc/zuimei/web.env);
docs/deploy.md explains the sizing. The app's own settings (DATABASE_URL, REDIS_URL, ZUIMEI_*)
come from the same environment.

Worker class: ``gthread``, not ``sync``.

* nginx keeps a pool of idle connections to every gunicorn host (``keepalive`` in its upstream).
  A sync worker answers ``Connection: close`` to every request, so each vote would cost nginx a new
  TCP connection (and this host a TIME_WAIT socket): thousands a second at a campaign's close.
  A gthread worker parks idle kept-alive connections in its poller, not in a thread.
* A vote waits on one Redis round trip (plus a SQL round trip for anything that is not a vote);
  while a thread waits, the GIL is free for the others, so a few threads per process keep a core
  busy with far fewer processes than sync would need. Fewer processes also means fewer
  PostgreSQL and Redis connections per host (each process has its own pools).
* Long answers — CSV exports streamed from the database, media without X-Accel-Redirect, a tus
  chunk arriving from a slow clinic uplink — hold one thread, not a whole process, and are not
  killed by ``timeout`` (which watches the worker's heartbeat, not a request).
* The app is thread-safe by construction: one Redis pool per process (a blocking pool shared by
  threads), SQLAlchemy sessions scoped to the app context, the vote script registered under a
  lock, per-process caches that are plain dict writes (see docs/deploy.md).

Processes are still needed: the GIL lets one process use one core. The default is two processes
per core the host lets us run on, four threads each.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {value!r}") from None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours cpusets and taskset, unlike os.cpu_count()
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --- sockets -----------------------------------------------------------------------------------
# The private address nginx reaches; never a public interface (X-Forwarded-For is trusted from
# whoever connects here, see forwarded_allow_ips and ZUIMEI_TRUSTED_PROXIES).
bind = [part for part in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if part]
backlog = _int("GUNICORN_BACKLOG", 2048)

# --- workers -----------------------------------------------------------------------------------
worker_class = "gthread"
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", 2 * _cores()))
threads = _int("GUNICORN_THREADS", 4)
# Open connections one worker keeps (active plus kept-alive idle ones from nginx).
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
# Each worker builds the app after the fork: no database or Redis connection, and no state the
# app makes when it starts, is ever shared between processes.
preload_app = False

# --- timeouts ----------------------------------------------------------------------------------
# A worker whose main loop stops beating for this long is killed and replaced. With gthread this
# catches a wedged process, not a slow request; requests are bounded by the app's own timeouts
# (Redis socket 2 s, PostgreSQL via ZUIMEI_SQLALCHEMY_ENGINE_OPTIONS) and by nginx's
# proxy_read_timeout.
timeout = _int("GUNICORN_TIMEOUT", 30)
# SIGTERM/HUP: workers finish what they are serving for up to this long, then are killed.
# systemd's TimeoutStopSec in deploy/systemd/zuimei-web.service is this plus a margin (40 s).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle kept-alive connections from nginx are held this long. It must exceed nginx's upstream
# keepalive_timeout (60 s in deploy/nginx/zuimei.conf) so nginx, not gunicorn, closes an idle
# connection; otherwise nginx can reuse one at the moment gunicorn closes it and answer 502.
keepalive = _int("GUNICORN_KEEPALIVE", 75)

# --- worker recycling --------------------------------------------------------------------------
# Replace a worker after this many requests (plus up to the jitter, so workers of one host do
# not restart together): bounds slow memory growth. At 3,000 requests/s on a 16-worker host a
# worker restarts every few minutes, costing about a second of one core to import the app.
# 0 turns recycling off.
max_requests = _int("GUNICORN_MAX_REQUESTS", 50_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 5_000)

# --- proxies -----------------------------------------------------------------------------------
# Addresses of the nginx hosts: gunicorn believes X-Forwarded-Proto (https) only from them. The
# client address itself is the app's job: ZUIMEI_TRUSTED_PROXIES=1 (ProxyFix) takes the last
# X-Forwarded-For entry, which nginx writes. Comma-separated addresses or CIDR networks.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_protocol = "off"

# --- logging -----------------------------------------------------------------------------------
# nginx writes the access log (with the request id, upstream address and timings); gunicorn's
# would double the log volume at peak. Set GUNICORN_ACCESS_LOG to a path, or "-" for the
# journal, to turn it on for a while.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = (
    '%(h)s [%(t)s] "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}i)s '
    'xff="%({x-forwarded-for}i)s" pid=%(p)s'
)
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")  # stderr: the journal under systemd
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
capture_output = False
proc_name = os.environ.get("GUNICORN_PROC_NAME", "zuimei-web")

# --- runtime files -----------------------------------------------------------------------------
# Worker heartbeats on tmpfs, so a slow disk never makes a healthy worker look dead.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108
# gunicorn >= 25.1 opens a control socket (gunicornc) under $HOME by default; the service user
# has no home. Off unless GUNICORN_CONTROL_SOCKET names a path (the unit uses /run/zuimei-web/).
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or None
control_socket_disable = control_socket is None

# Prometheus multiprocess mode: every worker writes its samples into PROMETHEUS_MULTIPROC_DIR
# (one directory per gunicorn master; the unit points it at /run/zuimei-web/prometheus, a tmpfs
# emptied at every start). The metrics endpoint sums the files; a dead worker's live gauges are
# dropped by core.metrics.gunicorn_child_exit.
PROMETHEUS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def on_starting(server: Any) -> None:
    """Before the first fork: an empty multiprocess directory (stale files would add samples of
    workers from a previous run to every scrape)."""
    if not PROMETHEUS_DIR:
        return
    folder = Path(PROMETHEUS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    server.log.info("prometheus multiprocess directory %s emptied", folder)


# The metrics module's clean-up for a dead worker, imported here, in the master, once. Importing
# it brings the app's `core` package into the master, and forked workers inherit it: a `reload`
# (HUP) therefore re-reads this file and replaces the workers but does not load new code — deploy
# code with a restart, host by host (docs/deploy.md). A release without core.metrics still starts.
_CHECKOUT = str(Path(__file__).resolve().parent.parent)
if _CHECKOUT not in sys.path:
    sys.path.insert(0, _CHECKOUT)  # `core` importable whatever the current directory
try:
    from core.metrics import gunicorn_child_exit as _metrics_child_exit
except ImportError as exc:
    if exc.name not in ("core.metrics", "core"):
        raise  # the module exists but cannot load: the workers would fail the same way
    _metrics_child_exit = None


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker exited: core.metrics drops the worker's live gauges. Never
    raises: an exception here would stop gunicorn's main loop."""
    if _metrics_child_exit is None:
        return
    try:
        _metrics_child_exit(server, worker)
    except Exception:
        server.log.exception("metrics clean-up failed for worker %s", worker.pid)
