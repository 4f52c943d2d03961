"""Reading and writing the audio values of Hugging Face ``datasets`` columns.

Accepted values of an audio column:

- ``datasets`` 4.x/5.x decoded audio (a torchcodec ``AudioDecoder``): all channels at the
  decoder's rate, not the mono ``["array"]`` shortcut;
- 3.x-style dicts ``{"array": ..., "sampling_rate": ...}`` (``(n,)`` or ``(channels, n)``);
- undecoded values ``{"bytes": ..., "path": ...}`` from ``Audio(decode=False)``, read with
  soundfile (WAV, FLAC, MP3, OGG; no torch needed);
- ``None``: a missing clip, reported as :class:`~samaudio_data.errors.InvalidAudioError`.

Results are written as ``{"bytes": <32-bit float WAV>, "path": None}``: lossless, readable
without torch, and castable to an ``Audio()`` column.

``datasets`` 4.0 and later decode ``Audio()`` columns with torchcodec, which needs torch and
FFmpeg's shared libraries; ``samaudio_data`` itself needs neither. Where they are missing,
``datasets`` fails when a row is read; :func:`audio_decoding` turns that failure into an
:class:`~samaudio_data.errors.InvalidAudioError` naming both ways out (install the decoder, or
``ds.cast_column(column, Audio(decode=False))``, which :func:`read_value` reads without torch).

Example
-------
>>> import numpy as np
>>> value = encode_value(np.zeros(160, dtype=np.float32), 16000)
>>> y, sr = read_value(value)
>>> y.shape, sr
((1, 160), 16000)
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Tuple

import numpy as np

from ..audio import decode_audio, encode_wav
from ..errors import InvalidAudioError, ResponseDecodeError


def declared_dtype(features: Any, column: str) -> Optional[str]:
    """The integer sample type a dataset declares for ``column``'s ``array`` (else None).

    >>> import datasets
    >>> f = datasets.Features({"audio": {"array": datasets.Sequence(datasets.Value("int16")),
    ...                                  "sampling_rate": datasets.Value("int32")}})
    >>> declared_dtype(f, "audio")
    'int16'
    """
    feature = (features or {}).get(column) if hasattr(features, "get") else None
    inner = feature.get("array") if isinstance(feature, dict) else None
    while inner is not None and not hasattr(inner, "dtype"):
        inner = getattr(inner, "feature", None)  # Sequence / List / LargeList
    dtype = getattr(inner, "dtype", None)
    return dtype if isinstance(dtype, str) and dtype.startswith(("int", "uint")) else None


def read_value(value: Any, *, dtype: Optional[str] = None) -> Tuple[np.ndarray, int]:
    """Decode one audio-column value to ``(channels, n)`` samples and its sample rate.

    Decoded audio comes back as float32; a 3.x-style ``{"array", "sampling_rate"}`` dict
    comes back as stored (integer PCM included), to be validated and scaled by
    :func:`samaudio_data.audio.check_audio` like any array given to the client. Integer
    samples that arrive as Python ints or int64 (``datasets`` hands an ``int16`` column's
    lists over that way) are read as ``dtype``, the column's declared type; without it they
    are refused: scaled as 64-bit integers they would be silence.

    >>> read_value({"array": np.zeros(8), "sampling_rate": 8000})[0].shape
    (1, 8)
    >>> read_value({"array": [1000, -1000], "sampling_rate": 8000}, dtype="int16")[0].dtype
    dtype('int16')
    """
    if value is None:
        raise InvalidAudioError("this row has no audio (the value is None).")
    if hasattr(value, "get_all_samples"):  # torchcodec AudioDecoder (datasets >= 4)
        try:
            samples = value.get_all_samples()
        except RuntimeError as exc:  # torchcodec could not decode this row's data
            raise InvalidAudioError(
                f"cannot decode the audio of this row ({_first_line(exc)}); check the file, "
                "or read the column with Audio(decode=False) to decode it with soundfile."
            ) from exc
        y = samples.data.detach().cpu().numpy()
        return np.ascontiguousarray(y, dtype=np.float32).reshape(-1, y.shape[-1]), \
            int(samples.sample_rate)
    if isinstance(value, dict):
        if value.get("array") is not None:
            # samples and rate as stored: integer PCM is scaled and the rate validated by
            # the one path every caller shares (audio.check_audio, as in Client.isolate)
            y = _samples(value["array"], dtype)
            if value.get("sampling_rate") is None:
                raise InvalidAudioError("audio dict has an 'array' but no 'sampling_rate'.")
            return (y[np.newaxis] if y.ndim == 1 else y), value["sampling_rate"]
        if value.get("bytes") is not None:
            return _decode_bytes(value["bytes"], value.get("path"))
        if value.get("path"):
            path = value["path"]
            if not os.path.isfile(path):
                raise InvalidAudioError(
                    f"audio path {path!r} does not exist here and the row has no bytes; "
                    "load the dataset with its files or keep the bytes.")
            with open(path, "rb") as fh:
                return _decode_bytes(fh.read(), path)
        raise InvalidAudioError("audio dict has neither 'array', 'bytes' nor 'path'.")
    raise InvalidAudioError(
        f"cannot read audio from a {type(value).__name__}; expected an Audio column value.")


def _samples(raw: Any, dtype: Optional[str]) -> np.ndarray:
    """An ``array`` value as samples, integer widths resolved (see :func:`read_value`)."""
    y = np.asarray(raw)
    if y.dtype.kind not in "iu" or (isinstance(raw, np.ndarray) and y.dtype.itemsize < 8):
        return y  # floats, or integers whose width is known
    if dtype is None:
        held = "int64" if isinstance(raw, np.ndarray) else "Python ints"
        raise InvalidAudioError(
            f"this row's 'array' holds integers as {held}: their sample width (int16? "
            "int32?) is unknown, and read as 64-bit PCM they would be silence. Declare it: "
            "isolate(..., sample_dtype='int16'), or give the column float samples.")
    target = np.dtype(dtype)
    info = np.iinfo(target)
    if y.size and (y.min() < info.min or y.max() > info.max):
        raise InvalidAudioError(
            f"this row's samples do not fit the declared {dtype} (they reach "
            f"{int(y.min())}..{int(y.max())}); check sample_dtype= or the dataset's features.")
    return y.astype(target)


def _decode_bytes(data: bytes, path: Any) -> Tuple[np.ndarray, int]:
    try:
        return decode_audio(data)
    except ResponseDecodeError:
        raise InvalidAudioError(
            f"cannot decode the audio of {path or 'this row'} without torch: soundfile reads "
            "WAV, FLAC, MP3 and OGG. Let datasets decode the column (Audio(decode=True), with "
            "torchcodec) or convert the files.") from None


def decoding_unavailable(column: str, exc: BaseException) -> Optional[InvalidAudioError]:
    """Our error for ``exc`` if it says that ``datasets`` cannot decode audio here, else None.

    ``datasets`` >= 4 raises ``ImportError`` without torchcodec (or torch), and torchcodec a
    ``RuntimeError`` ("Could not load libtorchcodec") without FFmpeg's shared libraries or
    beside a torch it was not built for.

    >>> err = decoding_unavailable("audio", ImportError(
    ...     "To support decoding audio data, please install 'torchcodec'."))
    >>> type(err).__name__, "Audio(decode=False)" in str(err)
    ('InvalidAudioError', True)
    >>> decoding_unavailable("audio", RuntimeError("something else")) is None
    True
    """
    text = str(exc).lower()
    if isinstance(exc, ImportError):
        missing = (exc.name or "").split(".")[0] in ("torch", "torchcodec")
        if not (missing or "torchcodec" in text):
            return None
    elif not (isinstance(exc, (RuntimeError, OSError))
              and ("libtorchcodec" in text or "ffmpeg" in text)):
        return None
    return InvalidAudioError(
        f"cannot decode the Audio column {column!r}: datasets decodes audio with torchcodec, "
        f"which does not work here ({type(exc).__name__}: {_first_line(exc)}). Either install "
        "the decoder: torch and a torchcodec built for it (CPU builds are enough, e.g. "
        "pip install torch==2.13.0 'torchcodec<0.14') plus FFmpeg's shared libraries "
        "(versions 4 to 8); or skip datasets' decoding, which samaudio_data does not need: "
        f"ds = ds.cast_column({column!r}, datasets.Audio(decode=False)) (read with "
        "soundfile: WAV, FLAC, MP3, OGG).")


@contextmanager
def audio_decoding(column: str) -> Iterator[None]:
    """Run a block that reads rows of ``column``; datasets' "cannot decode" becomes ours.

    Any other exception passes through unchanged.

    >>> try:
    ...     with audio_decoding("audio"):
    ...         raise ImportError("To support decoding audio data, please install 'torchcodec'.")
    ... except InvalidAudioError as exc:
    ...     print("torchcodec" in str(exc), "decode=False" in str(exc))
    True True
    """
    try:
        yield
    except (ImportError, RuntimeError, OSError) as exc:
        err = decoding_unavailable(column, exc)
        if err is None:
            raise
        raise err from exc


def read_column(examples: Any, column: str) -> Any:
    """``examples[column]`` for a ``map`` function, with :func:`audio_decoding`'s message.

    ``Dataset.map`` hands its function lazy rows and batches that decode a column when it is
    first read, so this is where decoding fails.

    >>> read_column({"audio": [None]}, "audio")
    [None]
    """
    with audio_decoding(column):
        return examples[column]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()  # torchcodec's goes on with tracebacks
    if not lines:
        return type(exc).__name__
    # torchcodec's C++ errors start "function, /path/file.cpp:123, "
    return re.sub(r"^\w+, \S+:\d+, ", "", lines[0]).split(". ")[0]


def encode_value(y: np.ndarray, sr: int) -> dict:
    """An audio-column value for ``y`` (``(n,)`` or ``(channels, n)``): float WAV bytes.

    >>> encode_value(np.zeros(10), 8000)["bytes"][:4]
    b'RIFF'
    """
    return {"bytes": encode_wav(y, sr, subtype="FLOAT"), "path": None}
