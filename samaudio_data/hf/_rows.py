"""The output row of a map: the columns :func:`~samaudio_data.hf.isolate` adds per stem.

Columns added (``output_column="isolated"``):

=============================  ==================================================================
``isolated``                   the kept audio (``keep``), ``{"bytes": float WAV, "path": None}``
                               at the row's rate and length; ``.cast_column("isolated", Audio())``
``isolated_residual``          with ``keep="both"``: everything else
``isolated_cost``              dollars paid for this row (0.0 when it came from the cache)
``isolated_seconds``           time spent on the endpoint for this row
``isolated_cached``            whether the answer came from the cache
``isolated_error``             ``""``, or why the row failed (with ``on_error`` other than raise)
``isolated_description``       the description this row was sent with (see below)
``isolated_<signal>``          cleaning signals: see :mod:`samaudio_data.audio`
``isolated_flag``              ``""`` when the isolation looks right, else why not (``empty``,
                               ``absent``, ``invented``, ``wrong_source``, ``unchanged``,
                               ``error``; see :mod:`samaudio_data.audio._quality`)
``isolated_quality``           in [0, 1], 0.5 at a threshold: sort by it to review the worst first
=============================  ==================================================================

A failed row (``on_error="skip"``) gets silence of its own length and rate (one sample at
16 kHz when the input itself is missing), ``NaN`` signals and its ``_error``; never ``None``,
so column types never depend on which rows fail first and every row stays decodable. With
``"keep_original"`` it gets the original audio. Filter failures out with
``ds.filter(lambda r: not r["isolated_error"])``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import errors
from .._models import Separation
from ..audio import SIGNAL_NAMES, check_sample_rate, cleaning_signals
from ._prompts import Stem
from ._values import encode_value


def output_row(
    stem: Stem,
    description: str,
    res: Any,
    orig,
    *,
    on_doubt: str,
    on_error: str,
    redact: Callable[[str], str],
) -> dict[str, Any]:
    """One stem's columns for one row: from its :class:`Separation`, or from the error that
    stopped it (silence or the original audio, ``NaN`` signals, the error's text)."""
    out = stem.output_column
    row: dict[str, Any] = {}
    if isinstance(res, Separation):
        kept = res.residual if stem.keep == "residual" else res.target
        if on_doubt == "skip" and res.flag:  # nothing doubtful reaches the column
            kept = np.zeros_like(kept)
        row[out] = encode_value(kept, res.sr)
        if stem.keep == "both":
            row[f"{out}_residual"] = encode_value(res.residual, res.sr)
        row.update({f"{out}_flag": res.flag, f"{out}_quality": res.quality})
        sig = cleaning_signals(res.target + res.residual, res.target, res.residual, res.sr)
        row.update(
            {
                f"{out}_cost": res.cost,
                f"{out}_seconds": res.seconds,
                f"{out}_cached": res.cached,
                f"{out}_error": "",
            }
        )
    else:
        try:  # a failed row keeps its length and rate when they are usable
            sr = check_sample_rate(orig[1]) if orig else 16000
        except errors.InvalidAudioError:
            sr, orig = 16000, None
        silence = encode_value(np.zeros(np.shape(orig[0])[-1] if orig else 1, np.float32), sr)
        keep_original = on_error == "keep_original" and orig is not None
        row[out] = encode_value(*orig) if keep_original else silence
        if stem.keep == "both":
            row[f"{out}_residual"] = silence
        sig = {s: (False if s == "present" else math.nan) for s in SIGNAL_NAMES}
        row.update(
            {
                f"{out}_cost": 0.0,
                f"{out}_seconds": 0.0,
                f"{out}_cached": False,
                f"{out}_error": f"{type(res).__name__}: {res}",
                f"{out}_flag": "error",
                f"{out}_quality": 0.0,
            }
        )
    # as sent; a description the client refused for holding its key never gets written
    row[f"{out}_description"] = redact(description)
    row.update({f"{out}_{s}": sig[s] for s in SIGNAL_NAMES})
    return row
