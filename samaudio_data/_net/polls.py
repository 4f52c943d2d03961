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
    polling all along: polls are sparse until 90 % of the expected time (the first one
    then, or after a second or a quarter of it if sooner), every 3 % of it from there until
    120 %, then back off by 1.5x to one a second. The expected time is learned from the
    jobs polled since submission (:meth:`learn`: between the poll that found each done and
    the one before). Until one is known, a poll at once, then the SDK's schedule: 0.1 s,
    1.5x longer each time, at most 1 s.

    >>> ps = PollSchedule()
    >>> ps.delay(0.0, None), round(ps.delay(0.1, 0.1), 3)
    (0.1, 0.15)
    >>> ps.learn(10.0, 0.5); ps.expected
    9.75
    >>> round(ps.delay(0.0, None), 3), round(ps.delay(9.0, 1.0), 3)
    (2.438, 0.292)
    >>> ps.learn(8.0, 4.0); ps.expected  # found done by a sparse poll: sooner than expected
    7.2
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

    def first(self) -> float | None:
        """Seconds from a submit to its first poll; None: at once (while nothing is known, or
        when jobs are done within ``POLL_MIN``)."""
        expected = self.expected
        return None if expected is None or expected < POLL_MIN else self.delay(0.0, None)

    def learn(self, elapsed: float, gap: float) -> None:
        """A job polled since its submit was first found done by the poll sent ``elapsed`` s
        after the submit, ``gap`` s after the poll before it (or the submit, for the first).

        It finished within that gap. A short gap (at most a fifth of ``elapsed``: the dense
        polls) times it: its middle is averaged in. A long one (a sparse poll found it done,
        sooner or later than expected) only bounds it, so the expected time is moved into
        the gap, a little under the poll that found it (or, when none was known, to the
        gap's start, so that the next jobs are polled densely across it), and no further:
        the jobs sent together finish together, and each of them reporting the same long gap
        must not move the expectation again.
        """
        with self._lock:
            expected = self.expected
            if gap <= 0.2 * elapsed:
                done = max(0.0, elapsed - gap / 2)
                self.expected = done if expected is None else 0.7 * expected + 0.3 * done
            elif expected is None:  # the earliest it may have finished: polls go dense there
                self.expected = max(0.0, elapsed - gap)
            else:
                self.expected = min(max(expected, elapsed - gap), 0.9 * elapsed)
