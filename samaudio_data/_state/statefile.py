"""A small JSON document shared by the threads and processes of one machine.

:class:`FileState` is the shared limits' state for one machine (see :mod:`.rules`): it
applies a rule to the document of ``state.json`` under its lock, with this machine's clock,
and hands out in-flight slots as file locks (``slot-<i>.lock``), which the operating system
frees when a process dies.

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
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .files import atomic_write, file_lock

log = logging.getLogger("samaudio_data")

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
# the last document read or written per file, with the file's identity then
_PARSED: dict[str, tuple] = {}
_SLOT_POLL = 0.01
_ALLOWED_TTL = 0.2  # seconds a process reuses the in-flight limit it read
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
                log.warning("the shared state %s is damaged (%s); it is replaced", self.path, exc)
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
                log.warning(
                    "cannot save %s (%s): other processes will not see this one's updates",
                    self.path,
                    exc,
                )


def _identity(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _copy(state: dict) -> dict:
    """A copy deep enough for these documents (lists and dicts one level down)."""
    return {k: (v.copy() if isinstance(v, (list, dict)) else v) for k, v in state.items()}


class FileState:
    """The shared limits' document in ``directory/state.json``, for one machine.

    >>> import tempfile
    >>> from samaudio_data._state.rules import Rules
    >>> rules = Rules(requests_per_minute=60)
    >>> st = FileState(tempfile.mkdtemp(), rules)
    >>> st.apply("spend", "run", 0.5, 1.0), st.apply("ledger", "run")
    (True, 0.5)
    >>> with st.slot(rules):
    ...     pass
    """

    def __init__(
        self,
        directory,
        rules,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rules = rules
        self._doc = StateFile(self.directory / "state.json")
        self._clock = clock
        self._sleep = sleep
        self._cache_lock = threading.Lock()
        self._allowed_at, self._allowed_cached = -1e9, 1
        self._reported: set = set()

    def apply(self, rule: str, *args):
        """``rules.run(rule, document, now, *args)`` under the lock; saved if it changed.
        Values the check repaired (a damaged file, a clock step) are logged once."""
        with self._doc.open() as st:
            result, fixed = self.rules.run(rule, st, self._clock(), *args)
        if fixed and not self._reported.issuperset(fixed):
            self._reported.update(fixed)
            log.warning(
                "the shared limits state %s held unusable or out-of-range values "
                "(%s: a damaged file or a clock step); they were reset or clamped",
                self._doc.path,
                ", ".join(sorted(set(fixed))),
            )
        return result

    @contextlib.contextmanager
    def slot(self, rules) -> Iterator[None]:
        """Hold one of the allowed in-flight slots (a file lock) while inside."""
        while True:
            for i in range(self._allowed()):
                with file_lock(self.directory / f"slot-{i}.lock", timeout=0) as held:
                    if held:
                        yield
                        return
            self._sleep(_SLOT_POLL * (1 + random.random()))

    def _allowed(self) -> int:
        """The in-flight limit, read from the document at most every 0.2 s per process:
        waiting threads poll for a slot often, and must not queue on the document's lock
        (the senders whose turn it is need it)."""
        now = time.monotonic()
        with self._cache_lock:
            if now - self._allowed_at > _ALLOWED_TTL:
                self._allowed_cached = self.apply("allowed")
                self._allowed_at = now
            return self._allowed_cached
