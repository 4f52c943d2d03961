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
samaudio_data.errors.InvalidRequestError: got 3 clips but 2 sample rates; pass one rate or one per clip.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import errors
from ._models import Budget, CostEstimate, Tally
from ._parts import Parts

Rates = Union[int, Sequence[int]]


def clips_and_rates(ys: Sequence[np.ndarray], srs: Rates) -> Tuple[List[Any], List[Any]]:
    """The clips as a list and one sample rate per clip; a clear error when the numbers of
    clips and rates differ."""
    ys = list(ys)
    rates = list(srs) if isinstance(srs, (list, tuple, np.ndarray)) else [srs] * len(ys)
    if len(rates) != len(ys):
        raise errors.InvalidRequestError(
            f"got {len(ys)} clips but {len(rates)} sample rates; pass one rate or one per clip.")
    return ys, rates


def separate_many(parts: Parts, ys: Sequence[np.ndarray], srs: Rates, description: str, *,
                  progress: Optional[bool], return_exceptions: bool, budget: Optional[Budget],
                  params: Dict[str, Any]) -> List[Any]:
    """See :meth:`samaudio_data.Client.separate_many`."""
    jobs: List[Any] = []
    for i, (y, sr) in enumerate(zip(*clips_and_rates(ys, srs))):
        try:
            jobs.append(parts.prepare(y, sr, description, params))
        except errors.InvalidRequestError as exc:
            if not return_exceptions:
                raise type(exc)(f"clip {i}: {exc.message}") from exc
            jobs.append(exc)
    return parts.runner.map(lambda job: parts.run(job, budget), jobs, progress=progress,
                            return_exceptions=return_exceptions)


def estimate(parts: Parts, ys: Sequence[np.ndarray], srs: Rates, description: str,
             params: Dict[str, Any]) -> CostEstimate:
    """See :meth:`samaudio_data.Client.estimate`."""
    tally = Tally(parts.options.price_per_call)
    for i, (y, sr) in enumerate(zip(*clips_and_rates(ys, srs))):
        tally.add(i, lambda: parts.caller.count(parts.prepare(y, sr, description, params)))
    return tally.result()
