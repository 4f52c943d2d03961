"""The asynchronous queue: submit once, poll with back-off, fetch; or the synchronous call.

:class:`QueueExchange` sends one request body the way ``transport`` says:

- ``"sync"``: ``POST`` the v1 endpoint and wait for the answer (the connection stays open
  for the whole model run; a timeout or dropped connection after the provider started may
  be paid again on retry).
- ``"queue"``: ``POST /v2/<model>`` (billed when accepted), then ``GET status_url`` until
  ``COMPLETED`` (first after 0.1 s, then 1.5 times longer each time, at most every second,
  within the read timeout), then ``GET response_url``. The request is kept as a
  :class:`~samaudio_data._net.journal.Ticket` (in memory and in the journal) until its answer
  is cached, so a poll or fetch that fails (5xx, dropped connection, timeout), a retry,
  or a new run after a crash collects the same paid result instead of submitting again.
- ``"auto"`` (default): the queue, unless the endpoint answered a submit with 404/405 (the
  model is not on the queue; not billed): then the synchronous call, at once and from then
  on. The answer is remembered by the client and, for a remote endpoint, in the limits'
  state directory (for a day), so other processes and later runs do not ask again.

The status and response URLs must be on the endpoint's own origin (they receive the key);
any other is refused before anything is sent there. A ``FAILED`` job is a
:class:`~samaudio_data.errors.QueueJobFailedError` (not billed, not retried); a result that
is gone (404, "expired") is a :class:`~samaudio_data.errors.QueueResultExpiredError`. What comes back is the raw
sync answer, or the result's ``output`` re-encoded as JSON: either way
:func:`samaudio_data._net.responses.audio_bytes` finds the audio in it.

Example
-------
>>> from samaudio_data._net.transport import Transport
>>> from samaudio_data.testing import LocalEndpoint
>>> import base64, numpy as np
>>> from samaudio_data.audio import encode_wav
>>> with LocalEndpoint(queue_output="base64") as ep:
...     q = QueueExchange(Transport(ep.url, "local-key"), mode="queue")
...     wav = encode_wav(np.zeros(4800), 48000)
...     body = {"audio": base64.b64encode(wav).decode(), "description": "speech"}
...     content, headers, via = q.send(body, cache_key=None, max_bytes=1 << 20)
...     submits = ep.stats["submits"]
>>> via, content[:5], submits
('queue', b'"UklG', 1)
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from .. import errors
from .._settings import TRANSPORTS, check_choice
from .._state.files import atomic_write
from .journal import Journal, Ticket
from .transport import Transport, is_local, origin
from ..audio import excerpt, sniff_format

log = logging.getLogger("samaudio_data")

POLL_FIRST = 0.1     # seconds before the first status poll
POLL_FACTOR = 1.5    # back-off between polls
POLL_MAX = 1.0       # at most this long between polls (the provider's SDK polls every 1 s)
REMEMBER = 24 * 3600.0  # how long "this endpoint has no queue" is believed
_PENDING = ("QUEUED", "PROCESSING", "IN_QUEUE", "IN_PROGRESS", "STARTING", "RUNNING")
_FAILED = ("FAILED", "ERROR", "CANCELLED", "CANCELED")


def queue_url(endpoint: str) -> Optional[str]:
    """The queue's submit URL for a v1 endpoint URL (``/v1/<model>`` -> ``/v2/<model>``).

    None when the URL has no ``/v1/`` segment to replace.

    >>> queue_url("https://api.segmind.com/v1/sam-audio-large")
    'https://api.segmind.com/v2/sam-audio-large'
    >>> queue_url("http://127.0.0.1:8000/models/x") is None
    True
    """
    parts = urlsplit(endpoint)
    segments = parts.path.split("/")
    if "v1" not in segments:
        return None
    segments[len(segments) - 1 - segments[::-1].index("v1")] = "v2"
    return urlunsplit(parts._replace(path="/".join(segments)))


class QueueExchange:
    """Sends request bodies by the sync call or the queue; see the module docstring."""

    def __init__(self, transport: Transport, *, mode: str = "auto",
                 journal: Optional[Journal] = None, state_dir: Optional[Path] = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.mode = check_choice("transport", mode, TRANSPORTS)
        self.submit_url = queue_url(transport.endpoint)
        if self.mode == "queue" and self.submit_url is None:
            raise errors.InvalidRequestError(
                f"transport='queue' needs an endpoint URL with a /v1/ segment to derive the "
                f"queue's /v2/ URL from; {transport.endpoint} has none. Use transport='sync'.")
        self.journal = journal
        # a local endpoint's port is reused by others: its answer is not kept on disk
        self._state_path = (Path(state_dir) / "queue.json"
                            if state_dir and not is_local(transport.endpoint) else None)
        self._served: Optional[Tuple[bool, float]] = None
        self._sleep = sleep
        self._clock = clock
        self._tickets: Dict[str, Ticket] = {}
        self._lock = threading.Lock()

    # --- what is pending -------------------------------------------------------------------

    def pending(self, cache_key: Optional[str]) -> Optional[Ticket]:
        """The paid, uncollected request answering ``cache_key`` (this run's, or journalled)."""
        if cache_key is None:
            return None
        with self._lock:
            ticket = self._tickets.get(cache_key)
        if ticket is None and self.journal is not None:
            ticket = self.journal.get(cache_key)
        return ticket

    def inherited(self, cache_key: Optional[str]) -> bool:
        """Whether ``cache_key``'s pending request was paid for by an earlier run (journal)."""
        if cache_key is None or self.journal is None:
            return False
        with self._lock:
            if cache_key in self._tickets:
                return False
        return self.journal.get(cache_key) is not None

    def done(self, cache_key: Optional[str]) -> None:
        """The answer for ``cache_key`` is safe (cached): forget its request."""
        if cache_key is None:
            return
        with self._lock:
            self._tickets.pop(cache_key, None)
        if self.journal is not None:
            try:
                self.journal.remove(cache_key)
            except OSError as exc:
                log.warning("could not remove the journal entry %s: %s", cache_key[:12], exc)

    def _keep(self, ticket: Ticket) -> None:
        if ticket.cache_key is None:
            return
        with self._lock:
            self._tickets[ticket.cache_key] = ticket
        if self.journal is not None:
            try:
                self.journal.put(ticket)
            except OSError as exc:  # a full or read-only disk never stops paid work
                warnings.warn(f"could not write the journal entry of request "
                              f"{ticket.request_id} ({exc}); it is kept in memory only, so a "
                              "crash before it is collected would pay for it again.",
                              RuntimeWarning, stacklevel=2)

    # --- is the model on the queue? ----------------------------------------------------------

    def served(self) -> Optional[bool]:
        """Whether the endpoint serves the queue: True, False, or None (not known yet)."""
        if self.mode == "sync" or self.submit_url is None:
            return False
        known = self._served
        if known is None and self._state_path is not None:
            try:
                doc = json.loads(self._state_path.read_bytes())
                known = (bool(doc["served"]), float(doc["checked"]))
            except (OSError, ValueError, KeyError, TypeError):
                known = None
        if known is None or time.time() - known[1] > REMEMBER:
            return None
        return known[0]

    def _remember(self, served: bool) -> None:
        with self._lock:
            if self._served is not None and self._served[0] == served:
                return
            self._served = (served, time.time())
        if self._state_path is not None:
            try:
                atomic_write(self._state_path, json.dumps(
                    {"served": served, "checked": time.time()}).encode(), fsync=False)
            except OSError as exc:
                log.debug("could not record whether the queue is served: %s", exc)

    # --- one request ---------------------------------------------------------------------------

    def send(self, body: dict, *, cache_key: Optional[str], max_bytes: int,
             on_submit: Optional[Callable[[dict], None]] = None
             ) -> Tuple[bytes, Dict[str, str], str]:
        """Send ``body`` (or collect the request already paid for ``cache_key``).

        Returns ``(content, headers, via)``: the answer to find the audio in, the headers of
        the paid answer (the submit's, for the queue; empty when collecting an earlier
        one), and "sync" or "queue". ``on_submit(headers)`` runs as soon as a submit is
        accepted (it is billed then).
        """
        ticket = self.pending(cache_key)
        headers: Dict[str, str] = {}
        if ticket is None:
            if self.mode == "sync" or (self.mode == "auto" and self.served() is False):
                return self._sync(body, max_bytes)
            try:
                ticket, headers = self.submit(body, cache_key=cache_key)
            except errors.APIStatusError as exc:
                if exc.status_code not in (404, 405) or isinstance(exc, errors.RedirectError):
                    raise
                if self.mode == "queue":
                    raise errors.NotFoundError(
                        f"the endpoint does not serve this model on the queue ({exc.message}); "
                        "nothing was billed.", status_code=exc.status_code,
                        hint="Use transport='auto' or 'sync'.", response=exc.response) from exc
                log.info("%s is not served on the queue (HTTP %s, not billed); using the "
                         "synchronous call from now on", self.submit_url, exc.status_code)
                self._remember(False)
                return self._sync(body, max_bytes)
            self._remember(True)
            if on_submit is not None:
                on_submit(headers)
        else:
            log.info("collecting request %s, paid for earlier, instead of sending it again",
                     ticket.request_id)
        return self.collect(ticket, max_bytes=max_bytes), headers, "queue"

    def _sync(self, body: dict, max_bytes: int):
        _, content, headers = self.transport.request("POST", self.transport.endpoint,
                                                     json_body=body, max_bytes=max_bytes)
        return content, headers, "sync"

    def submit(self, body: dict, *, cache_key: Optional[str]) -> Tuple[Ticket, Dict[str, str]]:
        """``POST /v2/<model>``; the accepted request, journalled, and the answer's headers."""
        assert self.submit_url is not None  # the queue is used only with a /v2/ URL
        _, content, headers = self.transport.request("POST", self.submit_url, json_body=body,
                                                     max_bytes=1 << 20)
        try:
            doc = json.loads(content)
            fields = [doc.get(k) for k in ("request_id", "status_url", "response_url")]
        except (ValueError, UnicodeDecodeError, AttributeError):
            fields = [None]
        if not all(isinstance(f, str) and f for f in fields):
            raise errors.ResponseDecodeError(
                "the queue accepted the request but its answer lacks request_id, status_url "
                "or response_url (it may be billed; it was not sent again); body starts with "
                f"{self.transport.redact(excerpt(content, 300))}")
        request_id, status_url, response_url = fields
        for url in (status_url, response_url):
            if origin(url) != origin(self.transport.endpoint):
                raise errors.RedirectError(
                    f"the queue accepted request {request_id} (it may be billed) but points to "
                    f"{self.transport.redact(url)}, which is not the endpoint's origin "
                    f"({self.transport.endpoint}); nothing was sent there, the API key "
                    "included.", hint="Use transport='sync' with this endpoint.")
        ticket = Ticket(request_id, status_url, response_url, cache_key=cache_key,
                        created=time.time())
        self._keep(ticket)  # on disk before any waiting: a crash now loses nothing paid
        return ticket, headers

    def collect(self, ticket: Ticket, *, max_bytes: int) -> bytes:
        """Poll ``ticket`` until it is done, within the read timeout; its answer's content."""
        deadline = self._clock() + self.transport.total_timeout
        delay = POLL_FIRST
        while True:
            state = self._status(ticket)
            if state == "COMPLETED":
                content = self._result(ticket, max_bytes)
                if content is not None:
                    return content
            if self._clock() + delay > deadline:
                raise errors.APITimeoutError(
                    f"queued request {ticket.request_id} is still {state} after "
                    f"{self.transport.total_timeout:g} s; it is paid for and kept, so the next "
                    "attempt (or run) collects it without paying again.",
                    hint="Raise timeout= for long clips or cold starts.")
            self._sleep(delay)
            delay = min(POLL_MAX, delay * POLL_FACTOR)

    def _get(self, ticket: Ticket, url: str, max_bytes: int) -> Tuple[int, bytes]:
        try:
            status, content, _ = self.transport.request("GET", url, max_bytes=max_bytes)
        except errors.APIStatusError as exc:
            if exc.status_code == 422:  # FAILED is served as a 422 with the state in the body
                self._failed(ticket, exc.message, exc)
            if exc.status_code == 404:
                self.done(ticket.cache_key)
                raise errors.QueueResultExpiredError(
                    f"queued request {ticket.request_id} is gone ({exc.message}); results are "
                    "kept about an hour. It has to be sent again.", status_code=404,
                    response=exc.response) from exc
            raise
        return status, content

    def _status(self, ticket: Ticket) -> str:
        _, content = self._get(ticket, ticket.status_url, 1 << 20)
        try:
            doc = json.loads(content)
            state = str(doc["status"]).upper()
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            log.info("status of request %s is unreadable (%s); polling again",
                     ticket.request_id, excerpt(content))
            return "UNKNOWN"
        if state in _FAILED:
            self._failed(ticket, doc.get("error") or state, None)
        return state

    def _result(self, ticket: Ticket, max_bytes: int) -> Optional[bytes]:
        """The result's content to find the audio in; None if it is not ready after all."""
        status, content = self._get(ticket, ticket.response_url, max_bytes)
        if status == 202:
            return None
        if sniff_format(content):
            return content
        try:
            doc = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict):
            raise errors.IncompleteResponseError(
                f"the result of queued request {ticket.request_id} is not the expected JSON: "
                f"{self.transport.redact(excerpt(content))}; fetching it again costs nothing.")
        if str(doc.get("status", "")).upper() in _FAILED:
            self._failed(ticket, doc.get("error"), None)
        if str(doc.get("status", "COMPLETED")).upper() in _PENDING:
            return None
        output = doc.get("output")
        return content if output is None else json.dumps(output).encode()

    def _failed(self, ticket: Ticket, why, cause: Optional[BaseException]) -> None:
        self.done(ticket.cache_key)
        raise errors.QueueJobFailedError(
            f"the queue reports request {ticket.request_id} FAILED: {why or 'no reason given'}."
            " A failed job is not billed; it is not retried, since the same input usually "
            "fails again.", status_code=422,
            hint="Try another description or candidates setting, or retry later.",
            response=getattr(cause, "response", None)) from cause
