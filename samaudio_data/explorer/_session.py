"""The session file: a review's decisions and re-isolation metadata as JSON, written atomically.

The file never holds an API key: :func:`write` refuses (writes nothing) when the text it
would write changes under the client's ``redact`` (the key would be in it, e.g. typed as a
description).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from .._state.files import atomic_write
from ._errors import ExplorerError

VERSION = 1
TOOL = "samaudio_data.Explorer"


def write(path: Path, state: Dict[str, Any], *, n_rows: int, fingerprint: Optional[str],
          original: str, isolated: str,
          redact: Optional[Callable[[str], str]] = None) -> Path:
    """Write ``state`` (from ``ReviewState.to_dict``) to ``path`` atomically.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "review.json"
    >>> _ = write(p, {"decisions": {"0": "keep"}}, n_rows=2, fingerprint=None,
    ...           original="audio", isolated="isolated")
    >>> read(p, n_rows=2)["decisions"]
    {'0': 'keep'}
    """
    body = {"version": VERSION, "tool": TOOL, "n_rows": n_rows, "fingerprint": fingerprint,
            "original": original, "isolated": isolated, **state,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    text = json.dumps(body, indent=1, allow_nan=True)
    if redact is not None and redact(text) != text:
        raise ExplorerError("refusing to save the session: the API key appears in it (was it "
                            "typed as a description?). Nothing was written.")
    atomic_write(path, text.encode("utf-8"))
    return path


def read(path: Path, *, n_rows: int) -> Dict[str, Any]:
    """Read a session file written for a dataset of ``n_rows`` rows (see :func:`write`)."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExplorerError(f"cannot read the session file {path}: {exc}. Move it away or "
                            "pass another session= path.") from exc
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise ExplorerError(f"{path} is not an explorer session file (version {VERSION}); "
                            "pass another session= path.")
    if state.get("n_rows") != n_rows:
        raise ExplorerError(
            f"the session file {path} was made for a dataset of {state.get('n_rows')} rows; "
            f"this one has {n_rows}. Pass the same dataset, or another session= path.")
    return state
