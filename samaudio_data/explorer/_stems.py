"""Several sounds per row: which isolated columns (stems) a dataset has, and each one's parts.

A map with ``isolate({"voice": "speech", "bgm": "background music"})`` gives every row one
set of columns per stem (``voice``, ``voice_target_db``, ..., ``bgm``, ...). The explorer
shows one stem at a time; a :class:`StemView` holds what differs between stems: the audio
columns, the signals and table columns shown, the cost and error columns, the row reader,
the re-isolations and the row's own description (``<stem>_description``). Decisions are
about rows and shared by every stem.

Example
-------
>>> from datasets import Dataset
>>> ds = Dataset.from_dict({"audio": [1], "voice": [2], "voice_error": [""],
...                         "voice_description": ["speech"], "bgm": [3], "bgm_error": [""],
...                         "bgm_description": ["music"]})
>>> find_stems(ds, "isolated"), find_stems(ds, "bgm"), find_stems(ds, ["bgm", "voice"])
(['voice', 'bgm'], ['bgm'], ['bgm', 'voice'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..audio import SIGNAL_NAMES
from ._columns import check_dataset, column_kinds, default_columns
from ._errors import ExplorerError
from ._reisolate import Reisolator, RowText
from ._rows import RowLoader
from ._state import ReviewState
from ._ui import UIState


def find_stems(ds, isolated: str | Sequence[str]) -> list[str]:
    """The isolated columns to review: those named, else (when the default ``"isolated"``
    is not a column) every column a map added one set of columns for (see the example)."""
    if not isinstance(isolated, str):
        stems = list(isolated)
        if not stems or not all(isinstance(s, str) for s in stems):
            raise ExplorerError(
                f"isolated must be a column name or a list of them, got {isolated!r}."
            )
        return list(dict.fromkeys(stems))
    cols = list(getattr(ds, "column_names", None) or [])
    if isolated in cols or isolated != "isolated":
        return [isolated]
    found = [c for c in cols if f"{c}_description" in cols and f"{c}_error" in cols]
    return found or [isolated]


@dataclasses.dataclass
class StemView:
    """What the explorer shows and keeps for one stem (see the module docstring)."""

    isolated: str
    residual: str | None
    metrics: list[str]
    columns: list[str]
    cost_column: str | None
    error_column: str | None
    description_column: str | None
    flag_column: str | None
    quality_column: str | None
    loader: RowLoader
    reisolator: Reisolator
    reisolated: dict[int, dict] = dataclasses.field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Every column this stem reads into the review's columns."""
        extra = [f"{self.isolated}_{k}" for k in ("cost", "seconds", "cached")]
        own = [c for c in (self.description_column, self.flag_column, self.quality_column) if c]
        return (
            self.columns
            + self.metrics
            + ([self.cost_column] if self.cost_column else [])
            + [c for c in extra if c in self._numeric]
            + own
        )

    _numeric: list[str] = dataclasses.field(default_factory=list, repr=False)

    def asked(self, columns, row: int) -> str:
        """The description ``row`` was isolated with ("" when the dataset does not say)."""
        column = self.description_column
        return str(columns.original(column)[row]) if column else ""


def build_views(
    ds,
    original: str,
    stems: list[str],
    residual: str | None,
    *,
    metrics: Sequence[str] | None,
    columns: Sequence[str] | None,
    cost_column: str | None,
    client: Any,
    loader_options: dict[str, Any],
) -> dict[str, StemView]:
    """One :class:`StemView` per stem, the explorer's arguments checked first."""
    check_dataset(ds, original, stems[0], residual)
    if len(stems) > 1 and (residual is not None or cost_column is not None):
        raise ExplorerError(
            "with several stems each has its own residual and cost columns "
            "(<stem>_residual, <stem>_cost); drop residual= and cost_column=."
        )
    kinds = column_kinds(ds)
    return {
        s: build_view(
            ds,
            original,
            s,
            residual,
            kinds=kinds,
            metrics=metrics,
            columns=columns,
            cost_column=cost_column,
            client=client,
            stems=stems,
            loader_options=loader_options,
        )
        for s in stems
    }


def build_view(
    ds,
    original: str,
    isolated: str,
    residual: str | None,
    *,
    kinds: dict[str, str],
    metrics: Sequence[str] | None,
    columns: Sequence[str] | None,
    cost_column: str | None,
    client: Any,
    stems: Sequence[str],
    loader_options: dict[str, Any],
) -> StemView:
    """Check one stem's columns and build its parts (``metrics``, ``columns`` and
    ``cost_column`` as given to the explorer, None for this stem's defaults; the other
    ``stems`` reviewed stay out of its defaults)."""
    residual = check_dataset(ds, original, isolated, residual)
    numeric = [c for c, k in kinds.items() if k != "text"]
    if metrics is None:
        own = [f"{isolated}_{s}" for s in SIGNAL_NAMES] + [
            f"{isolated}_{k}" for k in ("cost", "seconds", "cached")
        ]
        metrics = [c for c in own if c in numeric] + [
            c for c in numeric if c not in own and not _other_stem(c, isolated, stems)
        ]
    for m in metrics:
        if m not in numeric:
            raise ExplorerError(
                f"metric column {m!r} is not a numeric or boolean column "
                f"of the dataset; those are {numeric}."
            )
    if cost_column is None and f"{isolated}_cost" in numeric:
        cost_column = f"{isolated}_cost"
    if cost_column is not None and cost_column not in numeric:
        raise ExplorerError(f"cost_column {cost_column!r} is not a numeric column.")
    description_column = (
        f"{isolated}_description" if kinds.get(f"{isolated}_description") == "text" else None
    )
    shown = (
        list(columns)
        if columns is not None
        else [
            c
            for c in default_columns(ds, original, isolated, kinds, list(metrics))
            if c != description_column and not _other_stem(c, isolated, stems)
        ]
    )
    error_column = f"{isolated}_error" if kinds.get(f"{isolated}_error") == "text" else None
    flag_column = f"{isolated}_flag" if kinds.get(f"{isolated}_flag") == "text" else None
    quality_column = f"{isolated}_quality" if f"{isolated}_quality" in numeric else None
    loader = RowLoader(ds, original, isolated, residual, error_column, **loader_options)
    return StemView(
        isolated,
        residual,
        list(metrics),
        list(dict.fromkeys(shown)),
        cost_column,
        error_column,
        description_column,
        flag_column,
        quality_column,
        loader,
        Reisolator(client),
        _numeric=numeric,
    )


def _other_stem(column: str, isolated: str, stems: Sequence[str]) -> bool:
    """Whether ``column`` belongs to another of the stems reviewed (``bgm_target_db`` while
    showing voice).

    >>> _other_stem("bgm_target_db", "voice", ["voice", "bgm"]), _other_stem("snr", "voice", [])
    (True, False)
    """
    return any(
        column == s or column.startswith(f"{s}_")
        for s in stems
        if s != isolated and not column.startswith(f"{isolated}_")
    )


def restore_stems(saved: dict[str, Any], views: dict[str, StemView], state, bind) -> dict[str, Any]:
    """Record a saved session's re-isolations of every stem (``saved["stems"]``, written
    by ``Explorer.save`` when there are several); returns the rest of the session."""
    per_stem = saved.get("stems")
    if not isinstance(per_stem, dict):
        return saved
    for stem, rows in per_stem.items():
        if stem in views and isinstance(rows, dict):
            bind(stem)
            for k, meta in rows.items():
                if isinstance(meta, dict) and str(k).isdigit() and int(k) < state.n:
                    state.record_reisolation(int(k), meta, stem)
    return {k: v for k, v in saved.items() if k != "reisolated"}


class StemActions:
    """The stems half of :class:`~samaudio_data.explorer.Explorer`: which stem is shown, and
    the row's own description as the re-isolate default.

    >>> from samaudio_data.explorer import Explorer, example_dataset
    >>> isinstance(Explorer(example_dataset(2)), StemActions)
    True
    """

    _views: dict[str, StemView]
    _view: StemView
    _state: ReviewState
    _ui: UIState
    _row_text: RowText
    _media_row: int | None
    isolated: str

    def _changed(self, moved: bool = False) -> None:
        raise NotImplementedError

    @property
    def stems(self) -> list[str]:
        """The isolated columns under review (several after ``isolate({...})``).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> Explorer(example_dataset(2)).stems
        ['isolated']
        """
        return list(self._views)

    def show_stem(self, stem: str) -> None:
        """Show another stem's audio, signals and columns (decisions are per row, shared).

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> Explorer(example_dataset(2)).show_stem("bgm")
        Traceback (most recent call last):
        ...
        samaudio_data.explorer.ExplorerError: no stem 'bgm': the stems are ['isolated'].
        """
        if stem not in self._views:
            raise ExplorerError(f"no stem {stem!r}: the stems are {self.stems}.")
        self._bind(stem)
        self._ui.quote, self._ui.description_row, self._media_row = None, None, None
        self._changed()

    def _bind(self, stem: str) -> None:
        v = self._views[stem]
        self._view = v
        self.isolated, self.residual, self.metrics = v.isolated, v.residual, v.metrics
        self.columns, self.cost_column = v.columns, v.cost_column
        self._loader, self._reiso, self._error_column = v.loader, v.reisolator, v.error_column
        # the quality triage's columns (ds.map(isolate(...)) adds them): the reason shown
        # with the row's signals, the quality for "most doubtful first"
        self._flag, self._quality = v.flag_column, v.quality_column
        self._state.reisolated = v.reisolated

    def _load(self, saved: dict[str, Any]) -> None:
        """Resume a session: decisions, position, sort, filter, every stem's re-isolations."""
        shown = self.isolated
        if len(self._views) > 1:
            saved = restore_stems(saved, self._views, self._state, self._bind)
            stem = saved.get("stem")
            self._bind(stem if isinstance(stem, str) and stem in self._views else shown)
        self._state.load_dict(saved, self.isolated)

    def _row_description(self, row: int) -> str:
        """The re-isolate box's default for ``row``: the explorer's ``description`` (filled
        from the row), else the description the row was sent with, else ""."""
        text = self._row_text.get(row)
        return (self._view.asked(self._state.columns, row) if text is None else text) or ""
