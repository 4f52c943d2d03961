"""The request journal: queued requests already paid for, kept until their answer is cached.

When the client submits a request to the asynchronous queue, the provider bills it at once
and keeps its result for about an hour. The journal writes each accepted request (its id,
status and response URLs, the cache key it answers and when it was submitted; never the API
key) to ``<cache_dir>/journal/<cache key>.json``, atomically, *before* waiting for it. Once
the answer is in the cache the entry is removed. After a crash (kill -9, power loss, a
closed notebook), the next run finds the entry for the same cache key and collects the
result instead of paying for it again, as long as it is younger than ``retention``.

Entries are read under the cache's per-key lock, so two processes never collect (or submit)
the same piece at once. A damaged or stale entry is ignored and removed.

Example
-------
>>> import tempfile
>>> j = Journal(tempfile.mkdtemp(), retention=3600)
>>> j.put(Ticket("req-1", "https://h/v2/requests/req-1/status",
...              "https://h/v2/requests/req-1", cache_key="ab12", created=1e12))
>>> j.get("ab12").request_id, len(j)
('req-1', 1)
>>> j.remove("ab12"); j.get("ab12") is None
True
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional

from .._state.files import atomic_write

log = logging.getLogger("samaudio_data")

_FIELDS = ("request_id", "status_url", "response_url", "cache_key", "created")


@dataclass(frozen=True)
class Ticket:
    """A request accepted by the queue: where to ask for it, and which piece it answers.

    >>> Ticket("r", "https://h/s", "https://h/r", cache_key="k", created=0.0).request_id
    'r'
    """

    request_id: str
    status_url: str
    response_url: str
    cache_key: Optional[str] = None
    created: float = 0.0


class Journal:
    """Tickets by cache key, one small JSON file each, in ``directory``."""

    def __init__(self, directory, *, retention: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory).expanduser()
        self.retention = float(retention)
        self._clock = clock

    def _path(self, cache_key: Optional[str]) -> Path:
        if not cache_key or not all(c in "0123456789abcdefABCDEF" for c in cache_key):
            raise ValueError(f"not a cache key: {cache_key!r}")
        return self.directory / f"{cache_key}.json"

    def put(self, ticket: Ticket) -> None:
        """Record ``ticket`` (atomically; a reader sees the old entry or the new one whole)."""
        atomic_write(self._path(ticket.cache_key), json.dumps(asdict(ticket)).encode())

    def get(self, cache_key: str) -> Optional[Ticket]:
        """The ticket for ``cache_key`` if one is recorded and younger than ``retention``.

        A damaged entry, or one past the retention (its result is gone), is removed.
        """
        path = self._path(cache_key)
        try:
            doc = json.loads(path.read_bytes())
            ticket = Ticket(**{k: doc[k] for k in _FIELDS})
            if not (isinstance(ticket.request_id, str) and isinstance(ticket.created, (int, float))
                    and ticket.cache_key == cache_key):
                raise ValueError("unexpected field types")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("journal entry %s is unreadable (%s); it is ignored", path.name, exc)
            self.remove(cache_key)
            return None
        if self._clock() - ticket.created > self.retention:
            log.info("journalled request %s is older than %g s: its result is gone, the piece "
                     "will be sent again", ticket.request_id, self.retention)
            self.remove(cache_key)
            return None
        return ticket

    def remove(self, cache_key: str) -> None:
        """Forget the entry for ``cache_key`` (no error if there is none)."""
        try:
            self._path(cache_key).unlink()
        except FileNotFoundError:
            pass

    def keys(self) -> List[str]:
        """Cache keys with an entry (young or not)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def __len__(self) -> int:
        return len(self.keys())
