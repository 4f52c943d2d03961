"""A small made-up dataset to try the explorer on (no endpoint, no download)."""

from __future__ import annotations

import numpy as np

from .. import audio
from ..audio import SIGNAL_NAMES, cleaning_signals

_WORDS = [
    "rain on a tin roof",
    "a man speaking",
    "a dog barking",
    "traffic at night",
    "a woman laughing",
    "birdsong",
    "a door closing",
    "applause",
]


def example_dataset(n: int = 8, sr: int = 16000, seconds: float = 1.0, quality: bool = False):
    """``n`` rows shaped like ``ds.map(isolate("speech"))`` output: an ``audio`` column of
    tones (``Audio()``), a ``path`` and a ``text`` column, an ``isolated`` column that holds
    a fraction of the mix (1, 0.5, 0.1 or 0: the last is silent), and the signal and cost
    columns. With ``quality=True`` the isolated column holds a fraction of the tones without
    the mix's noise, and the quality triage's ``isolated_flag`` and ``isolated_quality``
    columns are added (every fourth row is ``empty``).

    >>> ds = example_dataset(4)
    >>> ds[3]["text"], round(ds[1]["isolated_target_db"], 1), ds[3]["isolated_present"]
    ('traffic at night', -6.0, False)
    >>> list(example_dataset(4, quality=True)["isolated_flag"])
    ['', '', '', 'empty']
    """
    from datasets import Audio, Dataset

    rows = []
    t = np.arange(int(sr * seconds)) / sr
    for i in range(n):
        rng = np.random.default_rng(i)
        f0 = 110.0 + 40.0 * (i % 7)
        mix = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3, 5))
        tones = mix * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * 0.2
        mix = (tones + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        gain = [1.0, 0.5, 0.1, 0.0][i % 4]
        target = (gain * (tones if quality else mix)).astype(np.float32)
        sig = cleaning_signals(mix, target, mix - target, sr)
        row = {
            "audio": {"bytes": audio.encode_wav(mix, sr), "path": f"clip_{i:03d}.wav"},
            "path": f"clips/clip_{i:03d}.wav",
            "text": _WORDS[i % len(_WORDS)],
            "isolated": {"bytes": audio.encode_wav(target, sr, subtype="FLOAT"), "path": None},
            "isolated_cost": 0.062,
            "isolated_seconds": 12.0,
            "isolated_cached": False,
            "isolated_error": "",
        }
        row.update(
            {
                f"isolated_{k}": (bool(sig[k]) if k == "present" else float(sig[k]))
                for k in SIGNAL_NAMES
            }
        )
        if quality:
            v = audio.judge(mix, target, sr, "tones")  # no speech detector needed
            row.update({"isolated_flag": v.flag, "isolated_quality": v.quality})
        rows.append(row)
    ds = Dataset.from_list(rows)
    return ds.cast_column("audio", Audio()).cast_column("isolated", Audio())
