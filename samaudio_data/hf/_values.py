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
from typing import Any, Tuple

import numpy as np

from ..audio import decode_audio, encode_wav
from ..errors import InvalidAudioError, ResponseDecodeError


def read_value(value: Any) -> Tuple[np.ndarray, int]:
    """Decode one audio-column value to ``(channels, n)`` samples and its sample rate.

    Decoded audio comes back as float32; a 3.x-style ``{"array", "sampling_rate"}`` dict
    comes back as stored (integer PCM included), to be validated and scaled by
    :func:`samaudio_data.audio.check_audio` like any array given to the client.

    >>> read_value({"array": np.zeros(8), "sampling_rate": 8000})[0].shape
    (1, 8)
    """
    if value is None:
        raise InvalidAudioError("this row has no audio (the value is None).")
    if hasattr(value, "get_all_samples"):  # torchcodec AudioDecoder (datasets >= 4)
        samples = value.get_all_samples()
        y = samples.data.detach().cpu().numpy()
        return np.ascontiguousarray(y, dtype=np.float32).reshape(-1, y.shape[-1]), \
            int(samples.sample_rate)
    if isinstance(value, dict):
        if value.get("array") is not None:
            # samples and rate as stored: integer PCM is scaled and the rate validated by
            # the one path every caller shares (audio.check_audio, as in Client.isolate)
            y = np.asarray(value["array"])
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


def _decode_bytes(data: bytes, path: Any) -> Tuple[np.ndarray, int]:
    try:
        return decode_audio(data)
    except ResponseDecodeError:
        raise InvalidAudioError(
            f"cannot decode the audio of {path or 'this row'} without torch: soundfile reads "
            "WAV, FLAC, MP3 and OGG. Let datasets decode the column (Audio(decode=True), with "
            "torchcodec) or convert the files.") from None


def encode_value(y: np.ndarray, sr: int) -> dict:
    """An audio-column value for ``y`` (``(n,)`` or ``(channels, n)``): float WAV bytes.

    >>> encode_value(np.zeros(10), 8000)["bytes"][:4]
    b'RIFF'
    """
    return {"bytes": encode_wav(y, sr, subtype="FLOAT"), "path": None}
