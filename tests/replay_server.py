"""A local HTTP server (127.0.0.1, random port) that replays recorded answers.

Routes match a path (and optionally some query parameters) to a sequence of :class:`Reply`;
each request takes the next one, and the last repeats for ever (``Reply(503)`` once means
"503 for ever"). Every request received is recorded (path, query, headers) so tests can check
what a client sent. Unmatched requests get a 404 naming the path.

    with ReplayServer(FIXTURES) as server:
        server.add("/v1/archive", Reply(500), Reply(body=server.file("x.json")))
        url = server.url("/v1/archive")
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One recorded answer.

    delay: seconds to wait before answering (to trigger client timeouts);
    truncate_at: send only this many bytes of ``body`` (with the full Content-Length) and
    close the connection; drop: close the connection without any answer;
    send_length: False sends no Content-Length (the body ends when the connection closes).
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_at: int | None = None
    drop: bool = False
    send_length: bool = True


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    raw_query: str
    headers: dict[str, str]  # names lower-cased
    at: float  # time.monotonic() on arrival


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0

    def matches(self, path: str, query: dict[str, str]) -> bool:
        return path == self.path and all(query.get(k) == v for k, v in self.query.items())

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class ReplayServer:
    """Serve recorded replies from ``fixtures`` (a folder of response bodies)."""

    def __init__(self, fixtures: Path | str | None = None) -> None:
        self.fixtures = Path(fixtures) if fixtures else None
        self.requests: list[Received] = []
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- set-up

    def file(self, name: str) -> bytes:
        """The bytes of a fixture file."""
        if self.fixtures is None:
            raise ValueError("no fixtures folder given")
        return (self.fixtures / name).read_bytes()

    def add(self, path: str, *replies: Reply, query: dict[str, str] | None = None) -> None:
        """Answer requests for ``path`` (whose query includes ``query``) with ``replies``.

        Routes added later take precedence, so a test can override a default route.
        """
        if not replies:
            raise ValueError("give at least one Reply")
        with self._lock:
            self._routes.insert(0, _Route(path, dict(query or {}), list(replies)))

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the replay server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    # --- life cycle

    def start(self) -> ReplayServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="replay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- serving

    def _take(self, path: str, query: dict[str, str]) -> Reply | None:
        with self._lock:
            for route in self._routes:
                if route.matches(path, query):
                    return route.next_reply()
        return None


def _handler(replay: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: drops are clean

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            received = Received(
                method="GET",
                path=parts.path,
                query=query,
                raw_query=parts.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                at=time.monotonic(),
            )
            with replay._lock:
                replay.requests.append(received)
            reply = replay._take(parts.path, query)
            if reply is None:
                reply = Reply(404, f"no replay for {parts.path}".encode())
            try:
                self._send(reply)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to do

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(reply.status)
            headers = {"Content-Type": "application/octet-stream", **reply.headers}
            if reply.send_length:
                headers.setdefault("Content-Length", str(len(reply.body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            body = reply.body if reply.truncate_at is None else reply.body[: reply.truncate_at]
            self.wfile.write(body)
            self.wfile.flush()
            if reply.truncate_at is not None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
