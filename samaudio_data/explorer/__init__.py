"""Review isolated audio in a notebook and decide what to keep: :class:`Explorer`.

>>> from samaudio_data.explorer import Explorer, example_dataset
>>> ex = Explorer(example_dataset(4), columns=["path", "text", "isolated_target_db"])
>>> [c["name"] for c in ex.table["columns"]]
['path', 'text', 'isolated_target_db']
"""

from ._errors import ExplorerError
from ._example import example_dataset
from ._explorer import Explorer
from ._images import SILENCE_RGB, png_pixels, spectrogram_png, waveform_png
from ._reisolate import Quote
from ._state import DECISIONS, ReviewState
from ._ui import UIState
from ._view import KEY_MAP, KEYS

__all__ = [
    "DECISIONS",
    "KEYS",
    "KEY_MAP",
    "SILENCE_RGB",
    "Explorer",
    "ExplorerError",
    "Quote",
    "ReviewState",
    "UIState",
    "example_dataset",
    "png_pixels",
    "spectrogram_png",
    "waveform_png",
]
