"""Waveform and spectrogram images as PNG bytes (numpy + zlib: no matplotlib, a few ms each).

The three lanes of a row (original, isolated, residual) are drawn on one shared scale: the
same peak fills the waveform height in every lane and the same reference power is the top of
every spectrogram's colour scale, so a quieter lane looks quieter. Silence is drawn dark
(the bottom of the colour map), also when the whole row is silent.

Axes (time and frequency ticks) are not burnt into the images: :mod:`._format` computes them
and the browser draws them, so they stay sharp at any width.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

#: lowest frequency of the spectrogram's log-frequency axis, in Hz
SPEC_FMIN = 40.0
#: colour range of the spectrogram below the reference, in dB
DYNAMIC_DB = 70.0
#: a reference power never below this much under full scale, so silence stays dark
_FLOOR_DB = -90.0


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(height, width, 3)`` uint8 array as PNG bytes.

    >>> png_bytes(np.zeros((2, 3, 3), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 3))
        + chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of PNG bytes.

    >>> png_size(png_bytes(np.zeros((2, 3, 3), dtype=np.uint8)))
    (3, 2)
    """
    return struct.unpack(">II", bytes(data[16:24]))


def _colormap() -> np.ndarray:
    # a perceptual dark-to-bright map (magma-like), 256 entries
    anchors = np.array(
        [
            (0, 0, 4),
            (40, 11, 84),
            (101, 21, 110),
            (159, 42, 99),
            (212, 72, 66),
            (245, 125, 21),
            (250, 193, 39),
            (252, 253, 191),
        ],
        float,
    )
    x = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1).astype(np.uint8)


CMAP = _colormap()
#: the colour of silence in a spectrogram (the bottom of the colour map)
SILENCE_RGB = tuple(int(c) for c in CMAP[0])


def waveform_png(
    y: np.ndarray | None, scale: float, width: int, height: int, colour: tuple[int, int, int]
) -> bytes:
    """Min/max envelope of mono ``y`` (one column per pixel); ``scale`` fills the height.

    Pass the same ``scale`` (see :func:`shared_scale`) for lanes that must compare.

    >>> png_size(waveform_png(np.sin(np.arange(8000) / 9), 1.0, 300, 56, (31, 119, 180)))
    (300, 56)
    """
    img = np.full((height, width, 3), 252, np.uint8)
    mid = height // 2
    img[mid, :] = (215, 215, 215)
    if y is None or y.size == 0:
        return png_bytes(img)
    y = np.nan_to_num(np.asarray(y, np.float64))
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


def nfft_for(sr: int) -> int:
    """FFT size used for a sample rate (512 up to 24 kHz, else 1024).

    >>> nfft_for(16000), nfft_for(44100)
    (512, 1024)
    """
    return 512 if sr <= 24000 else 1024


def power_frames(y: np.ndarray, sr: int, frames: int) -> np.ndarray:
    """Power spectra of ``frames`` Hann-windowed frames spread over mono ``y``:
    ``(frames, nfft/2 + 1)``.

    >>> power_frames(np.zeros(4000), 16000, 10).shape
    (10, 257)
    """
    nfft = nfft_for(sr)
    y = np.nan_to_num(np.asarray(y, np.float64))
    if y.shape[-1] < nfft:
        y = np.pad(y, (0, nfft - y.shape[-1]))
    starts = np.linspace(0, y.shape[-1] - nfft, frames).astype(np.int64)
    win = np.hanning(nfft)
    return np.abs(np.fft.rfft(y[starts[:, None] + np.arange(nfft)[None, :]] * win, axis=1)) ** 2


def full_scale_power(sr: int) -> float:
    """Peak bin power of a full-scale sine under the Hann window: the 0 dBFS reference.

    >>> full_scale_power(16000)
    16384.0
    """
    return (nfft_for(sr) / 4.0) ** 2


def band_power(y: np.ndarray, sr: int, width: int, height: int) -> np.ndarray:
    """Power of mono ``y`` in ``height`` log-spaced bands (:data:`SPEC_FMIN` to ``sr / 2``)
    over at most ``width`` frames (fewer for short clips: one per quarter window):
    ``(frames, height)``, the lowest band first.

    >>> band_power(np.zeros(16000), 16000, 300, 56).shape
    (125, 56)
    """
    nfft = nfft_for(sr)
    frames = int(min(width, max(16, np.size(y) // (nfft // 4))))
    p = power_frames(y, sr, frames)
    bins = p.shape[1]
    f = np.geomspace(SPEC_FMIN, sr / 2.0, height + 1) * nfft / sr
    lo = np.clip(np.floor(f[:-1]).astype(np.int64), 0, bins - 1)
    hi = np.clip(np.maximum(lo + 1, np.ceil(f[1:]).astype(np.int64)), 1, bins)
    cs = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p, axis=1)], axis=1)
    return (cs[:, hi] - cs[:, lo]) / (hi - lo)


def shared_scale(
    lanes: Sequence[np.ndarray | None], sr: int, bands: Sequence[np.ndarray | None] | None = None
) -> tuple[float, float]:
    """``(peak, reference power)`` shared by the lanes of one row.

    The peak is the largest absolute sample of any lane (1.0 if all are silent); the
    reference power is the loudest band of any lane (``bands`` from :func:`band_power`, or
    computed here), but never below -90 dBFS, so a silent row is drawn dark instead of being
    stretched up to a bright colour.

    >>> peak, ref = shared_scale([np.zeros(1600), None], 16000)
    >>> peak, ref == full_scale_power(16000) * 10 ** -9
    (1.0, True)
    """
    ys = [y for y in lanes if y is not None and np.size(y)]
    peak = max((float(np.nanmax(np.abs(y))) for y in ys), default=0.0)
    if bands is None:
        bands = [band_power(y, sr, 64, 32) for y in ys]
    ref = max((float(np.max(b)) for b in bands if b is not None), default=0.0)
    floor = full_scale_power(sr) * 10 ** (_FLOOR_DB / 10)
    return (peak if peak > 0 else 1.0), max(ref, floor)


def spectrogram_png(
    y: np.ndarray | None,
    sr: int,
    ref_power: float,
    width: int,
    height: int,
    dynamic_db: float = DYNAMIC_DB,
    bands: np.ndarray | None = None,
) -> bytes:
    """Spectrogram of mono ``y``, ``width`` by ``height`` pixels: time left to right,
    log-spaced frequency from :data:`SPEC_FMIN` (bottom) to ``sr / 2`` (top), coloured from
    ``ref_power`` (bright) down ``dynamic_db`` dB (dark). Silence is dark. ``bands`` (from
    :func:`band_power` with the same size) saves computing it again.

    >>> img = spectrogram_png(np.zeros(16000), 16000, 1.0, 300, 56)
    >>> png_size(img), bool((png_pixels(img) == SILENCE_RGB).all())
    ((300, 56), True)
    """
    if y is None or np.size(y) == 0:
        return png_bytes(np.zeros((height, width, 3), np.uint8) + CMAP[0])
    pooled = band_power(y, sr, width, height) if bands is None else bands
    ref = max(float(ref_power), full_scale_power(sr) * 10 ** (_FLOOR_DB / 10))
    db = 10 * np.log10(np.maximum(pooled, 1e-30) / ref)
    level = np.clip((db + dynamic_db) / dynamic_db, 0, 1)
    cols = (np.arange(width) * level.shape[0]) // width  # stretch short clips
    img = CMAP[(level[cols] * 255).astype(np.uint8)]  # (width, height, 3)
    return png_bytes(img.transpose(1, 0, 2)[::-1])


def png_pixels(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`png_bytes` back to ``(height, width, 3)`` uint8
    (for checking what was drawn).

    >>> png_pixels(png_bytes(np.full((2, 3, 3), 7, np.uint8)))[1, 2].tolist()
    [7, 7, 7]
    """
    data = bytes(data)
    w, h = png_size(data)
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        if tag == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    return raw[:, 1:].reshape(h, w, 3).copy()
