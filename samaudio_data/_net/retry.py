"""The retry decision, in one place: what is retried, after how long, and when to give up.

Faults (5xx, dropped connections, timeouts, answers cut short) are retried up to
``max_retries`` times with exponential back-off and jitter. A 429 is not a fault: waiting on
the account's rate limit never uses up that budget; it waits ``Retry-After`` (capped at
``retry_after_max``; absent, negative or non-finite values are ignored and a whole rate
window is waited instead) for at most ``rate_limit_patience`` seconds in all. Nothing else
(400, 401, 403, 404, 406, redirects, bad input, answers that are not audio) is retried.

Example
-------
>>> from samaudio_data import errors
>>> policy = RetryPolicy(max_retries=2, backoff_base=1.0)
>>> policy.fault_delay(errors.BadRequestError("no"), attempt=1) is None
True
>>> policy.rate_limit_wait(errors.RateLimitError("slow", retry_after=3600.0))
60.0
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .. import errors


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date).

    None when absent or unusable: negative, not finite, or not a number or a date.

    >>> parse_retry_after("12"), parse_retry_after("inf"), parse_retry_after("-5")
    (12.0, None, None)
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = max(0.0, when - (time.time() if now is None else now))
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _header(headers: dict[str, str], *names: str) -> str | None:
    return next((headers[n] for n in names if n in headers), None)


def _seconds(value: str | None, now: float) -> float | None:
    """A reset: seconds (``"1.5"``), a duration (``"1m30s"``, ``"250ms"``) or a Unix time."""
    if not value or len(value) > 40:
        return None
    text = value.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(a + b for a, b in parts) != text:
            return None
        seconds = sum(float(a) * _UNITS[b] for a, b in parts)
    if seconds > 1e9:  # a Unix time
        seconds -= now
    return seconds if math.isfinite(seconds) and 0 <= seconds <= 86400 else None


def rate_limit_headers(
    headers: dict[str, str], now: float | None = None
) -> tuple[float | None, float | None, float | None]:
    """``(limit, remaining, reset seconds)`` a provider announces in ``x-ratelimit-*``
    headers (plain, ``-requests`` as OpenAI spells them, or IETF ``ratelimit-*``); None for
    what is absent or unusable. Header names are lower-case.

    >>> rate_limit_headers({"x-ratelimit-limit-requests": "50",
    ...                     "x-ratelimit-remaining-requests": "0",
    ...                     "x-ratelimit-reset-requests": "1m0.5s"})
    (50.0, 0.0, 60.5)
    >>> rate_limit_headers({"x-ratelimit-limit": "-3"})
    (None, None, None)
    """
    now = time.time() if now is None else now
    out = []
    for what in ("limit", "remaining"):
        raw = _header(
            headers, f"x-ratelimit-{what}-requests", f"x-ratelimit-{what}", f"ratelimit-{what}"
        )
        try:
            value = float(raw) if raw is not None and len(raw) < 20 else None
        except ValueError:
            value = None
        out.append(
            value if value is not None and math.isfinite(value) and 0 <= value < 1e7 else None
        )
    reset = _seconds(
        _header(headers, "x-ratelimit-reset-requests", "x-ratelimit-reset", "ratelimit-reset"), now
    )
    return out[0], out[1], reset


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry; see the module docstring."""

    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 60.0
    rate_window: float = 60.0
    rate_limit_patience: float = 3600.0

    def fault_delay(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after a fault; None: give up.

        >>> RetryPolicy(max_retries=1).fault_delay(errors.ServerError("x"), attempt=2) is None
        True
        """
        if not errors.is_retryable(exc) or isinstance(exc, errors.RateLimitError):
            return None
        if attempt > self.max_retries:
            return None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        return random.uniform(0.5, 1.0) * min(
            self.backoff_max, self.backoff_base * 2 ** (attempt - 1)
        )

    def rate_limit_wait(self, exc: BaseException) -> float:
        """Seconds every sender waits after a 429: ``Retry-After`` capped, or a whole window.

        >>> RetryPolicy(rate_window=30.0).rate_limit_wait(errors.RateLimitError("x"))
        30.0
        """
        retry_after = getattr(exc, "retry_after", None)
        wait = self.rate_window if retry_after is None else retry_after
        return float(min(wait, self.retry_after_max))
