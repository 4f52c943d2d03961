"""The upload we send, and fitting the answer back to the input's rate, length and level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._align import estimate_lag, fit_length, resample, shift
from ._checks import MODEL_SR
from ._codec import encode_flac, encode_wav


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
