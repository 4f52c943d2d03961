"""The test signals, in one place: noise, band-limited noise and tones.

``bandlimited`` is what round trips through resampling near-exactly (content well below the
lowest Nyquist frequency); ``noise`` is full-band (for the local endpoint's sample-exact
paths at 48 kHz); ``tone`` is a sine.
"""

from __future__ import annotations

import numpy as np


def noise(n: int = 48000, sr: int = 48000, amp: float = 0.5, seed: int = 0, channels=None):
    """Uniform full-band noise, float64, ``(n,)`` or ``(channels, n)``."""
    rng = np.random.default_rng(seed)
    shape = (n,) if channels is None else (channels, n)
    return rng.uniform(-amp, amp, shape).astype(np.float64)


def bandlimited(n: int, sr: int, seed: int = 0, amp: float = 0.3, channels: int = 1):
    """Noise low-passed well below 8 kHz / 2, so resampling round trips are near-exact."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(channels):
        x = rng.standard_normal(n + 2048)
        spec = np.fft.rfft(x)
        freqs = np.fft.rfftfreq(x.size, 1 / sr)
        spec[freqs > 3000] = 0
        y = np.fft.irfft(spec, x.size)[1024 : 1024 + n]
        out.append(amp * y / np.max(np.abs(y)))
    y = np.stack(out)
    return (y[0] if channels == 1 else y).astype(np.float32)


def tone(seconds: float, sr: int = 48000, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    """A sine of ``seconds`` at ``sr``: float64, mono."""
    t = np.arange(int(round(seconds * sr))) / sr
    return amp * np.sin(2 * np.pi * freq * t)
