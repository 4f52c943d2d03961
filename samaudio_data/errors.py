"""Typed exceptions: catch them by meaning, not by status code.

Every exception raised by ``samaudio_data`` is a :class:`SamAudioError`. Errors that come
from the endpoint carry ``status_code``, the server's ``message`` and ``response`` (status,
headers, a body excerpt and the request id, with the API key redacted); the exception that
caused them is kept as ``__cause__``. Errors raised on the client before anything is sent
(:class:`InvalidAudioError`, :class:`InvalidRequestError`, :class:`BudgetExceededError`)
cost nothing. Whether an error is worth another attempt is decided in one place,
:func:`is_retryable`. Every exception of the library is defined here::

    SamAudioError
     +-- InvalidRequestError (also ValueError)   bad input, nothing sent
     |    +-- InvalidAudioError
     +-- ExplorerError (also ValueError)          the explorer cannot do what was asked
     +-- ReadOnlySettingError (also AttributeError)  a client setting assigned
     +-- BudgetExceededError                      max_cost reached, nothing more sent
     +-- APIError
          +-- APIStatusError                      the endpoint answered with an error
          |    +-- BadRequestError                400, 405, 413, 422
          |    +-- NotFoundError                  404
          |    |    +-- QueueResultExpiredError   a queued result is gone
          |    +-- RedirectError                  a redirect elsewhere (key not sent)
          |    +-- FatalAPIError                  every worker stops
          |    |    +-- AuthenticationError       401
          |    |    +-- PermissionDeniedError     403
          |    |    +-- InsufficientCreditsError  406
          |    +-- RateLimitError                 429
          |    +-- ServerError                    5xx
          |    |    +-- BadGatewayError           502
          |    |    +-- GatewayTimeoutError       504
          |    +-- QueueJobFailedError            the queue reported FAILED
          +-- APIConnectionError                  no complete answer
          |    +-- APITimeoutError
          |    +-- EndpointDownError              nothing listens (local endpoint)
          +-- ResponseDecodeError                 a 200 that is not usable audio
               +-- IncompleteResponseError        cut short, or not covering the input
               +-- UncollectableRequestError      a paid queued request we cannot follow
               +-- AnswerMismatchError            an answer naming another request

    Halted, Requeue (plain Exception)   signals between the shared limits and the answer
                                        pipeline; they never reach a caller

Example
-------
>>> from samaudio_data import errors
>>> try:
...     raise errors.RateLimitError("slow down", status_code=429, retry_after=12.0)
... except errors.APIStatusError as e:
...     print(type(e).__name__, e.status_code, e.retry_after, errors.is_retryable(e))
RateLimitError 429 12.0 True
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResponseInfo:
    """What came back with an error: enough to diagnose it, never the API key.

    >>> ResponseInfo(429, "https://api.example/v1/m", {"Retry-After": "3"}, "{}").status
    429
    """

    status: int | None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    request_id: str | None = None


class SamAudioError(Exception):
    """Base class of every error raised by samaudio_data.

    Attributes: ``status_code`` (HTTP status, or None when no answer came back), ``message``
    (the server's own message where there is one, else ours), ``hint`` (what to do) and
    ``response`` (a :class:`ResponseInfo`, or None).

    >>> str(SamAudioError("no key", hint="Set SEGMIND_API_KEY."))
    'no key Set SEGMIND_API_KEY.'
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        hint: str | None = None,
        response: ResponseInfo | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.hint = hint
        self.response = response
        super().__init__(message)

    def __str__(self) -> str:
        head = f"[{self.status_code}] " if self.status_code is not None else ""
        tail = f" {self.hint}" if self.hint else ""
        return f"{head}{self.message}{tail}"

    def __reduce__(self):  # picklable across num_proc workers, attributes kept
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls, message, state):
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


# --- rejected on the client, before any request (never billed) ---------------------------


class InvalidRequestError(SamAudioError, ValueError):
    """A parameter is wrong (description, output_format, reranking_candidates, ...).

    Raised before anything is sent, so nothing is billed.
    """


class InvalidAudioError(InvalidRequestError):
    """The audio cannot be sent as it is (empty, not finite, bad rate or shape).

    Raised before anything is sent, so nothing is billed.
    """


class BudgetExceededError(SamAudioError):
    """Sending one more request would exceed ``max_cost``; nothing more was sent."""


class ExplorerError(SamAudioError, ValueError):
    """The explorer cannot do what was asked (bad column, session file, missing client...).

    The message says what went wrong and what to do; nothing was spent.

    >>> str(ExplorerError("row 99 is out of range"))
    'row 99 is out of range'
    """

    __module__ = "samaudio_data.explorer"  # where users import it from


# --- answers from the endpoint ----------------------------------------------------------


class APIError(SamAudioError):
    """Something went wrong talking to the endpoint."""


class APIStatusError(APIError):
    """The endpoint answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        hint: str | None = None,
        response: ResponseInfo | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, hint=hint, response=response)
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400 (or 405/413/422): the endpoint rejected the parameters or the request format."""


class NotFoundError(APIStatusError):
    """404: the model or endpoint URL does not exist. Check SAMAUDIO_ENDPOINT / endpoint=."""


class RedirectError(APIStatusError):
    """The endpoint answered with a redirect to another origin; the key was not sent there."""


class FatalAPIError(APIStatusError):
    """An error that no retry can fix (auth, permission, credits): every worker stops."""


class AuthenticationError(FatalAPIError):
    """401: the API key is missing or invalid. Set SEGMIND_API_KEY or pass api_key=."""


class PermissionDeniedError(FatalAPIError):
    """403: the key is valid but may not use this model."""


class InsufficientCreditsError(FatalAPIError):
    """406: the account has run out of credits. Top up, then run again: paid results are cached."""


class RateLimitError(APIStatusError):
    """429: too many requests for the account's plan. ``retry_after`` in seconds if sent."""


class ServerError(APIStatusError):
    """500 or another 5xx: the endpoint failed."""


class BadGatewayError(ServerError):
    """502: the service is temporarily unavailable."""


class GatewayTimeoutError(ServerError):
    """504: the endpoint timed out (normal during a cold start)."""


class APIConnectionError(APIError):
    """The connection failed or dropped before a complete answer arrived. ``unreachable``
    says why no request can get through (DNS, refused, TLS), when that is the case."""

    unreachable: str | None = None


class APITimeoutError(APIConnectionError):
    """No complete answer within the client's timeout."""


class EndpointUnreachableError(APIConnectionError):
    """The endpoint cannot be reached at all (its name does not resolve, the connection is
    refused, TLS fails): every request would meet it, so the run stops after a few attempts,
    as for a 401. Check with ``samaudio-data check``."""


class EndpointDownError(EndpointUnreachableError):
    """Nothing listens at a local endpoint's address (connection refused): not retried."""


class ResponseDecodeError(APIError):
    """A 200 answer whose body is not audio we can use (an excerpt is in the message)."""


class IncompleteResponseError(ResponseDecodeError):
    """A 200 answer that does not cover the input (cut short, or too short or too long)."""


class QueueJobFailedError(APIStatusError):
    """The asynchronous queue reported the job as FAILED (the message says why)."""


class UncollectableRequestError(ResponseDecodeError):
    """The queue accepted (and billed) a request whose answer cannot be followed safely.

    Its answer lacked a usable ``request_id`` or URL, pointed to another origin, reused an id
    of another clip, or stayed unknown to the status store. The request is kept in the
    journal for ``queue_retention``, so the piece is not submitted (paid) again meanwhile.
    Not retried.
    """


class AnswerMismatchError(ResponseDecodeError):
    """An answer names another request than the one it was fetched for: never used."""


class QueueResultExpiredError(NotFoundError):
    """A queued request's result is gone (404: expired or unknown); it must be sent again."""


class ReadOnlySettingError(SamAudioError, AttributeError):
    """A client's setting was assigned after construction; use ``client.with_options(...)``
    for a modified copy."""


STOPS = (FatalAPIError, BudgetExceededError, EndpointUnreachableError)
"""The errors that stop every request of an operation at once (the others are per clip): a
refused key or account, the budget, and an endpoint that cannot be reached at all."""

_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: BadRequestError,
    406: InsufficientCreditsError,
    413: BadRequestError,
    422: BadRequestError,
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
    413: "The request is too large for the endpoint; lower chunk_seconds.",
    429: "Set requests_per_minute to the plan's limit to stay under it.",
}


def error_for_status(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    response: ResponseInfo | None = None,
) -> APIStatusError:
    """Build the typed error for an HTTP ``status`` and the server's ``message``.

    >>> type(error_for_status(406, "no credits")).__name__
    'InsufficientCreditsError'
    """
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if 500 <= status < 600 else APIStatusError
    return cls(
        message,
        status_code=status,
        hint=_HINTS.get(status),
        response=response,
        retry_after=retry_after,
    )


def is_retryable(exc: BaseException) -> bool:
    """True for errors worth another attempt: 429, 5xx, connection trouble, timeouts and
    answers cut short. Never for 400/401/403/404/406, redirects or bad input.

    >>> is_retryable(ServerError("boom", status_code=500)), is_retryable(BadRequestError("x"))
    (True, False)
    """
    if isinstance(exc, EndpointUnreachableError):
        return False
    return isinstance(
        exc, (RateLimitError, ServerError, APIConnectionError, IncompleteResponseError)
    )


# --- signals inside the library (never raised to a caller) ------------------------------


class Halted(Exception):
    """Raised by the shared limits' ``wait_turn`` when a fatal error stopped everyone; the
    answer pipeline turns it into the typed error."""

    def __init__(self, halt: dict) -> None:
        super().__init__(halt.get("message", ""))
        self.halt = halt

    def __reduce__(self):  # crosses process boundaries (a Ray actor's answer) whole
        return (type(self), (self.halt,))


class Requeue(Exception):
    """Raised by the shared limits' gate when a 429 back-off began after this request's
    turn was granted: nothing was sent, and the request waits its turn again."""
