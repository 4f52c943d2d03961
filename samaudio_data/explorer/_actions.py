"""What the widget's buttons, boxes and keys do: browser messages turned into explorer calls.

Every message is ``{"action": name, ...}``; :data:`ACTIONS` maps each name to a handler
``handler(ex, msg)`` that calls the explorer's public methods and changes its UI state
(:attr:`Explorer.ui <samaudio_data.explorer.Explorer.ui>`), nothing else. A new button is one
handler and one line in the table. Boxes send their text as typed and it is checked here (a
row number out of range is an error message, never a silent jump).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._models import plural
from ._errors import ExplorerError
from ._state import DECISIONS
from ._view import KEYS

if TYPE_CHECKING:
    from ._explorer import Explorer

Message = dict[str, Any]


def _row_number(text: Any, n: int) -> int:
    """The dataset index for a 1-based row number typed in a box.

    >>> _row_number(" 3 ", 10)
    2
    >>> _row_number("99", 32)
    Traceback (most recent call last):
    ...
    samaudio_data.explorer.ExplorerError: row 99 is out of range: rows are 1..32.
    """
    try:
        number = int(str(text).strip())
    except ValueError:
        raise ExplorerError(f"type a row number 1..{n}, got {str(text)!r}.") from None
    if not 1 <= number <= n:
        raise ExplorerError(f"row {number} is out of range: rows are 1..{n}.")
    return number - 1


def decide_and_advance(ex: Explorer, decision: str | None) -> None:
    """Decide the row shown (``None`` clears, and stays) and, with ``auto_advance``, move to
    the next queue row."""
    row = ex.row
    ex.decide(decision)
    if decision is not None and ex.auto_advance and ex.row == row and ex.state.in_queue():
        ex.next()


#: what each key does (the values of ``KEYS``)
_KEY_ACTIONS: dict[str, Callable[[Explorer], None]] = {
    "keep": lambda ex: decide_and_advance(ex, "keep"),
    "discard": lambda ex: decide_and_advance(ex, "discard"),
    "flag": lambda ex: decide_and_advance(ex, "flag"),
    "clear": lambda ex: ex.decide(None),
    "next": lambda ex: ex.next(),
    "prev": lambda ex: ex.prev(),
    "undo": lambda ex: ex.ui.say(ex.undo()),
}


def press(ex: Explorer, key: str) -> None:
    """Act on one key (``KEYS``); an unknown key is a hint on the message line."""
    key = str(key)
    action = KEYS.get(key) or KEYS.get(key[-1:].lower())
    if action is None:
        ex.ui.say(f"key {key!r} does nothing here; the keys are listed below.")
    else:
        _KEY_ACTIONS[action](ex)


def _bulk(ex: Explorer, msg: Message) -> None:
    decision = msg.get("decision")
    if decision not in DECISIONS:
        raise ExplorerError(f"bulk decision must be keep, discard or flag, got {decision!r}.")
    if not len(ex.state.queue):
        raise ExplorerError("the queue is empty: nothing to decide.")
    ex.ui.bulk = {"decision": decision, "count": len(ex.state.queue)}


def _bulk_confirm(ex: Explorer, msg: Message) -> None:
    pending = ex.ui.bulk
    if not pending:
        raise ExplorerError("nothing to confirm: choose a bulk decision first.")
    count = ex.bulk(pending["decision"])
    ex.ui.say(f"{pending['decision']}: {plural(count, 'row')} changed (z or undo takes it back).")


def _bulk_cancel(ex: Explorer, msg: Message) -> None:
    ex.ui.bulk = None


def _quote(ex: Explorer, msg: Message) -> None:
    # keep what was typed, even if it is refused, so the boxes do not jump back
    ui = ex.ui
    ui.quote = None
    ui.description, ui.description_row = str(msg.get("description", "")), ex.row
    ui.candidates = str(msg.get("candidates", "")).strip()
    ex.quote(ui.description, ui.candidates)


def _confirm(ex: Explorer, msg: Message) -> None:
    q = ex.ui.quote
    if q is not None and (
        str(msg.get("description", q.description)).strip() != q.description
        or str(msg.get("candidates", q.reranking_candidates)).strip() != str(q.reranking_candidates)
    ):
        ex.ui.quote = None
        raise ExplorerError(
            "the description or candidates changed since the price was shown; press price again."
        )
    ex.confirm()


#: every browser action: name -> handler(explorer, message)
ACTIONS: dict[str, Callable[[Explorer, Message], None]] = {
    "key": lambda ex, msg: press(ex, msg.get("key", "")),
    "decide": lambda ex, msg: decide_and_advance(ex, msg.get("decision") or None),
    "next": lambda ex, msg: ex.next(),
    "prev": lambda ex, msg: ex.prev(),
    "undo": lambda ex, msg: ex.ui.say(ex.undo()),
    "goto": lambda ex, msg: ex.goto(_row_number(msg.get("row", ""), ex.state.n)),
    "open": lambda ex, msg: ex.goto(int(msg["row"])),
    "page": lambda ex, msg: ex.show_page(int(msg.get("page", 0))),
    "sort": lambda ex, msg: ex.sort_by(msg.get("column") or None, bool(msg.get("ascending", True))),
    "filter": lambda ex, msg: ex.set_filter(
        msg.get("column") or None,
        msg.get("min"),
        msg.get("max"),
        msg.get("decision") or None,
        msg.get("text"),
    ),
    "doubtful": lambda ex, msg: ex.ui.say(f"{ex.doubtful()} flagged rows, most doubtful first"),
    "bulk": _bulk,
    "bulk_confirm": _bulk_confirm,
    "bulk_cancel": _bulk_cancel,
    "quote": _quote,
    "confirm": _confirm,
    "stem": lambda ex, msg: ex.show_stem(str(msg.get("stem", ""))),
}


def dispatch(ex: Explorer, action: str, msg: Message) -> None:
    """Run one browser action on the explorer ``ex``.

    >>> from samaudio_data.explorer import Explorer, example_dataset
    >>> ex = Explorer(example_dataset(3))
    >>> dispatch(ex, "decide", {"decision": "keep"}); ex.decisions, ex.row
    ({0: 'keep'}, 1)
    >>> dispatch(ex, "dance", {})
    Traceback (most recent call last):
    ...
    samaudio_data.explorer.ExplorerError: unknown action 'dance'.
    """
    handler = ACTIONS.get(action)
    if handler is None:
        raise ExplorerError(f"unknown action {action!r}.")
    handler(ex, msg)
