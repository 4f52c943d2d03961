"""The client's one thread pool, and how every operation over many calls runs on it.

:class:`Runner` owns the pool (``max_concurrency`` threads), the progress bars, the stop
handling (a 401, 403, 406 or an exhausted budget cancels what has not started, lets the
requests in flight finish, so they are cached, and raises with what was done and paid) and
the note saying where paid results are kept. ``isolate_many``, ``map``, ``stream``, the
chunks of a long clip, the windows of a long file and the datasets helpers all run here.

A task that waits for other tasks of the same pool (a clip waiting for its chunks, a map
inside a map) runs those not yet started itself, so the pool never starves on its own work.

Example
-------
>>> import tempfile
>>> from samaudio_data._state.limits import SharedLimits
>>> from samaudio_data._models import Usage
>>> runner = Runner(2, usage=Usage(), limits=SharedLimits(tempfile.mkdtemp()),
...                 progress=False, cache_dir=None)
>>> runner.map(lambda x: x * 2, [1, 2, 3]), sorted(r for _, r in runner.stream(abs, [-1, 2]))
([2, 4, 6], [1, 2])
>>> runner.close()
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import errors
from ._models import Usage, plural
from ._state.limits import SharedLimits


class _Work:
    """One submitted call; run by a pool thread or, if still waiting, by a thread that
    waits for it."""

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn, self.args = fn, args
        self.future: cf.Future = cf.Future()
        self._claim = threading.Lock()

    def run(self) -> None:
        if not self._claim.acquire(blocking=False):
            return  # another thread runs it
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class _Bar:
    """A progress bar, or nothing when progress is off."""

    def __init__(self, runner: Runner, bar) -> None:
        self._runner, self._bar = runner, bar
        self.failed = 0

    def tick(self, n: int = 1, *, failed: bool = False) -> None:
        """Count ``n`` finished items: the bar counts successes; a failure goes beside it
        (and off the total, which would never be reached otherwise)."""
        if self._bar is None or not n:
            return
        if failed:
            self.failed += n
            self._bar.total = None if self._bar.total is None else self._bar.total - n
        else:
            self._bar.update(n)
        self._bar.set_postfix_str(self._runner.postfix(self.failed), refresh=True)


class Runner:
    """The thread pool, progress, stops and summary of a client (see the module)."""

    def __init__(
        self,
        workers: int,
        *,
        usage: Usage,
        limits: SharedLimits,
        progress: bool,
        cache_dir: Path | None,
    ) -> None:
        self.workers = workers
        self.usage = usage
        self.limits = limits
        self.progress = progress
        self.stop_note = (
            f" Paid results are cached in {cache_dir}; running the same call "
            "again pays only for the rest."
            if cache_dir
            else ""
        )
        self._pool: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._queued: dict[cf.Future, _Work] = {}

    # --- the pool ----------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Run ``fn(*args)`` on the pool."""
        work = _Work(fn, args)
        with self._lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(
                    self.workers, thread_name_prefix="samaudio", initializer=self._mark_worker
                )
            self._queued[work.future] = work
            work.future.add_done_callback(self._forget)
            self._pool.submit(work.run)
        return work.future

    def wait(self, futures: Iterable[cf.Future], *, first: bool = True) -> tuple[set, set]:
        """``concurrent.futures.wait`` (for the first or for all); a pool thread waiting
        runs the awaited calls nobody has started yet."""
        how = cf.FIRST_COMPLETED if first else cf.ALL_COMPLETED
        futures = set(futures)
        while getattr(self._local, "worker", False):
            done, rest = cf.wait(futures, timeout=0, return_when=how)
            if not rest or (first and done):
                return done, rest
            with self._lock:
                work = next((self._queued[f] for f in rest if f in self._queued), None)
            if work is None:
                break
            work.run()
        return cf.wait(futures, return_when=how)

    def settle(self, futures: Iterable[cf.Future]) -> None:
        """Cancel what has not started; wait for the rest (requests in flight finish, and so
        are cached)."""
        futures = list(futures)
        for fut in futures:
            fut.cancel()
        self.wait(futures, first=False)

    def close(self) -> None:
        """Shut the pool down (waiting for what runs); a later call starts a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _mark_worker(self) -> None:
        self._local.worker = True

    def _forget(self, fut: cf.Future) -> None:
        with self._lock:
            self._queued.pop(fut, None)

    # --- operations ----------------------------------------------------------------------------

    def started(self) -> float:
        """When the operation this thread works for began (now, outside one): a fatal
        error recorded after it, by any thread or process, stops its calls."""
        return getattr(self._local, "started", None) or time.time()

    def operation(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``fn`` as a task of one operation beginning now (see :meth:`started`)."""
        started = time.time()

        def task(item):
            before, self._local.started = getattr(self._local, "started", None), started
            try:
                return fn(item)
            finally:
                self._local.started = before

        return task

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        progress: bool | None = None,
        return_exceptions: bool = False,
        desc: str = "isolating",
    ) -> list[Any]:
        """``fn`` over ``items`` in order; see :meth:`samaudio_data.Client.map`."""
        results: list[Any] = list(items)
        task = self.operation(fn)
        todo = [i for i, item in enumerate(results) if not isinstance(item, BaseException)]
        first_error: BaseException | None = None
        with self.bar(len(todo), desc, "clip", progress) as bar, self.stopping() as futures:
            for i in todo:
                futures[self.submit(task, results[i])] = i
            pending = set(futures)
            while pending:
                done, pending = self.wait(pending)
                for fut in done:
                    try:
                        results[futures[fut]] = fut.result()
                    except cf.CancelledError:
                        continue
                    except errors.STOPS:
                        raise
                    except errors.SamAudioError as exc:
                        results[futures[fut]] = exc
                        if not return_exceptions and first_error is None:
                            first_error = exc
                            for f in pending:
                                f.cancel()
                    bar.tick(failed=isinstance(results[futures[fut]], BaseException))
        if first_error is not None:
            raise first_error
        return results

    def stream(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        progress: bool | None = None,
        desc: str = "isolating",
        total: int | None = None,
    ) -> Iterator[tuple[Any, Any]]:
        """``(item, result or its error)`` as they complete, reading ``items`` at most twice
        the pool's size ahead; see :meth:`samaudio_data.Client.stream`. ``total`` (the
        number of items, when known) gives the progress bar its end and ETA."""
        task, source = self.operation(fn), iter(items)
        with self.bar(total, desc, "clip", progress) as bar, self.stopping() as pending:
            while True:
                for item in itertools.islice(source, max(0, 2 * self.workers - len(pending))):
                    pending[self.submit(task, item)] = item
                if not pending:
                    return
                for fut in self.wait(pending)[0]:
                    item = pending.pop(fut)
                    try:
                        result = fut.result()
                    except errors.STOPS:
                        raise
                    except errors.SamAudioError as exc:
                        result = exc
                    bar.tick(failed=isinstance(result, BaseException))
                    yield item, result

    def gather(self, calls: Sequence[Callable[[], Any]], *, desc: str) -> list[Any]:
        """The results of ``calls`` (a long clip's chunks), run concurrently, in order;
        those in flight finish (and so are cached) even when one fails."""
        futures = [self.submit(call) for call in calls]
        with self.bar(len(futures), desc, "chunk", None) as bar:
            try:
                pending = set(futures)
                while pending:
                    done, pending = self.wait(pending)
                    bar.tick(len(done))
                return [f.result() for f in futures]
            finally:
                self.settle(futures)

    # --- progress and stops ------------------------------------------------------------------

    @contextlib.contextmanager
    def bar(self, total: int | None, desc: str, unit: str, progress: bool | None) -> Iterator[_Bar]:
        """A progress bar (when ``progress``, else the client's default, says so)."""
        show = self.progress if progress is None else progress
        if not show or total == 0:
            yield _Bar(self, None)
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
        try:
            yield _Bar(self, bar)
        finally:
            bar.close()

    @contextlib.contextmanager
    def stopping(self) -> Iterator[dict[cf.Future, Any]]:
        """Yields the operation's futures (fill it): on leaving, those not started are
        cancelled and those in flight waited for; a stopping error is raised again saying
        what the operation did and paid before it."""
        before = self.usage.snapshot()
        futures: dict[cf.Future, Any] = {}
        try:
            yield futures
        except errors.STOPS as exc:
            self.settle(futures)  # summarised only now, so what was in flight is counted
            raise summarise(exc, before, self.usage.snapshot(), self.stop_note) from exc
        finally:
            self.settle(futures)

    def postfix(self, failed: int = 0) -> str:
        """Dollars spent, the rate achieved and the failures, for a progress bar."""
        snap = self.limits.snapshot()
        rate = snap["achieved_per_minute"]
        text = f"${self.usage.cost:.2f}"
        if rate is not None:
            allowed = snap["rate_per_minute"]
            text += f", {rate:.1f}/min" + (f" of {allowed:.0f}" if allowed else "")
        return text + (f", {failed} failed" if failed else "")


def summarise(
    exc: errors.SamAudioError, before: Usage, now: Usage, note: str = ""
) -> errors.SamAudioError:
    """The stopping error again, saying what was done and paid before the stop.

    >>> e = summarise(errors.InsufficientCreditsError("no credits", status_code=406),
    ...               Usage(), Usage(billed=2, cost=0.12))
    >>> e.message
    'no credits Stopped every request: 2 calls paid ($0.12) and 0 cache hits before the stop.'
    """
    done = now.billed - before.billed
    cost = now.cost - before.cost
    hits = now.cached - before.cached
    kwargs: dict[str, Any] = dict(status_code=exc.status_code, hint=exc.hint, response=exc.response)
    if isinstance(exc, errors.APIStatusError):
        kwargs["retry_after"] = exc.retry_after
    return type(exc)(
        f"{exc.message} Stopped every request: {plural(done, 'call')} paid (${cost:.2f}) "
        f"and {plural(hits, 'cache hit')} before the stop.{note}",
        **kwargs,
    )
