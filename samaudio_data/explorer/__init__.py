"""Review isolated audio in a notebook and decide what to keep: :class:`Explorer`."""

from ._explorer import DECISIONS, KEYS, Explorer, ExplorerError

__all__ = ["DECISIONS", "KEYS", "Explorer", "ExplorerError"]
