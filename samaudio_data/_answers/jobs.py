"""A clip as requests, and requests' answers back as a clip.

:func:`prepare` validates a clip and turns it into the uploads it needs: one per channel
sent (``channels="mix"`` sends the mono mix, ``"each"`` every channel) and per chunk of a
long clip. :func:`assemble` fits every answer back to its piece (rate, length, level),
joins a long clip's chunks and computes the residual (input minus target).

Example
-------
>>> import numpy as np
>>> job = prepare(np.zeros(16000, np.float32), 16000, "speech", {}, channels="mix",
...               upload_format="wav", chunk_seconds=20, overlap_seconds=2)
>>> len(job.pieces), job.pieces[0].upload.sr
(1, 16000)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import audio
from .._models import Separation


@dataclass(frozen=True)
class Piece:
    """One request: the upload of one channel's window ``[start, stop)``."""

    upload: audio.Upload
    channel: int
    start: int
    stop: int


@dataclass(frozen=True)
class Job:
    """A validated clip and the pieces to request for it."""

    pieces: list[Piece]
    original: np.ndarray  # float64 (channels, n)
    sr: int
    description: str
    params: dict[str, Any]
    each: bool
    plan: audio.ChunkPlan


@dataclass(frozen=True)
class Answer:
    """A validated answer for one piece, decoded."""

    samples: np.ndarray  # float32 (channels, m) as answered
    sr: int
    fmt: str
    cost: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    attempts: int = 0


def prepare(
    y: Any,
    sr: Any,
    description: str,
    params: dict[str, Any],
    *,
    channels: str,
    upload_format: str,
    chunk_seconds: float,
    overlap_seconds: float,
    max_seconds: float | None = None,
) -> Job:
    """Validate a clip (typed errors, nothing sent) and build its uploads: one per channel
    sent and per window of the chunk plan (a clip up to ``chunk_seconds`` is one window)."""
    y2d = audio.check_audio(y, sr, max_seconds=max_seconds)
    plan = audio.plan_chunks(y2d.shape[-1], int(sr), chunk_seconds, overlap_seconds)
    return _job(y2d, plan, description, params, channels=channels, upload_format=upload_format)


def window_job(
    window: Any,
    sr: Any,
    description: str,
    params: dict[str, Any],
    *,
    channels: str,
    upload_format: str,
) -> Job:
    """One window of a long file as a job of its own, for streaming (nothing else is read).

    Its uploads are byte for byte those :func:`prepare` builds for the same window of the
    whole clip, so a file isolated window by window and the same clip isolated in memory
    share their cache entries.

    >>> import numpy as np
    >>> y = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 30 * 8000)).astype(np.float32)
    >>> whole = prepare(y, 8000, "speech", {}, channels="mix", upload_format="wav",
    ...                 chunk_seconds=20, overlap_seconds=2)
    >>> a, b = whole.plan.windows[1]
    >>> part = window_job(y[:, a:b], 8000, "speech", {}, channels="mix", upload_format="wav")
    >>> part.pieces[0].upload.data == whole.pieces[1].upload.data
    True
    """
    y2d = audio.check_audio(window, sr)
    n = y2d.shape[-1]
    plan = audio.ChunkPlan(n=n, sr=int(sr), chunk=n, overlap=0, windows=((0, n),))
    return _job(y2d, plan, description, params, channels=channels, upload_format=upload_format)


def _job(
    y2d: np.ndarray,
    plan: audio.ChunkPlan,
    description: str,
    params: dict[str, Any],
    *,
    channels: str,
    upload_format: str,
) -> Job:
    """The job of a validated clip: one upload per channel sent and per window of ``plan``."""
    each = channels == "each" and y2d.shape[0] > 1
    sources = list(y2d) if each else [audio.mix_to_mono(y2d)]
    pieces = [
        Piece(audio.make_upload(src[a:b], plan.sr, fmt=upload_format), ch, a, b)
        for ch, src in enumerate(sources)
        for a, b in plan.windows
    ]
    return Job(
        pieces=pieces,
        original=y2d,
        sr=plan.sr,
        description=description,
        params=params,
        each=each,
        plan=plan,
    )


def fit(piece: Piece, answer: Answer, sr: int) -> np.ndarray:
    """One answer at the input's rate, its window's length and the input's level."""
    return audio.fit_answer(
        answer.samples,
        answer.sr,
        sr=sr,
        n=piece.stop - piece.start,
        gain=piece.upload.gain,
        reference=piece.upload.mono,
        realign=answer.fmt in ("mp3", "ogg"),
    )


def assemble(job: Job, answers: Sequence[Answer]) -> Separation:
    """The clip's :class:`~samaudio_data.Separation` from its pieces' answers (in order)."""
    per_channel: dict[int, list[np.ndarray]] = {}
    for piece, ans in zip(job.pieces, answers, strict=True):
        per_channel.setdefault(piece.channel, []).append(fit(piece, ans, job.sr))
    targets = [audio.join_chunks(job.plan, per_channel[ch]) for ch in sorted(per_channel)]
    if job.each:
        target = np.stack(targets)
        residual = (job.original - target).astype(np.float32)
    else:
        target = targets[0]
        residual = (audio.mix_to_mono(job.original) - target).astype(np.float32)
    return Separation(
        target=target,
        residual=residual,
        sr=job.sr,
        description=job.description,
        cost=sum(a.cost for a in answers),
        seconds=sum(a.seconds for a in answers),
        cached=all(a.cached for a in answers),
        attempts=sum(a.attempts for a in answers),
        windows=tuple(job.plan.windows) if len(job.plan.windows) > 1 else (),
    )
