"""The client's calls over many clips: concurrent, order kept, stops shared.

:class:`ManyClips` gives :class:`~samaudio_data.Client` its ``isolate_many``,
``separate_many``, ``map`` (a list, results in order) and ``stream`` (an iterable of any
length, results as they arrive) on the client's one thread pool.

Example
-------
>>> import numpy as np
>>> from samaudio_data import Client
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False,
...                                    progress=False) as client:
...     outs = client.isolate_many([np.zeros(800)] * 3, 8000, "speech")
>>> len(outs)
3
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import errors
from ._models import Budget, Separation
from ._runner import run_all, stream_all


class ManyClips:
    """Mixin of :class:`~samaudio_data.Client`: calls over many clips (see the module)."""

    def isolate_many(self, ys: Sequence[np.ndarray], srs: Union[int, Sequence[int]],
                     description: Union[str, Sequence[str]], **kwargs) -> List[Any]:
        """Isolate ``description`` in many clips concurrently; results in input order.

        ``srs`` is one rate for all or one per clip; ``description`` one for all or one per
        clip (a list as long as ``ys``). Takes the keywords of :meth:`separate_many`.

        >>> from samaudio_data import Client
        >>> from samaudio_data.testing import LocalEndpoint
        >>> clips = [np.zeros(8000), np.zeros((2, 16000))]
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     outs = client.isolate_many(clips, [8000, 16000], "speech")
        >>> [o.shape for o in outs]
        [(8000,), (16000,)]
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     outs = client.isolate_many([np.full(800, 0.5)] * 2, 8000, ["half", "silence"])
        >>> [round(float(o[400]), 3) for o in outs]
        [0.25, 0.0]
        """
        seps = self.separate_many(ys, srs, description, **kwargs)
        return [s.target if isinstance(s, Separation) else s for s in seps]

    def separate_many(self, ys: Sequence[np.ndarray], srs: Union[int, Sequence[int]],
                      description: Union[str, Sequence[str]], *, progress: Optional[bool] = None,
                      return_exceptions: bool = False, budget: Optional[Budget] = None,
                      **params) -> List[Any]:
        """Separate many clips concurrently, order kept.

        ``description`` is one for all clips or a list with one per clip. Every clip is
        validated before the first request. With ``return_exceptions=True``
        a failed clip's slot holds its exception; otherwise the first error is raised once
        the requests already in flight finish (their answers are cached). A 401, 403 or 406
        stops everything at once and raises with what was done and what it cost.

        >>> from samaudio_data import Client
        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     res = client.separate_many([np.zeros(8000)] * 3, 8000, "dog barking")
        >>> len(res), res[0].sr
        (3, 8000)
        """
        ys = list(ys)
        srs = list(srs) if isinstance(srs, (list, tuple, np.ndarray)) else [srs] * len(ys)
        if len(srs) != len(ys):
            raise errors.InvalidRequestError(
                f"got {len(ys)} clips but {len(srs)} sample rates; pass one rate or one per clip.")
        descriptions = list(description) if isinstance(description, (list, tuple)) \
            else [description] * len(ys)
        if len(descriptions) != len(ys):
            raise errors.InvalidRequestError(
                f"got {len(ys)} clips but {len(descriptions)} descriptions; pass one "
                "description or one per clip.")
        jobs: List[Any] = []
        for i, (y, sr, text) in enumerate(zip(ys, srs, descriptions)):
            try:
                jobs.append(self._prepare(y, sr, text, params))
            except errors.InvalidRequestError as exc:
                if not return_exceptions:
                    raise type(exc)(f"clip {i}: {exc.message}") from exc
                jobs.append(exc)
        return self.map(lambda job: self._run(job, budget), jobs, progress=progress,
                        return_exceptions=return_exceptions)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            progress: Optional[bool] = None, return_exceptions: bool = False,
            desc: str = "isolating") -> List[Any]:
        """Apply ``fn`` (which calls this client) to every item on the client's thread pool.

        Results keep the items' order; items that are exceptions are passed through. A 401,
        403, 406 or exhausted budget stops everything and raises with what was done and what
        it cost, once the requests in flight have finished (their answers are cached).
        Another error is returned in its slot with ``return_exceptions=True``, otherwise
        raised after the requests in flight finish.

        >>> from samaudio_data import Client
        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
        ...     peaks = client.map(lambda a: client.isolate(a * tone, 8000, "half").max(),
        ...                        [0.2, 0.4])
        >>> [round(float(p), 2) for p in peaks]
        [0.1, 0.2]
        """
        return run_all(self._executor(), self._task(fn), list(items), usage=self._usage,
                       limits=self.limits, progress=self.progress if progress is None
                       else progress, return_exceptions=return_exceptions, desc=desc,
                       stop_note=self._stop_note())

    def stream(self, fn: Callable[[Any], Any], items: Iterable[Any], *,
               progress: Optional[bool] = None, desc: str = "isolating",
               total: Optional[int] = None) -> Iterator[Tuple[Any, Any]]:
        """Like :meth:`map` for an iterable of any length: yields ``(item, result)`` as
        results arrive, reading items only a little ahead of the requests in flight, so
        requests flow at the account's limit without batch boundaries and memory stays
        flat. A failed item's result is its exception; 401/403/406, an exhausted budget or
        an endpoint that cannot be reached stop everything and raise. ``total`` (the number
        of items, when known) gives the progress bar its end and ETA.

        >>> from samaudio_data import Client
        >>> from samaudio_data.testing import LocalEndpoint
        >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
        ...                                    cache_dir=False, progress=False) as client:
        ...     done = sorted(a for a, _ in client.stream(
        ...         lambda a: client.isolate(np.full(800, a), 8000, "speech"), [0.1, 0.2]))
        >>> done
        [0.1, 0.2]
        """
        return stream_all(self._executor(), self._task(fn), items, window=2 *
                          self.max_concurrency, usage=self._usage, limits=self.limits,
                          progress=self.progress if progress is None else progress,
                          desc=desc, stop_note=self._stop_note(), total=total)

    def _task(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        started = time.time()

        def task(item):
            # calls made by fn in this thread belong to this operation: a fatal error
            # recorded after ``started`` (by any thread or process) stops them
            self._op.started = started
            try:
                return fn(item)
            finally:
                self._op.started = None

        return task

    def _executor(self) -> cf.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(max_workers=self.max_concurrency,
                                                   thread_name_prefix="samaudio")
            return self._pool

    def _stop_note(self) -> str:
        return (f" Paid results are cached in {self.cache_dir}; running the same call again "
                "pays only for the rest." if self.cache_dir else "")
