"""The settings of a local endpoint, validated in one place.

Every setting is a keyword of ``LocalEndpoint(...)`` and a read-write attribute of it (a change
applies to the next request). Impossible values raise
:class:`samaudio_data.errors.InvalidRequestError`.

Example
-------
>>> Options(latency=0.5).validate().latency
0.5
>>> Options(queue_output="ftp").validate()
Traceback (most recent call last):
...
samaudio_data.errors.InvalidRequestError: queue_output must be one of
'url', 'base64', 'data-uri', got 'ftp'.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import audio
from .._settings import check_choice
from ..errors import InvalidRequestError, SamAudioError
from ._accounts import RateLimit
from ._model import MODEL_SR, WAV_SUBTYPES
from ._protocol import RESPONSE_FORMATS
from ._queue import QUEUE_OUTPUTS

DEFAULT_PRICE = 0.062


@dataclass
class Options:
    """Settings (defaults in brackets); see ``LocalEndpoint`` for what each one does."""

    host: str = "127.0.0.1"
    port: int = 0
    price_per_call: float = DEFAULT_PRICE
    rate_limit_per_minute: int | None = None
    rate_window: float = 60.0
    rate_limit_burst: int | None = None
    send_retry_after: object = True
    send_ratelimit_headers: bool = False
    latency: float = 0.0
    response_format: str = "wav"
    output_sample_rate: int = MODEL_SR
    output_channels: int = 1
    pad_to_frame: bool = True
    output_subtype: str = "PCM_16"
    accept_data_uri: bool = True
    max_audio_seconds: float | None = None
    max_body_bytes: int | None = None
    log_requests: bool = False
    queue: bool = True
    queue_off_status: int = 404
    queue_delay: float = 0.0
    queue_retention: float = 3600.0
    queue_max_jobs: int = 512
    queue_output: str = "url"
    queue_url_origin: str | None = None

    @classmethod
    def names(cls) -> frozenset:
        """The names of every setting."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    @property
    def rate_limit(self) -> RateLimit:
        """The rate-limit settings as one value."""
        return RateLimit(self.rate_limit_per_minute, self.rate_window, self.rate_limit_burst)

    def validate(self) -> Options:
        """Raise InvalidRequestError for an impossible setting; return ``self``."""
        check_choice("response_format", self.response_format, RESPONSE_FORMATS)
        check_choice("output_subtype", self.output_subtype, WAV_SUBTYPES)
        check_choice("queue_output", self.queue_output, QUEUE_OUTPUTS)
        check_choice("queue_off_status", self.queue_off_status, (404, 405))
        self.rate_limit.check()
        for name in ("latency", "price_per_call", "queue_delay"):
            _number(name, getattr(self, name), minimum=0.0)
        _number("queue_retention", self.queue_retention, minimum=0.0)
        if self.max_audio_seconds is not None:
            _number("max_audio_seconds", self.max_audio_seconds, minimum=0.0)
        if (
            isinstance(self.queue_max_jobs, bool)
            or not isinstance(self.queue_max_jobs, int)
            or self.queue_max_jobs < 1
        ):
            raise InvalidRequestError(
                f"queue_max_jobs must be an integer >= 1, got {self.queue_max_jobs!r}."
            )
        if self.max_body_bytes is not None and (
            isinstance(self.max_body_bytes, bool)
            or not isinstance(self.max_body_bytes, int)
            or self.max_body_bytes < 1
        ):
            raise InvalidRequestError(
                f"max_body_bytes must be an integer >= 1 or None (no "
                f"limit), got {self.max_body_bytes!r}."
            )
        if (
            isinstance(self.output_channels, bool)
            or not isinstance(self.output_channels, int)
            or self.output_channels < 1
        ):
            raise InvalidRequestError(
                f"output_channels must be an integer >= 1, got {self.output_channels!r}."
            )
        try:
            audio.check_sample_rate(self.output_sample_rate)
        except SamAudioError as exc:
            raise InvalidRequestError(f"output_sample_rate: {exc}") from exc
        if (
            not isinstance(self.send_retry_after, (bool, int, float, str))
            and self.send_retry_after is not None
        ):
            raise InvalidRequestError(
                "send_retry_after must be True, False, 'fraction', "
                "'http-date' or a value sent verbatim (3600, 'inf', ...)."
            )
        if self.queue_url_origin is not None:
            parts = urlsplit(str(self.queue_url_origin))
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise InvalidRequestError(
                    "queue_url_origin must be an origin such as "
                    f"'http://127.0.0.1:9', got {self.queue_url_origin!r}."
                )
        return self


def _number(name: str, value, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise InvalidRequestError(f"{name} must be a number >= {minimum:g}, got {value!r}.")
