"""Read a folder of audio files as a ``datasets.Dataset``, with no torch, torchcodec or FFmpeg.

``load_dataset("audiofolder", ...)`` decodes through torchcodec from ``datasets`` 4.0 on, so it
needs torch, a torchcodec built for it and FFmpeg's libraries. :func:`audio_folder` needs none
of them: it lists the folder's audio files (subfolders too, hidden files skipped) and makes a
dataset whose ``audio`` column holds their paths as ``Audio(decode=False)`` values, which
:func:`~samaudio_data.isolate` reads with soundfile (and ``librosa.load`` for what soundfile
cannot read). A ``metadata.csv`` or ``metadata.jsonl`` with a ``file_name`` column adds its
other columns, as with ``audiofolder``. The dataset is written to ``datasets``' cache (not held
in memory), keyed by the files' names, sizes and modification times.

Example
-------
>>> import numpy as np, soundfile as sf, tempfile, os
>>> d = tempfile.mkdtemp()
>>> sf.write(os.path.join(d, "b.wav"), np.zeros(800), 8000)
>>> sf.write(os.path.join(d, "a.flac"), np.zeros(800), 8000)
>>> ds = audio_folder(d)
>>> list(ds["file_name"]), ds.features["audio"].decode
(['a.flac', 'b.wav'], False)
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

from ..errors import InvalidRequestError

AUDIO_EXTENSIONS = (
    ".aac",
    ".aif",
    ".aifc",
    ".aiff",
    ".au",
    ".caf",
    ".flac",
    ".m4a",
    ".mp3",
    ".oga",
    ".ogg",
    ".opus",
    ".snd",
    ".w64",
    ".wav",
    ".wave",
    ".wma",
)
METADATA_FILES = ("metadata.csv", "metadata.jsonl")


def audio_files(folder: str) -> list[tuple[str, str]]:
    """``(name relative to folder, absolute path)`` of every audio file in it, sorted.

    >>> import tempfile
    >>> audio_files(tempfile.mkdtemp())
    []
    """
    found = []
    root = os.path.abspath(folder)
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
                continue
            full = os.path.join(here, name)
            found.append((os.path.relpath(full, root).replace(os.sep, "/"), full))
    return found


def audio_folder(folder: str, *, column: str = "audio", cache_dir: str | None = None):
    """A ``Dataset`` of the audio files under ``folder``: ``column`` (``Audio(decode=False)``
    paths) and ``file_name`` (relative to the folder), plus ``metadata.csv``/``.jsonl`` columns.

    Raises :class:`~samaudio_data.errors.InvalidRequestError` when ``folder`` is not a folder
    or holds no audio files. Broken files (empty, not audio) are rows like any other: the
    estimate lists them and the map reports them per row.

    >>> audio_folder("no/such/folder")
    Traceback (most recent call last):
    ...
    samaudio_data.errors.InvalidRequestError: no folder at 'no/such/folder': check the path.
    """
    import datasets

    if not os.path.isdir(folder):
        what = "a file, not a folder" if os.path.exists(folder) else None
        raise InvalidRequestError(
            f"{folder!r} is {what}: pass the folder that holds the clips."
            if what
            else f"no folder at {folder!r}: check the path."
        )
    files = audio_files(folder)
    if not files:
        raise InvalidRequestError(
            f"no audio files in {folder!r} (looked in its subfolders too, for "
            f"{', '.join(AUDIO_EXTENSIONS)}): check the folder."
        )
    meta = _metadata(folder)
    extra = sorted({k for row in meta.values() for k in row} - {"file_name", column})
    # the paths go in as a plain struct, cast to Audio afterwards: datasets 4.x encodes an
    # Audio value through torchcodec (even with decode=False), a cast does not
    features = datasets.Features(
        {
            column: {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "file_name": datasets.Value("string"),
            **{k: _feature([row.get(k) for row in meta.values()]) for k in extra},
        }
    )
    listing = []
    for rel, full in files:
        st = os.stat(full)
        listing.append((rel, full, st.st_size, st.st_mtime_ns))
    text = [k for k in extra if features[k] == datasets.Value("string")]
    rows = [
        {
            column: {"bytes": None, "path": full},
            "file_name": rel,
            **{k: meta.get(rel, {}).get(k) for k in extra},
        }
        for rel, full, _, _ in listing
    ]
    for row in rows:
        row.update({k: str(row[k]) for k in text if row[k] is not None})
    # the listing (names, sizes, times) is what the dataset's cache entry is keyed by
    ds = datasets.Dataset.from_generator(
        _rows, features=features, cache_dir=cache_dir, gen_kwargs={"rows": rows, "listing": listing}
    )
    return ds.cast_column(column, datasets.Audio(decode=False))


def _rows(rows: list[dict[str, Any]], listing: list[Any]):
    yield from rows


def _metadata(folder: str) -> dict[str, dict[str, Any]]:
    """``file_name`` -> the other columns of the folder's metadata file, if it has one."""
    for name in METADATA_FILES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                if name.endswith(".csv"):
                    records = list(csv.DictReader(fh))
                    records = _typed(records)
                else:
                    records = [json.loads(line) for line in fh if line.strip()]
        except (OSError, ValueError) as exc:
            raise InvalidRequestError(f"cannot read {path!r}: {exc}") from exc
        if records and not all(isinstance(r, dict) and "file_name" in r for r in records):
            raise InvalidRequestError(
                f"{path!r} needs a 'file_name' column naming each file (relative to the "
                "folder), as datasets' audiofolder does."
            )
        return {str(r["file_name"]).replace(os.sep, "/"): r for r in records}
    return {}


def _typed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV columns of whole numbers become ints, of numbers floats; the rest stays text."""
    if not records:
        return records
    for key in records[0]:
        values: list[Any] = [r.get(key) for r in records]
        for kind in (int, float):
            try:
                converted = [kind(v) for v in values]
            except (TypeError, ValueError):
                continue
            for r, v in zip(records, converted, strict=False):
                r[key] = v
            break
    return records


def _feature(values: list[Any]):
    import datasets

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return datasets.Value("bool")
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return datasets.Value("int64")
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return datasets.Value("float64")
    return datasets.Value("string")
