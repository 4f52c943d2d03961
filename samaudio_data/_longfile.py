"""A long audio file isolated window by window, streamed from disk to disk.

:func:`isolate_file` (behind :meth:`samaudio_data.Client.isolate_file`) never holds the whole
file: it reads one window of the chunk plan at a time (:func:`samaudio_data.audio.read_window`),
sends each window as its own request, joins the answers with the crossfade of
:class:`samaudio_data.audio.ChunkJoiner` as they arrive, and writes the samples that are final
(:class:`samaudio_data.audio.BlockWriter`, a ``.part`` file renamed at the end). Window ``i``
is read only while ``i < joiner.next_window + ahead``, so memory holds at most ``ahead``
windows' answers and ``max_concurrency`` windows being sent, whatever the file's length.

Each window's upload is byte for byte the one :meth:`~samaudio_data.Client.separate` sends for
the same window of the clip in memory: the two share cache entries, and a run stopped after
40 of 100 windows (a crash, ``kill -9``) pays only for the other 60 when run again.

Example
-------
>>> import tempfile, pathlib
>>> import numpy as np
>>> from samaudio_data import Client, audio
>>> from samaudio_data.testing import LocalEndpoint
>>> path = pathlib.Path(tempfile.mkdtemp()) / "talk.wav"
>>> with audio.BlockWriter(path, 8000, channels=2) as w:
...     w.write(np.full((2, 25 * 8000), 0.2, dtype=np.float32))
>>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False,
...                                    progress=False) as client:
...     out = client.isolate_file(path, "half")
...     calls = client.usage.billed
>>> out.name, calls, round(float(audio.read_window(out, 8000, 8001)[0, 0]), 3)
('talk.isolated-half.wav', 2, 0.1)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import audio, errors
from ._answers.jobs import fit, window_job
from ._estimate import CostEstimate, Counts, Tally
from ._models import Budget
from ._options import Chunking
from ._parts import Parts

PathLike = Union[str, "os.PathLike[str]"]


def isolate_file(
    parts: Parts,
    path: PathLike,
    description: str,
    out_path: PathLike | None = None,
    *,
    residual_path: PathLike | bool | None = None,
    budget: Budget | None = None,
    progress: bool | None = None,
    **params,
) -> Path:
    """Isolate ``description`` in an audio file of any length, streaming; return the output.

    The file is read one window of ``chunk_seconds`` at a time, each window isolated by
    its own cached request, the answers joined with the crossfade and written block by
    block: memory does not grow with the file. The output (default: next to the input,
    ``talk.isolated-speech.wav``; ``.wav`` is 32-bit float, ``.flac`` 24-bit) is the
    same as :meth:`separate`'s target for the file read into memory. ``residual_path``
    (a path, or True for ``talk.residual-speech.wav``) also writes the input minus the
    target. Nothing is left at the output paths when a call fails; a rerun pays only for
    the windows not yet paid for. See the README's "Long recordings".

    >>> import tempfile, pathlib
    >>> from samaudio_data import Client, audio
    >>> from samaudio_data.testing import LocalEndpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "talk.flac"
    >>> with audio.BlockWriter(path, 16000, channels=2) as w:
    ...     w.write(np.tile(0.5 * np.sin(np.arange(50 * 16000) / 7), (2, 1)))
    >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False,
    ...                                    progress=False) as client:
    ...     out = client.isolate_file(path, "half", residual_path=True)
    ...     calls = client.usage.billed
    >>> out.name, calls, audio.audio_file_info(out).frames
    ('talk.isolated-half.flac', 3, 800000)
    >>> rest = path.with_name("talk.residual-half.flac")
    >>> round(float(np.abs(audio.read_window(rest, 16000, 32000)).max()), 2)  # half the mix
    0.25
    """
    description, params, channels = parts.request(description, params)
    src = Path(path)
    info, plan = _plan(parts.options.chunking, src)
    each = channels == "each" and info.channels > 1
    out_channels = info.channels if each else 1
    out, res = _outputs(src, description, out_path, residual_path)
    runner, started = parts.runner, parts.runner.started()
    upload_format = parts.options.upload.upload_format

    heavy = threading.Lock()

    def window(i: int) -> np.ndarray:
        """Read, send and fit window ``i``: its target as float32 ``(L,)`` or ``(ch, L)``."""
        a, b = plan.windows[i]
        # reading/encoding and fitting make float64 copies of a whole window: one window at
        # a time does that (the work is CPU-bound anyway), so the peak does not grow with
        # max_concurrency; the requests themselves wait concurrently
        with heavy:
            job = window_job(
                audio.read_window(src, a, b),
                info.sr,
                description,
                params,
                channels=channels,
                upload_format=upload_format,
            )
            # the residual reads the input again, per span written: while the request
            # waits, memory holds only the upload
            job = dataclasses.replace(job, original=None)  # type: ignore[arg-type]
        answers = [parts.caller.answer(p, job, started=started, budget=budget) for p in job.pieces]
        with heavy:
            fitted = [fit(p, ans, info.sr) for p, ans in zip(job.pieces, answers, strict=True)]
            return np.stack(fitted) if job.each else fitted[0]

    workers = in_flight(runner.workers, plan, pieces=out_channels)
    ahead = workers + 2
    joiner = audio.ChunkJoiner(plan, channels=out_channels)
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(audio.BlockWriter(out, info.sr, out_channels, frames=info.frames))
        ]
        if res is not None:
            writers.append(
                stack.enter_context(
                    audio.BlockWriter(res, info.sr, out_channels, frames=info.frames)
                )
            )
        bar = stack.enter_context(
            runner.bar(len(plan), f"{src.name} ({info.seconds:.0f} s)", "chunk", progress)
        )
        futures = stack.enter_context(runner.stopping())
        submitted = 0
        while not joiner.done:
            while (
                submitted < len(plan)
                and len(futures) < workers
                and submitted < joiner.next_window + ahead
            ):
                futures[runner.submit(window, submitted)] = submitted
                submitted += 1
            finished, _ = runner.wait(futures)
            for fut in sorted(finished, key=lambda f: futures[f]):
                i = futures.pop(fut)
                try:
                    joiner.add(i, fut.result())
                except errors.SamAudioError as exc:
                    raise _located(exc, src, plan, i) from exc
                bar.tick()
            start = joiner.position
            block = joiner.take()
            writers[0].write(block)
            for lo in range(0, block.shape[-1] if res is not None else 0, 1 << 18):
                part = block[..., lo : lo + (1 << 18)]
                writers[1].write(_residual(src, start + lo, part, each))
            if finished:
                _release_memory()
    return out


WINDOW_BYTES_PER_FRAME = 40
"""Memory a window in flight takes per sample of its upload (at most 48 kHz): the float64
mono reference, the 16-bit upload, its base64 JSON body, the answer and its fit."""

IN_FLIGHT_MEMORY = 256 * 2**20
"""Memory allowed to a file's windows in flight: at 20 s windows, 7 windows of 44.1 kHz
audio (more at lower rates), never more than ``max_concurrency``. With ~12 s per call, 7
windows in flight send about 35 calls a minute (a paid plan allows about 50)."""


def in_flight(max_concurrency: int, plan: audio.ChunkPlan, pieces: int = 1) -> int:
    """How many windows of ``plan`` are sent at once: ``max_concurrency``, capped so that
    their memory stays within :data:`IN_FLIGHT_MEMORY` (``pieces``: uploads per window, the
    channel count with ``channels="each"``).

    >>> in_flight(16, audio.plan_chunks(3600 * 44100, 44100, 20, 2))
    7
    >>> in_flight(16, audio.plan_chunks(3600 * 8000, 8000, 20, 2))
    16
    >>> in_flight(16, audio.plan_chunks(3600 * 44100, 44100, 20, 2), pieces=2)  # "each"
    3
    >>> in_flight(4, audio.plan_chunks(10, 8000, 20, 2))   # one window
    1
    """
    frames = max(b - a for a, b in plan.windows) * min(plan.sr, audio.MODEL_SR) // plan.sr
    by_memory = IN_FLIGHT_MEMORY // max(1, frames * pieces * WINDOW_BYTES_PER_FRAME)
    return int(max(1, min(max_concurrency, len(plan), by_memory)))


def estimate_file(
    parts: Parts, paths: PathLike | Sequence[PathLike], description: str, **params
) -> CostEstimate:
    """Count the calls :meth:`isolate_file` would pay for, exactly (one per window and
    channel sent, minus cache hits); nothing is sent. ``paths``: one file or several.
    With a cache every window is read and encoded to look it up; without, only headers.

    >>> import tempfile, pathlib
    >>> from samaudio_data import Client, audio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "hour.wav"
    >>> with audio.BlockWriter(path, 8000, channels=1) as w:
    ...     w.write(np.zeros(3600 * 8000, dtype=np.float32))
    >>> print(Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=False
    ...              ).estimate_file(path, "speech"))
    200 calls to pay for, 0 already cached: about $12.40 at $0.062 per call
    """
    description, params, channels = parts.request(description, params)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    upload_format = parts.options.upload.upload_format

    def count(path: Path) -> Counts:
        info, plan = _plan(parts.options.chunking, path)
        if parts.caller.cache is None:  # nothing can be cached: count, read nothing
            return Counts(calls=len(plan) * (info.channels if channels == "each" else 1))
        total = Counts()
        for a, b in plan.windows:
            job = window_job(
                audio.read_window(path, a, b),
                info.sr,
                description,
                params,
                channels=channels,
                upload_format=upload_format,
            )
            total += parts.caller.count(job)
        return total

    tally = Tally(parts.options.price_per_call)
    for row, path in enumerate(paths):
        tally.add(row, functools.partial(count, Path(path)))
    return tally.result()


def _outputs(src: Path, description: str, out_path, residual_path) -> tuple[Path, Path | None]:
    """Where the target and the residual (or None) go; never over the input or each other."""
    out = Path(out_path) if out_path is not None else audio.output_path(src, description)
    res = None
    if residual_path is True:
        res = audio.output_path(src, description, kind="residual")
    elif residual_path not in (None, False):
        res = Path(residual_path)
    for target in (out, res):
        if target is not None and target.exists() and os.path.samefile(target, src):
            raise errors.InvalidRequestError(
                f"the output {str(target)!r} is the input file; choose another path (the "
                "input is read while the output is written)."
            )
    if res is not None and res.resolve() == out.resolve():
        raise errors.InvalidRequestError(
            f"the residual and the isolated sound would both go to {str(out)!r}; give "
            "residual_path= another name."
        )
    for target in (out, res):
        if target is not None:
            _check_writable(target)
    return out, res


def _check_writable(target: Path) -> None:
    """Refuse, before anything is sent, an output that could not be written at the end."""
    if target.is_dir():
        raise errors.InvalidRequestError(
            f"the output {str(target)!r} is a directory; give a file name (e.g. "
            f"{str(target / 'out.wav')!r}). Nothing was sent."
        )
    if target.exists() and not target.is_file():
        raise errors.InvalidRequestError(
            f"the output {str(target)!r} exists and is not a regular file; choose another "
            "path. Nothing was sent."
        )
    parent = target.parent if str(target.parent) else Path(".")
    try:  # the writer creates a temporary file beside the target, then renames it
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{target.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise errors.InvalidRequestError(
            f"cannot write the output {str(target)!r}: {exc.strerror or exc} in "
            f"{str(parent)!r}. Choose a writable place. Nothing was sent."
        ) from exc


def _plan(chunking: Chunking, path: Path) -> tuple[Any, audio.ChunkPlan]:
    """The file's header and its chunk plan; typed errors for what cannot be sent."""
    info = audio.audio_file_info(path)
    audio.check_sample_rate(info.sr)
    if info.frames < 1:
        raise errors.InvalidAudioError(f"{str(path)!r} holds no samples; nothing to isolate.")
    if info.channels > audio.MAX_CHANNELS:
        raise errors.InvalidAudioError(
            f"{str(path)!r} has {info.channels} channels, more than the "
            f"{audio.MAX_CHANNELS} supported."
        )
    if chunking.max_seconds is not None and info.seconds > chunking.max_seconds:
        raise errors.InvalidAudioError(
            f"{str(path)!r} is {info.seconds:.1f} s long, over max_seconds="
            f"{chunking.max_seconds:g}; raise or unset max_seconds= on the Client (long files "
            "are sent in windows of chunk_seconds)."
        )
    return info, audio.plan_chunks(
        info.frames, info.sr, chunking.chunk_seconds, chunking.overlap_seconds
    )


def _release_memory() -> None:
    """Give freed memory back to the operating system (glibc only; elsewhere a no-op).

    Each worker thread allocates a window's worth of arrays in its own glibc arena, which
    keeps the freed pages: without this, resident memory grows by tens of MB per thread.
    """
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None  # libc's malloc_trim, or False where there is none


def _residual(path: Path, start: int, target: np.ndarray, each: bool) -> np.ndarray:
    """The input minus the joined target over ``[start, start + len)``, as in memory."""
    mix = audio.to_float(audio.read_window(path, start, start + target.shape[-1]))
    ref = mix if each else audio.mix_to_mono(mix)
    return (ref - target).astype(np.float32)


def _located(
    exc: errors.SamAudioError, path: Path, plan: audio.ChunkPlan, i: int
) -> errors.SamAudioError:
    """The same error, its message saying which window of which file failed."""
    a, b = plan.windows[i]
    located = copy.copy(exc)
    located.message = (
        f"{path.name}, window {i + 1} of {len(plan)} ({a / plan.sr:.1f}-"
        f"{b / plan.sr:.1f} s): {exc.message}"
    )
    located.args = (located.message,)
    return located
