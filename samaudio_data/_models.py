"""What calls give back and count: :class:`Separation`, :class:`Usage`, :class:`CostEstimate`,
and the shared spending cap :class:`Budget`.

Example
-------
>>> print(CostEstimate(calls=3, cached=1, price_per_call=0.062))
3 calls to pay for, 1 already cached: about $0.19 at $0.062 per call
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from . import errors
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


@dataclass(frozen=True)
class Counts:
    """What a run would do with some pieces: pay for ``calls``, serve ``cached`` from the
    cache, collect ``pending`` requests already paid for (free), and raise
    :class:`~samaudio_data.errors.UncollectableRequestError` on ``uncollectable`` ones (paid,
    but their answer cannot be followed) until ``until`` (``time.time()``; 0: no end known).

    >>> Counts(calls=1) + Counts(pending=1) + Counts(uncollectable=1, until=5.0)
    Counts(calls=1, cached=0, pending=1, uncollectable=1, until=5.0)
    """

    calls: int = 0
    cached: int = 0
    pending: int = 0
    uncollectable: int = 0
    until: float = 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.calls + other.calls,
            self.cached + other.cached,
            self.pending + other.pending,
            self.uncollectable + other.uncollectable,
            max(self.until, other.until),
        )


@dataclass
class CostEstimate:
    """What a run would cost: calls to pay for, cache hits, dollars. Nothing is sent.

    ``calls`` and ``cached`` count requests (a long clip split into chunks counts each
    chunk); ``invalid`` lists ``(row, reason)`` for clips that cannot be sent; ``silent``
    counts rows with silent input, answered locally for free; ``rerank_calls`` is the most
    a rerank policy (``on_doubt="rerank"``) may add, if every row turned out doubtful.

    Requests an earlier (interrupted) run submitted to the queue are already paid for: the
    ``pending`` ones are collected for free (paid again only if the provider has dropped
    the result meanwhile: ``pending_cost`` at most); the ``uncollectable`` ones (their
    answer cannot be followed) make the run raise
    :class:`~samaudio_data.errors.UncollectableRequestError` without paying, until their
    journal entries expire at ``uncollectable_until`` (``time.time()``; 0: not known), after
    which they are paid again.

    >>> print(CostEstimate(calls=10, cached=0, price_per_call=0.062, silent=2, rerank_calls=10))
    10 calls to pay for, 0 already cached, 2 silent rows answered locally for free:
    about $0.62 at $0.062 per call; reranking doubtful rows may add at most 10 calls ($0.62)
    >>> print(CostEstimate(calls=1, cached=0, price_per_call=0.062, pending=2, uncollectable=1))
    1 call to pay for, 0 already cached, 2 already paid (collected from the queue for free):
    about $0.06 at $0.062 per call; a paid request whose result the provider has dropped
    (it keeps them about an hour) is paid again, at most $0.12 more. 1 piece already paid
    cannot be collected (its answer cannot be followed): the run raises
    UncollectableRequestError for it and pays nothing more, while its journal entry is kept
    (queue_retention); then it is paid again. To pay for it again now, delete its entry in
    the cache directory's journal/ folder (the error names its file); to run the rest, skip
    what fails (return_exceptions=True; on_error="skip" or --on-error skip for a dataset).
    """

    calls: int
    cached: int
    price_per_call: float
    invalid: list[tuple[int, str]] = field(default_factory=list)
    clips: int = 0
    silent: int = 0
    rerank_calls: int = 0
    pending: int = 0
    uncollectable: int = 0
    uncollectable_until: float = 0.0

    @property
    def rerank_cost(self) -> float:
        """Dollars the rerank policy may add at most."""
        return self.rerank_calls * self.price_per_call

    @property
    def cost(self) -> float:
        """Dollars the ``calls`` would cost."""
        return self.calls * self.price_per_call

    @property
    def pending_cost(self) -> float:
        """Dollars the ``pending`` requests would cost at most (if every result was gone)."""
        return self.pending * self.price_per_call

    def counts(self) -> Counts:
        """What this estimate counts, to add into a larger one."""
        return Counts(
            self.calls, self.cached, self.pending, self.uncollectable, self.uncollectable_until
        )

    def __str__(self) -> str:
        return self.describe()

    def describe(self, *, reasons: bool = True) -> str:
        """The estimate in one line; ``reasons=False`` counts the invalid rows without saying
        why (for a caller that lists them itself, so that no reason is printed twice).

        >>> print(CostEstimate(2, 0, 0.062, invalid=[(1, "empty")]).describe(reasons=False))
        2 calls to pay for, 0 already cached, 1 row with missing or invalid audio:
        about $0.12 at $0.062 per call
        """
        bad = ""
        if self.pending:
            bad += f", {self.pending} already paid (collected from the queue for free)"
        if self.invalid:
            shown = "; ".join(f"row {i}: {why}" for i, why in self.invalid[:5])
            more = f"; and {len(self.invalid) - 5} more" if len(self.invalid) > 5 else ""
            bad += f", {plural(len(self.invalid), 'row')} with missing or invalid audio"
            bad += f" ({shown}{more})" if reasons else ""
        if self.silent:
            bad += f", {plural(self.silent, 'silent row')} answered locally for free"
        text = (
            f"{plural(self.calls, 'call')} to pay for, {self.cached} already cached{bad}: "
            f"about ${self.cost:.2f} at ${self.price_per_call:.3f} per call"
        )
        if self.rerank_calls:
            text += (
                f"; reranking doubtful rows may add at most "
                f"{plural(self.rerank_calls, 'call')} (${self.rerank_cost:.2f})"
            )
        if self.pending:
            text += (
                "; a paid request whose result the provider has dropped (it keeps them about "
                f"an hour) is paid again, at most ${self.pending_cost:.2f} more"
            )
        return text + self._uncollectable()

    def _uncollectable(self) -> str:
        """What the run does with the uncollectable requests, and what to do about them."""
        n = self.uncollectable
        if not n:
            return ""
        left = self.uncollectable_until - time.time()
        soon = f"for up to {math.ceil(left / 60)} more minutes, " if left > 0 else ""
        if n == 1:
            what = (
                "1 piece already paid cannot be collected (its answer cannot be followed): the "
                f"run raises UncollectableRequestError for it and pays nothing more, {soon}"
                "while its journal entry is kept (queue_retention); then it is paid again. To "
                "pay for it again now, delete its entry in the cache directory's journal/ "
                "folder (the error names its file)"
            )
        else:
            what = (
                f"{n} pieces already paid cannot be collected (their answers cannot be "
                "followed): the run raises UncollectableRequestError for them and pays "
                f"nothing more, {soon}while their journal entries are kept (queue_retention); "
                "then they are paid again. To pay for them again now, delete their entries "
                "in the cache directory's journal/ folder (the errors name their files)"
            )
        return (
            f". {what}; to run the rest, skip what fails (return_exceptions=True; "
            'on_error="skip" or --on-error skip for a dataset).'
        )


class Tally:
    """Adds up what many clips (or files, or rows) would cost into one :class:`CostEstimate`:
    the one estimate path of the library. Each entry's count comes from the same call
    counting the sends use; an entry that cannot be sent is listed as invalid with why.

    >>> def bad():
    ...     raise errors.InvalidAudioError("empty")
    >>> t = Tally(0.062)
    >>> t.add(0, lambda: Counts(calls=2, pending=1)); t.add(1, bad)
    >>> t.result().calls, t.result().pending, t.result().invalid, t.result().clips
    (2, 1, [(1, 'empty')], 2)
    """

    def __init__(self, price_per_call: float) -> None:
        self.price_per_call = price_per_call
        self.counts = Counts()
        self.clips = 0
        self.silent = self.rerank_calls = 0  # rows answered locally; a rerank's most
        self.invalid: list[tuple[int, str]] = []

    def add(self, row: int, count: Callable[[], Counts | CostEstimate]) -> None:
        """Count entry ``row``: ``count()`` gives its :class:`Counts` or an estimate of its
        own, or raises the typed error saying why it cannot be sent."""
        self.clips += 1
        try:
            got = count()
        except errors.SamAudioError as exc:
            self.invalid.append((row, exc.message))
            return
        if isinstance(got, CostEstimate):
            if got.invalid:
                self.invalid.append((row, got.invalid[0][1]))
            got = got.counts()
        self.counts += got

    def result(self) -> CostEstimate:
        """The estimate so far."""
        c = self.counts
        return CostEstimate(
            calls=c.calls,
            cached=c.cached,
            price_per_call=self.price_per_call,
            invalid=list(self.invalid),
            clips=self.clips,
            silent=self.silent,
            rerank_calls=self.rerank_calls,
            pending=c.pending,
            uncollectable=c.uncollectable,
            uncollectable_until=c.until,
        )


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
