"""Counters of what the local endpoint received and answered, for tests to assert on.

Example
-------
>>> stats = Stats()
>>> stats.enter(); stats.leave("call", 200)
>>> stats.snapshot()["by_status"], stats.snapshot()["by_step"]
({200: 1}, {'call': {200: 1}})
"""

from __future__ import annotations

import collections
import threading
import time

from ._protocol import Call, UploadInfo

MODEL_STEPS = ("call", "submit")
KEPT = 10_000  # the last this many arrivals and lags are kept


class Stats:
    """Thread-safe counters; :meth:`snapshot` returns a plain dict (see ``LocalEndpoint.stats``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter (requests still in flight stay counted as in flight)."""
        with self._lock:
            self._requests = 0
            self._billed = 0
            self._by_step: dict[str, dict[int, int]] = {}
            self._steps: dict[str, int] = collections.Counter()
            self._per_key: dict[str, dict[str, int]] = {}
            self._max_in_flight = self._in_flight
            self._descriptions: list[object] = []
            self._request_bytes: list[int] = []
            self._last_request: dict | None = None
            self._last_upload: UploadInfo | None = None
            self._last_upload_format: str | None = None
            self._clipped = 0
            self._lags: dict[str, collections.deque] = {
                event: collections.deque(maxlen=KEPT) for event in ("seen", "collected")
            }
            self._first_at: float | None = None
            self._last_at: float | None = None
            self._arrivals: collections.deque = collections.deque(maxlen=KEPT)

    def request(self, step: str, body_size: int, payload=None) -> None:
        """Count a request of ``step``; model POSTs also record their body and description."""
        with self._lock:
            self._steps[step] += 1
            if step not in MODEL_STEPS:
                return
            self._requests += 1
            self._last_at = time.monotonic()
            self._first_at = self._first_at or self._last_at
            self._request_bytes.append(body_size)
            if isinstance(payload, dict):
                self._last_request = {
                    k: (len(v) if k == "audio" and isinstance(v, str) else v)
                    for k, v in payload.items()
                }
                if isinstance(payload.get("description"), str):
                    self._descriptions.append(payload["description"])
            else:
                self._last_request = None

    def key_request(self, key: str) -> None:
        """Count an authenticated model request of ``key`` (before its rate-limit check)."""
        with self._lock:
            self._per_key.setdefault(key, {"requests": 0, "billed": 0})["requests"] += 1

    def arrival(self, arrived: float | None, refused: bool) -> None:
        """A model POST with a valid key met the rate limit: when it arrived (the server's
        clock, as the limit saw it) and whether the limit refused it (a 429)."""
        if arrived is not None:
            with self._lock:
                self._arrivals.append((arrived, refused))

    def upload(self, call: Call) -> None:
        """Remember what the last upload decoded to."""
        with self._lock:
            self._last_upload = call.upload
            self._last_upload_format = call.container

    def clipped(self, n: int) -> None:
        """Add ``n`` samples clipped to full scale."""
        with self._lock:
            self._clipped += n

    def lag(self, event: str, lag: float) -> None:
        """A queued job was first ``"seen"`` done by a poll, or its result first
        ``"collected"``, ``lag`` seconds after it finished."""
        with self._lock:
            self._lags[event].append(lag)

    def billed(self, key: str) -> None:
        """Count one billed request of ``key``."""
        with self._lock:
            self._billed += 1
            self._per_key.setdefault(key, {"requests": 0, "billed": 0})["billed"] += 1

    def enter(self) -> None:
        """A model POST starts being handled."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self, step: str, status: int | None) -> None:
        """A model POST was answered with ``status`` (None: dropped without an answer)."""
        with self._lock:
            self._in_flight -= 1
        self.answered(step, status)

    def answered(self, step: str, status: int | None) -> None:
        """Count the status a request of ``step`` was answered with (None: none)."""
        if status is None:
            return
        with self._lock:
            self._by_step.setdefault(step, collections.Counter())[status] += 1

    def snapshot(self) -> dict:
        """A plain-dict copy of every counter."""
        with self._lock:
            by_status: dict[int, int] = collections.Counter()
            for step in MODEL_STEPS:
                by_status.update(self._by_step.get(step, {}))
            return {
                "requests": self._requests,
                "billed": self._billed,
                "by_status": dict(by_status),
                "by_step": {k: dict(v) for k, v in self._by_step.items()},
                "submits": self._steps["submit"],
                "polls": self._steps["status"],
                "fetches": self._steps["result"],
                "per_key": {k: dict(v) for k, v in self._per_key.items()},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "descriptions": list(self._descriptions),
                "request_bytes": list(self._request_bytes),
                "last_request": None if self._last_request is None else dict(self._last_request),
                "last_upload": self._last_upload,
                "last_upload_format": self._last_upload_format,
                "clipped_samples": self._clipped,
                "seen_lags": list(self._lags["seen"]),
                "collect_lags": list(self._lags["collected"]),
                # when model POSTs arrived (time.monotonic() of the server), first and last
                "first_request_at": self._first_at,
                "last_request_at": self._last_at,
                # (arrived, refused with a 429) of each model POST the rate limit judged
                "arrivals": list(self._arrivals),
            }
