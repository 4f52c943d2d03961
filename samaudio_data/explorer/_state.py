"""Review state without audio or widgets: the queue, the decisions, undo, bulk decisions.

:class:`ReviewState` is what the explorer knows about a review apart from sound: which rows
are in the queue (after sort and filter), which row is shown, what was decided, what can be
undone, and what re-isolations changed. It is plain Python and numpy, so the review logic is
tested without a browser, and it stays fast at 100k rows (the queue is a numpy index array;
the table formats one page at a time).

Rows are dataset indices (0-based, as in ``ds[i]``) in the API; everything shown to people
is 1-based ("row 1 of 32", "3 of 12 in the queue").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._models import plural
from . import _format
from ._columns import Columns
from ._errors import ExplorerError

DECISIONS = ("keep", "discard", "flag")
_DECISION_FILTERS = (None, "undecided") + DECISIONS


class ReviewState:
    """The queue, position, decisions and undo history of one review.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"db": [-3.0, -40.0, -12.0], "text": ["a", "b", "c"]})
    >>> st = ReviewState(3, Columns(ds, ["text", "db"]))
    >>> st.sort_by("db"); st.queue.tolist()
    [1, 2, 0]
    >>> st.row, st.pos                        # the row shown stays shown: now 3rd in the queue
    (0, 2)
    >>> st.decide("discard"); st.decisions
    {0: 'discard'}
    >>> st.undo()                             # messages number rows from 1
    'undid discard of row 1'
    >>> st.check_row(3)
    Traceback (most recent call last):
    ...
    samaudio_data.explorer.ExplorerError: row 4 is out of range: rows are 1..3.
    """

    def __init__(self, n: int, columns: Columns, *, page_size: int = 10) -> None:
        self.n = int(n)
        self.columns = columns
        self.page_size = int(page_size)
        self.decisions: dict[int, str] = {}
        self.reisolated: dict[int, dict] = {}
        self.sort: tuple[str | None, bool] = (None, True)
        self.filter: dict[str, Any] = {
            "column": None,
            "min": None,
            "max": None,
            "decision": None,
            "text": None,
        }
        self.queue = np.arange(self.n)
        self.pos = 0
        self.row = 0
        self._undo: list[tuple[str, list[tuple[int, str | None]]]] = []
        #: the rows the last :meth:`undo` changed back
        self.last_undone: list[int] = []

    # --- position ------------------------------------------------------------------------

    def check_row(self, row: int) -> int:
        """``row`` as an int if it is a dataset index, else an ExplorerError in 1-based
        terms (see the class example)."""
        try:
            row = int(row)
        except (TypeError, ValueError):
            raise ExplorerError(f"row must be a number, got {row!r}.") from None
        if not 0 <= row < self.n:
            raise ExplorerError(f"row {row + 1} is out of range: rows are 1..{self.n}.")
        return row

    def in_queue(self) -> bool:
        """Whether the row shown is in the queue (it may have been opened outside it)."""
        return self.pos < len(self.queue) and int(self.queue[self.pos]) == self.row

    def goto(self, row: int) -> None:
        """Show dataset index ``row`` (it need not be in the queue)."""
        self.row = self.check_row(row)
        hits = np.flatnonzero(self.queue == self.row)
        if hits.size:
            self.pos = int(hits[0])

    def step(self, delta: int, wrap: bool = False) -> str | None:
        """Move ``delta`` rows along the queue; returns a message if it cannot move."""
        q = len(self.queue)
        if q == 0:
            return "the queue is empty: widen the filter to see rows."
        if self.in_queue():
            pos = self.pos + delta
        else:  # opened outside the queue: the next row is the one at pos
            pos = self.pos if delta > 0 else self.pos - 1
        if wrap:
            pos %= q
        if not 0 <= pos < q:
            return "end of the queue." if delta > 0 else "start of the queue."
        self.pos = pos
        self.row = int(self.queue[pos])
        return None

    # --- decisions and undo -------------------------------------------------------------

    def _set(self, changes: list[tuple[int, str | None]]) -> None:
        for row, decision in changes:
            if decision is None:
                self.decisions.pop(row, None)
            else:
                self.decisions[row] = decision

    def decide(self, decision: str | None, row: int | None = None) -> None:
        """Record a decision (``None`` clears it) for ``row`` (default: the row shown)."""
        row = self.row if row is None else self.check_row(row)
        if decision is not None and decision not in DECISIONS:
            raise ExplorerError(
                f"decision must be 'keep', 'discard', 'flag' or None, got {decision!r}."
            )
        before = self.decisions.get(row)
        if before == decision:
            return
        label = f"{decision or 'clear'} of row {row + 1}"
        self._undo.append((label, [(row, before)]))
        self._set([(row, decision)])

    def bulk(self, decision: str | None) -> int:
        """Decide every row of the queue (the current filter) at once; one undo step.

        Returns how many rows changed.
        """
        if decision is not None and decision not in DECISIONS:
            raise ExplorerError(
                f"decision must be 'keep', 'discard', 'flag' or None, got {decision!r}."
            )
        before = [
            (int(r), self.decisions.get(int(r)))
            for r in self.queue
            if self.decisions.get(int(r)) != decision
        ]
        if before:
            self._undo.append((f"{decision or 'clear'} of {plural(len(before), 'row')}", before))
            self._set([(r, decision) for r, _ in before])
        return len(before)

    def undo(self) -> str:
        """Undo the last decision or bulk decision; returns what was undone."""
        if not self._undo:
            raise ExplorerError("nothing to undo.")
        label, before = self._undo.pop()
        self._set(before)
        self.last_undone = [r for r, _ in before]
        return f"undid {label}"

    @property
    def can_undo(self) -> str | None:
        """What :meth:`undo` would undo, or None."""
        return self._undo[-1][0] if self._undo else None

    def counts(self) -> dict[str, int]:
        """How many rows have each decision, and how many are undecided."""
        out = {d: 0 for d in DECISIONS}
        for d in self.decisions.values():
            out[d] += 1
        out["undecided"] = self.n - len(self.decisions)
        return out

    # --- sort and filter ----------------------------------------------------------------

    def _check_column(self, column: str | None, what: str, numeric: bool) -> None:
        names = self.columns.numeric() if numeric else self.columns.names
        if column is not None and column not in names:
            raise ExplorerError(
                f"cannot {what} by {column!r}: the columns are {names}. Pass "
                "columns=[...] to Explorer to add one."
            )

    def sort_by(self, column: str | None = None, ascending: bool = True) -> None:
        """Order the queue by a column (missing values last); ``None`` is row order."""
        self._check_column(column, "sort", numeric=False)
        self.sort = (column, bool(ascending))
        self.rebuild()

    def set_filter(
        self,
        column: str | None = None,
        min: float | None = None,
        max: float | None = None,
        decision: str | None = None,
        text: str | None = None,
    ) -> None:
        """Keep rows with ``min <= column <= max``, the given decision and ``text`` in a
        text column (case-insensitive); ``set_filter()`` clears it."""
        self._check_column(column, "filter", numeric=True)
        if decision not in _DECISION_FILTERS:
            raise ExplorerError(
                f"decision filter must be one of {DECISIONS}, 'undecided' or "
                f"None, got {decision!r}."
            )
        bounds = []
        for name, v in (("min", min), ("max", max)):
            try:
                bounds.append(None if v is None or str(v).strip() == "" else float(v))
            except (TypeError, ValueError):
                raise ExplorerError(f"filter {name} must be a number, got {v!r}.") from None
        if column is None and any(b is not None for b in bounds):
            raise ExplorerError("a min/max filter needs a column: set_filter('col', min=...).")
        text = (text or "").strip() or None
        if text is not None and not self.columns.textual():
            raise ExplorerError(
                "a text filter needs a text column: pass columns=[...] with one to Explorer."
            )
        self.filter = {
            "column": column,
            "min": bounds[0],
            "max": bounds[1],
            "decision": decision,
            "text": text,
        }
        self.rebuild()

    def matching(self) -> np.ndarray:
        """Dataset indices that pass the filter, in row order."""
        keep = np.ones(self.n, bool)
        f = self.filter
        if f["column"] is not None:
            v = self.columns.values[f["column"]]
            with np.errstate(invalid="ignore"):
                if f["min"] is not None:
                    keep &= v >= f["min"]
                if f["max"] is not None:
                    keep &= v <= f["max"]
        if f["decision"] is not None:
            want = None if f["decision"] == "undecided" else f["decision"]
            get = self.decisions.get
            keep &= np.fromiter((get(i) == want for i in range(self.n)), bool, self.n)
        if f.get("text"):
            needle = f["text"].lower()
            hit = np.zeros(self.n, bool)
            for c in self.columns.textual():
                hit |= np.fromiter(
                    (needle in s.lower() for s in self.columns.values[c]), bool, self.n
                )
            keep &= hit
        return np.flatnonzero(keep)

    def rebuild(self) -> None:
        """Recompute the queue after a sort or filter change (not after decisions, so the
        row just decided does not vanish); the row shown stays if it still matches."""
        idx = self.matching()
        col, asc = self.sort
        if col is not None and idx.size:
            v = self.columns.values[col][idx]
            if self.columns.kind(col) == "text":
                order = np.argsort(v, kind="stable")
                idx = idx[order if asc else order[::-1]]
            else:
                key = np.where(np.isnan(v), np.inf, v if asc else -v)
                idx = idx[np.argsort(key, kind="stable")]
        self.queue = idx
        hits = np.flatnonzero(idx == self.row)
        if hits.size:
            self.pos = int(hits[0])
        elif idx.size:
            self.pos, self.row = 0, int(idx[0])
        else:
            self.pos = 0

    # --- the table ----------------------------------------------------------------------

    def page_of(self, pos: int | None = None) -> int:
        """The 0-based table page holding queue position ``pos`` (default: the row shown)."""
        pos = self.pos if pos is None else pos
        return max(0, int(pos)) // self.page_size

    def pages(self) -> int:
        """How many table pages the queue fills (at least 1)."""
        return max(1, -(-len(self.queue) // self.page_size))

    def page(self, number: int, names: list[str] | None = None) -> dict[str, Any]:
        """One page of the queue table: formatted cells of ``names`` (default: all columns).

        Only this page's rows are formatted, so a 100k-row queue costs what 10 rows cost.
        """
        names = self.columns.names if names is None else names
        number = min(max(0, int(number)), self.pages() - 1)
        start = number * self.page_size
        rows = []
        for pos in range(start, min(start + self.page_size, len(self.queue))):
            r = int(self.queue[pos])
            rows.append(
                {
                    "row": r,
                    "label": _format.row_label(r),
                    "pos": pos + 1,
                    "decision": self.decisions.get(r) or "",
                    "current": r == self.row,
                    "reisolated": r in self.reisolated,
                    "cells": [self.columns.text(r, c) for c in names],
                }
            )
        return {"page": number, "pages": self.pages(), "total": len(self.queue), "rows": rows}

    # --- re-isolations ------------------------------------------------------------------

    def record_reisolation(self, row: int, meta: dict, isolated: str) -> None:
        """Keep the metadata of a re-isolation and show its signals, cost and cache state
        in the row's columns."""
        self.reisolated[row] = meta
        for s, v in (meta.get("signals") or {}).items():
            self.columns.set(row, f"{isolated}_{s}", float(v))
        cost_col = f"{isolated}_cost"
        if cost_col in self.columns.values:
            old = self.columns.original(cost_col)[row]
            self.columns.set(row, cost_col, (0.0 if np.isnan(old) else old) + meta["cost"])
        self.columns.set(row, f"{isolated}_cached", float(bool(meta.get("cached"))))
        self.columns.set(row, f"{isolated}_seconds", float(meta.get("seconds", np.nan)))

    # --- session ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The state to save: decisions, re-isolations, position, sort and filter."""
        return {
            "decisions": {str(k): v for k, v in sorted(self.decisions.items())},
            "reisolated": {str(k): v for k, v in sorted(self.reisolated.items())},
            "row": self.row,
            "sort": {"column": self.sort[0], "ascending": self.sort[1]},
            "filter": dict(self.filter),
        }

    def load_dict(self, state: dict[str, Any], isolated: str) -> None:
        """Restore what :meth:`to_dict` saved (entries that no longer fit are skipped)."""
        for k, v in (state.get("decisions") or {}).items():
            if v in DECISIONS and 0 <= int(k) < self.n:
                self.decisions[int(k)] = v
        for k, meta in (state.get("reisolated") or {}).items():
            if isinstance(meta, dict) and 0 <= int(k) < self.n:
                self.record_reisolation(int(k), meta, isolated)
        sort = state.get("sort") or {}
        if sort.get("column") is None or sort.get("column") in self.columns.names:
            self.sort = (sort.get("column"), bool(sort.get("ascending", True)))
        filt = state.get("filter") or {}
        if filt.get("column") is None or filt.get("column") in self.columns.numeric():
            self.filter.update({k: filt.get(k) for k in self.filter})
        row = state.get("row", 0)
        self.row = int(row) if isinstance(row, int) and 0 <= row < self.n else 0
        self.rebuild()
