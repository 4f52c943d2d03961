"""``LocalEndpoint``: the local stand-in's public face (settings, lifecycle, credits, faults,
files, stats). What each route answers is in ``_service``; the HTTP layer in ``_server``.

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

import threading
import time
from collections.abc import Iterable

from ..errors import InvalidRequestError
from ._accounts import Accounts
from ._clock import Clock
from ._options import Options
from ._protocol import MODEL_PATH, QUEUE_PATH
from ._server import Server
from ._service import Service


class LocalEndpoint:
    """A local HTTP server following the SAM Audio Large contract, v1 and queue.

    Settings (keywords; each is also a read-write attribute, applied to the next request):

    * ``host`` ["127.0.0.1"], ``port`` [0: a free port]: where to listen.
    * ``keys``: API key -> credits in dollars (None: unlimited) [``{"local-key": None}``];
      ``forbidden_keys``: keys answered with 403 on model routes.
    * ``price_per_call`` [0.062]: dollars deducted from the key on each paid answer.
    * ``rate_limit_per_minute`` [None: no limit] requests per key per ``rate_window`` [60]
      seconds: a sliding window, or, with ``rate_limit_burst=`` N, a token bucket of N tokens
      refilled at ``rate_limit_per_minute / rate_window`` per second.
    * ``send_retry_after`` [True]: ``Retry-After`` on a 429: True (whole seconds), False
      (none), ``"fraction"`` (decimal seconds), ``"http-date"``, or a value sent verbatim
      (``3600``, ``"inf"``, ``-1``...).
    * ``send_ratelimit_headers`` [False]: ``x-ratelimit-limit`` / ``-remaining`` / ``-reset``
      on every answer to a model POST (limit per window, requests left, seconds to reset).
    * ``latency`` [0]: seconds of simulated model time (a v1 call sleeps; a queued job is
      PROCESSING that long).
    * ``response_format`` ["wav"]: how a v1 200 carries the audio: ``"wav"`` (raw bytes,
      audio/wav or audio/mpeg), ``"json-base64"`` (``{"audio": b64}``), ``"json-data-uri"``,
      ``"json-url"`` (``{"audio_url": url}`` on this server) or ``"octet"``.
    * ``output_sample_rate`` [48000], ``output_channels`` [1], ``pad_to_frame`` [True],
      ``output_subtype`` ["PCM_16"]: the shape of the answer.
    * ``accept_data_uri`` [True]: if False, an ``audio`` value starting with ``data:`` is a 400.
    * ``max_audio_seconds`` [None]: a longer upload is a 400 naming the limit.
    * ``max_body_bytes`` [None]: a request body over this many bytes is a 413 with a JSON
      error (the body is read and discarded first, so the client sees the answer).
    * ``log_requests`` [False]: one line per request on stderr (never headers or the key).
    * ``queue`` [True]: serve the asynchronous queue; when False, its routes answer
      ``queue_off_status`` [404, or 405], as for a model not served on the queue.
    * ``queue_delay`` [0]: seconds a job stays QUEUED before PROCESSING.
    * ``queue_retention`` [3600]: seconds a finished job is kept; then its id answers 404
      with an error saying it expired.
    * ``queue_max_jobs`` [512]: jobs kept in memory at most; past that the oldest finished
      job is dropped early and answers 404 "expired" (results hold the answer's audio).
    * ``queue_output`` ["url"]: ``output`` of a COMPLETED result: ``"url"`` (this server's
      ``/files/<id>.<ext>``), ``"base64"`` or ``"data-uri"``.
    * ``queue_url_origin`` [None]: if set (e.g. ``"http://127.0.0.1:9"``), ``status_url``,
      ``response_url`` and ``poll_url`` point to that origin instead of this server.

    Invalid settings raise :class:`samaudio_data.errors.InvalidRequestError`.

    ``clock`` [real time]: what the rate windows and buckets, queued jobs (their states and
    retention), ``latency`` and ``"slow"`` faults follow; a
    :class:`~samaudio_data.testing.FakeClock` lets a test move time instead of sleeping.

    >>> with LocalEndpoint(keys={"test-key": 10.0}) as ep:
    ...     ep.url.startswith("http://127.0.0.1:") and ep.url.endswith("/v1/sam-audio-large")
    True
    """

    def __init__(
        self,
        *,
        keys: dict[str, float | None] | None = None,
        forbidden_keys: Iterable[str] = (),
        clock: Clock | None = None,
        **settings,
    ) -> None:
        unknown = sorted(set(settings) - Options.names())
        if unknown:
            raise InvalidRequestError(
                f"unknown LocalEndpoint setting(s) {unknown}; known: {sorted(Options.names())}."
            )
        if clock is None:
            clock = Clock()
        elif not isinstance(clock, Clock):
            raise InvalidRequestError(
                f"clock must be a samaudio_data.testing.Clock (such as FakeClock()), got "
                f"{type(clock).__name__}."
            )
        options = Options(**settings).validate()
        accounts = Accounts(keys, forbidden_keys, clock=clock)
        object.__setattr__(
            self,
            "_service",
            Service(options, accounts, clock=clock, base_url=lambda: self.base_url),
        )
        object.__setattr__(self, "_server", None)
        object.__setattr__(self, "_thread", None)

    def __getattr__(self, name: str):
        if name in Options.names():
            return getattr(self._service.options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name not in Options.names():
            raise AttributeError(
                f"{name!r} is not a LocalEndpoint setting; known: {sorted(Options.names())}."
            )
        options = self._service.options
        old = getattr(options, name)
        setattr(options, name, value)
        try:
            options.validate()
        except InvalidRequestError:
            setattr(options, name, old)
            raise

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalEndpoint:
        """Bind and serve in a background thread; returns ``self``.

        >>> ep = LocalEndpoint().start(); ep.stop()
        """
        if self._server is not None or self._service.stopping.is_set():
            raise RuntimeError("this LocalEndpoint was already started; create a new one.")
        server = Server((self.host, self.port), self._service)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LocalEndpoint:{server.server_address[1]}",
            daemon=True,
        )
        object.__setattr__(self, "_server", server)
        object.__setattr__(self, "_thread", thread)
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and release the port (idempotent).

        Requests still sleeping (``latency``, ``"slow"``) are abandoned without an answer
        (and a v1 call abandoned that way is refunded).

        >>> ep = LocalEndpoint().start(); ep.stop(); ep.stop()
        """
        self._service.stopping.set()
        server = self._server
        if server is None:
            return
        object.__setattr__(self, "_server", None)
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # abandoned requests wake at once; let them finish their books (refunds) first
        deadline = time.monotonic() + 5
        while self.stats["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def clock(self) -> Clock:
        """The clock this endpoint follows (see ``clock=``).

        >>> from samaudio_data.testing import FakeClock
        >>> LocalEndpoint(clock=FakeClock(start=5.0)).clock()
        5.0
        """
        return self._service.clock

    @property
    def port(self) -> int:
        """The port actually bound (the ``port`` setting until started).

        >>> LocalEndpoint(port=8123).port
        8123
        """
        if self._server is None:
            return self._service.options.port
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``, e.g. ``http://127.0.0.1:54321`` (needs the server running)."""
        if self._server is None:
            raise RuntimeError("the endpoint is not running; call start() or use `with`.")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The model URL to POST to: ``<base_url>/v1/sam-audio-large``."""
        return self.base_url + MODEL_PATH

    @property
    def queue_url(self) -> str:
        """The queue's submit URL: ``<base_url>/v2/sam-audio-large``.

        >>> with LocalEndpoint() as ep:
        ...     ep.queue_url == ep.base_url + "/v2/sam-audio-large"
        True
        """
        return self.base_url + QUEUE_PATH

    # --- credits -----------------------------------------------------------------------

    def credits(self, key: str) -> float | None:
        """Dollars left on ``key`` (None: unlimited); InvalidRequestError for an unknown key.

        >>> LocalEndpoint(keys={"k": 2.0}).credits("k")
        2.0
        """
        return self._service.accounts.credits(key)

    def set_credits(self, key: str, credits: float | None) -> None:
        """Set the dollars left on ``key`` (None: unlimited); adds the key if it is new.

        >>> ep = LocalEndpoint(); ep.set_credits("new-key", 0.5); ep.credits("new-key")
        0.5
        """
        self._service.accounts.set_credits(key, credits)

    # --- faults ------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        times: int = 1,
        status: int | None = None,
        retry_after=None,
        message: str | None = None,
        delay: float | None = None,
        step: str | None = None,
    ) -> None:
        """Queue a fault for the next ``times`` requests of ``step`` (FIFO).

        ``step``: ``"model"`` (default: the next model POST, v1 call or v2 submit),
        ``"call"`` (v1 only), ``"submit"``, ``"status"`` (status polls) or ``"result"``
        (result fetches). Kinds: ``"status"`` (answer ``status``, 400..599, with a JSON
        error, ``message`` if given, and ``Retry-After: retry_after`` verbatim if given),
        ``"drop"`` (read the request, close the socket without answering), ``"truncate"`` (a
        200 whose Content-Length promises more than is sent: half a 1 s WAV on v1, half a
        JSON document elsewhere), ``"html"`` (an nginx-style HTML error page, ``status``
        default 502), ``"garbage"`` (a 200 whose body is ``message`` or
        ``<html><body>oops</body></html>``), ``"slow"`` (sleep ``delay`` seconds, then answer
        normally) and ``"fail"`` (submit only: the job is accepted, unbilled, and ends
        FAILED). Faults are never billed and take no rate-limit slot, except ``"slow"``.

        >>> ep = LocalEndpoint()
        >>> ep.inject("status", status=503, times=2, retry_after=3)
        >>> ep.inject("slow", delay=5.0, step="status")
        >>> ep.inject("fail")
        >>> ep.clear_faults()
        """
        self._service.faults.add(
            kind,
            step=step,
            times=times,
            status=status,
            retry_after=retry_after,
            message=message,
            delay=delay,
        )

    def clear_faults(self) -> None:
        """Forget every queued fault.

        >>> ep = LocalEndpoint(); ep.inject("drop"); ep.clear_faults()
        """
        self._service.faults.clear()

    # --- files -------------------------------------------------------------------------

    def add_file(self, data: bytes, ext: str = "wav") -> str:
        """Keep ``data`` in memory and return its URL on this server (``/files/<id>.<ext>``).

        Such a URL is accepted as the ``audio`` field of a request.

        >>> with LocalEndpoint() as ep:
        ...     ep.add_file(b"RIFF....WAVE", "wav").startswith(ep.base_url + "/files/")
        True
        """
        return self._service.add_file(data, ext)

    # --- scripted behaviours ------------------------------------------------------------

    def add_scene(
        self,
        mix,
        sr: int,
        *,
        target=None,
        other=None,
        invented=None,
        behaviour: str = "good",
        fixed_by_rerank: bool = False,
        gain: float = 1.0,
        leak_db: float = -25.0,
        artifacts_db: float | None = None,
    ) -> None:
        """Script the answer to one mix (see :mod:`samaudio_data.testing._scenes`).

        ``target`` is the described sound as it is in the mix (None: absent), ``other``
        the rest (default: mix minus target), ``invented`` what the model makes up;
        ``behaviour`` one of ``good``, ``empty``, ``invented``, ``wrong_source``,
        ``unchanged``, ``absent``. Every request whose upload is this mix is answered so,
        whatever its description; with ``fixed_by_rerank``, ``reranking_candidates >= 2``
        gets the good answer. ``gain``, ``leak_db`` and ``artifacts_db`` make the answers
        imprecise as a real model's are.

        >>> import numpy as np
        >>> from samaudio_data import Client
        >>> t = 0.3 * np.sin(np.arange(8000) * 0.3); n = 0.1 * np.cos(np.arange(8000) * 0.05)
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False) as c:
        ...     ep.add_scene(t + n, 8000, target=t, behaviour="wrong_source", leak_db=-120)
        ...     out = c.isolate(t + n, 8000, "a sine")
        >>> bool(np.abs(out - n)[100:-100].max() < 0.001)      # the other sound, not the sine
        True
        """
        from ._scenes import Scene

        self._service.scenes.add(
            Scene.build(
                mix,
                sr,
                target=target,
                other=other,
                invented=invented,
                behaviour=behaviour,
                fixed_by_rerank=fixed_by_rerank,
                gain=gain,
                leak_db=leak_db,
                artifacts_db=artifacts_db,
            )
        )

    def clear_scenes(self) -> None:
        """Forget every scripted scene: the fake model answers as usual again."""
        self._service.scenes.clear()

    # --- statistics --------------------------------------------------------------------

    @property
    def stats(self) -> dict:
        """A snapshot of the counters since start or :meth:`reset_stats`.

        Keys: ``requests`` (model POSTs received: v1 calls and v2 submits), ``billed`` (paid
        answers: v1 200s and accepted jobs that do not fail), ``by_status`` ({status: count}
        of model POSTs; dropped ones have none), ``by_step`` ({"call"|"submit"|"status"|
        "result": {status: count}}), ``submits``, ``polls`` (status GETs), ``fetches``
        (result GETs), ``jobs`` ({state: count} of kept jobs), ``per_key`` ({key:
        {"requests", "billed"}}), ``in_flight``, ``max_in_flight`` (model POSTs being
        handled), ``faults`` ({kind: count served}), ``descriptions`` (in order),
        ``request_bytes`` (body sizes of model POSTs), ``last_request`` (the last JSON body
        with ``audio`` replaced by its length; None if not JSON), ``last_upload``
        (``UploadInfo`` of the last decoded upload), ``last_upload_format`` ("WAV", "FLAC",
        ...), ``clipped_samples``, ``seen_lags`` and ``collect_lags`` (for the last 10,000
        queued jobs, in order, the seconds from each one's completion to the first poll that
        found it COMPLETED, and to the first fetch of its result: how late the client saw it
        done and collected it), ``first_request_at`` / ``last_request_at`` (when the first
        and last model POSTs arrived, ``time.monotonic()`` of the server; None before), and
        ``arrivals`` (``(arrived, refused)`` of the last 10,000 model POSTs the rate limit
        judged: when it saw each arrive, on the endpoint's clock, and whether it answered
        429).

        >>> LocalEndpoint().stats["requests"]
        0
        """
        snapshot = self._service.stats.snapshot()
        snapshot["faults"] = self._service.faults.served()
        snapshot["jobs"] = self._service.jobs.counts()
        return snapshot

    def reset_stats(self) -> None:
        """Zero every counter (credits, faults, jobs and rate-limit state are kept).

        >>> ep = LocalEndpoint(); ep.reset_stats(); ep.stats["billed"]
        0
        """
        self._service.stats.reset()
        self._service.faults.reset_counts()
