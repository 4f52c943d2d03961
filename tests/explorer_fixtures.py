"""Small real datasets for the explorer tests: WAV clips in an ``Audio()`` column plus the
columns ``dataset_map.isolate`` adds (computed here with the Client and the signals)."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from samaudio_data.audio import SIGNAL_NAMES, cleaning_signals

PRICE = 0.062


def clip(seed: int, sr: int = 16000, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    """A deterministic test clip: a few harmonics with a tremolo plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 110.0 + 40.0 * (seed % 7)
    y = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3, 5))
    y = y * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * 0.2 + 0.01 * rng.standard_normal(t.size)
    y = y.astype(np.float32)
    if channels > 1:
        y = np.stack([y * (1.0 - 0.2 * c) for c in range(channels)])
    return y


def wav_bytes(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y.T if y.ndim == 2 else y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def _row_columns(
    mix: np.ndarray, target: np.ndarray, sr: int, cost: float, cached: bool, error: str = ""
) -> dict:
    mono = mix.mean(axis=0) if mix.ndim == 2 else mix
    residual = (mono - target).astype(np.float32)
    sig = cleaning_signals(mono, target, residual, sr)
    row = {
        "isolated": {"bytes": wav_bytes(target, sr, "FLOAT"), "path": None},
        "isolated_cost": cost,
        "isolated_seconds": 0.01,
        "isolated_cached": cached,
        "isolated_error": error,
    }
    row.update({f"isolated_{k}": sig[k] for k in SIGNAL_NAMES})
    return row


def synthetic_dataset(
    n: int = 6,
    sr: int = 16000,
    seconds: float = 1.0,
    gains: list[float] | None = None,
    channels: int = 1,
):
    """``n`` rows whose "isolated" audio is ``gain * mix`` (no endpoint involved).

    Row i has gain ``gains[i]`` (default cycling 1.0, 0.5, 0.1, 0.0), so its target_db is
    ``20*log10(gain)``: handy for sorting and filtering tests.
    """
    from datasets import Audio, Dataset

    gains = gains or [[1.0, 0.5, 0.1, 0.0][i % 4] for i in range(n)]
    rows = []
    for i in range(n):
        mix = clip(i, sr, seconds, channels)
        mono = mix.mean(axis=0) if mix.ndim == 2 else mix
        target = (gains[i] * mono).astype(np.float32)
        row = {"audio": {"bytes": wav_bytes(mix, sr), "path": None}, "id": i, "label": f"clip-{i}"}
        row.update(_row_columns(mix, target, sr, PRICE, False))
        rows.append(row)
    ds = Dataset.from_list(rows)
    return ds.cast_column("audio", Audio()).cast_column("isolated", Audio())


def isolated_dataset(
    client, description: str = "a man speaking", n: int = 4, sr: int = 16000, seconds: float = 1.0
):
    """``n`` rows isolated through ``client`` (e.g. against a LocalEndpoint)."""
    from datasets import Audio, Dataset

    rows = []
    for i in range(n):
        mix = clip(i, sr, seconds)
        sep = client.separate(mix, sr, description)
        row = {"audio": {"bytes": wav_bytes(mix, sr), "path": None}, "id": i}
        row.update(_row_columns(mix, sep.target, sr, sep.cost, sep.cached))
        rows.append(row)
    ds = Dataset.from_list(rows)
    return ds.cast_column("audio", Audio()).cast_column("isolated", Audio())


def lane_audio(ex, lane: str):
    """Decode the WAV the widget would play for ``lane`` of the row shown."""
    from samaudio_data.audio import decode_audio

    return decode_audio(bytes(ex.widget.media[lane]["wav"]))


def send(ex, action: str, **kw) -> dict:
    """Send an action exactly as the browser does; return what the widget then shows."""
    ex.widget.receive({"action": action, **kw})
    return ex.current
