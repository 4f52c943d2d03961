"""``dataset.map(isolate("speech"))``: clean a whole Hugging Face dataset, paying once per clip.

:func:`isolate` returns a callable for ``Dataset.map`` and ``IterableDataset.map``, batched
or not, with any ``num_proc``. Rows of a batch are sent concurrently through one
:class:`~samaudio_data.Client`, whose cache makes reruns, crashes and in-memory datasets cost
nothing for rows already paid for, and whose shared limits keep ``num_proc`` workers under one
concurrency cap and pace.

The columns each row gets (audio, cost, error, flags, cleaning signals) are listed in
:mod:`samaudio_data.hf._rows`.

Keep the rows that look right with ``ds.filter(lambda r: not r["isolated_flag"])``. A row
whose input is silent (peak below -60 dBFS) is answered locally with silence, flagged
``absent:silent_input`` and costs nothing. ``on_doubt`` says what happens to a flagged row:
``"keep"`` (default) only flags it; ``"rerank"`` asks once more with
``rerank_candidates`` reranking candidates (a paid, cached call within ``max_cost``) and keeps
the answer with the better verdict; ``"skip"`` replaces its audio with silence.

The description may come from each row (``isolate("{label}")``, a function of the row) and a
map may ask for several sounds per row (``isolate({"voice": "speech", "bgm": "music"})``, one
set of the columns above per stem): see :mod:`samaudio_data.hf._prompts` and :func:`isolate`.

Example
-------
>>> import numpy as np, tempfile
>>> from datasets import Dataset
>>> from samaudio_data import Client, isolate, estimate_cost
>>> from samaudio_data.testing import LocalEndpoint
>>> tone = 0.3 * np.sin(np.arange(8000) / 3)
>>> ds = Dataset.from_dict({"audio": [{"array": a * tone, "sampling_rate": 8000}
...                                   for a in (0.5, 1.0)]})
>>> with LocalEndpoint() as ep:
...     client = Client("local-key", endpoint=ep.url, cache_dir=tempfile.mkdtemp(),
...                     progress=False)
...     print(estimate_cost(ds, isolate("speech", client=client)))
...     ds = ds.map(isolate("speech", client=client), batched=True, batch_size=16)
2 calls to pay for, 0 already cached: about $0.12 at $0.062 per call
>>> len(ds.filter(lambda r: r["isolated_present"] and r["isolated_target_db"] > -10))
2
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import _settings, errors
from .._client import Client
from .._models import Budget
from .._version import __version__
from . import _hints, _rows, _triage
from ._prompts import BatchRow, Prompts, Stem, row_names
from ._values import SharedClip, read_column

ON_ERROR = ("raise", "skip", "keep_original")


class Isolate:
    """The callable returned by :func:`isolate`; see there."""

    def __init__(
        self,
        description: Any,
        *,
        column: str = "audio",
        output_column: str = "isolated",
        keep: Any = "target",
        on_error: str = "raise",
        max_cost: float | None = None,
        client: Client | None = None,
        sample_dtype: str | None = None,
        on_doubt: str = "keep",
        rerank_candidates: int = _triage.RERANK_CANDIDATES,
        budget_ledger: str | None = None,
        **endpoint_params,
    ) -> None:
        if sample_dtype is not None and not (
            isinstance(sample_dtype, str) and sample_dtype in ("int8", "int16", "int32", "uint8")
        ):
            raise errors.InvalidRequestError(
                f"sample_dtype must be 'int8', 'int16', 'int32' or 'uint8', got {sample_dtype!r}."
            )
        self.sample_dtype = sample_dtype
        _settings.check_choice("on_error", on_error, ON_ERROR)
        if max_cost is not None and not (isinstance(max_cost, (int, float)) and max_cost >= 0):
            raise errors.InvalidRequestError(
                f"max_cost must be a number of dollars >= 0, got {max_cost!r}."
            )
        prompts = Prompts(
            description, output_column=output_column, keep=keep, params=endpoint_params
        )
        # what the fingerprint sees: a constant as checked (as before templates existed),
        # a template, callable or dict of stems as given
        only = prompts.stems[0].description
        self.description = only.value if len(prompts.stems) == 1 and only.constant else description
        self.params = {n: (v.value if v.constant else v.spec) for n, v in prompts.options.items()}
        self.params.update(prompts.fixed)
        own = prompts.options.get("reranking_candidates")
        self.on_doubt, self.rerank_candidates = _triage.check_policy(
            on_doubt, rerank_candidates, own.value if own is not None and own.constant else None
        )
        self.column = column
        self.output_column = output_column
        self.keep = keep
        self.on_error = on_error
        self.max_cost = max_cost
        # the name max_cost is shared under (default: these settings, this Python session;
        # samaudio_data.ray names one per run, the same on every node)
        self.budget_ledger = budget_ledger
        self._client = client
        self.prompts = prompts
        # what the answers depend on: part of the datasets fingerprint, so a map run against
        # one endpoint (a local stand-in, say) is never reused for another
        self.endpoint = client.identity if client is not None else _settings.endpoint(None)
        self._budget: Budget | None = None
        self._hinted = False
        self._batches = 0

    # --- what the fingerprint sees ------------------------------------------------------

    def __getstate__(self) -> dict:
        # datasets hashes this for the map fingerprint: configuration only (the client
        # pickles its own configuration, never the key or its connections)
        return {
            "description": self.description,
            "column": self.column,
            "output_column": self.output_column,
            "keep": self.keep,
            "on_error": self.on_error,
            "max_cost": self.max_cost,
            "params": self.params,
            "client": self._client,
            "endpoint": self.endpoint,
            "sample_dtype": self.sample_dtype,
            "version": __version__,
            "on_doubt": self.on_doubt,
            "rerank_candidates": self.rerank_candidates,
            **({"budget_ledger": self.budget_ledger} if self.budget_ledger else {}),
        }

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop("version", None)
        state.setdefault("sample_dtype", None)
        state.setdefault("on_doubt", "keep")
        state.setdefault("rerank_candidates", _triage.RERANK_CANDIDATES)
        self._client = state.pop("client")
        state.setdefault("budget_ledger", None)
        self.__dict__.update(state)
        self.prompts = Prompts(
            self.description, output_column=self.output_column, keep=self.keep, params=self.params
        )
        self._budget = None
        self._hinted = False
        self._batches = 0

    def __repr__(self) -> str:
        return (
            f"isolate({self.description!r}, column={self.column!r}, "
            f"output_column={self.output_column!r}, keep={self.keep!r}, "
            f"on_error={self.on_error!r}, max_cost={self.max_cost!r}, "
            f"on_doubt={self.on_doubt!r}, params={self.params})"
        )

    @property
    def client(self) -> Client:
        """The client used (a default ``Client()`` from the environment if none was given)."""
        if self._client is None:
            self._client = Client(progress=False)
        return self._client

    @property
    def output_columns(self) -> list[str]:
        """Names of the columns this map adds (one set per stem)."""
        return [c for stem in self.prompts.stems for c in stem.columns]

    @property
    def audio_columns(self) -> list[str]:
        """The audio columns this map adds: cast them with ``Audio()``."""
        return [c for stem in self.prompts.stems for c in stem.audio_columns]

    def budget(self) -> Budget | None:
        """The shared ``max_cost`` budget: one per (this map's settings, Python session)."""
        if self.max_cost is None:
            return None
        if self._budget is None:
            from datasets.fingerprint import Hasher

            ledger = self.budget_ledger or f"max_cost:{Hasher.hash(self)}:{_session_id()}"
            self._budget = Budget(self.max_cost, limits=self.client.limits, ledger=ledger)
        return self._budget

    # --- the map function ---------------------------------------------------------------

    def __call__(self, examples: Mapping[str, Any], indices: Any = None, *rank) -> dict[str, Any]:
        # map(..., with_indices=True) passes the rows' indices (named in errors); a rank
        # (with_rank=True) comes after them and is not needed
        if self.column not in examples:
            raise errors.InvalidRequestError(
                f"the dataset has no column {self.column!r} (it has {list(examples)}); pass "
                "column= naming the audio column."
            )
        self.prompts.check_columns(list(examples.keys()))  # before anything is sent
        values = read_column(examples, self.column)  # datasets decodes it here, lazily
        batched = isinstance(values, list)
        values = values if batched else [values]
        rows = [BatchRow(examples, i if batched else None) for i in range(len(values))]
        before = self.client.usage.billed
        out = self._process(values, rows, row_names(len(values), batched, indices))
        paid = self.client.usage.billed > before
        self._batches += 1
        if batched and paid:
            self._hint_batch_size(len(values), len(self.prompts.stems))
        elif not batched and paid:
            self._hint_unbatched()
        return out if batched else {k: v[0] for k, v in out.items()}

    def _hint_unbatched(self) -> None:
        """Once: an unbatched map waits for each row's answer before the next row."""
        if not self._hinted:
            self._hinted = True
            _hints.warn_at_user(_hints.UNBATCHED)

    def _hint_batch_size(self, rows: int, calls_per_row: int = 1) -> None:
        """Once: say so when batches this small leave the account idle > 10 % of the time."""
        if self._hinted:
            return
        advice = _hints.batch_size_advice(
            self.client.limits.snapshot(), rows, calls_per_row, self._batches
        )
        if advice is not None:
            self._hinted = True
            _hints.warn_at_user(advice)

    def _process(
        self, values: list[Any], rows: list[Any], names: list[str]
    ) -> dict[str, list[Any]]:
        stems = self.prompts.stems
        # every row's requests (description and options from the row) before any is sent
        asks = [self.prompts.resolve(row, name) for row, name in zip(rows, names, strict=True)]
        if self.on_error == "raise":
            for i, v in enumerate(values):  # a missing clip stops the batch before any request
                if v is None:
                    raise errors.InvalidAudioError(
                        f"{names[i]} has no audio (None); use on_error='skip' to keep going."
                    )
                bad = next((a for a in asks[i] if isinstance(a, BaseException)), None)
                if bad is not None:
                    raise bad
        client = self.client
        budget = self.budget()
        clips = [SharedClip(v, uses=len(stems), dtype=self.sample_dtype) for v in values]

        def work(task) -> dict[str, Any]:
            # one call start to finish in a worker thread: decoding, encoding and the output
            # row overlap with other calls instead of waiting for the whole batch; a row's
            # stems are separate tasks of the same pool, sent together at the limit
            i, s = task
            ask, orig = asks[i][s], None
            description = "" if isinstance(ask, BaseException) else ask[0]
            try:
                orig = clips[i].read()
                if isinstance(ask, BaseException):
                    raise ask
                # a silent input is answered locally; a doubtful answer reranked if asked
                res = _triage.separate(
                    client,
                    orig,
                    description,
                    ask[1],
                    budget=budget,
                    on_doubt=self.on_doubt,
                    rerank_candidates=self.rerank_candidates,
                )
                return self._row(stems[s], description, res, orig)
            except errors.STOPS:
                raise
            except errors.SamAudioError as exc:
                if self.on_error == "raise":
                    raise
                return self._row(stems[s], description, exc, orig)

        tasks = [(i, s) for i in range(len(values)) for s in range(len(stems))]
        results = client.map(work, tasks, progress=False)
        out: dict[str, list[Any]] = {}
        for s, stem in enumerate(stems):
            mine = results[s :: len(stems)]
            out.update({c: [r[c] for r in mine] for c in stem.columns})
        return out

    def _row(self, stem: Stem, description: str, res: Any, orig) -> dict[str, Any]:
        return _rows.output_row(
            stem,
            description,
            res,
            orig,
            on_doubt=self.on_doubt,
            on_error=self.on_error,
            redact=self.client.redact,
        )


def _session_id() -> str:
    """Identify this Python session (the main process), also from a num_proc worker."""
    try:
        import multiprocess

        parent = multiprocess.parent_process()
    except ImportError:  # pragma: no cover - multiprocess comes with datasets
        parent = None
    pid = parent.pid if parent is not None else os.getpid()
    try:
        with open(f"/proc/{pid}/stat") as fh:
            start = fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "0"
    return f"{pid}-{start}"


def isolate(
    description: Any,
    *,
    column: str = "audio",
    output_column: str = "isolated",
    keep: Any = "target",
    on_error: str = "raise",
    max_cost: float | None = None,
    client: Client | None = None,
    sample_dtype: str | None = None,
    on_doubt: str = "keep",
    rerank_candidates: int = _triage.RERANK_CANDIDATES,
    **endpoint_params,
) -> Isolate:
    """A ``.map`` function that isolates ``description`` in an audio column.

    Parameters
    ----------
    description : what to isolate, for every row or from each row:

        - a string, e.g. ``"speech"``, ``"dog barking"``;
        - a template filled from the row's columns: ``"{label}"``, ``"a {instrument}
          playing"`` (``{{`` and ``}}`` for literal braces);
        - a callable ``fn(row) -> str`` (``row`` maps column names to the row's values);
        - a dict of stems, ``{"voice": "speech", "bgm": "background music"}``: one paid call
          per stem and row (each cached on its own, all sent together at the account's
          limit), and one set of columns per stem named by its key (``voice``,
          ``voice_cost``, ... ``bgm``, ...); each value a string, template or callable.

        A row whose description comes out empty, missing (``None``) or without a word
        follows ``on_error``; a template naming a column the dataset lacks fails before
        anything is sent. The description each row was sent with is kept in
        ``<output_column>_description``.
    column : the audio column to read (decoded, ``{"array", "sampling_rate"}`` or
        ``Audio(decode=False)`` values).
    output_column : name of the new audio column, also the prefix of the per-row columns
        (with stems, the dict's keys instead).
    keep : ``"target"`` (the sound), ``"residual"`` (everything else) or ``"both"``; with
        stems, one for all or a dict per stem (``{"bgm": "residual"}``; default target).
    on_error : ``"raise"`` stops the map; ``"skip"`` leaves silence and fills
        ``<output_column>_error``; ``"keep_original"`` copies the input audio instead.
        A 401, 403, 406 or ``max_cost`` always stops the map (and every num_proc worker).
        Map with ``with_indices=True`` for errors that name dataset rows.
    max_cost : dollars this map may spend in this Python session (all workers together);
        the row that would pass it is not sent and the map stops, saying so.
    client : a :class:`~samaudio_data.Client`; by default one from the environment.
    sample_dtype : the integer type of a ``{"array", "sampling_rate"}`` column's samples
        (``"int16"``...). ``datasets`` hands integer lists to a map as Python ints (int64
        with numpy formatting), losing their width; without this (or the dataset's own
        features, which :func:`estimate_cost` and :func:`prefetch` read into it) such rows
        are refused rather than read as 64-bit PCM (silence).
    on_doubt : what to do with a row the quality triage flags: ``"keep"`` (flag only),
        ``"rerank"`` (ask once more with ``rerank_candidates`` candidates, priced within
        ``max_cost`` and cached; keep the better verdict), ``"skip"`` (silence instead).
    rerank_candidates : the ``reranking_candidates`` of a rerank (2..8, default 4).
    endpoint_params : ``output_format``, ``reranking_candidates`` (each a constant, a
        template such as ``"{cands}"`` or a callable, checked per row before sending),
        ``channels``.

    Example
    -------
    >>> fn = isolate("music", output_column="no_music", keep="residual")
    >>> fn.output_columns[:3]
    ['no_music', 'no_music_cost', 'no_music_seconds']
    >>> stems = isolate({"voice": "speech", "bgm": "{genre} music"}, keep={"bgm": "both"})
    >>> stems.audio_columns
    ['voice', 'bgm', 'bgm_residual']
    """
    return Isolate(
        description,
        column=column,
        output_column=output_column,
        keep=keep,
        on_error=on_error,
        max_cost=max_cost,
        client=client,
        sample_dtype=sample_dtype,
        on_doubt=on_doubt,
        rerank_candidates=rerank_candidates,
        **endpoint_params,
    )
