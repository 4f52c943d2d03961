"""When to poll a queued request: dense around the completion time learned so far.

Polls are free but not instant: polling every second (the provider's SDK) collects a 0.3 s
job up to a second late, and polling densely all along floods the status route. So once
the time jobs take is known, :class:`PollSchedule` polls sparsely before it and densely
around it, so an answer is collected within a few percent of its latency.

Example
-------
>>> ps = PollSchedule()
>>> ps.learn(0.3, 0.0)
>>> [round(ps.delay(t, None), 3) for t in (0.0, 0.27, 0.3)]
[0.27, 0.01, 0.01]
"""

from __future__ import annotations

import threading

POLL_FIRST = 0.1  # seconds before the first status poll
POLL_FACTOR = 1.5  # back-off between polls
POLL_MAX = 1.0  # at most this long between polls (the provider's SDK polls every 1 s)
POLL_DENSE = 0.03  # around the expected completion, poll every 3 % of it ...
POLL_MIN = 0.01  # ... but not more often than this


class PollSchedule:
    """When to poll a queued request: dense around the completion time learned so far.

    A job's answer should be collected within a small fraction of the time it takes, without
    polling all along: polls are sparse until 90 % of the expected time (at most every
    second or quarter of it), every 3 % of it from there until 120 %, then back off by 1.5x
    to one a second. The expected time is learned from the jobs polled since submission
    (when each was first seen done, less half the last interval). Until one is known, the
    SDK's schedule: 0.1 s, 1.5x longer each time, at most 1 s.

    >>> ps = PollSchedule()
    >>> ps.delay(0.0, None), round(ps.delay(0.1, 0.1), 3)
    (0.1, 0.15)
    >>> ps.learn(10.0, 0.5); ps.expected
    9.75
    >>> round(ps.delay(0.0, None), 3), round(ps.delay(9.0, 1.0), 3)
    (2.438, 0.292)
    """

    def __init__(self) -> None:
        self.expected: float | None = None
        self._lock = threading.Lock()

    def delay(self, elapsed: float, previous: float | None) -> float:
        """Seconds until the next poll, ``elapsed`` s after the submit."""
        expected = self.expected
        if expected is None or elapsed > 1.2 * expected:
            return POLL_FIRST if previous is None else min(POLL_MAX, previous * POLL_FACTOR)
        near = 0.9 * expected
        if elapsed < near:
            return min(near - elapsed, max(POLL_MAX, 0.25 * expected))
        return max(POLL_MIN, POLL_DENSE * expected)

    def learn(self, elapsed: float, last_delay: float) -> None:
        """A job polled since its submit was first seen done ``elapsed`` s after it."""
        done = max(0.0, elapsed - last_delay / 2)
        with self._lock:
            self.expected = done if self.expected is None else 0.7 * self.expected + 0.3 * done
