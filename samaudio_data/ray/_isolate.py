"""``samaudio_data.ray.isolate(ds, "speech")``: a Ray Dataset through the endpoint, at one pace.

:class:`IsolateBatches` is the callable class ``map_batches`` runs on an actor pool: each
actor holds one :class:`~samaudio_data.Client` (rebuilt from its configuration: the key
comes from the worker's environment, ``SEGMIND_API_KEY``) and reads, sends and writes rows
exactly as the datasets helper does (:class:`samaudio_data.hf.Isolate`: the same columns,
signals, ``keep``, ``on_error`` and ``max_cost``, and descriptions filled from each row:
``"{label}"``, a function of the row, or a dict of stems). Every actor's client shares one
:class:`~samaudio_data.ray.Coordinator` for the account, so the whole cluster keeps the
account's pace, in-flight cap, 429 back-off, halt and budget.

Values read: the column's ``{"bytes", "path"}`` structs (``ray.data.from_huggingface``),
``{"array", "sampling_rate"}`` dicts, or, when the column is absent, the ``amplitude`` and
``sample_rate`` columns of ``ray.data.read_audio``. A row's other columns reach its
description as plain Python values (``str``, ``int``...), as in the datasets helper.

An error of the library raised in a worker reaches the driver as itself (a
``RayTaskError`` that is also, say, an :class:`~samaudio_data.errors.InvalidRequestError`,
with its ``message``), not as Ray Data's ``UserCodeException``, so ``except`` clauses
written for one machine work on a cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .. import errors
from .._client import Client
from ..hf import Isolate
from ._coordinator import Coordinator

DEFAULT_CONCURRENCY = 4
ACTOR_CPUS = 0.01  # network-bound: never starve the readers and decoders


class IsolateBatches:
    """A ``map_batches`` callable class: isolate ``description`` in each batch's audio.

    Parameters are those of :func:`samaudio_data.isolate` (``description``: a string, a
    template such as ``"{label}"``, a function of the row or a dict of stems; ``column``,
    ``output_column``, ``keep``, ``on_error``, ``max_cost``, ``client``, endpoint
    parameters), plus ``run``:
    the name of this run's ``max_cost`` ledger, the same in every actor (default: a new
    one per :func:`isolate` call). For your own ``map_batches`` call, give the client a
    coordinator and run the class on an actor pool that reserves almost no CPU::

        client = Client(requests_per_minute=50, coordinator=Coordinator(),
                        cache_dir="s3://bucket/samaudio")
        ds.map_batches(IsolateBatches, fn_constructor_kwargs={"description": "speech",
                       "client": client}, batch_size=64, concurrency=4, num_cpus=0.01)

    Example
    -------
    >>> import numpy as np
    >>> from samaudio_data import Client
    >>> from samaudio_data.audio import encode_wav
    >>> from samaudio_data.testing import LocalEndpoint
    >>> with LocalEndpoint() as ep:
    ...     fn = IsolateBatches("half the {label}", client=Client(
    ...         "local-key", endpoint=ep.url, cache_dir=False, progress=False))
    ...     out = fn({"audio": np.array([{"bytes": encode_wav(np.full(800, 0.2), 8000),
    ...                                   "path": "a.wav"}], dtype=object),
    ...               "label": np.array(["dog"])})
    >>> round(float(out["isolated_target_db"][0]), 1), str(out["isolated_error"][0])
    (-6.0, '')
    >>> str(out["isolated_description"][0])
    'half the dog'
    """

    def __init__(
        self, description: Any, *, client: Client | None = None, run: str | None = None, **options
    ) -> None:
        if client is None:
            client = Client(progress=False)
        ledger = f"max_cost:ray:{run}" if run else None
        self.isolate = Isolate(description, client=client, budget_ledger=ledger, **options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        fn = self.isolate
        try:
            # checked here, not in __init__: an actor that fails to start reaches the driver
            # as Ray's ActorDiedError, a batch's error as the library's own type
            if not fn.client.has_key:
                raise errors.AuthenticationError(
                    "no API key in this Ray worker: the key reaches workers through their "
                    "environment. Export SEGMIND_API_KEY on every node before `ray start` (or "
                    "in the cluster's secret store); it is never sent inside a task or a Ray "
                    "object. Nothing was sent."
                )
            _check_columns(fn, list(batch))  # before anything is sent
            values = _values(batch, fn.column)
            # the whole batch: a description may be filled from the row's other columns
            out = fn(_Batch(batch, fn.column, values))
        except errors.SamAudioError:
            _raise_as_is()
            raise
        result = dict(batch)
        for name, column in out.items():
            result[name] = _array(column)
        return result


def _check_columns(fn: Isolate, names: list[str]) -> None:
    """Refuse, before anything is sent, a dataset lacking the audio or a template's column."""
    if fn.column not in names and not {"amplitude", "sample_rate"} <= set(names):
        raise errors.InvalidRequestError(
            f"the dataset has no column {fn.column!r} (it has {names}) and no "
            "'amplitude'/'sample_rate' columns (ray.data.read_audio); pass column= naming the "
            "audio column. Nothing was sent."
        )
    fn.prompts.check_columns(names)


def _raise_as_is() -> None:
    """Let the library's error being raised reach the driver as its own type: Ray Data wraps
    a map function's exception in a ``UserCodeException`` (its type lost to ``except``)
    unless the running task's ``DataContext`` says ``raise_original_map_exception``. That
    context is this task's own copy, so nothing else is changed; outside a Ray actor
    (``IsolateBatches`` called directly) nothing is touched."""
    try:
        import ray
        import ray.data

        if not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
            return
        ray.data.DataContext.get_current().raise_original_map_exception = True
    except Exception:  # noqa: BLE001 - the error being raised matters, not this
        pass


def _values(batch: dict[str, Any], column: str) -> list[Any]:
    """The audio values of a batch: the column's, else read_audio's amplitude and rate."""
    if column in batch:
        return [_plain(v) for v in batch[column]]
    return [
        {"array": np.asarray(a), "sampling_rate": int(sr)}
        for a, sr in zip(batch["amplitude"], batch["sample_rate"], strict=True)
    ]


class _Batch(Mapping):
    """A numpy batch as the datasets helper reads one: the audio column as ``values``, every
    other column's values as plain Python values (``str``, not ``numpy.str_``), converted
    only when a description reads them."""

    def __init__(self, batch: dict[str, Any], column: str, values: list[Any]) -> None:
        self._batch, self._column, self._values = batch, column, values

    def __getitem__(self, key: str) -> Any:
        if key == self._column:
            return self._values
        return _Column(self._batch[key])

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._batch, self._column]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._batch, self._column]))


class _Column:
    """One column of a numpy batch whose items read as plain Python values."""

    def __init__(self, values: Any) -> None:
        self._values = values

    def __getitem__(self, i: int) -> Any:
        value = _plain(self._values[i])
        return value.item() if isinstance(value, np.generic) else value

    def __len__(self) -> int:
        return len(self._values)


def _plain(value: Any) -> Any:
    """A struct value as a plain dict (Ray hands numpy batches of dicts, or arrow rows)."""
    if value is None or isinstance(value, dict):
        return value
    if hasattr(value, "as_py"):
        return value.as_py()
    if hasattr(value, "items"):
        return dict(value.items())
    return value


def _array(column: list[Any]) -> np.ndarray:
    if column and isinstance(column[0], dict):
        arr = np.empty(len(column), dtype=object)
        arr[:] = column
        return arr
    return np.asarray(column)


def isolate(
    ds,
    description: Any,
    *,
    client: Client | None = None,
    coordinator: Coordinator | None = None,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
    num_cpus: float = ACTOR_CPUS,
    **options,
):
    """Isolate ``description`` in every row of the Ray Dataset ``ds``; a new Dataset.

    The same descriptions, columns and options as :func:`samaudio_data.isolate`:
    ``description`` a string, a template filled from each row (``"{label}"``), a function
    of the row or a dict of stems; ``column``, ``output_column``, ``keep``, ``on_error``,
    ``max_cost``, ``output_format``, ``reranking_candidates``, ``channels``. Bad options,
    and a template naming a column ``ds`` does not have (when its schema is known without
    running it; else each worker's first batch), raise
    :class:`~samaudio_data.errors.InvalidRequestError` before anything is sent; the
    library's errors raised on a worker reach you as their own types. ``client`` gives
    the endpoint, the rate and the cache (an fsspec URL such as ``s3://bucket/prefix``
    shares answers between nodes).
    ``concurrency`` actors (spread over the nodes, Ray Data's default), each reserving
    ``num_cpus`` (almost none: the work is waiting on the network), process ``batch_size``
    rows at a time (an actor works on one block at a time: a dataset of one block keeps
    one actor busy, so ``repartition`` a small one); every actor shares the
    ``coordinator`` (one per account, created here on this node if needed), so the
    whole cluster keeps the account's pace. ``max_cost`` bounds this call's spend across
    every node. The key is read by each worker from its environment (``SEGMIND_API_KEY``),
    never shipped with the task.

    Lazy, like every Ray Data transform: nothing is sent until the dataset is consumed.
    Example (it needs a Ray cluster, so it is run by ``tests/test_ray.py``, not here)::

        import ray
        from samaudio_data import Client
        from samaudio_data.ray import isolate

        ds = ray.data.read_audio("s3://bucket/clips/")   # or ray.data.from_huggingface(hf_ds)
        client = Client(requests_per_minute=50, cache_dir="s3://bucket/samaudio-cache")
        out = isolate(ds, "speech", client=client, max_cost=20)
        out.write_parquet("s3://bucket/cleaned/")
    """
    import ray

    client = client if client is not None else Client(progress=False)
    coordinator = coordinator or client.coordinator or Coordinator()
    # the same settings, the limits the coordinator's; pickled without the key (workers
    # read theirs from their environment)
    worker_client = client.with_options(coordinator=coordinator)
    fn = Isolate(description, client=worker_client, **options)  # bad options fail here, now
    schema = ds.schema(fetch_if_missing=False)  # known without running anything, or None
    if schema is not None:  # else each worker checks its batches, before sending
        _check_columns(fn, list(schema.names))
    if not ray.is_initialized():
        ray.init()
    coordinator.actor()  # created here, on the driver's node, before any worker asks
    return ds.map_batches(
        IsolateBatches,
        batch_format="numpy",
        batch_size=batch_size,
        fn_constructor_kwargs=dict(
            options, description=description, client=worker_client, run=uuid.uuid4().hex
        ),
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
    )
