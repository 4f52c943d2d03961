"""Accounts of the local endpoint: API keys, credits, billing and the per-key rate limit.

Two rate-limit shapes, per key, counting only the requests that reach the model:

* sliding window (default): at most ``per_window`` requests in any ``window`` seconds; they
  may all leave at once.
* token bucket (``burst=`` given): a bucket of ``burst`` tokens, refilled at
  ``per_window / window`` tokens per second, one token per request; a provider that enforces
  its limit as a rate answers a burst beyond ``burst`` with 429 even when the minute's count is
  not reached.

A 429 carries ``Retry-After`` as :func:`retry_after_value` says.

Example
-------
>>> limiter, two_a_minute = RateLimiter(), RateLimit(2, 60.0)  # sliding window
>>> [limiter.take("k", two_a_minute) for _ in range(2)], limiter.take("k", two_a_minute) > 59
([None, None], True)
>>> one_a_second = RateLimit(60, 60.0, burst=1)                  # token bucket
>>> limiter.take("b", one_a_second) is None, 0 < limiter.take("b", one_a_second) <= 1
(True, True)
>>> retry_after_value(0.2, True), retry_after_value(0.2, "fraction"), retry_after_value(0.2, "inf")
('1', '0.200', 'inf')
"""

from __future__ import annotations

import bisect
import collections
import email.utils
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ..errors import InvalidRequestError
from ._protocol import Reply, json_doc, json_reply

UNLIMITED_CREDITS_REPORTED = 1e6
"""What ``get-user-credits`` reports for a key with unlimited (None) credits."""


def retry_after_value(wait: float, mode) -> str | None:
    """The ``Retry-After`` header for a computed ``wait`` in seconds, or None for none.

    ``mode``: True (whole seconds, at least 1, as HTTP says), False/None (no header),
    ``"fraction"`` (decimal seconds, e.g. ``"0.050"``), ``"http-date"`` (an HTTP date that
    many seconds from now, rounded up), or any other value, sent verbatim whatever ``wait``
    is (``3600``, ``"inf"``, ``-1``, ``"soon"``, a fixed date...).
    """
    if mode is True:
        return str(max(1, math.ceil(wait)))
    if mode is False or mode is None:
        return None
    if mode == "fraction":
        return f"{max(wait, 0.001):.3f}"
    if mode == "http-date":
        return email.utils.formatdate(time.time() + max(1, math.ceil(wait)), usegmt=True)
    if isinstance(mode, float) and mode.is_integer():
        return str(int(mode))
    return str(mode)


class RateLimit(NamedTuple):
    """A rate-limit setting: ``per_window`` requests per ``window`` s; ``burst``: token bucket."""

    per_window: int | None = None
    window: float = 60.0
    burst: int | None = None

    def check(self) -> None:
        """Raise InvalidRequestError for impossible values."""
        per, burst = self.per_window, self.burst
        if per is not None and (isinstance(per, bool) or not isinstance(per, int) or per < 1):
            raise InvalidRequestError(
                f"rate_limit_per_minute must be an integer >= 1 or None (no limit), got {per!r}."
            )
        if (
            isinstance(self.window, bool)
            or not isinstance(self.window, (int, float))
            or not self.window > 0
        ):
            raise InvalidRequestError(f"rate_window must be > 0 seconds, got {self.window!r}.")
        if burst is not None and (
            isinstance(burst, bool) or not isinstance(burst, int) or burst < 1
        ):
            raise InvalidRequestError(
                f"rate_limit_burst must be an integer >= 1 or None (sliding window), got {burst!r}."
            )

    def describe(self) -> str:
        """The limit in words, for 429 messages."""
        if self.per_window is None:
            return "no limit"
        if self.burst is None:
            return f"{self.per_window} requests per {self.window:g} s"
        return (
            f"{self.per_window / self.window:g} requests/s (burst {self.burst}, "
            f"{self.per_window} per {self.window:g} s)"
        )


class RateLimiter:
    """Per-key state of a :class:`RateLimit`: sliding windows or token buckets."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, collections.deque] = {}
        self._buckets: dict[str, list] = {}  # key -> [tokens, last refill time]

    def take(self, key: str, limit: RateLimit, now: float | None = None) -> float | None:
        """Take a slot for ``key`` for a request that arrived at ``now`` (this limiter's
        clock; default: now): None if allowed, else the seconds until one frees."""
        per_window = limit.per_window
        if per_window is None:
            return None
        now = self._clock() if now is None else now
        with self._lock:
            if limit.burst is not None:
                return self._take_token(key, now, per_window / limit.window, limit.burst)
            window = self._windows.setdefault(key, collections.deque())
            while window and window[0] <= now - limit.window:
                window.popleft()
            if len(window) >= per_window:
                return window[0] + limit.window - now
            bisect.insort(window, now)  # requests are counted in order of arrival
            return None

    def headers(self, key: str, limit: RateLimit, now: float | None = None) -> dict[str, str]:
        """What a provider announces after a request of ``key``: ``x-ratelimit-limit``
        (requests per window), ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (seconds
        until the next request may go when none remains, else until the count is whole).

        >>> lim, two = RateLimiter(), RateLimit(2, 60.0)
        >>> _ = lim.take("k", two, now=0.0); lim.headers("k", two, now=1.0)
        {'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1', 'x-ratelimit-reset': '59.000'}
        """
        if limit.per_window is None:
            return {}
        now = self._clock() if now is None else now
        with self._lock:
            if limit.burst is not None:
                rate = limit.per_window / limit.window
                tokens, last = self._buckets.get(key, [float(limit.burst), now])
                tokens = min(float(limit.burst), tokens + max(0.0, now - last) * rate)
                remaining = int(tokens + 1e-9)
                reset = ((1.0 - tokens) if remaining < 1 else (limit.burst - tokens)) / rate
            else:
                window = [t for t in self._windows.get(key, ()) if t > now - limit.window]
                remaining = max(0, limit.per_window - len(window))
                reset = window[0] + limit.window - now if window else 0.0
        return {
            "x-ratelimit-limit": str(limit.per_window),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": f"{max(0.0, reset):.3f}",
        }

    def _take_token(self, key: str, now: float, rate: float, burst: int) -> float | None:
        bucket = self._buckets.setdefault(key, [float(burst), now])
        bucket[0] = min(float(burst), bucket[0] + max(0.0, now - bucket[1]) * rate)
        bucket[1] = max(bucket[1], now)
        if bucket[0] >= 1.0 - 1e-9:
            bucket[0] -= 1.0
            return None
        return (1.0 - bucket[0]) / rate


class Accounts:
    """API keys with their credits (None: unlimited), forbidden keys, billing, rate limit."""

    def __init__(
        self,
        keys: dict[str, float | None] | None = None,
        forbidden_keys: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        keys = {"local-key": None} if keys is None else keys
        if not isinstance(keys, dict):
            raise InvalidRequestError("keys must be a dict {api_key: dollars or None}.")
        for key, credit in keys.items():
            if not isinstance(key, str) or not key:
                raise InvalidRequestError(
                    f"API keys must be non-empty strings, got {type(key).__name__}."
                )
            if credit is not None and (
                isinstance(credit, bool) or not isinstance(credit, (int, float)) or credit < 0
            ):
                raise InvalidRequestError(
                    "credits must be a number of dollars >= 0 or None (unlimited)."
                )
        self._credits: dict[str, float | None] = {
            k: (None if v is None else float(v)) for k, v in keys.items()
        }
        self._forbidden = set(forbidden_keys)
        self.limiter = RateLimiter(clock)
        self._lock = threading.Lock()

    # --- keys and credits ---------------------------------------------------------------

    def knows(self, key: str) -> bool:
        """True for a key with an account (forbidden keys included)."""
        with self._lock:
            return key in self._credits

    def credits(self, key: str) -> float | None:
        """Dollars left on ``key`` (None: unlimited); InvalidRequestError if unknown."""
        with self._lock:
            if key not in self._credits:
                raise InvalidRequestError(
                    f"unknown API key (known: {len(self._credits)} keys); add it with "
                    "set_credits() or keys=."
                )
            return self._credits[key]

    def set_credits(self, key: str, credits: float | None) -> None:
        """Set the dollars left on ``key`` (None: unlimited); adds the key if it is new."""
        if not isinstance(key, str) or not key:
            raise InvalidRequestError("an API key must be a non-empty string.")
        if credits is not None and (
            isinstance(credits, bool) or not isinstance(credits, (int, float)) or credits < 0
        ):
            raise InvalidRequestError("credits must be dollars >= 0 or None (unlimited).")
        with self._lock:
            self._credits[key] = None if credits is None else float(credits)

    # --- answering ----------------------------------------------------------------------

    def identify(self, key: str | None, *, model: bool = True) -> Reply | None:
        """401 (missing/unknown key) or 403 (forbidden, on model routes), else None."""
        if not key:
            return json_reply(401, "Missing API key: send it in the x-api-key header.")
        with self._lock:
            if model and key in self._forbidden:
                return json_reply(403, "Forbidden: this API key may not use sam-audio-large.")
            if key not in self._credits and key not in self._forbidden:
                return json_reply(401, "Invalid API key: check the x-api-key header.")
        return None

    def take_slot(
        self, key: str, limit: RateLimit, retry_after=True, now: float | None = None
    ) -> Reply | None:
        """429 with ``Retry-After`` (see :func:`retry_after_value`) when ``key`` is over
        ``limit`` for a request that arrived at ``now`` (the limiter's clock), else None
        (and a slot is taken)."""
        wait = self.limiter.take(key, limit, now)
        if wait is None:
            return None
        value = retry_after_value(wait, retry_after)
        headers = {} if value is None else {"Retry-After": value}
        return json_reply(
            429,
            (
                f"Rate limit exceeded: {limit.describe()} for this "
                f"key; retry in {max(wait, 0.001):.3g} s."
            ),
            headers,
        )

    def charge(self, key: str, price: float):
        """Bill ``price`` to ``key``: the dollars left after it (None: unlimited), or a 406."""
        with self._lock:
            left = self._credits.get(key)
            if left is None:
                return None
            if left + 1e-9 < price:
                return json_reply(
                    406,
                    (
                        f"Insufficient credits: a call costs ${price:.3f} and this key has "
                        f"${left:.3f} left. Top up to continue."
                    ),
                )
            left = round(left - price, 9)
            self._credits[key] = left
            return left

    def refund(self, key: str, price: float) -> None:
        """Give back ``price`` to ``key`` (a billed request that was abandoned)."""
        with self._lock:
            left = self._credits.get(key)
            if left is not None:
                self._credits[key] = round(left + price, 9)

    def credits_reply(self, key: str | None) -> Reply:
        """The answer of ``GET /v1/get-user-credits``."""
        refusal = self.identify(key, model=False)
        if refusal is not None or key is None:
            return json_reply(401, "Missing or invalid API key: send it in the x-api-key header.")
        with self._lock:
            left = self._credits.get(key, 0.0)
        credits = UNLIMITED_CREDITS_REPORTED if left is None else round(left, 6)
        return json_doc(200, {"credits": credits, "free-credits": 0.0})
