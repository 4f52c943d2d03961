"""A clip as requests, and requests' answers back as a clip.

:func:`prepare` validates a clip and turns it into the uploads it needs: one per channel
sent (``channels="mix"`` sends the mono mix, ``"each"`` every channel) and per chunk of a
long clip. :func:`assemble` fits every answer back to its piece (rate, length, level),
joins a long clip's chunks and computes the residual (input minus target).

Example
-------
>>> import numpy as np
>>> job = prepare(np.zeros(16000, np.float32), 16000, "speech", {}, channels="mix",
...               upload_format="wav")
>>> len(job.pieces), job.pieces[0].upload.sr
(1, 16000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import audio
from ._models import Separation


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

    pieces: List[Piece]
    original: np.ndarray        # float64 (channels, n)
    sr: int
    description: str
    params: Dict[str, Any]
    each: bool
    windows: Tuple[Tuple[int, int], ...]


@dataclass(frozen=True)
class Answer:
    """A validated answer for one piece, decoded."""

    samples: np.ndarray         # float32 (channels, m) as answered
    sr: int
    fmt: str
    cost: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    attempts: int = 0


def windows_for(n: int, sr: int, chunk_seconds: Optional[float],
                overlap_seconds: float) -> Tuple[Tuple[int, int], ...]:
    """The windows a clip of ``n`` samples is sent as (one unless it is longer than a chunk).

    >>> windows_for(100, 10, None, 0.0)
    ((0, 100),)
    """
    if not chunk_seconds or n <= int(round(chunk_seconds * sr)):
        return ((0, n),)
    from .audio import plan_chunks

    return tuple(plan_chunks(n, sr, chunk_seconds, overlap_seconds).windows)


def prepare(y: Any, sr: Any, description: str, params: Dict[str, Any], *, channels: str,
            upload_format: str, chunk_seconds: Optional[float] = None,
            overlap_seconds: float = 0.0, max_seconds: Optional[float] = None) -> Job:
    """Validate a clip (typed errors, nothing sent) and build its uploads."""
    y2d = audio.check_audio(y, sr, max_seconds=max_seconds)
    sr = int(sr)
    each = channels == "each" and y2d.shape[0] > 1
    sources = list(y2d) if each else [audio.mix_to_mono(y2d)]
    windows = windows_for(y2d.shape[-1], sr, chunk_seconds, overlap_seconds)
    pieces = [Piece(audio.make_upload(src[a:b], sr, fmt=upload_format), ch, a, b)
              for ch, src in enumerate(sources) for a, b in windows]
    return Job(pieces=pieces, original=y2d, sr=sr, description=description, params=params,
               each=each, windows=windows)


def fit(piece: Piece, answer: Answer, sr: int) -> np.ndarray:
    """One answer at the input's rate, its window's length and the input's level."""
    return audio.fit_answer(answer.samples, answer.sr, sr=sr, n=piece.stop - piece.start,
                            gain=piece.upload.gain, reference=piece.upload.mono,
                            realign=answer.fmt in ("mp3", "ogg"))


def assemble(job: Job, answers: Sequence[Answer]) -> Separation:
    """The clip's :class:`~samaudio_data.Separation` from its pieces' answers (in order)."""
    per_channel: Dict[int, List[np.ndarray]] = {}
    for piece, ans in zip(job.pieces, answers):
        per_channel.setdefault(piece.channel, []).append(fit(piece, ans, job.sr))
    targets = []
    for ch in sorted(per_channel):
        parts = per_channel[ch]
        if len(parts) == 1:
            targets.append(parts[0])
        else:
            targets.append(join_windows(job.windows, parts, job.original.shape[-1]))
    if job.each:
        target = np.stack(targets)
        residual = (job.original - target).astype(np.float32)
    else:
        target = targets[0]
        residual = (audio.mix_to_mono(job.original) - target).astype(np.float32)
    return Separation(target=target, residual=residual, sr=job.sr, description=job.description,
                      cost=sum(a.cost for a in answers), seconds=sum(a.seconds for a in answers),
                      cached=all(a.cached for a in answers),
                      attempts=sum(a.attempts for a in answers))


def join_windows(windows: Sequence[Tuple[int, int]], parts: Sequence[np.ndarray],
                 n: int) -> np.ndarray:
    """Join overlapping windows' answers with a crossfade whose weights sum to one.

    >>> w = ((0, 6), (4, 10))
    >>> x = np.arange(10, dtype=np.float32)
    >>> np.allclose(join_windows(w, [x[0:6], x[4:10]], 10), x)
    True
    """
    out = np.zeros(n, dtype=np.float64)
    weight_end = 0
    for (a, b), part in zip(windows, parts):
        part = part.astype(np.float64)
        fade = max(0, weight_end - a)
        if fade:
            t = (np.arange(fade) + 0.5) / fade
            fade_in = np.sin(0.5 * np.pi * t) ** 2
            out[a:a + fade] = out[a:a + fade] * (1.0 - fade_in) + part[:fade] * fade_in
            out[a + fade:b] = part[fade:]
        else:
            out[a:b] = part
        weight_end = b
    return out.astype(np.float32)
