"""Cleaning signals: numbers computed locally from the mix, the target and the residual.

They help decide which clips to keep after isolating. All are computed on the client, cost
nothing, and are deterministic:

``target_db``
    Target-to-mixture energy ratio in dB: 0 means the target is the whole clip, -20 means
    it holds 1% of the energy. Floored at -120 (a silent target).
``residual_db``
    Residual-to-mixture energy ratio in dB (what was removed).
``present``
    Whether the target is there at all: it is active in at least 5% of the clip.
``present_fraction``
    Fraction of the non-silent 50 ms frames of the mix in which the target is active (its
    level above -50 dBFS and within 20 dB of the mix in that frame).
``clipped_fraction``
    Fraction of the input's samples at or beyond full scale (|x| >= 0.999): a damaged source.
``target_peak``
    Peak absolute value of the target (above 1.0 would clip once written as 16-bit PCM).

Example
-------
>>> import numpy as np
>>> mix = np.sin(np.linspace(0, 2000, 16000)) * 0.5
>>> s = cleaning_signals(mix, mix * 0.1, mix * 0.9, 16000)
>>> round(s["target_db"], 1), s["present"]
(-20.0, True)
>>> # keep clips where the target carries at least a tenth of the energy:
>>> # ds = ds.filter(lambda r: r["isolated_present"] and r["isolated_target_db"] > -10)
"""

from __future__ import annotations

import numpy as np

FLOOR_DB = -120.0
FRAME_SECONDS = 0.05
ACTIVE_DBFS = -50.0
ACTIVE_REL_DB = -20.0
SILENT_MIX_DBFS = -60.0
PRESENT_MIN_FRACTION = 0.05
SIGNAL_NAMES = (
    "target_db",
    "residual_db",
    "present",
    "present_fraction",
    "clipped_fraction",
    "target_peak",
)


def _db(num: float, den: float) -> float:
    if num <= 0.0 or den <= 0.0:
        return FLOOR_DB
    return max(FLOOR_DB, float(10.0 * np.log10(num / den)))


def _frame_power(y: np.ndarray, size: int) -> np.ndarray:
    n = (y.shape[-1] // size) * size
    if n == 0:
        return np.array([np.mean(y**2)]) if y.size else np.zeros(1)
    return np.mean(y[..., :n].reshape(-1, size) ** 2, axis=1)


def cleaning_signals(
    mix: np.ndarray, target: np.ndarray, residual: np.ndarray, sr: int
) -> dict[str, float]:
    """Compute the cleaning signals of one clip (see the module docstring).

    ``mix``, ``target`` and ``residual`` are mono ``(n,)`` or ``(channels, n)`` at ``sr``;
    channels are averaged for the frame-wise measures.

    >>> cleaning_signals(np.ones(800) * 0.5, np.zeros(800), np.ones(800) * 0.5, 16000)["present"]
    False
    """
    mix = np.asarray(mix, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    residual = np.asarray(residual, dtype=np.float64)
    e_mix = float(np.sum(mix**2))
    mono_mix = mix.mean(axis=0) if mix.ndim == 2 else mix
    mono_t = target.mean(axis=0) if target.ndim == 2 else target
    size = max(1, int(round(FRAME_SECONDS * sr)))
    p_mix = _frame_power(mono_mix, size)
    p_t = _frame_power(mono_t, size)
    audible = p_mix > 10 ** (SILENT_MIX_DBFS / 10)
    active = (p_t > 10 ** (ACTIVE_DBFS / 10)) & (p_t >= p_mix * 10 ** (ACTIVE_REL_DB / 10))
    fraction = float(np.sum(active & audible) / np.sum(audible)) if audible.any() else 0.0
    return {
        "target_db": _db(float(np.sum(target**2)), e_mix),
        "residual_db": _db(float(np.sum(residual**2)), e_mix),
        "present": bool(fraction >= PRESENT_MIN_FRACTION),
        "present_fraction": fraction,
        "clipped_fraction": float(np.mean(np.abs(mix) >= 0.999)) if mix.size else 0.0,
        "target_peak": float(np.max(np.abs(target))) if target.size else 0.0,
    }
