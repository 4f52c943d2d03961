"""Audio in and out: validation, the upload we send, and fitting the answer back to the input.

Arrays follow librosa's conventions: mono is ``(n,)``, multichannel is ``(channels, n)``.
Integer PCM is scaled to floats in [-1, 1) the way soundfile and librosa do.

The round trip is built so that a signal the endpoint returns unchanged comes back unchanged
(within 16-bit precision): the upload is mono, at most 48 kHz, 16-bit WAV, scaled down when it
would exceed full scale (and scaled back afterwards); the answer is resampled to the input's
rate, cut or padded to the input's length, and MP3 answers are re-aligned to undo codec delay.

Example
-------
>>> import numpy as np
>>> from samaudio_data import audio
>>> y = np.zeros((2, 44100), dtype=np.float32)
>>> y2d = audio.check_audio(y, 44100)
>>> audio.mix_to_mono(y2d).shape
(44100,)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import InvalidAudioError, ResponseDecodeError

MODEL_SR = 48000
"""The model works at 48 kHz mono; uploads never exceed this rate."""

MIN_SR = 8000
MAX_SR = 192000
MAX_CHANNELS = 32


# --- input validation ------------------------------------------------------------------

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
        f"audio has dtype {y.dtype}; pass float32/float64 or integer PCM samples.")


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
            "resample first (librosa.resample).")
    return sr


def check_audio(y, sr, *, max_seconds: Optional[float] = None) -> np.ndarray:
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
        raise InvalidAudioError(
            f"audio must be a numeric numpy array, got dtype {arr.dtype}.")
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    elif arr.ndim == 2:
        c, n = arr.shape
        if c > n and n <= MAX_CHANNELS:
            raise InvalidAudioError(
                f"audio of shape {arr.shape} looks transposed: samples are (channels, n) as in "
                f"librosa, so pass y.T (shape {arr.shape[::-1]}).")
        if c > MAX_CHANNELS:
            raise InvalidAudioError(
                f"audio has {c} channels, more than the {MAX_CHANNELS} supported; "
                "pass (channels, n) with fewer channels.")
    else:
        raise InvalidAudioError(
            f"audio must be 1-D (n,) or 2-D (channels, n), got shape {arr.shape}.")
    if arr.shape[-1] == 0 or arr.shape[0] == 0:
        raise InvalidAudioError("audio is empty (0 samples); nothing to isolate.")
    out = to_float(arr)
    if not np.all(np.isfinite(out)):
        raise InvalidAudioError(
            "audio contains NaN or infinite samples; clean it (np.nan_to_num) first.")
    seconds = out.shape[-1] / sr
    if max_seconds is not None and seconds > max_seconds:
        raise InvalidAudioError(
            f"audio is {seconds:.1f} s long, over the limit of {max_seconds:g} s; split it into "
            "shorter clips or raise max_seconds= on the Client.")
    return out


def mix_to_mono(y2d: np.ndarray) -> np.ndarray:
    """Average the channels of ``(channels, n)`` audio, as the model does.

    >>> mix_to_mono(np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [0.5, 0.5]
    """
    return y2d[0] if y2d.shape[0] == 1 else y2d.mean(axis=0)


# --- resampling and length -------------------------------------------------------------

def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis (soxr, high quality); a no-op at equal rates.

    >>> resample(np.zeros(44100), 44100, 48000).shape
    (48000,)
    """
    if int(orig_sr) == int(target_sr):
        return y
    import librosa  # deferred: importing librosa costs ~1 s

    return librosa.resample(np.ascontiguousarray(y), orig_sr=int(orig_sr),
                            target_sr=int(target_sr), res_type="soxr_hq", axis=-1)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad the last axis to exactly ``n`` samples.

    >>> fit_length(np.ones(5), 3).tolist(), fit_length(np.ones(2), 3).tolist()
    ([1.0, 1.0, 1.0], [1.0, 1.0, 0.0])
    """
    m = y.shape[-1]
    if m == n:
        return y
    if m > n:
        return y[..., :n]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n - m)]
    return np.pad(y, pad)


def estimate_lag(y: np.ndarray, ref: np.ndarray, max_lag: int) -> int:
    """Samples by which ``y`` lags ``ref`` (positive: ``y`` is late), within ``max_lag``.

    Returns 0 when there is no clear correlation (for example a silent ``y``).

    >>> ref = np.random.default_rng(0).standard_normal(4000)
    >>> estimate_lag(np.concatenate([np.zeros(100), ref])[:4000], ref, 500)
    100
    """
    n = min(len(y), len(ref))
    if n < 16 or max_lag <= 0:
        return 0
    a, b = y[:n], ref[:n]
    energy = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    if energy <= 1e-12:
        return 0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([xc[: max_lag + 1], xc[size - max_lag:]])
    best = int(np.argmax(vals))
    # accept only a clear peak: well correlated, and better than no shift at all
    if vals[best] < 0.2 * energy or vals[best] <= xc[0] * 1.05:
        return 0
    return int(lags[best])


def shift(y: np.ndarray, lag: int) -> np.ndarray:
    """Move ``y`` earlier by ``lag`` samples (later if negative), zero-filling the gap."""
    if lag == 0:
        return y
    out = np.zeros_like(y)
    if lag > 0:
        out[..., : y.shape[-1] - lag] = y[..., lag:]
    else:
        out[..., -lag:] = y[..., : y.shape[-1] + lag]
    return out


# --- encoding and decoding -------------------------------------------------------------

def encode_wav(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    """Encode float audio (``(n,)`` or ``(channels, n)``) as WAV bytes.

    >>> encode_wav(np.zeros(10), 16000)[:4]
    b'RIFF'
    """
    return _encode(y, sr, "WAV", subtype)


def encode_flac(y: np.ndarray, sr: int) -> bytes:
    """Encode float audio as 16-bit FLAC bytes (lossless, about half the size of WAV)."""
    return _encode(y, sr, "FLAC", "PCM_16")


def encode_mp3(y: np.ndarray, sr: int) -> bytes:
    """Encode float audio as MP3 bytes.

    >>> encode_mp3(np.zeros(4800), 48000)[:1]
    b'\\xff'
    """
    return _encode(y, sr, "MP3", None)


def _encode(y: np.ndarray, sr: int, fmt: str, subtype: Optional[str]) -> bytes:
    import soundfile as sf

    data = np.asarray(y, dtype=np.float32)
    data = data.T if data.ndim == 2 else data  # soundfile wants (n, channels)
    buf = io.BytesIO()
    sf.write(buf, data, int(sr), format=fmt, subtype=subtype)
    return buf.getvalue()


def sniff_format(data: bytes) -> Optional[str]:
    """Name the audio container of ``data`` from its first bytes: wav, mp3, flac, ogg or None.

    >>> sniff_format(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt "), sniff_format(b"{}")
    ('wav', None)
    """
    head = data[:12]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    return None


def decode_audio(data: bytes) -> Tuple[np.ndarray, int]:
    """Decode WAV/MP3/FLAC/OGG bytes to float32 ``(channels, n)`` and the sample rate.

    Raises :class:`~samaudio_data.errors.ResponseDecodeError` with an excerpt when the bytes
    are not audio.

    >>> y, sr = decode_audio(encode_wav(np.zeros((2, 100)), 16000))
    >>> y.shape, sr
    ((2, 100), 16000)
    """
    import soundfile as sf

    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise ResponseDecodeError(
            f"could not decode {len(data)} bytes as audio ({exc}); starts with {excerpt(data)}"
        ) from None
    if y.shape[0] == 0:
        raise ResponseDecodeError(f"the answer decodes to 0 samples; starts with {excerpt(data)}")
    return np.ascontiguousarray(y.T), int(sr)


def excerpt(data: bytes, limit: int = 80) -> str:
    """A short printable excerpt of a body, for error messages."""
    text = data[:limit].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else "." for ch in text)
    return repr(text + ("..." if len(data) > limit else ""))


# --- the upload and fitting the answer back --------------------------------------------

@dataclass(frozen=True)
class Upload:
    """The audio we send: encoded bytes plus what is needed to undo our changes."""

    data: bytes          # WAV (or FLAC) file bytes
    sr: int              # sample rate of the upload
    gain: float          # the upload was divided by this to stay within full scale
    mono: np.ndarray     # the mono mix at the input's rate (reference for residual and lag)


def make_upload(mono: np.ndarray, sr: int, *, fmt: str = "wav") -> Upload:
    """Build the smallest faithful upload of a mono mix: at most 48 kHz, 16-bit, never clipped.

    >>> up = make_upload(np.full(96000, 2.0), 96000)
    >>> up.sr, up.gain
    (48000, 2.0)
    """
    send_sr = min(int(sr), MODEL_SR)
    y = resample(mono, sr, send_sr)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    gain = peak if peak > 1.0 else 1.0
    if gain != 1.0:
        y = y / gain
    data = encode_flac(y, send_sr) if fmt == "flac" else encode_wav(y, send_sr)
    return Upload(data=data, sr=send_sr, gain=gain, mono=mono)


def fit_answer(y: np.ndarray, answer_sr: int, *, sr: int, n: int, gain: float = 1.0,
               reference: Optional[np.ndarray] = None, realign: bool = False) -> np.ndarray:
    """Bring a decoded answer back to the input: mono, input rate, input length and level.

    ``realign`` (for MP3 answers) removes codec delay by correlating with ``reference``,
    the mono mix at the input rate.

    >>> fit_answer(np.ones((1, 48000 + 1920)), 48000, sr=16000, n=16000).shape
    (16000,)
    """
    mono = y.mean(axis=0) if y.ndim == 2 else y
    out = resample(mono.astype(np.float64, copy=False), answer_sr, sr)
    if realign and reference is not None:
        out = shift(fit_length(out, max(n, out.shape[-1])),
                    estimate_lag(out, reference, max_lag=int(0.1 * sr)))
    out = fit_length(out, n)
    if gain != 1.0:
        out = out * gain
    return out.astype(np.float32)
