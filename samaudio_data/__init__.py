"""samaudio_data: isolate described sounds across audio datasets with SAM Audio Large.

>>> from samaudio_data import Client
>>> client = Client()                                       # doctest: +SKIP
>>> speech = client.isolate(y, sr, "a man speaking")        # doctest: +SKIP
"""

from . import errors
from ._version import __version__
from .client import Budget, Client, CostEstimate, Separation, Usage

__all__ = ["Budget", "Client", "CostEstimate", "Separation", "Usage", "errors", "__version__"]
from .dataset_map import estimate_cost, isolate  # noqa: E402

__all__ += ["estimate_cost", "isolate"]

__all__ += ["Explorer", "ExplorerError"]


def __getattr__(name):
    # the explorer pulls in ipywidgets: import it only when asked for
    if name in ("Explorer", "ExplorerError"):
        from . import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module 'samaudio_data' has no attribute {name!r}")
