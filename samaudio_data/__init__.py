"""samaudio_data: isolate described sounds across audio datasets with SAM Audio Large.

>>> import numpy as np
>>> from samaudio_data import Client
>>> from samaudio_data.testing import LocalEndpoint
>>> y = 0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
>>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False) as client:
...     speech = client.isolate(y, 16000, "a man speaking")
>>> speech.shape
(16000,)
"""

from . import errors
from ._client import Client
from ._estimate import CostEstimate
from ._models import Budget, Separation, Usage
from ._options import Chunking, RateLimits, Retries, Upload
from ._version import __version__
from .hf import audio_folder, estimate_cost, isolate, prefetch

__all__ = [
    "Budget",
    "Chunking",
    "Client",
    "CostEstimate",
    "Explorer",
    "ExplorerError",
    "RateLimits",
    "Retries",
    "Separation",
    "Upload",
    "Usage",
    "__version__",
    "audio_folder",
    "errors",
    "estimate_cost",
    "isolate",
    "prefetch",
]


def __getattr__(name):
    # the explorer pulls in ipywidgets: import it only when asked for
    if name in ("Explorer", "ExplorerError"):
        from . import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module 'samaudio_data' has no attribute {name!r}")
