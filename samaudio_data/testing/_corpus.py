"""A small labelled corpus for quality triage: real synthesised speech, noises, hum, rain and
music-like tones, mixed at several SNRs, each mix labelled with how the model should fail.

Speech comes from Debian's ``espeak-ng`` (several voices and sentences), the other sounds
from ``sox`` (pink and brown noise, mains hum, rain-like filtered noise, plucked chords). The
generated WAVs are kept in ``directory`` and reused. Every :class:`Example` is a scene for
:meth:`LocalEndpoint.add_scene` (its ``behaviour`` is the failure class, ``"good"`` for a
right answer), so a test sends the mixes through real HTTP and compares each row's flag with
its label. Used by the tests and ``benchmarks/quality.py``.

Example
-------
>>> import shutil, tempfile
>>> if shutil.which("espeak-ng") and shutil.which("sox"):
...     rows = build_corpus(tempfile.mkdtemp(), per_class=1)
...     sorted({r.behaviour for r in rows}) == sorted(BEHAVIOURS)
... else:
...     True
True
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ._scenes import BEHAVIOURS

SR = 16000
SECONDS = 3.0
SNRS_DB = (0.0, 6.0, 12.0, 20.0)
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things from the store.",
    "We will meet again tomorrow morning before the train leaves the station.",
    "A large number of people gathered to watch the boats in the harbour.",
    "She sells sea shells by the sea shore every summer afternoon.",
    "Turn left at the next corner and keep walking until you see the park.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m3", "en-gb-x-rp+f2")
NOISES = {
    "pink": ["synth", "3.2", "pinknoise"],
    "brown": ["synth", "3.2", "brownnoise"],
    "hum": ["synth", "3.2", "square", "50", "lowpass", "400"],
    "rain": ["synth", "3.2", "whitenoise", "highpass", "1500", "tremolo", "23", "60"],
}
CHORDS = (
    ("C4", "E4", "G4"),
    ("F3", "A4", "C5"),
    ("G3", "B4", "D5"),
    ("A3", "C4", "E5"),
    ("D4", "F4", "A4"),
    ("E3", "G4", "B4"),
)
SPEECH_DESCRIPTIONS = ("speech", "a man speaking", "a woman talking")
OTHER_DESCRIPTION = "music"


@dataclass(frozen=True)
class Example:
    """One labelled mix: what the model is asked, and how it answers (a scene)."""

    name: str
    mix: np.ndarray
    sr: int
    description: str
    behaviour: str
    target: np.ndarray | None
    other: np.ndarray
    invented: np.ndarray | None
    snr_db: float | None
    gain: float = 1.0
    leak_db: float = -25.0
    artifacts_db: float | None = None

    @property
    def speech(self) -> bool:
        """Whether the description asks for speech."""
        return self.description != OTHER_DESCRIPTION

    def scene(self) -> dict:
        """Keyword arguments of :meth:`LocalEndpoint.add_scene` (besides mix and sr)."""
        return {
            "target": self.target,
            "other": self.other,
            "invented": self.invented,
            "behaviour": self.behaviour,
            "gain": self.gain,
            "leak_db": self.leak_db,
            "artifacts_db": self.artifacts_db,
        }


def tools_missing() -> list[str]:
    """The command-line tools the corpus needs that are not installed.

    >>> isinstance(tools_missing(), list)
    True
    """
    return [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _load(path: Path) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float64", always_2d=True)
    y = y.mean(axis=1)
    if sr != SR:
        from ..audio import resample

        y = resample(y, sr, SR)
    return y


def _cached(directory: Path, name: str, make) -> np.ndarray:
    path = directory / f"{name}.wav"
    if not path.exists():
        part = directory / f".{name}.part.wav"
        make(part)
        part.replace(path)
    return _load(path)


def _speech(directory: Path, i: int) -> np.ndarray:
    sentence, voice = SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)]
    return _cached(
        directory,
        f"speech{i}",
        lambda p: _run(
            ["espeak-ng", "-v", voice, "-s", str(150 + 10 * (i % 3)), "-w", str(p), sentence]
        ),
    )


def _noise(directory: Path, kind: str) -> np.ndarray:
    return _cached(
        directory,
        f"noise-{kind}",
        lambda p: _run(
            ["sox", "-n", "-r", str(SR), "-c", "1", "-b", "32", "-e", "float", str(p)]
            + NOISES[kind]
            + ["vol", "0.3"]
        ),
    )


def _music(directory: Path, i: int) -> np.ndarray:
    def make(p: Path) -> None:
        cmd = ["sox", "-n", "-r", str(SR), "-c", "1", "-b", "32", "-e", "float", str(p)]
        for k in range(7):
            chord = CHORDS[(i + k * (1 + i % 2)) % len(CHORDS)]
            cmd += ["synth", "0.46"] + [w for n in chord for w in ("pluck", n)] + ["remix", "-"]
            cmd += [":"]
        _run(cmd[:-1])

    return _cached(directory, f"music{i}", make)


def _fit(y: np.ndarray, n: int, offset: int) -> np.ndarray:
    out = np.zeros(n)
    seg = y[: max(0, n - offset)]
    out[offset : offset + seg.shape[0]] = seg
    return out


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(y**2))) or 1e-12


def build_corpus(
    directory,
    *,
    per_class: int = 10,
    good: int = 24,
    seed: int = 0,
    other_wrong_source: bool = True,
) -> list[Example]:
    """Build the labelled corpus (WAVs generated once into ``directory``).

    For speech descriptions: ``good`` right answers and ``per_class`` of each failure
    class; for the other description (``"music"``): ``good // 2`` and ``per_class``.
    Backgrounds cycle through noises, hum, rain and music (speech for ``"music"``); SNRs
    through :data:`SNRS_DB`; levels around -23 dBFS, over a -60 dBFS noise floor.
    ``other_wrong_source=False`` leaves out the class no check can see for ``"music"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(SR * SECONDS)
    speech = [_speech(directory, i) for i in range(len(SENTENCES))]
    music = [_music(directory, i) for i in range(4)]
    noises = {k: _noise(directory, k) for k in NOISES}
    rows: list[Example] = []

    def level(y: np.ndarray, dbfs: float) -> np.ndarray:
        return y * (10 ** (dbfs / 20) / _rms(y))

    def background(kind: str, k: int) -> np.ndarray:
        if kind == "music":
            return _fit(music[k % len(music)], n, 0)
        if kind == "speech":
            return _fit(speech[(k + 3) % len(speech)], n, int(rng.integers(0, SR // 4)))
        src = noises[kind]
        start = int(rng.integers(0, max(1, src.shape[0] - n)))
        return _fit(src[start:], n, 0)

    def add(kind: str, behaviour: str, k: int, description: str, backgrounds) -> None:
        snr = SNRS_DB[k % len(SNRS_DB)]
        bg_kind = backgrounds[k % len(backgrounds)]
        bg = background(bg_kind, k)
        if kind == "speech":
            sound = _fit(speech[k % len(speech)], n, int(rng.integers(0, SR // 3)))
            invented = _fit(speech[(k + 1) % len(speech)], n, int(rng.integers(0, SR // 3)))
        else:
            sound = _fit(music[k % len(music)], n, 0)
            invented = _fit(music[(k + 2) % len(music)], n, int(rng.integers(0, SR // 2)))
        sound = level(sound, -23.0)
        bg = level(bg, -23.0 - snr)
        absent = behaviour in ("absent", "invented")
        target = None if absent else sound
        # every mix its own: a room's noise floor at -60 dBFS in the background
        bg = bg + level(rng.standard_normal(n), -60.0)
        mix = bg if absent else sound + bg
        if behaviour == "invented":  # a plausible level for what it makes up: near the mix's
            invented = level(invented, 20 * np.log10(_rms(mix)) - float(rng.uniform(0, 10)))
        # a model's imprecision: level off by up to +-2 dB, a leak of the rest at -15 to
        # -30 dB, noise-like artefacts 20 to 35 dB below the answer. A wrong source is
        # another sound with the described one leaking in at least 10 dB below it.
        leak = float(rng.uniform(-30, -15))
        if behaviour == "wrong_source":
            leak = min(leak, -snr - 10.0)
        rows.append(
            Example(
                f"{kind}-{behaviour}-{k}-{bg_kind}-{snr:g}dB",
                mix,
                SR,
                description,
                behaviour,
                target,
                bg,
                invented if behaviour == "invented" else None,
                snr,
                gain=float(10 ** (rng.uniform(-2, 2) / 20)),
                leak_db=leak,
                artifacts_db=float(rng.uniform(-35, -20)),
            )
        )

    speech_bg = ("pink", "hum", "rain", "music", "brown")
    other_bg = ("speech", "pink", "rain", "hum")
    for k in range(good):
        add("speech", "good", k, SPEECH_DESCRIPTIONS[k % 3], speech_bg)
    for k in range(max(1, good // 2)):
        add("music", "good", k, OTHER_DESCRIPTION, other_bg)
    for behaviour in BEHAVIOURS[1:]:
        for k in range(per_class):
            add("speech", behaviour, k, SPEECH_DESCRIPTIONS[k % 3], speech_bg)
            if behaviour != "wrong_source" or other_wrong_source:
                add("music", behaviour, k, OTHER_DESCRIPTION, other_bg)
    return rows
