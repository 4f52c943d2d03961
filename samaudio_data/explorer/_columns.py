"""The columns the explorer shows, sorts and filters by, read once through Arrow (no audio).

A column is numeric (``int`` or ``float``, held as float64 with NaN for missing), boolean
(``bool``: 0.0/1.0/NaN) or text (``text``: strings, missing as ""). ``"<struct>.<field>"``
reads one field of a struct column, e.g. ``"audio.path"`` for an undecoded ``Audio`` column's
file name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _format
from ._errors import ExplorerError


def _arrow_type(ds, name: str):
    feats = getattr(ds, "features", None)
    if not feats or name not in feats:
        return None
    try:
        return feats.arrow_schema.field(name).type
    except (AttributeError, KeyError, TypeError, ValueError):
        return getattr(feats[name], "pa_type", None)


def _kind_of(pa_type) -> str | None:
    import pyarrow as pa

    if pa_type is None:
        return None
    if pa.types.is_boolean(pa_type):
        return "bool"
    if pa.types.is_integer(pa_type):
        return "int"
    if pa.types.is_floating(pa_type):
        return "float"
    if pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
        return "text"
    return None


def column_kinds(ds) -> dict[str, str]:
    """``{column: kind}`` for every column of ``ds`` the explorer can show.

    >>> from datasets import Dataset
    >>> column_kinds(Dataset.from_dict({"a": [1.5], "b": ["x"], "c": [True], "d": [[1]]}))
    {'a': 'float', 'b': 'text', 'c': 'bool'}
    >>> column_kinds(Dataset.from_dict({"i": [1]}))
    {'i': 'int'}
    """
    out = {}
    for name in ds.column_names:
        kind = _kind_of(_arrow_type(ds, name))
        if kind:
            out[name] = kind
    return out


def _struct_field(ds, base: str, field: str):
    """One field of a struct column, without reading the other fields (an audio column's
    file names without its bytes), in the dataset's row order."""
    import dataclasses

    sub = ds.select_columns([base])
    f = sub.features[base]
    if hasattr(f, "decode_example") and getattr(f, "decode", False):
        sub = sub.cast_column(base, dataclasses.replace(f, decode=False))
    flat = sub.flatten()  # "audio" -> "audio.bytes", "audio.path": no copy
    return (
        flat.select_columns([f"{base}.{field}"]).with_format("arrow")[:].column(f"{base}.{field}")
    )


class Columns:
    """Values of the chosen columns for every row, by dataset index.

    ``values[c]`` is a float64 array (numeric and boolean columns) or an object array of
    strings (text columns). :meth:`set` changes a value shown (after a re-isolation);
    :meth:`original` is what the dataset holds.

    >>> from datasets import Dataset
    >>> cols = Columns(Dataset.from_dict({"x": [3.0, 1.0], "t": ["b", "a"]}), ["t", "x"])
    >>> cols.kind("t"), cols.text(1, "x"), cols.values["t"].tolist()
    ('text', '1.000', ['b', 'a'])
    """

    def __init__(self, ds, names: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.names: list[str] = list(dict.fromkeys(names))
        kinds = column_kinds(ds)
        plain: list[str] = []
        fields: dict[str, tuple[str, str, str]] = {}  # name -> (base, field, kind)
        for name in self.names:
            if name in kinds:
                plain.append(name)
                continue
            base, _, field = name.partition(".")
            t = _arrow_type(ds, base)
            if field and t is not None and pa.types.is_struct(t) and t.get_field_index(field) >= 0:
                field_kind = _kind_of(t.field(field).type)
                if field_kind is not None:
                    fields[name] = (base, field, field_kind)
                    continue
            raise ExplorerError(
                f"cannot show column {name!r}: it is not a number, boolean or text column of the "
                f"dataset (those are {sorted(kinds)}); a struct field is named like "
                "'audio.path'."
            )
        self._kinds: dict[str, str] = {}
        self.values: dict[str, np.ndarray] = {}
        table = ds.select_columns(plain).with_format("arrow")[:] if plain else None
        for name in self.names:
            if name in fields:
                base, field, kind = fields[name]
                arr = _struct_field(ds, base, field)
            else:
                assert table is not None  # every plain name was selected into it
                arr = table.column(name)
                kind = kinds[name]
            self._kinds[name] = kind
            if kind == "text":
                vals = arr.to_pylist()
                self.values[name] = np.array(["" if v is None else v for v in vals], object)
            else:
                self.values[name] = np.array(
                    pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), np.float64
                )
        self._original = {k: v.copy() for k, v in self.values.items()}

    def kind(self, name: str) -> str:
        """``"int"``, ``"float"``, ``"bool"`` or ``"text"``."""
        return self._kinds[name]

    def text(self, row: int, name: str) -> str:
        """The value of ``name`` at dataset index ``row``, formatted for display."""
        return _format.number(self.values[name][row], name, self._kinds[name])

    def original(self, name: str) -> np.ndarray:
        """The dataset's values of ``name`` (before any re-isolation changed them)."""
        return self._original[name]

    def set(self, row: int, name: str, value) -> None:
        """Show ``value`` for ``name`` at ``row`` (ignored if the column is not loaded)."""
        if name in self.values:
            self.values[name][row] = value

    def numeric(self) -> list[str]:
        """The numeric and boolean columns, in order."""
        return [c for c in self.names if self._kinds[c] != "text"]

    def textual(self) -> list[str]:
        """The text columns, in order."""
        return [c for c in self.names if self._kinds[c] == "text"]


def check_dataset(ds, original: str, isolated: str, residual: str | None):
    """Check ``ds`` and the audio columns; returns the residual column (or None).

    >>> from datasets import Dataset
    >>> check_dataset(Dataset.from_dict({"audio": [1], "isolated": [2]}), "audio", "isolated",
    ...               None) is None
    True
    """
    if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__") and hasattr(ds, "column_names")):
        raise ExplorerError(
            f"Explorer needs a map-style datasets.Dataset (random access), got "
            f"{type(ds).__name__}. Pick a split (ds['train']) or load without streaming."
        )
    if isinstance(ds.column_names, dict):
        raise ExplorerError(
            "Explorer got a DatasetDict; pass one split, e.g. Explorer(ds['train'])."
        )
    cols = list(ds.column_names)
    for what, name in (("original", original), ("isolated", isolated)):
        if name not in cols:
            raise ExplorerError(
                f"the dataset has no {what} column {name!r} (it has {cols}); "
                f"pass {what}='<column name>'."
            )
    if residual is None and f"{isolated}_residual" in cols:
        residual = f"{isolated}_residual"
    if residual is not None and residual not in cols:
        raise ExplorerError(
            f"the dataset has no residual column {residual!r} (it has {cols}); "
            "pass residual=None to compute it as original minus isolated."
        )
    if len(ds) == 0:
        raise ExplorerError("the dataset is empty: there is nothing to review.")
    return residual


def _any_error(ds, column: str, kinds: dict[str, str]) -> bool:
    """Whether the error column is worth a place in the table: some row failed."""
    if column not in kinds:
        return False
    try:
        return any(Columns(ds, [column]).values[column])
    except ExplorerError:
        return True


def default_columns(
    ds, original: str, isolated: str, kinds: dict[str, str], metrics: list[str]
) -> list[str]:
    """The queue table's columns when none are named: the original's file name (if it has
    one), the quality triage's flag and quality, text columns, the main signals, cost,
    cached and, when some row failed, the error column."""
    verdict = [c for c in (f"{isolated}_flag", f"{isolated}_quality") if c in kinds]
    texts = verdict[:1] + [
        c
        for c, k in kinds.items()
        if k == "text" and c not in (f"{isolated}_error", f"{isolated}_flag")
    ]
    own = (
        verdict[1:]
        + [f"{isolated}_{s}" for s in ("target_db", "residual_db", "present")]
        + [f"{isolated}_cost", f"{isolated}_cached"]
    )
    out = (
        texts
        + [c for c in own if c in kinds]
        + ([f"{isolated}_error"] if _any_error(ds, f"{isolated}_error", kinds) else [])
    )
    if not any(c in out for c in own):
        out += [m for m in metrics[:3] if m not in out]
    try:  # the original's file name, when the audio column has one
        path = Columns(ds, [f"{original}.path"])
        if any(path.values[f"{original}.path"]):
            out.insert(0, f"{original}.path")
    except ExplorerError:
        pass
    return out
