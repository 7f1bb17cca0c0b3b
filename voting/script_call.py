"""The vote script's call on a connection the process keeps: one EVALSHA, nothing around it.

redis-py 8 wraps every command in its retry helper, its pool's checkout and release (a lock and a
queue), its observability hooks and a generic argument packer. For the vote script that is about
as much CPU as the round trip itself (``bench.vote_path``: 136 µs against 62 µs for the same
EVALSHA written and read on a bare connection). Here the command is packed once by hiredis and
sent on a connection each process (each thread, under gthread) keeps for itself.

What redis-py did is kept:

- a connection gone stale (a Redis restart, an idle connection the server closed) is found before
  the command is sent (data or EOF waiting on an idle connection), reconnected, and the command
  goes on the fresh one; like the pool's ``Retry(NoBackoff(), 1)``, a connection error while the
  command is out is tried once more on a new connection (an accepted vote that lost its answer
  is then refused by its idempotency key or counted against the voter's quota, as before);
- the periodic health check of an idle connection (``health_check_interval``);
- ``NOSCRIPT`` (a restarted or failed-over server) loads the script and sends it again.

Only a plain server (the pool ``core.extensions`` makes for a URL) takes this call; a Sentinel
master or a cluster goes through redis-py as before (``call_script`` falls back to it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import hiredis
import redis
from redis.exceptions import NoScriptError

_kept = threading.local()
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


def _connection(
    kept: threading.local, pool: redis.ConnectionPool, made: Callable[[Any], None] | None = None
) -> Any:
    """This thread's connection kept in ``kept`` to ``pool``'s server, made when first needed
    (or after a fork, or for another app's server: tests make many apps in one process).
    ``made`` sets a new connection up; when it fails, the new connection is closed."""
    conn = getattr(kept, "conn", None)
    pid = os.getpid()
    if conn is None or kept.pool is not pool or kept.pid != pid:
        if conn is not None and kept.pid == pid:
            _drop(kept)
        conn = pool.make_connection()
        if made is not None:
            try:
                made(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.disconnect()
                raise
        kept.conn, kept.pool, kept.pid = conn, pool, pid
    return conn


def _drop(kept: threading.local) -> None:
    conn = getattr(kept, "conn", None)
    if conn is not None:
        with contextlib.suppress(Exception):  # a broken socket closes however it can
            conn.disconnect()
    kept.conn = None


def _send(conn: Any, packed: bytes) -> Any:
    if conn._sock is None:
        conn.connect()
    elif conn.can_read():  # an idle connection with something waiting: the server closed it
        conn.disconnect()
        conn.connect()
    conn.send_packed_command((packed,))
    return conn.read_response()


def supported(client: Any) -> bool:
    """Whether ``client`` is a plain ``redis.Redis`` on a plain pool (not Sentinel, not a
    cluster), whose connections this module may keep."""
    pool = getattr(client, "connection_pool", None)
    return type(client) is redis.Redis and type(pool) in (
        redis.BlockingConnectionPool,
        redis.ConnectionPool,
    )


def call_script(client: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
    """``script(keys=keys, args=args, client=client)``, on this thread's kept connection when the
    client allows it. Raises what redis-py raises (``redis.RedisError``, ``OSError``)."""
    if not supported(client):
        return script(keys=keys, args=args, client=client)
    packed = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
    for attempt in (1, 2):
        conn = _connection(_kept, client.connection_pool)
        try:
            return _send(conn, packed)
        except NoScriptError:
            client.script_load(script.script)
            return _send(conn, packed)
        except _RETRYABLE:
            _drop(_kept)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


_quiet = threading.local()


def send_unanswered(client: Any, *commands: tuple[Any, ...]) -> bool:
    """Send ``commands`` on this thread's reply-less connection (``CLIENT REPLY OFF``) without
    waiting for them: for writes nobody needs an answer to (a page view counted), which would
    otherwise wait for the server's disk sync (``appendfsync always``) like a vote. The server
    has the commands as soon as they leave; a connection error drops the connection and the
    commands with it. False when ``client`` is not a plain server (the caller sends them its
    own way)."""
    if not supported(client):
        return False
    packed = b"".join(hiredis.pack_command(command) for command in commands)
    try:
        conn = getattr(_quiet, "conn", None)
        if conn is not None and _quiet.pid == os.getpid() and conn.can_read():
            _drop(_quiet)  # nothing is ever answered here: the server closed it
        conn = _connection(_quiet, client.connection_pool, _reply_off)
        conn.send_packed_command((packed,), check_health=False)
    except _RETRYABLE:
        _drop(_quiet)
        raise
    return True


def _reply_off(conn: Any) -> None:
    """Set up the reply-less connection: its id on the server (for tests), then replies off."""
    conn.send_command("CLIENT", "ID")
    _quiet.client_id = int(conn.read_response())
    conn.send_packed_command((hiredis.pack_command(("CLIENT", "REPLY", "OFF")),))
