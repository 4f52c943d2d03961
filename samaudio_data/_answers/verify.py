"""What an answer must be before it is used, cached or served from the cache: whole,
decodable, and covering the piece it answers. What fails is a typed error (a fresh answer)
or a miss (a cache entry), never a padded guess."""

from __future__ import annotations

import logging

from .. import audio, errors
from .cache import ResultCache
from .jobs import Answer, Piece

log = logging.getLogger("samaudio_data")


def validate(data: bytes, fmt: str, piece: Piece):
    """Decode an answer and check it is whole and covers the piece; typed errors otherwise."""
    audio.check_complete(data, fmt)
    samples, sr = audio.decode_audio(data)
    audio.check_covers(
        samples.shape[-1], sr, piece.upload.frames, piece.upload.sr, lossy=fmt in ("mp3", "ogg")
    )
    return samples, sr


def cached_answer(cache: ResultCache, key: str, piece: Piece) -> Answer | None:
    """The cache entry ``key`` decoded and checked to cover ``piece``, or None (a miss)."""
    hit = cache.get(key)
    if hit is None:
        return None
    try:
        samples, sr = audio.decode_audio(hit.data)
        audio.check_covers(
            samples.shape[-1],
            sr,
            piece.upload.frames,
            piece.upload.sr,
            lossy=hit.fmt in ("mp3", "ogg"),
        )
    except errors.ResponseDecodeError as exc:
        log.warning(
            "cache entry for %s does not decode to this clip's answer (%s); it counts as a miss",
            key[:12],
            exc.message,
        )
        return None
    if hit.legacy:  # written by 0.1 without a checksum: rewrite it verified
        cache.put(key, hit.data, hit.fmt, hit.meta)
    return Answer(samples=samples, sr=sr, fmt=hit.fmt, cached=True)
