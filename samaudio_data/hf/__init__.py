"""Hugging Face ``datasets`` integration: ``dataset.map(isolate("speech"))``.

- :func:`isolate` returns a ``.map``-compatible callable (batched or not, ``num_proc``), its
  description fixed, filled from each row (``"{label}"``) or one per stem (a dict);
- :func:`estimate_cost` counts what a map would pay for, sending nothing;
- :func:`prefetch` fills the cache at the account's limit before a map;
- :func:`audio_folder` reads a folder of audio files as a dataset (no torch needed);
- :func:`read_value` / :func:`encode_value` read and write audio-column values.

Example
-------
>>> import numpy as np
>>> from samaudio_data.hf import encode_value, read_value
>>> y, sr = read_value(encode_value(np.zeros(160, dtype=np.float32), 16000))
>>> y.shape, sr
((1, 160), 16000)
"""

from ._estimate import estimate_cost
from ._folder import audio_folder
from ._map import Isolate, isolate
from ._prefetch import PrefetchReport, prefetch
from ._values import encode_value, read_value

__all__ = [
    "Isolate",
    "PrefetchReport",
    "audio_folder",
    "encode_value",
    "estimate_cost",
    "isolate",
    "prefetch",
    "read_value",
]
