"""What a run would cost, counted before anything is sent: :class:`CostEstimate`, added up by
:class:`Tally` (the one estimate path of the library: ``Client.estimate``,
``estimate_file``, ``estimate_cost`` and the CLI's ``--dry-run``) from the :class:`Counts` of
each clip, which the answer pipeline counts with the same code its sends use.

A piece is a call to pay for, a cache hit, a request already paid for on the queue and
collected for free (``pending``), or one paid whose answer cannot be followed
(``uncollectable``: the run raises for it, paying nothing, until its journal entry expires).

Example
-------
>>> print(CostEstimate(calls=3, cached=1, price_per_call=0.062))
3 calls to pay for, 1 already cached: about $0.19 at $0.062 per call
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from ._models import plural


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
