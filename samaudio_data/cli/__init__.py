"""The ``samaudio-data`` command (see ``samaudio-data --help``)."""

from ._main import main

__all__ = ["main"]
