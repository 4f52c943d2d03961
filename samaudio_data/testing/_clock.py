"""The local endpoint's time: what its rate windows, queued jobs and simulated latency follow.

:class:`Clock` is real time (``time.monotonic``). :class:`FakeClock` is time a test moves:
``LocalEndpoint(clock=FakeClock())`` then refills token buckets, slides rate windows, runs
queued jobs through QUEUED, PROCESSING and COMPLETED, expires results and ends a call's
``latency`` only when the test calls :meth:`FakeClock.advance` (or, with ``ticking=True``, as
real time passes, plus every jump forward). A test then says what it means ("half a second
later") instead of sleeping and hoping that a loaded machine kept up.

Example
-------
>>> clock = FakeClock()
>>> t0 = clock(); clock.advance(2.5); clock() - t0
2.5
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Real time: seconds from ``time.monotonic()``; waits end early when ``cancel`` is set.

    >>> clock = Clock()
    >>> clock() <= clock(), clock.wait(0.0, threading.Event())
    (True, False)
    """

    def __call__(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Wait ``seconds`` of this clock's time; True if ``cancel`` was set first."""
        return cancel.wait(seconds)


class FakeClock(Clock):
    """Time that moves when a test says so (thread-safe).

    ``start``: the first reading. ``ticking``: False (default) stands still between calls
    to :meth:`advance`; True follows real time as well (for a test where a real client
    must also see time pass), and :meth:`advance` jumps ahead of it.

    >>> clock = FakeClock(start=100.0)
    >>> done = threading.Event()
    >>> sleeper = threading.Thread(target=lambda: clock.wait(5.0, threading.Event())
    ...                            or done.set())
    >>> sleeper.start()
    >>> while not clock.waiting: pass          # the sleeper is waiting on the clock
    >>> clock.advance(4.9); done.wait(0.05)    # 5 s of this clock have not passed
    False
    >>> clock.advance(0.1); sleeper.join(5); done.is_set(), clock(), clock.waiting
    (True, 105.0, 0)
    """

    def __init__(self, start: float = 1000.0, *, ticking: bool = False) -> None:
        self._offset = float(start)
        self._ticking = bool(ticking)
        self._origin = time.monotonic()
        self._changed = threading.Condition()
        self._waiting = 0

    def __call__(self) -> float:
        with self._changed:
            return self._now()

    def _now(self) -> float:
        real = time.monotonic() - self._origin if self._ticking else 0.0
        return self._offset + real

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward and wake whatever waits on it.

        >>> clock = FakeClock(start=0.0); clock.advance(1.5); clock()
        1.5
        """
        if not seconds >= 0:
            raise ValueError(f"a clock only moves forward: advance({seconds!r}).")
        with self._changed:
            self._offset += float(seconds)
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        """How many threads wait on this clock now (a simulated latency, a slow fault): a
        test moves time once the wait it means to end has begun."""
        with self._changed:
            return self._waiting

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Wait until this clock has moved ``seconds``; True if ``cancel`` was set first.

        >>> stop = threading.Event(); stop.set()
        >>> FakeClock().wait(60.0, stop), FakeClock().wait(0.0, threading.Event())
        (True, False)
        """
        with self._changed:
            deadline = self._now() + seconds
            self._waiting += 1
            try:
                while not cancel.is_set():
                    left = deadline - self._now()
                    if left <= 0:
                        return False
                    # woken by advance(); a short real timeout notices ``cancel`` and ticking
                    self._changed.wait(min(left, 0.05) if self._ticking else 0.05)
                return True
            finally:
                self._waiting -= 1

    def __repr__(self) -> str:
        return f"FakeClock({self():.3f}{', ticking' if self._ticking else ''})"
