"""Reading and writing the audio values of Hugging Face ``datasets`` columns.

Accepted values of an audio column:

- ``datasets`` 4.x/5.x decoded audio (a torchcodec ``AudioDecoder``): all channels at the
  decoder's rate, not the mono ``["array"]`` shortcut;
- 3.x-style dicts ``{"array": ..., "sampling_rate": ...}`` (``(n,)`` or ``(channels, n)``);
- undecoded values ``{"bytes": ..., "path": ...}`` from ``Audio(decode=False)``, read with
  soundfile (WAV, FLAC, MP3, OGG, ...) or, for what it cannot read, ``librosa.load``: no
  torch needed;
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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import errors
from ..audio import decode_audio, encode_wav
from ..errors import InvalidAudioError, ResponseDecodeError


def declared_dtype(features: Any, column: str) -> str | None:
    """The integer sample type a dataset declares for ``column``'s ``array`` (else None).

    >>> import datasets
    >>> f = datasets.Features({"audio": {"array": datasets.Sequence(datasets.Value("int16")),
    ...                                  "sampling_rate": datasets.Value("int32")}})
    >>> declared_dtype(f, "audio")
    'int16'
    """
    feature = (features or {}).get(column) if hasattr(features, "get") else None
    inner: Any = feature.get("array") if isinstance(feature, dict) else None
    while hasattr(inner, "feature"):  # Sequence / List / LargeList (3.x's Sequence has a
        inner = inner.feature  # dtype of its own, "list": look inside it)
    dtype = getattr(inner, "dtype", None)
    return dtype if isinstance(dtype, str) and dtype.startswith(("int", "uint")) else None


def read_value(value: Any, *, dtype: str | None = None) -> tuple[np.ndarray, int]:
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
        return np.ascontiguousarray(y, dtype=np.float32).reshape(-1, y.shape[-1]), int(
            samples.sample_rate
        )
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
                    "load the dataset with its files or keep the bytes."
                )
            with open(path, "rb") as fh:
                return _decode_bytes(fh.read(), path)
        raise InvalidAudioError("audio dict has neither 'array', 'bytes' nor 'path'.")
    raise InvalidAudioError(
        f"cannot read audio from a {type(value).__name__}; expected an Audio column value."
    )


def _samples(raw: Any, dtype: str | None) -> np.ndarray:
    """An ``array`` value as samples, integer widths resolved (see :func:`read_value`)."""
    y = np.asarray(raw)
    if y.dtype.kind not in "iu" or (isinstance(raw, np.ndarray) and y.dtype.itemsize < 8):
        return y  # floats, or integers whose width is known
    if dtype is None:
        held = "int64" if isinstance(raw, np.ndarray) else "Python ints"
        raise InvalidAudioError(
            f"this row's 'array' holds integers as {held}: their sample width (int16? "
            "int32?) is unknown, and read as 64-bit PCM they would be silence. Declare it: "
            "isolate(..., sample_dtype='int16'), or give the column float samples."
        )
    target = np.dtype(dtype)
    info = np.iinfo(target)
    if y.size and (y.min() < info.min or y.max() > info.max):
        raise InvalidAudioError(
            f"this row's samples do not fit the declared {dtype} (they reach "
            f"{int(y.min())}..{int(y.max())}); check sample_dtype= or the dataset's features."
        )
    return y.astype(target)


def _decode_bytes(data: bytes, path: Any) -> tuple[np.ndarray, int]:
    """Decode a file's bytes: soundfile first (WAV, FLAC, MP3, OGG, AIFF, ...), then
    ``librosa.load`` for what soundfile cannot read (through audioread and whatever decoder
    it finds, e.g. ffmpeg for M4A/AAC/WMA). No torch either way."""
    name = repr(os.path.basename(path)) if path else "this row's audio"
    if not data:
        raise InvalidAudioError(
            f"{name} is empty (0 bytes): it holds no audio; remove or replace the file."
        )
    try:
        return decode_audio(data)
    except ResponseDecodeError as exc:
        if "decodes to 0 samples" in exc.message:  # a valid header over no samples
            raise InvalidAudioError(
                f"{name} holds 0 samples: an empty recording; remove or replace the file."
            ) from None
        first = _soundfile_reason(exc)
    try:
        return _librosa_load(data, path)
    except Exception as exc:  # noqa: BLE001 - audioread and its backends raise many kinds
        second = (
            "no decoder for this format: audioread found no backend such as ffmpeg"
            if type(exc).__name__ == "NoBackendError"
            else _first_line(exc)
        )
    import importlib.util

    # where torchcodec is installed, datasets' own decoder (FFmpeg) is one more way out
    other = (
        ", or let datasets decode the column (Audio(decode=True), with torchcodec)"
        if importlib.util.find_spec("torchcodec") is not None
        else ""
    )
    raise InvalidAudioError(
        f"cannot read {name}: neither soundfile ({first}) nor librosa ({second}) decodes it "
        f"as audio; check the file, or convert it to WAV or FLAC{other}."
    ) from None


def _soundfile_reason(exc: ResponseDecodeError) -> str:
    cause = exc.__cause__
    text = str(cause) if cause is not None else exc.message
    return re.sub(r"^Error opening .*?: (?=[A-Z])", "", text.strip().splitlines()[0]).rstrip(". ")


def _librosa_load(data: bytes, path: Any) -> tuple[np.ndarray, int]:
    """``librosa.load`` at the file's own rate and channels, as ``(channels, n)``."""
    import tempfile
    import warnings

    import librosa

    with warnings.catch_warnings():  # "PySoundFile failed. Trying audioread instead."
        warnings.simplefilter("ignore")
        if path and os.path.isfile(path):
            y, sr = librosa.load(path, sr=None, mono=False)
        else:  # audioread reads files only
            with tempfile.NamedTemporaryFile(suffix=os.path.splitext(str(path or ""))[1]) as fh:
                fh.write(data)
                fh.flush()
                y, sr = librosa.load(fh.name, sr=None, mono=False)
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        raise ValueError("it decodes to 0 samples")
    return np.ascontiguousarray(y[np.newaxis] if y.ndim == 1 else y), int(sr)


def decoding_unavailable(column: str, exc: BaseException) -> InvalidAudioError | None:
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
    elif not (
        isinstance(exc, (RuntimeError, OSError)) and ("libtorchcodec" in text or "ffmpeg" in text)
    ):
        return None
    return InvalidAudioError(
        f"cannot decode the Audio column {column!r}: datasets decodes audio with torchcodec, "
        f"which does not work here ({type(exc).__name__}: {_first_line(exc)}). Either install "
        "the decoder: torch and a torchcodec built for it (CPU builds are enough, e.g. "
        "pip install torch==2.13.0 'torchcodec<0.14') plus FFmpeg's shared libraries "
        "(versions 4 to 8); or skip datasets' decoding, which samaudio_data does not need: "
        f"ds = ds.cast_column({column!r}, datasets.Audio(decode=False)) (read with "
        "soundfile: WAV, FLAC, MP3, OGG)."
    )


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


def dataset_rows(dataset, column: str, prompts: Any = None) -> Iterator[tuple[int, Any, Any]]:
    """``(row, value, columns)`` of every row: the audio column's value and the columns a
    map's :class:`~samaudio_data.hf._prompts.Prompts` read (all of them for a callable).

    A row whose value cannot even be read gives the error instead, so one broken file never
    stops a count. A template naming a missing column fails before the first row.

    >>> [(i, v, dict(r)) for i, v, r in dataset_rows([{"audio": None, "x": 1}], "audio")]
    [(0, None, {'audio': None, 'x': 1})]
    """
    names = getattr(dataset, "column_names", None)
    if column not in (names or [column]):
        raise errors.InvalidRequestError(
            f"the dataset has no column {column!r} (it has {dataset.column_names}); pass "
            "column= naming the audio column."
        )
    if prompts is not None and names:
        prompts.check_columns(names)
    if prompts is None or not names:
        needed = [column]
    elif prompts.needs_whole_row:
        needed = list(names)
    else:
        needed = list(dict.fromkeys([column] + prompts.columns))
    if (
        hasattr(dataset, "select_columns")
        and hasattr(dataset, "__getitem__")
        and hasattr(dataset, "__len__")
    ):
        only = dataset.select_columns(needed)
        for i in range(len(only)):
            try:
                row = only[i]
                value = row[column]
            except Exception as exc:  # noqa: BLE001 - reported per row
                unavailable = decoding_unavailable(column, exc)
                if unavailable is not None:  # no decoder at all: every row would fail
                    raise unavailable from exc
                value = errors.InvalidAudioError(
                    f"cannot decode this row's audio ({type(exc).__name__}: {exc})"
                )
                value.__cause__ = exc
                row = {}  # the row is unusable: its audio is its error
            yield i, value, row
    else:
        with audio_decoding(column):
            for i, row in enumerate(dataset):
                if i == 0 and prompts is not None and not names:
                    prompts.check_columns(list(row))
                yield i, row[column], row


class SharedClip:
    """One row's audio, decoded once by whichever of its ``uses`` (stems) comes first, and
    let go after the last one took it (``dtype``: as in :func:`read_value`).

    >>> clip = SharedClip({"array": np.zeros(8), "sampling_rate": 8000}, uses=2)
    >>> clip.read()[0].shape, clip.read()[1]
    ((1, 8), 8000)
    """

    def __init__(self, value: Any, uses: int, dtype: str | None = None) -> None:
        self._value, self._uses, self._dtype = value, uses, dtype
        self._lock = threading.Lock()
        self._read: Any = None

    def read(self) -> tuple[np.ndarray, int]:
        with self._lock:
            if self._read is None:
                try:
                    self._read = read_value(self._value, dtype=self._dtype)
                except Exception as exc:  # noqa: BLE001 - every stem of the row gets it
                    self._read = exc
            read = self._read
            self._uses -= 1
            if self._uses <= 0:
                self._value = self._read = None
        if isinstance(read, BaseException):
            raise read
        return read
