"""The explorer's UI state: what the widget shows beside the review itself.

:class:`~samaudio_data.explorer.ReviewState` holds the review (queue, decisions, undo) and is
saved in the session file; :class:`UIState` holds the rest of what is on screen and lapses with
it: the message line, the price shown for a re-isolation, a bulk decision waiting for "yes",
the table page turned to, and the re-isolation boxes as typed. One object, so that the browser
actions (:mod:`._actions`) change it in one visible place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._reisolate import Quote


@dataclass
class UIState:
    """What the widget shows beside the review state.

    ``bulk`` is the pending bulk question (``{"decision": "discard", "count": 2}``), ``page``
    the table page turned to (``None``: the page of the row shown), ``description`` and
    ``candidates`` the re-isolation boxes (``description_row``: the row the description was
    typed on, when each row has its own default).

    >>> ui = UIState(description="speech")
    >>> ui.say("end of the queue."); ui.message, ui.message_error
    ('end of the queue.', False)
    >>> ui.bulk, ui.page = {"decision": "keep", "count": 3}, 2
    >>> ui.lapse(); ui.bulk, ui.page, ui.description
    (None, None, 'speech')
    """

    message: str = ""
    message_error: bool = False
    quote: Quote | None = None
    bulk: dict[str, Any] | None = None
    page: int | None = None
    description: str = ""
    candidates: Any = ""
    description_row: int | None = None

    def say(self, text: str, error: bool = False) -> None:
        """Show ``text`` on the message line (in red when ``error``).

        >>> ui = UIState(); ui.say("row 99 is out of range", error=True); ui.message_error
        True
        """
        self.message, self.message_error = str(text), bool(error)

    def lapse(self) -> None:
        """Another row or queue is shown: a pending price, bulk question and page lapse.

        >>> ui = UIState(page=3); ui.lapse(); ui.page is None
        True
        """
        self.quote, self.page, self.bulk = None, None, None
