"""Long audio files in blocks: read a window, write block by block, never the whole file.

Reading opens the file for each window (``seek`` + ``read``), so windows can be read from
several threads at once and nothing but the window is held in memory. Writing goes to a
temporary file next to the target, renamed into place on :meth:`BlockWriter.close`, so an
interrupted run never leaves a half-written file under the final name.

Output formats, chosen by extension:

* ``.wav``: 32-bit float by default, so nothing is clipped (a target can exceed full scale).
  A RIFF WAV cannot exceed 4 GiB; when ``frames`` says the result will be larger, the file is
  written as RF64 (same extension, read by soundfile/libsndfile, ffmpeg, sox, Audacity). Without
  ``frames``, a write that would pass 4 GiB is refused with a message instead of producing a
  broken file. (2 hours of 48 kHz stereo float is 2.8 GB: plain WAV.)
* ``.flac``: 24-bit integer, about half the size; FLAC has no float samples, so values beyond
  full scale are clipped and counted in :attr:`BlockWriter.clipped`.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "talk.wav"
>>> with BlockWriter(path, 8000, channels=2) as w:
...     for _ in range(3):
...         w.write(np.full((2, 8000), 0.25, dtype=np.float32))
>>> info = audio_file_info(path)
>>> info.sr, info.frames, info.channels
(8000, 24000, 2)
>>> read_window(path, 7990, 8010).shape
(2, 20)
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidAudioError, InvalidRequestError
from ._codec import fix_float_wav_header

PathLike = str | os.PathLike

WAV_LIMIT = 2**32 - 1 - 4096
"""Largest data size (bytes) written as plain RIFF WAV; beyond it RF64 is needed."""

_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}
_BYTES = {"FLOAT": 4, "DOUBLE": 8, "PCM_32": 4, "PCM_24": 3, "PCM_16": 2, "PCM_U8": 1, "PCM_S8": 1}


@dataclass(frozen=True)
class AudioFileInfo:
    """What a file holds, read from its header: rate, length in frames, channel count."""

    path: Path
    sr: int
    frames: int
    channels: int
    format: str
    subtype: str

    @property
    def seconds(self) -> float:
        """Duration in seconds.

        >>> AudioFileInfo(Path("a.wav"), 8000, 12000, 1, "WAV", "FLOAT").seconds
        1.5
        """
        return self.frames / self.sr


def audio_file_info(path: PathLike) -> AudioFileInfo:
    """Read a file's sample rate, frame count and channels from its header, not its samples.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.flac"
    >>> with BlockWriter(p, 16000, channels=1) as w: w.write(np.zeros(16000))
    >>> i = audio_file_info(p); (i.sr, i.frames, i.channels, i.format, i.subtype)
    (16000, 16000, 1, 'FLAC', 'PCM_24')
    """
    import soundfile as sf

    where = Path(path)
    if where.is_dir():
        raise InvalidAudioError(
            f"{str(path)!r} is a folder, not an audio file: pass one file (for a folder of "
            f"clips: samaudio-data map {str(path)} --description ... --out DIR)."
        )
    if not where.exists():
        raise InvalidAudioError(f"no file at {str(path)!r}: check the path.")
    if where.is_file() and where.stat().st_size == 0:
        raise InvalidAudioError(f"{str(path)!r} is empty (0 bytes): it holds no audio.")
    try:
        info = sf.info(str(path))
    except (OSError, RuntimeError) as exc:  # sf.LibsndfileError is a RuntimeError
        raise InvalidAudioError(
            f"cannot read audio file {str(path)!r}: {_why(exc)}. Check the file, or convert "
            "it to WAV or FLAC (ffmpeg -i in.ext out.flac)."
        ) from exc
    return AudioFileInfo(
        path=Path(path),
        sr=int(info.samplerate),
        frames=int(info.frames),
        channels=int(info.channels),
        format=info.format,
        subtype=info.subtype,
    )


def read_window(path: PathLike, start: int, stop: int) -> np.ndarray:
    """Read samples ``[start, stop)`` of a file as float32 ``(channels, stop - start)``.

    Only that window is read (seek, then read); safe to call from several threads.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ramp.wav"
    >>> with BlockWriter(p, 8000, channels=1) as w: w.write(np.arange(100) / 100)
    >>> read_window(p, 10, 13)
    array([[0.1 , 0.11, 0.12]], dtype=float32)
    """
    import soundfile as sf

    start, stop = int(start), int(stop)
    try:
        with sf.SoundFile(str(path)) as f:
            if not 0 <= start <= stop <= f.frames:
                raise InvalidRequestError(
                    f"window [{start}, {stop}) is outside the file's {f.frames} frames; "
                    "plan windows with plan_chunks(info.frames, ...)."
                )
            f.seek(start)
            block = f.read(stop - start, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise InvalidAudioError(
            f"cannot read frames [{start}, {stop}) of {str(path)!r}: {_why(exc)}."
        ) from exc
    if block.shape[0] != stop - start:
        raise InvalidAudioError(
            f"{str(path)!r} ended at frame {start + block.shape[0]}, before {stop} promised by "
            "its header: the file is truncated. Re-export it (ffmpeg -i in.ext out.flac)."
        )
    return np.ascontiguousarray(block.T)


def iter_blocks(
    path: PathLike, block_frames: int = 1 << 18, start: int = 0
) -> Iterator[np.ndarray]:
    """Yield a file's samples in order as float32 ``(channels, <= block_frames)`` blocks.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.wav"
    >>> with BlockWriter(p, 8000, channels=2) as w: w.write(np.zeros((2, 2500)))
    >>> [b.shape for b in iter_blocks(p, 1000)]
    [(2, 1000), (2, 1000), (2, 500)]
    """
    import soundfile as sf

    if int(block_frames) < 1:
        raise InvalidRequestError(f"block_frames must be at least 1, got {block_frames!r}.")
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(int(start))
            while True:
                block = f.read(int(block_frames), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    return
                yield np.ascontiguousarray(block.T)
    except (OSError, RuntimeError) as exc:
        raise InvalidAudioError(f"cannot read {str(path)!r}: {_why(exc)}.") from exc


class BlockWriter:
    """Write ``(channels, n)`` float blocks to a WAV or FLAC file, one block at a time.

    The format follows the extension (``.wav``: 32-bit float, RF64 when ``frames`` says the data
    passes 4 GiB; ``.flac``: 24-bit). ``subtype`` overrides the sample format (e.g.
    ``"PCM_16"``). Samples go to a temporary file renamed to ``path`` by :meth:`close`; leaving
    a ``with`` block by an exception removes it. Mono may be written as ``(n,)``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.flac"
    >>> with BlockWriter(p, 8000, channels=1) as w:
    ...     w.write(np.array([0.5, 2.0, -3.0]))
    >>> w.frames_written, w.peak, w.clipped
    (3, 3.0, 2)
    """

    def __init__(
        self,
        path: PathLike,
        sr: int,
        channels: int,
        *,
        frames: int | None = None,
        subtype: str | None = None,
    ) -> None:
        import soundfile as sf

        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in _FORMATS:
            raise InvalidRequestError(
                f"cannot write {self.path.name!r}: output files end in .wav (32-bit float) or "
                ".flac (24-bit); choose one of those extensions."
            )
        fmt, default_subtype = _FORMATS[ext]
        self.subtype = (subtype or default_subtype).upper()
        self.channels, self.sr = int(channels), int(sr)
        if fmt == "FLAC" and self.channels > 8:
            raise InvalidRequestError(
                f"FLAC holds at most 8 channels, not {self.channels}; write a .wav instead."
            )
        size = None if frames is None else int(frames) * self.channels * _BYTES.get(self.subtype, 4)
        if fmt == "WAV" and size is not None and size > WAV_LIMIT:
            fmt = "RF64"
        if not sf.check_format(fmt, self.subtype):
            raise InvalidRequestError(
                f"{fmt} files cannot hold subtype {self.subtype!r}; leave subtype= unset, or "
                f"pick one of {sorted(sf.available_subtypes(fmt))}."
            )
        self.format = fmt
        self._float = self.subtype in ("FLOAT", "DOUBLE")
        self._limit = WAV_LIMIT if fmt == "WAV" else None
        self._bytes_per_frame = self.channels * _BYTES.get(self.subtype, 4)
        self.frames_written = 0
        self.peak = 0.0
        self.clipped = 0
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = sf.SoundFile(
                str(self._tmp),
                "w",
                samplerate=self.sr,
                channels=self.channels,
                format=fmt,
                subtype=self.subtype,
            )
        except (OSError, RuntimeError) as exc:
            raise InvalidRequestError(
                f"cannot create {str(self.path)!r} ({fmt}, {self.sr} Hz, {self.channels} "
                f"channels): {_why(exc)}."
            ) from exc

    def write(self, block: np.ndarray) -> None:
        """Append ``(channels, n)`` samples (or ``(n,)`` for mono) to the file.

        >>> import tempfile, pathlib
        >>> w = BlockWriter(pathlib.Path(tempfile.mkdtemp()) / "x.wav", 8000, channels=2)
        >>> w.write(np.zeros((2, 10))); w.write(np.zeros((2, 0))); _ = w.close(); w.frames_written
        10
        """
        arr = np.asarray(block)
        if arr.ndim == 1 and self.channels == 1:
            arr = arr[np.newaxis, :]
        if arr.ndim != 2 or arr.shape[0] != self.channels or arr.dtype.kind != "f":
            raise InvalidRequestError(
                f"blocks must be float arrays of shape ({self.channels}, n), got {arr.dtype} "
                f"of shape {arr.shape}."
            )
        if arr.shape[1] == 0:
            return
        if (
            self._limit is not None
            and (self.frames_written + arr.shape[1]) * self._bytes_per_frame > self._limit
        ):
            raise InvalidRequestError(
                f"{self.path.name!r} would pass the 4 GiB limit of a WAV file; pass "
                "frames= (the total length) so RF64 is used, or write a .flac."
            )
        peak = float(np.max(np.abs(arr)))
        self.peak = max(self.peak, peak)
        if not self._float and peak > 1.0:
            self.clipped += int(np.count_nonzero(np.abs(arr) > 1.0))
            arr = np.clip(arr, -1.0, 1.0)
        self._file.write(arr.T)
        self.frames_written += arr.shape[1]

    def close(self) -> Path:
        """Finish the file and move it to its final name; returns that path.

        >>> import tempfile, pathlib
        >>> w = BlockWriter(pathlib.Path(tempfile.mkdtemp()) / "y.wav", 8000, channels=1)
        >>> w.close().name
        'y.wav'
        """
        if not self._file.closed:
            self._file.close()
            if self.format == "WAV" and self.subtype == "FLOAT":
                fix_float_wav_header(self._tmp)  # sox reads it without a warning
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the temporary file; ``path`` is left untouched.

        >>> import tempfile, pathlib
        >>> w = BlockWriter(pathlib.Path(tempfile.mkdtemp()) / "z.wav", 8000, channels=1)
        >>> w.abort(); w.path.exists()
        False
        """
        if not self._file.closed:
            self._file.close()
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> BlockWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def output_path(
    input_path: PathLike, description: str, *, kind: str = "isolated", ext: str | None = None
) -> Path:
    """Name an output file next to the input, from the description: ``talk.isolated-speech.wav``.

    The description becomes a short, filesystem-safe slug (lowercase ASCII letters, digits
    and dashes). Distinct descriptions give distinct names: unless the description is
    already its slug's words (lowercase ASCII words and single spaces, short enough), eight
    hex digits of its hash follow the slug, so ``"Speech"``, ``"speech!"`` and two non-ASCII
    descriptions never overwrite each other's files. The extension is the input's when it is
    ``.wav`` or ``.flac``, else ``.wav``; pass ``ext=".flac"`` to choose.

    >>> output_path("/data/talk.wav", "speech single speaker").as_posix()
    '/data/talk.isolated-speech-single-speaker.wav'
    >>> output_path("show.mp3", "drums", kind="residual").name
    'show.residual-drums.wav'
    >>> output_path("a.wav", "音声").name, output_path("a.wav", "声").name
    ('a.isolated-e83d3ddc.wav', 'a.isolated-693e132f.wav')
    """
    src = Path(input_path)
    if ext is None:
        ext = src.suffix if src.suffix.lower() in _FORMATS else ".wav"
    elif ext.lower().lstrip(".") not in ("wav", "flac"):
        raise InvalidRequestError(f"ext must be '.wav' or '.flac', got {ext!r}.")
    ext = ext if ext.startswith(".") else "." + ext
    slug = _slug(description, 48)
    if slug.replace("-", " ") != str(description):  # lossy: the hash keeps names apart
        digest = hashlib.sha256(str(description).encode("utf-8", "surrogatepass")).hexdigest()
        slug = f"{slug}-{digest[:8]}".strip("-")
    tag = "-".join(part for part in (_slug(kind, 20) or "isolated", slug) if part)
    return src.with_name(f"{src.stem}.{tag}{ext}")


def _slug(text: str, limit: int) -> str:
    """Lowercase ASCII words joined by dashes, cut at a word boundary within ``limit``."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[: limit + 1].rsplit("-", 1)[0] if "-" in slug[: limit + 1] else slug[:limit]
    return slug.strip("-")


def _why(exc: BaseException) -> str:
    """An exception's message without a trailing period, to end our own sentence (and
    without soundfile's "Error opening 'path': ", as our sentence names the file)."""
    return re.sub(r"^Error opening .*?: (?=[A-Z])", "", str(exc)).rstrip(". ")
