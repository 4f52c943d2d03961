"""Long clips as overlapping windows, and joining their answers with a crossfade.

A clip longer than one chunk is cut into windows that overlap by exactly ``overlap`` samples;
each window is isolated by its own request and the answers are joined with a raised-cosine
crossfade over each overlap. The fade-in weight is ``sin**2`` and the fade-out weight is
``1 - sin**2`` (= ``cos**2``), so the two weights sum to 1 at every sample: a linear,
time-invariant separation (identity, a gain) comes back exactly as if done in one piece.

Why sum-to-one and not "equal power" (``sin``/``cos``, squares summing to 1): the two answers
in an overlap are estimates of the same sound, so they are strongly correlated, and amplitude
weights summing to 1 keep their level; ``sin``/``cos`` would lift it by up to 3 dB mid-fade.

Windows are spread evenly: all have nearly the same length (at most ``chunk``, differing by at
most one sample), so no window is a degenerate sliver at the end. An overlap may be at most
half a chunk, so that every sample lies in at most two windows.

Example
-------
>>> import numpy as np
>>> plan = plan_chunks(30 * 8000, 8000, chunk_seconds=10, overlap_seconds=2)
>>> len(plan), plan.windows[0], plan.windows[-1]
(4, (0, 72000), (168000, 240000))
>>> y = np.random.default_rng(0).standard_normal(plan.n).astype(np.float32)
>>> np.array_equal(join_chunks(plan, [y[a:b] for a, b in plan.windows]), y)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidRequestError

Window = tuple[int, int]

DEFAULT_CHUNK_SECONDS = 20.0
"""Recommended longest window: twice the ~10 s training clips, well under the ~29 s the
model's own playground accepts; clips up to 20 s stay one call; 200 calls per hour of audio."""

DEFAULT_OVERLAP_SECONDS = 2.0
"""Recommended crossfade: a window's least-context edges get little weight (its last 0.5 s
less than 15 %); costs 11 % more calls than no overlap at 20 s windows."""


def check_chunk_settings(chunk_seconds: float, overlap_seconds: float) -> tuple[float, float]:
    """Validate ``chunk_seconds`` and ``overlap_seconds`` and return them as floats.

    The overlap must be at least 0 and at most half the chunk (beyond that every second of
    audio is paid for more than twice, and a sample would lie in three windows).

    >>> check_chunk_settings(10, 2.5)
    (10.0, 2.5)
    >>> try:
    ...     check_chunk_settings(10, 6)
    ... except InvalidRequestError as e:
    ...     print(e)   # doctest: +ELLIPSIS
    overlap_seconds=6 is more than half of chunk_seconds=10: ... e.g. overlap_seconds=2.
    """
    for name, value in (("chunk_seconds", chunk_seconds), ("overlap_seconds", overlap_seconds)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidRequestError(f"{name} must be a number of seconds, got {value!r}.")
        if not math.isfinite(float(value)):
            raise InvalidRequestError(f"{name} must be finite, got {value!r}.")
    chunk, overlap = float(chunk_seconds), float(overlap_seconds)
    if chunk <= 0:
        raise InvalidRequestError(
            f"chunk_seconds={chunk_seconds:g} must be positive; use e.g. chunk_seconds=10."
        )
    if overlap < 0:
        raise InvalidRequestError(
            f"overlap_seconds={overlap_seconds:g} must be 0 or more; use e.g. "
            "overlap_seconds=2 (0 joins chunks without a crossfade)."
        )
    if overlap >= chunk:
        raise InvalidRequestError(
            f"overlap_seconds={overlap_seconds:g} is not less than "
            f"chunk_seconds={chunk_seconds:g}: windows would never advance. Use an overlap of "
            f"at most half the chunk, e.g. overlap_seconds={chunk / 5:g}."
        )
    if 2 * overlap > chunk:
        raise InvalidRequestError(
            f"overlap_seconds={overlap_seconds:g} is more than half of "
            f"chunk_seconds={chunk_seconds:g}: every second would be paid for more than twice. "
            f"Use at most overlap_seconds={chunk / 2:g}, e.g. overlap_seconds={chunk / 5:g}."
        )
    return chunk, overlap


@dataclass(frozen=True)
class ChunkPlan:
    """Where a clip of ``n`` samples at ``sr`` Hz is cut: one request per window.

    ``windows`` are ``(start, stop)`` sample ranges covering ``[0, n)`` in order; consecutive
    windows overlap by exactly ``overlap`` samples (0 when there is a single window). ``chunk``
    is the longest window allowed, in samples. ``len(plan)`` is the number of requests.

    >>> plan = plan_chunks(8000 * 25, 8000, chunk_seconds=10, overlap_seconds=2)
    >>> len(plan), plan.overlap, plan.windows
    (3, 16000, ((0, 77334), (61334, 138667), (122667, 200000)))
    """

    n: int
    sr: int
    chunk: int
    overlap: int
    windows: tuple[Window, ...]

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self):
        return iter(self.windows)

    @property
    def seconds(self) -> float:
        """Duration of the clip in seconds.

        >>> plan_chunks(12000, 8000, 10, 2).seconds
        1.5
        """
        return self.n / self.sr

    def lengths(self) -> list[int]:
        """Length of each window in samples.

        >>> plan_chunks(8000 * 25, 8000, 10, 2).lengths()
        [77334, 77333, 77333]
        """
        return [b - a for a, b in self.windows]


def plan_chunks(n: int, sr: int, chunk_seconds: float, overlap_seconds: float) -> ChunkPlan:
    """Cut ``n`` samples at ``sr`` Hz into the fewest windows of at most ``chunk_seconds``.

    Consecutive windows overlap by exactly ``round(overlap_seconds * sr)`` samples. A clip of
    at most one chunk is a single window. Longer clips use ``k = ceil((n - overlap) /
    (chunk - overlap))`` windows, spread evenly so that every window has nearly the same length
    (never a sliver at the end); ``k`` is the number of paid calls.

    Raises :class:`~samaudio_data.errors.InvalidRequestError` for an overlap not under half a
    chunk, a chunk shorter than one sample, or ``n < 1``.

    >>> plan_chunks(80000, 8000, 10, 2).windows          # exactly one chunk
    ((0, 80000),)
    >>> plan_chunks(80001, 8000, 10, 2).windows          # one chunk plus one sample
    ((0, 48001), (32001, 80001))
    """
    n, sr, chunk, overlap = _samples(n, sr, chunk_seconds, overlap_seconds)
    if n <= chunk:
        return ChunkPlan(n=n, sr=sr, chunk=chunk, overlap=0, windows=((0, n),))
    return ChunkPlan(
        n=n, sr=sr, chunk=chunk, overlap=overlap, windows=tuple(_spread(n, chunk, overlap))
    )


def count_chunks(n: int, sr: int, chunk_seconds: float, overlap_seconds: float) -> int:
    """Number of windows (paid calls) :func:`plan_chunks` makes, without listing them.

    ``1`` for ``n <= chunk``, else ``ceil((n - overlap) / (chunk - overlap))`` in samples.

    >>> count_chunks(3600 * 48000, 48000, 20, 2), count_chunks(3600 * 48000, 48000, 10, 2)
    (200, 450)
    """
    n, sr, chunk, overlap = _samples(n, sr, chunk_seconds, overlap_seconds)
    return 1 if n <= chunk else -(-(n - overlap) // (chunk - overlap))


def _samples(n, sr, chunk_seconds, overlap_seconds) -> tuple[int, int, int, int]:
    """Validate the arguments and return ``n, sr, chunk, overlap`` in whole samples."""
    chunk_s, overlap_s = check_chunk_settings(chunk_seconds, overlap_seconds)
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        if isinstance(sr, (float, np.floating)) and float(sr).is_integer() and sr > 0:
            sr = int(sr)
        else:
            raise InvalidRequestError(f"sr must be a positive whole number of Hz, got {sr!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidRequestError(
            f"n must be a whole number of samples, at least 1, got {n!r}; empty audio has "
            "nothing to isolate."
        )
    n, sr = int(n), int(sr)
    chunk = int(round(chunk_s * sr))
    overlap = int(round(overlap_s * sr))
    if chunk < 1:
        raise InvalidRequestError(
            f"chunk_seconds={chunk_seconds:g} is shorter than one sample at {sr} Hz; "
            "use e.g. chunk_seconds=10."
        )
    if 2 * overlap > chunk:  # only possible through rounding to whole samples
        overlap = chunk // 2
    return n, sr, chunk, overlap


def _spread(n: int, chunk: int, overlap: int) -> list[Window]:
    """Windows for ``n > chunk``: each window's hop is its length minus the overlap."""
    total = n - overlap  # the hops sum to this
    k = -(-total // (chunk - overlap))  # fewest windows with every hop <= chunk - overlap
    base, extra = divmod(total, k)
    hops = [base + 1] * extra + [base] * (k - extra)
    if k >= 3 and base < overlap:
        # a middle window shorter than two overlaps would let its fades cross (a sample in
        # three windows); give the middle windows the shortest allowed hop, the ends the rest
        ends = total - (k - 2) * overlap
        hops = [ends - ends // 2] + [overlap] * (k - 2) + [ends // 2]
    windows, start = [], 0
    for hop in hops:
        windows.append((start, start + hop + overlap))
        start += hop
    return windows


def _fade_in(length: int) -> np.ndarray:
    """Raised-cosine fade-in weights ``sin**2``, sampled at the middle of each sample."""
    theta = (np.arange(length, dtype=np.float64) + 0.5) * (0.5 * np.pi / length)
    return np.sin(theta) ** 2


def _crossfade(out_tail: np.ndarray, in_head: np.ndarray) -> np.ndarray:
    """Join the end of one answer with the start of the next: weights sum to 1 (float32).

    Inputs are rounded to float32 first, so the result does not depend on their dtype.
    """
    w_in = _fade_in(out_tail.shape[-1])
    a = out_tail.astype(np.float32).astype(np.float64)
    b = in_head.astype(np.float32).astype(np.float64)
    mixed = (1.0 - w_in) * a + w_in * b
    return mixed.astype(np.float32)


def _as_answer(plan: ChunkPlan, i: int, y, channels: int | None) -> np.ndarray:
    """Check one window's answer: ``(L,)`` or ``(channels, L)`` with L the window's length."""
    if not 0 <= i < len(plan):
        raise InvalidRequestError(
            f"chunk index {i} is outside the plan's {len(plan)} windows (0..{len(plan) - 1})."
        )
    arr = np.asarray(y)
    if arr.ndim not in (1, 2) or arr.dtype.kind != "f":
        raise InvalidRequestError(
            f"chunk {i}'s answer must be a float array (L,) or (channels, L), got "
            f"{arr.dtype} of shape {arr.shape}."
        )
    a, b = plan.windows[i]
    if arr.shape[-1] != b - a:
        raise InvalidRequestError(
            f"chunk {i}'s answer has {arr.shape[-1]} samples but its window [{a}, {b}) has "
            f"{b - a}; fit it first (audio.fit_length or audio.fit_answer with n={b - a})."
        )
    if channels is not None and (1 if arr.ndim == 1 else arr.shape[0]) != channels:
        raise InvalidRequestError(
            f"chunk {i}'s answer has shape {arr.shape}, expected {channels} channel(s) like "
            "the others; give every chunk the same channel layout."
        )
    return arr


def join_chunks(plan: ChunkPlan, answers: Sequence[np.ndarray]) -> np.ndarray:
    """Join one answer per window of ``plan`` into one float32 signal of ``plan.n`` samples.

    Each answer is ``(L,)`` or ``(channels, L)`` with ``L`` its window's length; the result
    has the same layout. Overlaps are crossfaded with weights summing to 1, so answers that are
    slices of one signal join back to exactly that signal (within float32 rounding).

    >>> plan = plan_chunks(5 * 8000, 8000, chunk_seconds=2, overlap_seconds=0.5)
    >>> y = np.linspace(-1, 1, plan.n, dtype=np.float32)
    >>> np.array_equal(join_chunks(plan, [0.5 * y[a:b] for a, b in plan]), 0.5 * y)
    True
    """
    if len(answers) != len(plan):
        raise InvalidRequestError(
            f"got {len(answers)} answers for a plan of {len(plan)} windows; pass one answer "
            "per window, in order."
        )
    first = _as_answer(plan, 0, answers[0], None)
    channels = 1 if first.ndim == 1 else first.shape[0]
    parts = [_as_answer(plan, i, y, channels) for i, y in enumerate(answers)]
    out = np.empty(first.shape[:-1] + (plan.n,), dtype=np.float32)
    ov = plan.overlap
    for i, ((a, b), y) in enumerate(zip(plan.windows, parts, strict=True)):
        lo = ov if i > 0 else 0
        hi = (b - a) - ov if i < len(plan) - 1 else b - a
        out[..., a + lo : a + hi] = y[..., lo:hi]
        if i > 0 and ov:
            out[..., a : a + ov] = _crossfade(parts[i - 1][..., -ov:], y[..., :ov])
    return out


class ChunkJoiner:
    """Join answers as they arrive (in any order) and hand out the samples that are final.

    ``add(i, y)`` stores the answer of window ``i``; ``take()`` returns, in order, every sample
    that no pending answer can change any more (float32, ``(n,)`` or ``(channels, n)``), so a
    long file can be written block by block. An answer is dropped once its samples have been
    handed out: memory holds only the answers that arrived ahead of the next one needed. To
    bound it when requests run concurrently, submit window ``i`` only while
    ``i < joiner.next_window + limit``. Not thread-safe: call ``add`` and ``take`` from one
    thread (e.g. the one collecting finished futures), or under a lock.

    >>> plan = plan_chunks(5 * 8000, 8000, chunk_seconds=2, overlap_seconds=0.5)
    >>> y = np.linspace(-1, 1, plan.n, dtype=np.float32)
    >>> joiner = ChunkJoiner(plan)
    >>> joiner.add(1, y[slice(*plan.windows[1])])
    >>> joiner.take().shape                          # window 0 is missing: nothing is final
    (0,)
    >>> joiner.add(0, y[slice(*plan.windows[0])])
    >>> joiner.take().shape, joiner.position, joiner.done   # up to window 2's fade-in
    ((24000,), 24000, False)
    >>> joiner.add(2, y[slice(*plan.windows[2])])
    >>> joiner.take().shape, joiner.done
    ((16000,), True)
    """

    def __init__(self, plan: ChunkPlan, channels: int | None = None) -> None:
        self.plan = plan
        self.channels = channels
        self._answers: dict[int, np.ndarray] = {}
        self._ndim: int | None = None  # 1 for (n,) answers, 2 for (channels, n)
        self._next = 0  # first window whose samples are not all handed out
        self._pos = 0  # samples handed out so far

    @property
    def position(self) -> int:
        """Number of samples handed out by :meth:`take` so far.

        >>> ChunkJoiner(plan_chunks(100, 8000, 1, 0)).position
        0
        """
        return self._pos

    @property
    def next_window(self) -> int:
        """Index of the first window whose samples are not all handed out yet.

        >>> plan = plan_chunks(3 * 8000, 8000, 1, 0)
        >>> j = ChunkJoiner(plan); j.add(0, np.zeros(8000)); j.add(2, np.zeros(8000))
        >>> _ = j.take(); j.next_window, j.pending
        (1, 1)
        """
        return self._next

    @property
    def done(self) -> bool:
        """True once all ``plan.n`` samples have been handed out.

        >>> ChunkJoiner(plan_chunks(100, 8000, 1, 0)).done
        False
        """
        return self._pos == self.plan.n

    @property
    def pending(self) -> int:
        """Number of answers held in memory, waiting for an earlier one.

        >>> ChunkJoiner(plan_chunks(100, 8000, 1, 0)).pending
        0
        """
        return len(self._answers)

    def add(self, i: int, y: np.ndarray) -> None:
        """Store the answer of window ``i`` (shape ``(L,)`` or ``(channels, L)``).

        >>> j = ChunkJoiner(plan_chunks(100, 8000, 1, 0)); j.add(0, np.zeros(100))
        >>> j.take().shape
        (100,)
        """
        arr = _as_answer(self.plan, i, y, self.channels)
        if self._ndim is not None and arr.ndim != self._ndim:
            raise InvalidRequestError(
                f"chunk {i}'s answer has shape {arr.shape} but earlier answers were "
                f"{self._ndim}-D; give every chunk the same layout."
            )
        self._ndim = arr.ndim
        self.channels = 1 if arr.ndim == 1 else arr.shape[0]
        if i < self._next or i in self._answers:
            raise InvalidRequestError(
                f"chunk {i} was already added; each window's answer is added once."
            )
        self._answers[i] = np.asarray(arr, dtype=np.float32)

    def take(self) -> np.ndarray:
        """Return the samples that became final since the last call (possibly none).

        >>> ChunkJoiner(plan_chunks(100, 8000, 1, 0), channels=2).take().shape
        (2, 0)
        """
        plan, ov, parts = self.plan, self.plan.overlap, []
        last = len(plan) - 1
        while self._next in self._answers:
            i = self._next
            a, b = plan.windows[i]
            y = self._answers[i]
            solo_end = b - ov if i < last else b
            if self._pos < solo_end:
                parts.append(y[..., self._pos - a : solo_end - a])
                self._pos = solo_end
            if i < last and ov:
                if i + 1 not in self._answers:
                    break
                parts.append(_crossfade(y[..., -ov:], self._answers[i + 1][..., :ov]))
                self._pos += ov
            del self._answers[i]
            self._next += 1
        if not parts:
            channels = self.channels or 1  # set with the first answer, if any came
            mono = self._ndim == 1 or (self._ndim is None and channels == 1)
            return np.zeros((0,) if mono else (channels, 0), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(parts, axis=-1), dtype=np.float32)
