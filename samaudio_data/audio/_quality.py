"""Quality triage: one verdict per isolation, from the mix and the answer alone.

The model fails in known ways, and a failed isolation looks like a good one in the energy
columns. :func:`judge` compares the answer with the mix and gives a :class:`Verdict`: a
``flag`` (``""`` when the isolation looks right, else a reason code) and a ``quality`` in
[0, 1] (0.5 at a threshold, lower is more doubtful: sort by it to review the worst first).

==================  ===========================================================================
flag                meaning (the first rule that applies)
==================  ===========================================================================
``absent``          the input is silent (peak below -60 dBFS: answered locally, not sent), or,
                    for a speech description, the mix holds no speech and the answer is empty
                    or not speech: the sound is not in the clip
``empty``           the answer is (near) silence (below -30 dB of the mix) although the mix is
                    not silent; without speech detection this also covers ``absent``
``unchanged``       the answer is the mix at some level (what it lacks of the mix, at its best
                    gain and below 90 % of the band, is below -35 dB of the mix)
``invented``        the answer holds sound the mix does not: over 10 % of its energy lies in
                    spectrogram cells where it exceeds the mix by 6 dB or more, or (speech
                    descriptions) the answer is speech and the mix has none
``wrong_source``    (speech descriptions) the mix has speech, the answer hardly any, or less
                    than what it left out
==================  ===========================================================================

A detail may follow a colon: ``absent:silent_input``; ``:no_vad`` when a speech description
was judged without the speech detector (the extra ``samaudio-data[quality]`` is missing or
``$SAMAUDIO_VAD=off``); for a long clip, the seconds of the windows that failed
(``invented:20.0-38.0s``).

Signals (``Verdict.signals``): ``target_db`` / ``residual_db`` (answer / what was removed
against the mix, dB), ``difference_db`` (what the answer lacks of the mix at its best gain),
``excess`` (share of the answer's energy the mix does not contain), ``speech_mix`` /
``speech_answer`` / ``speech_residual`` (share of 32 ms frames that are speech, of the mix,
the answer's audible frames and what it left out; NaN when not measured). All run on a
16 kHz mono copy; the spectrogram ones cost a few ms per 10 s clip, speech detection about
4 ms per second of audio per signal it listens to (``benchmarks/quality.py``).

What cannot be told without a model of meaning: a wrong source for a description other than
speech (the music instead of the dog: both are sounds of the mix), or an answer of the right
kind but the wrong instance (another speaker of the mix).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> noise = 0.1 * rng.standard_normal(16000)
>>> tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
>>> judge(noise + tone, tone, 16000, "a piano").flag                # a fine isolation
''
>>> judge(noise + tone, noise + tone, 16000, "a piano").flag        # nothing separated
'unchanged'
>>> judge(noise, tone, 16000, "a piano").flag                       # not in the mix
'invented'
>>> judge(noise + tone, 1e-4 * tone, 16000, "a piano").flag
'empty'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import _vad

FLAGS = ("absent", "empty", "unchanged", "invented", "wrong_source")
"""The reason codes, worst first where a choice is needed."""
SILENT_INPUT_DBFS = -60.0
"""An input whose peak is below this is silent: answered locally with silence, flagged
``absent:silent_input``, never sent."""
EMPTY_DB = -30.0
"""An answer below this (energy against the mix, dB) is empty."""
UNCHANGED_DB = -35.0
"""What was removed below this (energy against the mix, dB): nothing was separated."""
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


def is_silent(y: np.ndarray) -> bool:
    """True when the input's peak is below :data:`SILENT_INPUT_DBFS` (or it is empty).

    >>> is_silent(np.full(100, 1e-4)), is_silent(np.full(100, 0.01))
    (True, False)
    """
    y = np.asarray(y)
    return y.size == 0 or float(np.max(np.abs(y))) < 10 ** (SILENT_INPUT_DBFS / 20)


@dataclass(frozen=True)
class WindowVerdict:
    """The verdict of one window of a long clip (seconds from the clip's start)."""

    start: float
    stop: float
    flag: str
    quality: float

    @property
    def code(self) -> str:
        """The flag without its detail."""
        return _code(self.flag)


@dataclass(frozen=True)
class Verdict:
    """What :func:`judge` concluded: ``flag`` (``""`` or a reason code), ``quality`` in
    [0, 1], the ``signals`` it used, and per-window verdicts of a long clip."""

    flag: str
    quality: float
    signals: dict[str, float] = field(default_factory=dict)
    windows: tuple[WindowVerdict, ...] = ()

    @property
    def doubtful(self) -> bool:
        """True when the row is flagged."""
        return bool(self.flag)

    @property
    def code(self) -> str:
        """The flag without its detail (``"invented:20.0-38.0s"`` -> ``"invented"``)."""
        return _code(self.flag)


def silent_verdict() -> Verdict:
    """The verdict of a silent input (answered locally, never sent).

    >>> silent_verdict().flag
    'absent:silent_input'
    """
    return Verdict(
        "absent:silent_input",
        0.0,
        {
            "target_db": -120.0,
            "residual_db": -120.0,
            "difference_db": -120.0,
            "excess": 0.0,
            "speech_answer": math.nan,
            "speech_mix": math.nan,
            "speech_residual": math.nan,
        },
    )


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


def decide(sig: dict[str, float], description: str) -> tuple[str, float]:
    """The flag and quality of measured signals (see the module docstring).

    >>> decide({"target_db": -3.0, "difference_db": -6.0, "excess": 0.01,
    ...         "speech_answer": math.nan, "speech_mix": math.nan}, "drums")
    ('', 0.95)
    """
    speech = is_speech_description(description)
    vad = not math.isnan(sig.get("speech_mix", math.nan))
    # badness of each rule: 1.0 at its threshold, 0 far on the good side
    bad: dict[str, float] = {
        "empty": _ramp(-sig["target_db"], 10.0, -EMPTY_DB),
        "unchanged": _ramp(-sig["difference_db"], 15.0, -UNCHANGED_DB),
        "invented": sig["excess"] / EXCESS_MAX,
    }
    absent = wrong = False
    if vad:
        s_mix, s_ans = sig["speech_mix"], sig.get("speech_answer", math.nan)
        no_speech_mix = s_mix < SPEECH_MIX_MIN
        answer_speech = (not math.isnan(s_ans)) and s_ans >= SPEECH_ANSWER_MIN
        mix_ok = _ramp(SPEECH_MIX_MIN * 2 - s_mix, SPEECH_MIX_MIN * 0.5, SPEECH_MIX_MIN)
        ans_bad = (
            0.0
            if math.isnan(s_ans)
            else _ramp(SPEECH_ANSWER_MIN * 2 - s_ans, SPEECH_ANSWER_MIN * 0.5, SPEECH_ANSWER_MIN)
        )
        if no_speech_mix and answer_speech:
            bad["invented"] = max(bad["invented"], 1.0 + mix_ok)
        elif no_speech_mix:
            absent = True
            bad["absent"] = 1.0 + mix_ok
        elif not math.isnan(s_ans):
            s_res = sig.get("speech_residual", math.nan)
            res_bad = 0.0 if math.isnan(s_res) else _ramp(s_res - s_ans, -0.5, 0.0)
            bad["wrong_source"] = max(ans_bad, res_bad)
            wrong = ans_bad >= 1.0 or (not math.isnan(s_res) and s_res > s_ans)
    flag = ""
    if bad["empty"] >= 1.0:
        flag = "absent" if absent else "empty"
    elif bad["unchanged"] >= 1.0:
        flag = "unchanged"
    elif bad["invented"] >= 1.0:
        flag = "invented"
    elif absent:
        flag = "absent"
    elif wrong:
        flag = "wrong_source"
    worst = max(bad.values())
    quality = round(float(np.clip(1.0 - 0.5 * worst, 0.0, 1.0)), 4)
    if flag:
        quality = min(quality, 0.5)
        if speech and not vad:
            flag += ":no_vad"
    elif speech and not vad:
        quality = min(quality, 0.75)  # the speech checks did not run: less sure
    return flag, quality


def _ramp(x: float, good: float, threshold: float) -> float:
    """0 at or below ``good``, 1 at ``threshold``, growing past it."""
    return max(0.0, (x - good) / (threshold - good))


def judge(
    mix: np.ndarray,
    answer: np.ndarray,
    sr: int,
    description: str,
    *,
    windows: Sequence[tuple[int, int]] | None = None,
) -> Verdict:
    """Judge one isolation: ``mix`` (the input) and ``answer`` (the isolated sound, same
    rate and length), mono ``(n,)`` or ``(channels, n)``. ``windows`` (``(start, stop)``
    samples, e.g. a long clip's request windows) gives each its own verdict, judged on the
    part only it answers (:func:`cores`: a crossfade mixes two windows' answers); the
    clip's flag then names the failed windows' seconds.

    >>> t = 0.1 * np.sin(np.arange(48000) * 0.2)
    >>> mix = t + 0.05 * np.random.default_rng(0).standard_normal(48000)
    >>> v = judge(mix, np.concatenate([t[:32000], np.zeros(16000)]), 16000, "hum",
    ...           windows=[(0, 16000), (16000, 32000), (32000, 48000)])
    >>> v.flag, [w.flag for w in v.windows]
    ('empty:2.0-3.0s', ['', '', 'empty'])
    """
    mix, answer = np.asarray(mix), np.asarray(answer)
    if is_silent(mix):
        return silent_verdict()
    if not windows or len(windows) < 2:
        sig = measure(mix, answer, sr, description)
        flag, quality = decide(sig, description)
        return Verdict(flag, quality, sig)
    parts: list[WindowVerdict] = []
    for (a, b), (lo, hi) in zip(windows, cores(windows), strict=True):
        v = judge(mix[..., lo:hi], answer[..., lo:hi], sr, description)
        parts.append(WindowVerdict(a / sr, b / sr, v.flag, v.quality))
    return combine(parts, measure(mix, answer, sr, description))


def cores(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each window's own part: the samples no other window covers (where a crossfade
    mixes two answers, neither is judged), or, when overlaps leave less than a quarter of
    the window, the samples nearer to it than to its neighbours.

    >>> cores([(0, 20), (16, 36), (32, 50)])
    [(0, 16), (20, 32), (36, 50)]
    """
    windows = list(windows)
    out = []
    for i, (a, b) in enumerate(windows):
        prev_b = windows[i - 1][1] if i else a
        next_a = windows[i + 1][0] if i < len(windows) - 1 else b
        lo, hi = max(a, prev_b), min(b, next_a)
        if hi - lo < (b - a) / 4:
            lo = a if i == 0 else (a + prev_b) // 2
            hi = b if i == len(windows) - 1 else (next_a + b) // 2
        out.append((lo, hi))
    return out


def combine(parts: Sequence[WindowVerdict], signals: dict[str, float] | None = None) -> Verdict:
    """A long clip's verdict from its windows': the worst window's code and the seconds of
    every window with that code; windows without the sound (``absent``) count only when
    every window is absent. Quality: the lowest of the counted windows.

    >>> combine([WindowVerdict(0, 20, "", 0.9), WindowVerdict(18, 38, "invented", 0.2),
    ...          WindowVerdict(36, 50, "absent", 0.3)]).flag
    'invented:18.0-38.0s'
    """
    parts = tuple(parts)
    counted = [w for w in parts if w.code != "absent"] or list(parts)
    worst = min(counted, key=lambda w: w.quality)
    flag = ""
    if worst.flag:
        code = _code(worst.flag)
        spans = _merge([(w.start, w.stop) for w in counted if _code(w.flag) == code])
        flag = f"{code}:" + ",".join(f"{a:.1f}-{b:.1f}s" for a, b in spans)
    return Verdict(flag, worst.quality, dict(signals or {}), parts)


def _code(flag: str) -> str:
    return flag.split(":", 1)[0]


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
