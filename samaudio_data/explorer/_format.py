"""How the explorer writes numbers, money, times and axis ticks: one format per kind of value.

Every figure in the explorer goes through these functions, so the same kind of value looks
the same everywhere: money always as ``$0.062``, decibels with one decimal, fractions with
three, yes/no for booleans, a dash for missing values, row numbers 1-based.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"


def money(value: float) -> str:
    """Dollars with three decimals (calls cost fractions of a cent).

    >>> money(0.062), money(1.5), money(0)
    ('$0.062', '$1.500', '$0.000')
    """
    return f"${float(value):.3f}"


def number(value: Any, column: str = "", kind: str = "float") -> str:
    """A cell value as text, by column kind: ``"int"``, ``"float"``, ``"bool"``, ``"text"``.

    Floats are formatted by what the column holds, the same for every row: ``*_db`` one
    decimal, ``*cost`` money, ``*seconds`` two decimals, anything else three decimals (never
    scientific notation).

    >>> number(-41.4213, "isolated_target_db"), number(-0.000849, "isolated_clipped_fraction")
    ('-41.4', '-0.001')
    >>> number(0.0, "isolated_clipped_fraction"), number(0.062, "isolated_cost")
    ('0.000', '$0.062')
    >>> number(1.0, "isolated_present", "bool"), number(7.0, "id", "int")
    ('yes', '7')
    >>> number(float("nan")), number(None), number("a.wav", kind="text")
    ('–', '–', 'a.wav')
    """
    if value is None:
        return MISSING
    if kind == "text":
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return MISSING
    if kind == "bool":
        return "yes" if v else "no"
    if kind == "int" and abs(v) < 1e15:
        return str(int(v))
    name = column.lower()
    if name.endswith("cost"):
        return money(v)
    if name.endswith("_db") or name == "db":
        out = f"{v:.1f}"
    elif name.endswith("seconds"):
        out = f"{v:.2f}"
    else:
        out = f"{v:.3f}"
    return out[1:] if out.startswith("-") and not out.strip("-0.") else out


def short_name(column: str, prefix: str) -> str:
    """A column name without the isolated column's prefix, for headers.

    >>> short_name("isolated_target_db", "isolated"), short_name("text", "isolated")
    ('target_db', 'text')
    """
    return column[len(prefix) + 1 :] if column.startswith(prefix + "_") else column


def duration(seconds: float) -> str:
    """A clip length: ``"2.50 s"`` or ``"1:02.5"`` from a minute on.

    >>> duration(2.5), duration(62.5)
    ('2.50 s', '1:02.5')
    """
    if seconds < 60:
        return f"{seconds:.2f} s"
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def time_ticks(seconds: float, count: int = 6) -> list[tuple[float, str]]:
    """About ``count`` round time ticks ``(fraction of the width, label)`` for a clip.

    >>> time_ticks(1.0)
    [(0.0, '0.0'), (0.2, '0.2'), (0.4, '0.4'), (0.6, '0.6'), (0.8, '0.8'), (1.0, '1.0 s')]
    """
    if not seconds > 0:
        return [(0.0, "0")]
    step = _nice_step(seconds, count)
    digits = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
    out = []
    for i in range(int(math.floor(seconds / step + 1e-9)) + 1):
        t = i * step
        label = f"{t:.{digits}f}"
        out.append((round(t / seconds, 6), label))
    out[-1] = (out[-1][0], out[-1][1] + " s")
    return out


def freq_ticks(sr: int, fmin: float) -> list[tuple[float, str]]:
    """Frequency ticks ``(fraction of the height from the bottom, label)`` for the
    log-frequency spectrogram that spans ``fmin`` .. ``sr / 2``.

    >>> freq_ticks(16000, 40.0)
    [(0.173, '100'), (0.38, '300'), (0.608, '1k'), (0.815, '3k')]
    """
    top = sr / 2.0
    span = math.log(top / fmin)
    out = []
    for f in (100, 300, 1000, 3000, 10000, 30000):
        if fmin < f < top * 0.95:
            label = f"{f // 1000}k" if f >= 1000 else str(f)
            out.append((round(math.log(f / fmin) / span, 3), label))
    return out


def row_label(row: int) -> str:
    """The 1-based number the explorer shows for dataset index ``row``.

    >>> row_label(0)
    '1'
    """
    return str(int(row) + 1)
