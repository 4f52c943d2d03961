"""The client: numpy audio in, the isolated sound out, paid for once.

:class:`Client` owns the connection pool and key (:mod:`samaudio_data._net.transport`), the
retry policy (:mod:`samaudio_data._net.retry`), the limits shared with other processes
(:mod:`samaudio_data._state.limits`), the result cache (:mod:`samaudio_data._answers.cache`) and one
thread pool. Its calls are :meth:`Client.isolate` (the target as an array),
:meth:`Client.separate` (target, residual and what the call cost), the concurrent
:meth:`Client.isolate_many` / :meth:`Client.separate_many` and :meth:`Client.map`, and
:meth:`Client.estimate` (what a run would cost, sending nothing) and :meth:`Client.check`
(key, account, endpoint and queue, for free; one paid probe on request).

Example
-------
>>> import numpy as np
>>> from samaudio_data import Client
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False) as client:
...     y = 0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
...     speech = client.isolate(y, 16000, "a man speaking")
>>> speech.shape, speech.dtype
((16000,), dtype('float32'))
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import tempfile  # noqa: F401 (the examples use it)
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _settings as settings
from . import audio, errors
from ._answers.cache import ResultCache
from ._answers.calls import Caller
from ._answers.jobs import Job, assemble, prepare
from ._net.journal import Journal
from ._state.files import private_dir
from ._state.limits import SharedLimits
from ._models import Budget, CostEstimate, Separation, Usage
from ._net.queue import QueueExchange, check_transport
from ._net.retry import RetryPolicy
from ._account import Account
from ._longfile import LongFiles
from ._many import ManyClips
from ._runner import answer_all
from ._net.transport import Transport
from ._version import __version__

# api keys of clients that were pickled (to num_proc workers), by endpoint: pickles never
# carry the key, so a dataset fingerprint never depends on it; forked workers find it here.
_KEYRING: Dict[str, str] = {}


class Client(ManyClips, LongFiles, Account):
    """A connection to the SAM Audio Large endpoint (or a local one following its contract).

    Parameters
    ----------
    api_key : str, optional
        Defaults to ``$SEGMIND_API_KEY``; surrounding whitespace is removed. Never logged,
        cached, pickled or shown in reprs and errors; sent only to the endpoint's origin.
    endpoint : str, optional
        Defaults to ``$SAMAUDIO_ENDPOINT``, else the provider's URL.
    requests_per_minute : float or "free" or "paid", optional
        The account's rate limit (``$SAMAUDIO_RATE_LIMIT``): requests are spaced to it and
        the number in flight follows from it and the latency observed. Unknown: the client
        starts with 2 in flight, doubles them per round until the first 429 and then
        keeps to the rate it learned from it.
    max_concurrency : int
        Upper bound on requests in flight, shared by every client of this endpoint.
    timeout : float or (connect, read)
        Seconds; the read timeout is also the total deadline of one attempt.
    max_retries : int
        Extra attempts after a fault (5xx, dropped connection, timeout, an answer cut
        short); never after 400/401/403/404/406. Waiting on 429s does not use them up.
    rate_window, retry_after_max, backoff_base, backoff_max :
        The provider's rate-limit window (a 429 without ``Retry-After`` waits this long),
        the cap on any ``Retry-After``, and the fault back-off.
    price_per_call : float
        Dollars per billed call, for usage and estimates (``$SAMAUDIO_PRICE_PER_CALL``).
    cache_dir : path, URL or False
        Where paid answers are kept (``$SAMAUDIO_CACHE_DIR`` or ``~/.cache/samaudio_data``);
        an fsspec URL (``s3://bucket/prefix``, ``gs://...``, a shared mount) shares them
        between the machines of a cluster (the queue's journal and the limits' file then
        stay in the local default directory). False turns the cache off.
    cache_namespace : str, optional
        The endpoint's identity in cache keys (default: the endpoint URL).
    output_format, reranking_candidates :
        Endpoint parameters; each call may override them.
    channels : "mix" or "each"
        "mix" averages channels (one call, mono result); "each" isolates every channel with
        its own call and returns ``(channels, n)``.
    audio_encoding : "base64" or "data_uri"; upload_format : "wav" or "flac"
        How the upload is written.
    chunk_seconds, overlap_seconds : float
        A clip longer than ``chunk_seconds`` (default 20) is sent as overlapping windows,
        each its own paid and cached call, joined with a crossfade over ``overlap_seconds``
        (default 2) whose weights sum to one. See the README's "Long recordings".
    max_seconds : float, optional
        Refuse clips longer than this before sending (default: no limit).
    transport : "auto", "sync" or "queue"
        How requests travel. "queue" submits to the provider's asynchronous queue
        (``/v2/<model>``), polls and fetches: a poll or fetch that fails is retried without
        paying again, and every paid request is journalled next to the cache until its
        answer is cached, so a run killed mid-way collects its in-flight answers on the next
        run. "sync" is the blocking v1 call. "auto" (default) uses the queue and falls back
        to "sync" for good if the endpoint does not serve it (404/405, not billed).
    queue_retention : float
        Seconds a journalled request is worth collecting (the provider keeps results about
        an hour; default 3600).
    coordinator : optional
        Where the limits shared by every sender of this account live: None (default) is a
        small file beside the cache, shared by the processes of one machine;
        :class:`samaudio_data.ray.Coordinator` is a Ray actor shared by a whole cluster.

    Example
    -------
    >>> client = Client("my-key", endpoint="http://127.0.0.1:8000/v1/sam-audio-large")
    >>> client
    Client(endpoint='http://127.0.0.1:8000/v1/sam-audio-large', api_key='***')
    """

    def __init__(self, api_key: Optional[str] = None, *, endpoint: Optional[str] = None,
                 timeout: Union[float, Tuple[float, float]] = (10.0, 300.0),
                 max_retries: int = 6, max_concurrency: int = 16,
                 requests_per_minute: Union[float, str, None] = None,
                 rate_window: float = 60.0, retry_after_max: float = 60.0,
                 backoff_base: float = 1.0, backoff_max: float = 60.0,
                 price_per_call: Optional[float] = None,
                 cache_dir: Union[str, os.PathLike, None, bool] = None,
                 cache_namespace: Optional[str] = None,
                 chunk_seconds: float = audio.DEFAULT_CHUNK_SECONDS,
                 overlap_seconds: float = audio.DEFAULT_OVERLAP_SECONDS,
                 max_seconds: Optional[float] = None, output_format: str = "wav",
                 reranking_candidates: int = 1, channels: str = "mix",
                 audio_encoding: str = "base64", upload_format: str = "wav",
                 progress: bool = True, transport: str = "auto",
                 queue_retention: float = 3600.0, coordinator: Any = None) -> None:
        self._api_key = settings.api_key(api_key)
        self.endpoint = settings.endpoint(endpoint)
        self.timeout = timeout
        self.max_retries = settings.positive("max_retries", max_retries, integer=True, zero=True)
        self.max_concurrency = settings.positive("max_concurrency", max_concurrency,
                                                 integer=True)
        self.requests_per_minute = settings.requests_per_minute(requests_per_minute)
        self.rate_window = settings.positive("rate_window", rate_window)
        self.retry_after_max = settings.positive("retry_after_max", retry_after_max, zero=True)
        self.backoff_base = settings.positive("backoff_base", backoff_base, zero=True)
        self.backoff_max = settings.positive("backoff_max", backoff_max, zero=True)
        self.price_per_call = settings.price_per_call(price_per_call)
        self.max_seconds = None if max_seconds is None else settings.positive("max_seconds",
                                                                              max_seconds)
        self.chunk_seconds, self.overlap_seconds = audio.check_chunk_settings(
            chunk_seconds, overlap_seconds)
        self.defaults = settings.check_params(output_format=output_format,
                                              reranking_candidates=reranking_candidates)
        self.channels = settings.check_channels(channels)
        if audio_encoding not in ("base64", "data_uri"):
            raise errors.InvalidRequestError(
                f"audio_encoding must be 'base64' or 'data_uri', got {audio_encoding!r}.")
        self.audio_encoding = audio_encoding
        if upload_format not in ("wav", "flac"):
            raise errors.InvalidRequestError(
                f"upload_format must be 'wav' or 'flac', got {upload_format!r}.")
        self.upload_format = upload_format
        self.progress = progress
        self.transport = check_transport(transport)
        self.queue_retention = settings.positive("queue_retention", queue_retention)
        self.cache_namespace = cache_namespace
        self.cache_dir: Union[Path, str, None] = settings.cache_location(cache_dir)
        self.coordinator = coordinator
        self._setup()

    def _setup(self) -> None:
        """Create what is not configuration: transport, cache, limits, usage, pool."""
        self._transport = Transport(self.endpoint, self._api_key, timeout=self.timeout,
                                    pool_size=max(10, 2 * self.max_concurrency))
        cache = ResultCache(self.cache_dir) if self.cache_dir else None
        # the journal and the limits' file stay on this machine's disk
        local = (self.cache_dir if isinstance(self.cache_dir, Path)
                 else settings.default_cache_dir() if self.cache_dir else None)
        tag = hashlib.sha256(self.identity.encode()).hexdigest()[:16]
        # without a cache directory: a per-user private one (0700), never a shared /tmp path
        root = local or private_dir("samaudio_data-limits")
        self.limits = SharedLimits(root / "limits" / tag, max_concurrency=self.max_concurrency,
                                   requests_per_minute=self.requests_per_minute,
                                   rate_window=self.rate_window,
                                   retry_after_max=self.retry_after_max,
                                   coordinator=self.coordinator, account=self._transport.account)
        self._usage = Usage(rate_limit=self.requests_per_minute)
        policy = RetryPolicy(max_retries=self.max_retries, backoff_base=self.backoff_base,
                             backoff_max=self.backoff_max, retry_after_max=self.retry_after_max,
                             rate_window=self.rate_window)
        journal = (Journal(local / "journal", retention=self.queue_retention)
                   if local else None)
        exchange = QueueExchange(self._transport, mode=self.transport, journal=journal,
                                 state_dir=self.limits.directory)
        self._caller = Caller(self._transport, cache=cache, limits=self.limits, policy=policy,
                              usage=self._usage, price_per_call=self.price_per_call,
                              identity=self.identity, audio_encoding=self.audio_encoding,
                              upload_format=self.upload_format, exchange=exchange)
        self._pool: Optional[cf.ThreadPoolExecutor] = None
        self._chunk_pool: Optional[cf.ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()
        self._op = threading.local()

    # --- configuration, pickling, repr ---------------------------------------------------

    _CONFIG = ("endpoint", "timeout", "max_retries", "max_concurrency", "requests_per_minute",
               "rate_window", "retry_after_max", "backoff_base", "backoff_max",
               "price_per_call", "cache_dir", "cache_namespace", "chunk_seconds",
               "overlap_seconds", "max_seconds", "defaults",
               "channels", "audio_encoding", "upload_format", "progress", "transport",
               "queue_retention")

    @property
    def identity(self) -> str:
        """The endpoint's identity in cache keys and fingerprints: ``cache_namespace`` if
        given, else the endpoint URL (never the key)."""
        return self.cache_namespace or self.endpoint

    @property
    def has_key(self) -> bool:
        """Whether this client has an API key (it is never shown).

        >>> Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=False).has_key
        True
        """
        return self._transport.has_key

    @property
    def usage(self) -> Usage:
        """What this client did so far: calls billed, cached, failed, retried, rate-limited,
        dollars, and the request rate achieved (every process on this endpoint) against the
        account's limit.

        >>> Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=False).usage.billed
        0
        """
        snap = self._usage.snapshot()
        shared = self.limits.snapshot()
        snap.achieved_rate = shared["achieved_per_minute"]
        stated = self.requests_per_minute and self.requests_per_minute * 60.0 / self.rate_window
        snap.rate_limit = stated or shared["rate_per_minute"]  # per minute, as achieved_rate
        return snap

    @property
    def output_format(self) -> str:
        """The default ``output_format`` of calls ("wav" or "mp3")."""
        return self.defaults["output_format"]

    @property
    def reranking_candidates(self) -> int:
        """The default ``reranking_candidates`` of calls (1..8)."""
        return self.defaults["reranking_candidates"]

    @property
    def cache(self) -> Optional[ResultCache]:
        """The result cache (None when ``cache_dir=False``)."""
        return self._caller.cache

    def redact(self, text: Any) -> str:
        """``str(text)`` with this client's API key replaced by ``***``.

        >>> Client("sk-secret", endpoint="http://127.0.0.1:1/m").redact("key=sk-secret")
        'key=***'
        """
        return self._transport.redact(text)

    def __getstate__(self) -> dict:
        # configuration only: no key, no connections. A dataset fingerprint hashes this.
        if self._api_key:
            _KEYRING[self.endpoint] = self._api_key
        state = {k: getattr(self, k) for k in self._CONFIG}
        state["cache_dir"] = str(self.cache_dir) if self.cache_dir else None
        if self.coordinator is not None:  # (absent otherwise: fingerprints stay as they were)
            state["coordinator"] = self.coordinator
        state["version"] = __version__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop("version", None)
        state.setdefault("transport", "auto")  # pickled by a version without the queue
        state.setdefault("queue_retention", 3600.0)
        state.setdefault("coordinator", None)
        cache_dir = state.pop("cache_dir")
        self.__dict__.update(state)
        self.cache_dir = settings.cache_location(cache_dir) if cache_dir else None
        self._api_key = _KEYRING.get(self.endpoint) or settings.api_key(None)
        self._setup()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"Client(endpoint={self.endpoint!r}, api_key={key})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and the thread pool."""
        self._transport.close()
        with self._pool_lock:
            pools, self._pool, self._chunk_pool = (self._pool, self._chunk_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)

    # --- single clips ----------------------------------------------------------------------

    def isolate(self, y: np.ndarray, sr: int, description: str, **params) -> np.ndarray:
        """Isolate ``description`` in ``y``; float32 at ``sr`` with ``y``'s length.

        ``params``: ``output_format``, ``reranking_candidates``, ``channels``.

        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False) as client:
        ...     half = client.isolate(np.full(8000, 0.2), 8000, "half")
        >>> round(float(half[4000]), 3)
        0.1
        """
        return self.separate(y, sr, description, **params).target

    def separate(self, y: np.ndarray, sr: int, description: str, *,
                 budget: Optional[Budget] = None, **params) -> Separation:
        """Isolate ``description``; return target, residual (input minus target) and cost.

        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False) as client:
        ...     y = 0.2 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
        ...     res = client.separate(y, 8000, "half")
        >>> res.target.shape == res.residual.shape
        True
        >>> np.allclose(res.residual[100:-100], y[100:-100] / 2, atol=1e-3)
        True
        """
        return self._run(self._prepare(y, sr, description, params), budget)

    # --- estimates and the account -------------------------------------------------------

    def estimate(self, ys: Sequence[np.ndarray], srs: Union[int, Sequence[int]],
                 description: str, **params) -> CostEstimate:
        """Count the calls a run would pay for and the cache hits; nothing is sent.

        >>> import tempfile
        >>> client = Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=tempfile.mkdtemp())
        >>> print(client.estimate([np.zeros(8000)] * 2, 8000, "speech"))
        2 calls to pay for, 0 already cached: about $0.12 at $0.062 per call
        """
        ys = list(ys)
        srs = list(srs) if isinstance(srs, (list, tuple, np.ndarray)) else [srs] * len(ys)
        calls = cached = 0
        invalid = []
        for i, (y, sr) in enumerate(zip(ys, srs)):
            try:
                job = self._prepare(y, sr, description, params)
            except errors.InvalidRequestError as exc:
                invalid.append((i, exc.message))
                continue
            paid, hits = self._caller.count(job)
            calls, cached = calls + paid, cached + hits
        return CostEstimate(calls=calls, cached=cached, price_per_call=self.price_per_call,
                            invalid=invalid, clips=len(ys))

    # --- internals -----------------------------------------------------------------------

    def _request(self, description, params) -> Tuple[str, Dict[str, Any], str]:
        """The validated description, endpoint parameters and channel mode of a call."""
        params = dict(params)
        channels = settings.check_channels(params.pop("channels", self.channels))
        merged = {**self.defaults, **settings.check_params(**params)}
        description = settings.check_description(description)
        if self._api_key and self._api_key in description:
            raise errors.InvalidRequestError(
                "the description contains this client's API key (was it pasted by mistake?); "
                "nothing was sent. Describe the sound instead, e.g. 'man speaking'.")
        return description, merged, channels

    def _prepare(self, y, sr, description, params) -> Job:
        description, merged, channels = self._request(description, params)
        return prepare(y, sr, description, merged,
                       channels=channels, upload_format=self.upload_format,
                       chunk_seconds=self.chunk_seconds, overlap_seconds=self.overlap_seconds,
                       max_seconds=self.max_seconds)

    def _run(self, job: Job, budget: Optional[Budget]) -> Separation:
        started = getattr(self._op, "started", None) or time.time()
        if len(job.pieces) == 1:
            return assemble(job, [self._caller.answer(job.pieces[0], job, started=started,
                                                      budget=budget)])
        # a long clip: its chunks run concurrently (under the shared limits) on a pool of
        # their own, so a clip's thread waiting on its chunks never starves them
        with self._pool_lock:
            if self._chunk_pool is None:
                self._chunk_pool = cf.ThreadPoolExecutor(max_workers=self.max_concurrency,
                                                         thread_name_prefix="samaudio-chunk")
            pool = self._chunk_pool
        answers = answer_all(pool, self._caller, job, started=started, budget=budget,
                             progress=self.progress)
        return assemble(job, answers)
