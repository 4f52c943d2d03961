"""A :class:`~samaudio_data.testing.LocalEndpoint` in a process of its own, as a provider is.

In the caller's process the server's threads would compete with the client's for the
interpreter lock, and the times at which it sees requests arrive would carry that jitter;
a cluster's workers would also need an address outside one Python process. The child runs
the server until :meth:`EndpointProcess.stop`; its state is read and changed through a
pipe (``stats``, ``credits``, ``set_credits``, ``inject``, ``reset_stats``).

Example
-------
>>> import requests
>>> with EndpointProcess(keys={"k": None}) as ep:
...     code = requests.get(ep.base_url + "/v1/get-user-credits",
...                         headers={"x-api-key": "k"}, timeout=10).status_code
...     requests_seen = ep.stats["requests"]
>>> code, requests_seen
(200, 0)
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from typing import Any


def _serve(conn, settings: dict) -> None:
    from ._endpoint import LocalEndpoint

    ep = LocalEndpoint(**settings).start()
    conn.send((ep.url, ep.base_url))
    while True:
        try:
            cmd, args, kwargs = conn.recv()
        except EOFError:  # the parent is gone
            ep.stop()
            return
        if cmd == "stop":
            ep.stop()
            conn.send(None)
            return
        try:
            value = getattr(ep, cmd)
            conn.send(("ok", value(*args, **kwargs) if callable(value) else value))
        except Exception as exc:  # noqa: BLE001 - handed to the parent
            conn.send(("raise", exc))


class EndpointProcess:
    """``LocalEndpoint(**settings)`` in a child process; the same settings and reads."""

    def __init__(self, **settings: Any) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, settings), daemon=True)
        self._proc.start()
        self._lock = threading.Lock()
        if not self._conn.poll(120):
            self._proc.kill()
            raise RuntimeError("the local endpoint's process did not start in 120 s")
        self.url, self.base_url = self._conn.recv()

    def _call(self, cmd: str, *args, **kwargs):
        with self._lock:
            self._conn.send((cmd, args, kwargs))
            kind, value = self._conn.recv()
        if kind == "raise":
            raise value
        return value

    @property
    def stats(self) -> dict:
        """The server's counters (see :attr:`LocalEndpoint.stats`)."""
        return self._call("stats")

    def credits(self, key: str) -> float | None:
        """Dollars left on ``key`` (None: unlimited)."""
        return self._call("credits", key)

    def set_credits(self, key: str, credits: float | None) -> None:
        """Set ``key``'s credits (0 makes the next paid call a 406)."""
        self._call("set_credits", key, credits)

    def inject(self, kind: str, **options) -> None:
        """Inject a fault (see :meth:`LocalEndpoint.inject`)."""
        self._call("inject", kind, **options)

    def reset_stats(self) -> None:
        """Zero the counters."""
        self._call("reset_stats")

    def stop(self) -> None:
        """Stop the server and its process."""
        if self._proc.is_alive():
            with self._lock:
                try:
                    self._conn.send(("stop", (), {}))
                    self._conn.poll(10) and self._conn.recv()
                except (OSError, EOFError):
                    pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()

    def __enter__(self) -> EndpointProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
