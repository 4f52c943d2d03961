"""Encoding and decoding audio file bytes (WAV, FLAC, MP3, OGG) and naming their format."""

from __future__ import annotations

import io
from typing import Optional, Tuple

import numpy as np

from ..errors import ResponseDecodeError


def encode_wav(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    """Encode float audio (``(n,)`` or ``(channels, n)``) as WAV bytes.

    >>> encode_wav(np.zeros(10), 16000)[:4]
    b'RIFF'
    """
    return _encode(y, sr, "WAV", subtype)


def encode_flac(y: np.ndarray, sr: int) -> bytes:
    """Encode float audio as 16-bit FLAC bytes (lossless, about half the size of WAV)."""
    return _encode(y, sr, "FLAC", "PCM_16")


def encode_mp3(y: np.ndarray, sr: int) -> bytes:
    """Encode float audio as MP3 bytes.

    >>> encode_mp3(np.zeros(4800), 48000)[:1]
    b'\\xff'
    """
    return _encode(y, sr, "MP3", None)


def _encode(y: np.ndarray, sr: int, fmt: str, subtype: Optional[str]) -> bytes:
    import soundfile as sf

    data = np.asarray(y, dtype=np.float32)
    data = data.T if data.ndim == 2 else data  # soundfile wants (n, channels)
    buf = io.BytesIO()
    sf.write(buf, data, int(sr), format=fmt, subtype=subtype)
    return buf.getvalue()


def sniff_format(data: bytes) -> Optional[str]:
    """Name the audio container of ``data`` from its first bytes: wav, mp3, flac, ogg or None.

    >>> sniff_format(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt "), sniff_format(b"{}")
    ('wav', None)
    """
    head = data[:12]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    return None


def decode_audio(data: bytes) -> Tuple[np.ndarray, int]:
    """Decode WAV/MP3/FLAC/OGG bytes to float32 ``(channels, n)`` and the sample rate.

    Raises :class:`~samaudio_data.errors.ResponseDecodeError` with an excerpt when the bytes
    are not audio.

    >>> y, sr = decode_audio(encode_wav(np.zeros((2, 100)), 16000))
    >>> y.shape, sr
    ((2, 100), 16000)
    """
    import soundfile as sf

    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise ResponseDecodeError(
            f"could not decode {len(data)} bytes as audio ({exc}); starts with {excerpt(data)}"
        ) from None
    if y.shape[0] == 0:
        raise ResponseDecodeError(f"the answer decodes to 0 samples; starts with {excerpt(data)}")
    return np.ascontiguousarray(y.T), int(sr)


def excerpt(data: bytes, limit: int = 80) -> str:
    """A short printable excerpt of a body, for error messages."""
    text = data[:limit].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else "." for ch in text)
    return repr(text + ("..." if len(data) > limit else ""))
