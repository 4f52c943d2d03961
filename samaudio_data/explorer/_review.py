"""The review half of :class:`~samaudio_data.explorer.Explorer`: moving, deciding, bulk
decisions, undo, sort and filter, and the read-only state they change.

Each action updates :class:`~samaudio_data.explorer.ReviewState`, saves the session file (if
any) and redraws the widget (if shown). Examples use :func:`example_dataset` (8 rows; rows 4
and 8 hold no target).
"""

from __future__ import annotations

from ._state import ReviewState
from ._ui import UIState


class ReviewActions:
    """Review methods and state of the explorer (see :class:`Explorer`).

    >>> from samaudio_data.explorer import Explorer, example_dataset
    >>> isinstance(Explorer(example_dataset(2)), ReviewActions)
    True
    """

    _state: ReviewState
    _ui: UIState

    # --- read-only state -----------------------------------------------------------------

    @property
    def state(self) -> ReviewState:
        """The review state (queue, decisions, undo, table pages) without audio or widgets.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> Explorer(example_dataset(3)).state.counts()["undecided"]
        3
        """
        return self._state

    @property
    def ui(self) -> UIState:
        """What the widget shows beside the review: the message line, a pending price or
        bulk question, the table page, the re-isolation boxes (see :class:`UIState`).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.next(); ex.next(); ex.next(); ex.ui.message
        'end of the queue.'
        """
        return self._ui

    @property
    def decisions(self) -> dict[int, str]:
        """A copy of the decisions: ``{dataset index: "keep" | "discard" | "flag"}``.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.decide("flag", row=2); ex.decisions
        {2: 'flag'}
        """
        return dict(sorted(self._state.decisions.items()))

    @property
    def reisolated(self) -> dict[int, dict]:
        """Metadata of re-isolated rows: description, candidates, cost, cached, signals.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> Explorer(example_dataset(3)).reisolated
        {}
        """
        return {k: dict(v) for k, v in sorted(self._state.reisolated.items())}

    @property
    def row(self) -> int:
        """The dataset index of the row shown (the widget shows it 1-based).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.next(); ex.row, ex.current["title"]
        (1, 'row 2 of 3')
        """
        return self._state.row

    @property
    def queue(self) -> list[int]:
        """The dataset indices to review, in order, after the sort and filter.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(4)); ex.sort_by("isolated_target_db"); ex.queue
        [3, 2, 1, 0]
        """
        return [int(i) for i in self._state.queue]

    @property
    def message(self) -> str:
        """The last message shown in the widget (errors included), or "".

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(2)); ex.prev(); ex.message
        'start of the queue.'
        """
        return self._ui.message

    def counts(self) -> dict[str, int]:
        """How many rows have each decision, and how many are undecided.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> Explorer(example_dataset(2)).counts()
        {'keep': 0, 'discard': 0, 'flag': 0, 'undecided': 2}
        """
        return self._state.counts()

    # --- actions (each saves the session and updates the widget) ----------------------------

    def _changed(self, moved: bool = False) -> None:
        raise NotImplementedError

    def goto(self, row: int) -> None:
        """Show dataset index ``row`` (0-based; the widget's box takes the 1-based number).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.goto(2); ex.current["title"]
        'row 3 of 3'
        """
        self._state.goto(row)
        self._changed(moved=True)

    def next(self, wrap: bool = False) -> None:
        """Show the next row of the queue (a message at the end unless ``wrap``).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(2)); ex.next(); ex.next(); ex.message
        'end of the queue.'
        """
        self._move(+1, wrap)

    def prev(self, wrap: bool = False) -> None:
        """Show the previous row of the queue (``wrap`` goes round to the last).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.prev(wrap=True); ex.row
        2
        """
        self._move(-1, wrap)

    def _move(self, delta: int, wrap: bool) -> None:
        note = self._state.step(delta, wrap)
        if note:
            self._ui.say(note)
        self._changed(moved=note is None)

    def decide(self, decision: str | None, row: int | None = None) -> None:
        """Record ``"keep"``, ``"discard"`` or ``"flag"`` (``None`` clears) for ``row``
        (default: the row shown); undoable with :meth:`undo`. It does not move on (the
        keys and buttons do, with ``auto_advance``).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.decide("keep"); ex.decisions, ex.row
        ({0: 'keep'}, 0)
        """
        self._state.decide(decision, row)
        self._changed()

    def bulk(self, decision: str | None) -> int:
        """Decide every row of the queue (the current filter) at once; one undo step.
        The widget asks first, showing the count. Returns how many rows changed.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(8)); ex.set_filter("isolated_present", max=0)
        >>> ex.bulk("discard"), ex.decisions
        (2, {3: 'discard', 7: 'discard'})
        """
        self._ui.bulk = None
        count = self._state.bulk(decision)
        self._changed()
        return count

    def undo(self) -> str:
        """Undo the last decision or bulk decision; returns what was undone. Undoing one
        row's decision shows that row again.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.press("k"); ex.undo(), ex.row
        ('undid keep of row 1', 0)
        """
        label = self._state.undo()
        rows = self._state.last_undone
        if len(rows) == 1 and rows[0] != self.row:
            self._state.goto(rows[0])
            self._changed(moved=True)
        else:
            self._changed()
        return label

    def sort_by(self, column: str | None = None, ascending: bool = True) -> None:
        """Order the queue by a column (missing values last); ``None`` restores row order.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(4), columns=["text"]); ex.sort_by("text"); ex.queue
        [2, 1, 0, 3]
        """
        self._state.sort_by(column, ascending)
        self._changed(moved=True)

    def set_filter(
        self,
        column: str | None = None,
        min: float | None = None,
        max: float | None = None,
        decision: str | None = None,
        text: str | None = None,
    ) -> None:
        """Queue only rows with ``min <= column <= max``, a decision (``"undecided"`` for
        none) and ``text`` in a text column; ``set_filter()`` clears the filter.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(8)); ex.set_filter(text="DOG"); ex.queue
        [2]
        >>> ex.set_filter("isolated_target_db", min=-10, decision="undecided"); ex.queue
        [0, 1, 4, 5]
        """
        self._state.set_filter(column, min, max, decision, text)
        self._changed(moved=True)

    def show_page(self, page: int) -> None:
        """Show table page ``page`` (0-based; the widget shows "page 1 of N").

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> ex = Explorer(example_dataset(12), page_size=5); ex.show_page(2)
        >>> ex.table["page"], [r["label"] for r in ex.table["rows"]]
        (2, ['11', '12'])
        """
        self._ui.page = min(max(0, int(page)), self._state.pages() - 1)
        self._refresh()

    def _refresh(self) -> None:
        raise NotImplementedError
