"""Scripted model behaviours: mixes whose parts the local endpoint knows, and how it fails.

The local endpoint does not separate anything. To test quality triage through real HTTP, a
test registers a *scene* (:meth:`LocalEndpoint.add_scene`): a mix, the part of it the
description names (``target``, None when the sound is absent), everything else (``other``),
and a ``behaviour``. A request whose uploaded audio is that mix (same rate and length, the
same samples within 16-bit precision) is then answered from the scene, whatever its
description:

==================  ========================================================================
behaviour           answer
==================  ========================================================================
``good``            ``target`` plus ``other`` at ``leak_db`` (-25 dB: a realistic leak); an
                    absent target gives ``other`` alone at -40 dB
``empty``           ``target`` at -50 dB: (near) silence although the sound is there
``invented``        ``invented``: sound of that kind that is not in the mix
``wrong_source``    ``other``: another sound of the mix
``unchanged``       the mix, with a -40 dB processing residue
``absent``          (a scene without ``target``) the leak of ``other`` at -40 dB: rightly empty
==================  ========================================================================

``gain`` scales the answers and ``artifacts_db`` adds noise following the answer's
envelope at that level below it (a generative model's imprecision), both deterministic.
With ``fixed_by_rerank=True`` a request with ``reranking_candidates >= 2`` gets the
``good`` answer instead (as more candidates help the real model).

Example
-------
>>> import numpy as np
>>> t = np.sin(np.arange(8000) * 0.3); n = 0.1 * np.cos(np.arange(8000) * 0.05)
>>> s = Scene.build(t + n, 8000, target=t, other=n, behaviour="wrong_source")
>>> np.allclose(s.answer(1), n + t * 10 ** (-25 / 20)), s.matches(t + n, 8000)
(True, True)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidRequestError

BEHAVIOURS = ("good", "empty", "invented", "wrong_source", "unchanged", "absent")
LEAK_DB = -25.0
RESIDUE_DB = -40.0
EMPTY_GAIN_DB = -50.0


def _mono(y, sr, name: str, n: int | None = None) -> np.ndarray:
    x = np.asarray(y, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or (n is not None and x.shape[0] != n):
        raise InvalidRequestError(
            f"scene {name} must be mono audio as long as the mix"
            f"{f' ({n} samples)' if n else ''}, got shape {np.shape(y)}."
        )
    return x


@dataclass(frozen=True)
class Scene:
    """One registered mix and how the model answers it (see the module docstring)."""

    mix: np.ndarray
    sr: int
    target: np.ndarray | None
    other: np.ndarray
    invented: np.ndarray | None
    behaviour: str
    fixed_by_rerank: bool
    gain: float = 1.0
    leak_db: float = LEAK_DB
    artifacts_db: float | None = None

    @classmethod
    def build(
        cls,
        mix,
        sr: int,
        *,
        target=None,
        other=None,
        invented=None,
        behaviour: str = "good",
        fixed_by_rerank: bool = False,
        gain: float = 1.0,
        leak_db: float = LEAK_DB,
        artifacts_db: float | None = None,
    ) -> Scene:
        """Validate and build a scene (mono float arrays, all as long as the mix)."""
        if behaviour not in BEHAVIOURS:
            raise InvalidRequestError(f"behaviour must be one of {BEHAVIOURS}, got {behaviour!r}.")
        m = _mono(mix, sr, "mix")
        t = None if target is None else _mono(target, sr, "target", m.shape[0])
        o = (
            m - (t if t is not None else 0.0)
            if other is None
            else _mono(other, sr, "other", m.shape[0])
        )
        inv = None if invented is None else _mono(invented, sr, "invented", m.shape[0])
        if behaviour == "invented" and inv is None:
            raise InvalidRequestError(
                "behaviour='invented' needs invented= (what the model makes up)."
            )
        if behaviour == "empty" and t is None:
            raise InvalidRequestError("behaviour='empty' needs a target in the mix.")
        return cls(
            m,
            int(sr),
            t,
            o,
            inv,
            behaviour,
            bool(fixed_by_rerank),
            float(gain),
            float(leak_db),
            None if artifacts_db is None else float(artifacts_db),
        )

    def matches(self, y: np.ndarray, sr: int) -> bool:
        """Whether an upload (mono at ``sr``) is this scene's mix, within 16-bit precision
        (an upload scaled down to avoid clipping matches too)."""
        if int(sr) != self.sr or y.shape[-1] != self.mix.shape[0]:
            return False
        x = y.mean(axis=0) if y.ndim == 2 else y
        idx = _probe(x.shape[0])  # a cheap look at 64 samples first
        a, b = x[idx].astype(np.float64), self.mix[idx]
        den = float(np.sum(a * a)) * float(np.sum(b * b))
        if den > 0 and float(np.sum(a * b)) / np.sqrt(den) < 0.99:
            return False
        x = x.astype(np.float64)
        den = float(np.dot(x, x)) * float(np.dot(self.mix, self.mix))
        return bool(den > 0 and float(np.dot(x, self.mix)) / np.sqrt(den) > 0.9999)

    def level(self, y: np.ndarray) -> float:
        """The upload's level against the mix (below 1 when the client scaled it down)."""
        x = (y.mean(axis=0) if y.ndim == 2 else y).astype(np.float64)
        return float(np.dot(x, self.mix) / max(float(np.dot(self.mix, self.mix)), 1e-30))

    def answer(self, reranking_candidates: int) -> np.ndarray:
        """The answer at the scene's rate and length (mono)."""
        out = self._answer(reranking_candidates) * self.gain
        if self.artifacts_db is not None and self.behaviour != "unchanged":
            frame = max(1, self.sr // 50)
            n = -(-out.shape[0] // frame) * frame
            env = np.sqrt(
                np.mean(np.pad(out, (0, n - out.shape[0])).reshape(-1, frame) ** 2, axis=1)
            )
            env = np.repeat(env, frame)[: out.shape[0]]
            noise = np.random.default_rng(out.shape[0]).standard_normal(out.shape[0])
            out = out + noise * env * 10 ** (self.artifacts_db / 20)
        return out

    def _answer(self, reranking_candidates: int) -> np.ndarray:
        kind = self.behaviour
        if self.fixed_by_rerank and reranking_candidates >= 2:
            kind = "good"
        leak = self.other * 10 ** (self.leak_db / 20)
        if kind == "good":
            return (
                leak + self.target
                if self.target is not None
                else self.other * 10 ** (RESIDUE_DB / 20)
            )
        if kind == "empty":
            assert self.target is not None  # build() checks it
            return self.target * 10 ** (EMPTY_GAIN_DB / 20)
        if kind == "invented":
            assert self.invented is not None  # build() checks it
            return self.invented
        if kind == "wrong_source":
            if self.target is None:
                return self.other
            return self.other + self.target * 10 ** (self.leak_db / 20)
        if kind == "unchanged":
            residue = np.roll(self.mix, 7) * 10 ** (RESIDUE_DB / 20)
            return self.mix + residue
        return self.other * 10 ** (RESIDUE_DB / 20)  # absent: rightly (nearly) empty


def _probe(n: int) -> np.ndarray:
    return np.linspace(0, n - 1, 64).astype(int)


class Scenes:
    """The registered scenes of one endpoint (thread-safe)."""

    def __init__(self) -> None:
        self._scenes: list[Scene] = []
        self._lock = threading.Lock()

    def add(self, scene: Scene) -> None:
        with self._lock:
            self._scenes.append(scene)

    def clear(self) -> None:
        with self._lock:
            self._scenes.clear()

    def find(self, y: np.ndarray, sr: int) -> Scene | None:
        """The scene whose mix this upload is, or None."""
        with self._lock:
            scenes = list(self._scenes)
        for scene in scenes:
            if scene.matches(y, sr):
                return scene
        return None
