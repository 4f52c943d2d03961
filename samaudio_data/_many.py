"""Many clips at once: checked together before anything is sent, then run concurrently.

:func:`separate_many` (behind :meth:`samaudio_data.Client.separate_many` and
``isolate_many``) checks every clip first, then runs them on the client's
:class:`~samaudio_data._runner.Runner`; :func:`estimate` (behind
:meth:`samaudio_data.Client.estimate`) counts the same jobs without sending them.
:func:`clips_and_rates` pairs clips with their sample rates, refusing lists that differ
in length.

Example
-------
>>> clips_and_rates([np.zeros(4), np.zeros(4)], 8000)
([array([0., 0., 0., 0.]), array([0., 0., 0., 0.])], [8000, 8000])
>>> clips_and_rates([np.zeros(4)] * 3, [8000, 16000])
Traceback (most recent call last):
...
samaudio_data.errors.InvalidRequestError: got 3 clips but 2 sample rates; pass one rate or
one per clip.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import errors
from ._estimate import CostEstimate, Counts, Tally
from ._models import Budget
from ._parts import Parts

Rates = int | Sequence[int]


def clips_and_rates(ys: Sequence[np.ndarray], srs: Rates) -> tuple[list[Any], list[Any]]:
    """The clips as a list and one sample rate per clip; a clear error when the numbers of
    clips and rates differ."""
    ys = list(ys)
    rates = list(srs) if isinstance(srs, (list, tuple, np.ndarray)) else [srs] * len(ys)
    if len(rates) != len(ys):
        raise errors.InvalidRequestError(
            f"got {len(ys)} clips but {len(rates)} sample rates; pass one rate or one per clip."
        )
    return ys, rates


def descriptions_for(ys: list[Any], description: str | Sequence[str]) -> list[Any]:
    """One description per clip: the same for all, or a list as long as the clips."""
    if isinstance(description, (list, tuple)):
        if len(description) != len(ys):
            raise errors.InvalidRequestError(
                f"got {len(ys)} clips but {len(description)} descriptions; pass one "
                "description or one per clip."
            )
        return list(description)
    return [description] * len(ys)


def separate_many(
    parts: Parts,
    ys: Sequence[np.ndarray],
    srs: Rates,
    description: str | Sequence[str],
    *,
    progress: bool | None,
    return_exceptions: bool,
    budget: Budget | None,
    params: dict[str, Any],
) -> list[Any]:
    """Separate many clips concurrently, order kept.

    ``description`` is one for all clips or a list with one per clip. Every clip is checked
    before the first request. With ``return_exceptions=True`` a
    failed clip's slot holds its exception; otherwise the first error is raised once the
    requests already in flight finish (their answers are cached). A 401, 403 or 406
    stops everything at once and raises with what was done and what it cost.

    >>> from samaudio_data import Client
    >>> from samaudio_data.testing import LocalEndpoint
    >>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url,
    ...                                    cache_dir=False, progress=False) as client:
    ...     res = client.separate_many([np.zeros(8000)] * 3, 8000, "dog barking")
    >>> len(res), res[0].sr
    (3, 8000)
    """
    jobs: list[Any] = []
    ys, rates = clips_and_rates(ys, srs)
    texts = descriptions_for(ys, description)
    for i, (y, sr, text) in enumerate(zip(ys, rates, texts, strict=True)):
        try:
            jobs.append(parts.prepare(y, sr, text, params))
        except errors.InvalidRequestError as exc:
            if not return_exceptions:
                raise type(exc)(f"clip {i}: {exc.message}") from exc
            jobs.append(exc)
    return parts.runner.map(
        lambda job: parts.run(job, budget),
        jobs,
        progress=progress,
        return_exceptions=return_exceptions,
    )


def estimate(
    parts: Parts,
    ys: Sequence[np.ndarray],
    srs: Rates,
    description: str | Sequence[str],
    params: dict[str, Any],
) -> CostEstimate:
    """Count the calls a run would pay for and the cache hits; nothing is sent.

    >>> import tempfile
    >>> from samaudio_data import Client
    >>> client = Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=tempfile.mkdtemp())
    >>> print(client.estimate([np.zeros(8000)] * 2, 8000, "speech"))
    2 calls to pay for, 0 already cached: about $0.12 at $0.062 per call
    """
    tally = Tally(parts.options.price_per_call)
    ys, rates = clips_and_rates(ys, srs)
    texts = descriptions_for(ys, description)
    for i, (y, sr, text) in enumerate(zip(ys, rates, texts, strict=True)):
        tally.add(i, functools.partial(_count, parts, y, sr, text, params))
    return tally.result()


def _count(
    parts: Parts, y: np.ndarray, sr: int, description: str, params: dict[str, Any]
) -> Counts:
    """What a run would do with one clip, counted as its sends would be."""
    return parts.caller.count(parts.prepare(y, sr, description, params))
