"""The explorer's error type."""

from __future__ import annotations

from .. import errors


class ExplorerError(errors.SamAudioError, ValueError):
    """The explorer cannot do what was asked (bad column, session file, missing client...).

    The message says what went wrong and what to do; nothing was spent.

    >>> str(ExplorerError("row 99 is out of range"))
    'row 99 is out of range'
    """

    __module__ = "samaudio_data.explorer"
