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
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._quality_signals import (
    EMPTY_DB,
    EXCESS_MAX,
    SPEECH_ANSWER_MIN,
    SPEECH_MIX_MIN,
    UNCHANGED_DB,
    is_speech_description,
    measure,
)

FLAGS = ("absent", "empty", "unchanged", "invented", "wrong_source")
"""The reason codes, worst first where a choice is needed."""
SILENT_INPUT_DBFS = -60.0
"""An input whose peak is below this is silent: answered locally with silence, flagged
``absent:silent_input``, never sent."""


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
