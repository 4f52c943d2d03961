"""Encoding and decoding audio file bytes (WAV, FLAC, MP3, OGG) and naming their format.

16-bit PCM and 32-bit float WAV, the formats on the hot path (every upload, every answer,
every cache hit), are written and read with numpy: 9-11x faster than soundfile, with the
samples soundfile (libsndfile) writes. Float WAVs carry the 18-byte ``fmt`` chunk and the
``fact`` chunk the WAVE specification asks for (sox warns without them). Everything else goes
through soundfile.
"""

from __future__ import annotations

import io
import struct
from typing import NamedTuple

import numpy as np

from ..errors import IncompleteResponseError, ResponseDecodeError

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def _as_2d(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    return y[np.newaxis] if y.ndim == 1 else y


def _wav_header(sr: int, channels: int, bits: int, fmt_tag: int, n: int) -> bytes:
    """A RIFF/WAVE header for ``n`` frames.

    PCM gets the classic 16-byte ``fmt`` chunk. Any other format (32-bit float) gets the
    18-byte ``fmt`` chunk with its ``cbSize`` and a ``fact`` chunk holding the frame count, as
    the WAVE specification asks for non-PCM data: sox, soxi and editors read it without a
    warning (a 16-byte ``fmt`` chunk on float data makes sox warn on every file).
    """
    block = channels * bits // 8
    data_bytes = n * block
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, int(sr), int(sr) * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", 16) + fmt
    if fmt_tag != _PCM:
        chunks = (
            b"fmt "
            + struct.pack("<I", 18)
            + fmt
            + struct.pack("<H", 0)
            + b"fact"
            + struct.pack("<II", 4, n & 0xFFFFFFFF)
        )
    return (
        b"RIFF"
        + struct.pack("<I", 4 + len(chunks) + 8 + data_bytes)
        + b"WAVE"
        + chunks
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def fix_float_wav_header(path) -> bool:
    """Rewrite, in place, the header libsndfile gives a 32-bit float WAV file (a 16-byte
    ``fmt`` chunk, ``fact``, ``PEAK``) as :func:`encode_wav` writes it (18-byte ``fmt``,
    ``fact``, then a ``JUNK`` pad of the same total size): no sample moves. Returns whether
    the file was changed; anything but that exact layout is left alone.

    >>> import soundfile as sf, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "f.wav")
    >>> sf.write(p, np.zeros(10), 8000, subtype="FLOAT")
    >>> fix_float_wav_header(p), wav_layout(open(p, "rb").read()).declared_bytes
    (True, 40)
    """
    with open(path, "r+b") as fh:
        head = fh.read(4096)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        pos, chunks = 12, {}
        while pos + 8 <= len(head):
            cid, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
            chunks[cid] = (pos, size)
            if cid == b"data":
                break
            pos += 8 + size + (size & 1)
        if b"data" not in chunks or b"fmt " not in chunks:
            return False
        fpos, fsize = chunks[b"fmt "]
        tag = struct.unpack("<H", head[fpos + 8 : fpos + 10])[0]
        if fsize != 16 or tag != _FLOAT or fpos != 12:
            return False
        room = chunks[b"data"][0] - 12  # bytes between "WAVE" and the data chunk
        fmt = head[fpos + 8 : fpos + 24]
        frames = struct.unpack("<I", head[chunks[b"data"][0] + 4 : chunks[b"data"][0] + 8])[
            0
        ] // max(1, struct.unpack("<H", head[fpos + 20 : fpos + 22])[0])
        new = (
            b"fmt "
            + struct.pack("<I", 18)
            + fmt
            + struct.pack("<H", 0)
            + b"fact"
            + struct.pack("<II", 4, frames)
        )
        pad = room - len(new) - 8
        if pad < 0:
            return False
        new += b"JUNK" + struct.pack("<I", pad) + bytes(pad)
        fh.seek(12)
        fh.write(new)
    return True


def pcm16(y: np.ndarray) -> np.ndarray:
    """Float samples to int16 exactly as libsndfile writes them (``floor(x * 32768)``, clipped).

    >>> pcm16(np.array([1.0, -1.0, 0.5, -1e-9])).tolist()
    [32767, -32768, 16384, -1]
    """
    # float32 times a power of two is exact, and so is floor: no float64 round trip needed
    scaled = np.asarray(y, dtype=np.float32) * np.float32(32768.0)
    np.floor(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype("<i2")


def encode_wav(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    """Encode float audio (``(n,)`` or ``(channels, n)``) as WAV bytes.

    >>> encode_wav(np.zeros(10), 16000)[:4]
    b'RIFF'
    """
    if subtype in ("PCM_16", "FLOAT"):
        y2 = _as_2d(y)
        if subtype == "PCM_16":
            samples, bits, tag = pcm16(y2), 16, _PCM
        else:
            samples, bits, tag = np.asarray(y2, dtype="<f4"), 32, _FLOAT
        frames = np.ascontiguousarray(samples.T)  # interleaved (n, channels)
        return _wav_header(sr, y2.shape[0], bits, tag, y2.shape[-1]) + frames.tobytes()
    return encode_pcm(y, sr, "WAV", subtype)


def encode_flac(y: np.ndarray, sr: int) -> bytes:
    """Encode float audio as 16-bit FLAC bytes (lossless for 16-bit data, about half of WAV).

    >>> encode_flac(np.zeros(100), 16000)[:4]
    b'fLaC'
    """
    return encode_pcm(y, sr, "FLAC", "PCM_16")


def encode_mp3(y: np.ndarray, sr: int) -> bytes:
    """Encode float audio as MP3 bytes.

    >>> encode_mp3(np.zeros(4800), 48000)[:1]
    b'\\xff'
    """
    return encode_pcm(y, sr, "MP3", None)


def encode_pcm(y: np.ndarray, sr: int, fmt: str, subtype: str | None) -> bytes:
    """``y`` (``(n,)`` or ``(channels, n)``) as a soundfile ``fmt``/``subtype`` file's bytes."""
    import soundfile as sf

    data = np.asarray(y)
    if data.dtype != np.int16:
        data = data.astype(np.float32)
    data = data.T if data.ndim == 2 else data  # soundfile wants (n, channels)
    buf = io.BytesIO()
    sf.write(buf, data, int(sr), format=fmt, subtype=subtype)
    return buf.getvalue()


def sniff_format(data: bytes) -> str | None:
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


class WavLayout(NamedTuple):
    """Where a WAV file's samples are and what they are."""

    fmt_tag: int
    channels: int
    sr: int
    bits: int
    data_offset: int
    declared_bytes: int  # what the data chunk's header says
    available_bytes: int  # what is really there


def wav_layout(data: bytes) -> WavLayout | None:
    """Parse a RIFF/WAVE file's chunks; None if it is not a WAV file that can be parsed.

    >>> wav_layout(encode_wav(np.zeros(10), 8000)).declared_bytes
    20
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"fmt " and size >= 16 and body + 16 <= len(data):
            tag, ch, sr, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if tag == _EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                tag = struct.unpack("<H", data[body + 24 : body + 26])[0]
            fmt = (tag, ch, sr, bits)
        elif cid == b"data":
            if fmt is None:
                return None
            return WavLayout(
                *fmt, data_offset=body, declared_bytes=size, available_bytes=len(data) - body
            )
        pos = body + size + (size & 1)
    return None


def check_complete(data: bytes, fmt: str) -> None:
    """Raise :class:`~samaudio_data.errors.IncompleteResponseError` if a WAV or FLAC file
    holds fewer samples than its own header declares (an answer cut short).

    >>> check_complete(encode_wav(np.zeros(100), 8000)[:-10], "wav")
    Traceback (most recent call last):
    ...
    samaudio_data.errors.IncompleteResponseError: the WAV answer is cut short: its header
    declares 200 bytes of samples but 190 arrived.
    """
    if fmt == "wav":
        lay = wav_layout(data)
        if (
            lay is not None
            and lay.declared_bytes not in (0, 0xFFFFFFFF)
            and lay.available_bytes < lay.declared_bytes
        ):
            raise IncompleteResponseError(
                f"the WAV answer is cut short: its header declares {lay.declared_bytes} bytes "
                f"of samples but {lay.available_bytes} arrived."
            )
    elif fmt == "flac" and len(data) >= 26:
        # STREAMINFO: 36 bits of total samples at byte 21 (4 low bits) .. 25
        total = int.from_bytes(data[21:26], "big") & 0xFFFFFFFFF
        if total:
            import soundfile as sf

            try:
                frames = sf.info(io.BytesIO(data)).frames
                got = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0].shape[0]
            except Exception as exc:
                raise IncompleteResponseError(
                    f"the FLAC answer cannot be read whole ({exc})."
                ) from exc
            if got < min(frames, total):
                raise IncompleteResponseError(
                    f"the FLAC answer is cut short: {got} of {total} samples arrived."
                )


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode WAV/MP3/FLAC/OGG bytes to float32 ``(channels, n)`` and the sample rate.

    Raises :class:`~samaudio_data.errors.ResponseDecodeError` with an excerpt when the bytes
    are not audio.

    >>> y, sr = decode_audio(encode_wav(np.zeros((2, 100)), 16000))
    >>> y.shape, sr
    ((2, 100), 16000)
    """
    lay = wav_layout(data)
    if (
        lay is not None
        and lay.channels > 0
        and ((lay.fmt_tag == _PCM and lay.bits == 16) or (lay.fmt_tag == _FLOAT and lay.bits == 32))
    ):
        width = lay.bits // 8
        usable = min(lay.declared_bytes, lay.available_bytes)
        n = usable // (width * lay.channels)
        raw = np.frombuffer(
            data,
            dtype="<i2" if width == 2 else "<f4",
            count=n * lay.channels,
            offset=lay.data_offset,
        )
        y = raw.reshape(n, lay.channels).T
        y = (y.astype(np.float32) / np.float32(32768)) if width == 2 else y.astype(np.float32)
        if n == 0:
            raise ResponseDecodeError(
                f"the answer decodes to 0 samples; starts with {excerpt(data)}"
            )
        return np.ascontiguousarray(y), lay.sr
    import soundfile as sf

    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise ResponseDecodeError(
            f"could not decode {len(data)} bytes as audio ({exc}); starts with {excerpt(data)}"
        ) from exc
    if y.shape[0] == 0:
        raise ResponseDecodeError(f"the answer decodes to 0 samples; starts with {excerpt(data)}")
    return np.ascontiguousarray(y.T), int(sr)


def excerpt(data: bytes, limit: int = 80) -> str:
    """A short printable excerpt of a body, for error messages.

    >>> excerpt(b'{"error": "bad key"}\\n')
    '\\'{"error": "bad key"}.\\''
    """
    text = data[:limit].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else "." for ch in text)
    return repr(text + ("..." if len(data) > limit else ""))
