"""A local stand-in for the endpoint, for tests, notebooks and offline work.

:class:`LocalEndpoint` is a real HTTP server on 127.0.0.1 that follows the SAM Audio Large
contract (keys, every error code, rate limits with ``Retry-After``, credits, body and duration
limits, the asynchronous queue, injected faults); :func:`separate` computes what it answers
for an array. ``samaudio-data serve`` runs it (:func:`serve_main`); :class:`EndpointProcess`
runs it in a process of its own.

Routes
------
``POST /v1/sam-audio-large``
    The model. 200 with audio (see ``response_format``), or a JSON error
    ``{"error": "..."}``: 400 bad body or parameters, 401 missing/unknown key, 403 forbidden
    key, 406 insufficient credits, 413 body over ``max_body_bytes``, 429 rate limited (with
    ``Retry-After``), 500 internal failure or a description with the word ``fail``.
``POST /v2/sam-audio-large``
    The queue: same headers, body, validation, errors, rate limit and billing as v1, but a
    200 at once with ``{"request_id": id, "status": "QUEUED", "status_url":
    "<base>/v2/requests/<id>/status", "response_url": "<base>/v2/requests/<id>",
    "poll_url": "<base>/v1/requests/<id>"}`` (absolute URLs on this server, or on
    ``queue_url_origin``). Billed when accepted (``x-remaining-credits`` on this answer);
    a job that will fail is accepted unbilled.
``GET /v2/requests/<id>/status``
    ``{"request_id": id, "status": "QUEUED" | "PROCESSING" | "COMPLETED"}``; FAILED is a
    422 with ``{"request_id", "status": "FAILED", "error": "...", "metrics": {...}}``.
``GET /v2/requests/<id>`` (and ``GET /v1/requests/<id>``, the ``poll_url``)
    COMPLETED: 200 ``{"request_id", "status": "COMPLETED", "error": null, "metrics":
    {"queue_time", "inference_time"}, "output": <url | base64 | data URI>}``; FAILED: the
    422 above; not finished: 202 ``{"request_id", "status": "QUEUED" | "PROCESSING"}``.
    Polls and fetches are never billed nor rate limited; they need the submitting key
    (another key gets 404, no key or an unknown one 401). An unknown id, or one older than
    ``queue_retention`` seconds after it finished, is a 404 (the error says "expired").
    With ``queue=False`` every queue route answers ``queue_off_status`` (404 or 405).
``GET /v1/get-user-credits``
    ``{"credits": <float>, "free-credits": 0.0}`` for the key in ``x-api-key`` (401 if
    missing/unknown). Unlimited keys report 1e6.
``GET /files/<name>``
    Audio of ``json-url`` answers, :meth:`LocalEndpoint.add_file` and queued outputs.
Anything else is a JSON 404; a known path with the wrong method is a JSON 405.

What a 200 contains (exact and deterministic)
---------------------------------------------
1. The ``audio`` field is decoded: bare base64, a ``data:<mime>;base64,`` URI, or a URL of
   this same server's ``/files/`` (other URLs are a 400). WAV, FLAC, OGG and MP3 are read.
2. Channels are averaged to mono; the mono signal is resampled to 48 kHz (skipped when it is
   already 48 kHz, so a 48 kHz upload is used sample for sample).
3. The description picks a transform by whole words (:func:`choose_transform`): ``silence``
   -> zeros, ``half`` -> ``0.5 * mix``, ``bass``/``low`` -> low-pass below 500 Hz,
   ``treble``/``high`` -> the rest, anything else -> the input unchanged. So ``"a man
   speaking"`` returns the input itself.
4. With ``pad_to_frame`` (default) zeros are appended up to a whole number of 1920-sample
   frames: 50000 samples come back as 51840.
5. Resampled to ``output_sample_rate``; the mono result repeated on ``output_channels``.
6. Encoded as WAV (``output_subtype``) or MP3; samples beyond full scale in integer PCM or MP3
   are clipped and counted in an ``x-clipped-samples`` header and ``stats``.

Billing and limits
------------------
Each paid answer costs ``price_per_call`` from the key's credits (406 and nothing billed when
they are short). Errors, faults, polls and fetches are never billed. The rate limit (sliding
window or token bucket, per key) counts model POSTs that get past the key check.

Time
----
Rate windows and buckets, queued jobs (states, retention), ``latency`` and ``"slow"`` faults
follow the endpoint's ``clock``: real time by default; ``LocalEndpoint(clock=FakeClock())``
lets a test move time with :meth:`FakeClock.advance` instead of sleeping.

Example
-------
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint() as ep:
...     ep.url.endswith("/v1/sam-audio-large")
True
"""

from ._cli import serve_main
from ._clock import Clock, FakeClock
from ._endpoint import LocalEndpoint
from ._model import FRAME, MODEL_SR, choose_transform, separate
from ._process import EndpointProcess
from ._protocol import UploadInfo

__all__ = [
    "FRAME",
    "MODEL_SR",
    "Clock",
    "EndpointProcess",
    "FakeClock",
    "LocalEndpoint",
    "UploadInfo",
    "choose_transform",
    "separate",
    "serve_main",
]
