"""Limits shared by every thread and process that calls the same endpoint.

The provider limits an *account*, not a process: a ``dataset.map(..., num_proc=4)`` must
stay under one rate limit, slow down together on a 429 and stop together on 401/403/406.
:class:`SharedLimits` keeps that state in a small JSON file (one directory per endpoint)
guarded by a portable file lock, so threads and processes see the same limits without a
server.

- pace: requests leave evenly spaced, one every ``rate_window / rate`` seconds plus 4 %
  (no bursts), which keeps under a sliding-window limit and a token bucket alike. Each
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

The state lives in one :class:`~._statefile.StateFile` per endpoint; every read of it is
checked and bounded by :func:`~.limitstate.sanitize` (types, ranges, deadlines clamped so
that a clock step or a damaged file never stalls a run), and what was repaired is logged
once. With no rate stated, a 429 never teaches a rate below the slowest plan's (5 requests
per minute) unless 429s keep coming at that rate.

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
import math
import random
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..errors import Halted, Requeue
from .files import file_lock
from .limitstate import Bounds, sanitize
from .statefile import StateFile

log = logging.getLogger("samaudio_data")

_POLL = 0.01
_ALLOWED_TTL = 0.2         # seconds a process reuses the in-flight limit it read
# Requests are recorded when they leave, and counted by the server when they arrive: a
# little slack on the spacing keeps network jitter from making two requests look closer than
# allowed (at 50 a minute, 48 ms; the scheduling jitter of this process is kept out of it by
# the gate, see _wire).
_SPACING_SLACK = 0.04      # of the window
_HEADROOM = 1.25           # in flight = rate x latency x headroom + 1
_START_CONCURRENCY = 2     # with no rate known
_DECREASE = 0.8            # rate factor kept after a 429
_RECOVER = 0.02            # rate factor regained per success
_LATENCY_ALPHA = 0.2
_HISTORY = 256             # send times kept (of the last window)
_LEAD = 0.25               # wait_turn returns this share of an interval early ...
_LEAD_MAX = 0.05           # ... at most this many seconds; the gate keeps the exact moment
_LEAVING_MAX = 2.0         # seconds a request may take to leave before the next goes anyway
_LEAVING_POLL = 0.001
_CLAIM_AHEAD = 0.003       # the gate is claimed this long before its time
_FLOOR_PER_MINUTE = 5.0    # the slowest plan's rate: a 429 teaches no less, unless they go on


class SharedLimits:
    """Pace, concurrency, 429 back-off, halt and ledgers, shared through ``directory``."""

    def __init__(self, directory, *, max_concurrency: int = 16,
                 requests_per_minute: Optional[float] = None, rate_window: float = 60.0,
                 retry_after_max: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bounds = Bounds(retry_after_max=float(retry_after_max),
                              max_concurrency=int(max_concurrency))
        self._reported: set = set()
        self.max_concurrency = int(max_concurrency)
        self.requests_per_minute = (float(requests_per_minute)
                                    if requests_per_minute else None)
        self.rate_window = float(rate_window)
        self._sleep = sleep
        self._clock = clock
        self._local = threading.BoundedSemaphore(self.max_concurrency)
        self._doc = StateFile(self.directory / "state.json")
        self._cache_lock = threading.Lock()
        self._allowed_at, self._allowed_cached = -1e9, 1

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict]:
        """The shared record, locked, checked and bounded (see :mod:`.limitstate`)."""
        with self._doc.open() as st:
            fixed = sanitize(st, self._clock(), self._bounds, self._interval)
            if fixed and not self._reported.issuperset(fixed):
                self._reported.update(fixed)
                log.warning("the shared limits state %s held unusable or out-of-range values "
                            "(%s: a damaged file or a clock step); they were reset or clamped",
                            self._doc.path, ", ".join(sorted(set(fixed))))
            yield st

    def _interval(self, st: dict) -> Optional[float]:
        rate = self._rate(st)
        return 1.0 / rate if rate else None

    def _rate(self, st: dict) -> Optional[float]:
        """Requests per second allowed now (None: no rate known, no pacing)."""
        base = self.requests_per_minute or st.get("learned_per_window")
        if not base:
            return None
        window = self.rate_window * (1.0 + _SPACING_SLACK)
        return base / window * st.get("rate_factor", 1.0)

    def _concurrency(self, st: dict) -> int:
        """In flight allowed now: Little's law from rate and latency, else the AIMD window."""
        rate, latency = self._rate(st), st.get("latency")
        window = int(st.get("window_limit", _START_CONCURRENCY))
        if rate is None:
            limit = window
        elif latency is None:
            limit = self.max_concurrency  # the pace alone spaces requests until latency is known
        else:
            limit = int(math.ceil(rate * latency * _HEADROOM)) + 1
        if self.requests_per_minute is None:  # no stated rate: never beyond the AIMD window
            limit = min(limit, window)
        return max(1, min(self.max_concurrency, limit))

    # --- concurrency ---------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the allowed in-flight slots, shared with other processes, while inside."""
        with self._local:
            while True:
                for i in range(self._allowed()):
                    with file_lock(self.directory / f"slot-{i}.lock", timeout=0) as held:
                        if held:
                            yield
                            return
                self._sleep(_POLL * (1 + random.random()))

    def _allowed(self) -> int:
        """The in-flight limit, read from the shared state at most every 0.2 s per process:
        waiting threads poll for a slot often, and must not queue on the state's lock (the
        senders whose turn it is need it)."""
        now = time.monotonic()
        with self._cache_lock:
            if now - self._allowed_at > _ALLOWED_TTL:
                with self._state() as st:
                    self._allowed_cached = self._concurrency(st)
                self._allowed_at = now
            return self._allowed_cached

    # --- pace and back-off ---------------------------------------------------------------

    def wait_turn(self, started: Optional[float] = None) -> float:
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
            now = self._clock()
            with self._state() as st:
                self._check_halt(st, started)
                rate = self._rate(st)
                earliest = st.get("backoff_until", 0.0)
                lead = 0.0
                if rate:
                    earliest = max(earliest, st.get("last_sent", 0.0) + 1.0 / rate)
                    if mine is None:
                        mine = max(now, earliest, st.get("next_send", 0.0))
                        st["next_send"] = mine + 1.0 / rate
                    at = max(mine, earliest)
                    lead = min(_LEAD_MAX, _LEAD / rate)
                else:
                    at = max(now, earliest)
                if at - lead <= now:
                    return waited
            self._sleep(at - lead - now)
            waited += at - lead - now

    @contextlib.contextmanager
    def gate(self, started: Optional[float] = None) -> Iterator[None]:
        """Pass just before a request's first bytes are written; leave once they are out.

        Entering waits until one interval after the previous request left (as recorded
        when it left its gate, not when its turn was granted: the time in between, spent
        in the HTTP stack and waiting for the interpreter, varies) and until no other
        request is leaving. The gate is claimed a few milliseconds ahead, under the lock,
        and the last moments are slept without it, so that no lock or file stands between
        the exact time and the request. A fatal error recorded since ``started`` raises
        :class:`Halted`, and a 429 back-off that began after the turn was granted raises
        :class:`Requeue` (nothing is sent either way). Leaving records the send. See
        :mod:`._wire`.
        """
        token = f"{id(self)}-{threading.get_ident()}-{random.random()}"
        at = None
        while True:
            now = self._clock()
            with self._state() as st:
                self._check_halt(st, started)
                rate = self._rate(st)
                if not rate:
                    break
                backoff = st.get("backoff_until", 0.0)
                if backoff - now > _LEAD_MAX + _CLAIM_AHEAD:
                    raise Requeue(backoff)  # a 429 came after this request's turn
                leaving = st.get("leaving")
                if leaving and now - leaving["since"] < _LEAVING_MAX:
                    pause = _LEAVING_POLL
                else:
                    at = max(st.get("last_sent", 0.0) + 1.0 / rate, backoff)
                    if at - _CLAIM_AHEAD <= now:
                        st["leaving"] = {"since": now, "id": token}
                        break
                    pause = at - _CLAIM_AHEAD - now
            self._sleep(pause)
        try:
            if at is not None:  # the last moments, without the lock (the gate is ours)
                pause = at - self._clock()
                if pause > 0:
                    self._sleep(pause)
            yield
        finally:  # (an interrupted wait counts as a send: the next one keeps its distance)
            now = self._clock()
            with self._state() as st:
                if at is not None and (st.get("leaving") or {}).get("id") == token:
                    del st["leaving"]
                st.setdefault("first_send", now)
                st["last_sent"] = max(st.get("last_sent", 0.0), now)
                st["sent"] = self._recent(st.get("sent", []), now)

    def _recent(self, times: list, now: float) -> list:
        """``times`` and ``now``, keeping those of the last window (at most _HISTORY)."""
        since = now - self.rate_window
        return [t for t in times[-_HISTORY + 1:] if t > since] + [now]

    @staticmethod
    def _check_halt(st: dict, started: Optional[float]) -> None:
        h = st.get("halt")
        if started is not None and h and h["time"] >= started:
            raise Halted(h)

    def record_success(self, latency: float) -> None:
        """A request succeeded after ``latency`` seconds: learn latency, recover the rate."""
        with self._state() as st:
            old = st.get("latency")
            st["latency"] = latency if old is None else \
                (1 - _LATENCY_ALPHA) * old + _LATENCY_ALPHA * latency
            st["rate_factor"] = min(1.0, st.get("rate_factor", 1.0) + _RECOVER)
            if self.requests_per_minute is None:
                limit = float(st.get("window_limit", _START_CONCURRENCY))
                if "learned_per_window" in st:  # after a 429: one more per round, and
                    limit += 1.0 / limit         # the learned rate probed slowly upwards
                    st["learned_per_window"] *= 1.0 + _RECOVER / 4
                else:                            # before any: slow start, doubling per round
                    limit += 1.0
                st["window_limit"] = min(float(self.max_concurrency), limit)

    def record_rate_limited(self, wait: float) -> None:
        """A 429: everyone waits ``wait`` seconds, the rate and concurrency drop at once
        (once per back-off: the 429s of a burst count as one)."""
        now = self._clock()
        with self._state() as st:
            # the 429s of requests that left together arrive together: one decrease for
            # them all (a 429 within the back-off of an earlier one only extends it)
            fresh = now >= st.get("backoff_until", 0.0)
            st["backoff_until"] = max(st.get("backoff_until", 0.0), now + max(0.0, wait))
            st["next_send"] = st["backoff_until"]
            st["rate_limited"] = st.get("rate_limited", 0) + 1
            if not fresh:
                return
            if self.requests_per_minute is None:
                # what the account accepted over the last window: the requests that left
                # in it but this one (the provider counts arrivals; successes would lag by
                # a latency), scaled to a window when the run is younger than one
                sent = [t for t in st.get("sent", []) if t > now - self.rate_window]
                span = min(self.rate_window, max(now - st.get("first_send", now),
                                                 self.rate_window / 10))
                accepted = max(1.0, (len(sent) - 1) * self.rate_window / span * _DECREASE)
                known = st.get("learned_per_window")
                floor = _FLOOR_PER_MINUTE * self.rate_window / 60.0
                if known is not None and known <= floor * (1 + 1e-6):
                    # paced at the slowest plan's rate and still refused: lower, slowly
                    learned = max(1.0, known * _DECREASE)
                else:
                    learned = max(floor, accepted if known is None else min(known, accepted))
                st["learned_per_window"] = learned
                st["window_limit"] = max(1.0, float(st.get("window_limit",
                                                           _START_CONCURRENCY)) / 2)
            else:
                st["rate_factor"] = max(0.2, st.get("rate_factor", 1.0) * _DECREASE)

    def snapshot(self) -> dict:
        """The shared figures: allowed rate and concurrency, latency, achieved rate, 429s.

        ``rate_per_minute`` is what the pace allows now (None: unpaced), ``achieved_per_minute``
        what was really sent over the last ``rate_window`` seconds.
        """
        now = self._clock()
        with self._state() as st:
            base = self.requests_per_minute or st.get("learned_per_window")
            rate = None if not base else base / self.rate_window * st.get("rate_factor", 1.0)
            recent = [t for t in st.get("sent", []) if t > now - self.rate_window]
            span = recent[-1] - recent[0] if len(recent) > 1 else None
            return {
                "rate_per_minute": None if rate is None else rate * 60.0,
                "concurrency": self._concurrency(st),
                "latency": st.get("latency"),
                "achieved_per_minute": (len(recent) - 1) / span * 60.0 if span else None,
                "rate_limited": st.get("rate_limited", 0),
            }

    # --- fatal halt ----------------------------------------------------------------------

    def halt(self, status: Optional[int], kind: str, message: str) -> None:
        """Record a fatal error: operations that began before now must stop."""
        with self._state() as st:
            st["halt"] = {"time": self._clock(), "status": status, "kind": kind,
                          "message": message}

    # --- spending ledgers ----------------------------------------------------------------

    def spend(self, ledger: str, amount: float, cap: Optional[float]) -> bool:
        """Add ``amount`` to ``ledger`` unless that would pass ``cap``; True if added."""
        with self._state() as st:
            ledgers = st.setdefault("ledgers", {})
            total = ledgers.get(ledger, 0.0) + amount
            if cap is not None and amount > 0 and total > cap + 1e-9:
                return False
            ledgers[ledger] = max(0.0, total)
            return True

    def ledger(self, ledger: str) -> float:
        """The amount recorded in ``ledger``."""
        with self._state() as st:
            return st.get("ledgers", {}).get(ledger, 0.0)
