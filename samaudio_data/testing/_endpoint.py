"""A local stand-in for the SAM Audio Large endpoint: a real HTTP server on 127.0.0.1.

It follows the same contract as ``POST https://api.segmind.com/v1/sam-audio-large``
(``x-api-key`` header, JSON body with ``audio``, ``description``, ``output_format``,
``reranking_candidates``) but answers instantly, deterministically and for free. It is used
by the tests, the notebooks and the offline demo, and it can inject every failure the
hosted service is known or suspected to produce.

Routes
------
``POST /v1/sam-audio-large``
    The model. 200 with audio, or a JSON error ``{"error": "..."}``: 400 bad body or
    parameters, 401 missing/unknown key, 403 forbidden key, 406 insufficient credits,
    429 rate limited (with ``Retry-After``), 500 internal failure.
``GET /v1/get-user-credits``
    ``{"credits": <float>, "free-credits": 0.0}`` for the key in ``x-api-key`` (401 if
    missing/unknown). Unlimited keys report :data:`UNLIMITED_CREDITS_REPORTED`.
``GET /files/<id>.<ext>``
    Audio produced for ``response_format="json-url"`` (the last :data:`MAX_FILES` kept).
Anything else is a JSON 404; a known path with the wrong method is a JSON 405.

What a 200 contains (exact and deterministic)
---------------------------------------------
1. The ``audio`` field is decoded: bare base64, a ``data:<mime>;base64,`` URI, or a URL of
   this same server's ``/files/`` (other URLs are a 400). WAV, FLAC, OGG and MP3 are read.
2. Channels are averaged to mono; the mono signal is resampled to 48 kHz (skipped when it is
   already 48 kHz, so a 48 kHz upload is used sample for sample).
3. The description picks a transform, by whole lowercase words, first match wins:

   ========================  =========================================================
   word in description       output (``mix`` = the 48 kHz mono input)
   ========================  =========================================================
   ``silence``               zeros
   ``half``                  ``0.5 * mix``
   ``bass`` or ``low``       low-pass: FFT brick wall keeping bins below 500 Hz
   ``treble`` or ``high``    ``mix - lowpass(mix)``
   anything else             ``mix`` unchanged (identity)
   ========================  =========================================================

   So ``"a man speaking"`` returns the input itself: a client can check that level and
   alignment come back exactly.
4. With ``pad_to_frame`` (default) zeros are appended up to a whole number of 1920-sample
   frames (the model's latent frame at 48 kHz): 50000 samples come back as 51840.
5. Resampled to ``output_sample_rate`` if it is not 48000; the mono result is repeated on
   ``output_channels`` channels.
6. Encoded as WAV (``output_subtype``, PCM_16 by default) or, for ``output_format="mp3"``,
   MP3. For integer PCM and MP3 output, samples beyond full scale are clipped to [-1, 1] and
   never silently: the count is sent in an ``x-clipped-samples`` header and added to
   ``stats["clipped_samples"]``.

``reranking_candidates`` is validated (an integer 1..8, booleans refused) but changes nothing.
:func:`separate` computes steps 2-5 on an array, for tests that want the expected answer.

Billing, limits and faults
--------------------------
* Each 200 costs ``price_per_call`` dollars from the key's credits; remaining credits are in
  the ``x-remaining-credits`` header (for keys with finite credits). When the credits are
  below the price the answer is 406 and nothing is billed. Errors are never billed.
* Rate limit: a sliding window of ``rate_window`` seconds per key. Every authenticated
  request that is not itself refused with 429 takes a slot (so 400 and 406 answers count, as
  on a gateway that counts before validating); 429 answers and injected faults take none.
  The 429 carries ``Retry-After``: whole seconds until a slot frees, at least 1.
* :meth:`LocalEndpoint.inject` queues faults consumed, first in first out, by the next POSTs
  to the model route, whatever their key or body. Faults are never billed and take no
  rate-limit slot, except ``"slow"``, which delays a normal answer.

Example
-------
>>> import base64, numpy as np, requests
>>> from samaudio_data.audio import encode_wav, decode_audio
>>> y = np.sin(np.linspace(0, 100, 48000)) * 0.5
>>> with LocalEndpoint(keys={"test-key": 1.0}) as ep:
...     r = requests.post(ep.url, headers={"x-api-key": "test-key"}, json={
...         "audio": base64.b64encode(encode_wav(y, 48000)).decode(),
...         "description": "a man speaking"})
...     out, sr = decode_audio(r.content)
>>> r.status_code, sr, out.shape, r.headers["x-remaining-credits"]
(200, 48000, (1, 48000), '0.938')
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import http
import io
import json
import math
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np

from .. import audio
from ..errors import ResponseDecodeError

MODEL_PATH = "/v1/sam-audio-large"
CREDITS_PATH = "/v1/get-user-credits"
FILES_PREFIX = "/files/"

MODEL_SR = 48000
"""The model's working rate (Hz)."""
FRAME = 1920
"""The model's latent frame in samples at 48 kHz (25 frames per second)."""
LOWPASS_HZ = 500.0
"""Cut-off of the ``bass``/``low`` brick-wall low-pass."""
MAX_FILES = 256
"""How many ``json-url`` answers are kept for download (oldest dropped first)."""
UNLIMITED_CREDITS_REPORTED = 1e6
"""What ``get-user-credits`` reports for a key with unlimited (None) credits."""
DEFAULT_PRICE = 0.062

RESPONSE_FORMATS = ("wav", "json-base64", "json-data-uri", "json-url", "octet")
FAULT_KINDS = ("status", "drop", "truncate", "html", "garbage", "slow")
WAV_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")

_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}
_HTML_PAGE = ("<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
              "<center><h1>{status} {phrase}</h1></center>\r\n{extra}<hr><center>nginx</center>\r\n"
              "</body>\r\n</html>\r\n")


# --- the deterministic "model" ---------------------------------------------------------

def choose_transform(description: str) -> str:
    """Name the transform a description selects: silence, half, lowpass, highpass or identity.

    Whole lowercase words are matched, first rule wins (see the module docstring).

    >>> choose_transform("Bass guitar"), choose_transform("half the drums, low")
    ('lowpass', 'half')
    >>> choose_transform("a man speaking")
    'identity'
    """
    words = set(re.findall(r"[a-z0-9]+", description.lower()))
    if "silence" in words:
        return "silence"
    if "half" in words:
        return "half"
    if words & {"bass", "low"}:
        return "lowpass"
    if words & {"treble", "high"}:
        return "highpass"
    return "identity"


def _lowpass(mono: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft(mono)
    spectrum[np.fft.rfftfreq(mono.shape[-1], 1.0 / MODEL_SR) >= LOWPASS_HZ] = 0.0
    return np.fft.irfft(spectrum, n=mono.shape[-1])


def separate(y: np.ndarray, sr: int, description: str, *, pad_to_frame: bool = True,
             output_sample_rate: int = MODEL_SR, output_channels: int = 1) -> np.ndarray:
    """Compute what the local endpoint returns for ``y`` at ``sr``, before encoding.

    ``y`` is ``(n,)`` or ``(channels, n)`` float audio; the result is float64
    ``(output_channels, m)``. Steps 2-5 of the module docstring.

    >>> separate(np.ones(1000) * 0.25, 48000, "half the piano").shape
    (1, 1920)
    >>> float(separate(np.ones(1000) * 0.25, 48000, "half the piano")[0, 0])
    0.125
    """
    y2d = np.atleast_2d(np.asarray(y, dtype=np.float64))
    mix = audio.resample(audio.mix_to_mono(y2d), int(sr), MODEL_SR)
    kind = choose_transform(description)
    if kind == "silence":
        out = np.zeros_like(mix)
    elif kind == "half":
        out = mix * 0.5
    elif kind == "lowpass":
        out = _lowpass(mix)
    elif kind == "highpass":
        out = mix - _lowpass(mix)
    else:
        out = mix
    if pad_to_frame:
        out = audio.fit_length(out, -(-out.shape[-1] // FRAME) * FRAME)
    out = audio.resample(out, MODEL_SR, int(output_sample_rate))
    return np.tile(out, (int(output_channels), 1))


# --- small value types -----------------------------------------------------------------

class UploadInfo(NamedTuple):
    """What the last upload decoded to: ``(sr, channels, n_samples, subtype)``."""

    sr: int
    channels: int
    n_samples: int
    subtype: str


@dataclass
class _Fault:
    kind: str
    status: Optional[int] = None
    retry_after: object = None
    message: Optional[str] = None
    delay: float = 0.0


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Dict[str, str] = field(default_factory=dict)
    mode: str = "normal"  # "normal", "drop" (no answer at all) or "truncate" (half the body)


class _BadRequest(Exception):
    """A 400 with its message; raised while validating a request."""


def _json_reply(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> _Reply:
    return _Reply(status, json.dumps({"error": message}).encode(), headers=dict(headers or {}))


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _header_seconds(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- the server ------------------------------------------------------------------------

class LocalEndpoint:
    """A local HTTP server following the SAM Audio Large contract (see the module docstring).

    Keyword arguments:

    * ``host``, ``port``: where to listen; ``port=0`` picks a free port.
    * ``keys``: API key -> credits in dollars (None: unlimited). Default ``{"local-key": None}``.
    * ``forbidden_keys``: keys answered with 403 on the model route.
    * ``price_per_call``: dollars deducted from the key on each 200.
    * ``rate_limit_per_minute``: accepted requests per key per ``rate_window`` seconds
      (None: no limit); ``send_retry_after`` adds ``Retry-After`` to 429 answers.
    * ``latency``: seconds slept before answering a valid request (requests overlap).
    * ``response_format``: how a 200 carries the audio: ``"wav"`` (raw bytes, audio/wav or
      audio/mpeg), ``"json-base64"`` (``{"audio": b64}``), ``"json-data-uri"``
      (``{"audio": "data:audio/wav;base64,..."}``), ``"json-url"`` (``{"audio_url": url}``
      to GET from this server) or ``"octet"`` (raw bytes, application/octet-stream).
    * ``output_sample_rate``, ``output_channels``, ``pad_to_frame``, ``output_subtype``: the
      shape of the answer (WAV subtype one of :data:`WAV_SUBTYPES`).
    * ``accept_data_uri``: if False, an ``audio`` value starting with ``data:`` is a 400.
    * ``max_audio_seconds``: longer uploads are a 400 (None: no limit).
    * ``log_requests``: print one line per request to stderr (method, path, status; never
      headers, so never the API key).

    >>> with LocalEndpoint(keys={"test-key": 10.0}) as ep:
    ...     ep.url.startswith("http://127.0.0.1:") and ep.url.endswith("/v1/sam-audio-large")
    True
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 keys: Optional[Dict[str, Optional[float]]] = None,
                 forbidden_keys: Iterable[str] = (),
                 price_per_call: float = DEFAULT_PRICE,
                 rate_limit_per_minute: Optional[int] = None, rate_window: float = 60.0,
                 send_retry_after: bool = True, latency: float = 0.0,
                 response_format: str = "wav", output_sample_rate: int = MODEL_SR,
                 output_channels: int = 1, pad_to_frame: bool = True,
                 output_subtype: str = "PCM_16", accept_data_uri: bool = True,
                 max_audio_seconds: Optional[float] = None,
                 log_requests: bool = False) -> None:
        keys = {"local-key": None} if keys is None else dict(keys)
        for key, credit in keys.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"API keys must be non-empty strings, got {type(key).__name__}.")
            if credit is not None and not (isinstance(credit, (int, float)) and credit >= 0):
                raise ValueError("credits must be a number of dollars >= 0 or None (unlimited).")
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f"response_format must be one of {RESPONSE_FORMATS}, "
                             f"got {response_format!r}.")
        if output_subtype not in WAV_SUBTYPES:
            raise ValueError(f"output_subtype must be one of {WAV_SUBTYPES}, "
                             f"got {output_subtype!r}.")
        if rate_limit_per_minute is not None and int(rate_limit_per_minute) < 1:
            raise ValueError("rate_limit_per_minute must be >= 1 or None (no limit).")
        if rate_window <= 0 or latency < 0 or price_per_call < 0:
            raise ValueError("rate_window must be > 0; latency and price_per_call >= 0.")
        if int(output_channels) < 1:
            raise ValueError("output_channels must be >= 1.")
        audio.check_sample_rate(output_sample_rate)

        self.host = host
        self.price_per_call = float(price_per_call)
        self.rate_limit_per_minute = rate_limit_per_minute
        self.rate_window = float(rate_window)
        self.send_retry_after = send_retry_after
        self.latency = float(latency)
        self.response_format = response_format
        self.output_sample_rate = int(output_sample_rate)
        self.output_channels = int(output_channels)
        self.pad_to_frame = pad_to_frame
        self.output_subtype = output_subtype
        self.accept_data_uri = accept_data_uri
        self.max_audio_seconds = max_audio_seconds
        self.log_requests = log_requests

        self._requested_port = int(port)
        self._credits: Dict[str, Optional[float]] = {
            k: (None if v is None else float(v)) for k, v in keys.items()}
        self._forbidden = set(forbidden_keys)
        self._lock = threading.Lock()
        self._faults: collections.deque = collections.deque()
        self._windows: Dict[str, collections.deque] = {}
        self._files: "collections.OrderedDict[str, Tuple[bytes, str]]" = collections.OrderedDict()
        self._file_counter = 0
        self._conns: set = set()
        self._stopping = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._in_flight = 0
        self._reset_counters()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> "LocalEndpoint":
        """Bind and serve in a background thread; returns ``self``.

        >>> ep = LocalEndpoint().start(); ep.stop()
        """
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("this LocalEndpoint was already started; create a new one.")
        server = _Server((self.host, self._requested_port), _Handler)
        server.endpoint = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"LocalEndpoint:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and release the port (idempotent).

        Requests still sleeping (``latency``, ``"slow"``) are abandoned without an answer.

        >>> ep = LocalEndpoint().start(); ep.stop(); ep.stop()
        """
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "LocalEndpoint":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the endpoint is not running; call start() or use `with`.")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``, e.g. ``http://127.0.0.1:54321``."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The model URL to POST to: ``<base_url>/v1/sam-audio-large``."""
        return self.base_url + MODEL_PATH

    # --- credits -----------------------------------------------------------------------

    def credits(self, key: str) -> Optional[float]:
        """Dollars left on ``key`` (None: unlimited). Raises KeyError for an unknown key.

        >>> LocalEndpoint(keys={"k": 2.0}).credits("k")
        2.0
        """
        with self._lock:
            if key not in self._credits:
                raise KeyError(f"unknown API key (known: {len(self._credits)} keys)")
            return self._credits[key]

    def set_credits(self, key: str, credits: Optional[float]) -> None:
        """Set the dollars left on ``key`` (None: unlimited); adds the key if it is new.

        >>> ep = LocalEndpoint(); ep.set_credits("new-key", 0.5); ep.credits("new-key")
        0.5
        """
        with self._lock:
            self._credits[key] = None if credits is None else float(credits)

    # --- faults ------------------------------------------------------------------------

    def inject(self, kind: str, *, times: int = 1, status: Optional[int] = None,
               retry_after=None, message: Optional[str] = None,
               delay: Optional[float] = None) -> None:
        """Queue a fault for the next ``times`` POSTs to the model route (FIFO).

        Kinds: ``"status"`` (answer ``status``, 400..599, with a JSON error, ``message`` if
        given, and ``Retry-After: retry_after`` if given), ``"drop"`` (read the request, close
        the socket without answering), ``"truncate"`` (a 200 whose Content-Length promises a
        1 s WAV but only half of it is sent), ``"html"`` (an nginx-style HTML error page,
        ``status`` default 502, ``Retry-After`` if given), ``"garbage"`` (a 200 audio/wav whose
        body is ``message`` or ``<html><body>oops</body></html>``, not audio) and ``"slow"``
        (sleep ``delay`` seconds, then answer normally: billed like any 200).

        >>> ep = LocalEndpoint()
        >>> ep.inject("status", status=503, times=2, retry_after=3)
        >>> ep.inject("slow", delay=5.0)
        >>> ep.clear_faults()
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}.")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an integer >= 1, got {times!r}.")
        if kind == "status" and status is None:
            raise ValueError('inject("status") needs status=, e.g. status=503.')
        if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"status must be an HTTP error code 400..599, got {status!r}.")
        if kind == "slow" and (delay is None or delay < 0):
            raise ValueError('inject("slow") needs delay= in seconds, e.g. delay=5.0.')
        if kind == "html" and status is None:
            status = 502
        fault = _Fault(kind, status, retry_after, message, float(delay or 0.0))
        with self._lock:
            self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        """Forget every queued fault.

        >>> ep = LocalEndpoint(); ep.inject("drop"); ep.clear_faults()
        """
        with self._lock:
            self._faults.clear()

    # --- files (json-url answers, URL uploads) ------------------------------------------

    def add_file(self, data: bytes, ext: str = "wav") -> str:
        """Keep ``data`` in memory and return its URL on this server (``/files/<id>.<ext>``).

        Such a URL is accepted as the ``audio`` field of a request.

        >>> with LocalEndpoint() as ep:
        ...     ep.add_file(b"RIFF....WAVE", "wav").startswith(ep.base_url + "/files/")
        True
        """
        mime = _MIME.get(ext, "application/octet-stream")
        with self._lock:
            self._file_counter += 1
            name = f"f{self._file_counter:06d}.{ext}"
            self._files[name] = (bytes(data), mime)
            while len(self._files) > MAX_FILES:
                self._files.popitem(last=False)
        return f"{self.base_url}{FILES_PREFIX}{name}"

    # --- statistics --------------------------------------------------------------------

    @property
    def stats(self) -> dict:
        """A snapshot of the counters since start or :meth:`reset_stats`.

        Keys: ``requests`` (model POSTs received), ``billed`` (200s billed), ``by_status``
        ({status: count} on the model route; dropped requests have none), ``per_key``
        ({key: {"requests", "billed"}} for known keys), ``in_flight``, ``max_in_flight``,
        ``faults`` ({kind: count served}), ``descriptions`` (in order), ``request_bytes``
        (body sizes), ``last_request`` (the last JSON body with ``audio`` replaced by its
        length; None if not JSON), ``last_upload`` (:class:`UploadInfo` of the last decoded
        upload), ``last_upload_format`` ("WAV", "FLAC", "MP3", ...) and ``clipped_samples``.

        >>> LocalEndpoint().stats["requests"]
        0
        """
        with self._lock:
            return {
                "requests": self._n_requests,
                "billed": self._n_billed,
                "by_status": dict(self._by_status),
                "per_key": {k: dict(v) for k, v in self._per_key.items()},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "faults": dict(self._fault_counts),
                "descriptions": list(self._descriptions),
                "request_bytes": list(self._request_bytes),
                "last_request": None if self._last_request is None else dict(self._last_request),
                "last_upload": self._last_upload,
                "last_upload_format": self._last_upload_format,
                "clipped_samples": self._clipped,
            }

    def reset_stats(self) -> None:
        """Zero every counter (credits, faults and rate-limit windows are kept).

        >>> ep = LocalEndpoint(); ep.reset_stats(); ep.stats["billed"]
        0
        """
        with self._lock:
            self._reset_counters()
            self._max_in_flight = self._in_flight

    def _reset_counters(self) -> None:
        self._n_requests = 0
        self._n_billed = 0
        self._by_status: Dict[int, int] = collections.Counter()
        self._per_key: Dict[str, Dict[str, int]] = {}
        self._max_in_flight = 0
        self._fault_counts: Dict[str, int] = collections.Counter()
        self._descriptions: List[object] = []
        self._request_bytes: List[int] = []
        self._last_request: Optional[dict] = None
        self._last_upload: Optional[UploadInfo] = None
        self._last_upload_format: Optional[str] = None
        self._clipped = 0

    # --- request handling (called from handler threads) ---------------------------------

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self, status: Optional[int]) -> None:
        with self._lock:
            self._in_flight -= 1
            if status is not None:
                self._by_status[status] += 1

    def _model_post(self, api_key: Optional[str], body: bytes) -> _Reply:
        """Answer one POST to the model route: faults, auth, limits, validation, billing."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None
        with self._lock:
            self._n_requests += 1
            self._request_bytes.append(len(body))
            if isinstance(payload, dict):
                self._last_request = {k: (len(v) if k == "audio" and isinstance(v, str) else v)
                                      for k, v in payload.items()}
                if isinstance(payload.get("description"), str):
                    self._descriptions.append(payload["description"])
            else:
                self._last_request = None
            fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                self._fault_counts[fault.kind] += 1
        if fault is not None:
            if fault.kind != "slow":
                return _fault_reply(fault)
            if self._stopping.wait(fault.delay):
                return _Reply(0, mode="drop")

        refusal = self._authorize(api_key)
        if refusal is not None:
            return refusal
        try:
            if payload is None:
                raise _BadRequest("the request body is not valid JSON; send a JSON object "
                                  "with 'audio' and 'description'.")
            data, fmt, clipped = self._render(payload)
        except _BadRequest as exc:
            return _json_reply(400, str(exc))
        except Exception as exc:  # an internal failure is a 500, never billed
            return _json_reply(500, f"internal error in the local endpoint: "
                                    f"{type(exc).__name__}: {exc}")

        with self._lock:
            left = self._credits.get(api_key)
            if left is not None:
                if left + 1e-9 < self.price_per_call:
                    return _json_reply(406, (
                        f"Insufficient credits: a call costs ${self.price_per_call:.3f} and this "
                        f"key has ${left:.3f} left. Top up to continue."))
                left = round(left - self.price_per_call, 9)
                self._credits[api_key] = left
        if self.latency and self._stopping.wait(self.latency):
            if left is not None:  # stopped while "thinking": abandoned, so refunded
                with self._lock:
                    self._credits[api_key] = round(self._credits[api_key] + self.price_per_call, 9)
            return _Reply(0, mode="drop")
        reply = self._audio_reply(data, fmt)
        if clipped:
            reply.headers["x-clipped-samples"] = str(clipped)
        if left is not None:
            reply.headers["x-remaining-credits"] = repr(round(left, 6))
        with self._lock:
            self._n_billed += 1
            self._per_key.setdefault(api_key, {"requests": 0, "billed": 0})["billed"] += 1
        return reply

    def _authorize(self, api_key: Optional[str]) -> Optional[_Reply]:
        """401/403/429, or None when the key may call the model now (taking a rate slot)."""
        if not api_key:
            return _json_reply(401, "Missing API key: send it in the x-api-key header.")
        with self._lock:
            if api_key in self._forbidden:
                return _json_reply(403, "Forbidden: this API key may not use sam-audio-large.")
            if api_key not in self._credits:
                return _json_reply(401, "Invalid API key: check the x-api-key header.")
            counts = self._per_key.setdefault(api_key, {"requests": 0, "billed": 0})
            counts["requests"] += 1
            if self.rate_limit_per_minute is None:
                return None
            now = time.monotonic()
            window = self._windows.setdefault(api_key, collections.deque())
            while window and window[0] <= now - self.rate_window:
                window.popleft()
            if len(window) >= int(self.rate_limit_per_minute):
                wait = max(1, math.ceil(window[0] + self.rate_window - now))
                headers = {"Retry-After": str(wait)} if self.send_retry_after else {}
                return _json_reply(429, (
                    f"Rate limit exceeded: {self.rate_limit_per_minute} requests per "
                    f"{self.rate_window:g} s for this key; retry in {wait} s."), headers)
            window.append(now)
            return None

    def _render(self, payload) -> Tuple[bytes, str, int]:
        """Validate the body; return the encoded answer, its format and the clipped count."""
        if not isinstance(payload, dict):
            raise _BadRequest("the request body must be a JSON object with 'audio' and "
                              f"'description', got JSON {type(payload).__name__}.")
        description = payload.get("description")
        if not isinstance(description, str) or not description.strip():
            raise _BadRequest("'description' is required: a non-empty string naming the sound "
                              "to isolate, e.g. \"dog barking\".")
        fmt = payload.get("output_format", "wav")
        if fmt not in ("wav", "mp3"):
            raise _BadRequest(f"'output_format' must be \"wav\" or \"mp3\", got {fmt!r}.")
        rerank = payload.get("reranking_candidates", 1)
        if isinstance(rerank, bool) or not isinstance(rerank, int) or not 1 <= rerank <= 8:
            raise _BadRequest("'reranking_candidates' must be an integer from 1 to 8, "
                              f"got {rerank!r}.")
        raw = self._audio_field(payload.get("audio"))
        try:
            y, sr = audio.decode_audio(raw)
        except ResponseDecodeError:
            raise _BadRequest(f"'audio' could not be decoded as WAV, FLAC, OGG or MP3 "
                              f"({len(raw)} bytes starting with {audio.excerpt(raw, 24)}).")
        if not np.all(np.isfinite(y)):
            raise _BadRequest("'audio' contains NaN or infinite samples.")
        seconds = y.shape[-1] / sr
        if self.max_audio_seconds is not None and seconds > self.max_audio_seconds:
            raise _BadRequest(f"'audio' is {seconds:.2f} s long; this endpoint accepts at most "
                              f"{self.max_audio_seconds:g} s.")
        import soundfile  # only to name the upload's container and subtype in stats

        info = soundfile.info(io.BytesIO(raw))
        with self._lock:
            self._last_upload = UploadInfo(sr, y.shape[0], y.shape[-1], info.subtype)
            self._last_upload_format = info.format

        out = separate(y, sr, description, pad_to_frame=self.pad_to_frame,
                       output_sample_rate=self.output_sample_rate,
                       output_channels=self.output_channels)
        clipped = 0
        if fmt == "mp3" or self.output_subtype.startswith("PCM"):
            clipped = int(np.count_nonzero(np.abs(out) > 1.0))
            if clipped:
                out = np.clip(out, -1.0, 1.0)
                with self._lock:
                    self._clipped += clipped
        if fmt == "mp3":
            return audio.encode_mp3(out, self.output_sample_rate), fmt, clipped
        return audio.encode_wav(out, self.output_sample_rate, self.output_subtype), fmt, clipped

    def _audio_field(self, value) -> bytes:
        """The uploaded file's bytes from the ``audio`` field (base64, data URI or own URL)."""
        if value is None:
            raise _BadRequest("'audio' is required: the audio file's bytes in base64 "
                              "(or a data:audio/...;base64, URI).")
        if not isinstance(value, str):
            raise _BadRequest(f"'audio' must be a string (base64), got {type(value).__name__}.")
        if value.startswith(("http://", "https://")):
            return self._own_file(value)
        if value.startswith("data:"):
            if not self.accept_data_uri:
                raise _BadRequest("'audio' must be bare base64: data: URIs are not accepted.")
            head, sep, value = value.partition(",")
            if not sep or not head.endswith(";base64"):
                raise _BadRequest("an 'audio' data URI must look like "
                                  "data:audio/wav;base64,<base64 bytes>.")
        text = "".join(value.split())
        if not text:
            raise _BadRequest("'audio' is empty.")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _BadRequest(f"'audio' is not valid base64 (starts with {text[:24]!r}).")

    def _own_file(self, url: str) -> bytes:
        parts = urlsplit(url)
        own = (parts.scheme == "http" and parts.port == self.port
               and parts.hostname in {"127.0.0.1", "localhost", self.host})
        if not own or not parts.path.startswith(FILES_PREFIX):
            raise _BadRequest("remote URLs not supported by the local endpoint: send the "
                              "audio as base64, or a URL of this server's /files/.")
        with self._lock:
            entry = self._files.get(parts.path[len(FILES_PREFIX):])
        if entry is None:
            raise _BadRequest(f"'audio' URL {parts.path} is not on this server (only the last "
                              f"{MAX_FILES} files are kept).")
        return entry[0]

    def _audio_reply(self, data: bytes, fmt: str) -> _Reply:
        """Wrap encoded audio as this endpoint's ``response_format`` says."""
        mime = _MIME[fmt]
        if self.response_format == "wav":
            return _Reply(200, data, mime)
        if self.response_format == "octet":
            return _Reply(200, data, "application/octet-stream")
        if self.response_format == "json-url":
            doc = {"audio_url": self.add_file(data, fmt)}
        else:
            b64 = base64.b64encode(data).decode("ascii")
            doc = {"audio": b64 if self.response_format == "json-base64"
                   else f"data:{mime};base64,{b64}"}
        return _Reply(200, json.dumps(doc).encode())

    def _credits_get(self, api_key: Optional[str]) -> _Reply:
        with self._lock:
            if not api_key or (api_key not in self._credits and api_key not in self._forbidden):
                return _json_reply(401, "Missing or invalid API key: send it in the x-api-key "
                                        "header.")
            left = self._credits.get(api_key, 0.0)
        credits = UNLIMITED_CREDITS_REPORTED if left is None else round(left, 6)
        return _Reply(200, json.dumps({"credits": credits, "free-credits": 0.0}).encode())

    def _file_get(self, name: str) -> _Reply:
        with self._lock:
            entry = self._files.get(name)
        if entry is None:
            return _json_reply(404, f"file {name!r} not found (only the last {MAX_FILES} "
                                    "answers are kept).")
        return _Reply(200, entry[0], entry[1])


def _fault_reply(fault: _Fault) -> _Reply:
    """The answer for an injected fault (other than "slow")."""
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = _header_seconds(fault.retry_after)
    phrase = _phrase(fault.status) if fault.status else ""
    if fault.kind == "status":
        return _json_reply(fault.status, fault.message or f"{phrase} (injected fault)", headers)
    if fault.kind == "html":
        extra = f"<p>{fault.message}</p>\r\n" if fault.message else ""
        page = _HTML_PAGE.format(status=fault.status, phrase=phrase, extra=extra)
        return _Reply(fault.status, page.encode(), "text/html", headers)
    if fault.kind == "garbage":
        body = (fault.message or "<html><body>oops</body></html>").encode()
        return _Reply(200, body, "audio/wav")
    if fault.kind == "truncate":
        return _Reply(200, audio.encode_wav(np.zeros(MODEL_SR), MODEL_SR), "audio/wav",
                      mode="truncate")
    return _Reply(0, mode="drop")


# --- HTTP plumbing ---------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() shuts connections down itself
    request_queue_size = 128
    endpoint: LocalEndpoint

    def handle_error(self, request, client_address) -> None:
        """Stay quiet: errors here are clients that went away mid-answer."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SamAudioLocal/1.0"
    timeout = 120  # seconds an idle keep-alive connection may hold a thread

    @property
    def endpoint(self) -> LocalEndpoint:
        return self.server.endpoint

    def setup(self) -> None:
        super().setup()
        with self.endpoint._lock:
            self.endpoint._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.endpoint._lock:
                self.endpoint._conns.discard(self.connection)

    def log_message(self, format: str, *args) -> None:
        """Log method, path and status only (never headers), when ``log_requests`` is on."""
        if self.endpoint.log_requests:
            sys.stderr.write(f"local-endpoint {self.address_string()} {format % args}\n")

    def send_error(self, code: int, message: Optional[str] = None, explain=None) -> None:
        """Errors raised by the HTTP parser are JSON too."""
        self.close_connection = True
        self._write(_json_reply(code, message or _phrase(code)))

    # routing

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        api_key = self.headers.get("x-api-key")
        if path == MODEL_PATH and method == "POST":
            self.endpoint._enter()
            try:
                reply = self.endpoint._model_post(api_key, body)
            except BaseException:
                self.endpoint._leave(None)
                raise
            # counted before writing, so a client that has its answer sees consistent stats
            self.endpoint._leave(None if reply.mode == "drop" else reply.status)
            self._write(reply)
        elif path == CREDITS_PATH and method == "GET":
            self._write(self.endpoint._credits_get(api_key))
        elif path.startswith(FILES_PREFIX) and method == "GET":
            self._write(self.endpoint._file_get(path[len(FILES_PREFIX):]))
        elif path in (MODEL_PATH, CREDITS_PATH) or path.startswith(FILES_PREFIX):
            allow = "POST" if path == MODEL_PATH else "GET"
            self._write(_json_reply(405, f"method {method} not allowed on {path}; use {allow}.",
                                    {"Allow": allow}))
        else:
            self._write(_json_reply(404, f"no such endpoint: {path}. The model is at "
                                         f"POST {MODEL_PATH}."))

    def _read_body(self) -> Optional[bytes]:
        """The request body, or None after answering 411/400 for a missing or bad length."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("POST", "PUT", "PATCH") or self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self._write(_json_reply(411, "a Content-Length header is required "
                                             "(chunked uploads are not supported)."))
                return None
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._write(_json_reply(400, f"bad Content-Length header {length!r}."))
            return None
        return self.rfile.read(n)

    def _write(self, reply: _Reply) -> None:
        if reply.mode == "drop":
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.mode == "truncate":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(reply.body)


# --- command line ----------------------------------------------------------------------

def serve_main(argv: Optional[List[str]] = None) -> int:
    """Run a local endpoint until Ctrl-C (``samaudio-data serve``).

    The first line printed is the model URL; the next ones say which key to use.

    Example (shell)::

        samaudio-data serve --port 8000 --key my-key --credits 5 --rpm 50 --latency 2
    """
    parser = argparse.ArgumentParser(
        prog="samaudio-data serve",
        description="Serve a local, deterministic stand-in for the SAM Audio Large endpoint.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--key", action="append", metavar="KEY",
                        help="accepted API key, repeatable (default: local-key)")
    parser.add_argument("--credits", type=float, default=None,
                        help="dollars of credit for each key (default: unlimited)")
    parser.add_argument("--rpm", type=int, default=None,
                        help="rate limit, requests per minute per key (default: none)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds of simulated model time per call (default 0)")
    parser.add_argument("--response-format", choices=RESPONSE_FORMATS, default="wav",
                        help="how a 200 carries the audio (default wav)")
    parser.add_argument("--price", type=float, default=DEFAULT_PRICE,
                        help=f"dollars per call (default {DEFAULT_PRICE})")
    parser.add_argument("--verbose", action="store_true",
                        help="log one line per request to stderr (never the key)")
    args = parser.parse_args(argv)
    keys = args.key or ["local-key"]
    ep = LocalEndpoint(host=args.host, port=args.port,
                       keys={k: args.credits for k in keys}, price_per_call=args.price,
                       rate_limit_per_minute=args.rpm, latency=args.latency,
                       response_format=args.response_format, log_requests=args.verbose)
    ep.start()
    print(ep.url, flush=True)
    print(f"API key: {keys[0]}  (send it in the x-api-key header)", flush=True)
    print(f"  export SAMAUDIO_ENDPOINT={ep.url} SEGMIND_API_KEY={keys[0]}", flush=True)
    print("Serving until Ctrl-C.", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        ep.stop()
    return 0
