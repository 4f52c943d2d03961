"""The explorer's error type, defined with every other in :mod:`samaudio_data.errors`."""

from ..errors import ExplorerError

__all__ = ["ExplorerError"]
