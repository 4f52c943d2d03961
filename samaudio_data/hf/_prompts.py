"""What a map asks for each row: a description (and options) from the row, one or more stems.

A setting of :func:`~samaudio_data.isolate` may differ per row. :class:`RowValue` holds one:

- a **constant** (``"speech"``, ``4``): checked once, the same for every row;
- a **template**, a string with ``{column}`` fields (``"{label}"``, ``"a {instrument}
  playing"``), filled from each row as ``str.format`` does (``{{`` and ``}}`` are literal
  braces; ``{meta[kind]}`` reads a key of a dict column);
- a **callable** ``fn(row) -> value`` for anything else (``row`` maps column names to the
  row's values, read when asked for).

:class:`Prompts` is a map's whole request plan: one :class:`Stem` per output column (a dict
``{"voice": "speech", "bgm": "background music"}`` gives two, each a constant, template or
callable, each with its own ``keep``), plus ``reranking_candidates`` / ``output_format``,
which may also come from the row. :meth:`Prompts.resolve` turns a row into one
``(description, params)`` per stem, checked as the client would check them, or the
:class:`~samaudio_data.errors.InvalidRequestError` naming the row and the column that made it
unusable; nothing is sent for such a row. :meth:`Prompts.check_columns` refuses, before
anything is sent, a template naming a column the dataset does not have.

Example
-------
>>> p = Prompts({"voice": "{label}", "bgm": "background music"}, output_column="isolated",
...             keep="target", params={"reranking_candidates": "{cands}"})
>>> p.columns, [s.output_column for s in p.stems]
(['label', 'cands'], ['voice', 'bgm'])
>>> p.resolve({"label": "dog barking", "cands": 2}, "row 0")
[('dog barking', {'reranking_candidates': 2}), ('background music', {'reranking_candidates': 2})]
>>> p.resolve({"label": "", "cands": 2}, "row 7")[0].message
"row 7, stem 'voice': description '{label}' is empty (column 'label' is '')."
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import _settings, errors
from .._settings import check_description, check_params
from ..audio import SIGNAL_NAMES

KEEP = ("target", "residual", "both")
ROW_OPTIONS = ("output_format", "reranking_candidates")
Request = tuple[str, dict[str, Any]]


def template_columns(text: str) -> list[str] | None:
    """The columns a template's fields name, in order; None when ``text`` has no field.

    >>> template_columns("a {instrument} playing"), template_columns("speech")
    (['instrument'], None)
    >>> template_columns("{meta[kind]} in {{braces}}")
    ['meta']
    """
    if "{" not in text and "}" not in text:
        return None
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise errors.InvalidRequestError(
            f"cannot read the template {text!r}: {exc}. Name a column in braces, "
            "e.g. '{label}', and write {{ and }} for a literal brace."
        ) from None
    columns: list[str] = []
    for _, field, _, _ in parts:
        if field is None:
            continue
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not name or name.isdigit():
            raise errors.InvalidRequestError(
                f"the template {text!r} has a field without a column name ({{{field}}}); "
                "name a column, e.g. '{label}' (write {{ and }} for literal braces)."
            )
        if name not in columns:
            columns.append(name)
    return columns or None


class RowValue:
    """One setting that may come from the row: a constant, a ``{column}`` template or a
    callable ``fn(row)``; ``check`` validates the value (once for a constant).

    >>> RowValue("description", "a {instrument} playing", check_description).get(
    ...     {"instrument": "cello"}, "row 0")
    'a cello playing'
    >>> RowValue("description", "speech", check_description).constant
    True
    """

    def __init__(self, name: str, spec: Any, check: Callable[[Any], Any]) -> None:
        self.name, self.spec, self._check = name, spec, check
        self.columns: list[str] = []
        if callable(spec):
            self.kind = "callable"
        elif isinstance(spec, str) and template_columns(spec) is not None:
            self.kind, self.columns = "template", template_columns(spec) or []
        else:
            self.kind = "constant"
            self.value = check(spec.format() if isinstance(spec, str) and "{" in spec else spec)

    @property
    def constant(self) -> bool:
        """Whether every row gets the same value."""
        return self.kind == "constant"

    def __repr__(self) -> str:
        return (
            repr(self.spec)
            if self.kind != "callable"
            else getattr(self.spec, "__name__", "<callable>")
        )

    def get(self, row: Mapping, where: str) -> Any:
        """The checked value for ``row``; an InvalidRequestError naming ``where`` (the row,
        or "" when the caller names it) and the column otherwise."""
        where = f"{where}: " if where else ""
        if self.kind == "constant":
            return self.value
        if self.kind == "callable":
            try:
                raw = self.spec(row)
            except errors.SamAudioError as exc:
                raise errors.InvalidRequestError(f"{where}{exc.message}") from exc
            except Exception as exc:  # noqa: BLE001 - the user's function, reported per row
                raise errors.InvalidRequestError(
                    f"{where}the {self.name} function {self!r} raised {type(exc).__name__}: {exc}"
                ) from exc
            return self._checked(raw, where, "its function's result")
        values = {}
        for col in self.columns:
            try:
                values[col] = row[col]
            except KeyError:
                raise errors.InvalidRequestError(
                    f"{where}the {self.name} {self.spec!r} names the column {col!r}, which "
                    "this row does not have."
                ) from None
            if values[col] is None:
                raise errors.InvalidRequestError(
                    f"{where}{self.name} {self.spec!r} has no value: column {col!r} is "
                    "missing (None)."
                )
        try:
            text = self.spec.format(**values)
        except Exception as exc:  # noqa: BLE001 - a field the row's value does not have
            raise errors.InvalidRequestError(
                f"{where}cannot fill {self.name} {self.spec!r} from columns "
                f"{self.columns}: {type(exc).__name__}: {exc}"
            ) from exc
        cols = ", ".join(f"column {c!r} is {_short(values[c])}" for c in self.columns)
        return self._checked(text, where, cols)

    def _checked(self, value: Any, where: str, source: str) -> Any:
        if self.name == "description":
            if isinstance(value, str) and not value.strip():
                raise errors.InvalidRequestError(
                    f"{where}description {self!r} is empty ({source})."
                )
            if isinstance(value, str) and not re.search(r"[^\W\d_]", value):
                raise errors.InvalidRequestError(
                    f"{where}description {self!r} gives {_short(value)}, which names no sound "
                    f"({source}). A ClassLabel column holds numbers: take the names with "
                    "isolate(lambda row: names[row['label']]), names = "
                    "ds.features['label'].names."
                )
        elif isinstance(value, str) and self.name == "reranking_candidates":
            value = int(value) if value.strip().isdigit() else value
        try:
            return self._check(value)
        except errors.InvalidRequestError as exc:
            raise errors.InvalidRequestError(f"{where}{exc.message} ({source})") from exc


def _short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Stem:
    """One sound asked of every row: its output column, description and what is kept."""

    output_column: str
    description: RowValue
    keep: str

    @property
    def audio_columns(self) -> list[str]:
        """The audio columns this stem adds."""
        out = self.output_column
        return [out] + ([f"{out}_residual"] if self.keep == "both" else [])

    @property
    def columns(self) -> list[str]:
        """Every column this stem adds to a map's rows (see :mod:`samaudio_data.hf._rows`)."""
        out = self.output_column
        own = ("cost", "seconds", "cached", "error", "description")
        return (
            self.audio_columns
            + [f"{out}_{k}" for k in own]
            + [f"{out}_{s}" for s in SIGNAL_NAMES]
            + [f"{out}_flag", f"{out}_quality"]
        )


def _check_one_param(name: str) -> Callable[[Any], Any]:
    return lambda value: check_params(**{name: value})[name]


class Prompts:
    """A map's request plan: stems (each a description and a ``keep``) and the per-row
    options; see the module docstring."""

    def __init__(
        self,
        description: Any,
        *,
        output_column: str,
        keep: str | dict[str, str],
        params: dict[str, Any],
    ) -> None:
        if isinstance(description, Mapping):
            if not description:
                raise errors.InvalidRequestError(
                    "isolate({...}) needs at least one stem: {'voice': 'speech', ...}."
                )
            if output_column != "isolated":
                raise errors.InvalidRequestError(
                    "with several stems the dict's keys name the output columns; drop "
                    "output_column=."
                )
            specs = dict(description)
        else:
            specs = {output_column: description}
        for out in specs:
            if not isinstance(out, str) or not out:
                raise errors.InvalidRequestError(
                    f"an output column name must be a non-empty string, got {out!r}."
                )
        keeps = dict(keep) if isinstance(keep, Mapping) else {out: keep for out in specs}
        unknown = sorted(set(keeps) - set(specs))
        if unknown:
            raise errors.InvalidRequestError(
                f"keep names stems that do not exist: {unknown}; the stems are {list(specs)}."
            )
        self.stems: list[Stem] = []
        for out, spec in specs.items():
            k = keeps.get(out, "target")
            _settings.check_choice("keep", k, KEEP)
            self.stems.append(Stem(out, RowValue("description", spec, check_description), k))
        self.options = {
            name: RowValue(name, params[name], _check_one_param(name))
            for name in ROW_OPTIONS
            if name in params
        }
        self.fixed = {k: v for k, v in params.items() if k not in ROW_OPTIONS}
        check_params(**{k: v for k, v in self.fixed.items() if k != "channels"})
        constants = [
            (s.description.value, s.output_column) for s in self.stems if s.description.constant
        ]
        seen: dict[str, str] = {}
        for text, out in constants:
            if text in seen:
                raise errors.InvalidRequestError(
                    f"stems {seen[text]!r} and {out!r} both ask for {text!r}: that would pay "
                    "twice for the same answer; keep one (keep='both' adds the residual)."
                )
            seen[text] = out
        names = [c for s in self.stems for c in s.audio_columns]
        if len(set(names)) != len(names):
            raise errors.InvalidRequestError(f"the stems' output columns collide: {names}.")

    @property
    def values(self) -> list[RowValue]:
        """Every setting that may come from the row."""
        return [s.description for s in self.stems] + list(self.options.values())

    @property
    def columns(self) -> list[str]:
        """The columns the templates read (callables may read any)."""
        return list(dict.fromkeys(c for v in self.values for c in v.columns))

    @property
    def needs_whole_row(self) -> bool:
        """Whether a callable reads the row (so every column must be at hand)."""
        return any(v.kind == "callable" for v in self.values)

    @property
    def per_row(self) -> bool:
        """Whether anything asked depends on the row."""
        return not all(v.constant for v in self.values)

    def check_columns(self, available: Sequence[str]) -> None:
        """Refuse a template naming a column that is not in ``available``; sends nothing.

        >>> Prompts("{lable}", output_column="isolated", keep="target", params={}
        ...         ).check_columns(["audio", "label"])
        Traceback (most recent call last):
        ...
        samaudio_data.errors.InvalidRequestError: the description '{lable}' names the column
        'lable', which the dataset does not have (it has ['audio', 'label']). Nothing was sent.
        """
        have = set(available)
        for v in self.values:
            for col in v.columns:
                if col not in have:
                    raise errors.InvalidRequestError(
                        f"the {v.name} {v.spec!r} names the column {col!r}, which the dataset "
                        f"does not have (it has {list(available)}). Nothing was sent."
                    )

    def resolve(self, row: Mapping, where: str) -> list[Request | errors.InvalidRequestError]:
        """One ``(description, params)`` per stem for ``row``, or the error that makes the
        stem's request unusable (named by ``where``, the row, and the column)."""
        try:
            params = {**self.fixed, **{n: v.get(row, where) for n, v in self.options.items()}}
        except errors.InvalidRequestError as exc:
            return [exc] * len(self.stems)
        out: list[Request | errors.InvalidRequestError] = []
        for s in self.stems:
            here = where
            if len(self.stems) > 1:
                here = (
                    f"{where}, stem {s.output_column!r}" if where else f"stem {s.output_column!r}"
                )
            try:
                out.append((s.description.get(row, here), params))
            except errors.InvalidRequestError as exc:
                out.append(exc)
        return out

    def describe(self) -> str:
        """A short text for progress bars and messages.

        >>> Prompts({"voice": "speech", "bgm": "{genre} music"}, output_column="isolated",
        ...         keep="target", params={}).describe()
        "voice='speech', bgm='{genre} music'"
        """
        if len(self.stems) == 1:
            return repr(self.stems[0].description)
        return ", ".join(f"{s.output_column}={s.description!r}" for s in self.stems)


class BatchRow(Mapping):
    """Row ``i`` of a ``map`` batch (``i=None``: an unbatched row) as a read-only mapping;
    columns are read when asked for, so a description never decodes audio it does not use.

    >>> row = BatchRow({"label": ["dog", "cat"], "audio": [None, None]}, 1)
    >>> row["label"], sorted(row)
    ('cat', ['audio', 'label'])
    """

    def __init__(self, examples: Any, i: int | None) -> None:
        self._examples, self._i = examples, i

    def __getitem__(self, key: str) -> Any:
        value = self._examples[key]
        return value if self._i is None else value[self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._examples.keys())

    def __len__(self) -> int:
        return len(self._examples.keys())

    def __repr__(self) -> str:
        return f"BatchRow(columns={list(self)})"


def row_names(n: int, batched: bool, indices: Any) -> list[str]:
    """How messages name the rows of a map's batch: dataset indices with ``with_indices=True``.

    >>> row_names(2, True, [10, 11]), row_names(1, False, None)
    (['row 10', 'row 11'], ['this row'])
    """
    idx = (
        list(indices)
        if batched and isinstance(indices, (list, tuple, range))
        else [indices]
        if not batched and isinstance(indices, int)
        else None
    )
    if idx is not None and len(idx) == n:
        return [f"row {j}" for j in idx]
    if not batched:
        return ["this row"]
    return [
        f"row {i} of this batch (map with with_indices=True for dataset row numbers)"
        for i in range(n)
    ]
