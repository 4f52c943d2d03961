"""The wire format of the local endpoint: routes, replies, request validation, audio answers.

A :class:`Reply` is what a route answers (status, body, content type, headers, and a ``mode``
for faults that break the connection). :func:`read_call` validates a model request's JSON
body as the provider documents it and decodes its audio; :func:`audio_reply` wraps encoded
audio the way the endpoint's ``response_format`` says.

Example
-------
>>> r = json_reply(400, "bad")
>>> r.status, r.body
(400, b'{"error": "bad"}')
>>> read_call({"description": "x"}, own_file=None)
Traceback (most recent call last):
...
samaudio_data.testing._protocol.BadRequest: 'audio' is required: the audio file's bytes in
base64 (or a data:audio/...;base64, URI).
"""

from __future__ import annotations

import base64
import binascii
import http
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .. import audio
from .._settings import CANDIDATES, OUTPUT_FORMATS
from ..errors import ResponseDecodeError

MODEL_NAME = "sam-audio-large"
MODEL_PATH = "/v1/" + MODEL_NAME
QUEUE_PATH = "/v2/" + MODEL_NAME
REQUESTS_PREFIX = "/v2/requests/"
POLL_PREFIX = "/v1/requests/"
CREDITS_PATH = "/v1/get-user-credits"
FILES_PREFIX = "/files/"

RESPONSE_FORMATS = ("wav", "json-base64", "json-data-uri", "json-url", "octet")
MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}


class UploadInfo(NamedTuple):
    """What the last upload decoded to: ``(sr, channels, n_samples, subtype)``."""

    sr: int
    channels: int
    n_samples: int
    subtype: str


@dataclass
class Reply:
    """One HTTP answer. ``mode``: "normal", "drop" (no answer) or "truncate" (half the body)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"


DROP = Reply(0, mode="drop")


class BadRequest(Exception):
    """A 400 with its message; raised while validating a request."""


@dataclass
class Call:
    """A validated model request: the decoded upload and the parameters that matter."""

    y: np.ndarray
    sr: int
    description: str
    fmt: str
    upload: UploadInfo
    container: str
    reranking_candidates: int = 1


def json_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """A JSON error ``{"error": message}`` with ``status``."""
    return Reply(status, json.dumps({"error": message}).encode(), headers=dict(headers or {}))


def json_doc(status: int, doc: dict, headers: dict[str, str] | None = None) -> Reply:
    """Any JSON document with ``status``."""
    return Reply(status, json.dumps(doc).encode(), headers=dict(headers or {}))


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("Bad Gateway"), or "Error"."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def parse_json(body: bytes):
    """The JSON value of ``body``, or None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def read_call(
    payload,
    *,
    own_file: Callable[[str], bytes] | None,
    accept_data_uri: bool = True,
    max_audio_seconds: float | None = None,
) -> Call:
    """Validate a model request body (already parsed JSON) and decode its audio.

    ``own_file(url)`` returns the bytes of a URL on this server (or raises
    :class:`BadRequest`). Raises :class:`BadRequest` with the provider-style message.
    """
    if not isinstance(payload, dict):
        if payload is None:
            raise BadRequest(
                "the request body is not valid JSON; send a JSON object "
                "with 'audio' and 'description'."
            )
        raise BadRequest(
            "the request body must be a JSON object with 'audio' and "
            f"'description', got JSON {type(payload).__name__}."
        )
    description = payload.get("description")
    if not isinstance(description, str) or not description.strip():
        raise BadRequest(
            "'description' is required: a non-empty string naming the sound "
            'to isolate, e.g. "dog barking".'
        )
    fmt = payload.get("output_format", "wav")
    if fmt not in OUTPUT_FORMATS:
        raise BadRequest(f'\'output_format\' must be "wav" or "mp3", got {fmt!r}.')
    rerank = payload.get("reranking_candidates", 1)
    if isinstance(rerank, bool) or not isinstance(rerank, int) or rerank not in CANDIDATES:
        raise BadRequest(f"'reranking_candidates' must be an integer from 1 to 8, got {rerank!r}.")
    raw = _audio_field(payload.get("audio"), own_file, accept_data_uri)
    try:
        y, sr = audio.decode_audio(raw)
    except ResponseDecodeError:
        raise BadRequest(
            f"'audio' could not be decoded as WAV, FLAC, OGG or MP3 "
            f"({len(raw)} bytes starting with {audio.excerpt(raw, 24)})."
        ) from None
    if not np.all(np.isfinite(y)):
        raise BadRequest("'audio' contains NaN or infinite samples.")
    seconds = y.shape[-1] / sr
    if max_audio_seconds is not None and seconds > max_audio_seconds:
        raise BadRequest(
            f"'audio' is {seconds:.2f} s long; this endpoint accepts at most "
            f"{max_audio_seconds:g} s."
        )
    import soundfile  # only to name the upload's container and subtype in stats

    info = soundfile.info(io.BytesIO(raw))
    return Call(
        y,
        sr,
        description,
        fmt,
        UploadInfo(sr, y.shape[0], y.shape[-1], info.subtype),
        info.format,
        rerank,
    )


def _audio_field(value, own_file, accept_data_uri: bool) -> bytes:
    """The uploaded file's bytes from the ``audio`` field (base64, data URI or own URL)."""
    if value is None:
        raise BadRequest(
            "'audio' is required: the audio file's bytes in base64 "
            "(or a data:audio/...;base64, URI)."
        )
    if not isinstance(value, str):
        raise BadRequest(f"'audio' must be a string (base64), got {type(value).__name__}.")
    if value.startswith(("http://", "https://")):
        if own_file is None:
            raise BadRequest("remote URLs not supported by the local endpoint.")
        return own_file(value)
    if value.startswith("data:"):
        if not accept_data_uri:
            raise BadRequest("'audio' must be bare base64: data: URIs are not accepted.")
        head, sep, value = value.partition(",")
        if not sep or not head.endswith(";base64"):
            raise BadRequest(
                "an 'audio' data URI must look like data:audio/wav;base64,<base64 bytes>."
            )
    text = "".join(value.split())
    if not text:
        raise BadRequest("'audio' is empty.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"'audio' is not valid base64 (starts with {text[:24]!r}).") from None


def audio_reply(
    data: bytes, fmt: str, response_format: str, add_file: Callable[[bytes, str], str]
) -> Reply:
    """Wrap encoded audio as ``response_format`` says (see ``LocalEndpoint``).

    >>> audio_reply(b"RIFF", "wav", "json-base64", add_file=None).body
    b'{"audio": "UklGRg=="}'
    """
    mime = MIME[fmt]
    if response_format == "wav":
        return Reply(200, data, mime)
    if response_format == "octet":
        return Reply(200, data, "application/octet-stream")
    if response_format == "json-url":
        return json_doc(200, {"audio_url": add_file(data, fmt)})
    return json_doc(
        200,
        {
            "audio": encode_output(
                data, fmt, "base64" if response_format == "json-base64" else "data-uri"
            )
        },
    )


def encode_output(data: bytes, fmt: str, form: str) -> str:
    """Encoded audio as text: bare ``"base64"`` or a ``"data-uri"``.

    >>> encode_output(b"RIFF", "wav", "data-uri")
    'data:audio/wav;base64,UklGRg=='
    """
    b64 = base64.b64encode(data).decode("ascii")
    return b64 if form == "base64" else f"data:{MIME[fmt]};base64,{b64}"
