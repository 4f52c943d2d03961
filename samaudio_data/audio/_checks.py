"""Validating audio before anything is sent: rate, shape, dtype, finiteness, length."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidAudioError

MODEL_SR = 48000
"""The model works at 48 kHz mono; uploads never exceed this rate."""

MIN_SR = 8000
MAX_SR = 192000
MAX_CHANNELS = 32
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_float(y: np.ndarray) -> np.ndarray:
    """Return ``y`` as float64, scaling integer PCM to [-1, 1).

    >>> to_float(np.array([0, 16384, -32768], dtype=np.int16)).tolist()
    [0.0, 0.5, -1.0]
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":
        return y.astype(np.float64, copy=False)
    if y.dtype.kind == "i":
        return y.astype(np.float64) / float(2 ** (8 * y.dtype.itemsize - 1))
    if y.dtype.kind == "u":  # unsigned PCM (8-bit WAV): centred on 2**(bits-1)
        half = float(2 ** (8 * y.dtype.itemsize - 1))
        return (y.astype(np.float64) - half) / half
    raise InvalidAudioError(
        f"audio has dtype {y.dtype}; pass float32/float64 or integer PCM samples."
    )


def check_sample_rate(sr) -> int:
    """Validate a sample rate (8 kHz to 192 kHz) and return it as int.

    >>> check_sample_rate(44100.0)
    44100
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)):
        raise InvalidAudioError(f"sample rate must be a number of Hz, got {sr!r}.")
    if not float(sr).is_integer():
        raise InvalidAudioError(f"sample rate must be a whole number of Hz, got {sr!r}.")
    sr = int(sr)
    if not MIN_SR <= sr <= MAX_SR:
        raise InvalidAudioError(
            f"sample rate {sr} Hz is outside the supported {MIN_SR}..{MAX_SR} Hz; "
            "resample first (librosa.resample)."
        )
    return sr


def check_audio(y, sr, *, max_seconds: float | None = None) -> np.ndarray:
    """Validate audio and return it as float64 ``(channels, n)``.

    Raises :class:`~samaudio_data.errors.InvalidAudioError` for empty, non-finite,
    transposed-looking or too long audio, before anything is sent.

    >>> check_audio(np.ones(16000, dtype=np.float32) * 0.1, 16000).shape
    (1, 16000)
    """
    sr = check_sample_rate(sr)
    if y is None:
        raise InvalidAudioError("audio is None; pass a numpy array of samples.")
    arr = np.asarray(y)
    if arr.dtype == object or arr.dtype.kind not in "fiu":
        raise InvalidAudioError(f"audio must be a numeric numpy array, got dtype {arr.dtype}.")
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    elif arr.ndim == 2:
        c, n = arr.shape
        if c > n and n <= MAX_CHANNELS:
            raise InvalidAudioError(
                f"audio of shape {arr.shape} looks transposed: samples are (channels, n) as in "
                f"librosa, so pass y.T (shape {arr.shape[::-1]})."
            )
        if c > MAX_CHANNELS:
            raise InvalidAudioError(
                f"audio has {c} channels, more than the {MAX_CHANNELS} supported; "
                "pass (channels, n) with fewer channels."
            )
    else:
        raise InvalidAudioError(
            f"audio must be 1-D (n,) or 2-D (channels, n), got shape {arr.shape}."
        )
    if arr.shape[-1] == 0 or arr.shape[0] == 0:
        raise InvalidAudioError("audio is empty (0 samples); nothing to isolate.")
    out = to_float(arr)
    if not np.all(np.isfinite(out)):
        raise InvalidAudioError(
            "audio contains NaN or infinite samples; clean it (np.nan_to_num) first."
        )
    peak = float(np.max(np.abs(out)))
    if peak > _FLOAT32_MAX:
        raise InvalidAudioError(
            f"audio has samples of magnitude {peak:.3g}, beyond what float32 can hold "
            "(3.4e38): the result could only come back as inf. Scale it to about [-1, 1]."
        )
    seconds = out.shape[-1] / sr
    if max_seconds is not None and seconds > max_seconds:
        raise InvalidAudioError(
            f"audio is {seconds:.1f} s long, over the limit of {max_seconds:g} s; split it into "
            "shorter clips or raise max_seconds= on the Client."
        )
    return out


def mix_to_mono(y2d: np.ndarray) -> np.ndarray:
    """Average the channels of ``(channels, n)`` audio, as the model does.

    >>> mix_to_mono(np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [0.5, 0.5]
    """
    return y2d[0] if y2d.shape[0] == 1 else y2d.mean(axis=0)
