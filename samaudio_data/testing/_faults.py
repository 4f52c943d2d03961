"""Injectable faults: a FIFO of failures the next requests of a given step receive.

Steps: ``"call"`` (``POST /v1/sam-audio-large``), ``"submit"`` (``POST /v2/sam-audio-large``),
``"status"`` (``GET`` a status URL), ``"result"`` (``GET`` a response URL), and ``"model"``, the
default, which means the next model POST, v1 call or v2 submit alike. A request takes the
first queued fault whose step matches it.

Kinds: ``"status"`` (a JSON error with ``status``, ``message`` and ``Retry-After``), ``"drop"``
(close the connection without answering), ``"truncate"`` (a 200 whose Content-Length promises
more than is sent), ``"html"`` (an nginx-style HTML error page, default 502), ``"garbage"`` (a
200 that is not what was asked: not audio, not JSON), ``"slow"`` (wait ``delay`` seconds, then
answer normally) and, on ``"submit"`` only, ``"fail"`` (the job is accepted, then FAILED).

Example
-------
>>> faults = FaultQueue()
>>> faults.add("status", step="status", status=503, retry_after=2)
>>> faults.add("drop")
>>> faults.take("call").kind, faults.take("submit"), faults.take("status").status
('drop', None, 503)
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass

import numpy as np

from .. import audio
from ..errors import InvalidRequestError
from ._model import MODEL_SR
from ._protocol import Reply, json_reply, phrase

FAULT_KINDS = ("status", "drop", "truncate", "html", "garbage", "slow", "fail")
STEPS = ("model", "call", "submit", "status", "result")
_MATCHES = {
    "model": ("call", "submit"),
    "call": ("call",),
    "submit": ("submit",),
    "status": ("status",),
    "result": ("result",),
}
_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n{extra}<hr><center>nginx</center>"
    "\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Fault:
    """One queued fault (see the module docstring)."""

    kind: str
    step: str = "model"
    status: int | None = None
    retry_after: object = None
    message: str | None = None
    delay: float = 0.0


class FaultQueue:
    """A thread-safe FIFO of :class:`Fault` with counts of those served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: collections.deque = collections.deque()
        self._served: dict[str, int] = collections.Counter()

    def add(
        self,
        kind: str,
        *,
        step: str | None = None,
        times: int = 1,
        status: int | None = None,
        retry_after=None,
        message: str | None = None,
        delay: float | None = None,
    ) -> None:
        """Validate and queue ``times`` copies of a fault (see ``LocalEndpoint.inject``)."""
        if kind not in FAULT_KINDS:
            raise InvalidRequestError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}.")
        step = ("submit" if kind == "fail" else "model") if step is None else step
        if step not in STEPS:
            raise InvalidRequestError(f"unknown step {step!r}; use one of {STEPS}.")
        if kind == "fail" and step != "submit":
            raise InvalidRequestError(
                'inject("fail") applies to step="submit" only (a queued job that ends FAILED).'
            )
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise InvalidRequestError(f"times must be an integer >= 1, got {times!r}.")
        if kind == "status" and status is None:
            raise InvalidRequestError('inject("status") needs status=, e.g. status=503.')
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            raise InvalidRequestError(
                f"status must be an HTTP error code 400..599, got {status!r}."
            )
        if kind == "slow" and (delay is None or delay < 0):
            raise InvalidRequestError('inject("slow") needs delay= in seconds, e.g. delay=5.0.')
        if kind == "html" and status is None:
            status = 502
        fault = Fault(kind, step, status, retry_after, message, float(delay or 0.0))
        with self._lock:
            self._faults.extend([fault] * times)

    def take(self, step: str) -> Fault | None:
        """Remove and return the first fault for ``step`` ("call", "submit", ...), or None."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if step in _MATCHES[fault.step]:
                    del self._faults[i]
                    self._served[fault.kind] += 1
                    return fault
        return None

    def clear(self) -> None:
        """Forget every queued fault."""
        with self._lock:
            self._faults.clear()

    def served(self) -> dict[str, int]:
        """{kind: count} of the faults served since the last :meth:`reset_counts`."""
        with self._lock:
            return dict(self._served)

    def reset_counts(self) -> None:
        """Zero the served counts (queued faults are kept)."""
        with self._lock:
            self._served.clear()


def fault_reply(fault: Fault, step: str) -> Reply:
    """The answer for a fault other than "slow" and "fail", for a request of ``step``."""
    headers = {}
    if fault.retry_after is not None:
        value = fault.retry_after
        headers["Retry-After"] = (
            str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        )
    # FaultQueue.add requires a status for "status" faults and gives "html" ones 502
    status = fault.status if fault.status is not None else 502
    status_phrase = phrase(status)
    if fault.kind == "status":
        return json_reply(status, fault.message or f"{status_phrase} (injected fault)", headers)
    if fault.kind == "html":
        extra = f"<p>{fault.message}</p>\r\n" if fault.message else ""
        page = _HTML_PAGE.format(status=status, phrase=status_phrase, extra=extra)
        return Reply(status, page.encode(), "text/html", headers)
    if fault.kind == "garbage":
        body = (fault.message or "<html><body>oops</body></html>").encode()
        return Reply(200, body, "audio/wav" if step == "call" else "application/json")
    if fault.kind == "truncate":
        if step == "call":
            body = audio.encode_wav(np.zeros(MODEL_SR), MODEL_SR)
            return Reply(200, body, "audio/wav", mode="truncate")
        doc = {"status": "COMPLETED", "output": "A" * 4096, "note": "cut in the middle"}
        return Reply(200, json.dumps(doc).encode(), mode="truncate")
    return Reply(0, mode="drop")
