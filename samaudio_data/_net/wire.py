"""The moment a request leaves: a gate passed just before its first bytes are written.

An account's rate limit counts requests when they *arrive*. Spacing them when their turn is
granted is not enough: between the grant and the socket a thread builds the body, goes
through ``requests`` and ``urllib3`` and may wait for Python's interpreter lock, and those
few milliseconds differ from one request to the next. At 20 requests/s against a token
bucket that is the difference between a clean run and a 429 every few dozen requests.

So the pace is kept at the wire. :func:`departing` hands this thread's next request a gate
(a context manager, see :meth:`SharedLimits.gate`); the connection classes below enter it
right before the request line and headers are sent (after connecting, for a new
connection, since ``http.client`` connects on its first send) and leave it once they are
written. Only the first request sent inside ``departing`` passes the gate: a redirect
followed, or a poll, does not wait for it again.

Example
-------
>>> import contextlib
>>> from samaudio_data._net.transport import Transport
>>> from samaudio_data.testing import LocalEndpoint
>>> log = []
>>> @contextlib.contextmanager
... def gate():
...     log.append("waited for its moment"); yield; log.append("headers written")
>>> with LocalEndpoint(keys={"k": 1.0}) as ep:
...     t = Transport(ep.url, "k")
...     with departing(gate()):
...         status, body, headers = t.request("GET", t.credits_url)
...     t.close()
>>> status, log
(200, ['waited for its moment', 'headers written'])
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_pending = threading.local()


@contextlib.contextmanager
def departing(gate: AbstractContextManager | None) -> Iterator[None]:
    """Within this block, this thread's next request passes ``gate`` as it leaves."""
    previous = getattr(_pending, "gate", None)
    _pending.gate = gate
    try:
        yield
    finally:
        _pending.gate = previous


class _Gated:
    """Mixin for urllib3 connections: the first write of a request passes the thread's gate."""

    def send(self, data):  # the request line and headers are always the first write
        gate = getattr(_pending, "gate", None)
        if gate is None:
            return super().send(data)
        _pending.gate = None
        with gate:
            return super().send(data)


class _GatedHTTPConnection(_Gated, HTTPConnection):
    pass


class _GatedHTTPSConnection(_Gated, HTTPSConnection):
    pass


class _GatedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GatedHTTPConnection


class _GatedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GatedHTTPSConnection


class GatedAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter whose connections pass the gate set by :func:`departing`."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GatedHTTPConnectionPool,
            "https": _GatedHTTPSConnectionPool,
        }
