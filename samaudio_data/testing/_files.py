"""Files the local endpoint serves at ``/files/<name>`` (json-url answers, uploads by URL).

The last :data:`MAX_FILES` are kept in memory, oldest dropped first.

Example
-------
>>> store = FileStore()
>>> name = store.add(b"RIFF....WAVE", "wav")
>>> name, store.get(name)
('f000001.wav', (b'RIFF....WAVE', 'audio/wav'))
>>> store.get("f999999.wav") is None
True
"""

from __future__ import annotations

import collections
import threading

from ._protocol import MIME

MAX_FILES = 256
"""How many files are kept for download (oldest dropped first)."""


class FileStore:
    """A bounded, thread-safe name -> (bytes, mime) store."""

    def __init__(self, max_files: int = MAX_FILES) -> None:
        self.max_files = max_files
        self._lock = threading.Lock()
        self._files: collections.OrderedDict[str, tuple[bytes, str]] = collections.OrderedDict()
        self._counter = 0

    def add(self, data: bytes, ext: str = "wav") -> str:
        """Keep ``data``; return its new name ``f<6 digits>.<ext>``."""
        mime = MIME.get(ext, "application/octet-stream")
        with self._lock:
            self._counter += 1
            name = f"f{self._counter:06d}.{ext}"
            self._files[name] = (bytes(data), mime)
            while len(self._files) > self.max_files:
                self._files.popitem(last=False)
        return name

    def get(self, name: str) -> tuple[bytes, str] | None:
        """``(bytes, mime)`` of a kept file, or None."""
        with self._lock:
            return self._files.get(name)
