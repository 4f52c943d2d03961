"""Reading one row's audio and drawing it: players, waveforms, spectrograms, axes.

Only the audio columns of the row shown are read (undecoded, then decoded here), and the last
few rows are kept, so moving back and forth costs nothing after the first time.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import numpy as np

from .. import audio, errors
from ..hf import read_value
from ..hf._values import declared_dtype
from . import _format, _images
from ._errors import ExplorerError

LANES = ("original", "isolated", "residual")
LANE_COLOURS = {"original": (90, 90, 90), "isolated": (31, 119, 180), "residual": (214, 110, 20)}


@dataclasses.dataclass
class RowAudio:
    """A row's audio: the original ``(channels, n)`` and mono target/residual aligned to it."""

    original: np.ndarray
    sr: int
    target: np.ndarray | None
    residual: np.ndarray | None
    notes: dict[str, str]
    error: str = ""

    @property
    def mono(self) -> np.ndarray:
        """The original mixed to mono."""
        return audio.mix_to_mono(self.original)


@dataclasses.dataclass
class RowMedia:
    """What the browser shows for a row: per lane WAV, waveform PNG, spectrogram PNG, note."""

    lanes: dict[str, dict[str, Any]]
    seconds: float
    sr: int
    channels: int
    error: str
    time_ticks: list[tuple[float, str]]
    freq_ticks: list[tuple[float, str]]


def player_wav(y: np.ndarray | None, sr: int) -> bytes:
    """16-bit WAV bytes for an ``<audio>`` player (empty for no audio).

    >>> player_wav(np.zeros(160), 16000)[:4], player_wav(None, 16000)
    (b'RIFF', b'')
    """
    if y is None:
        return b""
    return audio.encode_wav(np.clip(np.nan_to_num(y), -1.0, 1.0), sr, subtype="PCM_16")


def read_aligned(value: Any, sr: int, n: int, dtype: str | None = None) -> np.ndarray:
    """An audio value as mono at ``sr`` with ``n`` samples (raises SamAudioError if none).

    >>> read_aligned({"array": np.ones(8), "sampling_rate": 8000}, 8000, 10).shape
    (10,)
    """
    y, vsr = read_value(value, dtype=dtype)
    if y.size == 0:
        raise errors.InvalidAudioError("empty audio")
    return audio.fit_answer(y, vsr, sr=sr, n=n)


def decodable(feature: Any) -> bool:
    return hasattr(feature, "decode_example") and hasattr(feature, "decode")


def undecoded(ds, columns: list[str]):
    """``ds`` with only ``columns``, audio columns left as bytes (decoded by us, per row).

    >>> from datasets import Dataset
    >>> undecoded(Dataset.from_dict({"a": [1], "b": [2]}), ["a"]).column_names
    ['a']
    """
    rows = ds.select_columns(list(dict.fromkeys(columns)))
    feats = rows.features
    for c in columns:
        f = feats.get(c)
        if decodable(f) and getattr(f, "decode", False):
            rows = rows.cast_column(c, dataclasses.replace(f, decode=False))
    return rows


class RowLoader:
    """Reads rows' audio and draws them, keeping the last ``cache_rows`` rows.

    >>> from samaudio_data.explorer import example_dataset
    >>> loader = RowLoader(example_dataset(2), "audio", "isolated", None, None)
    >>> media = loader.media(0)
    >>> sorted(media.lanes), media.sr
    (['isolated', 'original', 'residual'], 16000)
    """

    def __init__(
        self,
        ds,
        original: str,
        isolated: str,
        residual: str | None,
        error_column: str | None,
        *,
        image_width: int = 600,
        image_height: int = 64,
        cache_rows: int = 6,
    ) -> None:
        self.original, self.isolated, self.residual = original, isolated, residual
        self.error_column = error_column
        cols = (
            [original, isolated]
            + ([residual] if residual else [])
            + ([error_column] if error_column else [])
        )
        self._rows = undecoded(ds, cols)
        # integer sample lists arrive as Python ints: their width is the declared one
        self._dtypes = {c: declared_dtype(getattr(ds, "features", None), c) for c in cols}
        self.size = (int(image_width), int(image_height))
        self._cache: collections.OrderedDict[int, tuple[RowAudio, RowMedia]] = (
            collections.OrderedDict()
        )
        self._cache_rows = max(1, int(cache_rows))

    def read(self, row: int, target: np.ndarray | None = None, note: str = "") -> RowAudio:
        """The row's audio; ``target`` (mono, aligned) replaces the dataset's isolated sound
        and then the residual is the original minus it."""
        value = self._rows[int(row)]
        try:
            original, sr = read_value(value[self.original], dtype=self._dtypes[self.original])
        except errors.SamAudioError as exc:
            raise ExplorerError(f"row {row + 1}: cannot read the original audio: {exc}") from exc
        n = original.shape[-1]
        notes: dict[str, str] = {}
        error = str(value.get(self.error_column) or "") if self.error_column else ""
        residual = None
        if target is not None:
            notes["isolated"] = note
        else:
            if note:
                notes["isolated"] = note
            try:
                target = read_aligned(value[self.isolated], sr, n, self._dtypes[self.isolated])
            except errors.SamAudioError as exc:
                notes["isolated"] = f"no isolated audio ({exc.message})"
            if self.residual:
                try:
                    residual = read_aligned(
                        value[self.residual], sr, n, self._dtypes[self.residual]
                    )
                except errors.SamAudioError as exc:
                    notes["residual"] = f"no residual audio ({exc.message})"
        if residual is None and target is not None and "residual" not in notes:
            residual = (audio.mix_to_mono(original) - target).astype(np.float32)
            notes["residual"] = "original − isolated"
        return RowAudio(
            original=original, sr=sr, target=target, residual=residual, notes=notes, error=error
        )

    def forget(self, row: int) -> None:
        """Drop a row from the cache (after its isolated sound changed)."""
        self._cache.pop(int(row), None)

    def cached(self, row: int) -> tuple[RowAudio, RowMedia] | None:
        """The cached audio and drawing of ``row``, if any."""
        hit = self._cache.get(int(row))
        if hit is not None:
            self._cache.move_to_end(int(row))
        return hit

    def media(self, row: int, target: np.ndarray | None = None, note: str = "") -> RowMedia:
        """Players, images and axes of ``row`` on a scale shared by its three lanes."""
        hit = self.cached(row)
        if hit is not None:
            return hit[1]
        data = self.read(row, target, note)
        mono = data.mono
        lanes = {"original": mono, "isolated": data.target, "residual": data.residual}
        w, h = self.size
        bands = {
            k: _images.band_power(y, data.sr, w, h) if y is not None else None
            for k, y in lanes.items()
        }
        peak, ref = _images.shared_scale(list(lanes.values()), data.sr, list(bands.values()))
        play_original = data.original if data.original.shape[0] <= 2 else mono
        out = {}
        for lane, y in lanes.items():
            out[lane] = {
                "wav": player_wav(play_original if lane == "original" else y, data.sr),
                "wave": _images.waveform_png(y, peak, w, h, LANE_COLOURS[lane]),
                "spec": _images.spectrogram_png(y, data.sr, ref, w, h, bands=bands[lane]),
                "note": data.notes.get(lane, ""),
                "empty": y is None,
            }
        seconds = data.original.shape[-1] / data.sr
        media = RowMedia(
            lanes=out,
            seconds=seconds,
            sr=data.sr,
            channels=data.original.shape[0],
            error=data.error,
            time_ticks=_format.time_ticks(seconds),
            freq_ticks=_format.freq_ticks(data.sr, _images.SPEC_FMIN),
        )
        self._cache[int(row)] = (data, media)
        while len(self._cache) > self._cache_rows:
            self._cache.popitem(last=False)
        return media
