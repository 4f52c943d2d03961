"""The explorer: review isolated audio in a notebook and decide what to keep.

:class:`Explorer` ties together the review state (:mod:`._state`: queue, decisions, undo),
the row reader and drawings (:mod:`._rows`, :mod:`._images`), re-isolation
(:mod:`._reisolate`), the session file (:mod:`._session`) and a thin widget
(:mod:`._widget`); its methods come in parts by concern: reviewing (:mod:`._review`),
stems (:mod:`._stems`), re-isolating (:mod:`._reisolate`), and here the widget, the
session and ``apply``. Every action the widget offers is also a method, so a review can be
scripted and tested without a browser.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import errors
from . import _apply, _session, _view
from ._columns import Columns
from ._errors import ExplorerError
from ._reisolate import Quote, ReisolateActions, RowText
from ._review import ReviewActions
from ._state import DECISIONS, ReviewState
from ._stems import StemActions, build_views, find_stems
from ._ui import UIState


class Explorer(ReviewActions, StemActions, ReisolateActions):
    """Review isolated audio and decide what to keep: a queue table, players with waveforms and
    spectrograms, keyboard decisions, bulk decisions with undo, re-isolation at a shown price.

    Parameters: ``ds`` (a map-style ``datasets.Dataset``; only the shown columns are read at
    construction, audio when a row is shown), ``original`` / ``isolated`` (audio columns;
    ``isolated`` may list several stems, found by themselves after ``isolate({...})``, shown
    one at a time with a selector: :meth:`show_stem`),
    ``residual`` (default ``<isolated>_residual`` if present, else original minus isolated),
    ``columns`` (the queue table's columns: numbers, booleans, text, or a struct field such as
    ``"audio.path"``), ``metrics`` (numeric columns shown for the row; default all),
    ``client`` (to re-isolate; its key is never shown or saved), ``session`` (JSON file,
    saved on every change and resumed), ``description`` (the re-isolate box's text: a
    constant, a ``"{column}"`` template or a function of the row; by default the description
    each row was isolated with, from ``<isolated>_description``),
    ``cost_column``, ``auto_advance`` (move on after a decision), ``page_size``.

    >>> from samaudio_data.explorer import example_dataset
    >>> ex = Explorer(example_dataset(8), columns=["text", "isolated_target_db"])
    >>> ex.press("d"); ex.decisions, ex.row          # discard row 1, show row 2
    ({0: 'discard'}, 1)
    >>> ex.set_filter("isolated_present", max=0); ex.queue
    [3, 7]
    >>> ex.bulk("discard"), ex.counts()["discard"]
    (2, 3)
    >>> ex.undo(); ex.counts()["discard"]
    'undid discard of 2 rows'
    1
    """

    def __init__(
        self,
        ds,
        original: str = "audio",
        isolated: Any = "isolated",
        *,
        residual: str | None = None,
        metrics: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        client=None,
        session: str | os.PathLike | None = None,
        description: Any = None,
        cost_column: str | None = None,
        auto_advance: bool = True,
        image_width: int = 600,
        image_height: int = 64,
        cache_rows: int = 6,
        page_size: int = 10,
    ) -> None:
        self._views = build_views(
            ds,
            original,
            find_stems(ds, isolated),
            residual,
            metrics=metrics,
            columns=columns,
            cost_column=cost_column,
            client=client,
            loader_options=dict(
                image_width=image_width, image_height=image_height, cache_rows=cache_rows
            ),
        )
        self._ds, self._n = ds, len(ds)
        self.original = original
        self.auto_advance = bool(auto_advance)
        names = [c for v in self._views.values() for c in v.names]
        self._state = ReviewState(self._n, Columns(ds, names), page_size=page_size)
        self._bind(next(iter(self._views)))
        self._row_text = RowText(ds, description)
        # a row's own description (from description=, or the one the map sent) is the
        # re-isolate box's default, row by row; otherwise what was typed stays
        self._per_row = self._row_text.per_row or any(
            v.description_column for v in self._views.values()
        )
        self._ui = UIState(
            description=self._row_text.constant or "", candidates=self._reiso.default_candidates()
        )
        self._widget = None
        self._media_row: int | None = None
        self.session = Path(session).expanduser() if session else None
        if self.session is not None and self.session.exists():
            self._load(
                _session.read(
                    self.session,
                    n_rows=self._n,
                    fingerprint=getattr(self._ds, "_fingerprint", None),
                )
            )
        elif self.session is not None:
            self.save()

    # --- read-only state ---------------------------------------------------------------

    @property
    def current(self) -> dict[str, Any]:
        """What the widget shows about the row: title, position, decision, lanes, signals,
        message, quote, spend (the ``view`` the browser draws).

        >>> from samaudio_data.explorer import example_dataset
        >>> v = Explorer(example_dataset(8)).current
        >>> v["title"], v["position"], v["spend"]
        ('row 1 of 8', '1 of 8 in the queue',
         'spent $0.496 = dataset $0.496 + re-isolations $0.000')
        """
        return self._compose()[0]

    def doubtful(self) -> int:
        """Queue only the rows the quality triage flagged, most doubtful first (lowest
        ``<isolated>_quality``); returns how many. A bulk decision then applies to them.

        >>> from samaudio_data.explorer import example_dataset
        >>> ex = Explorer(example_dataset(8, quality=True))
        >>> ex.doubtful(), ex.queue, ex.bulk("discard")
        (2, [3, 7], 2)
        """
        if self._quality is None:
            raise ExplorerError(
                f"the dataset has no {self.isolated}_quality column: map it with "
                "samaudio_data.isolate(...) (which adds the quality triage's columns) first."
            )
        self._state.sort_by(self._quality, True)
        self.set_filter(self._quality, max=0.5)
        return len(self.queue)

    @property
    def table(self) -> dict[str, Any]:
        """The queue table page the widget shows: columns, rows (1-based labels), pages.

        >>> from samaudio_data.explorer import example_dataset
        >>> t = Explorer(example_dataset(12), columns=["text"]).table
        >>> t["pages"], t["rows"][1]["label"], t["rows"][1]["cells"]
        (2, '2', ['a man speaking'])
        """
        return _view.scrub(
            _view.table_model(self._state, self._table_page(), self.columns, self.isolated),
            self._reiso.redact,
        )

    def spend(self) -> dict[str, float]:
        """Dollars: the dataset's cost column, this review's re-isolations, and their total.

        >>> from samaudio_data.explorer import example_dataset
        >>> Explorer(example_dataset(2)).spend()
        {'dataset': 0.124, 'reisolations': 0.0, 'total': 0.124}
        """
        views = self._views.values()
        dataset = float(
            sum(
                np.nansum(self._state.columns.original(v.cost_column))
                for v in views
                if v.cost_column
            )
        )
        reiso = float(sum(m.get("cost", 0.0) for v in views for m in v.reisolated.values()))
        return {"dataset": dataset, "reisolations": reiso, "total": dataset + reiso}

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"Explorer({self._n} rows, {c['keep']} keep, {c['discard']} discard, "
            f"{c['flag']} flag, {c['undecided']} undecided; row {self.row + 1})"
        )

    # --- the widget ----------------------------------------------------------------------

    @property
    def widget(self):
        """The widget (built on first use); leaving ``ex`` last in a cell shows it.

        >>> from samaudio_data.explorer import example_dataset
        >>> w = Explorer(example_dataset(2)).widget
        >>> sorted(w.media), w.view["title"]
        (['isolated', 'original', 'residual'], 'row 1 of 2')
        """
        if self._widget is None:
            from ._widget import ExplorerWidget

            self._widget = ExplorerWidget(self._handle)
            self._refresh()
        return self._widget

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close the widget (decisions and the session file stay).

        >>> from samaudio_data.explorer import example_dataset
        >>> ex = Explorer(example_dataset(2)); _ = ex.widget; ex.decide("keep"); ex.close()
        >>> ex.decisions
        {0: 'keep'}
        """
        if self._widget is not None:
            self._widget.close()
            self._widget, self._media_row = None, None

    def _table_page(self) -> int:
        return self._state.page_of() if self._ui.page is None else self._ui.page

    def _compose(self):
        ui = self._ui
        media = None
        try:
            media = self._media(self.row)
        except errors.SamAudioError as exc:
            ui.say(str(exc), error=True)
        q = ui.quote
        quote = (
            {
                "text": str(q) + " Press confirm to run it.",
                "ready": True,
                "label": "confirm (free, cached)" if q.cached else f"confirm: spend ${q.price:.3f}",
            }
            if q is not None
            else {}
        )
        view = _view.view_model(
            self._state,
            media,
            names=([self._flag] if self._flag else []) + self.metrics,
            isolated=self.isolated,
            message=ui.message,
            error=ui.message_error,
            quote=quote,
            bulk=ui.bulk,
            spend=self.spend(),
            description=self._shown_description(),
            candidates=ui.candidates,
            can_reisolate=self._reiso.client is not None,
            stems=self.stems,
            asked=self._view.asked(self._state.columns, self.row),
        )
        view["can_doubt"] = self._quality is not None
        return _view.scrub(view, self._reiso.redact), media

    def _refresh(self) -> None:
        if self._widget is None:
            return
        w = self._widget
        view, media = self._compose()
        if self._media_row != self.row:
            w.media = _view.media_model(media)
            self._media_row = self.row
        w.view = view
        w.table = self.table

    def press(self, key: str) -> None:
        """Do what a key does while the explorer has the focus (see ``KEY_MAP``).

        >>> from samaudio_data.explorer import example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.press("d"); ex.press("z"); ex.decisions
        {}
        """
        from ._actions import press

        press(self, key)
        self._refresh()

    def _handle(self, msg: dict[str, Any]) -> None:
        """One action from the browser; errors become the widget's message."""
        from ._actions import dispatch

        self._ui.say("")
        try:
            dispatch(self, str(msg.get("action", "")), msg)
        except errors.SamAudioError as exc:
            self._ui.say(str(exc), error=True)
        except Exception as exc:  # noqa: BLE001 - a UI callback must never fail silently
            self._ui.say(f"{type(exc).__name__}: {exc}", error=True)
        self._refresh()

    # --- review actions (each saves the session and updates the widget) ----------------------

    def _changed(self, moved: bool = False) -> None:
        if moved:  # another row or queue: a pending price or bulk question lapses
            self._ui.lapse()
        if self.session is not None:
            self.save()
        self._refresh()

    # --- session and apply -----------------------------------------------------------------

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the session (decisions, re-isolation metadata, position) atomically; done on
        every change when ``session=`` was given.

        >>> import pathlib, tempfile
        >>> from samaudio_data.explorer import example_dataset
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "review.json"
        >>> ex = Explorer(example_dataset(2), session=path); ex.decide("keep")
        >>> Explorer(example_dataset(2), session=path).decisions     # resumed
        {0: 'keep'}
        """
        target = Path(path).expanduser() if path else self.session
        if target is None:
            raise ExplorerError(
                "no session file: pass session='review.json' to Explorer or a path to save()."
            )
        state = self._state.to_dict()
        if len(self._views) > 1:
            state["stem"] = self.isolated
            state["stems"] = {
                s: {str(k): m for k, m in sorted(v.reisolated.items())}
                for s, v in self._views.items()
            }
        return _session.write(
            target,
            state,
            n_rows=self._n,
            fingerprint=getattr(self._ds, "_fingerprint", None),
            original=self.original,
            isolated=self.isolated,
            redact=self._reiso.redact,
        )

    def apply(
        self,
        ds=None,
        mode: str = "filter",
        *,
        keep_undecided: bool = True,
        keep_flagged: bool = False,
        column: str = "decision",
    ):
        """Apply the decisions to ``ds`` (default: the explorer's dataset, same row order).

        ``mode="filter"`` keeps rows decided *keep* plus undecided rows (``keep_undecided``)
        and flagged rows (``keep_flagged``); ``mode="column"`` keeps every row and adds a
        string column ``column``. Re-isolated rows get their new audio, signals and cost.

        >>> from samaudio_data.explorer import example_dataset
        >>> ex = Explorer(example_dataset(3)); ex.decide("discard", row=1)
        >>> len(ex.apply()), list(ex.apply(mode="column")["decision"])
        (2, [None, 'discard', None])
        """
        ds = self._ds if ds is None else ds
        _apply.check_mode(mode, len(ds), self._n)
        for v in self._views.values():
            if v.reisolated:
                ds = _apply.with_reisolations(
                    ds,
                    v.reisolated,
                    loader=v.loader,
                    reisolator=v.reisolator,
                    cost_column=v.cost_column,
                )
        if mode == "column":
            return _apply.decision_column(ds, self._state.decisions, column)
        return ds.select(
            _apply.keep_rows(
                self._n,
                self._state.decisions,
                keep_undecided=keep_undecided,
                keep_flagged=keep_flagged,
            )
        )


__all__ = ["DECISIONS", "Explorer", "ExplorerError", "Quote"]
