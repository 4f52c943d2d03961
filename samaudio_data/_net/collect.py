"""Collecting a queued request: poll its status until it is done, then fetch its result.

:class:`Collecting` is the half of :class:`~samaudio_data._net.queue.QueueExchange` that
follows a :class:`~samaudio_data._net.journal.Ticket` after its submit was accepted (and
paid): ``GET status_url`` on the :class:`~.polls.PollSchedule` within the read timeout,
then ``GET response_url``. A 404 within ``LAG_GRACE`` seconds of the submit is polled
again; one that stays is uncollectable (our own young request) or expired (an earlier
run's). An answer naming another request id is an
:class:`~samaudio_data.errors.AnswerMismatchError`; a ``FAILED`` job a
:class:`~samaudio_data.errors.QueueJobFailedError`. The module docstring of
:mod:`samaudio_data._net.queue` tells the whole exchange, with an example.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from .. import errors
from ..audio import excerpt, sniff_format
from .journal import Journal, Ticket
from .polls import PollSchedule
from .tickets import Tickets
from .transport import Transport

log = logging.getLogger("samaudio_data")

LAG_GRACE = 30.0  # seconds after a submit during which a status 404 is polled again
_PENDING = ("QUEUED", "PROCESSING", "IN_QUEUE", "IN_PROGRESS", "STARTING", "RUNNING")
_FAILED = ("FAILED", "ERROR", "CANCELLED", "CANCELED")


class Collecting:
    """Polls and fetches accepted requests; mixed into :class:`~.queue.QueueExchange`.

    It uses, and the class it is mixed into sets: ``transport``, ``journal``, ``tickets``,
    ``done`` (``tickets.done``), ``polls``, ``_clock`` and ``_sleep``.
    """

    transport: Transport
    journal: Journal | None
    tickets: Tickets
    done: Callable[[str | None], None]
    polls: PollSchedule
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]

    def collect(self, ticket: Ticket, *, max_bytes: int, fresh: bool = False) -> bytes:
        """Poll ``ticket`` until it is done, within the read timeout; its answer's content.
        ``fresh``: just submitted (its completion time teaches the poll schedule)."""
        start = self._clock()
        deadline = start + self.transport.total_timeout
        polled = 0.0  # when the previous poll left (s after the submit)
        delay = self.polls.first() if fresh else None  # none before the expected time nears
        if delay is not None:
            self._sleep(min(delay, self.transport.total_timeout))
        while True:
            sent = self._clock() - start
            state = self._status(ticket)
            if state == "COMPLETED":
                if fresh:  # it finished between the previous poll and this one
                    self.polls.learn(sent, sent - polled)
                    fresh = False
                content = self._result(ticket, max_bytes)
                if content is not None:
                    return content
            delay = self.polls.delay(self._clock() - start, delay)
            if self._clock() + delay > deadline:
                raise errors.APITimeoutError(
                    f"queued request {ticket.request_id} is still {state} after "
                    f"{self.transport.total_timeout:g} s; it is paid for and kept, so the next "
                    "attempt (or run) collects it without paying again.",
                    hint="Raise timeout= for long clips or cold starts.",
                )
            polled = sent
            self._sleep(delay)

    def _get(self, ticket: Ticket, url: str, max_bytes: int) -> tuple[int, bytes] | None:
        """``GET`` a status or result URL; None while a lagging store does not know it yet."""
        try:
            status, content, _ = self.transport.request("GET", url, max_bytes=max_bytes)
        except errors.APIStatusError as exc:
            if exc.status_code == 422:  # FAILED is served as a 422 with the state in the body
                self._failed(ticket, exc.message, exc)
            if exc.status_code == 404:
                self._unknown(ticket, exc)
                return None
            raise
        return status, content

    def _unknown(self, ticket: Ticket, exc: errors.APIStatusError) -> None:
        """A 404 on a status or result: lag right after the submit (returns: poll again),
        a request this process submitted that stays unknown (uncollectable, kept), or an
        earlier run's request whose result is gone (expired: it has to be sent again)."""
        since = self.tickets.since(ticket.request_id)
        age = (self._clock() - since) if since is not None else time.time() - ticket.created
        if 0 <= age < LAG_GRACE:
            log.info(
                "request %s is not known to the status store yet (%.1f s after its "
                "submit); polling again",
                ticket.request_id,
                age,
            )
            return
        kept = self.journal.retention if self.journal is not None else 3600.0
        if since is not None and age < kept:  # ours, young: never known, not "expired"
            ticket = replace(
                ticket,
                status_url="",
                response_url="",
                unfollowable=(f"the queue still answers 404 for it {age:.0f} s after its submit"),
            )
            self.tickets.keep(ticket)
            raise self.tickets.uncollectable(ticket) from exc
        self.done(ticket.cache_key)
        raise errors.QueueResultExpiredError(
            f"queued request {ticket.request_id} is gone ({exc.message}); results are "
            "kept about an hour. It has to be sent again.",
            status_code=404,
            response=exc.response,
        ) from exc

    def _named(self, ticket: Ticket, doc: dict) -> None:
        """An answer naming another request than ``ticket``'s is never used."""
        named = doc.get("request_id")
        if named is not None and named != ticket.request_id:
            raise errors.AnswerMismatchError(
                f"the queue's answer for request {ticket.request_id} names request "
                f"{self.transport.redact(repr(named))[:100]}: it is another request's answer "
                "and was not used."
            )

    def _status(self, ticket: Ticket) -> str:
        got = self._get(ticket, ticket.status_url, 1 << 20)
        if got is None:
            return "QUEUED"
        content = got[1]
        try:
            doc = json.loads(content)
            state = str(doc["status"]).upper()
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            log.info(
                "status of request %s is unreadable (%s); polling again",
                ticket.request_id,
                excerpt(content),
            )
            return "UNKNOWN"
        self._named(ticket, doc)
        if state in _FAILED:
            self._failed(ticket, doc.get("error") or state, None)
        return state

    def _result(self, ticket: Ticket, max_bytes: int) -> bytes | None:
        """The result's content to find the audio in; None if it is not ready after all."""
        got = self._get(ticket, ticket.response_url, max_bytes)
        if got is None or got[0] == 202:
            return None
        content = got[1]
        if sniff_format(content):
            return content
        try:
            doc = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict):
            raise errors.IncompleteResponseError(
                f"the result of queued request {ticket.request_id} is not the expected JSON: "
                f"{self.transport.redact(excerpt(content))}; fetching it again costs nothing."
            )
        self._named(ticket, doc)
        if str(doc.get("status", "")).upper() in _FAILED:
            self._failed(ticket, doc.get("error"), None)
        if str(doc.get("status", "COMPLETED")).upper() in _PENDING:
            return None
        output = doc.get("output")
        return content if output is None else json.dumps(output).encode()

    def _failed(self, ticket: Ticket, why, cause: BaseException | None) -> None:
        self.done(ticket.cache_key)
        raise errors.QueueJobFailedError(
            f"the queue reports request {ticket.request_id} FAILED: {why or 'no reason given'}."
            " A failed job is not billed; it is not retried, since the same input usually "
            "fails again.",
            status_code=422,
            hint="Try another description or candidates setting, or retry later.",
            response=getattr(cause, "response", None),
        ) from cause
