"""Re-isolating one row with another description: the price first, then the call.

:class:`ReisolateActions` is the explorer's side of it (``quote``, ``confirm``, showing a
re-isolated row); :class:`Reisolator` the calls, :class:`RowText` the default descriptions.

Uses the client's public API only: ``estimate`` for the price (``calls == 0`` means the answer
is cached and free), ``separate`` to run it. The audio of a re-isolation is not saved by the
explorer; it comes back from the client's result cache (free) in a later session.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import audio
from .._settings import CANDIDATES
from ..audio import cleaning_signals
from . import _format
from ._errors import ExplorerError

if TYPE_CHECKING:  # the explorer's parts, for the mixin's annotations only (no cycle)
    from ._rows import RowLoader
    from ._state import ReviewState
    from ._ui import UIState


@dataclasses.dataclass
class Quote:
    """The price of one re-isolation, shown before anything is spent.

    ``price`` is in dollars (0.0 when the answer is already cached); ``calls`` is how many
    billed requests it takes; ``row`` is the dataset index (shown 1-based).

    >>> print(Quote(row=2, description="dog barking", reranking_candidates=4, calls=1,
    ...             cached=False, price=0.062))
    row 3: isolate 'dog barking' with 4 candidate(s) costs $0.062 (1 billed call).
    """

    row: int
    description: str
    reranking_candidates: int
    calls: int
    cached: bool
    price: float

    def __str__(self) -> str:
        what = (
            f"row {self.row + 1}: isolate {self.description!r} with "
            f"{self.reranking_candidates} candidate(s)"
        )
        if self.cached:
            return f"{what} is already cached: free."
        calls = "1 billed call" if self.calls == 1 else f"{self.calls} billed calls"
        return f"{what} costs {_format.money(self.price)} ({calls})."


class Reisolator:
    """Prices and runs re-isolations through a client; remembers the new targets.

    >>> Reisolator(None).quote(0, np.zeros((1, 160)), 16000, "x", 1)
    Traceback (most recent call last):
    ...
    samaudio_data.explorer.ExplorerError: re-isolating needs a client:
    Explorer(ds, ..., client=Client(...)).
    """

    def __init__(self, client) -> None:
        self.client = client
        self.targets: dict[int, np.ndarray] = {}

    def _need_client(self) -> None:
        if self.client is None:
            raise ExplorerError(
                "re-isolating needs a client: Explorer(ds, ..., client=Client(...))."
            )

    def quote(
        self, row: int, original: np.ndarray, sr: int, description: str, candidates: int
    ) -> Quote:
        """What re-isolating ``row`` with ``description`` costs; nothing is sent."""
        self._need_client()
        description = (description or "").strip()
        if not description:
            raise ExplorerError(
                "type what to isolate in the re-isolate box (e.g. 'man "
                "speaking') before asking for the price."
            )
        span = f"{CANDIDATES[0]}..{CANDIDATES[-1]}"
        try:
            candidates = int(candidates)
        except (TypeError, ValueError):
            raise ExplorerError(
                f"candidates must be a whole number {span}, got {candidates!r}."
            ) from None
        if candidates not in CANDIDATES:
            raise ExplorerError(f"candidates must be {span}, got {candidates}.")
        est = self.client.estimate([original], sr, description, reranking_candidates=candidates)
        if est.invalid:  # a request the client would refuse: say why, never "free"
            raise ExplorerError(f"cannot re-isolate row {row + 1}: {est.invalid[0][1]}")
        if est.uncollectable:  # paid earlier, but asking for it would raise: never "free"
            raise ExplorerError(
                f"cannot re-isolate row {row + 1} with these settings now: the request was "
                "paid for earlier but its answer cannot be collected (asking raises "
                "UncollectableRequestError while its journal entry is kept). Try other "
                "settings, or delete its entry in the cache directory's journal/ folder to "
                "pay for it again."
            )
        return Quote(
            row=row,
            description=description,
            reranking_candidates=candidates,
            calls=int(est.calls),
            cached=est.calls == 0,
            price=float(est.cost),
        )

    def run(
        self, q: Quote, original: np.ndarray, sr: int, prior_cost: float = 0.0
    ) -> tuple[np.ndarray, dict]:
        """Spend the quote: the new mono target and the metadata to keep (never the key)."""
        self._need_client()
        sep = self.client.separate(
            original, sr, q.description, reranking_candidates=q.reranking_candidates
        )
        mix = audio.mix_to_mono(original)
        target = np.asarray(sep.target, np.float32)
        target = audio.mix_to_mono(target) if target.ndim == 2 else target
        residual = (mix - target).astype(np.float32)
        sig = cleaning_signals(mix, target, residual, sr)
        meta = {
            "description": q.description,
            "reranking_candidates": q.reranking_candidates,
            "params": {"reranking_candidates": q.reranking_candidates},
            "call_cost": float(sep.cost),
            # everything re-isolating this row cost (a row re-isolated twice paid twice)
            "cost": float(prior_cost) + float(sep.cost),
            "cached": bool(sep.cached),
            "seconds": float(sep.seconds),
            "signals": {
                k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v))
                for k, v in sig.items()
            },
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        self.targets[q.row] = target
        return target, meta

    def target(self, row: int, meta: dict[str, Any], original: np.ndarray, sr: int) -> np.ndarray:
        """The re-isolated target of ``row``: from memory, else from the client's cache
        (free); an ExplorerError if it would have to be paid for again."""
        if row in self.targets:
            return self.targets[row]
        if self.client is None:
            raise ExplorerError(
                f"row {row + 1} was re-isolated in an earlier session; its audio is in the "
                "client's cache: pass client=Client(..., cache_dir=<the same cache>)."
            )
        params = dict(
            meta.get("params") or {"reranking_candidates": meta.get("reranking_candidates", 1)}
        )
        est = self.client.estimate([original], sr, meta["description"], **params)
        if est.calls != 0:
            raise ExplorerError(
                f"the re-isolation of row {row + 1} ({meta['description']!r}) is not in this "
                f"client's cache ({self.client.cache_dir}); use the client and cache_dir it "
                "was made with, or re-isolate the row again (it would be billed)."
            )
        sep = self.client.separate(original, sr, meta["description"], **params)
        target = np.asarray(sep.target, np.float32)
        target = audio.mix_to_mono(target) if target.ndim == 2 else target
        self.targets[row] = target
        return target

    def default_candidates(self) -> int:
        """The client's default candidate count (1 without a client)."""
        return (
            int(getattr(self.client, "reranking_candidates", 1) or 1)
            if self.client is not None
            else 1
        )

    def redact(self, text: str) -> str:
        """``text`` with the client's key replaced (unchanged without a client)."""
        return self.client.redact(text) if self.client is not None else text


class RowText:
    """The explorer's ``description=``: None, a text for every row, a ``{column}`` template
    filled from the row, or a function of the row. ``get(row)`` is None when nothing was
    given, "" when the row cannot fill it.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"label": ["dog barking", None]})
    >>> t = RowText(ds, "a {label}")
    >>> t.per_row, t.get(0), t.get(1)
    (True, 'a dog barking', '')
    >>> RowText(ds, "speech").constant, RowText(ds, None).get(0)
    ('speech', None)
    """

    def __init__(self, ds, description: Any) -> None:
        from ..hf._prompts import RowValue

        self._ds = ds
        self._value = None
        if description is None:
            return
        value = RowValue("description", description, lambda text: text)
        if value.constant and not isinstance(value.value, str):
            raise ExplorerError(
                f"description must be a text, a '{{column}}' template or a "
                f"function of the row, got {description!r}."
            )
        columns = list(getattr(ds, "column_names", None) or [])
        missing = [c for c in value.columns if c not in columns]
        if missing:
            raise ExplorerError(
                f"the description {description!r} names the column "
                f"{missing[0]!r}, which the dataset does not have (it has "
                f"{columns})."
            )
        self._value = value

    @property
    def per_row(self) -> bool:
        """Whether the text depends on the row."""
        return self._value is not None and not self._value.constant

    @property
    def constant(self) -> Any:
        """The text given for every row (None if none, or if it depends on the row)."""
        return self._value.value if self._value is not None and self._value.constant else None

    def get(self, row: int) -> Any:
        """The text for dataset row ``row`` (see the class docstring)."""
        if self._value is None:
            return None
        if self._value.constant:
            return self._value.value
        try:
            text = self._value.get(_DatasetRow(self._ds, row), "")
        except Exception:  # noqa: BLE001 - a row that cannot fill it: an empty box
            return ""
        return text if isinstance(text, str) else ""


class _DatasetRow(Mapping):
    """Row ``row`` of ``ds``, reading one column when asked for it (never all the audio)."""

    def __init__(self, ds, row: int) -> None:
        self._ds, self._row = ds, row
        self._read: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._read:
            if key not in self._ds.column_names:
                raise KeyError(key)
            self._read[key] = self._ds.select_columns([key])[self._row][key]
        return self._read[key]

    def __iter__(self):
        return iter(self._ds.column_names)

    def __len__(self) -> int:
        return len(self._ds.column_names)


class ReisolateActions:
    """The re-isolation half of :class:`~samaudio_data.explorer.Explorer`: price the row shown
    with another description (:meth:`quote`), spend it (:meth:`confirm`), and show a
    re-isolated row's new sound.

    >>> from samaudio_data.explorer import Explorer, example_dataset
    >>> isinstance(Explorer(example_dataset(2)), ReisolateActions)
    True
    """

    _state: ReviewState
    _ui: UIState
    _loader: RowLoader
    _reiso: Reisolator
    _per_row: bool
    _media_row: int | None
    isolated: str

    @property
    def row(self) -> int:
        raise NotImplementedError

    def _row_description(self, row: int) -> str:
        raise NotImplementedError

    def _refresh(self) -> None:
        raise NotImplementedError

    def _changed(self, moved: bool = False) -> None:
        raise NotImplementedError

    def quote(
        self, description: str | None = None, reranking_candidates: int | None = None
    ) -> Quote:
        """Price re-isolating the row shown (nothing is sent); :meth:`confirm` spends it.

        >>> from samaudio_data import Client
        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint(keys={"k": None}) as ep:
        ...     client = Client("k", endpoint=ep.url, cache_dir=False, progress=False)
        ...     ex = Explorer(example_dataset(2), client=client)
        ...     print(ex.quote("half", reranking_candidates=2))
        ...     print(ex.confirm()["cost"], ex.message)
        row 1: isolate 'half' with 2 candidate(s) costs $0.062 (1 billed call).
        0.062 row 1 re-isolated with 'half' for $0.062.
        """
        ui = self._ui
        description = self._shown_description() if description is None else description
        cand = ui.candidates if reranking_candidates is None else reranking_candidates
        data = self._loader.read(self.row)
        q = self._reiso.quote(self.row, data.original, data.sr, description, cand)
        ui.quote, ui.description, ui.candidates = q, q.description, q.reranking_candidates
        ui.description_row = self.row
        self._refresh()
        return q

    def confirm(self) -> dict:
        """Run the re-isolation priced by :meth:`quote` (see its example); the row then shows
        the new sound, signals, cost and cached state. Its metadata (never the key) goes to
        the session file.

        >>> from samaudio_data.explorer import Explorer, example_dataset
        >>> Explorer(example_dataset(2)).confirm()
        Traceback (most recent call last):
        ...
        samaudio_data.explorer.ExplorerError: nothing to confirm: ask for the price first
        (quote() or the price button).
        """
        q = self._ui.quote
        if q is None:
            raise ExplorerError(
                "nothing to confirm: ask for the price first (quote() or the price button)."
            )
        self._ui.quote = None
        if q.row != self.row:
            raise ExplorerError("the row changed since the price was shown; ask again.")
        data = self._loader.read(q.row)
        prior = float(self._state.reisolated.get(q.row, {}).get("cost", 0.0))
        _, meta = self._reiso.run(q, data.original, data.sr, prior_cost=prior)
        self._state.record_reisolation(q.row, meta, self.isolated)
        self._loader.forget(q.row)
        self._media_row = None
        how = "from the cache (free)" if meta["cached"] else f"for ${meta['call_cost']:.3f}"
        self._ui.say(f"row {q.row + 1} re-isolated with {q.description!r} {how}.")
        self._changed()
        return dict(meta)

    def _shown_description(self) -> str:
        """What the re-isolate box holds: what was typed (on this row, when each row has its
        own default), else the row's default."""
        ui = self._ui
        if not self._per_row or ui.description_row == self.row:
            return ui.description
        return self._row_description(self.row)

    def _media(self, row: int):
        meta = self._state.reisolated.get(row)
        if meta is None or self._loader.cached(row) is not None:
            return self._loader.media(row)
        data = self._loader.read(row)
        try:
            target = self._reiso.target(row, meta, data.original, data.sr)
            note = f"re-isolated: {meta['description']!r}, {meta['reranking_candidates']} cand."
        except ExplorerError as exc:
            target, note = None, f"re-isolation unavailable ({exc}); showing the dataset's"
        return self._loader.media(row, target, note)
