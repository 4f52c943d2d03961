"""The signals of the quality triage, measured from the mix and the answer alone.

All run on a mono copy at 16 kHz at most (soxr's low-quality resampler: mix and answer go
through the same filter). The weight-free ones come from one short-time Fourier transform of
both signals (32 ms frames side by side): the answer's and the rest's levels, what the answer
lacks of the mix at its best gain (``difference_db``, below 90 % of the band, where every
resampler is exact enough), and the share of the answer's energy in cells where it exceeds
the mix (``excess``). For speech descriptions silero-vad (:mod:`._vad`) listens to the mix,
the answer and what the answer left out, in one batch. :mod:`._quality` turns them into a
verdict; the thresholds live here because the measurement skips what they make moot.

Example
-------
>>> import numpy as np
>>> tone = 0.1 * np.sin(np.arange(16000) * 0.3)
>>> s = measure(tone, 0.5 * tone, 16000, "a flute")
>>> round(s["target_db"], 1), s["difference_db"] < -60, s["excess"]
(-6.0, True, 0.0)
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import _vad

EMPTY_DB = -30.0
"""An answer below this (energy against the mix, dB) is empty."""
UNCHANGED_DB = -35.0
"""What the answer lacks of the mix at its best gain below this (dB of the mix): unchanged."""
EXCESS_CELL_DB = 6.0
"""A spectrogram cell where the answer exceeds the mix by this much holds invented sound."""
EXCESS_MAX = 0.1
"""Share of the answer's energy in such cells above which the answer is ``invented``."""
SPEECH_MIX_MIN = 0.2
"""A mix with fewer speech frames than this share holds no speech."""
SIGNALS = (
    "target_db",
    "residual_db",
    "difference_db",
    "excess",
    "speech_mix",
    "speech_answer",
    "speech_residual",
)
"""The names of :attr:`Verdict.signals`."""
SPEECH_ANSWER_MIN = 0.2
"""An answer with fewer speech frames than this share (of its own audible frames) is not
speech."""
ANALYSIS_SR = 16000
N_FFT = HOP = 512  # 32 ms frames at 16 kHz, side by side
SPEECH_WORDS = frozenset(
    "speech speak speaks speaking speaker speakers spoken talk talks talking voice voices "
    "vocal vocals singing sing sings singer singers sung narration narrator narrating "
    "conversation dialogue dialog words said saying says announcer podcast lecture "
    "whisper whispering shouting".split()
)


def is_speech_description(description: str) -> bool:
    """Whether the description names speech or singing (the speech detector is used then).

    >>> is_speech_description("a man speaking"), is_speech_description("Vocals")
    (True, True)
    >>> is_speech_description("dog barking")
    False
    """
    return bool(SPEECH_WORDS & set(re.findall(r"[a-z]+", str(description).lower())))


def _mono16(y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Mono float32 at most 16 kHz. The analysis resampler is soxr's low-quality one: mix and
    answer go through the same filter, and its wider transition band lies in the top 10 %
    of the band, which the level-free comparison leaves out anyway."""
    x = np.asarray(y, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if sr > ANALYSIS_SR:
        import soxr

        return soxr.resample(x, int(sr), ANALYSIS_SR, quality="LQ"), ANALYSIS_SR
    return x, int(sr)


def _spectra(*signals: np.ndarray) -> np.ndarray:
    """Short-time spectra (signals x frames x bins, complex64) of equally long signals."""
    x = np.stack([np.asarray(s, np.float32) for s in signals])
    n = max(1, x.shape[-1] // HOP)
    if x.shape[-1] < n * N_FFT:
        x = np.pad(x, ((0, 0), (0, n * N_FFT - x.shape[-1])))
    frames = x[:, : n * N_FFT].reshape(len(signals), n, N_FFT) * _window()
    return np.fft.rfft(frames, axis=-1).astype(np.complex64)


def _smoothed_power(spec: np.ndarray) -> np.ndarray:
    """Power of each cell, smoothed by a 3 x 3 box over time and frequency: a cell where the
    answer's and the rest's phases happen to cancel in the mix is not mistaken for sound the
    mix lacks."""
    p = spec.real**2 + spec.imag**2
    q = np.pad(p, ((0, 0), (1, 1), (0, 0)), mode="edge")
    p = q[:, :-2] + q[:, 1:-1] + q[:, 2:]
    q = np.pad(p, ((0, 0), (0, 0), (1, 1)), mode="edge")
    return q[:, :, :-2] + q[:, :, 1:-1] + q[:, :, 2:]


def _difference_db(spec: np.ndarray) -> float:
    """What the answer (``spec[1]``) lacks of the mix (``spec[0]``) at its best gain, in dB
    of the mix, below 90 % of the band: the top of the band is where resamplers (the round
    trip to the model's 48 kHz and back) lose a little of any signal."""
    keep = int(spec.shape[-1] * 0.9)
    m, a = spec[0, :, :keep], spec[1, :, :keep]
    e_m = float(np.sum(m.real**2 + m.imag**2, dtype=np.float64))
    e_a = float(np.sum(a.real**2 + a.imag**2, dtype=np.float64))
    if e_a <= 0.0:
        return 0.0
    g = float(np.sum(m.real * a.real + m.imag * a.imag, dtype=np.float64)) / e_a
    rest = m - np.float32(g) * a
    return _db(float(np.sum(rest.real**2 + rest.imag**2, dtype=np.float64)), e_m)


_WINDOW: list[np.ndarray] = []


def _window() -> np.ndarray:
    if not _WINDOW:
        _WINDOW.append(np.hanning(N_FFT).astype(np.float32))
    return _WINDOW[0]


def excess_share(mix: np.ndarray, answer: np.ndarray) -> float:
    """Share of ``answer``'s energy in spectrogram cells where it exceeds ``mix`` by
    :data:`EXCESS_CELL_DB` or more (both mono, same rate and length).

    >>> t = np.sin(np.arange(8000) * 0.3)
    >>> excess_share(t, 0.5 * t), round(excess_share(0 * t + 1e-3, t), 2)
    (0.0, 1.0)
    """
    return _excess(_smoothed_power(_spectra(mix, answer)))


def _excess(power: np.ndarray) -> float:
    pm, pa = power
    total = float(pa.sum(dtype=np.float64))
    if total <= 0.0:
        return 0.0
    return float(pa[pa > pm * 10 ** (EXCESS_CELL_DB / 10)].sum(dtype=np.float64) / total)


def _db(num: float, den: float) -> float:
    if num <= 0.0 or den <= 0.0:
        return -120.0
    return max(-120.0, 10.0 * math.log10(num / den))


def _speech_share(p: np.ndarray, y: np.ndarray | None = None) -> float:
    """Share of frames that are speech; with ``y`` (at the detector's rate), of its audible
    frames only (within 40 dB of its loudest)."""
    if p.size == 0:
        return 0.0
    speech = p >= _vad.SPEECH_PROBABILITY
    if y is None:
        return float(speech.mean())
    frames = np.asarray(y[: p.size * _vad.VAD_FRAME], float).reshape(p.size, -1)
    power = np.mean(frames**2, axis=1)
    audible = power > max(power.max() * 1e-4, 1e-10)
    return float(speech[audible].mean()) if audible.any() else 0.0


def measure(mix: np.ndarray, answer: np.ndarray, sr: int, description: str) -> dict[str, float]:
    """The signals of one clip (or window); see the module docstring.

    >>> s = measure(np.ones(1600) * 0.1, np.ones(1600) * 0.05, 16000, "hum")
    >>> round(s["target_db"], 1), s["difference_db"], s["excess"], math.isnan(s["speech_mix"])
    (-6.0, -120.0, 0.0, True)
    """
    m, rate = _mono16(mix, sr)
    a, _ = _mono16(answer, sr)
    e_mix, e_ans = float(np.sum(m**2)), float(np.sum(a**2))
    spec = _spectra(m, a)
    sig = {
        "target_db": _db(e_ans, e_mix),
        "residual_db": _db(float(np.sum((m - a) ** 2)), e_mix),
        "difference_db": _difference_db(spec),
        "excess": _excess(_smoothed_power(spec)),
        "speech_answer": math.nan,
        "speech_mix": math.nan,
        "speech_residual": math.nan,
    }
    if not (is_speech_description(description) and _vad.speech_detector() is not None):
        return sig
    if sig["target_db"] <= EMPTY_DB or sig["difference_db"] <= UNCHANGED_DB:
        sig["speech_mix"] = _speech_share(_vad.speech_probabilities(m, rate)[0])
        return sig
    # the mix, the answer and what it lacks of the mix (at its best level) share each
    # inference of the detector
    gain = float(np.dot(m, a)) / e_ans
    three = np.stack([m, a, m - np.float32(gain) * a])
    if rate != _vad.VAD_SR:
        import soxr

        three = soxr.resample(three.T, rate, _vad.VAD_SR, quality="LQ").T
    p = _vad.speech_probabilities(three, _vad.VAD_SR)
    sig["speech_mix"] = _speech_share(p[0])
    sig["speech_answer"] = _speech_share(p[1], three[1])
    if (
        sig["speech_mix"] >= SPEECH_MIX_MIN
        and sig["speech_answer"] >= SPEECH_ANSWER_MIN
        and sig["speech_answer"] < sig["speech_mix"] + 0.05
    ):
        # less speech in the answer than in the mix: is the speech in what was left out?
        sig["speech_residual"] = _speech_share(p[2], three[2])
    return sig
