"""The upload we send, and fitting the answer back to the input's rate, length and level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import IncompleteResponseError
from ._align import estimate_lag, fit_length, resample, shift
from ._checks import MODEL_SR
from ._codec import encode_flac, encode_wav


@dataclass(frozen=True)
class Upload:
    """The audio we send: encoded bytes plus what is needed to undo our changes."""

    data: bytes  # WAV (or FLAC) file bytes
    sr: int  # sample rate of the upload
    gain: float  # the upload was divided by this to stay within full scale
    mono: np.ndarray  # the mono mix at the input's rate (reference for residual and lag)
    frames: int = 0  # samples in the upload, at ``sr``: what an answer must cover


def make_upload(mono: np.ndarray, sr: int, *, fmt: str = "wav") -> Upload:
    """Build the smallest faithful upload of a mono mix: at most 48 kHz, 16-bit, never clipped.

    >>> make_upload(np.zeros(96000), 96000).sr           # never above the model's 48 kHz
    48000
    >>> make_upload(np.full(48000, 2.0), 48000).gain     # scaled down, never clipped
    2.0
    """
    send_sr = min(int(sr), MODEL_SR)
    y = resample(mono, sr, send_sr)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    gain = peak if peak > 1.0 else 1.0
    if gain != 1.0:
        y = y / gain
    data = encode_flac(y, send_sr) if fmt == "flac" else encode_wav(y, send_sr)
    return Upload(data=data, sr=send_sr, gain=gain, mono=mono, frames=int(y.shape[-1]))


# An answer must cover the input. The model pads to whole 1920-sample frames at 48 kHz, so a
# faithful answer is at most a frame or two longer; lossy codecs add their own delay/padding.
FRAME_SECONDS = 1920 / MODEL_SR
SHORT_TOLERANCE = {"lossless": 0.001, "lossy": 0.06}  # seconds missing at most
LONG_TOLERANCE = {"lossless": 2 * FRAME_SECONDS + 0.01, "lossy": 2 * FRAME_SECONDS + 0.12}


def check_covers(
    answer_samples: int, answer_sr: int, n: int, sr: int, *, lossy: bool = False
) -> None:
    """Raise :class:`~samaudio_data.errors.IncompleteResponseError` unless an answer of
    ``answer_samples`` at ``answer_sr`` covers an input of ``n`` samples at ``sr``.

    >>> check_covers(48000 + 1920, 48000, 16000, 16000)       # padded to a whole frame: fine
    >>> check_covers(24000, 48000, 16000, 16000)
    Traceback (most recent call last):
    ...
    samaudio_data.errors.IncompleteResponseError: the answer is 0.500 s long for a 1.000 s
    input: it does not cover the input (the endpoint may have cut it short).
    """
    kind = "lossy" if lossy else "lossless"
    got, want = answer_samples / float(answer_sr), n / float(sr)
    if got < want - SHORT_TOLERANCE[kind] or got > want + LONG_TOLERANCE[kind]:
        what = (
            "does not cover the input (the endpoint may have cut it short)"
            if got < want
            else "is longer than the model's padding allows (is it another clip's answer?)"
        )
        raise IncompleteResponseError(
            f"the answer is {got:.3f} s long for a {want:.3f} s input: it {what}."
        )


def fit_answer(
    y: np.ndarray,
    answer_sr: int,
    *,
    sr: int,
    n: int,
    gain: float = 1.0,
    reference: np.ndarray | None = None,
    realign: bool = False,
) -> np.ndarray:
    """Bring a decoded answer back to the input: mono, input rate, input length and level.

    The answer must cover the input (:func:`check_covers`): one that is cut short or far
    too long is an :class:`~samaudio_data.errors.IncompleteResponseError`, never padded.
    ``realign`` (for MP3 answers) removes codec delay by correlating with ``reference``,
    the mono mix at the input rate.

    >>> fit_answer(np.ones((1, 48000 + 1920)), 48000, sr=16000, n=16000).shape
    (16000,)
    """
    mono = y.mean(axis=0) if y.ndim == 2 else y
    check_covers(mono.shape[-1], answer_sr, n, sr, lossy=realign)
    out = resample(mono.astype(np.float64, copy=False), answer_sr, sr)
    if realign and reference is not None:
        out = shift(
            fit_length(out, max(n, out.shape[-1])),
            estimate_lag(out, reference, max_lag=int(0.1 * sr)),
        )
    out = fit_length(out, n)
    if gain != 1.0:
        out = out * gain
    return out.astype(np.float32)
