"""A small JSON document shared by the threads and processes of one machine.

:class:`StateFile` opens the document for update under a lock: threads of this process
queue on a threading lock (woken at once, in turn) and only one of them at a time contends
for the portable file lock with other processes. Updates are written only when the document
changed, by replacing the file; it is parsed again only when another process replaced it
since this one last read or wrote it (every writer holds the lock, so the file cannot change
between that check and the read). A document that cannot be saved (a full disk) is still
used by this process, with one warning. A document that cannot be parsed (damaged, not an
object, far too large) is logged once and replaced by an empty one; what its values may hold
is checked by its user (:func:`samaudio_data._state.limitstate.sanitize`). Writes go to a new
temporary file (created exclusively: a planted symlink is never followed) renamed over the
document.

Example
-------
>>> import tempfile, pathlib
>>> doc = StateFile(pathlib.Path(tempfile.mkdtemp()) / "state.json")
>>> with doc.open() as st:
...     st["sent"] = st.get("sent", 0) + 1
>>> with doc.open() as st:
...     st["sent"]
1
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Dict, Iterator, Optional

from .files import atomic_write, file_lock

log = logging.getLogger("samaudio_data")

_THREAD_LOCKS: Dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
# the last document read or written per file, with the file's identity then
_PARSED: Dict[str, tuple] = {}
_MAX_BYTES = 4 << 20  # a state document is a few kB


class StateFile:
    """A JSON object in ``path`` (its lock beside it, ``.lock`` for ``.json``)."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_suffix(".lock")
        self._key = str(self.path)
        with _THREAD_LOCKS_GUARD:
            self._thread_lock = _THREAD_LOCKS.setdefault(self._key, threading.Lock())
        self._write_failed = False
        self._damage_logged = False

    @contextlib.contextmanager
    def open(self) -> Iterator[dict]:
        """The document, locked for this block; saved at its end if it changed."""
        with self._thread_lock, file_lock(self._lock_path):
            damaged = [False]
            state = self._load(damaged)
            before = _copy(state)
            yield state
            if state != before or damaged[0]:
                self._save(state)

    def _load(self, damaged: list) -> dict:
        ident = _identity(self.path)
        if ident is None:
            return {}
        cached = _PARSED.get(self._key)
        if cached is not None and cached[0] == ident:
            return _copy(cached[1])
        try:
            if ident[2] > _MAX_BYTES:
                raise ValueError(f"{ident[2]} bytes")
            state = json.loads(self.path.read_bytes())
            if not isinstance(state, dict):
                raise ValueError(f"a JSON {type(state).__name__}, not an object")
        except (OSError, ValueError) as exc:
            if not self._damage_logged:
                self._damage_logged = True
                log.warning("the shared state %s is damaged (%s); it is replaced",
                            self.path, exc)
            damaged[0] = True
            return {}
        _PARSED[self._key] = (ident, _copy(state))
        return state

    def _save(self, state: dict) -> None:
        try:
            atomic_write(self.path, json.dumps(state).encode(), fsync=False)
            _PARSED[self._key] = (_identity(self.path), _copy(state))
        except OSError as exc:  # a full disk must not stop paid work
            if not self._write_failed:
                self._write_failed = True
                log.warning("cannot save %s (%s): other processes will not see this one's "
                            "updates", self.path, exc)


def _identity(path: Path) -> Optional[tuple]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _copy(state: dict) -> dict:
    """A copy deep enough for these documents (lists and dicts one level down)."""
    return {k: (v.copy() if isinstance(v, (list, dict)) else v) for k, v in state.items()}
