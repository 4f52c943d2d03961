"""The request journal: queued requests already paid for, kept until their answer is cached.

When the client submits a request to the asynchronous queue, the provider bills it at once
and keeps its result for about an hour. The journal writes each accepted request (its id,
status and response URLs, the cache key it answers and when it was submitted; never the API
key) to ``<cache_dir>/journal/<cache key>.json``, atomically, *before* waiting for it. Once
the answer is in the cache the entry is removed. After a crash (kill -9, power loss, a
closed notebook), the next run finds the entry for the same cache key and collects the
result instead of paying for it again, as long as it is younger than ``retention``.

Entries are read under the cache's per-key lock, so two processes never collect (or submit)
the same piece at once. Everything read back is checked: field types, a bounded request id,
URLs that are plain http(s) (the queue checks their origin before following them), a
``created`` time that is not in the future (a clock stepped back: it is clamped to now, so
the entry ages from there). A damaged entry is logged once and removed; one past the
retention is removed (its result is gone). An entry may record a request that was paid for
but cannot be followed (``unfollowable`` says why): it is kept for the retention so that the
piece is not paid for again meanwhile.

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

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .._state.files import atomic_write
from .urls import url_problem

log = logging.getLogger("samaudio_data")

_FIELDS = ("request_id", "status_url", "response_url", "cache_key", "created")
_MAX_ID = 200  # characters of a request id
_MAX_ENTRY = 64 << 10  # bytes of one entry
_SKEW = 60.0  # seconds a created time may lie ahead before it is clamped


@dataclass(frozen=True)
class Ticket:
    """A request accepted by the queue: where to ask for it, and which piece it answers.

    >>> Ticket("r", "https://h/s", "https://h/r", cache_key="k", created=0.0).request_id
    'r'
    """

    request_id: str
    status_url: str
    response_url: str
    cache_key: str | None = None
    created: float = 0.0
    unfollowable: str = ""  # paid, but its answer cannot be followed: why


class Journal:
    """Tickets by cache key, one small JSON file each, in ``directory``."""

    def __init__(
        self, directory, *, retention: float = 3600.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = Path(directory).expanduser()
        self.retention = float(retention)
        self._clock = clock

    def _path(self, cache_key: str | None) -> Path:
        if not cache_key or not all(c in "0123456789abcdefABCDEF" for c in cache_key):
            raise ValueError(f"not a cache key: {cache_key!r}")
        return self.directory / f"{cache_key}.json"

    def put(self, ticket: Ticket) -> None:
        """Record ``ticket`` (atomically; a reader sees the old entry or the new one whole)."""
        atomic_write(self._path(ticket.cache_key), json.dumps(asdict(ticket)).encode())

    def get(self, cache_key: str) -> Ticket | None:
        """The ticket for ``cache_key`` if one is recorded and younger than ``retention``.

        A damaged entry (wrong types, unbounded values), or one past the retention (its
        result is gone), is removed.
        """
        path = self._path(cache_key)
        now = self._clock()
        try:
            raw = path.read_bytes()
            if len(raw) > _MAX_ENTRY:
                raise ValueError(f"{len(raw)} bytes, far more than an entry holds")
            doc = json.loads(raw)
            ticket = check_ticket(doc, cache_key, now)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("journal entry %s is damaged (%s); it is removed", path.name, exc)
            self.remove(cache_key)
            return None
        if doc["created"] > now + _SKEW:  # a clock stepped back: it ages from now on
            with contextlib.suppress(OSError):
                self.put(ticket)
        if now - ticket.created > self.retention:
            log.info(
                "journalled request %s is older than %g s: its result is gone, the piece "
                "will be sent again",
                ticket.request_id,
                self.retention,
            )
            self.remove(cache_key)
            return None
        return ticket

    def owner(self, request_id: str) -> str | None:
        """The cache key whose entry records ``request_id`` (None if no entry does).

        >>> import tempfile
        >>> j = Journal(tempfile.mkdtemp())
        >>> j.put(Ticket("r9", "https://h/s", "https://h/r", cache_key="cd", created=1.0))
        >>> j.owner("r9"), j.owner("r0")
        ('cd', None)
        """
        for key in self.keys():
            try:
                doc = json.loads((self.directory / f"{key}.json").read_bytes()[:_MAX_ENTRY])
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("request_id") == request_id:
                return key
        return None

    def remove(self, cache_key: str) -> None:
        """Forget the entry for ``cache_key`` (no error if there is none)."""
        try:
            self._path(cache_key).unlink()
        except FileNotFoundError:
            pass

    def keys(self) -> list[str]:
        """Cache keys with an entry (young or not)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def __len__(self) -> int:
        return len(self.keys())


def check_ticket(doc, cache_key: str, now: float) -> Ticket:
    """A :class:`Ticket` from a journal document, every field checked; ValueError if damaged.

    ``created`` ahead of ``now`` (a clock stepped back) is clamped to now.

    >>> check_ticket({"request_id": "r", "status_url": "https://h/s", "response_url":
    ...               "https://h/r", "cache_key": "ab", "created": 1e12}, "ab", 5.0).created
    5.0
    """
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    rid, created = doc.get("request_id"), doc.get("created")
    why = doc.get("unfollowable", "")
    if not (isinstance(rid, str) and len(rid) <= _MAX_ID and rid.isprintable()):
        raise ValueError("request_id is not a short printable string")
    if not (rid or why):
        raise ValueError("request_id is empty")
    if doc.get("cache_key") != cache_key:
        raise ValueError("it is filed under another cache key")
    if (
        isinstance(created, bool)
        or not isinstance(created, (int, float))
        or not math.isfinite(created)
    ):
        raise ValueError("created is not a finite number")
    if not isinstance(why, str) or len(why) > 1000:
        raise ValueError("unfollowable is not a short string")
    if not why:
        for name in ("status_url", "response_url"):
            problem = url_problem(doc.get(name))
            if problem is not None:
                raise ValueError(f"{name}: {problem}")
    urls = [
        str(doc[n]) if isinstance(doc.get(n), str) else "" for n in ("status_url", "response_url")
    ]
    return Ticket(
        rid,
        urls[0],
        urls[1],
        cache_key=cache_key,
        created=min(float(created), now),
        unfollowable=why,
    )
