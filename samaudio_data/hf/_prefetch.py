"""Fill the cache at the account's limit, whatever the batch size of the map that follows.

``dataset.map(fn, batched=True)`` hands over one batch at a time and waits for its slowest
answer before the next: every batch ends with one call's latency (~12.6 s) in which nothing
is sent, and a paid account at 50 requests a minute sits idle for a third of a batch of 16.
:func:`prefetch` sends every row's requests from one stream instead, keeping the account at
its limit from the first row to the last, and caches the answers; the ``map`` that follows
then reads them from the cache in seconds and pays nothing.

Example
-------
>>> import numpy as np, tempfile
>>> from datasets import Dataset
>>> from samaudio_data import Client, isolate
>>> from samaudio_data.testing import LocalEndpoint
>>> ds = Dataset.from_dict({"audio": [{"array": np.full(800, a), "sampling_rate": 8000}
...                                   for a in (0.1, 0.2, 0.3)]})
>>> with LocalEndpoint() as ep:
...     client = Client("local-key", endpoint=ep.url, cache_dir=tempfile.mkdtemp(),
...                     progress=False)
...     fn = isolate("speech", client=client)
...     print(prefetch(ds, fn, progress=False))
...     ds = ds.map(fn, batched=True)          # every row from the cache: nothing paid
3 rows: 3 paid, 0 already cached, 0 failed
>>> client.usage.cached
3
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import errors
from .._models import plural
from . import _triage
from ._map import Isolate
from ._values import SharedClip, dataset_rows, declared_dtype


@dataclass
class PrefetchReport:
    """What :func:`prefetch` did: rows read, calls paid for and already cached, the failed
    calls (row, reason), and silent ones (answered locally, free). Every stem of a row is a
    call of its own. Per row and stem, what it cost in this prefetch:
    ``done[(row, output_column)] = (dollars, seconds, cached)`` (the ``map`` that follows
    reads these calls from the cache: its own columns then say ``cost == 0.0, cached ==
    True``; ``samaudio-data map`` writes these figures instead)."""

    rows: int = 0
    paid: int = 0
    cached: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    calls: int = 0
    silent: int = 0
    done: dict[tuple[int, str], tuple[float, float, bool]] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        calls = "" if self.calls == self.rows else f" ({plural(self.calls, 'call')})"
        text = (
            f"{plural(self.rows, 'row')}{calls}: {self.paid} paid, {self.cached} already "
            f"cached, {len(self.failed)} failed"
        )
        if self.silent:
            text += f", {self.silent} silent (free)"
        return text


def prefetch(dataset, fn: Isolate, *, progress: bool = True) -> PrefetchReport:
    """Send every row's requests at the account's limit and cache the answers.

    Rows are read one after another and their calls (one per stem, each with the row's own
    description) sent through the client's shared limits and thread pool, at most a few
    ahead of the requests in flight (memory stays flat). A call that fails is reported, not
    raised; a 401, 403, 406 or ``max_cost`` stops everything and raises, as in ``map``; a
    template naming a missing column fails before anything is sent. Run
    ``dataset.map(fn, ...)`` afterwards: it finds every answer in the cache.
    ``samaudio-data map`` does this by itself.
    """
    if not isinstance(fn, Isolate):
        raise errors.InvalidRequestError("prefetch needs the result of isolate(...).")
    fn.sample_dtype = fn.sample_dtype or declared_dtype(
        getattr(dataset, "features", None), fn.column
    )
    client, budget = fn.client, fn.budget()
    report = PrefetchReport()

    def work(item: tuple[int, SharedClip, Any, str]):
        _, clip, ask, _ = item
        for failed in (clip, ask):
            if isinstance(failed, BaseException):
                raise failed
        # as the map will: silent rows are not sent, doubtful ones reranked if asked
        return _triage.separate(
            client,
            clip.read(),
            ask[0],
            ask[1],
            budget=budget,
            on_doubt=fn.on_doubt,
            rerank_candidates=fn.rerank_candidates,
        )

    def calls():
        for row, value, columns in dataset_rows(dataset, fn.column, fn.prompts):
            report.rows += 1
            if isinstance(value, BaseException):  # every stem's call fails, as in the map
                asks: list[Any] = [value] * len(fn.prompts.stems)
            else:
                asks = fn.prompts.resolve(columns, "")
                value = SharedClip(value, uses=len(asks), dtype=fn.sample_dtype)
            for ask, stem in zip(asks, fn.prompts.stems, strict=True):
                report.calls += 1
                yield row, value, ask, stem.output_column

    try:
        total = len(dataset) * len(fn.prompts.stems)
    except TypeError:  # an IterableDataset: no end known
        total = None
    for (row, _, _, stem), result in client.stream(
        work, calls(), progress=progress, total=total, desc=f"caching {fn.prompts.describe()}"
    ):
        if isinstance(result, errors.SamAudioError):
            report.failed.append((row, result.message))
            continue
        report.done[(row, stem)] = (result.cost, result.seconds, result.cached)
        if (
            result.cost == 0.0
            and not result.cached
            and result.attempts == 0
            and result.flag == "absent:silent_input"
        ):
            report.silent += 1
        elif result.cached:
            report.cached += 1
        else:
            report.paid += 1
    return report
