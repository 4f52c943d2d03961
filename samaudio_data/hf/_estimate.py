"""``estimate_cost(ds, isolate(...))``: what a map would pay for, counted without sending.

Every row is read as the map will read it (its own description and options, every stem, the
quality triage's silent inputs and rerank policy) and each call is looked up in the client's
cache; nothing is sent.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import errors
from .._estimate import CostEstimate, Counts, Tally
from . import _triage
from ._map import Isolate
from ._values import dataset_rows, declared_dtype, read_value


def estimate_cost(dataset, fn: Isolate) -> CostEstimate:
    """Count the calls ``dataset.map(fn)`` would pay for, and the cache hits. Sends nothing.

    Every row's own description and every stem is counted. Works on ``Dataset`` and
    ``IterableDataset`` (which it iterates). Rows whose audio is missing or invalid, or
    whose description or options come out unusable, are counted in ``invalid``.

    >>> from datasets import Dataset
    >>> from samaudio_data import Client, isolate
    >>> ds = Dataset.from_dict({"audio": [{"array": [0.1] * 800, "sampling_rate": 8000},
    ...                                   None]})
    >>> est = estimate_cost(ds, isolate("speech", client=Client("k", cache_dir=False)))
    >>> est.calls, est.invalid
    (1, [(1, 'this row has no audio (the value is None).')])
    """
    if not isinstance(fn, Isolate):
        raise errors.InvalidRequestError("estimate_cost needs the result of isolate(...).")
    client = fn.client
    fn.sample_dtype = fn.sample_dtype or declared_dtype(
        getattr(dataset, "features", None), fn.column
    )
    tally = Tally(client.price_per_call)

    def count(i: int, value: Any, row: Any) -> Counts:
        # one row, every stem: the same reading and call counting as the map's sends
        if isinstance(value, BaseException):
            raise value
        try:
            y, sr = read_value(value, dtype=fn.sample_dtype)
        except errors.SamAudioError:
            raise
        except Exception as exc:  # a decoder's own error on a broken file
            raise errors.InvalidAudioError(
                f"cannot decode this row's audio ({type(exc).__name__}: {exc})"
            ) from exc
        asks = fn.prompts.resolve(row, "")
        tally.invalid += [(i, a.message) for a in asks if isinstance(a, BaseException)]
        if _triage.silent_input(y, sr):  # answered locally: every stem free
            tally.silent += 1
            return Counts()
        total = Counts()
        for ask in asks:
            if isinstance(ask, BaseException):
                continue
            est = client.estimate([y], sr, ask[0], **ask[1])
            if est.invalid:
                tally.invalid.append((i, est.invalid[0][1]))
            elif fn.on_doubt == "rerank":
                tally.rerank_calls += _triage.rerank_calls(
                    client, y, sr, ask[0], ask[1], fn.rerank_candidates
                )
            total += est.counts()
        return total

    for i, value, row in dataset_rows(dataset, fn.column, fn.prompts):
        tally.add(i, functools.partial(count, i, value, row))
    return tally.result()
