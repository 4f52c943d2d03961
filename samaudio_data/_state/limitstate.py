"""The limits' shared state record, checked and bounded each time it is read.

The record (pace, back-off, halt, ledgers: see :mod:`samaudio_data._state.limits`) is shared by
every process on the machine, through a file another process, an older version, a crash or
a hand edit may have damaged, and it holds wall-clock times that a clock step (NTP, a
suspended laptop, a VM restored) turns into deadlines far ahead. :func:`sanitize` is the one
place that decides what such a record may hold; whatever stores the record (a file today,
another store tomorrow) calls it on every read:

- every value has its type (finite numbers, never booleans or strings), else it is dropped
  and its default used;
- deadlines are clamped: a 429 back-off to ``retry_after_max`` from now; a reserved next
  send further ahead than one interval per request that may be waiting (``max_concurrency``)
  to one interval after the back-off; the last send to now (a time ahead means the clock
  stepped back);
- a fatal halt counts only within ``HALT_MAX`` seconds (one hour) of now: one stamped in the
  future (a clock stepped back, or a damaged record) would refuse every run, and is dropped;
- ranges: the rate factor in [0.2, 1], concurrency in [1, max_concurrency], latency in
  (0, 1 h], learned and announced rates and ledgers finite and non-negative, the spacing's
  margin in [1 %, 16 %], a cluster's in-flight leases expiring within an hour.

It returns what it repaired, so that the caller can log it (once). Keys it does not know are
left alone.

Example
-------
>>> st = {"backoff_until": 1e12, "rate_factor": -1, "halt": {"time": 1e12, "status": 401,
...       "kind": "AuthenticationError", "message": "bad key"}, "latency": "slow"}
>>> fixed = sanitize(st, now=1000.0, bounds=Bounds(retry_after_max=60, max_concurrency=4))
>>> st["backoff_until"], st["rate_factor"], "halt" in st, "latency" in st
(1060.0, 0.2, False, False)
>>> sorted(fixed)
['backoff_until', 'halt', 'latency', 'rate_factor']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

HALT_MAX = 3600.0  # seconds a recorded fatal halt is honoured
_SKEW = 1.0  # seconds a time written by another process may lie ahead of ours
_HISTORY = 256  # send times kept
_RATE_FACTOR = (0.2, 1.0)
_LATENCY_MAX = 3600.0
_LEARNED_RANGE = (1.0, 1e6)  # requests per window
SLACK_RANGE = (0.01, 0.16)  # the spacing's adaptive margin, a share of the interval
LEASE_MAX = 3600.0  # seconds ahead an in-flight lease may expire


@dataclass(frozen=True)
class Bounds:
    """What the values of one record are bounded by (the client's settings)."""

    retry_after_max: float = 60.0
    max_concurrency: int = 16
    halt_max: float = HALT_MAX


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def sanitize(
    st: dict, now: float, bounds: Bounds, interval: Callable[[dict], float | None] = lambda st: None
) -> list[str]:
    """Check and bound the record ``st`` in place; the names of the values repaired.

    ``interval(st)`` is the seconds between sends the (already checked) record allows, or
    None when unpaced; it bounds the reserved next send.

    >>> st = {"next_send": 5000.0, "last_sent": 9e9, "sent": [1.0, "x"]}
    >>> sanitize(st, 100.0, Bounds(max_concurrency=2), interval=lambda st: 1.0)
    ['last_sent', 'sent', 'next_send']
    >>> st
    {'next_send': 101.0, 'last_sent': 100.0, 'sent': [1.0]}
    """
    fixed: list[str] = []

    def put(name: str, value) -> None:
        if value is None:
            st.pop(name, None)
        else:
            st[name] = value
        fixed.append(name)

    def number(name: str, low: float, high: float, *, drop_outside: bool = False) -> None:
        if name not in st:
            return
        value = _number(st[name])
        if value is None or (drop_outside and not low <= value <= high):
            put(name, None)
        elif not low <= value <= high:
            put(name, min(high, max(low, value)))

    number("rate_factor", *_RATE_FACTOR)
    number("latency", 1e-6, _LATENCY_MAX, drop_outside=True)
    number("window_limit", 1.0, float(max(1, bounds.max_concurrency)))
    number("learned_per_window", *_LEARNED_RANGE)
    number("announced_per_window", *_LEARNED_RANGE)
    number("slack", *SLACK_RANGE)
    number("slack_floor", *SLACK_RANGE)
    number("backoff_until", -math.inf, now + bounds.retry_after_max)
    number("last_sent", -math.inf, now + _SKEW)
    if "last_sent" in fixed and "last_sent" in st:
        st["last_sent"] = min(st["last_sent"], now)
    number("first_send", -math.inf, now + _SKEW)
    if "rate_limited" in st and not (
        isinstance(st["rate_limited"], int)
        and not isinstance(st["rate_limited"], bool)
        and st["rate_limited"] >= 0
    ):
        put("rate_limited", None)
    _sent(st, now, put)
    _leaving(st, now, put)
    _halt(st, now, bounds, put)
    _ledgers(st, put)
    _leases(st, now, put)
    # senders reserve their turns one interval apart: at most one per request that may be
    # waiting (max_concurrency) lie ahead; a reservation beyond that (a clock stepped back,
    # a damaged record) is brought back to one interval after the back-off
    start = max(now, st.get("backoff_until", now))
    step = interval(st) or 0.0
    number("next_send", -math.inf, start + step * max(1, bounds.max_concurrency))
    if "next_send" in fixed and "next_send" in st:
        st["next_send"] = min(st["next_send"], start + step)
    return fixed


def _sent(st: dict, now: float, put) -> None:
    if "sent" not in st:
        return
    sent = st["sent"]
    if not isinstance(sent, list):
        put("sent", None)
        return
    try:  # the common case, checked at C speed: finite numbers, none ahead, not too many
        if len(sent) <= _HISTORY and (
            not sent or (math.isfinite(sum(sent)) and max(sent) <= now + _SKEW)
        ):
            return
    except TypeError:
        pass
    good = [float(t) for t in sent if _number(t) is not None and t <= now + _SKEW]
    put("sent", sorted(good)[-_HISTORY:])


def _leaving(st: dict, now: float, put) -> None:
    leaving = st.get("leaving")
    if leaving is None:
        return
    since = _number(leaving.get("since")) if isinstance(leaving, dict) else None
    if since is None or since > now + _SKEW or not isinstance(leaving.get("id"), str):
        put("leaving", None)


def _halt(st: dict, now: float, bounds: Bounds, put) -> None:
    halt = st.get("halt")
    if halt is None:
        return
    if not isinstance(halt, dict):
        put("halt", None)
        return
    when, status = _number(halt.get("time")), halt.get("status")
    if (
        when is None
        or not now - bounds.halt_max <= when <= now + _SKEW
        or not (
            status is None
            or (isinstance(status, int) and not isinstance(status, bool) and 100 <= status < 600)
        )
        or not isinstance(halt.get("kind"), str)
        or not isinstance(halt.get("message"), str)
    ):
        put("halt", None)
    elif len(halt["message"]) > 500 or len(halt["kind"]) > 100:
        put("halt", dict(halt, message=halt["message"][:500], kind=halt["kind"][:100]))


def _ledgers(st: dict, put) -> None:
    ledgers = st.get("ledgers")
    if ledgers is None:
        return
    if not isinstance(ledgers, dict):
        put("ledgers", None)
        return
    good = {
        k: float(v)
        for k, v in ledgers.items()
        if isinstance(k, str) and _number(v) is not None and v >= 0
    }
    if len(good) != len(ledgers):
        put("ledgers", good)


def _leases(st: dict, now: float, put) -> None:
    leases = st.get("leases")
    if leases is None:
        return
    if not isinstance(leases, dict):
        put("leases", None)
        return
    good = {
        k: min(float(v), now + LEASE_MAX)
        for k, v in leases.items()
        if isinstance(k, str) and _number(v) is not None
    }
    if good != leases:
        put("leases", good)
