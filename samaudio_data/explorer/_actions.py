"""What the widget's buttons, boxes and keys do: browser messages turned into explorer calls.

Every message is ``{"action": name, ...}``; boxes send their text as typed and it is checked
here (a row number out of range is an error message, never a silent jump).
"""

from __future__ import annotations

from typing import Any, Dict

from ._errors import ExplorerError
from ._view import KEYS


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


def press(ex, key: str) -> None:
    """Act on one key (``KEYS``); an unknown key is a hint in the message."""
    key = str(key)
    action = KEYS.get(key) or KEYS.get(key[-1:].lower())
    if action is None:
        ex._message = f"key {key!r} does nothing here; the keys are listed below."
        ex._message_error = False
        ex._refresh()
    elif action == "next":
        ex.next()
    elif action == "prev":
        ex.prev()
    elif action == "undo":
        ex._message = ex.undo()
        ex._refresh()
    elif action == "clear":
        ex.decide(None)
    else:
        decide_and_advance(ex, action)


def decide_and_advance(ex, decision: str) -> None:
    """Decide the row shown and, with ``auto_advance``, move to the next queue row."""
    row = ex.row
    ex.decide(decision)
    if ex.auto_advance and ex.row == row and ex.state.in_queue():
        ex.next()


def dispatch(ex, action: str, msg: Dict[str, Any]) -> None:
    """Run one browser action on the explorer ``ex``."""
    st = ex.state
    if action == "key":
        press(ex, msg.get("key", ""))
    elif action == "decide":
        decision = msg.get("decision") or None
        if decision is None:
            ex.decide(None)
        else:
            decide_and_advance(ex, decision)
    elif action in ("next", "prev"):
        getattr(ex, action)()
    elif action == "undo":
        ex._message = ex.undo()
    elif action == "goto":
        ex.goto(_row_number(msg.get("row", ""), st.n))
    elif action == "open":
        ex.goto(int(msg["row"]))
    elif action == "page":
        ex.show_page(int(msg.get("page", 0)))
    elif action == "sort":
        ex.sort_by(msg.get("column") or None, bool(msg.get("ascending", True)))
    elif action == "filter":
        ex.set_filter(msg.get("column") or None, msg.get("min"), msg.get("max"),
                      msg.get("decision") or None, msg.get("text"))
    elif action == "bulk":
        decision = msg.get("decision")
        if decision not in ("keep", "discard", "flag"):
            raise ExplorerError(f"bulk decision must be keep, discard or flag, got {decision!r}.")
        if not len(st.queue):
            raise ExplorerError("the queue is empty: nothing to decide.")
        ex._bulk = {"decision": decision, "count": len(st.queue)}
    elif action == "bulk_confirm":
        pending = ex._bulk
        if not pending:
            raise ExplorerError("nothing to confirm: choose a bulk decision first.")
        count = ex.bulk(pending["decision"])
        ex._message = (f"{pending['decision']}: {count} rows changed (z or undo takes it "
                       "back).")
    elif action == "bulk_cancel":
        ex._bulk = None
    elif action == "quote":
        # keep what was typed, even if it is refused, so the boxes do not jump back
        ex._quote = None
        ex._description, ex._description_row = str(msg.get("description", "")), ex.row
        ex._candidates = str(msg.get("candidates", "")).strip()
        ex.quote(ex._description, ex._candidates)
    elif action == "stem":
        ex.show_stem(str(msg.get("stem", "")))
    elif action == "confirm":
        q = ex._quote
        if q is not None and (str(msg.get("description", q.description)).strip() != q.description
                              or str(msg.get("candidates", q.reranking_candidates)).strip()
                              != str(q.reranking_candidates)):
            ex._quote = None
            raise ExplorerError("the description or candidates changed since the price was "
                                "shown; press price again.")
        ex.confirm()
    else:
        raise ExplorerError(f"unknown action {action!r}.")
