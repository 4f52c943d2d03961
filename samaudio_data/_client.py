"""The client: numpy audio in, the isolated sound out, paid for once.

:class:`Client` owns the HTTP connection pool, timeouts, retries, the shared limits
(:mod:`samaudio_data._limits`) and the result cache (:mod:`samaudio_data._cache`). Its three
calls are :meth:`Client.isolate` (the target as an array), :meth:`Client.separate` (target,
residual and what the call cost) and :meth:`Client.isolate_many` / :meth:`Client.separate_many`
(many clips concurrently, order kept).

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

import base64
import concurrent.futures as cf
import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import requests

from . import audio, errors
from ._version import __version__
from ._cache import ResultCache, request_key
from ._limits import SharedLimits
from ._responses import audio_bytes

log = logging.getLogger("samaudio_data")

DEFAULT_ENDPOINT = "https://api.segmind.com/v1/sam-audio-large"
DEFAULT_PRICE_PER_CALL = 0.062  # published figure; drifts, so it is a setting
OUTPUT_FORMATS = ("wav", "mp3")
CHANNEL_POLICIES = ("mix", "each")

# api keys of clients that were pickled (to num_proc workers), by endpoint: pickles never
# carry the key, so a dataset fingerprint never depends on it; forked workers find it here.
_KEYRING: Dict[str, str] = {}


def _default_cache_dir() -> Path:
    env = os.environ.get("SAMAUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "samaudio_data"


@dataclass
class Separation:
    """What one clip gave: the target, the residual and what it cost.

    ``target`` and ``residual`` have the input's sample rate and length: ``(n,)`` with the
    default channel policy, ``(channels, n)`` with ``channels="each"``.
    """

    target: np.ndarray
    residual: np.ndarray
    sr: int
    description: str
    cost: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    attempts: int = 0

    def __repr__(self) -> str:
        return (f"Separation(description={self.description!r}, shape={self.target.shape}, "
                f"sr={self.sr}, cost=${self.cost:.3f}, seconds={self.seconds:.2f}, "
                f"cached={self.cached})")


@dataclass
class Usage:
    """Running totals of a client's calls (aggregates only: memory stays flat).

    ``requests`` counts HTTP requests sent (retries included), ``billed`` the 200 answers,
    ``cached`` answers served from the cache, ``failed`` calls that ended in an error,
    ``seconds`` the time spent inside HTTP requests (not waiting for pace or back-off).
    """

    requests: int = 0
    billed: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    remaining_credits: Optional[float] = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _add(self, **delta: float) -> None:
        with self._lock:
            for k, v in delta.items():
                setattr(self, k, getattr(self, k) + v)

    def snapshot(self) -> "Usage":
        with self._lock:
            return Usage(self.requests, self.billed, self.cached, self.failed, self.retries,
                         self.cost, self.seconds, self.remaining_credits)

    def __str__(self) -> str:
        credits = ("" if self.remaining_credits is None
                   else f", {self.remaining_credits:.2f} credits left")
        return (f"{self.billed} billed calls (${self.cost:.2f}), {self.cached} from cache, "
                f"{self.failed} failed, {self.retries} retries, {self.seconds:.1f} s{credits}")


@dataclass
class CostEstimate:
    """What a run would cost: calls to pay for, cache hits, dollars. Nothing is sent."""

    calls: int
    cached: int
    price_per_call: float
    invalid: int = 0

    @property
    def cost(self) -> float:
        return self.calls * self.price_per_call

    def __str__(self) -> str:
        bad = f", {self.invalid} rows with missing or invalid audio" if self.invalid else ""
        return (f"{self.calls} calls to pay for, {self.cached} already cached{bad}: "
                f"about ${self.cost:.2f} at ${self.price_per_call:.3f} per call")


class Budget:
    """A spending cap shared by the calls that carry it (and, with ``limits``, by processes).

    >>> b = Budget(0.10)
    >>> b.reserve(0.06), b.reserve(0.06)
    (True, False)
    """

    def __init__(self, max_cost: float, *, limits: Optional[SharedLimits] = None,
                 ledger: str = "default") -> None:
        self.max_cost = float(max_cost)
        self._limits = limits
        self._ledger = ledger
        self._spent = 0.0
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        if self._limits is not None:
            return self._limits.ledger(self._ledger)
        return self._spent

    def reserve(self, amount: float) -> bool:
        """Reserve ``amount`` if it fits under the cap; False (nothing reserved) otherwise."""
        if self._limits is not None:
            return self._limits.spend(self._ledger, amount, self.max_cost)
        with self._lock:
            if self._spent + amount > self.max_cost + 1e-9:
                return False
            self._spent += amount
            return True

    def refund(self, amount: float) -> None:
        """Give back a reservation that was not billed."""
        if self._limits is not None:
            self._limits.spend(self._ledger, -amount, None)
            return
        with self._lock:
            self._spent -= amount


@dataclass
class _Job:
    """One clip, validated and encoded, ready to send (one upload per channel sent)."""

    uploads: List[audio.Upload]
    original: np.ndarray   # float64 (channels, n)
    sr: int
    description: str
    params: Dict[str, Any]
    each: bool


@dataclass
class _Answer:
    data: bytes
    fmt: str
    cost: float
    seconds: float
    cached: bool
    attempts: int


class Client:
    """A connection to the SAM Audio Large endpoint (or a local one following its contract).

    Parameters
    ----------
    api_key : str, optional
        Defaults to ``$SEGMIND_API_KEY``. Never logged, cached, pickled or shown in reprs.
    endpoint : str, optional
        Defaults to ``$SAMAUDIO_ENDPOINT``, else the provider's URL.
    timeout : float or (connect, read)
        Seconds. The model takes ~13 s warm and minutes from a cold start.
    max_retries : int
        Extra attempts after a 429, a 5xx, a dropped connection or a timeout (never after
        400/401/403/404/406).
    max_concurrency : int
        Requests in flight at once, shared by every client of this endpoint on the machine.
    requests_per_minute : float, optional
        Client-side pace under the plan's limit (about 5 free, 50 paid): at most this many
        requests in any ``rate_window`` seconds; shared likewise.
    rate_window : float
        The provider's rate-limit window in seconds (its minute); a 429 without
        ``Retry-After`` waits this long.
    price_per_call : float
        Dollars per billed call, for usage and estimates. ``$SAMAUDIO_PRICE_PER_CALL`` or 0.062.
    cache_dir : path or False
        Where paid answers are kept (``$SAMAUDIO_CACHE_DIR`` or ``~/.cache/samaudio_data``);
        False turns the cache off.
    max_seconds : float
        Longest clip accepted (checked before sending).
    output_format, reranking_candidates :
        Endpoint parameters; each call may override them.
    channels : "mix" or "each"
        Multichannel policy: "mix" averages channels (one call, mono result); "each" isolates
        every channel with its own call and returns ``(channels, n)``.
    audio_encoding : "base64" or "data_uri"
        How the upload is written in the ``audio`` field.
    upload_format : "wav" or "flac"
        Container of the upload; WAV is documented to work, FLAC is half the size.

    Example
    -------
    >>> client = Client("my-key", endpoint="http://127.0.0.1:8000/v1/sam-audio-large")
    >>> client
    Client(endpoint='http://127.0.0.1:8000/v1/sam-audio-large', api_key='***')
    """

    def __init__(self, api_key: Optional[str] = None, *, endpoint: Optional[str] = None,
                 timeout: Union[float, Tuple[float, float]] = (10.0, 300.0),
                 max_retries: int = 6, max_concurrency: int = 4,
                 requests_per_minute: Optional[float] = None, rate_window: float = 60.0,
                 backoff_base: float = 1.0, backoff_max: float = 60.0,
                 price_per_call: Optional[float] = None,
                 cache_dir: Union[str, os.PathLike, None, bool] = None,
                 max_seconds: float = 600.0, output_format: str = "wav",
                 reranking_candidates: int = 1, channels: str = "mix",
                 audio_encoding: str = "base64", upload_format: str = "wav",
                 progress: bool = True) -> None:
        self._api_key = api_key if api_key is not None else os.environ.get("SEGMIND_API_KEY")
        self.endpoint = endpoint or os.environ.get("SAMAUDIO_ENDPOINT") or DEFAULT_ENDPOINT
        if not self.endpoint.startswith(("http://", "https://")):
            raise errors.InvalidRequestError(
                f"endpoint must be an http(s) URL, got {self.endpoint!r}.")
        self.timeout = timeout
        self.max_retries = int(max_retries)
        if int(max_concurrency) < 1:
            raise errors.InvalidRequestError("max_concurrency must be at least 1.")
        self.max_concurrency = int(max_concurrency)
        self.requests_per_minute = requests_per_minute
        self.rate_window = float(rate_window)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        if price_per_call is None:
            price_per_call = float(os.environ.get("SAMAUDIO_PRICE_PER_CALL",
                                                  DEFAULT_PRICE_PER_CALL))
        self.price_per_call = float(price_per_call)
        self.max_seconds = float(max_seconds)
        self.defaults = _check_params(output_format=output_format,
                                      reranking_candidates=reranking_candidates)
        if channels not in CHANNEL_POLICIES:
            raise errors.InvalidRequestError(
                f"channels must be one of {CHANNEL_POLICIES}, got {channels!r}.")
        self.channels = channels
        if audio_encoding not in ("base64", "data_uri"):
            raise errors.InvalidRequestError(
                f"audio_encoding must be 'base64' or 'data_uri', got {audio_encoding!r}.")
        self.audio_encoding = audio_encoding
        if upload_format not in ("wav", "flac"):
            raise errors.InvalidRequestError(
                f"upload_format must be 'wav' or 'flac', got {upload_format!r}.")
        self.upload_format = upload_format
        self.progress = progress
        if cache_dir is None or cache_dir is True:
            cache_dir = _default_cache_dir()
        self.cache_dir: Optional[Path] = Path(cache_dir).expanduser() if cache_dir else None
        self._setup()

    def _setup(self) -> None:
        """Create what is not configuration: cache, limits, session, usage."""
        self.cache = ResultCache(self.cache_dir) if self.cache_dir else None
        tag = hashlib.sha256(self.endpoint.encode()).hexdigest()[:16]
        root = (self.cache_dir if self.cache_dir
                else Path(tempfile.gettempdir()) / f"samaudio_data-{os.getuid()}")
        self.limits = SharedLimits(root / "limits" / tag, max_concurrency=self.max_concurrency,
                                   requests_per_minute=self.requests_per_minute,
                                   rate_window=self.rate_window)
        self.usage = Usage()
        self._session: Optional[requests.Session] = None
        self._session_lock = threading.Lock()

    # --- configuration, pickling, repr ---------------------------------------------------

    _CONFIG = ("endpoint", "timeout", "max_retries", "max_concurrency", "requests_per_minute",
               "rate_window", "backoff_base", "backoff_max", "price_per_call", "cache_dir",
               "max_seconds", "defaults", "channels", "audio_encoding", "upload_format",
               "progress")

    def __getstate__(self) -> dict:
        # configuration only: no key, no connections. A dataset fingerprint hashes this.
        if self._api_key:
            _KEYRING[self.endpoint] = self._api_key
        state = {k: getattr(self, k) for k in self._CONFIG}
        state["cache_dir"] = str(self.cache_dir) if self.cache_dir else None
        state["version"] = __version__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop("version", None)
        cache_dir = state.pop("cache_dir")
        self.__dict__.update(state)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._api_key = _KEYRING.get(self.endpoint) or os.environ.get("SEGMIND_API_KEY")
        self._setup()

    @property
    def output_format(self) -> str:
        """The default ``output_format`` of calls ("wav" or "mp3")."""
        return self.defaults["output_format"]

    @property
    def reranking_candidates(self) -> int:
        """The default ``reranking_candidates`` of calls (1..8)."""
        return self.defaults["reranking_candidates"]

    def redact(self, text: Any) -> str:
        """``str(text)`` with this client's API key replaced by ``***``.

        >>> Client("sk-secret", endpoint="http://127.0.0.1:1/m").redact("key=sk-secret")
        'key=***'
        """
        return self._redact(text)

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"Client(endpoint={self.endpoint!r}, api_key={key})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    @property
    def session(self) -> requests.Session:
        with self._session_lock:
            if self._session is None:
                s = requests.Session()
                adapter = requests.adapters.HTTPAdapter(
                    pool_connections=4, pool_maxsize=max(10, self.max_concurrency * 2))
                s.mount("http://", adapter)
                s.mount("https://", adapter)
                s.headers["User-Agent"] = f"samaudio_data/{__version__}"
                self._session = s
            return self._session

    # --- public calls --------------------------------------------------------------------

    def isolate(self, y: np.ndarray, sr: int, description: str, **params) -> np.ndarray:
        """Isolate ``description`` in ``y``; float32 at ``sr`` with ``y``'s length.

        ``params``: ``output_format``, ``reranking_candidates``, ``channels``.

        >>> speech = client.isolate(y, 44100, "a man speaking")  # doctest: +SKIP
        """
        return self.separate(y, sr, description, **params).target

    def separate(self, y: np.ndarray, sr: int, description: str, *,
                 budget: Optional[Budget] = None, **params) -> Separation:
        """Isolate ``description``; return target, residual (input minus target) and cost.

        >>> res = client.separate(y, 44100, "music", reranking_candidates=4)  # doctest: +SKIP
        >>> res.target.shape == res.residual.shape                            # doctest: +SKIP
        True
        """
        job = self._prepare(y, sr, description, params)
        return self._run(job, started=time.time(), budget=budget)

    def isolate_many(self, ys: Sequence[np.ndarray], srs: Union[int, Sequence[int]],
                     description: str, **kwargs) -> List[Any]:
        """Isolate ``description`` in many clips concurrently; results in input order.

        ``srs`` is one rate for all or one per clip. Takes the same keywords as
        :meth:`separate_many`.

        >>> outs = client.isolate_many([y1, y2], [16000, 44100], "speech")  # doctest: +SKIP
        """
        seps = self.separate_many(ys, srs, description, **kwargs)
        return [s.target if isinstance(s, Separation) else s for s in seps]

    def separate_many(self, ys: Sequence[np.ndarray], srs: Union[int, Sequence[int]],
                      description: str, *, progress: Optional[bool] = None,
                      return_exceptions: bool = False, budget: Optional[Budget] = None,
                      **params) -> List[Any]:
        """Separate many clips, up to ``max_concurrency`` at once, order kept.

        Every clip is validated before the first request. With ``return_exceptions=True``
        a failed clip's slot holds its exception; otherwise the first error is raised once
        the requests already in flight finish (their answers are cached). A 401, 403 or 406
        stops everything at once and raises with what was done and what it cost.

        >>> res = client.separate_many(clips, 16000, "dog barking")  # doctest: +SKIP
        """
        ys = list(ys)
        srs = list(srs) if isinstance(srs, (list, tuple, np.ndarray)) else [srs] * len(ys)
        if len(srs) != len(ys):
            raise errors.InvalidRequestError(
                f"got {len(ys)} clips but {len(srs)} sample rates; pass one rate or one per clip.")
        jobs = []
        for i, (y, sr) in enumerate(zip(ys, srs)):
            try:
                jobs.append(self._prepare(y, sr, description, params))
            except errors.InvalidRequestError as exc:
                if not return_exceptions:
                    raise type(exc)(f"clip {i}: {exc.message}") from None
                jobs.append(exc)
        return self.run_jobs(jobs, progress=progress, return_exceptions=return_exceptions,
                             budget=budget)

    def run_jobs(self, jobs: List[Any], *, progress: Optional[bool] = None,
                 return_exceptions: bool = False, budget: Optional[Budget] = None,
                 desc: str = "isolating") -> List[Any]:
        """Run prepared jobs (see :meth:`prepare`) concurrently; results in order.

        Items that are exceptions (clips that failed validation) are passed through.

        >>> (res,) = client.run_jobs([client.prepare(y, sr, "speech")])  # doctest: +SKIP
        """
        return self.map_concurrently(
            jobs, lambda job, started: self.run_job(job, started=started, budget=budget),
            progress=progress, return_exceptions=return_exceptions, desc=desc)

    def run_job(self, job: _Job, *, started: Optional[float] = None,
                budget: Optional[Budget] = None) -> Separation:
        """Run one prepared job: the answer from the cache, else paid for once and cached.

        ``started`` is when the operation it belongs to began: a fatal error recorded after
        it (by any thread or process) stops this job before it sends anything.

        >>> res = client.run_job(client.prepare(y, sr, "speech"))  # doctest: +SKIP
        """
        return self._run(job, started=time.time() if started is None else started,
                         budget=budget)

    def map_concurrently(self, items: List[Any], work, *, progress: Optional[bool] = None,
                         return_exceptions: bool = False, desc: str = "isolating") -> List[Any]:
        """Apply ``work(item, started)`` to every item in up to ``max_concurrency`` threads.

        Results keep the items' order; items that are exceptions are passed through. A 401,
        403, 406 or exhausted budget stops everything and raises with what was done and what
        it cost, once the requests in flight have finished (their answers are cached).
        Another error is returned in its slot with ``return_exceptions=True``, otherwise raised
        after the requests in flight finish.

        >>> client.map_concurrently(jobs, lambda j, t: client.run_job(j, started=t))  # doctest: +SKIP
        """
        started = time.time()
        results: List[Any] = list(items)
        todo = [i for i, item in enumerate(items) if not isinstance(item, BaseException)]
        show = self.progress if progress is None else progress
        bar = None
        if show and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=desc, unit="clip", leave=False)
        before = self.usage.snapshot()
        first_error: Optional[BaseException] = None
        stop: Optional[errors.SamAudioError] = None
        pool = cf.ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(todo))))
        try:
            futures = {pool.submit(work, items[i], started): i for i in todo}
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except (errors.FatalAPIError, errors.BudgetExceededError) as exc:
                    for f in futures:
                        f.cancel()
                    stop = exc
                    break
                except errors.SamAudioError as exc:
                    results[i] = exc
                    if not return_exceptions and first_error is None:
                        first_error = exc
                        for f in futures:
                            f.cancel()
                except cf.CancelledError:
                    pass
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"${self.usage.cost:.2f}", refresh=False)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # requests in flight finish, cached
            if bar is not None:
                bar.close()
        if stop is not None:  # summarised only now, so what was in flight is counted
            raise self._summarise(stop, before) from None
        if first_error is not None:
            raise first_error
        return results

    def estimate(self, ys: Sequence[np.ndarray], srs: Union[int, Sequence[int]],
                 description: str, **params) -> CostEstimate:
        """Count the calls a run would pay for and the cache hits; nothing is sent.

        >>> print(client.estimate(clips, 16000, "speech"))  # doctest: +SKIP
        12 calls to pay for, 4 already cached: about $0.74 at $0.062 per call
        """
        ys = list(ys)
        srs = list(srs) if isinstance(srs, (list, tuple, np.ndarray)) else [srs] * len(ys)
        calls = cached = 0
        for y, sr in zip(ys, srs):
            for hit in self.cached_status(self._prepare(y, sr, description, params)):
                cached += hit
                calls += not hit
        return CostEstimate(calls=calls, cached=cached, price_per_call=self.price_per_call)

    def credits(self) -> float:
        """The account's remaining credits (``GET /v1/get-user-credits``).

        >>> client.credits()  # doctest: +SKIP
        12.5
        """
        url = self.endpoint.rsplit("/", 1)[0] + "/get-user-credits"
        try:
            resp = self.session.get(url, headers=self._headers(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise errors.APIConnectionError(f"could not reach {url}: {self._redact(exc)}") from None
        if resp.status_code != 200:
            raise self._status_error(resp)
        try:
            doc = resp.json()
            return float(doc.get("credits", 0.0)) + float(doc.get("free-credits", 0.0))
        except (ValueError, TypeError, AttributeError):
            raise errors.ResponseDecodeError(
                f"credits answer is not the expected JSON: {audio.excerpt(resp.content)}"
            ) from None

    # --- preparing -----------------------------------------------------------------------

    def prepare(self, y: np.ndarray, sr: int, description: str, **params) -> _Job:
        """Validate and encode one clip without sending it (raises typed errors)."""
        return self._prepare(y, sr, description, params)

    def _prepare(self, y, sr, description, params) -> _Job:
        params = dict(params)
        each = params.pop("channels", self.channels)
        if each not in CHANNEL_POLICIES:
            raise errors.InvalidRequestError(
                f"channels must be one of {CHANNEL_POLICIES}, got {each!r}.")
        merged = {**self.defaults, **_check_params(**params)}
        description = _check_description(description)
        y2d = audio.check_audio(y, sr, max_seconds=self.max_seconds)
        sr = int(sr)
        chans = list(y2d) if (each == "each" and y2d.shape[0] > 1) else [audio.mix_to_mono(y2d)]
        uploads = [audio.make_upload(c, sr, fmt=self.upload_format) for c in chans]
        return _Job(uploads=uploads, original=y2d, sr=sr, description=description,
                    params=merged, each=each == "each" and y2d.shape[0] > 1)

    def _key(self, upload: audio.Upload, job: _Job) -> str:
        params = dict(job.params, upload_format=self.upload_format)
        return request_key(upload.data, job.description, params, self.endpoint)

    def cached_status(self, job: _Job) -> List[bool]:
        """For each upload of a prepared job, whether its answer is already cached."""
        return [self.cache is not None and self._key(u, job) in self.cache for u in job.uploads]

    # --- running -------------------------------------------------------------------------

    def _run(self, job: _Job, *, started: float, budget: Optional[Budget]) -> Separation:
        targets, cost, seconds, cached, attempts = [], 0.0, 0.0, True, 0
        for up in job.uploads:
            ans = self._answer(up, job, started=started, budget=budget)
            y, asr = audio.decode_audio(ans.data)
            targets.append(audio.fit_answer(
                y, asr, sr=job.sr, n=job.original.shape[-1], gain=up.gain,
                reference=up.mono, realign=ans.fmt == "mp3"))
            cost += ans.cost
            seconds += ans.seconds
            cached &= ans.cached
            attempts += ans.attempts
        if job.each:
            target = np.stack(targets)
            residual = (job.original - target).astype(np.float32)
        else:
            target = targets[0]
            residual = (job.uploads[0].mono - target).astype(np.float32)
        return Separation(target=target, residual=residual, sr=job.sr,
                          description=job.description, cost=cost, seconds=seconds,
                          cached=cached, attempts=attempts)

    def _answer(self, up: audio.Upload, job: _Job, *, started: float,
                budget: Optional[Budget]) -> _Answer:
        """The answer for one upload: from the cache, else paid for once and cached."""
        key = self._key(up, job)
        if self.cache is None:
            return self._request(up, job, started=started, budget=budget)
        hit = self.cache.get(key)
        if hit is None:
            with self.cache.lock(key):  # a concurrent asker of the same clip waits, then hits
                hit = self.cache.get(key)
                if hit is None:
                    ans = self._request(up, job, started=started, budget=budget)
                    self.cache.put(key, ans.data, {
                        "format": ans.fmt, "cost": ans.cost, "seconds": ans.seconds,
                        "description": job.description, "params": job.params,
                        "created": time.time(), "version": __version__})
                    return ans
        self.usage._add(cached=1)
        return _Answer(data=hit.data, fmt=hit.meta.get("format") or audio.sniff_format(hit.data),
                       cost=0.0, seconds=0.0, cached=True, attempts=0)

    def _request(self, up: audio.Upload, job: _Job, *, started: float,
                 budget: Optional[Budget]) -> _Answer:
        """Send one upload, with retries; bill the budget only for what is billed."""
        if not self._api_key:
            raise errors.AuthenticationError(
                "no API key: set SEGMIND_API_KEY or pass api_key= to Client. Nothing was sent.")
        if budget is not None and not budget.reserve(self.price_per_call):
            raise errors.BudgetExceededError(
                f"max_cost ${budget.max_cost:.2f} reached (${budget.spent:.2f} spent); one more "
                f"call (${self.price_per_call:.3f}) would exceed it. Nothing more was sent; raise "
                "max_cost to continue (paid results are cached).")
        b64 = base64.b64encode(up.data).decode("ascii")
        mime = "audio/flac" if self.upload_format == "flac" else "audio/wav"
        body = {"audio": f"data:{mime};base64,{b64}" if self.audio_encoding == "data_uri" else b64,
                "description": job.description, **job.params}
        spent = [0.0]  # seconds inside HTTP requests, over all attempts
        try:
            data, fmt, attempts = self._post_with_retries(body, started, spent)
        except BaseException:
            if budget is not None:
                budget.refund(self.price_per_call)
            self.usage._add(failed=1, seconds=spent[0])
            raise
        seconds = spent[0]
        self.usage._add(billed=1, cost=self.price_per_call, seconds=seconds)
        return _Answer(data=data, fmt=fmt, cost=self.price_per_call, seconds=seconds,
                       cached=False, attempts=attempts)

    def _post_with_retries(self, body: dict, started: float,
                           spent: List[float]) -> Tuple[bytes, str, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return (*self._post_once(body, started, spent), attempt)
            except errors.RetryableError as exc:
                if attempt > self.max_retries:
                    raise
                if not isinstance(exc, errors.RateLimitError):  # 429: back_off already shared
                    wait = exc.retry_after if exc.retry_after is not None else min(
                        self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                    wait *= random.uniform(0.5, 1.0) if exc.retry_after is None else 1.0
                    log.warning("%s; retry %d of %d in %.1f s", exc, attempt, self.max_retries,
                                wait)
                    time.sleep(wait)
                self.usage._add(retries=1)

    def _post_once(self, body: dict, started: float, spent: List[float]) -> Tuple[bytes, str]:
        with self.limits.slot():
            self.limits.wait_turn()
            halted = self.limits.halted_since(started)
            if halted:
                err = errors.error_for_status(halted["status"] or 0, halted["message"])
                raise type(err)(f"stopped: another request got {halted['kind']} "
                                f"({halted['message']}); nothing more was sent.",
                                status_code=halted["status"], hint=err.hint)
            self.usage._add(requests=1)
            t0 = time.monotonic()
            try:
                resp = self.session.post(self.endpoint, json=body, headers=self._headers(),
                                         timeout=self.timeout)
                content = resp.content  # a truncated body raises here
            except requests.Timeout as exc:
                raise errors.APITimeoutError(
                    f"no answer within the timeout ({self.timeout}): {self._redact(exc)}",
                    hint="Raise timeout= for long clips or cold starts.") from None
            except requests.RequestException as exc:
                raise errors.APIConnectionError(
                    f"connection failed: {self._redact(exc)}") from None
            finally:
                spent[0] += time.monotonic() - t0
            if resp.status_code != 200:
                # tell every sender before giving up the slot, so none slips in meanwhile
                err = self._status_error(resp)
                if isinstance(err, errors.FatalAPIError):
                    self.limits.halt(err.status_code, type(err).__name__, err.message)
                elif isinstance(err, errors.RateLimitError):
                    wait = err.retry_after if err.retry_after is not None else self.rate_window
                    self.limits.back_off(wait + random.uniform(0, 0.1 * max(wait, 1.0)))
                    log.warning("rate limited (429); every sender waits %.1f s", wait)
                raise err
        remaining = resp.headers.get("x-remaining-credits")
        if remaining is not None:
            try:
                self.usage.remaining_credits = float(remaining)
            except ValueError:
                pass
        return audio_bytes(content, fetch=self._download)

    def _download(self, url: str) -> bytes:
        # the key goes only to the endpoint, never to a result URL on another host
        try:
            resp = self.session.get(url, timeout=self.timeout)
            data = resp.content
        except requests.RequestException as exc:
            raise errors.APIConnectionError(f"could not download the result: {exc}") from None
        if resp.status_code != 200:
            raise errors.ServerError(f"downloading the result from {url} gave "
                                     f"HTTP {resp.status_code}", status_code=resp.status_code)
        return data

    def _headers(self) -> Dict[str, str]:
        return {"x-api-key": self._api_key or "", "Content-Type": "application/json"}

    def _redact(self, value: Any) -> str:
        text = str(value)
        return text.replace(self._api_key, "***") if self._api_key else text

    def _status_error(self, resp: requests.Response) -> errors.SamAudioError:
        message = _server_message(resp)
        return errors.error_for_status(resp.status_code, self._redact(message),
                                       _retry_after(resp.headers.get("Retry-After")))

    def _summarise(self, exc: errors.SamAudioError, before: Usage) -> errors.SamAudioError:
        now = self.usage.snapshot()
        done = now.billed - before.billed
        cost = now.cost - before.cost
        hits = now.cached - before.cached
        cache = (f" Paid results are cached in {self.cache_dir}; running the same call again "
                 "pays only for the rest." if self.cache_dir else "")
        return type(exc)(f"{exc.message} Stopped every request: {done} calls paid (${cost:.2f}) "
                         f"and {hits} cache hits before the stop.{cache}",
                         status_code=exc.status_code, hint=exc.hint)


# --- helpers -------------------------------------------------------------------------------

def _check_description(description) -> str:
    if not isinstance(description, str) or not description.strip():
        raise errors.InvalidRequestError(
            f"description must be a non-empty string such as 'man speaking', got {description!r}.")
    if len(description) > 1000:
        raise errors.InvalidRequestError(
            f"description is {len(description)} characters; keep it short ('dog barking').")
    return description.strip()


def _check_params(**params) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, value in params.items():
        if name == "output_format":
            if value not in OUTPUT_FORMATS:
                raise errors.InvalidRequestError(
                    f"output_format must be 'wav' or 'mp3', got {value!r}.")
        elif name == "reranking_candidates":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or not 1 <= int(value) <= 8:
                raise errors.InvalidRequestError(
                    f"reranking_candidates must be an integer from 1 to 8, got {value!r}.")
            value = int(value)
        else:
            raise errors.InvalidRequestError(
                f"unknown parameter {name!r}; known: output_format, reranking_candidates, "
                "channels.")
        out[name] = value
    return out


def _server_message(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for k in ("error", "message", "detail"):
            if doc.get(k):
                return str(doc[k])
    text = resp.text.strip()
    if text.lower().startswith(("<!doctype", "<html")):
        return f"HTTP {resp.status_code} {resp.reason} (an HTML error page)"
    return text[:300] or f"HTTP {resp.status_code} {resp.reason}"


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
