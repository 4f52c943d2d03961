"""A hostile HTTP server on 127.0.0.1, for testing what a client does when the endpoint misbehaves.

Real sockets, one thread per connection, port 0 by default. Tell it what to answer, route by
route, with the behaviours below; it records every request it receives (method, path, headers,
body) so a test can assert what the client sent, and where.

    from hostile import HostileServer, cut_body, redirect, status

    with HostileServer() as bad, HostileServer() as other:
        bad.add("POST", "/v1/sam-audio-large", redirect(other.url + "/steal", 307))
        other.add("POST", "/steal", status(200))
        ...  # point the client at bad.url + "/v1/sam-audio-large"
        assert all("x-api-key" not in r.headers for r in other.requests)

Routing: :meth:`HostileServer.add` queues ``(method, path, behaviour)`` for ``times`` requests
(``times=None``: for ever); a request takes the first queued entry with its method and path
(``"*"`` matches any path, query strings are ignored); with none left, :attr:`default`
answers (a JSON 404).

Behaviours (each returns a function of the request handler):

* :func:`respond` -- a plain answer: status, body, content type, extra headers.
* :func:`status` -- a JSON error ``{"error": message}`` with ``Retry-After`` if given
  (``3600``, ``"inf"``, ``-1``, a date...): 429 floods, 5xx storms.
* :func:`json_doc` -- any JSON document (e.g. URLs to this server or another one).
* :func:`audio` -- a valid WAV of a given array (e.g. much shorter than what was asked).
* :func:`cut_body` -- send part of a body, then close: ``declare="full"`` promises the whole
  body in Content-Length (the connection ends early); ``declare="cut"`` sends a consistent
  Content-Length for the cut bytes (only the WAV header's sizes disagree).
* :func:`redirect` -- 301/302/303/307/308 to a ``Location`` (another origin, say).
* :func:`echo_key` -- put the request's ``x-api-key`` in the body, 200 or an error.
* :func:`drip` -- send a body one byte every ``every`` seconds.
* :func:`huge` -- stream ``size`` bytes (hundreds of MiB) from one reused block, never held whole.
* :func:`drop` -- close the connection without answering.
* :func:`accepted` -- a queue's answer to a submit: a request id and the status and result
  URLs to follow (any URLs: ``http://127.0.0.1:<other>\\@127.0.0.1:<port>/...``, userinfo,
  another origin, or fields missing).
* :func:`queued_result` -- a queue's COMPLETED result holding audio as base64, naming any
  request id (another request's, say).

Queue routes answer ``GET`` status and result paths with :func:`json_doc` (``{"status":
"QUEUED"}``...) or :func:`status` (404: a status store lagging behind the submit; 422 with
``FAILED``). :attr:`HostileServer.billed` counts what a provider bills: ``POST`` requests it
answered with a 2xx (a synchronous 200, or an accepted submit).

:func:`refused_url` gives a URL on which nothing listens (connection refused).
:func:`wav_bytes` and :func:`tone` build audio for answers.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf

Behaviour = Callable[["_Handler"], None]


class Recorded(NamedTuple):
    """One request as received: headers with lower-case names."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# --- audio helpers ----------------------------------------------------------------------


def wav_bytes(y: np.ndarray, sr: int = 48000, subtype: str = "PCM_16") -> bytes:
    """``y`` ((n,) or (channels, n)) as WAV bytes."""
    buf = io.BytesIO()
    y = np.asarray(y)
    sf.write(buf, y.T if y.ndim == 2 else y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


# --- behaviours -------------------------------------------------------------------------


def respond(
    code: int = 200,
    body: bytes = b"",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """A complete answer with a correct Content-Length."""

    def run(h: _Handler) -> None:
        h.head(code, content_type, len(body), headers)
        h.send(body)

    return run


def status(
    code: int, message: str = "injected", *, retry_after=None, headers: dict[str, str] | None = None
) -> Behaviour:
    """A JSON error ``{"error": message}``; ``retry_after`` is sent verbatim if not None."""
    extra = dict(headers or {})
    if retry_after is not None:
        extra["Retry-After"] = str(retry_after)
    return respond(code, json.dumps({"error": message}).encode(), headers=extra)


def json_doc(doc, code: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    """Any JSON document."""
    return respond(code, json.dumps(doc).encode(), headers=headers)


def audio(y: np.ndarray, sr: int = 48000, content_type: str = "audio/wav") -> Behaviour:
    """A valid WAV of ``y`` at ``sr``."""
    return respond(200, wav_bytes(y, sr), content_type)


def cut_body(
    body: bytes, at: int, *, declare: str = "full", content_type: str = "audio/wav"
) -> Behaviour:
    """Send ``body[:at]`` then close; Content-Length is ``len(body)`` ("full") or ``at`` ("cut")."""
    if declare not in ("full", "cut"):
        raise ValueError("declare must be 'full' or 'cut'")

    def run(h: _Handler) -> None:
        h.head(200, content_type, len(body) if declare == "full" else at)
        h.send(body[:at])
        h.close_connection = True

    return run


def redirect(location: str, code: int = 307) -> Behaviour:
    """A redirect to ``location`` (absolute URL)."""
    return respond(code, b"", "text/plain", {"Location": location})


def echo_key(
    code: int = 200,
    template: str = '{{"detail": "bad audio for key {key}"}}',
    content_type: str = "application/json",
) -> Behaviour:
    """A body holding the request's ``x-api-key`` (``template`` with ``{key}``)."""

    def run(h: _Handler) -> None:
        body = template.format(key=h.headers.get("x-api-key", "")).encode()
        h.head(code, content_type, len(body))
        h.send(body)

    return run


def drip(body: bytes, every: float = 1.0, content_type: str = "audio/wav") -> Behaviour:
    """Send ``body`` one byte every ``every`` seconds (Content-Length is the whole body)."""

    def run(h: _Handler) -> None:
        h.head(200, content_type, len(body))
        for i in range(len(body)):
            if i and h.server.stopping.wait(every):
                break
            if not h.send(body[i : i + 1]):
                break
        h.close_connection = True

    return run


def huge(
    size: int, *, content_type: str = "audio/wav", declare_length: bool = True, block: int = 1 << 20
) -> Behaviour:
    """Stream ``size`` bytes: a WAV header claiming them, then zeros, one reused block at a time.

    With ``declare_length=False`` no Content-Length is sent: the body ends when the connection
    closes.
    """
    header = _wav_header(size)

    def run(h: _Handler) -> None:
        h.head(200, content_type, size if declare_length else None)
        h.send(header[:size])
        left, zeros = size - len(header[:size]), bytes(block)
        while left > 0 and not h.server.stopping.is_set():
            n = min(left, block)
            if not h.send(zeros[:n] if n < block else zeros):
                break
            left -= n
        h.close_connection = True

    return run


def accepted(
    request_id: str | None = "req-1",
    status_url: str | None = None,
    response_url: str | None = None,
    **extra,
) -> Behaviour:
    """A queue's 200 to a submit; fields that are None are left out."""
    doc = {"request_id": request_id, "status_url": status_url, "response_url": response_url}
    return json_doc({**{k: v for k, v in doc.items() if v is not None}, **extra})


def queued_result(
    y: np.ndarray, sr: int = 48000, *, request_id: str | None = None, output=None
) -> Behaviour:
    """A COMPLETED queue result: ``y`` as base64 WAV in ``output`` (or ``output`` as given),
    naming ``request_id`` when it is not None."""
    import base64

    doc = {
        "status": "COMPLETED",
        "output": base64.b64encode(wav_bytes(y, sr)).decode() if output is None else output,
    }
    if request_id is not None:
        doc["request_id"] = request_id
    return json_doc(doc)


def drop() -> Behaviour:
    """Close the connection without answering."""

    def run(h: _Handler) -> None:
        h.close_connection = True

    return run


def _wav_header(total: int, sr: int = 48000) -> bytes:
    """A 44-byte PCM16 mono WAV header for a file of ``total`` bytes (sizes capped at 4 GiB)."""
    data = max(0, min(total - 44, 0xFFFFFFFF - 36))
    return (
        b"RIFF"
        + (36 + data).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + sr.to_bytes(4, "little")
        + (sr * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + data.to_bytes(4, "little")
    )


def refused_url(path: str = "/v1/sam-audio-large") -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}{path}"


# --- the server -------------------------------------------------------------------------


class HostileServer:
    """A threaded HTTP server on ``host`` that answers with queued behaviours and records all."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default: Behaviour = status(404, "no behaviour queued for this request")
        self._address = (host, port)
        self._lock = threading.Lock()
        self._routes: list[list] = []  # [method, path, behaviour, times left or None]
        self._requests: list[Recorded] = []
        self._billed = 0
        self._server: _Server | None = None

    def add(
        self, method: str, path: str, behaviour: Behaviour, times: int | None = 1
    ) -> HostileServer:
        """Answer the next ``times`` (None: every) ``method path`` requests with ``behaviour``."""
        with self._lock:
            self._routes.append([method.upper(), path, behaviour, times])
        return self

    def clear(self) -> None:
        """Forget queued behaviours and recorded requests."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()
            self._billed = 0

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def billed(self) -> int:
        """``POST`` requests answered with a 2xx: what a provider bills."""
        with self._lock:
            return self._billed

    @property
    def port(self) -> int:
        """The port listened on (the server must be started)."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the server must be started)."""
        if self._server is None:
            raise RuntimeError("start the HostileServer first (use `with`).")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HostileServer:
        """Listen and serve in a background thread."""
        self._server = _Server(self._address, _Handler)
        self._server.hostile = self
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection (dripping/streaming answers end)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        for conn in list(server.conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _behaviour_for(self, record: Recorded) -> Behaviour:
        with self._lock:
            self._requests.append(record)
            for route in self._routes:
                method, path, behaviour, times = route
                if method == record.method and path in ("*", record.path):
                    if times is not None:
                        route[3] -= 1
                        if route[3] <= 0:
                            self._routes.remove(route)
                    return behaviour
        return self.default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hostile: HostileServer

    def __init__(self, *args) -> None:
        self.stopping = threading.Event()
        self.conns: set = set()
        super().__init__(*args)

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up are expected here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.conns.discard(self.connection)

    def log_message(self, format: str, *args) -> None:
        """Quiet."""

    def head(
        self,
        code: int,
        content_type: str,
        length: int | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Status line and headers (Content-Length if ``length`` is not None)."""
        if self.command == "POST" and 200 <= code < 300:
            with self.server.hostile._lock:
                self.server.hostile._billed += 1
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.close_connection = True
            self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def send(self, data: bytes) -> bool:
        """Write ``data``; False when the client went away."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = Recorded(
            self.command,
            urlsplit(self.path).path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self.server.hostile._behaviour_for(record)(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any
