"""The explorer: review isolated audio in a notebook and decide what to keep.

:class:`Explorer` shows one row of a Hugging Face ``Dataset`` at a time: players for the
original, the isolated sound and the residual (everything else), their waveforms and
spectrograms, the row's cleaning signals and cost. You mark each row *keep*, *discard* or
*flag* (needs a second look), with buttons or the keyboard, walk a queue that you can sort and
filter by any numeric column, re-isolate a row with another description (after seeing the
price), and finally :meth:`Explorer.apply` the decisions to the dataset.

It uses standard ``ipywidgets`` only, so it works in JupyterLab and the classic Notebook.

Keyboard
--------
Click the box labelled "keys" (it says "click here, then press a key"), then press:

====  ===========================================
k     keep this row
d     discard this row
f     flag this row (needs a second look)
u     clear this row's decision
l, n  next row in the queue
j, p  previous row in the queue
====  ===========================================

After k/d/f the explorer moves to the next row (``auto_advance=True``). Browsers give a
widget no key events outside a focused input without extra packages, so the shortcuts work
while that box has the focus; it keeps the focus while you review.

Laziness
--------
Nothing is decoded or drawn at construction except the numeric columns (read through Arrow,
no audio) used for sorting, filtering and the spend. A row's audio is read only when the row
is shown, and the last few rows shown are kept for quick back-and-forth.

Sessions
--------
With ``session="review.json"`` every decision (and the metadata of every re-isolation) is
written atomically to that file on each change; a new ``Explorer`` with the same file resumes
where you stopped, after a kernel restart too. The file holds no API key. The audio of a
re-isolation is not in the file: it is taken back from the client's result cache (free), so
pass a ``client`` with the same ``cache_dir`` when resuming.

Example
-------
>>> from samaudio_data.explorer import Explorer
>>> ex = Explorer(ds, isolated="isolated", session="review.json")  # doctest: +SKIP
>>> ex                                      # shows the widget in a notebook  # doctest: +SKIP
>>> ex.decisions                                                         # doctest: +SKIP
{0: 'keep', 1: 'discard'}
>>> clean = ex.apply(ds)                    # drops discarded (and flagged) rows  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import html
import json
import math
import os
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import audio, errors
from ..hf import encode_value, read_value
from ..audio import SIGNAL_NAMES, cleaning_signals

DECISIONS = ("keep", "discard", "flag")
KEYS = {"k": "keep", "d": "discard", "f": "flag", "u": "clear",
        "l": "next", "n": "next", "j": "prev", "p": "prev"}
KEY_HELP = "k keep · d discard · f flag · u clear · l/n next · j/p previous"
SESSION_VERSION = 1
_LANES = ("original", "isolated", "residual")
_LANE_COLOURS = {"original": (90, 90, 90), "isolated": (31, 119, 180), "residual": (214, 110, 20)}
_DECISION_COLOURS = {"keep": "#1a7f37", "discard": "#c62828", "flag": "#b26a00", None: "#666"}


class ExplorerError(errors.SamAudioError, ValueError):
    """The explorer cannot do what was asked (bad column, session file, missing client...).

    The message says what went wrong and what to do; nothing was spent.
    """


# --- small PNG renderer (numpy + zlib: no matplotlib, a few ms per image) -------------------

def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(height, width, 3)`` uint8 array as PNG bytes.

    >>> png_bytes(np.zeros((2, 3, 3), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 3)) + chunk(b"IEND", b""))


def _colormap() -> np.ndarray:
    # a perceptual dark-to-bright map (magma-like), 256 entries
    anchors = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99),
                        (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 253, 191)], float)
    x = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1).astype(np.uint8)


_CMAP = _colormap()


def waveform_png(y: Optional[np.ndarray], scale: float, width: int, height: int,
                 colour: Tuple[int, int, int]) -> bytes:
    """Min/max envelope of mono ``y`` (one column per pixel), scaled so ``scale`` fills it.

    >>> waveform_png(np.sin(np.arange(8000) / 9), 1.0, 300, 56, (31, 119, 180))[:4]
    b'\x89PNG'
    """
    img = np.full((height, width, 3), 250, np.uint8)
    mid = height // 2
    img[mid, :] = (210, 210, 210)
    if y is None or y.size == 0:
        return png_bytes(img)
    n = y.shape[-1]
    if n >= width:
        edges = np.linspace(0, n, width + 1).astype(np.int64)[:-1]
        hi = np.maximum.reduceat(y, edges)
        lo = np.minimum.reduceat(y, edges)
    else:
        idx = np.minimum((np.arange(width) * n) // width, n - 1)
        hi = lo = y[idx]
    s = max(float(scale), 1e-9)
    half = (height - 1) / 2.0
    top = np.clip(np.round(half - np.clip(hi / s, -1, 1) * half), 0, height - 1)
    bot = np.clip(np.round(half - np.clip(lo / s, -1, 1) * half), 0, height - 1)
    rows = np.arange(height)[:, None]
    mask = (rows >= top[None, :]) & (rows <= bot[None, :])
    img[mask] = colour
    return png_bytes(img)


def _power_frames(y: np.ndarray, sr: int, width: int) -> np.ndarray:
    nfft = 512 if sr <= 24000 else 1024
    if y.shape[-1] < nfft:
        y = np.pad(y, (0, nfft - y.shape[-1]))
    starts = np.linspace(0, y.shape[-1] - nfft, width).astype(np.int64)
    frames = y[starts[:, None] + np.arange(nfft)[None, :]] * np.hanning(nfft)[None, :]
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2          # (width, nfft/2+1)


def spectrogram_png(y: Optional[np.ndarray], sr: int, ref_power: float, width: int,
                    height: int, dynamic_db: float = 70.0) -> bytes:
    """Spectrogram of mono ``y``: ``width`` frames, ``height`` rows of log-spaced frequency
    (about 40 Hz at the bottom to ``sr/2`` at the top), dB relative to ``ref_power`` so lanes
    drawn with the same reference compare.

    >>> spectrogram_png(np.random.default_rng(0).standard_normal(16000), 16000, 100.0,
    ...                 300, 56)[:4]
    b'\x89PNG'
    """
    if y is None or y.size == 0:
        return png_bytes(np.zeros((height, width, 3), np.uint8) + _CMAP[0])
    p = _power_frames(np.asarray(y, np.float64), sr, width)
    bins = p.shape[1]
    nfft = 2 * (bins - 1)
    f = np.geomspace(40.0, sr / 2.0, height + 1) * nfft / sr
    lo = np.clip(np.floor(f[:-1]).astype(np.int64), 0, bins - 1)
    hi = np.clip(np.maximum(lo + 1, np.ceil(f[1:]).astype(np.int64)), 1, bins)
    cs = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p, axis=1)], axis=1)
    pooled = (cs[:, hi] - cs[:, lo]) / (hi - lo)
    db = 10 * np.log10(np.maximum(pooled, 1e-20) / max(ref_power, 1e-20))
    level = np.clip((db + dynamic_db) / dynamic_db, 0, 1)
    img = _CMAP[(level * 255).astype(np.uint8)]                # (width, height, 3)
    return png_bytes(img.transpose(1, 0, 2)[::-1])


# --- row data --------------------------------------------------------------------------------

@dataclasses.dataclass
class _RowData:
    original: np.ndarray                  # float32 (channels, n)
    sr: int
    target: Optional[np.ndarray]          # mono (n,) aligned to original, or None
    residual: Optional[np.ndarray]        # mono (n,), or None
    notes: Dict[str, str]
    error: str = ""


@dataclasses.dataclass
class _RowView:
    wav: Dict[str, bytes]
    wave: Dict[str, bytes]
    spec: Dict[str, bytes]
    notes: Dict[str, str]
    seconds: float
    sr: int
    channels: int
    error: str


@dataclasses.dataclass
class Quote:
    """The price of one re-isolation, shown before anything is spent.

    ``price`` is in dollars (0.0 when the answer is already cached); ``calls`` is how many
    billed requests it takes.

    >>> print(Quote(row=3, description="dog barking", reranking_candidates=4, calls=1,
    ...             cached=False, price=0.062))
    row 3: isolate 'dog barking' with 4 candidate(s) costs $0.062 (1 billed call(s)).
    """

    row: int
    description: str
    reranking_candidates: int
    calls: int
    cached: bool
    price: float

    def __str__(self) -> str:
        what = (f"row {self.row}: isolate {self.description!r} with "
                f"{self.reranking_candidates} candidate(s)")
        if self.cached:
            return f"{what} is already cached: free."
        return f"{what} costs ${self.price:.3f} ({self.calls} billed call(s))."


def _to_mono(y: np.ndarray) -> np.ndarray:
    return y.mean(axis=0) if y.ndim == 2 else y


def _player_wav(y: Optional[np.ndarray], sr: int) -> bytes:
    if y is None:
        return b""
    return audio.encode_wav(np.clip(np.nan_to_num(y), -1.0, 1.0), sr, subtype="PCM_16")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if math.isnan(v):
        return "–"
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 0.01 else f"{v:.2f}"


def _parse_float(text: str) -> Optional[float]:
    try:
        return float(text) if str(text).strip() else None
    except ValueError:
        return math.nan


def _read_aligned(value: Any, sr: int, n: int) -> np.ndarray:
    """An audio value as mono at ``sr`` with ``n`` samples (raises SamAudioError if none)."""
    y, vsr = read_value(value)  # empty or undecodable bytes raise InvalidAudioError
    if y.size == 0:
        raise errors.InvalidAudioError("empty audio")
    return audio.fit_answer(y, vsr, sr=sr, n=n)


def _decodable(feature: Any) -> bool:
    return hasattr(feature, "decode_example") and hasattr(feature, "decode")


# --- the explorer ----------------------------------------------------------------------------

class Explorer:
    """Review isolated audio row by row and decide what to keep.

    Parameters
    ----------
    ds : datasets.Dataset
        A map-style dataset (random access). Only the numeric columns are read at
        construction; audio is read when a row is shown.
    original, isolated : str
        The audio columns of the mix and of the isolated sound. Values may be decoded
        ``Audio()`` values, ``{"bytes", "path"}`` or ``{"array", "sampling_rate"}`` dicts.
    residual : str, optional
        The column holding everything else. Default: ``<isolated>_residual`` if the dataset
        has it, else the residual is computed as original (mono) minus isolated, aligned to
        the original's rate and length.
    metrics : list of str, optional
        Numeric columns to show, sort and filter by. Default: every numeric or boolean column,
        the ``<isolated>_*`` signals first.
    client : samaudio_data.Client, optional
        Needed to re-isolate rows (and to take back, from its cache, the audio of rows
        re-isolated in an earlier session). Its API key is never shown, saved or put in any
        widget.
    session : path, optional
        JSON file where decisions and re-isolation metadata are saved atomically on every
        change; resumed if it exists.
    description : str, optional
        Initial description in the re-isolation box, e.g. the one the dataset was made with.
    cost_column : str, optional
        Dollars paid per row; default ``<isolated>_cost`` if present.
    auto_advance : bool
        Move to the next row after a keep/discard/flag decision.
    image_width, image_height : int
        Size in pixels of each waveform and spectrogram image.

    Example
    -------
    >>> ex = Explorer(ds, original="audio", isolated="isolated", client=client,
    ...               session="review.json")                        # doctest: +SKIP
    >>> ex                                  # the widget, in JupyterLab or Notebook # doctest: +SKIP
    """

    def __init__(self, ds, original: str = "audio", isolated: str = "isolated", *,
                 residual: Optional[str] = None, metrics: Optional[Sequence[str]] = None,
                 client=None, session: Union[str, os.PathLike, None] = None,
                 description: Optional[str] = None, cost_column: Optional[str] = None,
                 auto_advance: bool = True, image_width: int = 300,
                 image_height: int = 56, cache_rows: int = 6) -> None:
        if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")
                and hasattr(ds, "column_names")):
            raise ExplorerError(
                f"Explorer needs a map-style datasets.Dataset (random access), got "
                f"{type(ds).__name__}. Pick a split (ds['train']) or load without streaming.")
        if isinstance(ds.column_names, dict):
            raise ExplorerError(
                "Explorer got a DatasetDict; pass one split, e.g. Explorer(ds['train']).")
        columns = list(ds.column_names)
        for what, name in (("original", original), ("isolated", isolated)):
            if name not in columns:
                raise ExplorerError(
                    f"the dataset has no {what} column {name!r} (it has {columns}); "
                    f"pass {what}='<column name>'.")
        if residual is None and f"{isolated}_residual" in columns:
            residual = f"{isolated}_residual"
        if residual is not None and residual not in columns:
            raise ExplorerError(
                f"the dataset has no residual column {residual!r} (it has {columns}); pass "
                "residual=None to compute it as original minus isolated.")
        self._n = len(ds)
        if self._n == 0:
            raise ExplorerError("the dataset is empty: there is nothing to review.")
        self._ds = ds
        self.original, self.isolated, self.residual = original, isolated, residual
        self._client = client
        self.auto_advance = bool(auto_advance)
        self._iw, self._ih = int(image_width), int(image_height)
        self._default_description = description or ""
        self._error_column = f"{isolated}_error" if f"{isolated}_error" in columns else None

        numeric = self._numeric_columns(ds)
        self._bool_columns = set(self._numeric_columns(ds, bool_only=True))
        if metrics is None:
            own = [f"{isolated}_{s}" for s in SIGNAL_NAMES] + [
                f"{isolated}_{k}" for k in ("cost", "seconds", "cached")]
            metrics = [c for c in own if c in numeric] + [c for c in numeric if c not in own]
        else:
            metrics = list(metrics)
            for m in metrics:
                if m not in columns:
                    raise ExplorerError(f"metric column {m!r} is not in the dataset ({columns}).")
                if m not in numeric:
                    raise ExplorerError(
                        f"metric column {m!r} is not numeric or boolean; metrics are for sorting "
                        f"and filtering. Numeric columns: {numeric}.")
        self.metrics: List[str] = metrics
        if cost_column is None and f"{isolated}_cost" in numeric:
            cost_column = f"{isolated}_cost"
        if cost_column is not None and cost_column not in numeric:
            raise ExplorerError(f"cost_column {cost_column!r} is not a numeric column.")
        self.cost_column = cost_column
        wanted = list(dict.fromkeys(self.metrics + ([cost_column] if cost_column else [])))
        self._values: Dict[str, np.ndarray] = self._read_numeric(ds, wanted)
        self._dataset_values = {k: v.copy() for k, v in self._values.items()}

        # row access: only the columns we show, audio left undecoded (we decode it ourselves)
        cols = [original, isolated] + ([residual] if residual else []) + (
            [self._error_column] if self._error_column else [])
        rows = ds.select_columns(list(dict.fromkeys(cols))) \
            if hasattr(ds, "select_columns") else ds
        feats = getattr(rows, "features", None) or {}
        for c in cols:
            f = feats.get(c) if hasattr(feats, "get") else None
            if _decodable(f) and getattr(f, "decode", False) and hasattr(rows, "cast_column"):
                rows = rows.cast_column(c, dataclasses.replace(f, decode=False))
        self._rows = rows

        self._decisions: Dict[int, str] = {}
        self._reiso: Dict[int, dict] = {}
        self._reiso_audio: Dict[int, Dict[str, Any]] = {}
        self._sort: Tuple[Optional[str], bool] = (None, True)
        self._filter: Dict[str, Any] = {"column": None, "min": None, "max": None,
                                        "decision": None}
        self._queue = np.arange(self._n)
        self._pos = 0
        self._row = 0
        self._quote: Optional[Quote] = None
        self._quote_job = None
        self._cache: "collections.OrderedDict[int, Tuple[_RowData, _RowView]]" = \
            collections.OrderedDict()
        self._cache_rows = max(1, int(cache_rows))
        self._message, self._message_error = "", False
        self._ui = None
        self._rendered_row: Optional[int] = None
        self._syncing = False

        self.session = Path(session).expanduser() if session else None
        if self.session is not None and self.session.exists():
            self._resume(self.session)
        elif self.session is not None:
            self.save()

    # --- reading columns -------------------------------------------------------------------

    @staticmethod
    def _numeric_columns(ds, bool_only: bool = False) -> List[str]:
        import pyarrow as pa

        out = []
        for name, f in (getattr(ds, "features", None) or {}).items():
            t = getattr(f, "pa_type", None)
            if t is None:
                continue
            if pa.types.is_boolean(t) or (not bool_only and (
                    pa.types.is_integer(t) or pa.types.is_floating(t))):
                out.append(name)
        return out

    def _read_numeric(self, ds, cols: List[str]) -> Dict[str, np.ndarray]:
        if not cols:
            return {}
        import pyarrow as pa
        import pyarrow.compute as pc

        table = ds.select_columns(cols).with_format("arrow")[:]
        return {c: np.array(pc.cast(table.column(c), pa.float64())
                            .to_numpy(zero_copy_only=False), dtype=np.float64)
                for c in cols}

    # --- public state ----------------------------------------------------------------------

    @property
    def decisions(self) -> Dict[int, str]:
        """A copy of the decisions: ``{row index: "keep" | "discard" | "flag"}``.

        >>> ex.decisions                      # doctest: +SKIP
        {0: 'keep', 3: 'discard'}
        """
        return dict(sorted(self._decisions.items()))

    @property
    def reisolated(self) -> Dict[int, dict]:
        """Metadata of the rows re-isolated here: description, candidates, cost, signals.

        >>> ex.reisolated[3]["description"]   # doctest: +SKIP
        'dog barking'
        """
        return {k: dict(v) for k, v in sorted(self._reiso.items())}

    @property
    def row(self) -> int:
        """The dataset index of the row shown.

        >>> ex.row                            # doctest: +SKIP
        0
        """
        return self._row

    @property
    def queue(self) -> List[int]:
        """The row indices to review, in order, after the current sort and filter.

        >>> ex.sort_by("isolated_target_db"); ex.queue[:3]   # doctest: +SKIP
        [17, 4, 9]
        """
        return [int(i) for i in self._queue]

    def counts(self) -> Dict[str, int]:
        """How many rows have each decision (and how many are undecided).

        >>> ex.counts()                       # doctest: +SKIP
        {'keep': 3, 'discard': 1, 'flag': 0, 'undecided': 196}
        """
        out = {d: 0 for d in DECISIONS}
        for d in self._decisions.values():
            out[d] += 1
        out["undecided"] = self._n - len(self._decisions)
        return out

    def spend(self) -> Dict[str, float]:
        """Dollars spent: the dataset's cost column, re-isolations, and the client's usage.

        ``total`` is the dataset's cost column sum plus the re-isolations made in this
        explorer (this and earlier sessions); ``client`` is ``client.usage.cost`` (everything
        this client paid in this kernel, which may include the map that built the dataset).

        >>> ex.spend()                        # doctest: +SKIP
        {'dataset': 1.24, 'reisolations': 0.062, 'client': 0.062, 'total': 1.302}
        """
        dataset = float(np.nansum(self._dataset_values[self.cost_column])) \
            if self.cost_column else 0.0
        reiso = float(sum(m.get("cost", 0.0) for m in self._reiso.values()))
        client = float(self._client.usage.cost) if self._client is not None else 0.0
        return {"dataset": dataset, "reisolations": reiso, "client": client,
                "total": dataset + reiso}

    def __repr__(self) -> str:
        c = self.counts()
        return (f"Explorer({self._n} rows, {c['keep']} keep, {c['discard']} discard, "
                f"{c['flag']} flag, {c['undecided']} undecided; row {self._row})")

    # --- display ---------------------------------------------------------------------------

    @property
    def widget(self):
        """The ipywidgets tree (a ``VBox``); the current row is drawn on first access.

        >>> from IPython.display import display
        >>> display(ex.widget)        # same as leaving ``ex`` last in a cell  # doctest: +SKIP
        """
        if self._ui is None:
            self._build_ui()
        if self._rendered_row is None:
            self._render()
        return self._ui["root"]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close the widgets (the decisions and the session file stay).

        >>> ex.close()                        # doctest: +SKIP
        """
        if self._ui is not None:
            for w in self._walk(self._ui["root"]):
                w.close()
            self._ui = None
            self._rendered_row = None

    @staticmethod
    def _walk(w) -> List[Any]:
        out, stack = [], [w]
        while stack:
            x = stack.pop()
            out.append(x)
            stack.extend(getattr(x, "children", ()) or ())
        return out

    def _build_ui(self) -> None:
        import ipywidgets as W

        ui: Dict[str, Any] = {}
        ui["header"] = W.HTML()
        ui["spend"] = W.HTML()
        lanes = []
        for lane in _LANES:
            ui[f"label_{lane}"] = W.HTML(layout=W.Layout(width="150px"))
            ui[f"player_{lane}"] = W.Audio(value=b"", format="wav", autoplay=False, loop=False,
                                           controls=True, layout=W.Layout(width="270px"))
            ui[f"wave_{lane}"] = W.Image(value=b"", format="png", width=str(self._iw),
                                         height=str(self._ih))
            ui[f"spec_{lane}"] = W.Image(value=b"", format="png", width=str(self._iw),
                                         height=str(self._ih))
            lanes.append(W.HBox([ui[f"label_{lane}"], ui[f"player_{lane}"], ui[f"wave_{lane}"],
                                 ui[f"spec_{lane}"]], layout=W.Layout(align_items="center")))
        ui["signals"] = W.HTML()

        def button(text, tip, style="", icon=""):
            return W.Button(description=text, tooltip=tip, button_style=style, icon=icon,
                            layout=W.Layout(width="auto"))

        ui["prev"] = button("prev (j)", "previous row in the queue", icon="arrow-left")
        ui["keep"] = button("keep (k)", "keep this row", "success", "check")
        ui["discard"] = button("discard (d)", "discard this row", "danger", "times")
        ui["flag"] = button("flag (f)", "flag this row for a second look", "warning", "flag")
        ui["clear"] = button("clear (u)", "clear this row's decision")
        ui["next"] = button("next (l)", "next row in the queue", icon="arrow-right")
        ui["jump"] = W.BoundedIntText(value=0, min=0, max=self._n - 1, description="row",
                                      layout=W.Layout(width="150px"))
        ui["go"] = button("go", "show this row")
        ui["keys"] = W.Text(value="", placeholder="click here, then press a key",
                            description="keys", continuous_update=True,
                            tooltip=KEY_HELP, layout=W.Layout(width="330px"))
        ui["keyhelp"] = W.HTML(f"<small>{KEY_HELP}</small>")

        # ipywidgets 8 treats a None value as "nothing selected" (a blank box): use ""
        opts = [("row order", "")] + [(m, m) for m in self.metrics]
        ui["sort"] = W.Dropdown(options=opts, value="", description="sort by",
                                layout=W.Layout(width="300px"))
        ui["order"] = W.ToggleButtons(options=["ascending", "descending"], value="ascending",
                                      style={"button_width": "100px"})
        ui["fcol"] = W.Dropdown(options=[("no range filter", "")] + opts[1:], value="",
                                description="filter", layout=W.Layout(width="300px"))
        ui["fmin"] = W.Text(value="", placeholder="min", continuous_update=False,
                            layout=W.Layout(width="90px"))
        ui["fmax"] = W.Text(value="", placeholder="max", continuous_update=False,
                            layout=W.Layout(width="90px"))
        ui["fdec"] = W.Dropdown(options=[("any decision", ""), ("undecided", "undecided")]
                                + [(d, d) for d in DECISIONS], value="",
                                description="decision", layout=W.Layout(width="220px"))
        ui["queue"] = W.HTML()

        ui["desc"] = W.Text(value=self._default_description, description="re-isolate",
                            placeholder="what to isolate, e.g. man speaking",
                            layout=W.Layout(width="360px"))
        cand = 1
        if self._client is not None:
            cand = int(getattr(self._client, "defaults", {}).get("reranking_candidates", 1))
        ui["cand"] = W.BoundedIntText(value=cand, min=1, max=8, description="candidates",
                                      layout=W.Layout(width="170px"))
        ui["price"] = button("price", "show what this re-isolation costs (sends nothing)",
                             icon="dollar")
        ui["confirm"] = button("confirm", "spend it: re-isolate this row", "primary")
        ui["confirm"].disabled = True
        ui["quote"] = W.HTML()
        ui["message"] = W.HTML()

        root = W.VBox([
            W.HBox([ui["header"], ui["spend"]],
                   layout=W.Layout(justify_content="space-between")),
            *lanes,
            ui["signals"],
            W.HBox([ui["prev"], ui["keep"], ui["discard"], ui["flag"], ui["clear"], ui["next"],
                    ui["jump"], ui["go"]], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([ui["keys"], ui["keyhelp"]], layout=W.Layout(align_items="center")),
            W.HBox([ui["sort"], ui["order"]], layout=W.Layout(flex_flow="row wrap")),
            W.HBox([ui["fcol"], ui["fmin"], ui["fmax"], ui["fdec"]],
                   layout=W.Layout(flex_flow="row wrap")),
            ui["queue"],
            W.HBox([ui["desc"], ui["cand"], ui["price"], ui["confirm"]],
                   layout=W.Layout(flex_flow="row wrap")),
            ui["quote"],
            ui["message"],
        ])
        root.add_class("samaudio-explorer")
        ui["root"] = root
        self._ui = ui
        self._sync_widgets()

        ui["prev"].on_click(lambda _: self._safe(self.prev))
        ui["next"].on_click(lambda _: self._safe(self.next))
        for d in DECISIONS:
            ui[d].on_click(lambda _, d=d: self._safe(self._decide_ui, d))
        ui["clear"].on_click(lambda _: self._safe(self.decide, None))
        ui["go"].on_click(lambda _: self._safe(self.goto, int(ui["jump"].value)))
        ui["keys"].observe(self._on_key, names="value")
        for name in ("sort", "order"):
            ui[name].observe(lambda _: self._sync_guard(self._sort_from_ui), names="value")
        for name in ("fcol", "fmin", "fmax", "fdec"):
            ui[name].observe(lambda _: self._sync_guard(self._filter_from_ui), names="value")
        ui["price"].on_click(lambda _: self._safe(self._quote_from_ui))
        ui["confirm"].on_click(lambda _: self._safe(self.confirm))
        for name in ("desc", "cand"):
            ui[name].observe(lambda _: self._drop_quote(), names="value")

    # --- event plumbing --------------------------------------------------------------------

    def _safe(self, fn, *args):
        """Run a UI action; show errors in the widget instead of losing them in a log."""
        try:
            self._message, self._message_error = "", False
            return fn(*args)
        except errors.SamAudioError as exc:
            self._set_message(f"{type(exc).__name__}: {exc}", error=True)
        except Exception as exc:  # noqa: BLE001 - a UI callback must never die silently
            self._set_message(f"{type(exc).__name__}: {exc}", error=True)

    def _sync_guard(self, fn):
        if not self._syncing:
            self._safe(fn)

    def _set_message(self, text: str, error: bool = False) -> None:
        self._message, self._message_error = text, error
        if self._ui is not None:
            colour = "#c62828" if error else "#333"
            self._ui["message"].value = (f"<div style='color:{colour}'>{html.escape(text)}</div>"
                                         if text else "")

    def _on_key(self, change) -> None:
        new = change.get("new") or ""
        if self._syncing or not new:
            return
        self._syncing = True
        try:
            self._ui["keys"].value = ""
        finally:
            self._syncing = False
        self.press(new[-1])

    def press(self, key: str) -> None:
        """Act as if ``key`` was pressed in the keys box (see the module docstring).

        >>> ex.press("d")                     # discard, then move on   # doctest: +SKIP
        """
        action = KEYS.get(str(key)[-1:].lower())
        if action is None:
            self._set_message(f"key {key!r} does nothing; keys: {KEY_HELP}")
        elif action == "next":
            self._safe(self.next)
        elif action == "prev":
            self._safe(self.prev)
        elif action == "clear":
            self._safe(self.decide, None)
        else:
            self._safe(self._decide_ui, action)

    def _decide_ui(self, decision: str) -> None:
        row = self._row
        self.decide(decision)
        if self.auto_advance and self._row == row:
            self.next(wrap=False)

    # --- navigation --------------------------------------------------------------------

    def goto(self, row: int) -> None:
        """Show dataset row ``row`` (it need not be in the filtered queue).

        >>> ex.goto(42)                       # doctest: +SKIP
        """
        row = int(row)
        if not 0 <= row < self._n:
            raise ExplorerError(
                f"row {row} is out of range: the dataset has rows 0..{self._n - 1}.")
        self._row = row
        hits = np.flatnonzero(self._queue == row)
        if hits.size:
            self._pos = int(hits[0])
        self._after_move()

    def next(self, wrap: bool = False) -> None:
        """Show the next row of the queue (stays on the last one unless ``wrap``).

        >>> ex.next()                         # doctest: +SKIP
        """
        self._step(+1, wrap)

    def prev(self, wrap: bool = False) -> None:
        """Show the previous row of the queue.

        >>> ex.prev()                         # doctest: +SKIP
        """
        self._step(-1, wrap)

    def _step(self, delta: int, wrap: bool) -> None:
        q = len(self._queue)
        if q == 0:
            self._set_message("the queue is empty: widen the filter to see rows.")
            return
        in_queue = self._pos < q and int(self._queue[self._pos]) == self._row
        pos = self._pos + delta if in_queue else (self._pos if delta > 0 else self._pos - 1)
        if wrap:
            pos %= q
        if not 0 <= pos < q:
            self._set_message("end of the queue." if delta > 0 else "start of the queue.")
            return
        self._pos = pos
        self._row = int(self._queue[pos])
        self._after_move()

    def _after_move(self) -> None:
        self._drop_quote()
        if self.session is not None:
            self.save()
        self._render()

    # --- sorting and filtering ---------------------------------------------------------

    def sort_by(self, column: Optional[str] = None, ascending: bool = True) -> None:
        """Order the queue by a numeric column (NaN last); ``None`` restores row order.

        >>> ex.sort_by("isolated_target_db")  # least target energy first  # doctest: +SKIP
        """
        if column is not None and column not in self._values:
            raise ExplorerError(f"cannot sort by {column!r}: sortable columns are "
                                f"{self.metrics}. Pass metrics=[...] to add numeric columns.")
        self._sort = (column, bool(ascending))
        self._update_queue()
        self._sync_widgets()

    def set_filter(self, column: Optional[str] = None, min: Optional[float] = None,
                   max: Optional[float] = None, decision: Optional[str] = None) -> None:
        """Keep in the queue only rows with ``min <= column <= max`` (either bound optional)
        and, with ``decision``, only rows decided that way (``"undecided"`` for none yet).

        The queue is rebuilt when the filter or sort changes, not when you decide, so the row
        you just decided does not vanish under you. ``set_filter()`` clears the filter.

        >>> ex.set_filter("isolated_target_db", max=-10)            # doctest: +SKIP
        >>> ex.set_filter(decision="flag")    # review the flagged rows  # doctest: +SKIP
        """
        if column is not None and column not in self._values:
            raise ExplorerError(f"cannot filter by {column!r}: filterable columns are "
                                f"{self.metrics}.")
        if decision not in (None, "undecided") + DECISIONS:
            raise ExplorerError(f"decision filter must be one of {DECISIONS}, 'undecided' or "
                                f"None, got {decision!r}.")
        bounds = []
        for name, v in (("min", min), ("max", max)):
            try:
                bounds.append(None if v is None or v == "" else float(v))
            except (TypeError, ValueError):
                raise ExplorerError(f"filter {name} must be a number, got {v!r}.") from None
        if column is None and any(b is not None for b in bounds):
            raise ExplorerError("a min/max filter needs a column: set_filter('col', min=...).")
        self._filter = {"column": column, "min": bounds[0], "max": bounds[1],
                        "decision": decision}
        self._update_queue()
        self._sync_widgets()

    def _update_queue(self) -> None:
        keep = np.ones(self._n, bool)
        f = self._filter
        if f["column"] is not None:
            v = self._values[f["column"]]
            with np.errstate(invalid="ignore"):
                if f["min"] is not None:
                    keep &= v >= f["min"]
                if f["max"] is not None:
                    keep &= v <= f["max"]
        if f["decision"] is not None:
            dec = np.array([self._decisions.get(i) for i in range(self._n)], dtype=object)
            want = None if f["decision"] == "undecided" else f["decision"]
            keep &= np.array([d == want for d in dec], dtype=bool)
        idx = np.flatnonzero(keep)
        col, asc = self._sort
        if col is not None and idx.size:
            v = self._values[col][idx]
            key = np.where(np.isnan(v), np.inf, v if asc else -v)
            idx = idx[np.argsort(key, kind="stable")]
        self._queue = idx
        hits = np.flatnonzero(idx == self._row)
        if hits.size:
            self._pos = int(hits[0])
        elif idx.size:
            self._pos, self._row = 0, int(idx[0])
        else:
            self._pos = 0
        if self.session is not None:
            self.save()
        self._render()

    def _sort_from_ui(self) -> None:
        ui = self._ui
        self.sort_by(ui["sort"].value or None, ui["order"].value == "ascending")

    def _filter_from_ui(self) -> None:
        ui = self._ui
        col = ui["fcol"].value or None
        lo, hi = ui["fmin"].value.strip() or None, ui["fmax"].value.strip() or None
        if col is None and (lo is not None or hi is not None):
            self._set_message("choose a filter column for the min/max range.", error=True)
            lo = hi = None
        self.set_filter(col, lo, hi, ui["fdec"].value or None)

    def _sync_widgets(self) -> None:
        if self._ui is None:
            return
        ui = self._ui
        self._syncing = True
        try:
            ui["sort"].value = self._sort[0] or ""
            ui["order"].value = "ascending" if self._sort[1] else "descending"
            f = self._filter
            ui["fcol"].value = f["column"] or ""
            for name in ("min", "max"):
                box = ui[f"f{name}"]
                if _parse_float(box.value) != f[name]:
                    box.value = "" if f[name] is None else repr(f[name])
            ui["fdec"].value = f["decision"] or ""
        finally:
            self._syncing = False

    # --- decisions ---------------------------------------------------------------------

    def decide(self, decision: Optional[str], row: Optional[int] = None) -> None:
        """Record ``"keep"``, ``"discard"`` or ``"flag"`` for a row (default: the one shown);
        ``None`` clears it. Saved to the session file at once.

        >>> ex.decide("keep")                 # doctest: +SKIP
        >>> ex.decide("discard", row=7)       # doctest: +SKIP
        """
        row = self._row if row is None else int(row)
        if not 0 <= row < self._n:
            raise ExplorerError(
                f"row {row} is out of range: the dataset has rows 0..{self._n - 1}.")
        if decision is None:
            self._decisions.pop(row, None)
        elif decision in DECISIONS:
            self._decisions[row] = decision
        else:
            raise ExplorerError(
                f"decision must be 'keep', 'discard', 'flag' or None, got {decision!r}.")
        if self.session is not None:
            self.save()
        self._render(header_only=True)

    # --- re-isolation ------------------------------------------------------------------

    def quote(self, description: Optional[str] = None,
              reranking_candidates: Optional[int] = None) -> Quote:
        """Price a re-isolation of the row shown, without sending anything.

        Shows the price in the widget and enables its confirm button; :meth:`confirm` then
        spends it. Defaults come from the widget's description and candidates boxes.

        >>> q = ex.quote("dog barking", reranking_candidates=4); print(q)  # doctest: +SKIP
        row 3: isolate 'dog barking' with 4 candidate(s) costs $0.062 (1 billed call(s)).
        """
        if self._client is None:
            raise ExplorerError(
                "re-isolating needs a client: Explorer(ds, ..., client=Client(...)).")
        if description is None:
            description = self._ui["desc"].value if self._ui is not None else \
                self._default_description
        if reranking_candidates is None:
            reranking_candidates = int(self._ui["cand"].value) if self._ui is not None else 1
        description = (description or "").strip()
        if not description:
            raise ExplorerError("type what to isolate in the re-isolate box (e.g. 'man "
                                "speaking') before asking for the price.")
        data = self._load(self._row)
        job = (data.original, data.sr, description,
               {"reranking_candidates": int(reranking_candidates)})
        calls = self._client.estimate([job[0]], job[1], job[2], **job[3]).calls
        q = Quote(row=self._row, description=description,
                  reranking_candidates=int(reranking_candidates), calls=calls,
                  cached=calls == 0, price=calls * float(self._client.price_per_call))
        self._quote, self._quote_job = q, job
        if self._ui is not None:
            self._syncing = True
            try:
                self._ui["desc"].value = description
                self._ui["cand"].value = int(reranking_candidates)
            finally:
                self._syncing = False
            self._ui["quote"].value = f"<b>{html.escape(str(q))}</b> Press confirm to run it."
            self._ui["confirm"].disabled = False
            self._ui["confirm"].description = ("confirm (free, cached)" if q.cached
                                               else f"confirm: spend ${q.price:.3f}")
        return q

    def _quote_from_ui(self) -> None:
        self.quote()

    def _drop_quote(self) -> None:
        if self._syncing:
            return
        self._quote, self._quote_job = None, None
        if self._ui is not None:
            self._ui["confirm"].disabled = True
            self._ui["confirm"].description = "confirm"
            self._ui["quote"].value = ""

    def confirm(self) -> dict:
        """Run the re-isolation priced by :meth:`quote` (the confirm button does this).

        The new isolated sound replaces the row's in the view and in :meth:`apply`; its
        metadata (never the key) goes to the session file, its audio stays in the client's
        cache.

        >>> ex.quote("dog barking"); ex.confirm()   # doctest: +SKIP
        """
        q, job = self._quote, self._quote_job
        if q is None or job is None:
            raise ExplorerError("nothing to confirm: ask for the price first (quote() or the "
                                "price button).")
        if q.row != self._row:
            self._drop_quote()
            raise ExplorerError("the row changed since the price was shown; ask again.")
        if self._ui is not None:
            self._ui["confirm"].disabled = True
            self._ui["quote"].value = f"re-isolating row {q.row}…"
        try:
            sep = self._client.separate(job[0], job[1], job[2], **job[3])
        finally:
            self._quote, self._quote_job = None, None
        data = self._load(q.row)
        mix = audio.mix_to_mono(data.original)
        target = np.asarray(_to_mono(sep.target), np.float32)
        residual = (mix - target).astype(np.float32)
        sig = cleaning_signals(mix, target, residual, data.sr)
        # "cost" is everything re-isolating this row cost (a row re-isolated twice paid twice)
        prior = float(self._reiso.get(q.row, {}).get("cost", 0.0))
        meta = {"description": q.description, "reranking_candidates": q.reranking_candidates,
                "params": dict(job[3]), "call_cost": float(sep.cost),
                "cost": prior + float(sep.cost), "cached": bool(sep.cached),
                "seconds": float(sep.seconds),
                "signals": {k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v))
                            for k, v in sig.items()},
                "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._reiso[q.row] = meta
        self._reiso_audio[q.row] = {"target": target, "sr": data.sr}
        self._apply_signals(q.row, meta["signals"])
        self._cache.pop(q.row, None)
        if self.session is not None:
            self.save()
        if self._ui is not None:
            how = "from the cache (free)" if sep.cached else f"for ${sep.cost:.3f}"
            self._ui["quote"].value = (f"row {q.row} re-isolated with "
                                       f"{html.escape(q.description)!r} {how}.")
            self._ui["confirm"].description = "confirm"
        self._render()
        return dict(meta)

    def _apply_signals(self, row: int, signals: Dict[str, Any]) -> None:
        for s, v in signals.items():
            col = f"{self.isolated}_{s}"
            if col in self._values:
                self._values[col][row] = float(v)

    def _reiso_target(self, row: int) -> Dict[str, Any]:
        """The re-isolated target of ``row``: from memory, else from the client's cache."""
        if row in self._reiso_audio:
            return self._reiso_audio[row]
        meta = self._reiso[row]
        if self._client is None:
            raise ExplorerError(
                f"row {row} was re-isolated in an earlier session; its audio is in the client's "
                "cache: pass client=Client(..., cache_dir=<the same cache>) to Explorer.")
        data = self._load(row, reiso=False)
        params = meta.get("params", {"reranking_candidates": meta["reranking_candidates"]})
        if self._client.estimate([data.original], data.sr, meta["description"],
                                 **params).calls:
            raise ExplorerError(
                f"the re-isolation of row {row} ({meta['description']!r}) is not in this "
                f"client's cache ({self._client.cache_dir}); use the client and cache_dir it "
                "was made with, or re-isolate the row again (it would be billed).")
        sep = self._client.separate(data.original, data.sr, meta["description"], **params)
        out = {"target": np.asarray(_to_mono(sep.target), np.float32), "sr": data.sr}
        self._reiso_audio[row] = out
        return out

    # --- loading and drawing a row -----------------------------------------------------

    def _load(self, row: int, reiso: bool = True) -> _RowData:
        if reiso and row in self._cache:
            self._cache.move_to_end(row)
            return self._cache[row][0]
        value = self._rows[int(row)]
        notes: Dict[str, str] = {}
        try:
            original, sr = read_value(value[self.original])
        except errors.SamAudioError as exc:
            raise ExplorerError(f"row {row}: cannot read the original audio: {exc}") from None
        n = original.shape[-1]
        error = ""
        if self._error_column:
            error = value.get(self._error_column) or ""
        target = residual = None
        if reiso and row in self._reiso:
            meta = self._reiso[row]
            try:
                target = self._reiso_target(row)["target"]
                notes["isolated"] = (f"re-isolated: {meta['description']!r}, "
                                     f"{meta['reranking_candidates']} cand.")
            except ExplorerError as exc:
                notes["isolated"] = f"re-isolation unavailable ({exc}); showing the dataset's"
        if target is None:
            try:
                target = _read_aligned(value[self.isolated], sr, n)
            except errors.SamAudioError as exc:
                notes["isolated"] = f"no isolated audio ({exc.message})"
        mono = _to_mono(original)
        if self.residual and not (reiso and row in self._reiso_audio):
            try:
                residual = _read_aligned(value[self.residual], sr, n)
            except errors.SamAudioError as exc:
                notes["residual"] = f"no residual audio ({exc.message})"
        elif target is not None:
            residual = (mono - target).astype(np.float32)
            notes.setdefault("residual", "original − isolated")
        return _RowData(original=original, sr=sr, target=target, residual=residual,
                        notes=notes, error=str(error))

    def _view(self, row: int) -> _RowView:
        if row in self._cache:
            self._cache.move_to_end(row)
            return self._cache[row][1]
        data = self._load(row)
        mono = _to_mono(data.original)
        lanes = {"original": mono, "isolated": data.target, "residual": data.residual}
        scale = float(np.max(np.abs(mono))) if mono.size else 1.0
        ref = float(np.max(_power_frames(np.asarray(mono, np.float64), data.sr, 64))) \
            if mono.size else 1.0
        wav = {"original": _player_wav(data.original if data.original.shape[0] <= 2 else mono,
                                       data.sr),
               "isolated": _player_wav(data.target, data.sr),
               "residual": _player_wav(data.residual, data.sr)}
        wave = {k: waveform_png(v, scale, self._iw, self._ih, _LANE_COLOURS[k])
                for k, v in lanes.items()}
        spec = {k: spectrogram_png(v, data.sr, ref, self._iw, self._ih) for k, v in lanes.items()}
        view = _RowView(wav=wav, wave=wave, spec=spec, notes=data.notes,
                        seconds=data.original.shape[-1] / data.sr, sr=data.sr,
                        channels=data.original.shape[0], error=data.error)
        self._cache[row] = (data, view)
        while len(self._cache) > self._cache_rows:
            self._cache.popitem(last=False)
        return view

    def _render(self, header_only: bool = False) -> None:
        if self._ui is None:
            return
        ui = self._ui
        row = self._row
        if not header_only and len(self._queue) == 0 and self._rendered_row is not None:
            self._set_message("no rows match the filter; the last row shown stays visible.")
        if not header_only:
            view = self._view(row)
            for lane in _LANES:
                ui[f"player_{lane}"].value = view.wav[lane]
                ui[f"wave_{lane}"].value = view.wave[lane]
                ui[f"spec_{lane}"].value = view.spec[lane]
                note = view.notes.get(lane, "")
                ui[f"label_{lane}"].value = (
                    f"<b>{lane}</b><br><small>{html.escape(note)}</small>")
            self._rendered_row = row
            self._syncing = True
            try:
                ui["jump"].value = row
            finally:
                self._syncing = False
            ui["signals"].value = self._signals_html(row, view)
        self._render_header()
        if self._message:
            self._set_message(self._message, error=self._message_error)
        elif not header_only:
            ui["message"].value = ""

    def _render_header(self) -> None:
        ui = self._ui
        row = self._row
        dec = self._decisions.get(row)
        badge = (f"<span style='color:white;background:{_DECISION_COLOURS[dec]};padding:1px 6px;"
                 f"border-radius:3px' class='samaudio-decision'>{dec or 'undecided'}</span>")
        q = len(self._queue)
        where = (f"{self._pos + 1} of {q} in the queue" if q and self._pos < q
                 and int(self._queue[self._pos]) == row else f"not in the queue ({q} rows)")
        ui["header"].value = (f"<b>row {row}</b> of {self._n} · {where} · decision: {badge}")
        c = self.counts()
        ui["queue"].value = (f"<small>queue: {q} of {self._n} rows · decided: {c['keep']} keep, "
                             f"{c['discard']} discard, {c['flag']} flag, {c['undecided']} "
                             f"undecided</small>")
        s = self.spend()
        client = (f" · client this kernel ${s['client']:.3f}" if self._client is not None else "")
        ui["spend"].value = (f"<span title='dataset cost column + re-isolations'>spent "
                             f"<b>${s['total']:.3f}</b> (dataset ${s['dataset']:.3f} + "
                             f"re-isolations ${s['reisolations']:.3f}){client}</span>")

    def _signals_html(self, row: int, view: _RowView) -> str:
        meta = self._reiso.get(row)
        cells = []
        for m in self.metrics:
            v = self._dataset_values[m][row]
            if m in self._bool_columns and not math.isnan(v):
                v = bool(v)
            short = m[len(self.isolated) + 1:] if m.startswith(self.isolated + "_") else m
            text = _fmt(v)
            if meta and short in meta.get("signals", {}):
                text = f"{text} → <b>{_fmt(meta['signals'][short])}</b>"
            cells.append(f"<td style='padding:0 8px'><small>{html.escape(short)}</small><br>"
                         f"{text}</td>")
        info = f"{view.seconds:.2f} s · {view.sr} Hz · {view.channels} ch"
        if meta:
            info += (f" · re-isolated with {html.escape(repr(meta['description']))} "
                     f"(${meta['cost']:.3f})")
        err = (f"<div style='color:#c62828'>error: {html.escape(view.error)}</div>"
               if view.error else "")
        return (f"<div><small>{info}</small></div>{err}<table style='border-collapse:collapse'>"
                f"<tr>{''.join(cells)}</tr></table>")

    # --- session -----------------------------------------------------------------------

    def _state(self) -> dict:
        fp = getattr(self._ds, "_fingerprint", None)
        return {"version": SESSION_VERSION, "tool": "samaudio_data.Explorer",
                "n_rows": self._n, "fingerprint": fp, "original": self.original,
                "isolated": self.isolated,
                "decisions": {str(k): v for k, v in sorted(self._decisions.items())},
                "reisolated": {str(k): v for k, v in sorted(self._reiso.items())},
                "row": self._row,
                "sort": {"column": self._sort[0], "ascending": self._sort[1]},
                "filter": dict(self._filter),
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def save(self, path: Union[str, os.PathLike, None] = None) -> Path:
        """Write the session (decisions, re-isolation metadata, position) atomically.

        Called on every change when ``session=`` was given; call it to save elsewhere.

        >>> ex.save("backup.json")            # doctest: +SKIP
        PosixPath('backup.json')
        """
        target = Path(path).expanduser() if path else self.session
        if target is None:
            raise ExplorerError("no session file: pass session='review.json' to Explorer or "
                                "a path to save().")
        text = json.dumps(self._state(), indent=1, allow_nan=True)
        if self._client is not None and self._client.redact(text) != text:
            raise ExplorerError("refusing to save the session: the API key appears in it "
                                "(was it typed as a description?). Nothing was written.")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return target

    def _resume(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExplorerError(f"cannot read the session file {path}: {exc}. Move it away or "
                                "pass another session= path.") from None
        if not isinstance(state, dict) or state.get("version") != SESSION_VERSION:
            raise ExplorerError(f"{path} is not an explorer session file (version "
                                f"{SESSION_VERSION}); pass another session= path.")
        if state.get("n_rows") != self._n:
            raise ExplorerError(
                f"the session file {path} was made for a dataset of {state.get('n_rows')} rows; "
                f"this one has {self._n}. Pass the same dataset, or another session= path.")
        for k, v in (state.get("decisions") or {}).items():
            if v in DECISIONS and 0 <= int(k) < self._n:
                self._decisions[int(k)] = v
        for k, meta in (state.get("reisolated") or {}).items():
            if isinstance(meta, dict) and 0 <= int(k) < self._n:
                self._reiso[int(k)] = meta
                self._apply_signals(int(k), meta.get("signals") or {})
        sort = state.get("sort") or {}
        if sort.get("column") in self._values or sort.get("column") is None:
            self._sort = (sort.get("column"), bool(sort.get("ascending", True)))
        filt = state.get("filter") or {}
        if filt.get("column") in self._values or filt.get("column") is None:
            self._filter.update({k: filt.get(k) for k in ("column", "min", "max", "decision")})
        self._row = int(state.get("row", 0)) if 0 <= int(state.get("row", 0)) < self._n else 0
        session, self.session = self.session, None   # no save while rebuilding the queue
        try:
            self._update_queue()
        finally:
            self.session = session
        hits = np.flatnonzero(self._queue == self._row)
        if hits.size:
            self._pos = int(hits[0])

    # --- applying ----------------------------------------------------------------------

    def apply(self, ds=None, mode: str = "filter", *, keep_undecided: bool = True,
              keep_flagged: bool = False, column: str = "decision"):
        """Apply the decisions to ``ds`` (default: the dataset given to the explorer).

        ``mode="filter"`` returns the rows to keep: rows decided *keep*, plus undecided rows
        (``keep_undecided=True``) and flagged rows (``keep_flagged=False``): by default only
        discarded and flagged rows are dropped. ``mode="column"`` keeps every row and adds a
        string column ``column`` ("keep", "discard", "flag" or None for undecided).

        Re-isolated rows get their new isolated audio (``{"bytes": float WAV, "path": None}``
        at the original's rate and length), a recomputed residual column if there is one, the
        new cleaning signals, ``<isolated>_error`` cleared and the re-isolation's cost added
        to the cost column. ``ds`` must have the explorer's rows in the same order.

        >>> clean = ex.apply(ds)                           # doctest: +SKIP
        >>> marked = ex.apply(ds, mode="column")           # doctest: +SKIP
        >>> strict = ex.apply(ds, keep_undecided=False)  # only rows kept  # doctest: +SKIP
        """
        ds = self._ds if ds is None else ds
        if mode not in ("filter", "column"):
            raise ExplorerError(f"mode must be 'filter' or 'column', got {mode!r}.")
        if len(ds) != self._n:
            raise ExplorerError(f"the dataset has {len(ds)} rows but the decisions were made on "
                                f"{self._n}; apply them to the same dataset (before any "
                                "filter or shuffle).")
        if self._reiso:
            ds = self._with_reisolations(ds)
        if mode == "column":
            from datasets import Value

            values = [self._decisions.get(i) for i in range(self._n)]
            if column in ds.column_names:
                ds = ds.remove_columns(column)
            return ds.add_column(column, values, feature=Value("string"))
        allowed = {"keep"} | ({"flag"} if keep_flagged else set())
        rows = [i for i in range(self._n)
                if self._decisions.get(i) in allowed
                or (keep_undecided and i not in self._decisions)]
        return ds.select(rows)

    def _with_reisolations(self, ds):
        rows = sorted(self._reiso)
        targets = {r: self._reiso_target(r) for r in rows}
        cols = [c for c in ds.column_names]
        iso, res = self.isolated, self.residual
        sig_cols = {f"{iso}_{s}": s for s in SIGNAL_NAMES if f"{iso}_{s}" in cols}
        update = [iso] + ([res] if res and res in cols else []) + list(sig_cols) + (
            [self.cost_column] if self.cost_column and self.cost_column in cols else []) + (
            [self._error_column] if self._error_column and self._error_column in cols else [])
        originals: Dict[int, Tuple[np.ndarray, int]] = {}
        for r in rows:
            d = self._load(r, reiso=False)
            originals[r] = (d.original, d.sr)
        feats = ds.features
        restore = {}
        work = ds
        for c, f in feats.items():
            if _decodable(f) and getattr(f, "decode", False):
                restore[c] = f
                work = work.cast_column(c, dataclasses.replace(f, decode=False))
        row_meta = self._reiso
        cost_col, err_col = self.cost_column, self._error_column

        def fn(*args):
            *values, idx = args
            batch = dict(zip(update, [list(v) for v in values]))
            for j, i in enumerate(idx):
                if i not in targets:
                    continue
                t = targets[i]
                original, sr = originals[i]
                mono = _to_mono(original)
                batch[iso][j] = encode_value(t["target"], t["sr"])
                if res in batch:
                    batch[res][j] = encode_value((mono - t["target"]).astype(np.float32), sr)
                meta = row_meta[i]
                for c, s in sig_cols.items():
                    batch[c][j] = meta["signals"][s]
                if cost_col in batch:
                    old = batch[cost_col][j]
                    batch[cost_col][j] = (0.0 if old is None or old != old else old) + meta["cost"]
                if err_col in batch:
                    batch[err_col][j] = ""
            return batch

        fp = hashlib.sha256(json.dumps(
            [getattr(ds, "_fingerprint", ""), {str(k): v for k, v in sorted(row_meta.items())}],
            sort_keys=True, default=str).encode()).hexdigest()[:32]
        out = work.map(fn, with_indices=True, batched=True, batch_size=256,
                       input_columns=update, new_fingerprint=fp,
                       desc="applying re-isolations")
        for c, f in restore.items():
            out = out.cast_column(c, f)
        return out
