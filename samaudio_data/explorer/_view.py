"""What the widget shows, as plain data: the row view, the queue table page, the media.

The browser code only lays these out; every text and number is formatted here (so headless
tests see exactly what people see), with 1-based row numbers throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._models import plural
from . import _format
from ._rows import LANES, RowMedia
from ._state import DECISIONS, ReviewState

#: keys handled by the kernel: key -> action (the browser learns this list from the widget's
#: ``shortcuts`` trait, so it is written only here)
KEYS = {
    "k": "keep",
    "d": "discard",
    "f": "flag",
    "u": "clear",
    "l": "next",
    "n": "next",
    "j": "prev",
    "p": "prev",
    "z": "undo",
    "ArrowRight": "next",
    "ArrowLeft": "prev",
}

#: every key the explorer understands while it has the focus, for the help line and README
KEY_MAP = [
    ("k", "keep"),
    ("d", "discard"),
    ("f", "flag"),
    ("u", "clear the decision"),
    ("z", "undo (also a bulk decision)"),
    ("l / n / →", "next row"),
    ("j / p / ←", "previous row"),
    ("space", "play / pause"),
    ("1 / 2 / 3", "original / isolated / residual"),
    ("↑ / ↓", "lane above / below"),
    ("Esc", "leave an input box"),
]


def position_text(state: ReviewState) -> str:
    """Where the row shown is in the queue, 1-based.

    >>> from datasets import Dataset
    >>> from samaudio_data.explorer._columns import Columns
    >>> st = ReviewState(5, Columns(Dataset.from_dict({"x": [1, 2, 3, 4, 5]}), ["x"]))
    >>> position_text(st)
    '1 of 5 in the queue'
    """
    q = len(state.queue)
    if state.in_queue():
        return f"{state.pos + 1} of {q} in the queue"
    return f"not in the queue ({plural(q, 'row')})"


def counts_text(counts: dict[str, int]) -> str:
    """``"3 keep · 1 discard · 0 flag · 28 undecided"``.

    >>> counts_text({"keep": 3, "discard": 1, "flag": 0, "undecided": 28})
    '3 keep · 1 discard · 0 flag · 28 undecided'
    """
    return " · ".join(f"{counts[k]} {k}" for k in DECISIONS + ("undecided",))


def spend_text(spend: dict[str, float]) -> str:
    """The one spend figure and what it is made of.

    >>> spend_text({"dataset": 1.24, "reisolations": 0.062, "total": 1.302})
    'spent $1.302 = dataset $1.240 + re-isolations $0.062'
    """
    return (
        f"spent {_format.money(spend['total'])} = dataset "
        f"{_format.money(spend['dataset'])} + re-isolations "
        f"{_format.money(spend['reisolations'])}"
    )


FLAG_MEANINGS = {
    "": "looks right",
    "absent": "the sound is not in the clip",
    "empty": "the answer is (near) silence",
    "unchanged": "the answer is the mix: nothing separated",
    "invented": "the answer holds sound the mix does not",
    "wrong_source": "the answer is another sound of the mix",
    "error": "the call failed",
}


def explain_flag(flag: str) -> str:
    """The quality triage's flag with its meaning.

    >>> explain_flag("invented:20.0-38.0s")
    'invented:20.0-38.0s (the answer holds sound the mix does not)'
    >>> explain_flag("")
    'looks right'
    """
    meaning = FLAG_MEANINGS.get(flag.split(":", 1)[0])
    if not flag:
        return FLAG_MEANINGS[""]
    return f"{flag} ({meaning})" if meaning else flag


def signals(state: ReviewState, row: int, names: list[str], isolated: str) -> list[dict]:
    """The row's values of ``names``; a re-isolated row also shows the dataset's value."""
    meta = state.reisolated.get(row)
    out = []
    for c in names:
        kind = state.columns.kind(c)
        shown = state.columns.text(row, c)
        if c == f"{isolated}_flag":  # the triage's reason, said in words
            shown = explain_flag(shown)
        before = _format.number(state.columns.original(c)[row], c, kind)
        out.append(
            {
                "name": _format.short_name(c, isolated),
                "column": c,
                "value": shown,
                "was": before if meta and before != shown else "",
            }
        )
    return out


def view_model(
    state: ReviewState,
    media: RowMedia | None,
    *,
    names: list[str],
    isolated: str,
    message: str,
    error: bool,
    quote: dict | None,
    bulk: dict | None,
    spend: dict[str, float],
    description: str,
    candidates: Any,
    can_reisolate: bool,
    stems: Sequence[str] = (),
    asked: str = "",
) -> dict[str, Any]:
    """Everything the widget shows about the row, except the table and the media
    (``stems``: the stems under review; ``asked``: what the row was isolated with)."""
    row = state.row
    meta = state.reisolated.get(row)
    lanes = []
    for lane in LANES:
        shown = media.lanes[lane] if media else {"note": "", "empty": True}
        lanes.append({"name": lane, "note": shown["note"], "empty": bool(shown["empty"])})
    info = ""
    if media is not None:
        info = f"{_format.duration(media.seconds)} · {media.sr} Hz · {media.channels} ch"
    if meta:
        how = "cached, free" if meta.get("cached") else _format.money(meta.get("call_cost", 0))
        info += (
            f" · re-isolated with {meta['description']!r} ({how}; this row's "
            f"re-isolations {_format.money(meta['cost'])})"
        )
    if asked:
        info += f" · {isolated} isolated as {asked!r}"
    counts = state.counts()
    return {
        "row": row,
        "number": row + 1,
        "n": state.n,
        "title": f"row {row + 1} of {state.n}",
        "position": position_text(state),
        "in_queue": state.in_queue(),
        "queue_length": len(state.queue),
        "decision": state.decisions.get(row) or "",
        "counts": counts,
        "counts_text": counts_text(counts),
        "spend": spend_text(spend),
        "info": info,
        "error": media.error if media else "",
        "seconds": media.seconds if media else 0.0,
        "lanes": lanes,
        "time_ticks": [list(t) for t in media.time_ticks] if media else [],
        "freq_ticks": [list(t) for t in media.freq_ticks] if media else [],
        "signals": signals(state, row, names, isolated),
        "message": message,
        "message_error": bool(error),
        "undo": state.can_undo or "",
        "bulk": bulk or {},
        "quote": quote or {},
        "description": description,
        "candidates": str(candidates),
        "can_reisolate": bool(can_reisolate),
        "stems": list(stems) or [isolated],
        "stem": isolated,
        "row_description": asked,
    }


def table_model(state: ReviewState, page: int, names: list[str], isolated: str) -> dict[str, Any]:
    """One page of the queue table with its header, sort and filter."""
    out = state.page(page, names)
    out["columns"] = [
        {"name": c, "short": _format.short_name(c, isolated), "kind": state.columns.kind(c)}
        for c in names
    ]
    out["numeric"] = [
        {"name": c, "short": _format.short_name(c, isolated)} for c in state.columns.numeric()
    ]
    out["has_text"] = bool(state.columns.textual())
    out["sort"] = {"column": state.sort[0] or "", "ascending": state.sort[1]}
    f = state.filter
    out["filter"] = {
        "column": f["column"] or "",
        "min": "" if f["min"] is None else f"{f['min']:g}",
        "max": "" if f["max"] is None else f"{f['max']:g}",
        "decision": f["decision"] or "",
        "text": f.get("text") or "",
    }
    out["filtered"] = any(v not in (None, "") for v in f.values())
    out["n"] = state.n
    return out


def media_model(media: RowMedia | None) -> dict[str, dict[str, bytes]]:
    """The binary parts (WAV, PNG) per lane, sent to the browser as buffers."""
    if media is None:
        return {}
    return {lane: {k: media.lanes[lane][k] for k in ("wav", "wave", "spec")} for lane in LANES}


def scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with ``redact`` applied to every string in it (the widget never holds the
    API key, even typed into a box).

    >>> scrub({"a": ["key sk-1"], "n": 1}, lambda s: s.replace("sk-1", "***"))
    {'a': ['key ***'], 'n': 1}
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, redact) for v in value]
    return value
