"""The result cache: each answer the endpoint was paid for, on disk, keyed by the request.

The key is a SHA-256 of what decides the answer: the uploaded audio bytes, the description,
the model parameters and the endpoint URL, never the API key. An entry holds the answer's
bytes exactly as they arrived (WAV or MP3) plus a little metadata, in one file written
atomically (temporary file, fsync, rename), so a crash never leaves half an entry and two
processes can share one cache. A per-key lock makes concurrent askers of the same clip wait
for the first instead of paying twice.

Example
-------
>>> import tempfile
>>> c = ResultCache(tempfile.mkdtemp())
>>> k = request_key(b"RIFF...", "speech", {"output_format": "wav"}, "http://x")
>>> c.put(k, b"RIFFdata", {"cost": 0.06})
>>> c.get(k).data, c.get(k).meta["cost"]
(b'RIFFdata', 0.06)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

_MAGIC = b"SAMAUDIO-CACHE-1\n"


def request_key(upload: bytes, description: str, params: dict, endpoint: str) -> str:
    """The cache key of a request (hex SHA-256); the API key is never part of it."""
    h = hashlib.sha256()
    h.update(_MAGIC)
    h.update(hashlib.sha256(upload).digest())
    h.update(json.dumps({"description": description, "params": params, "endpoint": endpoint},
                        sort_keys=True).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    data: bytes
    meta: dict


class ResultCache:
    """Answers on disk under ``root/results``; see the module docstring."""

    def __init__(self, root) -> None:
        self.root = Path(root).expanduser()
        self._results = self.root / "results"
        self._locks = self.root / "locks"
        self._results.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self._results / key[:2] / f"{key}.bin"

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()

    def get(self, key: str) -> Optional[CachedAnswer]:
        """The cached answer for ``key``, or None (also for an unreadable entry)."""
        try:
            raw = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        if not raw.startswith(_MAGIC):
            return None
        head_end = raw.find(b"\n", len(_MAGIC))
        if head_end < 0:
            return None
        try:
            meta = json.loads(raw[len(_MAGIC):head_end])
        except ValueError:
            return None
        return CachedAnswer(data=raw[head_end + 1:], meta=meta)

    def put(self, key: str, data: bytes, meta: dict) -> None:
        """Store an answer atomically (readers see the whole entry or none)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = _MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n" + data
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` (across threads and processes) while inside.

        Locks are striped over 4096 files so the directory stays small; two different clips
        share a stripe rarely, and then one merely waits for the other's call.
        """
        with open(self._locks / f"{key[:3]}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def __len__(self) -> int:
        return sum(1 for _ in self._results.glob("*/*.bin"))
