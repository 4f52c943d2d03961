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
from typing import Any, List, Tuple

from .. import errors
from . import _triage
from ._map import Isolate, column_values
from ._values import declared_dtype, read_value


@dataclass
class PrefetchReport:
    """What :func:`prefetch` did: rows paid for, already cached, failed (row, reason),
    and silent (answered locally, free)."""

    rows: int = 0
    paid: int = 0
    cached: int = 0
    failed: List[Tuple[int, str]] = field(default_factory=list)
    silent: int = 0

    def __str__(self) -> str:
        text = (f"{self.rows} rows: {self.paid} paid, {self.cached} already cached, "
                f"{len(self.failed)} failed")
        if self.silent:
            text += f", {self.silent} silent (free)"
        return text


def prefetch(dataset, fn: Isolate, *, progress: bool = True) -> PrefetchReport:
    """Send every row's requests at the account's limit and cache the answers.

    Rows are read one after another and sent through the client's shared limits and thread
    pool, at most a few rows ahead of the requests in flight (memory stays flat). A row that
    fails is reported, not raised; a 401, 403, 406 or ``max_cost`` stops everything and
    raises, as in ``map``. Run ``dataset.map(fn, ...)`` afterwards: it finds every answer
    in the cache. ``samaudio-data map`` does this by itself.
    """
    if not isinstance(fn, Isolate):
        raise errors.InvalidRequestError("prefetch needs the result of isolate(...).")
    fn.sample_dtype = fn.sample_dtype or declared_dtype(getattr(dataset, "features", None),
                                                        fn.column)
    client, budget = fn.client, fn.budget()
    report = PrefetchReport()

    def work(item: Tuple[int, Any]):
        row, value = item
        if isinstance(value, BaseException):
            raise value
        # as the map will: silent rows are not sent, doubtful ones reranked if asked
        return _triage.separate(client, read_value(value, dtype=fn.sample_dtype),
                                fn.description, fn.params, budget=budget,
                                on_doubt=fn.on_doubt, rerank_candidates=fn.rerank_candidates)

    def rows():
        for item in column_values(dataset, fn.column):
            report.rows += 1
            yield item

    for (row, _), result in client.stream(work, rows(), progress=progress,
                                          desc=f"caching {fn.description!r}"):
        if isinstance(result, errors.SamAudioError):
            report.failed.append((row, result.message))
            continue
        if result.cost == 0.0 and not result.cached and result.attempts == 0 \
                and result.flag == "absent:silent_input":
            report.silent += 1
        elif result.cached:
            report.cached += 1
        else:
            report.paid += 1
    return report
