"""Find the audio in a 200 answer, whatever shape the endpoint gives it.

The endpoint's documentation says only "returns audio". It may be raw WAV or MP3 bytes, or
JSON carrying base64 audio, a ``data:`` URI or a URL to download. The format is told by the
bytes, not by the Content-Type header alone. Anything else is a
:class:`~samaudio_data.errors.ResponseDecodeError` with a short excerpt of the body.

Example
-------
>>> import base64, json
>>> wav = b"RIFF\\x24\\x00\\x00\\x00WAVEfmt "
>>> audio_bytes(json.dumps({"audio": base64.b64encode(wav).decode()}).encode(), fetch=None)
(b'RIFF$\\x00\\x00\\x00WAVEfmt ', 'wav')
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator

from ..audio import excerpt, sniff_format
from ..errors import ResponseDecodeError

# keys most likely to hold the audio, tried first
_PREFERRED = ("audio", "output", "audio_url", "url", "result", "data", "file", "audio_base64")


def audio_bytes(body: bytes, fetch: Callable[[str], bytes] | None) -> tuple[bytes, str]:
    """Return ``(audio file bytes, format)`` found in a 200 body.

    ``fetch(url) -> bytes`` downloads a URL found in JSON (None: URLs are not followed).
    """
    fmt = sniff_format(body)
    if fmt:
        return body, fmt
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ResponseDecodeError(
            f"the endpoint answered 200 with {len(body)} bytes that are neither audio nor JSON; "
            f"body starts with {excerpt(body)}"
        ) from None
    for value in _strings(doc):
        found = _audio_from_string(value, fetch)
        if found:
            return found
    error = doc.get("error") if isinstance(doc, dict) else None
    what = f"an error: {error!r}" if error else "JSON without audio"
    raise ResponseDecodeError(
        f"the endpoint answered 200 with {what}; body starts with {excerpt(body, 200)}"
    )


def _strings(doc) -> Iterator[str]:
    """String values of a JSON document, likely audio keys first, depth first."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        keys = sorted(
            doc, key=lambda k: (k not in _PREFERRED, _PREFERRED.index(k) if k in _PREFERRED else 0)
        )
        for k in keys:
            yield from _strings(doc[k])
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)


def _audio_from_string(value: str, fetch) -> tuple[bytes, str] | None:
    text = value.strip()
    if text.startswith(("http://", "https://")):
        if fetch is None:
            return None
        data = fetch(text)
        fmt = sniff_format(data)
        if not fmt:
            raise ResponseDecodeError(
                f"the audio URL in the answer gave {len(data)} bytes that are not audio; "
                f"they start with {excerpt(data)}"
            )
        return data, fmt
    if text.startswith("data:"):
        text = text.partition(",")[2]
    text = "".join(text.split())  # base64 may be wrapped over lines
    if len(text) < 16:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    fmt = sniff_format(data)
    return (data, fmt) if fmt else None
