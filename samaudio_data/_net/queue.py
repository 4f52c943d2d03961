"""The asynchronous queue: submit once, poll with back-off, fetch; or the synchronous call.

:class:`QueueExchange` sends one request body the way ``transport`` says:

- ``"sync"``: ``POST`` the v1 endpoint and wait for the answer (the connection stays open
  for the whole model run; a timeout or dropped connection after the provider started may
  be paid again on retry).
- ``"queue"``: ``POST /v2/<model>`` (billed when accepted), then ``GET status_url`` until
  ``COMPLETED`` (:class:`~.polls.PollSchedule`: once the time a job takes is known, sparse polls
  until shortly before it, dense ones around it; before that, at once, then after 0.1 s,
  1.5 times longer each time, at most every second; always within the read timeout), then
  ``GET response_url``. The request is kept as a
  :class:`~samaudio_data._net.journal.Ticket` (in memory and in the journal) until its answer
  is cached, so a poll or fetch that fails (5xx, dropped connection, timeout), a retry,
  or a new run after a crash collects the same paid result instead of submitting again.
- ``"auto"`` (default): the queue, unless the endpoint answered a submit with 404/405 (the
  model is not on the queue; not billed): then the synchronous call, at once and from then
  on. The answer is remembered by the client and, for a remote endpoint, in the limits'
  state directory (for a day), so other processes and later runs do not ask again.

A submit is billed as soon as it is accepted (``on_submit`` runs then). The status and
response URLs must be plain URLs on the endpoint's own origin, judged as urllib3 connects
(:mod:`samaudio_data._net.urls`; they receive the key), and the request id must be new: an
accepted submit whose answer cannot be followed (no usable id or URLs, another origin, an id
already journalled for another piece) is a
:class:`~samaudio_data.errors.UncollectableRequestError` saying it was paid, and is kept in
the journal so that the piece is not submitted again while its answer may still be collected.
A status store may lag behind the submit: a 404 within ``collect.LAG_GRACE`` seconds of it is polled
again; a request submitted by this process that stays unknown after that is uncollectable
too. An answer naming another request id is an
:class:`~samaudio_data.errors.AnswerMismatchError`. A ``FAILED`` job is a
:class:`~samaudio_data.errors.QueueJobFailedError` (not billed, not retried); a journalled
request of an earlier run whose result is gone (404, "expired") is a
:class:`~samaudio_data.errors.QueueResultExpiredError`. What comes back is the raw
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
from collections.abc import Callable
from pathlib import Path

from urllib3.util import parse_url

from .. import errors
from .._settings import TRANSPORTS, check_choice
from .._state.files import atomic_write
from ..audio import excerpt
from .collect import Collecting
from .journal import Journal, Ticket
from .polls import PollSchedule
from .tickets import Tickets
from .transport import Transport, is_local
from .urls import same_origin

log = logging.getLogger("samaudio_data")

REMEMBER = 24 * 3600.0  # how long "this endpoint has no queue" is believed
_MAX_ID = 200  # characters of a request id


def queue_url(endpoint: str) -> str | None:
    """The queue's submit URL for a v1 endpoint URL (``/v1/<model>`` -> ``/v2/<model>``).

    None when the URL has no ``/v1/`` segment to replace.

    >>> queue_url("https://api.segmind.com/v1/sam-audio-large")
    'https://api.segmind.com/v2/sam-audio-large'
    >>> queue_url("http://127.0.0.1:8000/models/x") is None
    True
    """
    parts = parse_url(endpoint)  # rebuilt from the parts urllib3 connects to
    segments = (parts.path or "").split("/")
    if "v1" not in segments:
        return None
    segments[len(segments) - 1 - segments[::-1].index("v1")] = "v2"
    return parts._replace(path="/".join(segments)).url


class QueueExchange(Collecting):
    """Sends request bodies by the sync call or the queue; see the module docstring.

    Submitting is here; following an accepted request (poll, fetch) is
    :class:`~.collect.Collecting`.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        mode: str = "auto",
        journal: Journal | None = None,
        state_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.mode = check_choice("transport", mode, TRANSPORTS)
        self.submit_url = queue_url(transport.endpoint)
        if self.mode == "queue" and self.submit_url is None:
            raise errors.InvalidRequestError(
                f"transport='queue' needs an endpoint URL with a /v1/ segment to derive the "
                f"queue's /v2/ URL from; {transport.endpoint} has none. Use transport='sync'."
            )
        self.journal = journal
        # a local endpoint's port is reused by others: its answer is not kept on disk
        self._state_path = (
            Path(state_dir) / "queue.json"
            if state_dir and not is_local(transport.endpoint)
            else None
        )
        self._served: tuple[bool, float] | None = None
        self._sleep = sleep
        self._clock = clock
        # accepted requests, this run's and the journal's (read back checked)
        self.tickets = Tickets(transport, journal, clock=clock)
        self.pending, self.inherited, self.done = (
            self.tickets.pending,
            self.tickets.inherited,
            self.tickets.done,
        )
        self._lock = threading.Lock()
        self.polls = PollSchedule()

    # --- is the model on the queue? ----------------------------------------------------------

    def served(self) -> bool | None:
        """Whether the endpoint serves the queue: True, False, or None (not known yet)."""
        if self.mode == "sync" or self.submit_url is None:
            return False
        known = self._served
        if known is None and self._state_path is not None:
            try:
                doc = json.loads(self._state_path.read_bytes()[:4096])
                if isinstance(doc["served"], bool) and isinstance(doc["checked"], float):
                    known = (doc["served"], doc["checked"])
            except (OSError, ValueError, KeyError, TypeError):
                known = None
        if known is None or not 0 <= time.time() - known[1] <= REMEMBER:
            return None  # unknown, stale, or from ahead of the clock (it stepped back)
        return known[0]

    def _remember(self, served: bool) -> None:
        with self._lock:
            if self._served is not None and self._served[0] == served:
                return
            self._served = (served, time.time())
        if self._state_path is not None:
            try:
                atomic_write(
                    self._state_path,
                    json.dumps({"served": served, "checked": time.time()}).encode(),
                    fsync=False,
                )
            except OSError as exc:
                log.debug("could not record whether the queue is served: %s", exc)

    # --- one request ---------------------------------------------------------------------------

    def send(
        self,
        body: dict,
        *,
        cache_key: str | None,
        max_bytes: int,
        on_submit: Callable[[dict], None] | None = None,
    ) -> tuple[bytes, dict[str, str], str]:
        """Send ``body`` (or collect the request already paid for ``cache_key``).

        Returns ``(content, headers, via)``: the answer to find the audio in, the headers of
        the paid answer (the submit's, for the queue; empty when collecting an earlier
        one), and "sync" or "queue". ``on_submit(headers)`` runs as soon as a submit is
        accepted (it is billed then).
        """
        ticket = self.pending(cache_key)
        headers: dict[str, str] = {}
        if ticket is None:
            if self.mode == "sync" or (self.mode == "auto" and self.served() is False):
                return self._sync(body, max_bytes)
            try:
                ticket, headers = self.submit(body, cache_key=cache_key, on_submit=on_submit)
            except errors.APIStatusError as exc:
                if exc.status_code not in (404, 405) or isinstance(exc, errors.RedirectError):
                    raise
                if self.mode == "queue":
                    raise errors.NotFoundError(
                        f"the endpoint does not serve this model on the queue ({exc.message}); "
                        "nothing was billed.",
                        status_code=exc.status_code,
                        hint="Use transport='auto' or 'sync'.",
                        response=exc.response,
                    ) from exc
                log.info(
                    "%s is not served on the queue (HTTP %s, not billed); using the "
                    "synchronous call from now on",
                    self.submit_url,
                    exc.status_code,
                )
                self._remember(False)
                return self._sync(body, max_bytes)
            return self.collect(ticket, max_bytes=max_bytes, fresh=True), headers, "queue"
        elif ticket.unfollowable:
            raise self.tickets.uncollectable(ticket)
        else:
            log.info(
                "collecting request %s, paid for earlier, instead of sending it again",
                ticket.request_id,
            )
        return self.collect(ticket, max_bytes=max_bytes), headers, "queue"

    def _sync(self, body: dict, max_bytes: int):
        _, content, headers = self.transport.request(
            "POST", self.transport.endpoint, json_body=body, max_bytes=max_bytes
        )
        return content, headers, "sync"

    def submit(
        self, body: dict, *, cache_key: str | None, on_submit: Callable[[dict], None] | None = None
    ) -> tuple[Ticket, dict[str, str]]:
        """``POST /v2/<model>``; the accepted request, journalled, and the answer's headers.

        ``on_submit(headers)`` runs as soon as the submit is accepted: it is billed from
        then on, whatever follows.
        """
        assert self.submit_url is not None  # the queue is used only with a /v2/ URL
        _, content, headers = self.transport.request(
            "POST", self.submit_url, json_body=body, max_bytes=1 << 20
        )
        self._remember(True)
        if on_submit is not None:
            on_submit(headers)
        try:
            doc = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            doc = None
        doc = doc if isinstance(doc, dict) else {}
        request_id, urls = doc.get("request_id"), [doc.get("status_url"), doc.get("response_url")]
        why = ""
        if not (
            isinstance(request_id, str)
            and request_id
            and len(request_id) <= _MAX_ID
            and request_id.isprintable()
        ):
            request_id = ""
            why = (
                "its answer has no usable request_id (body starts with "
                f"{self.transport.redact(excerpt(content, 200))})"
            )
        elif not all(same_origin(u, self.transport.endpoint) for u in urls):
            shown = ", ".join(self.transport.redact(repr(u))[:200] for u in urls)
            why = (
                f"its status and result URLs ({shown}) are not both plain URLs on the "
                f"endpoint's origin ({self.transport.endpoint})"
            )
        elif self.tickets.owned_elsewhere(request_id, cache_key):
            why = f"its id {request_id!r} is that of a request already kept for another piece"
        status_url, response_url = (str(urls[0]), str(urls[1])) if not why else ("", "")
        ticket = Ticket(
            request_id,
            status_url,
            response_url,
            cache_key=cache_key,
            created=time.time(),
            unfollowable=why,
        )
        if not why:
            self.tickets.submitted(request_id)
        self.tickets.keep(ticket)  # on disk before any waiting: a crash now loses nothing paid
        if why:
            raise self.tickets.uncollectable(ticket)
        return ticket, headers
