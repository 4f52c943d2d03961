"""The session file: a review's decisions and re-isolation metadata as JSON, written atomically.

The file never holds an API key: :func:`write` refuses (writes nothing) when the text it
would write changes under the client's ``redact`` (the key would be in it, e.g. typed as a
description).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._state.files import atomic_write
from ._errors import ExplorerError

VERSION = 1
TOOL = "samaudio_data.Explorer"


def write(
    path: Path,
    state: dict[str, Any],
    *,
    n_rows: int,
    fingerprint: str | None,
    original: str,
    isolated: str,
    redact: Callable[[str], str] | None = None,
) -> Path:
    """Write ``state`` (from ``ReviewState.to_dict``) to ``path`` atomically.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "review.json"
    >>> _ = write(p, {"decisions": {"0": "keep"}}, n_rows=2, fingerprint=None,
    ...           original="audio", isolated="isolated")
    >>> read(p, n_rows=2)["decisions"]
    {'0': 'keep'}
    """
    body = {
        "version": VERSION,
        "tool": TOOL,
        "n_rows": n_rows,
        "fingerprint": fingerprint,
        "original": original,
        "isolated": isolated,
        **state,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    text = json.dumps(body, indent=1, allow_nan=True)
    if redact is not None and redact(text) != text:
        raise ExplorerError(
            "refusing to save the session: the API key appears in it (was it "
            "typed as a description?). Nothing was written."
        )
    atomic_write(path, text.encode("utf-8"))
    return path


def read(path: Path, *, n_rows: int, fingerprint: str | None = None) -> dict[str, Any]:
    """Read a session file written for this dataset (see :func:`write`).

    Refused with an :class:`ExplorerError` saying what to do: a file that is not a session,
    one made for a dataset of another size or another fingerprint (``datasets``' own; a
    session saved on other rows would put decisions on the wrong clips), or one whose values
    do not have the types :func:`write` gives them (a hand edit gone wrong).
    """
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExplorerError(
            f"cannot read the session file {path}: {exc}. Move it away or "
            "pass another session= path."
        ) from exc
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise ExplorerError(
            f"{path} is not an explorer session file (version {VERSION}); "
            "pass another session= path."
        )
    if state.get("n_rows") != n_rows:
        raise ExplorerError(
            f"the session file {path} was made for a dataset of {state.get('n_rows')} rows; "
            f"this one has {n_rows}. Pass the same dataset, or another session= path."
        )
    saved = state.get("fingerprint")
    if saved is not None and fingerprint is not None and saved != fingerprint:
        raise ExplorerError(
            f"the session file {path} was made for another dataset (fingerprint {saved!r}; "
            f"this one's is {fingerprint!r}), with the same number of rows: its decisions "
            "would land on other clips. Pass the dataset it was made for, or another "
            "session= path."
        )
    problem = _problem(state, n_rows)
    if problem:
        raise ExplorerError(
            f"the session file {path} is damaged: {problem}. Fix or move it "
            "away, or pass another session= path."
        )
    return state


def _row_keys(mapping: Any, n_rows: int, name: str) -> str | None:
    if not isinstance(mapping, dict):
        return f"{name!r} is not an object"
    for k in mapping:
        if not (isinstance(k, str) and k.isdigit() and int(k) < n_rows):
            return f"{name!r} has the key {k!r}, not a row number below {n_rows}"
    return None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _reisolations_problem(reisolated: Any, n_rows: int, name: str) -> str | None:
    why = _row_keys(reisolated, n_rows, name)
    if why:
        return why
    for k, meta in reisolated.items():
        if (
            not isinstance(meta, dict)
            or not _number(meta.get("cost", 0.0))
            or not _number(meta.get("seconds", 0.0))
            or not isinstance(meta.get("description", ""), str)
            or not isinstance(meta.get("reranking_candidates", 1), int)
            or not isinstance(meta.get("signals") or {}, dict)
            or not all(
                _number(v) or isinstance(v, bool) or v is None
                for v in (meta.get("signals") or {}).values()
            )
        ):
            return f"the re-isolation of row {k} does not hold numbers where they belong"
    return None


def _problem(state: dict[str, Any], n_rows: int) -> str | None:
    """What is wrong with the values of a session document, or None."""
    decisions = state.get("decisions") or {}
    why = _row_keys(decisions, n_rows, "decisions")
    if why:
        return why
    if not all(isinstance(v, str) for v in decisions.values()):
        return "a decision is not a string"
    # the re-isolations of the stem shown, and with several stems every stem's ("stems")
    stems = state.get("stems") or {}
    if not (isinstance(stems, dict) and all(isinstance(k, str) for k in stems)):
        return "'stems' is not an object of stems"
    for name, reisolated in [("reisolated", state.get("reisolated") or {})] + [
        (f"stems[{k!r}]", v or {}) for k, v in stems.items()
    ]:
        why = _reisolations_problem(reisolated, n_rows, name)
        if why:
            return why
    row = state.get("row", 0)
    if not (isinstance(row, int) and not isinstance(row, bool)):
        return f"'row' is {row!r}, not a row number"
    for name in ("sort", "filter"):
        value = state.get(name) or {}
        if not isinstance(value, dict):
            return f"{name!r} is not an object"
        if not (value.get("column") is None or isinstance(value.get("column"), str)):
            return f"{name!r} names a column that is not a string"
    if not all(
        v is None or _number(v)
        for k, v in (state.get("filter") or {}).items()
        if k in ("min", "max")
    ):
        return "the filter's bounds are not numbers"
    return None
