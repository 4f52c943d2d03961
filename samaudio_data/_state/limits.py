"""Limits shared by every thread and process that calls the same endpoint.

The provider limits an *account*, not a process: a ``dataset.map(..., num_proc=4)`` must
stay under one rate limit, slow down together on a 429 and stop together on 401/403/406.
:class:`SharedLimits` keeps that state in a small JSON file (one directory per endpoint)
guarded by a portable file lock, so threads and processes see the same limits without a
server.

- pace: requests leave evenly spaced, one every ``rate_window / rate`` seconds plus a
  margin that starts at 4 % and adapts (no bursts), which keeps under a sliding-window
  limit and a token bucket alike. Each
  sender reserves its own send time (:meth:`~SharedLimits.wait_turn`), so after a back-off
  waiters leave one at a time, not all at once; the exact moment is kept at the wire, by a
  gate each request passes as its headers are written (:meth:`~SharedLimits.gate`), and the
  interval is measured from when the previous request left, not from when its turn came;
- rate: the stated ``requests_per_minute``, or, when none was stated, the rate learned from
  the first 429 (what was accepted in the last window). A 429 lowers it at once; successes
  bring it back slowly;
- concurrency: requests in flight follow Little's law from the rate and the latency observed
  so far (with headroom), at most ``max_concurrency``. With no rate known they start at 2
  and double per round of successes until the first 429 (slow start), then grow by one per
  round, halving on a 429;
- back-off: after a 429 nobody sends before ``backoff_until``;
- halt: after a fatal error, requests of operations that began before it are refused;
- ledgers: named running sums of money spent, for a ``max_cost`` shared by processes.

The rules are :class:`~.rules.Rules`, applied to a swappable state: by default a
:class:`~.statefile.FileState` (a JSON file per endpoint, for the processes of one
machine), or a Ray actor shared by the nodes of a cluster (``samaudio_data.ray``). Every
read of the state is checked and bounded by :func:`~.limitstate.sanitize` (types, ranges,
deadlines clamped so that a clock step or a damaged file never stalls a run). This module
is the sender's side: it sleeps the delays the rules give, holds a slot, and passes the
gate at the wire.

Example
-------
>>> import tempfile
>>> lim = SharedLimits(tempfile.mkdtemp(), max_concurrency=2, requests_per_minute=600)
>>> with lim.slot():
...     waited = lim.wait_turn()
...     with lim.gate():
...         pass                 # (the request's headers are written here)
>>> lim.snapshot()["rate_per_minute"]
600.0
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .rules import Ago, Halted, Requeue, Rules, State
from .statefile import FileState

__all__ = ["Halted", "Requeue", "SharedLimits"]

log = logging.getLogger("samaudio_data")


class SharedLimits:
    """Pace, concurrency, 429 back-off, halt and ledgers of one account, shared through a
    :class:`~.statefile.FileState` in ``directory``, or the state ``coordinator`` gives
    for ``account`` (an identity of endpoint and key, never the key)."""

    def __init__(
        self,
        directory,
        *,
        max_concurrency: int = 16,
        requests_per_minute: float | None = None,
        rate_window: float = 60.0,
        retry_after_max: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        coordinator=None,
        account: str = "",
    ) -> None:
        self.directory = Path(directory)
        self.rules = Rules(
            max_concurrency=max_concurrency,
            requests_per_minute=requests_per_minute,
            rate_window=rate_window,
            retry_after_max=retry_after_max,
        )
        self.max_concurrency = self.rules.max_concurrency
        self.requests_per_minute = self.rules.requests_per_minute
        self.rate_window = self.rules.rate_window
        self._sleep = sleep
        self._clock = clock
        self._local = threading.BoundedSemaphore(self.max_concurrency)
        # one machine: a file in ``directory``; a cluster: ``coordinator.state(account,
        # rules)``, e.g. a Ray actor (samaudio_data.ray.Coordinator)
        self.state: State = (
            coordinator.state(account, self.rules)
            if coordinator is not None
            else FileState(self.directory, self.rules, clock=clock, sleep=sleep)
        )

    def _apply(self, rule: str, *args):
        return self.state.apply(rule, *args)

    def _since(self, started: float | None) -> float | None:
        """How long ago an operation began (the rules compare it on the state's clock)."""
        return None if started is None else max(0.0, self._clock() - started)

    # --- concurrency ---------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the allowed in-flight slots, shared with every other sender."""
        with self._local, self.state.slot(self.rules):
            yield

    # --- pace and back-off ---------------------------------------------------------------

    def wait_turn(self, started: float | None = None) -> float:
        """Block until shortly before this request's turn (pace and back-off).

        Each sender reserves a send time one interval after the previous reservation, so
        waiters leave one at a time, and returns a little ahead of it (a quarter of an
        interval, at most 50 ms): the exact moment is kept by :meth:`gate`, which the
        request passes as its first bytes are written. With ``started`` (the operation's
        start), a fatal error recorded since then by any sender raises :class:`Halted`.
        Returns the seconds waited.
        """
        waited, mine = 0.0, None
        while True:
            pause, mine = self._apply("turn", self._since(started), mine)
            if pause <= 0:
                return waited
            self._sleep(pause)
            waited += pause

    @contextlib.contextmanager
    def gate(self, started: float | None = None) -> Iterator[None]:
        """Pass just before a request's first bytes are written; leave once they are out.

        Entering waits until one interval after the previous request left (as recorded
        when it left its gate, not when its turn was granted: the time in between, spent
        in the HTTP stack and waiting for the interpreter, varies) and until no other
        request is leaving. The gate is claimed a few milliseconds ahead, and the last
        moments are slept without any lock, so that nothing stands between the exact time
        and the request. A fatal error recorded since ``started`` raises :class:`Halted`,
        and a 429 back-off that began after the turn was granted raises :class:`Requeue`
        (nothing is sent either way). Leaving records the send. See :mod:`.._net.wire`.
        """
        token = f"{id(self)}-{threading.get_ident()}-{random.random()}"
        while True:
            claimed, pause = self._apply("claim_gate", self._since(started), token)
            if claimed:
                break
            self._sleep(pause)
        out = None
        try:
            if pause > 0:  # the last moments, without the lock (the gate is ours)
                self._sleep(pause)
            yield
            # the first bytes are out: the next request is spaced from now, not from when
            # the state records it (a lock and a file, or a message to an actor: a
            # millisecond or two on every interval); any delay in writing them only moves
            # this later, to the safe side
            out = self._clock()
        finally:  # (an interrupted wait counts as a send: the next one keeps its distance)
            self._apply("left", token, None if out is None else Ago(out, self._clock))

    def record_success(self, latency: float) -> None:
        """A request succeeded after ``latency`` seconds: learn latency, recover the rate."""
        self._apply("success", float(latency))

    def record_rate_limited(self, wait: float) -> None:
        """A 429: everyone waits ``wait`` seconds, the rate and concurrency drop at once
        (once per back-off: the 429s of a burst count as one)."""
        self._apply("rate_limited", float(wait))

    def record_announced(
        self, limit: float | None, remaining: float | None, reset: float | None
    ) -> None:
        """The provider's ``x-ratelimit-*`` figures (see
        :func:`samaudio_data._net.retry.rate_limit_headers`)."""
        if limit is not None or remaining is not None:
            self._apply("announced", limit, remaining, reset)

    def snapshot(self) -> dict:
        """The shared figures: allowed rate and concurrency, latency, achieved rate, 429s.

        ``rate_per_minute`` is what the pace allows now (None: unpaced), ``achieved_per_minute``
        what was really sent over the last ``rate_window`` seconds.
        """
        return self._apply("snapshot")

    # --- fatal halt ----------------------------------------------------------------------

    def halt(self, status: int | None, kind: str, message: str) -> None:
        """Record a fatal error: operations that began before now must stop."""
        self._apply("halt", status, kind, message)

    # --- spending ledgers ----------------------------------------------------------------

    def spend(self, ledger: str, amount: float, cap: float | None) -> bool:
        """Add ``amount`` to ``ledger`` unless that would pass ``cap``; True if added."""
        return self._apply("spend", ledger, float(amount), cap)

    def ledger(self, ledger: str) -> float:
        """The amount recorded in ``ledger``."""
        return self._apply("ledger", ledger)
