"""Typed exceptions: catch them by meaning, not by status code.

Every exception raised by ``samaudio_data`` is a :class:`SamAudioError`. Errors that come
from the endpoint carry ``status_code`` and the server's ``message``; errors raised on the
client before anything is sent (:class:`InvalidAudioError`, :class:`InvalidRequestError`)
cost nothing.

Example
-------
>>> from samaudio_data import errors
>>> try:
...     raise errors.RateLimitError("slow down", status_code=429, retry_after=12.0)
... except errors.RetryableError as e:
...     print(type(e).__name__, e.status_code, e.retry_after)
RateLimitError 429 12.0
"""

from __future__ import annotations

from typing import Optional


class SamAudioError(Exception):
    """Base class of every error raised by samaudio_data.

    Attributes: ``status_code`` (HTTP status, or None when no answer came back) and
    ``message`` (the server's own message where there is one, else ours).
    """

    def __init__(self, message: str, *, status_code: Optional[int] = None,
                 hint: Optional[str] = None) -> None:
        self.message = message
        self.status_code = status_code
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        head = f"[{self.status_code}] " if self.status_code is not None else ""
        tail = f" {self.hint}" if self.hint else ""
        return f"{head}{self.message}{tail}"


# --- rejected on the client, before any request (never billed) ---------------------------

class InvalidRequestError(SamAudioError, ValueError):
    """A parameter is wrong (description, output_format, reranking_candidates, ...).

    Raised before anything is sent, so nothing is billed.
    """


class InvalidAudioError(InvalidRequestError):
    """The audio cannot be sent as it is (empty, not finite, bad rate or shape, too long).

    Raised before anything is sent, so nothing is billed.
    """


class BudgetExceededError(SamAudioError):
    """Sending one more request would exceed ``max_cost``; nothing more was sent."""


# --- answers from the endpoint ----------------------------------------------------------

class APIStatusError(SamAudioError):
    """The endpoint answered with an error status."""


class FatalAPIError(APIStatusError):
    """An error that no retry can fix (auth, permission, credits): every worker stops."""


class BadRequestError(APIStatusError):
    """400: the endpoint rejected the parameters or the request format."""


class AuthenticationError(FatalAPIError):
    """401: the API key is missing or invalid. Set SEGMIND_API_KEY or pass api_key=."""


class PermissionDeniedError(FatalAPIError):
    """403: the key is valid but may not use this model."""


class NotFoundError(APIStatusError):
    """404: the model or endpoint URL does not exist. Check SAMAUDIO_ENDPOINT / endpoint=."""


class InsufficientCreditsError(FatalAPIError):
    """406: the account has run out of credits. Top up, then run again: paid results are cached."""


class RetryableError(SamAudioError):
    """A failure that may pass: rate limits, server errors, network trouble."""

    def __init__(self, message: str, *, status_code: Optional[int] = None,
                 hint: Optional[str] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message, status_code=status_code, hint=hint)
        self.retry_after = retry_after


class RateLimitError(RetryableError, APIStatusError):
    """429: too many requests for the account's plan. ``retry_after`` in seconds if sent."""


class ServerError(RetryableError, APIStatusError):
    """500 or another 5xx: the endpoint failed."""


class BadGatewayError(ServerError):
    """502: the service is temporarily unavailable."""


class GatewayTimeoutError(ServerError):
    """504: the endpoint timed out (normal during a cold start)."""


class APIConnectionError(RetryableError):
    """The connection failed or dropped before a complete answer arrived."""


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""


class ResponseDecodeError(SamAudioError):
    """A 200 answer whose body is not audio we can read (an excerpt is in the message)."""


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    406: InsufficientCreditsError,
    429: RateLimitError,
    502: BadGatewayError,
    504: GatewayTimeoutError,
}

_HINTS = {
    400: "Check the description and parameters; the request was rejected as malformed.",
    401: "Set SEGMIND_API_KEY (or pass api_key=) to a valid key.",
    403: "This key may not use the model; check the account's permissions.",
    404: "Check the endpoint URL (SAMAUDIO_ENDPOINT or endpoint=).",
    406: "Top up the account's credits, then run again: results already paid for are cached.",
    429: "Lower requests_per_minute or max_concurrency to stay under the plan's limit.",
}


def error_for_status(status: int, message: str,
                     retry_after: Optional[float] = None) -> SamAudioError:
    """Build the typed error for an HTTP ``status`` and the server's ``message``.

    >>> type(error_for_status(406, "no credits")).__name__
    'InsufficientCreditsError'
    """
    cls = _BY_STATUS.get(status)
    if cls is None:
        if 500 <= status < 600:
            cls = ServerError
        elif status in (405, 422):
            cls = BadRequestError
        else:
            cls = APIStatusError
    hint = _HINTS.get(status)
    if issubclass(cls, RetryableError):
        return cls(message, status_code=status, hint=hint, retry_after=retry_after)
    return cls(message, status_code=status, hint=hint)


def is_retryable(exc: BaseException) -> bool:
    """True for errors worth another attempt (429, 5xx, connection trouble, timeouts)."""
    return isinstance(exc, RetryableError)
