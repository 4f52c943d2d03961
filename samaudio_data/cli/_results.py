"""What ``samaudio-data map`` reports and writes once the map is done.

- :func:`with_prefetch_costs`: each stem's per-row ``_cost``/``_seconds``/``_cached`` columns
  say what the row's call for that stem cost in this run, also when the prefetch paid and the
  map then read the cache;
- :func:`summary`: one line counting every row once (whatever its stems), from those columns
  (so it holds with ``--num-proc`` too, whose workers' counters the main process never sees);
- :func:`write_audio`: one cleaned file per input and stem (same name, rate and length;
  ``.wav`` as 32-bit float, ``.flac`` as 24-bit, any other format as ``.wav``) and a CSV of
  the signals and costs beside them.

Example
-------
>>> from datasets import Dataset
>>> ds = Dataset.from_dict({"isolated_cost": [0.062, 0.0], "isolated_seconds": [1.0, 0.0],
...                         "isolated_cached": [False, True], "isolated_error": ["", ""]})
>>> print(summary(ds, ["isolated"], 0.062))
2 rows: 1 paid in this run (1 call, $0.06), 1 from the cache of an earlier run, 0 failed
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

from .. import errors
from .._models import plural
from ..audio import SIGNAL_NAMES, BlockWriter, decode_audio

_KEPT_FORMATS = (".wav", ".flac")


def with_prefetch_costs(
    out, stems: list[str], done: dict[tuple[int, str], tuple[float, float, bool]]
):
    """``out`` with what the prefetch paid for each row and stem (``done[(row, stem)] =
    (cost, seconds, cached)``, see :class:`~samaudio_data.hf.PrefetchReport`) added to the
    map's own ``<stem>_cost``, ``_seconds`` and ``_cached`` columns.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"x": ["a"], "x_cost": [0.0], "x_seconds": [0.0],
    ...                         "x_cached": [True]})
    >>> with_prefetch_costs(ds, ["x"], {(0, "x"): (0.062, 1.5, False)})[0]
    {'x': 'a', 'x_cost': 0.062, 'x_seconds': 1.5, 'x_cached': False}
    """
    if not done:
        return out
    order = out.column_names
    for stem in stems:
        names = [f"{stem}_{k}" for k in ("cost", "seconds", "cached")]
        cols = out.select_columns(names)[:]
        cost, seconds, cached = (list(cols[n]) for n in names)
        for (row, which), (c, s, hit) in done.items():
            if which == stem:
                cost[row] += c
                seconds[row] += s
                cached[row] = cached[row] and hit
        out = out.remove_columns(names)
        for name, values in zip(names, (cost, seconds, cached), strict=True):
            out = out.add_column(name, values)  # floats and bools: float64 and bool, as before
    return out.select_columns(order)


def _stem_columns(out, stems: list[str], key: str) -> list[list[Any]]:
    """Per stem, the values of its ``<stem>_<key>`` column."""
    names = [f"{stem}_{key}" for stem in stems]
    cols = out.select_columns(names)[:]
    return [list(cols[n]) for n in names]


def summary(out, stems: list[str], price_per_call: float) -> str:
    """Every row counted once, whatever its stems: paid in this run (any stem paid), from an
    earlier run's cache (every stem), or failed (any stem); the calls and dollars are every
    stem's."""
    cost = [sum(c) for c in zip(*_stem_columns(out, stems, "cost"), strict=True)]
    cached = [all(h) for h in zip(*_stem_columns(out, stems, "cached"), strict=True)]
    error = [any(e) for e in zip(*_stem_columns(out, stems, "error"), strict=True)]
    paid = sum(1 for c in cost if c > 0)
    dollars = sum(cost)
    calls = int(round(dollars / price_per_call)) if price_per_call else paid
    hits = sum(
        1 for c, hit, e in zip(cost, cached, error, strict=False) if hit and not e and c == 0
    )
    failed = sum(1 for e in error if e)
    return (
        f"{plural(len(cost), 'row')}: {paid} paid in this run ({plural(calls, 'call')}, "
        f"${dollars:.2f}), {hits} from the cache of an earlier run, {failed} failed"
    )


def failures(out, stems: list[str], names: list[str], skip=()) -> list[str]:
    """``row N (name): why`` for every failed row not in ``skip``; with several stems, one
    line per failed stem (``row N (name), stem 'voice': why``), or one for the row when every
    stem failed the same way (an unreadable file)."""
    lines = []
    for i, errs in enumerate(zip(*_stem_columns(out, stems, "error"), strict=True)):
        if i in skip or not any(errs):
            continue
        if len(stems) == 1 or len(set(errs)) == 1:
            lines.append(f"row {i}{named(names, i)}: {errs[0]}")
            continue
        lines += [
            f"row {i}{named(names, i)}, stem {stem!r}: {e}"
            for stem, e in zip(stems, errs, strict=True)
            if e
        ]
    return lines


def row_names(ds, column: str) -> list[str]:
    """What to call each row in messages and output files: its file name when it has one."""
    if "file_name" in ds.column_names:
        return [str(n) for n in ds.select_columns(["file_name"])[:]["file_name"]]
    values = ds.select_columns([column])[:][column]
    names = []
    for v in values:
        path = v.get("path") if isinstance(v, dict) else None
        names.append(os.path.basename(path) if path else "")
    return names


def named(names: list[str], i: int) -> str:
    return f" ({names[i]})" if i < len(names) and names[i] else ""


def check_audio_dir(folder: str, source: str | None) -> None:
    """Refuse a ``--write-audio`` folder inside the input folder (a rerun would read the
    cleaned files as inputs) or that is a file."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise errors.InvalidRequestError(
            f"--write-audio {folder!r} is a file; pass a folder (it is created if missing)."
        )
    if source and os.path.isdir(source):
        src, dst = os.path.realpath(source), os.path.realpath(folder)
        if os.path.commonpath([src, dst]) == src:
            raise errors.InvalidRequestError(
                f"--write-audio {folder!r} is inside the input folder {source!r}: a rerun "
                "would read the cleaned files as input. Pass a folder outside it."
            )


def output_names(names: list[str]) -> list[str]:
    """Relative output file names: the input's own where it is a ``.wav`` or ``.flac``, else
    the same stem as ``.wav`` (the full name plus ``.wav`` if that is taken); rows without
    a name are ``row-00001.wav``; clashes get the row number.

    >>> output_names(["a.wav", "b.mp3", "b.wav", "", "a.wav"])
    ['a.wav', 'b.mp3.wav', 'b.wav', 'row-00003.wav', 'a.row-00004.wav']
    """
    taken = {n for n in names if os.path.splitext(n)[1].lower() in _KEPT_FORMATS}
    out, used = [], set()
    for i, name in enumerate(names):
        if not name:
            new = f"row-{i:05d}.wav"
        else:
            stem, ext = os.path.splitext(name)
            if ext.lower() not in _KEPT_FORMATS:
                new = f"{stem}.wav" if f"{stem}.wav" not in taken else f"{name}.wav"
                ext = ".wav"
            else:
                new = name
            if new in used:
                new = f"{os.path.splitext(new)[0]}.row-{i:05d}{ext if ext else '.wav'}"
        used.add(new)
        out.append(new)
    return out


def write_audio(
    out, folder: str, *, output_column: str, keep: str, on_error: str, names: list[str]
) -> tuple[int, str]:
    """One cleaned file per row that has one, and ``<output_column>.csv`` beside them (the
    map's columns of one stem: the CLI calls it once per stem, each in its own folder when
    there are several).

    Returns ``(files written, path of the CSV)``. A failed row gets no file (unless
    ``on_error="keep_original"``, which keeps the original) and its error in the CSV.
    """
    os.makedirs(folder, exist_ok=True)
    files = output_names(names)
    keys = ["cost", "seconds", "cached", "error", "description"] + list(SIGNAL_NAMES)
    cols = (
        [output_column]
        + ([f"{output_column}_residual"] if keep == "both" else [])
        + [f"{output_column}_{k}" for k in keys]
    )
    written = 0
    table: list[dict[str, Any]] = []
    for i, row in enumerate(out.select_columns(cols)):
        error = row[f"{output_column}_error"]
        target = files[i] if (not error or on_error == "keep_original") else ""
        if target:
            _write(os.path.join(folder, target), row[output_column])
            if keep == "both" and not error:
                stem, ext = os.path.splitext(target)
                _write(
                    os.path.join(folder, f"{stem}.residual{ext}"), row[f"{output_column}_residual"]
                )
            written += 1
        table.append(
            {
                "file_name": names[i],
                "written": target,
                **{k: row[f"{output_column}_{k}"] for k in keys},
            }
        )
    path = os.path.join(folder, f"{output_column}.csv")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["file_name", "written"] + keys)
    writer.writeheader()
    writer.writerows(table)
    tmp = path + ".part"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)
    return written, path


def _write(path: str, value: Any) -> None:
    data = value["bytes"] if isinstance(value, dict) else None
    if data is None:
        raise errors.InvalidRequestError(f"no audio bytes to write to {path!r}.")
    y, sr = decode_audio(data)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with BlockWriter(path, sr, channels=y.shape[0], frames=y.shape[-1]) as w:
        w.write(y)
