"""What a dataset map does with the quality verdict: silent rows for free, doubtful rows
kept, asked again with more reranking candidates, or skipped.

:func:`separate` is one row's call: a silent input (peak below
:data:`~samaudio_data.audio.SILENT_INPUT_DBFS`) is answered here with silence and the flag
``absent:silent_input``, without a request; any other row is sent, and with
``on_doubt="rerank"`` a flagged answer (but ``absent``: the sound is not in the clip) is
asked for once more with ``rerank_candidates`` reranking candidates (paid within the budget,
cached like any call) and the answer with the better verdict is kept, its cost the sum of
both.

Example
-------
>>> import numpy as np
>>> from samaudio_data import Client
>>> client = Client("k", endpoint="http://127.0.0.1:9/m", cache_dir=False)
>>> res = separate(client, (np.zeros(8000), 8000), "speech", {})   # nothing is sent
>>> res.flag, res.cost, res.target.shape
('absent:silent_input', 0.0, (8000,))
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import audio, errors
from .._models import Budget, Separation
from .._settings import CANDIDATES, check_candidates, check_channels, check_choice

ON_DOUBT = ("keep", "rerank", "skip")
RERANK_CANDIDATES = 4
"""Reranking candidates of a rerank: the model's users report that 2-3 reduce invented
sound and more helps little; 4 leaves room above a map's own setting."""


def check_policy(on_doubt: str, rerank_candidates: Any, own: int | None = None) -> tuple[str, int]:
    """Validate ``on_doubt`` and ``rerank_candidates`` (more than the map's own ``own``).

    >>> check_policy("rerank", 4)
    ('rerank', 4)
    >>> try:
    ...     check_policy("rerank", 2, own=3)
    ... except errors.InvalidRequestError as exc:
    ...     print(exc.message[:60])
    rerank_candidates (2) must be more than the map's own rerank
    """
    check_choice("on_doubt", on_doubt, ON_DOUBT)
    rerank_candidates = check_candidates(rerank_candidates, "rerank_candidates")
    if rerank_candidates < 2:  # one candidate is what a first call already asked
        raise errors.InvalidRequestError(
            f"rerank_candidates must be an integer from 2 to {CANDIDATES[-1]}, got "
            f"{rerank_candidates!r}."
        )
    if on_doubt == "rerank" and own is not None and rerank_candidates <= own:
        raise errors.InvalidRequestError(
            f"rerank_candidates ({rerank_candidates}) must be more than the map's own "
            f"reranking_candidates ({own}) for a rerank to ask anything new; pass "
            "rerank_candidates= up to 8."
        )
    return on_doubt, rerank_candidates


def silent_input(y: Any, sr: Any) -> bool:
    """Whether a row's audio is silent (a valid clip whose peak is below the floor).

    >>> silent_input(np.zeros(100), 8000), silent_input(np.full(100, 0.1), 8000)
    (True, False)
    """
    try:
        y2d = audio.check_audio(y, sr)
    except errors.SamAudioError:
        return False  # invalid audio is the request's business: it says why
    return audio.is_silent(y2d)


def _silence(client, y: Any, sr: Any, description: str, params: dict[str, Any]) -> Separation:
    y2d = audio.check_audio(y, sr)
    each = check_channels(params.get("channels", client.channels)) == "each" and y2d.shape[0] > 1
    mix = y2d if each else audio.mix_to_mono(y2d)
    return Separation(
        target=np.zeros(mix.shape, np.float32),
        residual=mix.astype(np.float32),
        sr=int(sr),
        description=description,
        _verdict=audio.silent_verdict(),
    )


def separate(
    client,
    orig: tuple[Any, Any],
    description: str,
    params: dict[str, Any],
    *,
    budget: Budget | None = None,
    on_doubt: str = "keep",
    rerank_candidates: int = RERANK_CANDIDATES,
) -> Separation:
    """One row: silence for a silent input, else the call (and a rerank if asked for)."""
    y, sr = orig
    if silent_input(y, sr):
        return _silence(client, y, sr, description, params)
    res = client.separate(y, sr, description, budget=budget, **params)
    if on_doubt != "rerank" or not res.flag or res.verdict.code == "absent":
        return res  # a sound that is not in the clip is not found by asking again
    again = client.separate(
        y, sr, description, budget=budget, **{**params, "reranking_candidates": rerank_candidates}
    )
    best = again if again.quality > res.quality else res
    return dataclasses.replace(
        best,
        cost=res.cost + again.cost,
        seconds=res.seconds + again.seconds,
        cached=res.cached and again.cached,
        attempts=res.attempts + again.attempts,
        _verdict=best.verdict,
    )


def rerank_calls(
    client, y: Any, sr: Any, description: str, params: dict[str, Any], rerank_candidates: int
) -> int:
    """The most calls a rerank of this row may add: its calls with ``rerank_candidates``
    that are not cached (every row may turn out doubtful)."""
    est = client.estimate(
        [y], sr, description, **{**params, "reranking_candidates": rerank_candidates}
    )
    return est.calls
