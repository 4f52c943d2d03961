"""The quality verdict of a long file and its isolation, window by window, streamed.

:func:`judge_file` reads the input and the isolated file one window of the chunk plan at a
time (the same windows :meth:`~samaudio_data.Client.isolate_file` sent as requests), judges
each window on the part only it answers (a crossfade mixes two windows' answers) with
:func:`~samaudio_data.audio.judge`, and combines them: the file's flag names the
seconds of the windows that failed (``"invented:36.0-74.0s"``), windows without the sound
(``absent``) count only when every window is absent. Memory holds one window.

Example
-------
>>> import tempfile, pathlib
>>> import numpy as np
>>> from samaudio_data.audio import BlockWriter
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> t = 0.1 * np.sin(np.arange(50 * 8000) * 0.2)
>>> noise = 0.05 * np.random.default_rng(0).standard_normal(t.size)
>>> with BlockWriter(d / "mix.wav", 8000, 1) as w: w.write(t + noise)
>>> answer = t.copy(); answer[20 * 8000:] = 0.0          # silence after 20 s
>>> with BlockWriter(d / "hum.wav", 8000, 1) as w: w.write(answer)
>>> v = judge_file(d / "mix.wav", d / "hum.wav", "hum")
>>> v.flag, [w.flag for w in v.windows]
('empty:32.0-50.0s', ['', '', 'empty'])
"""

from __future__ import annotations

import os
from typing import Union

from ..errors import InvalidRequestError
from ._chunks import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, plan_chunks
from ._quality import Verdict, WindowVerdict, combine, cores, judge
from ._stream import audio_file_info, read_window

PathLike = Union[str, "os.PathLike[str]"]


def judge_file(
    path: PathLike,
    isolated_path: PathLike,
    description: str,
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
) -> Verdict:
    """Judge the isolation ``isolated_path`` of the file ``path`` (same rate and length),
    per window of ``chunk_seconds`` (as sent) and for the whole file. Reads, never sends."""
    info, out = audio_file_info(path), audio_file_info(isolated_path)
    if (info.sr, info.frames) != (out.sr, out.frames):
        raise InvalidRequestError(
            f"{str(isolated_path)!r} ({out.frames} samples at {out.sr} Hz) is not an "
            f"isolation of {str(path)!r} ({info.frames} samples at {info.sr} Hz): pass the "
            "file isolate_file wrote for it."
        )
    plan = plan_chunks(info.frames, info.sr, chunk_seconds, overlap_seconds)
    parts: list[WindowVerdict] = []
    for (a, b), (lo, hi) in zip(plan.windows, cores(plan.windows), strict=True):
        v = judge(
            read_window(path, lo, hi), read_window(isolated_path, lo, hi), info.sr, description
        )
        parts.append(WindowVerdict(a / info.sr, b / info.sr, v.flag, v.quality))
    if len(parts) == 1:
        v = judge(
            read_window(path, 0, info.frames),
            read_window(isolated_path, 0, info.frames),
            info.sr,
            description,
        )
        return Verdict(v.flag, v.quality, v.signals, tuple(parts))
    return combine(parts)
