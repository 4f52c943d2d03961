"""``samaudio_data.ray.isolate(ds, "speech")``: a Ray Dataset through the endpoint, at one pace.

:class:`IsolateBatches` is the callable class ``map_batches`` runs on an actor pool: each
actor holds one :class:`~samaudio_data.Client` (rebuilt from its configuration: the key
comes from the worker's environment, ``SEGMIND_API_KEY``) and reads, sends and writes rows
exactly as the datasets helper does (:class:`samaudio_data.hf.Isolate`: the same columns,
signals, ``keep``, ``on_error`` and ``max_cost``). Every actor's client shares one
:class:`~samaudio_data.ray.Coordinator` for the account, so the whole cluster keeps the
account's pace, in-flight cap, 429 back-off, halt and budget.

Values read: the column's ``{"bytes", "path"}`` structs (``ray.data.from_huggingface``),
``{"array", "sampling_rate"}`` dicts, or, when the column is absent, the ``amplitude`` and
``sample_rate`` columns of ``ray.data.read_audio``.
"""

from __future__ import annotations

import uuid
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

    Parameters are those of :func:`samaudio_data.isolate` (``column``, ``output_column``,
    ``keep``, ``on_error``, ``max_cost``, ``client``, endpoint parameters), plus ``run``:
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
    ...     fn = IsolateBatches("half", client=Client("local-key", endpoint=ep.url,
    ...                                               cache_dir=False, progress=False))
    ...     out = fn({"audio": np.array([{"bytes": encode_wav(np.full(800, 0.2), 8000),
    ...                                   "path": "a.wav"}], dtype=object)})
    >>> round(float(out["isolated_target_db"][0]), 1), str(out["isolated_error"][0])
    (-6.0, '')
    """

    def __init__(
        self, description: str, *, client: Client | None = None, run: str | None = None, **options
    ) -> None:
        if client is None:
            client = Client(progress=False)
        if not client.has_key:
            raise errors.AuthenticationError(
                "no API key in this Ray worker: the key reaches workers through their "
                "environment. Export SEGMIND_API_KEY on every node before `ray start` (or in "
                "the cluster's secret store); it is never sent inside a task or a Ray object. "
                "Nothing was sent."
            )
        ledger = f"max_cost:ray:{run}" if run else None
        self.isolate = Isolate(description, client=client, budget_ledger=ledger, **options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        fn = self.isolate
        values = _values(batch, fn.column)
        out = fn({fn.column: values})
        result = dict(batch)
        for name, column in out.items():
            result[name] = _array(column)
        return result


def _values(batch: dict[str, Any], column: str) -> list[Any]:
    """The audio values of a batch: the column's, else read_audio's amplitude and rate."""
    if column in batch:
        return [_plain(v) for v in batch[column]]
    if "amplitude" in batch and "sample_rate" in batch:
        return [
            {"array": np.asarray(a), "sampling_rate": int(sr)}
            for a, sr in zip(batch["amplitude"], batch["sample_rate"], strict=True)
        ]
    raise errors.InvalidRequestError(
        f"the dataset has no column {column!r} (it has {list(batch)}) and no "
        "'amplitude'/'sample_rate' columns (ray.data.read_audio); pass column= naming the "
        "audio column."
    )


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
    description: str,
    *,
    client: Client | None = None,
    coordinator: Coordinator | None = None,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
    num_cpus: float = ACTOR_CPUS,
    **options,
):
    """Isolate ``description`` in every row of the Ray Dataset ``ds``; a new Dataset.

    The same columns and options as :func:`samaudio_data.isolate` (``column``,
    ``output_column``, ``keep``, ``on_error``, ``max_cost``, ``output_format``,
    ``reranking_candidates``, ``channels``); ``client`` gives the endpoint, the rate and
    the cache (an fsspec URL such as ``s3://bucket/prefix`` shares answers between nodes).
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
    if not ray.is_initialized():
        ray.init()
    coordinator.actor()  # created here, on the driver's node, before any worker asks
    worker_client = _with_coordinator(client, coordinator)
    Isolate(description, client=worker_client, **options)  # bad options fail here, now
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


def _with_coordinator(client: Client, coordinator: Coordinator) -> Client:
    """A client of the same configuration whose limits are the coordinator's (no key:
    workers read theirs from their environment)."""
    state = client.__getstate__()
    state["coordinator"] = coordinator
    copy = Client.__new__(Client)
    copy.__setstate__(state)
    return copy
