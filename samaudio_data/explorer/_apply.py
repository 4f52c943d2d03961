"""Applying a review to a dataset: drop rows or add a decision column; write re-isolations.

Works with ``datasets`` 3.x to 5.x (no ``add_column(feature=...)``, which needs 3.1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from ..audio import SIGNAL_NAMES
from ..hf import encode_value
from ._errors import ExplorerError
from ._rows import decodable


def decision_column(ds, decisions: dict[int, str], column: str = "decision"):
    """``ds`` with a string column of decisions (None for undecided rows).

    >>> from datasets import Dataset
    >>> out = decision_column(Dataset.from_dict({"x": [1, 2]}), {1: "keep"})
    >>> list(out["decision"]), out.features["decision"].dtype
    ([None, 'keep'], 'string')
    """
    from datasets import Value

    values = [decisions.get(i) for i in range(len(ds))]
    if column in ds.column_names:
        ds = ds.remove_columns(column)
    return ds.add_column(column, values).cast_column(column, Value("string"))


def keep_rows(n: int, decisions: dict[int, str], *, keep_undecided: bool, keep_flagged: bool):
    """The dataset indices that survive the decisions.

    >>> keep_rows(4, {0: "keep", 1: "discard", 2: "flag"}, keep_undecided=True,
    ...           keep_flagged=False)
    [0, 3]
    """
    allowed = {"keep"} | ({"flag"} if keep_flagged else set())
    return [
        i
        for i in range(n)
        if decisions.get(i) in allowed or (keep_undecided and i not in decisions)
    ]


def with_reisolations(
    ds, reisolated: dict[int, dict], *, loader, reisolator, cost_column: str | None
):
    """``ds`` with the re-isolated rows' new isolated audio (float WAV at the original's rate
    and length), recomputed residual, signals, error cleared and cost added.

    ``loader`` (a ``RowLoader``) reads the originals, ``reisolator`` gives the new targets
    (from memory or the client's cache).
    """
    isolated, residual = loader.isolated, loader.residual
    error_column = loader.error_column
    if not reisolated:
        return ds
    rows = sorted(reisolated)
    cols = list(ds.column_names)
    sig_cols = {f"{isolated}_{s}": s for s in SIGNAL_NAMES if f"{isolated}_{s}" in cols}
    update = (
        [isolated]
        + ([residual] if residual and residual in cols else [])
        + list(sig_cols)
        + ([cost_column] if cost_column and cost_column in cols else [])
        + ([error_column] if error_column and error_column in cols else [])
    )
    new = {}
    for r in rows:
        data = loader.read(r)
        t = reisolator.target(r, reisolated[r], data.original, data.sr)
        new[r] = (
            encode_value(t, data.sr),
            encode_value((data.mono - t).astype(np.float32), data.sr),
        )
    work, restore = ds, {}
    for c, f in ds.features.items():
        if decodable(f) and getattr(f, "decode", False):
            restore[c] = f
            work = work.cast_column(c, dataclasses.replace(f, decode=False))

    def fn(*args):
        *values, idx = args
        batch = dict(zip(update, [list(v) for v in values], strict=True))
        for j, i in enumerate(idx):
            if i not in new:
                continue
            meta = reisolated[i]
            batch[isolated][j] = new[i][0]
            if residual in batch:
                batch[residual][j] = new[i][1]
            for c, s in sig_cols.items():
                batch[c][j] = meta["signals"][s]
            if cost_column in batch:
                old = batch[cost_column][j]
                batch[cost_column][j] = (0.0 if old is None or old != old else old) + meta["cost"]
            if error_column in batch:
                batch[error_column][j] = ""
        return batch

    fp = hashlib.sha256(
        json.dumps(
            [getattr(ds, "_fingerprint", ""), {str(k): v for k, v in sorted(reisolated.items())}],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:32]
    out = work.map(
        fn,
        with_indices=True,
        batched=True,
        batch_size=256,
        input_columns=update,
        new_fingerprint=fp,
        desc="applying re-isolations",
    )
    for c, f in restore.items():
        out = out.cast_column(c, f)
    return out


def check_mode(mode: str, n_ds: int, n_review: int) -> None:
    """An ExplorerError unless ``mode`` is known and the dataset has the review's rows.

    >>> check_mode("column", 3, 3)
    """
    if mode not in ("filter", "column"):
        raise ExplorerError(f"mode must be 'filter' or 'column', got {mode!r}.")
    if n_ds != n_review:
        raise ExplorerError(
            f"the dataset has {n_ds} rows but the decisions were made on "
            f"{n_review}; apply them to the same dataset (before any filter "
            "or shuffle)."
        )
