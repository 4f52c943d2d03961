"""What calls give back and count: :class:`Separation`, :class:`Usage`, and the shared
spending cap :class:`Budget` (what a run would cost, before it runs, is in
:mod:`samaudio_data._estimate`).

Example
-------
>>> print(Usage(billed=3, cached=1, cost=0.186))
3 billed calls ($0.19), 1 from cache, 0 failed, 0 retries, 0 rate-limited
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from ._state.limits import SharedLimits

if TYPE_CHECKING:  # pragma: no cover
    from .audio import Verdict


@dataclass
class Separation:
    """What one clip gave: the target, the residual and what it cost.

    ``target`` and ``residual`` have the input's sample rate and length: ``(n,)`` with the
    default channel policy, ``(channels, n)`` with ``channels="each"``.

    ``flag``, ``quality`` and ``verdict`` judge the isolation from the mix (target plus
    residual) and the target, computed on first use (see :mod:`samaudio_data.audio._quality`):
    ``flag`` is ``""`` when it looks right, else a reason code such as ``"invented"``; a clip
    sent in several windows (``windows``, in samples) gets a verdict per window too.

    >>> t = np.sin(np.arange(8000) * 0.3) * 0.1
    >>> res = Separation(target=t, residual=t * 0.0, sr=8000, description="hum")
    >>> res.flag, res.quality
    ('unchanged', 0.0)
    """

    target: np.ndarray
    residual: np.ndarray
    sr: int
    description: str
    cost: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    attempts: int = 0
    windows: tuple[tuple[int, int], ...] = ()
    _verdict: Verdict | None = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> Verdict:
        """The quality verdict (computed once, on first use)."""
        if self._verdict is None:
            from .audio import judge

            self._verdict = judge(
                self.target + self.residual,
                self.target,
                self.sr,
                self.description,
                windows=self.windows or None,
            )
        return self._verdict

    @property
    def flag(self) -> str:
        """``""`` when the isolation looks right, else why not (``"empty"``, ``"invented"``,
        ``"wrong_source"``, ``"unchanged"``, ``"absent"``, with details after a colon)."""
        return self.verdict.flag

    @property
    def quality(self) -> float:
        """In [0, 1]: 0.5 at a threshold, lower is more doubtful."""
        return self.verdict.quality

    def __repr__(self) -> str:
        return (
            f"Separation(description={self.description!r}, shape={self.target.shape}, "
            f"sr={self.sr}, cost=${self.cost:.3f}, seconds={self.seconds:.2f}, "
            f"cached={self.cached})"
        )


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the word, in the plural unless ``n`` is 1.

    >>> plural(1, "call"), plural(3, "retry", "retries"), plural(0, "row")
    ('1 call', '3 retries', '0 rows')
    """
    return f"{n} {word if n == 1 else (words or word + 's')}"


@dataclass
class Usage:
    """Running totals of a client's calls (aggregates only: memory stays flat).

    ``requests`` counts HTTP requests sent (retries included), ``billed`` the answers paid
    for, ``cached`` answers served from the cache, ``failed`` calls that ended in an error,
    ``rate_limited`` the 429 answers, ``seconds`` the time spent inside HTTP requests, summed
    over requests (with 10 in flight, 10 s of wall time is about 100 s of it).
    ``wall_seconds`` is the wall-clock time from this client's first request to its last
    answer, and ``achieved_rate`` the rate at which this client sent its requests (per
    wall-clock minute; None before 3 requests over at least a second), against
    ``rate_limit``; ``remaining_credits`` is the provider's own figure, when its answers
    carry one.

    >>> u = Usage(); u.record(billed=2, cost=0.124); print(u)
    2 billed calls ($0.12), 0 from cache, 0 failed, 0 retries, 0 rate-limited
    """

    requests: int = 0
    billed: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    rate_limited: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    remaining_credits: float | None = None
    rate_limit: float | None = None
    achieved_rate: float | None = None
    first_sent: float | None = field(default=None, repr=False)  # time.monotonic()
    last_sent: float | None = field(default=None, repr=False)
    last_done: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, **delta: float) -> None:
        """Add to the counters (thread-safe)."""
        with self._lock:
            for k, v in delta.items():
                setattr(self, k, getattr(self, k) + v)

    def mark(self, event: str) -> None:
        """Note the time of a request leaving (``"sent"``) or of its answer (``"done"``)."""
        now = time.monotonic()
        with self._lock:
            if event == "sent":
                self.first_sent = now if self.first_sent is None else self.first_sent
                self.last_sent = now
            elif self.first_sent is not None:
                self.last_done = now

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds from the first request sent to the last answer."""
        if self.first_sent is None:
            return 0.0
        return max(self.last_done or 0.0, self.last_sent or 0.0) - self.first_sent

    def send_rate(self) -> float | None:
        """Requests per wall-clock minute at which this client sent (None: too few to say)."""
        if self.requests < 3 or self.first_sent is None or self.last_sent is None:
            return None
        span = self.last_sent - self.first_sent
        return (self.requests - 1) / span * 60.0 if span >= 1.0 else None

    def traffic(self) -> str:
        """The requests sent, over what wall time, at what rate, and the summed request time.

        >>> Usage(requests=1, seconds=2.0).traffic()
        '1 request sent over 0.0 s of wall time, 2.0 s of request time summed over requests'
        """
        text = (
            f"{plural(self.requests, 'request')} sent over {self.wall_seconds:.1f} s of wall time"
        )
        if self.achieved_rate is not None:
            limit = f" (limit {self.rate_limit:.0f}/min)" if self.rate_limit else ""
            text += f", at {self.achieved_rate:.1f} requests per minute{limit}"
        return text + f", {self.seconds:.1f} s of request time summed over requests"

    def snapshot(self) -> Usage:
        """A copy of the counters at this moment."""
        with self._lock:
            return Usage(
                **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}
            )

    def __str__(self) -> str:
        text = (
            f"{plural(self.billed, 'billed call')} (${self.cost:.2f}), {self.cached} from "
            f"cache, {self.failed} failed, {plural(self.retries, 'retry', 'retries')}, "
            f"{self.rate_limited} rate-limited"
        )
        if self.requests:
            text += f"; {self.traffic()}"
        if self.remaining_credits is not None:
            text += f", {self.remaining_credits:.2f} credits left"
        return text


class Budget:
    """A spending cap shared by the calls that carry it (and, with ``limits``, by processes).

    >>> b = Budget(0.10)
    >>> b.reserve(0.06), b.reserve(0.06)
    (True, False)
    """

    def __init__(
        self, max_cost: float, *, limits: SharedLimits | None = None, ledger: str = "default"
    ) -> None:
        self.max_cost = float(max_cost)
        self._limits = limits
        self._ledger = ledger
        self._spent = 0.0
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        if self._limits is not None:
            return self._limits.ledger(self._ledger)
        return self._spent

    def reserve(self, amount: float) -> bool:
        """Reserve ``amount`` if it fits under the cap; False (nothing reserved) otherwise."""
        if self._limits is not None:
            return self._limits.spend(self._ledger, amount, self.max_cost)
        with self._lock:
            if self._spent + amount > self.max_cost + 1e-9:
                return False
            self._spent += amount
            return True

    def refund(self, amount: float) -> None:
        """Give back a reservation that was not billed."""
        if self._limits is not None:
            self._limits.spend(self._ledger, -amount, None)
            return
        with self._lock:
            self._spent -= amount
