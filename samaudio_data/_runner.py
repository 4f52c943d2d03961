"""Running many calls on a client's thread pool: order kept, progress shown, stops shared.

Example
-------
>>> import concurrent.futures as cf, tempfile
>>> from samaudio_data._state.limits import SharedLimits
>>> from samaudio_data._models import Usage
>>> with cf.ThreadPoolExecutor(2) as pool:
...     run_all(pool, lambda x: x * 2, [1, 2, 3], usage=Usage(),
...             limits=SharedLimits(tempfile.mkdtemp()), progress=False)
[2, 4, 6]
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from . import errors
from ._state.limits import SharedLimits
from ._models import Usage


def run_all(pool: cf.Executor, task: Callable[[Any], Any], items: List[Any], *, usage: Usage,
            limits: SharedLimits, progress: bool, return_exceptions: bool = False,
            desc: str = "isolating", stop_note: str = "") -> List[Any]:
    """Apply ``task`` to every item on ``pool``; see :meth:`samaudio_data.Client.map`."""
    results: List[Any] = list(items)
    todo = [i for i, item in enumerate(items) if not isinstance(item, BaseException)]
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=desc, unit="clip", leave=False)
    before = usage.snapshot()
    first_error: Optional[BaseException] = None
    stop: Optional[errors.SamAudioError] = None
    futures = {pool.submit(task, items[i]): i for i in todo}
    try:
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
                bar.set_postfix_str(_postfix(usage, limits), refresh=False)
    finally:
        for f in futures:
            f.cancel()
        cf.wait(list(futures))  # requests in flight finish, and so are cached
        if bar is not None:
            bar.close()
    if stop is not None:  # summarised only now, so what was in flight is counted
        raise summarise(stop, before, usage.snapshot(), stop_note) from stop
    if first_error is not None:
        raise first_error
    return results


def stream_all(pool: cf.Executor, task: Callable[[Any], Any], items: Iterable[Any], *,
               window: int, usage: Usage, limits: SharedLimits, progress: bool,
               desc: str = "isolating", stop_note: str = "") -> Iterator[Tuple[Any, Any]]:
    """Yield ``(item, result or exception)`` as they complete, at most ``window`` ahead."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=desc, unit="clip", leave=False)
    before = usage.snapshot()
    source = iter(items)
    pending: Dict[cf.Future, Any] = {}
    try:
        while True:
            for item in itertools.islice(source, max(0, window - len(pending))):
                pending[pool.submit(task, item)] = item
            if not pending:
                return
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                try:
                    result = fut.result()
                except (errors.FatalAPIError, errors.BudgetExceededError) as exc:
                    for f in pending:
                        f.cancel()
                    cf.wait(list(pending))  # requests in flight finish, and so are cached
                    raise summarise(exc, before, usage.snapshot(), stop_note) from exc
                except errors.SamAudioError as exc:
                    result = exc
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(_postfix(usage, limits), refresh=False)
                yield item, result
    finally:
        for f in pending:
            f.cancel()
        cf.wait(list(pending))
        if bar is not None:
            bar.close()


def _postfix(usage: Usage, limits: SharedLimits) -> str:
    snap = limits.snapshot()
    rate = snap["achieved_per_minute"]
    text = f"${usage.cost:.2f}"
    if rate is not None:
        allowed = snap["rate_per_minute"]
        text += f", {rate:.1f}/min" + (f" of {allowed:.0f}" if allowed else "")
    return text


def summarise(exc: errors.SamAudioError, before: Usage, now: Usage,
              note: str = "") -> errors.SamAudioError:
    """The stopping error again, saying what was done and paid before the stop.

    >>> e = summarise(errors.InsufficientCreditsError("no credits", status_code=406),
    ...               Usage(), Usage(billed=2, cost=0.12))
    >>> e.message
    'no credits Stopped every request: 2 calls paid ($0.12) and 0 cache hits before the stop.'
    """
    done = now.billed - before.billed
    cost = now.cost - before.cost
    hits = now.cached - before.cached
    kwargs = dict(status_code=exc.status_code, hint=exc.hint, response=exc.response)
    if isinstance(exc, errors.APIStatusError):
        kwargs["retry_after"] = exc.retry_after
    return type(exc)(f"{exc.message} Stopped every request: {done} calls paid (${cost:.2f}) "
                     f"and {hits} cache hits before the stop.{note}", **kwargs)


def answer_all(pool: cf.Executor, caller, job, *, started: float, budget, progress: bool):
    """The answers of all of a long clip's pieces, requested concurrently, in order.

    Chunks already in flight finish (and so are cached) even when one fails.
    """
    futures = [pool.submit(caller.answer, p, job, started=started, budget=budget)
               for p in job.pieces]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(futures), desc=f"{job.original.shape[-1] / job.sr:.0f} s clip",
                   unit="chunk", leave=False)
    try:
        for _ in cf.as_completed(futures):
            if bar is not None:
                bar.update(1)
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()
        cf.wait(futures)
        if bar is not None:
            bar.close()
