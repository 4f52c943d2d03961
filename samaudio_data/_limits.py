"""Limits shared by every thread and process that calls the same endpoint.

The provider limits an *account*, not a process: a ``dataset.map(..., num_proc=4)`` must
stay under one requests-per-minute budget and one concurrency cap, slow down together when
the endpoint answers 429, and stop together on 401/403/406. :class:`SharedLimits` keeps that
state in a small directory (one per endpoint) guarded by ``fcntl`` locks, so threads and
processes on the machine see the same limits without a server.

- concurrency: ``max_concurrency`` slot files; a request holds one slot's lock while in flight;
- pace: the send times of the last ``requests_per_minute`` requests; a new request waits until
  sending it keeps every window of ``rate_window`` seconds (the provider's minute) under it;
- back-off: after a 429, nobody sends before ``backoff_until``;
- halt: after a fatal error, requests of operations that began before it are refused;
- ledgers: named running sums of money spent, for a ``max_cost`` shared by processes.

Example
-------
>>> import tempfile
>>> lim = SharedLimits(tempfile.mkdtemp(), max_concurrency=2, requests_per_minute=None)
>>> with lim.slot():
...     lim.wait_turn()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

_POLL = 0.01
# The server counts a request when it arrives, which is after we record sending it, by a
# delay we cannot see (network, the server reading the body). Counting each past request for a
# little longer than the window keeps jitter from pushing a request into the server's window.
_WINDOW_SLACK = 0.02      # of the window
_WINDOW_SLACK_MIN = 0.25  # seconds


class SharedLimits:
    """Concurrency, pace, 429 back-off and fatal halt, shared through ``directory``."""

    def __init__(self, directory, *, max_concurrency: int = 4,
                 requests_per_minute: Optional[float] = None, rate_window: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_concurrency = int(max_concurrency)
        self.requests_per_minute = requests_per_minute
        self.rate_window = float(rate_window)
        self._sleep = sleep
        self._local = threading.BoundedSemaphore(self.max_concurrency)
        self._state_path = self.directory / "state.json"
        self._lock_path = self.directory / "state.lock"

    # --- state file ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict]:
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    state = json.loads(self._state_path.read_text())
                except (FileNotFoundError, ValueError):
                    state = {}
                before = json.dumps(state, sort_keys=True)
                yield state
                after = json.dumps(state, sort_keys=True)
                if after != before:
                    tmp = self._state_path.with_name(f".state.{os.getpid()}.{threading.get_ident()}")
                    tmp.write_text(after)
                    os.replace(tmp, self._state_path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- concurrency ---------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of ``max_concurrency`` slots, shared with other processes, while inside."""
        with self._local:
            while True:
                for i in range(self.max_concurrency):
                    fh = open(self.directory / f"slot-{i}.lock", "a+")
                    try:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        fh.close()
                        continue
                    try:
                        yield
                    finally:
                        fcntl.flock(fh, fcntl.LOCK_UN)
                        fh.close()
                    return
                self._sleep(_POLL * (1 + random.random()))

    # --- pace and back-off ---------------------------------------------------------------

    def wait_turn(self) -> float:
        """Block until a request may be sent; record it. Returns the seconds waited."""
        waited = 0.0
        window = self.rate_window * (1 + _WINDOW_SLACK) + _WINDOW_SLACK_MIN
        while True:
            now = time.time()
            with self._state() as st:
                delay = max(0.0, st.get("backoff_until", 0.0) - now)
                sent = [t for t in st.get("sent", []) if t > now - window]
                if delay == 0.0 and self.requests_per_minute:
                    limit = max(1, int(self.requests_per_minute))
                    if len(sent) >= limit:
                        delay = sent[-limit] + window - now
                if delay <= 0.0:
                    if self.requests_per_minute:
                        st["sent"] = (sent + [now])[-1000:]
                    return waited
            step = min(delay, 1.0)
            self._sleep(step)
            waited += step

    def back_off(self, seconds: float) -> None:
        """Make every sender wait ``seconds`` from now (after a 429)."""
        until = time.time() + max(0.0, seconds)
        with self._state() as st:
            if until > st.get("backoff_until", 0.0):
                st["backoff_until"] = until

    # --- fatal halt ----------------------------------------------------------------------

    def halt(self, status: Optional[int], kind: str, message: str) -> None:
        """Record a fatal error: operations that began before now must stop."""
        with self._state() as st:
            st["halt"] = {"time": time.time(), "status": status, "kind": kind,
                          "message": message}

    def halted_since(self, started: float) -> Optional[dict]:
        """The fatal error recorded at or after ``started`` (an operation's start), if any."""
        with self._state() as st:
            h = st.get("halt")
        if h and h["time"] >= started:
            return h
        return None

    # --- spending ledgers ----------------------------------------------------------------

    def spend(self, ledger: str, amount: float, cap: Optional[float]) -> bool:
        """Add ``amount`` to ``ledger`` unless that would pass ``cap``; True if added."""
        with self._state() as st:
            ledgers = st.setdefault("ledgers", {})
            total = ledgers.get(ledger, 0.0) + amount
            if cap is not None and amount > 0 and total > cap + 1e-9:
                return False
            ledgers[ledger] = max(0.0, total)
            return True

    def ledger(self, ledger: str) -> float:
        """The amount recorded in ``ledger``."""
        with self._state() as st:
            return st.get("ledgers", {}).get(ledger, 0.0)
