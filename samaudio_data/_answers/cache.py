"""The result cache: each answer the endpoint was paid for, on disk, keyed by the request.

The key is a SHA-256 of what decides the answer: the uploaded audio bytes, the description,
the model parameters and the endpoint's identity, never the API key. An entry is one file,
written atomically (temporary file, fsync, rename), holding a header line (the key it
answers, the SHA-256 and size of its payload, the payload's format, metadata) and the
payload: the validated answer, stored losslessly compressed (16-bit PCM WAV answers become
FLAC with the same samples, about half the bytes). Only validated audio is ever stored.

Every entry is verified before it is served: the key it records, its checksum and its
size. A damaged entry (flipped bytes, cut short, another clip's, not a regular file) is a
miss, logged once; the next answer replaces it. An entry that cannot be written (read-only
directory, disk full) is a warning: the caller still gets the answer it paid for.
The cache may live on storage shared by the machines of a cluster: ``root`` is then an
fsspec URL (``s3://bucket/prefix``, ``gs://...``), each entry one object written once (an
object store's put is atomic: readers see all of it or nothing) and verified the same way
when read; the per-key locks are then this machine's (two machines asking for the same
clip at the same moment may both pay for it).

Entries written by version 0.1 (``SAMAUDIO-CACHE-1``, no checksum) are still read, and
marked ``legacy`` so the client checks them against the input and rewrites them.

Example
-------
>>> import tempfile, numpy as np
>>> from samaudio_data.audio import encode_wav
>>> c = ResultCache(tempfile.mkdtemp())
>>> k = request_key(b"RIFF...", "speech", {"output_format": "wav"}, "http://x")
>>> c.put(k, encode_wav(np.zeros(4800), 48000), "wav", {"cost": 0.06})
True
>>> hit = c.get(k)
>>> hit.fmt, hit.meta["cost"]
('flac', 0.06)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._state.files import atomic_write, file_lock
from ..audio._codec import encode_pcm, wav_layout

log = logging.getLogger("samaudio_data")

_MAGIC1 = b"SAMAUDIO-CACHE-1\n"
_MAGIC2 = b"SAMAUDIO-CACHE-2\n"
_MAX_HEADER = 64 * 1024


def request_key(upload: bytes, description: str, params: dict, endpoint: str) -> str:
    """The cache key of a request (hex SHA-256); the API key is never part of it.

    >>> len(request_key(b"RIFF", "speech", {}, "http://127.0.0.1/m"))
    64
    """
    h = hashlib.sha256()
    h.update(_MAGIC1)  # unchanged since 0.1, so entries written then are still found
    h.update(hashlib.sha256(upload).digest())
    h.update(
        json.dumps(
            {"description": description, "params": params, "endpoint": endpoint}, sort_keys=True
        ).encode()
    )
    return h.hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    """A verified cache entry: the answer's audio bytes, their format and metadata."""

    data: bytes
    fmt: str
    meta: dict
    legacy: bool = False


def compress(data: bytes, fmt: str):
    """Store 16-bit PCM WAV as FLAC (same samples, about half the bytes); else as it is.

    >>> from samaudio_data.audio import encode_wav
    >>> compress(encode_wav(np.zeros(100), 8000), "wav")[1]
    'flac'
    """
    lay = wav_layout(data) if fmt == "wav" else None
    if (
        lay is None
        or lay.fmt_tag != 1
        or lay.bits != 16
        or lay.channels < 1
        or lay.available_bytes < lay.declared_bytes
    ):
        return data, fmt
    frames = lay.declared_bytes // (2 * lay.channels)
    pcm = np.frombuffer(
        data, dtype="<i2", count=frames * lay.channels, offset=lay.data_offset
    ).reshape(frames, lay.channels)
    if frames == 0:
        return data, fmt
    return encode_pcm(pcm.T, lay.sr, "FLAC", "PCM_16"), "flac"


class ResultCache:
    """Answers under ``root/results`` (a directory, or an fsspec URL); see the module
    docstring."""

    def __init__(self, root: str | Path) -> None:
        self._fs: Any = None
        self.root: str | Path
        self._url = ""  # where the results live on shared storage (with _fs)
        self._results = Path()  # where they live on this machine's disk (without)
        if isinstance(root, str) and "://" in root:
            import fsspec  # (a dependency of datasets)

            self.root = root.rstrip("/")
            self._fs, base = fsspec.core.url_to_fs(self.root)
            self._url = f"{base.rstrip('/')}/results"
            tag = hashlib.sha256(self.root.encode()).hexdigest()[:16]
            self._locks = Path(tempfile.gettempdir()) / f"samaudio_data-{_uid()}" / tag
        else:
            self.root = Path(root).expanduser()
            self._results = self.root / "results"
            self._locks = self.root / "locks"
            self._results.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(parents=True, exist_ok=True)
        self._reported: set[str] = set()
        self._report_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self._results / key[:2] / f"{key}.bin"

    def _url_of(self, key: str) -> str:
        return f"{self._url}/{key[:2]}/{key}.bin"

    def _damaged(self, key: str, why: str) -> None:
        with self._report_lock:
            if key in self._reported:
                return
            self._reported.add(key)
        log.warning(
            "cache entry %s is unusable (%s); it counts as a miss and the next answer replaces it",
            self._url_of(key) if self._fs else self._path(key),
            why,
        )

    def _read(self, key: str) -> bytes | None:
        path = self._path(key)
        if self._fs is not None:
            try:
                return self._fs.cat_file(self._url_of(key))
            except FileNotFoundError:
                return None
            except OSError as exc:
                self._damaged(key, f"cannot be read: {exc}")
                return None
        try:
            # O_NONBLOCK: a FIFO put where an entry should be must not hang the reader
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._damaged(key, f"cannot be opened: {exc.strerror}")
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._damaged(key, "not a regular file")
            return None
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def get(self, key: str) -> CachedAnswer | None:
        """The verified answer for ``key``, or None (missing or damaged: a miss)."""
        raw = self._read(key)
        if raw is None:
            return None
        magic = raw[: len(_MAGIC2)]
        if magic not in (_MAGIC1, _MAGIC2):
            self._damaged(key, "unknown format")
            return None
        end = raw.find(b"\n", len(magic), len(magic) + _MAX_HEADER)
        try:
            meta = json.loads(raw[len(magic) : end]) if end > 0 else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            self._damaged(key, "header unreadable")
            return None
        payload = raw[end + 1 :]
        if magic == _MAGIC1:
            fmt = meta.get("format") or "wav"
            return CachedAnswer(data=payload, fmt=fmt, meta=meta, legacy=True)
        entry = meta.pop("entry", {})
        if entry.get("key") != key:
            self._damaged(key, "it answers another request")
        elif entry.get("size") != len(payload):
            self._damaged(key, f"{len(payload)} bytes instead of {entry.get('size')}")
        elif entry.get("sha256") != hashlib.sha256(payload).hexdigest():
            self._damaged(key, "checksum mismatch")
        else:
            return CachedAnswer(data=payload, fmt=entry.get("format", "wav"), meta=meta)
        return None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, data: bytes, fmt: str, meta: dict) -> bool:
        """Store a validated answer atomically; False (with a warning) if it cannot be written.

        The caller keeps the answer either way: a paid answer is never thrown away because
        the cache directory is read-only or full.
        """
        payload, stored = compress(data, fmt)
        header = dict(
            meta,
            entry={
                "key": key,
                "format": stored,
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            },
        )
        blob = _MAGIC2 + json.dumps(header, sort_keys=True).encode() + b"\n" + payload
        try:
            if self._fs is None:
                atomic_write(self._path(key), blob)
            elif self.get(key) is None:  # shared storage: written once, by whoever first
                self._fs.pipe_file(self._url_of(key), blob)
        except OSError as exc:
            warnings.warn(
                f"could not write the answer to the cache ({exc}); it is returned, "
                "but a rerun pays for it again (unless it came through the queue "
                "and its journal entry could be written: then a rerun within "
                f"queue_retention collects it). Free space or fix the permissions "
                f"of {self.root}.",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        with self._report_lock:
            self._reported.discard(key)
        return True

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` (across threads and processes) while inside.

        Locks are striped over 4096 files so the directory stays small; two different clips
        share a stripe rarely, and then one merely waits for the other's call.
        """
        with file_lock(self._locks / f"{key[:3]}.lock"):
            yield

    def __len__(self) -> int:
        if self._fs is not None:
            return len(self._fs.glob(f"{self._url}/*/*.bin"))
        return sum(1 for _ in self._results.glob("*/*.bin"))


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"
