"""Advice a map gives once, as a warning at the user's ``ds.map(...)`` line: an unbatched map,
or batches so small that the account sits idle (the batch-size hint)."""

from __future__ import annotations

import math
import os
import sys
import warnings
from types import FrameType
from typing import cast

UNBATCHED = (
    "this map is not batched: each row's request waits for the previous row's answer, "
    "one call's latency (~12.6 s on the real endpoint) per row, whatever the account's "
    "limit. Pass batched=True with batch_size >= 9 x latency x rate (e.g. "
    "ds.map(fn, batched=True, batch_size=128), also for an IterableDataset), or run "
    "samaudio_data.prefetch(ds, fn) first: it sends every row at the limit."
)


def batch_size_advice(snap: dict, rows: int, calls_per_row: int, batches: int) -> str | None:
    """The warning when batches of ``rows`` leave the account idle > 10 % of the time, else None.

    A batch of ``B`` rows at ``r`` requests/s takes ``B / r`` to send, then waits one
    latency ``L`` for its slowest answer, idle: the idle share is ``L / (B / r + L)``, at
    most 10 % from ``B >= 9 L r`` on (``B`` counts calls: rows times stems). Silent when
    no bigger batch exists: a dataset (or ``num_proc`` shard) of at most that many rows,
    or a first batch that was the whole dataset (``batches`` is how many were mapped).
    ``snap`` is the shared limits' snapshot (``rate_per_minute``, ``latency``).
    """
    rate, latency = snap["rate_per_minute"], snap["latency"]
    if not rate or not latency:
        return None
    per_second = rate / 60.0
    idle = latency / (rows * calls_per_row / per_second + latency)
    best = int(math.ceil(9 * latency * per_second / calls_per_row))
    total = _rows_being_mapped()
    if total is not None and total <= best:
        return None  # the dataset is smaller than the batch that would help
    if total is None and batches < 2:
        return None  # one batch may have been the whole dataset: wait for a second
    if idle > 0.10:
        return (
            f"batches of {rows} rows leave the account idle about {idle:.0%} of the time "
            f"(each waits ~{latency:.1f} s, the latency observed so far, for its slowest "
            f"answer at {rate:.0f} requests/min). Use batch_size >= {best} (9 x latency x "
            "rate: idle under 10 %), or run samaudio_data.prefetch(ds, fn) before the "
            "map: it sends every row at the limit whatever the batch size."
        )
    return None


def _rows_being_mapped() -> int | None:
    """The number of rows of the ``Dataset`` (or ``num_proc`` shard) that ``datasets`` is
    mapping this function over, found on the call stack; None when it cannot be told (an
    ``IterableDataset``, or a ``datasets`` that names things otherwise)."""
    import datasets

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_DATASETS_DIR):
            shard = frame.f_locals.get("shard")
            if isinstance(shard, datasets.Dataset):
                return shard.num_rows
        frame = frame.f_back
    return None


def warn_at_user(message: str) -> None:
    """``RuntimeWarning`` pointing at the first caller outside samaudio_data and datasets
    (the user's ``ds.map(...)`` line), as ``skip_file_prefixes`` does on Python 3.12+."""
    level, frame = 1, cast(FrameType | None, sys._getframe(0))
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED_DIRS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level if frame is not None else 2)


def _package_dir(name: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec(name)
    return os.path.dirname(spec.origin) + os.sep if spec and spec.origin else "\0"


_DATASETS_DIR = _package_dir("datasets")
_SKIPPED_DIRS = tuple(
    _package_dir(n) for n in ("samaudio_data", "datasets", "multiprocess", "dill")
)
