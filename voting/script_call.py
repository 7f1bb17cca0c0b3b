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
from typing import Any

import hiredis
import redis
from redis.exceptions import NoScriptError

_kept = threading.local()
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


def _connection(pool: redis.ConnectionPool) -> Any:
    """This thread's connection to ``pool``'s server, made when first needed (or after a fork)."""
    conn = getattr(_kept, "conn", None)
    if conn is None or _kept.pool is not pool or _kept.pid != os.getpid():
        if conn is not None and _kept.pid == os.getpid():
            _drop()  # another app's server (tests make many apps in one process)
        conn = pool.make_connection()
        _kept.conn, _kept.pool, _kept.pid = conn, pool, os.getpid()
    return conn


def _drop() -> None:
    conn = getattr(_kept, "conn", None)
    if conn is not None:
        with contextlib.suppress(Exception):  # a broken socket closes however it can
            conn.disconnect()
    _kept.conn = None


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
        conn = _connection(client.connection_pool)
        try:
            return _send(conn, packed)
        except NoScriptError:
            client.script_load(script.script)
            return _send(conn, packed)
        except _RETRYABLE:
            _drop()
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
    pool = client.connection_pool
    packed = b"".join(hiredis.pack_command(command) for command in commands)
    conn = getattr(_quiet, "conn", None)
    try:
        if conn is not None and _quiet.pid == os.getpid() and conn.can_read():
            conn.disconnect()  # nothing is ever answered here: the server closed it
            conn = _quiet.conn = None
        if conn is None or _quiet.pool is not pool or _quiet.pid != os.getpid():
            if conn is not None and _quiet.pid == os.getpid():
                with contextlib.suppress(Exception):
                    conn.disconnect()
            conn = pool.make_connection()
            conn.send_command("CLIENT", "ID")
            _quiet.client_id = int(conn.read_response())  # its name on the server, for tests
            conn.send_packed_command((hiredis.pack_command(("CLIENT", "REPLY", "OFF")),))
            _quiet.conn, _quiet.pool, _quiet.pid = conn, pool, os.getpid()
        conn.send_packed_command((packed,), check_health=False)
    except _RETRYABLE:
        with contextlib.suppress(Exception):
            conn.disconnect()
        _quiet.conn = None
        raise
    return True
