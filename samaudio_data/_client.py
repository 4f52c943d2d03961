"""The client: numpy audio in, the isolated sound out, paid for once.

:class:`Client` is a facade. It holds its settings (:class:`~samaudio_data._options.Options`,
frozen) and the parts it owns (:class:`~samaudio_data._parts.Parts`: the HTTP layer, the
answer pipeline with cache, retries, validation and accounting, the shared limits, the
usage and one thread pool), and hands those parts to the operations: many clips
(:mod:`._many`), long files (:mod:`._longfile`), the account (:mod:`._account`).

"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _account as account
from . import _longfile as longfile
from . import _many as many
from . import _settings as settings
from ._answers.cache import ResultCache
from ._estimate import CostEstimate
from ._models import Budget, Separation, Usage
from ._options import (
    GROUPS,
    UNSET,
    Chunking,
    Options,
    RateLimits,
    ReadOnlySettings,
    Retries,
    Upload,
)
from ._parts import Parts, build
from ._state.limits import SharedLimits
from ._version import __version__

# api keys of clients that were pickled (to num_proc workers), by endpoint: pickles never
# carry the key, so a dataset fingerprint never depends on it; forked workers find it here.
_KEYRING: dict[str, str] = {}

PathLike = Union[str, "os.PathLike[str]"]


def _documented_by(operation: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Give a facade method the docstring (and example) of the operation it hands over to."""

    def attach(method: Callable) -> Callable:
        method.__doc__ = operation.__doc__
        return method

    return attach


class Client(ReadOnlySettings):
    """A connection to the SAM Audio Large endpoint (or a local one following its contract).

    Parameters (all keyword-only but ``api_key``; the README's "Settings" says more)
    ----------
    api_key : ``$SEGMIND_API_KEY`` by default; never logged, cached, pickled or shown.
    endpoint : ``$SAMAUDIO_ENDPOINT``, else the provider's URL.
    timeout : seconds, or ``(connect, read)``; the read timeout is also one attempt's deadline.
    retries : :class:`~samaudio_data.Retries` (or its keywords ``max_retries``,
        ``backoff_base``, ``backoff_max``, ``retry_after_max``).
    rate_limits : :class:`~samaudio_data.RateLimits` (or ``requests_per_minute``,
        ``max_concurrency``, ``rate_window``).
    chunking : :class:`~samaudio_data.Chunking` (or ``chunk_seconds``, ``overlap_seconds``,
        ``max_seconds``).
    upload : :class:`~samaudio_data.Upload` (or ``upload_format``, ``audio_encoding``).
    price_per_call : dollars per billed call (``$SAMAUDIO_PRICE_PER_CALL``).
    cache_dir, cache_namespace : where paid answers are kept (a directory, or an fsspec URL
        such as ``s3://bucket/prefix`` shared by a cluster; False: nowhere) and the
        endpoint's identity in cache keys (default: its URL).
    output_format, reranking_candidates, channels : the defaults of every call.
    transport : how requests travel: "queue" (the provider's queue, journalled so that a
        killed run collects what it paid for), "sync" (the blocking call) or "auto" (the
        queue, else sync for good). ``queue_retention``: seconds a journalled request is
        worth collecting.
    progress : show progress bars.
    coordinator : where the limits shared by every sender of the account live: None, a file
        on this machine; a :class:`samaudio_data.ray.Coordinator`, a Ray actor (a cluster).

    Settings are read-only; :meth:`with_options` makes a modified copy.

    >>> client = Client("my-key", endpoint="http://127.0.0.1:8000/v1/sam-audio-large")
    >>> client
    Client(endpoint='http://127.0.0.1:8000/v1/sam-audio-large', api_key='***')
    >>> client.with_options(max_retries=2).retries.max_retries
    2
    """

    _api_key: str | None
    _parts: Parts

    def __init__(
        self,
        api_key: str | None = None,
        *,
        endpoint: str | None = None,
        timeout: float | tuple[float, float] = (10.0, 300.0),
        max_retries: int = UNSET,
        max_concurrency: int = UNSET,
        requests_per_minute: float | str | None = UNSET,
        rate_window: float = UNSET,
        retry_after_max: float = UNSET,
        backoff_base: float = UNSET,
        backoff_max: float = UNSET,
        price_per_call: float | None = None,
        cache_dir: str | os.PathLike | None | bool = None,
        cache_namespace: str | None = None,
        chunk_seconds: float = UNSET,
        overlap_seconds: float = UNSET,
        max_seconds: float | None = UNSET,
        output_format: str = "wav",
        reranking_candidates: int = 1,
        channels: str = "mix",
        audio_encoding: str = UNSET,
        upload_format: str = UNSET,
        progress: bool = True,
        transport: str = "auto",
        queue_retention: float = 3600.0,
        coordinator: Any = None,
        retries: Retries | None = None,
        rate_limits: RateLimits | None = None,
        chunking: Chunking | None = None,
        upload: Upload | None = None,
    ) -> None:
        given = {
            k: v
            for k, v in locals().items()
            if k not in ("self", "api_key") and v is not UNSET and not (k in GROUPS and v is None)
        }
        self._start(Options.build(**given), settings.api_key(api_key))

    def _start(self, options: Options, api_key: str | None, like: Parts | None = None) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_api_key", api_key)
        object.__setattr__(self, "_parts", build(options, api_key, like=like))

    def with_options(self, *, api_key: str | None = None, **changes: Any) -> Client:
        """A copy of this client with some settings changed (the keywords of
        :class:`Client`), sharing what they leave unchanged: the connection pool, the shared
        limits and the usage (with the same key).

        >>> base = Client("k", endpoint="http://127.0.0.1:9/v1/m", cache_dir=False)
        >>> flac = base.with_options(upload_format="flac", chunking=Chunking(chunk_seconds=8))
        >>> flac.upload_format, flac.chunk_seconds, base.upload_format, flac.limits is base.limits
        ('flac', 8.0, 'wav', True)
        """
        key = self._api_key if api_key is None else settings.api_key(api_key)
        clone = object.__new__(type(self))
        clone._start(
            self._options.replace(**changes),
            key,
            like=self._parts if key == self._api_key else None,
        )
        return clone

    # --- what the client holds -------------------------------------------------------------

    @property
    def options(self) -> Options:
        """Every setting, frozen (:class:`~samaudio_data._options.Options`)."""
        return self._options

    @property
    def identity(self) -> str:
        """The endpoint's identity in cache keys and fingerprints: ``cache_namespace`` if
        given, else the endpoint URL (never the key)."""
        return self._options.identity

    @property
    def limits(self) -> SharedLimits:
        """The pace, concurrency and back-off shared with every process on this endpoint."""
        return self._parts.limits

    @property
    def cache(self) -> ResultCache | None:
        """The result cache (None when ``cache_dir=False``)."""
        return self._parts.caller.cache

    @property
    def has_key(self) -> bool:
        """Whether this client has an API key (it is never shown).

        >>> Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=False).has_key
        True
        """
        return self._parts.http.has_key

    @property
    def usage(self) -> Usage:
        """What this client did so far: calls billed, cached, failed, retried, rate-limited,
        dollars, wall time, and the rate at which this client sent its requests against the
        account's limit.

        >>> Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=False).usage.billed
        0
        """
        return self._parts.usage_now()

    def redact(self, text: Any) -> str:
        """``str(text)`` with this client's API key replaced by ``***``.

        >>> Client("sk-secret", endpoint="http://127.0.0.1:1/m").redact("key=sk-secret")
        'key=***'
        """
        return self._parts.http.redact(text)

    def __getstate__(self) -> dict:
        # configuration only: no key, no connections. A dataset fingerprint hashes this.
        if self._api_key:
            _KEYRING[self.endpoint] = self._api_key
        return {**self._options.state(), "version": __version__}

    def __setstate__(self, state: dict) -> None:
        options = Options.from_state(state)
        self._start(options, _KEYRING.get(options.endpoint) or settings.api_key(None))

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"Client(endpoint={self.endpoint!r}, api_key={key})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and the thread pool (those this client owns)."""
        self._parts.close()

    # --- clips -------------------------------------------------------------------------------

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

    def separate(
        self, y: np.ndarray, sr: int, description: str, *, budget: Budget | None = None, **params
    ) -> Separation:
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
        return self._parts.run(self._parts.prepare(y, sr, description, params), budget)

    def isolate_many(
        self,
        ys: Sequence[np.ndarray],
        srs: int | Sequence[int],
        description: str | Sequence[str],
        **kwargs,
    ) -> list[Any]:
        """Isolate ``description`` in many clips concurrently; results in input order.

        ``srs`` is one rate for all or one per clip; ``description`` one for all or one per
        clip (a list as long as ``ys``). Takes the keywords of :meth:`separate_many`.

        >>> from samaudio_data.testing import LocalEndpoint
        >>> clips = [np.zeros(8000), np.zeros((2, 16000))]
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     outs = client.isolate_many(clips, [8000, 16000], "speech")
        ...     halves = client.isolate_many([np.full(800, 0.5)] * 2, 8000, ["half", "silence"])
        >>> [o.shape for o in outs], [round(float(o[400]), 3) for o in halves]
        ([(8000,), (16000,)], [0.25, 0.0])
        """
        seps = self.separate_many(ys, srs, description, **kwargs)
        return [s.target if isinstance(s, Separation) else s for s in seps]

    @_documented_by(many.separate_many)
    def separate_many(
        self,
        ys: Sequence[np.ndarray],
        srs: int | Sequence[int],
        description: str | Sequence[str],
        *,
        progress: bool | None = None,
        return_exceptions: bool = False,
        budget: Budget | None = None,
        **params,
    ) -> list[Any]:
        return many.separate_many(
            self._parts,
            ys,
            srs,
            description,
            progress=progress,
            return_exceptions=return_exceptions,
            budget=budget,
            params=params,
        )

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        progress: bool | None = None,
        return_exceptions: bool = False,
        desc: str = "isolating",
    ) -> list[Any]:
        """Apply ``fn`` (which calls this client) to every item on the client's thread pool.

        Results keep the items' order; items that are exceptions are passed through. A 401,
        403, 406 or exhausted budget stops everything and raises with what was done and what
        it cost, once the requests in flight have finished (their answers are cached).
        Another error is returned in its slot with ``return_exceptions=True``, otherwise
        raised after the requests in flight finish.

        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
        ...     peaks = client.map(lambda a: client.isolate(a * tone, 8000, "half").max(),
        ...                        [0.2, 0.4])
        >>> [round(float(p), 2) for p in peaks]
        [0.1, 0.2]
        """
        return self._parts.runner.map(
            fn, items, progress=progress, desc=desc, return_exceptions=return_exceptions
        )

    def stream(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        progress: bool | None = None,
        desc: str = "isolating",
        total: int | None = None,
    ) -> Iterator[tuple[Any, Any]]:
        """Like :meth:`map` for an iterable of any length: yields ``(item, result)`` as
        results arrive, reading items only a little ahead of the requests in flight (flat
        memory, no batch boundaries). A failed item's result is its exception; 401/403/406,
        an exhausted budget or an endpoint that cannot be reached stop everything and raise.
        ``total`` (the number of items, when known) gives the progress bar its end and ETA.

        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     done = sorted(a for a, _ in client.stream(
        ...         lambda a: client.isolate(np.full(800, a), 8000, "speech"), [0.1, 0.2]))
        >>> done
        [0.1, 0.2]
        """
        return self._parts.runner.stream(fn, items, progress=progress, desc=desc, total=total)

    @_documented_by(many.estimate)
    def estimate(
        self,
        ys: Sequence[np.ndarray],
        srs: int | Sequence[int],
        description: str | Sequence[str],
        **params,
    ) -> CostEstimate:
        return many.estimate(self._parts, ys, srs, description, params)

    # --- files ---------------------------------------------------------------------------------

    @_documented_by(longfile.isolate_file)
    def isolate_file(
        self,
        path: PathLike,
        description: str,
        out_path: PathLike | None = None,
        *,
        residual_path: PathLike | bool | None = None,
        budget: Budget | None = None,
        progress: bool | None = None,
        **params,
    ) -> Path:
        return longfile.isolate_file(
            self._parts,
            path,
            description,
            out_path,
            residual_path=residual_path,
            budget=budget,
            progress=progress,
            **params,
        )

    @_documented_by(longfile.estimate_file)
    def estimate_file(
        self, paths: PathLike | Sequence[PathLike], description: str, **params
    ) -> CostEstimate:
        return longfile.estimate_file(self._parts, paths, description, **params)

    # --- the account ---------------------------------------------------------------------------

    def credits(self) -> float:
        """The account's remaining credits (``GET /v1/get-user-credits``); nothing is spent.

        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint(keys={"k": 2.5}) as ep, Client("k", endpoint=ep.url) as c:
        ...     c.credits()
        2.5
        """
        return account.credits(self._parts.http)

    @_documented_by(account.check_parts)
    def check(self, probe: bool = False) -> account.CheckReport:
        return account.check_parts(self._parts, probe=probe)
