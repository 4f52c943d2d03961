"""Requests paid for and not yet collected: this run's, and the journal's.

:class:`Tickets` is the queue's memory of accepted requests, by the cache key of the piece
each answers: in memory for this process, and in the :class:`~.journal.Journal` for the
next run. Everything read back from the journal is checked again: its URLs, restored (the
key is redacted before anything is written), must be plain URLs on the endpoint's own
origin, or the entry is removed (logged once) and the piece is sent again. A request id may
belong to one piece only. A request paid for whose answer cannot be followed is kept with
the reason (``Ticket.unfollowable``), so that the piece is not paid for again while its
answer may still be collected.

Example
-------
>>> import tempfile
>>> from samaudio_data._net.journal import Journal
>>> from samaudio_data._net.transport import Transport
>>> t = Tickets(Transport("https://h/v1/m", "sk-1"), Journal(tempfile.mkdtemp()))
>>> t.keep(Ticket("r1", "https://h/v2/requests/r1/status?k=sk-1", "https://h/v2/requests/r1",
...               cache_key="ab", created=time.time()))
>>> t.pending("ab").request_id, t.owned_elsewhere("r1", "cd"), "sk-1" in str(t.journal.keys())
('r1', True, False)
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import replace

from .. import errors
from .journal import Journal, Ticket
from .transport import Transport
from .urls import same_origin

log = logging.getLogger("samaudio_data")


class Tickets:
    """Accepted requests by cache key, in memory and in ``journal``; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        journal: Journal | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.journal = journal
        self._clock = clock
        self._tickets: dict[str, Ticket] = {}
        self._since: dict[str, float] = {}  # request id -> when this process submitted it
        self._lock = threading.Lock()

    def submitted(self, request_id: str) -> None:
        """Note that this process submitted ``request_id`` now."""
        with self._lock:
            self._since[request_id] = self._clock()

    def since(self, request_id: str) -> float | None:
        """When this process submitted ``request_id`` (its clock), or None."""
        with self._lock:
            return self._since.get(request_id)

    def pending(self, cache_key: str | None) -> Ticket | None:
        """The paid, uncollected request answering ``cache_key`` (this run's, or journalled)."""
        if cache_key is None:
            return None
        with self._lock:
            ticket = self._tickets.get(cache_key)
        if ticket is None and self.journal is not None:
            ticket = self.journal.get(cache_key)
            if ticket is not None and not ticket.unfollowable:
                ticket = self._read_back(ticket)
        return ticket

    def _read_back(self, ticket: Ticket) -> Ticket | None:
        """A journalled ticket with its URLs restored and checked again: on the endpoint's
        own origin, else its entry is removed (logged) and None returned."""
        urls = [self.transport.restore(u) for u in (ticket.status_url, ticket.response_url)]
        if all(same_origin(u, self.transport.endpoint) for u in urls):
            return replace(ticket, status_url=urls[0], response_url=urls[1])
        log.warning(
            "the journal entry of request %s points off the endpoint's origin (%s); "
            "it cannot be collected from here and is removed",
            ticket.request_id,
            self.transport.endpoint,
        )
        self.done(ticket.cache_key)
        return None

    def inherited(self, cache_key: str | None) -> bool:
        """Whether ``cache_key``'s pending request was paid for by an earlier run (journal)."""
        if cache_key is None or self.journal is None:
            return False
        with self._lock:
            if cache_key in self._tickets:
                return False
        return self.pending(cache_key) is not None

    def done(self, cache_key: str | None) -> None:
        """The answer for ``cache_key`` is safe (cached): forget its request."""
        if cache_key is None:
            return
        with self._lock:
            ticket = self._tickets.pop(cache_key, None)
            if ticket is not None:
                self._since.pop(ticket.request_id, None)
        if self.journal is not None:
            try:
                self.journal.remove(cache_key)
            except OSError as exc:
                log.warning("could not remove the journal entry %s: %s", cache_key[:12], exc)

    def keep(self, ticket: Ticket) -> None:
        """Remember ``ticket`` (in memory and, with its URLs redacted, in the journal)."""
        if ticket.cache_key is None:
            return
        with self._lock:
            self._tickets[ticket.cache_key] = ticket
        if self.journal is not None:
            try:  # the URLs as written anywhere: without the key
                self.journal.put(
                    replace(
                        ticket,
                        status_url=self.transport.redact(ticket.status_url),
                        response_url=self.transport.redact(ticket.response_url),
                    )
                )
            except OSError as exc:  # a full or read-only disk never stops paid work
                warnings.warn(
                    f"could not write the journal entry of request "
                    f"{ticket.request_id} ({exc}); it is kept in memory only, so a "
                    "crash before it is collected would pay for it again.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def owned_elsewhere(self, request_id: str, cache_key: str | None) -> bool:
        """Whether ``request_id`` is already kept for another piece (this run or journalled)."""
        with self._lock:
            if any(t.request_id == request_id and k != cache_key for k, t in self._tickets.items()):
                return True
        owner = self.journal.owner(request_id) if self.journal is not None else None
        return owner is not None and owner != cache_key

    def uncollectable(self, ticket: Ticket) -> errors.UncollectableRequestError:
        """The error saying ``ticket`` was paid for but cannot be followed, and where it is kept."""
        where = (
            f"its journal entry ({self.journal.directory / (ticket.cache_key or '')}.json)"
            if self.journal is not None and ticket.cache_key
            else "this client (no cache directory: no journal)"
        )
        retention = self.journal.retention if self.journal is not None else None
        return errors.UncollectableRequestError(
            f"the queue accepted request {ticket.request_id or '(no id)'} for this piece, so "
            f"it is billed, but {ticket.unfollowable}; nothing was sent there, the API key "
            f"included. It is kept in {where}"
            + (f" for {retention:g} s" if retention else "")
            + ", so this piece is not submitted (and paid for) again meanwhile.",
            hint="Asking for this piece raises this error while the entry is kept (whatever "
            "the transport); deleting the entry makes the next run pay for the piece again. "
            "Report the answer to the provider; transport='sync' keeps other pieces off the "
            "queue.",
        )
