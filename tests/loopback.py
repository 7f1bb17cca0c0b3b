"""A fake third party on loopback: the HTTP server, its thread, and ``with`` for the fakes of
WeChat (tests/voting/wechat_fake.py) and Tencent Cloud SMS (tests/voting/sms_fake.py)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LoopbackFake:
    """Subclasses set ``handler`` (a request handler class reading ``self.owner``) and
    ``thread_name``, and call ``super().__init__()``."""

    handler: type[BaseHTTPRequestHandler]
    thread_name = "fake"

    def __init__(self) -> None:
        self.released = threading.Event()  # lets hanging handlers go at shutdown
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        # Headers and body go out in separate writes: without TCP_NODELAY each answer waits
        # for the client's delayed ACK (about 40 ms), which would make any bench through a fake
        # measure the fake.
        handler = type("Handler", (self.handler,), {"owner": self, "disable_nagle_algorithm": True})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll interval, so shutting down at the end of each test is quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
