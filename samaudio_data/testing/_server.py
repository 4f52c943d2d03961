"""HTTP plumbing of the local endpoint: a threaded server whose handler only routes.

Each request is read (body size checked against ``max_body_bytes`` first), routed to a public
method of :class:`~samaudio_data.testing._service.Service`, and its
:class:`~samaudio_data.testing._protocol.Reply` written (or the connection dropped or cut,
for faults). Parser errors are JSON too. :class:`Server` tracks open connections so that
``stop()`` never waits for a kept-alive client.

Example
-------
>>> route("POST", "/v2/sam-audio-large"), route("GET", "/v2/requests/abc/status")
(('submit', ''), ('status', 'abc'))
>>> route("GET", "/v1/sam-audio-large"), route("GET", "/nope")
(('405', 'POST'), ('404', ''))
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ._protocol import (
    CREDITS_PATH,
    FILES_PREFIX,
    MODEL_PATH,
    POLL_PREFIX,
    QUEUE_PATH,
    REQUESTS_PREFIX,
    Reply,
    json_reply,
    phrase,
)
from ._service import Service

_DRAIN_CHUNK = 1 << 16


def route(method: str, path: str) -> tuple[str, str]:
    """``(route, argument)`` of a request: "call", "submit", "status" or "result" (argument:
    the request id), "credits", "file" (the file name), "405" (the allowed method) or "404"."""
    if path == MODEL_PATH:
        return ("call", "") if method == "POST" else ("405", "POST")
    if path == QUEUE_PATH:
        return ("submit", "") if method == "POST" else ("405", "POST")
    if path == CREDITS_PATH:
        return ("credits", "") if method == "GET" else ("405", "GET")
    for prefix, name in (
        (FILES_PREFIX, "file"),
        (REQUESTS_PREFIX, "result"),
        (POLL_PREFIX, "result"),
    ):
        if path.startswith(prefix) and len(path) > len(prefix):
            rest = path[len(prefix) :]
            if name == "result" and rest.endswith("/status") and prefix == REQUESTS_PREFIX:
                name, rest = "status", rest[: -len("/status")]
            if "/" in rest or not rest:
                return "404", ""
            return (name, rest) if method == "GET" else ("405", "GET")
    return "404", ""


class Server(ThreadingHTTPServer):
    """A threaded HTTP server for one :class:`Service`, tracking its open connections."""

    daemon_threads = True
    block_on_close = False  # close_connections() shuts connections down itself
    request_queue_size = 128

    def __init__(self, address, service: Service) -> None:
        self.service = service
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """Stay quiet: errors here are clients that went away mid-answer."""

    def track(self, conn, opened: bool) -> None:
        """Remember (``opened``) or forget a client connection."""
        with self._conns_lock:
            (self._conns.add if opened else self._conns.discard)(conn)

    def close_connections(self) -> None:
        """Shut every open client connection down (requests still sleeping are abandoned)."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SamAudioLocal/1.0"
    # TCP_NODELAY, as servers in front of an API set it: the headers and the body are two
    # writes, and with Nagle's algorithm a small body waits for the client's delayed ACK
    # (40 ms on Linux) on a kept-alive connection: every queue poll took 40 ms on loopback
    disable_nagle_algorithm = True
    timeout = 120  # seconds an idle keep-alive connection may hold a thread
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args) -> None:
        """Log method, path and status only (never headers), when ``log_requests`` is on."""
        if self.server.service.options.log_requests:
            sys.stderr.write(f"local-endpoint {self.address_string()} {format % args}\n")

    def send_error(self, code: int, message: str | None = None, explain=None) -> None:
        """Errors raised by the HTTP parser are JSON too."""
        self.close_connection = True
        self._write(json_reply(code, message or phrase(code)))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        # a provider's gateway counts a request against the rate limit when its headers
        # arrive, before reading its body
        service = self.server.service
        arrived = service.clock()
        path = urlsplit(self.path).path
        name, arg = route(method, path)
        size = self._body_size()
        if size is None:
            return
        limit = service.options.max_body_bytes
        if limit is not None and size > limit:
            self._drain(size)
            self.close_connection = True
            self._write(service.too_large(name if name in ("call", "submit") else None, size))
            return
        body = self.rfile.read(size) if size else b""
        key = self.headers.get("x-api-key")
        if name in ("submit", "status", "result") and not service.options.queue:
            reply = service.queue_off(path)
        elif name in ("call", "submit"):
            reply = getattr(service, name)(key, body, arrived)
        elif name in ("status", "result"):
            reply = getattr(service, name)(key, arg)
        elif name == "credits":
            reply = service.credits(key)
        elif name == "file":
            reply = service.file(arg)
        elif name == "405":
            reply = json_reply(
                405, f"method {method} not allowed on {path}; use {arg}.", {"Allow": arg}
            )
        else:
            reply = json_reply(
                404,
                f"no such endpoint: {path}. The model is at POST "
                f"{MODEL_PATH} (or {QUEUE_PATH} for the queue).",
            )
        self._write(reply)

    def _body_size(self) -> int | None:
        """The request body's length, or None after answering 411/400 for a missing/bad one."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("POST", "PUT", "PATCH") or self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self._write(
                    json_reply(
                        411,
                        "a Content-Length header is required (chunked uploads are not supported).",
                    )
                )
                return None
            return 0
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._write(json_reply(400, f"bad Content-Length header {length!r}."))
            return None
        return n

    def _drain(self, size: int) -> None:
        """Read and discard ``size`` bytes, so the client can read the answer."""
        while size > 0:
            chunk = self.rfile.read(min(size, _DRAIN_CHUNK))
            if not chunk:
                return
            size -= len(chunk)

    def _write(self, reply: Reply) -> None:
        if reply.mode == "drop":
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:  # say so, or a kept-alive client would reuse the socket
            self.send_header("Connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.mode == "truncate":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(reply.body)
