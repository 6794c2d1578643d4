"""Peers of a real ``mailsms serve`` that live in the test process and count what they get.

``FakeSmsc`` is an HTTP provider (``type = "http"`` gateway) that counts every
part by (queue id, seq) as the request arrives, before it answers: a part whose
answer never reached mailsms still counts as received, as at a real SMSC.
``MailSink`` is an SMTP relay for mail-out (delivery reports, incoming SMS as
mail) that counts every mail at DATA.  Both can hold the next request until
released, so that a test can kill the daemon while it waits on the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.support.proc import free_port

HOLD_LIMIT = 60.0  # seconds a held request waits for its release at most


class _Hold:
    """Hold the next request (or every request) until released."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed = False
        self._all = False
        self.holding = threading.Event()  # a request is being held
        self.held_by = ""  # which node sent the held request (several nodes: its name)
        self._release = threading.Event()
        self._release.set()

    def arm(self, every: bool = False) -> None:
        with self._lock:
            self.holding.clear()
            self._release.clear()
            self._armed, self._all = True, every

    def release(self) -> None:
        with self._lock:
            self._armed = self._all = False
            self._release.set()

    def take(self, by: str = "") -> bool:
        """True when this request (from node ``by``) is to be held (then wait with ``wait``)."""
        with self._lock:
            if not self._armed:
                return False
            if not self._all:
                self._armed = False
            self.held_by = by
            self.holding.set()
            return True

    def wait(self) -> None:
        self._release.wait(HOLD_LIMIT)


class FakeSmsc:
    """An HTTP SMS provider on loopback: ``GET /send?id=<queue id>.<seq>&to=<number>``.

    Answers 200, 400 (refused for good) for numbers ``refuse`` names; while
    ``down`` it is not listening at all (connection refused).
    """

    def __init__(self, refuse: Callable[[str], bool] = lambda number: False, port: int = 0) -> None:
        self.port = port or free_port()
        self.refuse = refuse
        self.seen: Counter[tuple[str, int]] = Counter()
        self.numbers: dict[str, str] = {}  # queue id -> number
        self.hold = _Hold()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send?id=%msgid%&to=%number%"

    def start(self) -> None:
        smsc = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = smsc._receive(self.path)
                body = b"OK\n" if status == 200 else b"ERR refused\n"
                with contextlib.suppress(OSError):  # the daemon may be dead by now
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (the SMSC is down); held requests are released."""
        self.hold.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _receive(self, path: str) -> int:
        query = parse_qs(urlsplit(path).query)
        queue_id, _, seq = query.get("id", [""])[0].rpartition(".")
        number = query.get("to", [""])[0]
        with self._lock:
            self.seen[(queue_id, int(seq or 0))] += 1
            self.numbers[queue_id] = number
        if self.hold.take(query.get("node", [""])[0]):
            self.hold.wait()
        return 400 if self.refuse(number) else 200

    def parts(self) -> int:
        with self._lock:
            return sum(self.seen.values())

    def duplicates(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return {key: count for key, count in self.seen.items() if count > 1}


class _SinkHandler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        self.sink._receive(bytes(content))
        if self.sink.hold.take(str(session.host_name or "").split(".")[0]):
            await asyncio.get_running_loop().run_in_executor(None, self.sink.hold.wait)
        return "250 2.0.0 Ok: queued"


class MailSink:
    """An SMTP relay on loopback that records every mail as its DATA arrives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hold = _Hold()
        self._lock = threading.Lock()
        self._mails: list[bytes] = []
        self._controller = Controller(_SinkHandler(self), hostname="127.0.0.1", port=self.port)

    @property
    def relay(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self.hold.release()
        self._controller.stop()

    def _receive(self, content: bytes) -> None:
        with self._lock:
            self._mails.append(content)

    def mails(self) -> list[bytes]:
        with self._lock:
            return list(self._mails)
