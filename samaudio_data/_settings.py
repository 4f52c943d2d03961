"""Settings: defaults, environment variables and the checks of every parameter.

Everything here runs before anything is sent: a wrong value is an
:class:`~samaudio_data.errors.InvalidRequestError` that says what to pass instead.

=============================  ============================================================
environment variable           meaning
=============================  ============================================================
``SEGMIND_API_KEY``            the API key
``SAMAUDIO_ENDPOINT``          the endpoint URL (default: the provider's v1 URL)
``SAMAUDIO_CACHE_DIR``         the cache directory (default ``~/.cache/samaudio_data``)
``SAMAUDIO_PRICE_PER_CALL``    dollars per billed call, for estimates (default 0.062)
``SAMAUDIO_RATE_LIMIT``        the account's limit: requests per minute, or ``free``/``paid``
=============================  ============================================================

Example
-------
>>> check_params(output_format="mp3", reranking_candidates=4)
{'output_format': 'mp3', 'reranking_candidates': 4}
>>> requests_per_minute("paid")
50.0
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import errors

DEFAULT_ENDPOINT = "https://api.segmind.com/v1/sam-audio-large"
DEFAULT_PRICE_PER_CALL = 0.062  # published figure; drifts, so it is a setting
PLANS = {"free": 5.0, "paid": 50.0}  # requests per minute, from the provider's pages
OUTPUT_FORMATS = ("wav", "mp3")
CHANNEL_POLICIES = ("mix", "each")
TRANSPORTS = ("auto", "sync", "queue")
UPLOAD_FORMATS = ("wav", "flac")
AUDIO_ENCODINGS = ("base64", "data_uri")
CANDIDATES = range(1, 9)  # reranking_candidates the endpoint accepts: 1..8


def default_cache_dir() -> Path:
    """``$SAMAUDIO_CACHE_DIR``, else ``$XDG_CACHE_HOME/samaudio_data`` or ``~/.cache/...``."""
    env = os.environ.get("SAMAUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "samaudio_data"


def cache_location(value: Any) -> Path | str | None:
    """Where answers are cached: a local directory (a ``Path``), an fsspec URL kept as a
    string (``s3://bucket/prefix``, ``gs://...``: storage shared by the nodes of a cluster),
    or None (no cache). ``None``/``True`` mean the default directory, ``False`` none.

    >>> cache_location("s3://bucket/samaudio"), cache_location(False)
    ('s3://bucket/samaudio', None)
    >>> cache_location("file:///tmp/x")
    PosixPath('/tmp/x')
    """
    if value is None or value is True:
        return default_cache_dir()
    if value is False or value == "":
        return None
    text = os.fspath(value)
    if not isinstance(text, str):
        raise errors.InvalidRequestError(f"cache_dir must be a path or a URL, got {value!r}.")
    scheme, sep, rest = text.partition("://")
    if sep and scheme.isidentifier():
        if scheme == "file":
            return Path(rest)
        return text.rstrip("/")
    return Path(text).expanduser()


def api_key(value: str | None) -> str | None:
    """The key given, else ``$SEGMIND_API_KEY``; surrounding whitespace removed.

    A key with whitespace or control characters inside is refused, without showing it.

    >>> api_key("  sk-abc\\n")
    'sk-abc'
    """
    key = value if value is not None else os.environ.get("SEGMIND_API_KEY")
    if key is None:
        return None
    if not isinstance(key, str):
        raise errors.InvalidRequestError(f"api_key must be a string, got {type(key).__name__}.")
    key = key.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise errors.InvalidRequestError(
            f"the API key ({len(key)} characters) contains whitespace or control characters "
            "inside it; copy it again from the provider's dashboard (the key is not shown)."
        )
    return key or None


def endpoint(value: str | None) -> str:
    """The endpoint URL given, else ``$SAMAUDIO_ENDPOINT``, else the provider's."""
    url = value or os.environ.get("SAMAUDIO_ENDPOINT") or DEFAULT_ENDPOINT
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise errors.InvalidRequestError(f"endpoint must be an http(s) URL, got {url!r}.")
    from ._net.urls import check_url  # judged as the HTTP stack will connect

    return check_url(url, error=errors.InvalidRequestError).rstrip("/")


def price_per_call(value: float | None) -> float:
    """The price given, else ``$SAMAUDIO_PRICE_PER_CALL``, else the published figure."""
    raw: Any = value
    if raw is None:
        raw = os.environ.get("SAMAUDIO_PRICE_PER_CALL", DEFAULT_PRICE_PER_CALL)
    try:
        price = float(raw)
    except (TypeError, ValueError):
        price = math.nan
    if not math.isfinite(price) or price < 0:
        raise errors.InvalidRequestError(
            f"price_per_call must be a number of dollars >= 0, got {raw!r}."
        )
    return price


def requests_per_minute(value: float | str | None) -> float | None:
    """The account's limit: a number, a plan name (``free``, ``paid``), else
    ``$SAMAUDIO_RATE_LIMIT``; None when unknown (the client then adapts to 429s)."""
    if value is None:
        value = os.environ.get("SAMAUDIO_RATE_LIMIT") or None
        if value is None:
            return None
    if isinstance(value, str) and value.strip().lower() in PLANS:
        return PLANS[value.strip().lower()]
    try:
        rpm = float(value)
    except (TypeError, ValueError):
        rpm = math.nan
    if not math.isfinite(rpm) or rpm <= 0:
        raise errors.InvalidRequestError(
            f"requests_per_minute must be a number > 0 or a plan name ({', '.join(PLANS)}), "
            f"got {value!r}."
        )
    return rpm


def positive(name: str, value: Any, *, integer: bool = False, zero: bool = False) -> Any:
    """``value`` if it is a finite number > 0 (>= 0 with ``zero``), else a clear error.

    >>> positive("max_concurrency", 4, integer=True)
    4
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (float(value) >= 0 if zero else float(value) > 0)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise errors.InvalidRequestError(
            f"{name} must be {kind} {'>= 0' if zero else '> 0'}, got {value!r}."
        )
    return int(value) if integer else float(value)


def check_description(description: Any) -> str:
    """A usable description, stripped; a clear error otherwise.

    >>> check_description("  dog barking ")
    'dog barking'
    """
    if not isinstance(description, str) or not description.strip():
        raise errors.InvalidRequestError(
            f"description must be a non-empty string such as 'man speaking', got {description!r}."
        )
    if len(description) > 1000:
        raise errors.InvalidRequestError(
            f"description is {len(description)} characters; keep it short ('dog barking')."
        )
    return description.strip()


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices`` (strings or whole numbers); a clear error
    otherwise.

    >>> check_choice("channels", "each", CHANNEL_POLICIES)
    'each'
    """
    known = isinstance(value, (str, int)) and not isinstance(value, bool)
    if not known or value not in choices:
        raise errors.InvalidRequestError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}."
        )
    return value


def check_candidates(value: Any, name: str = "reranking_candidates") -> int:
    """A whole number from 1 to 8 (what the endpoint accepts); a clear error otherwise.

    >>> check_candidates(4)
    4
    """
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if not ok or int(value) not in CANDIDATES:
        raise errors.InvalidRequestError(
            f"{name} must be an integer from {CANDIDATES[0]} to {CANDIDATES[-1]}, got {value!r}."
        )
    return int(value)


def check_params(**params: Any) -> dict[str, Any]:
    """Validate endpoint parameters (``output_format``, ``reranking_candidates``)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name == "output_format":
            check_choice("output_format", value, OUTPUT_FORMATS)
        elif name == "reranking_candidates":
            value = check_candidates(value)
        else:
            raise errors.InvalidRequestError(
                f"unknown parameter {name!r}; known: output_format, reranking_candidates, channels."
            )
        out[name] = value
    return out


def check_channels(value: Any) -> str:
    """``"mix"`` or ``"each"``; a clear error otherwise."""
    return check_choice("channels", value, CHANNEL_POLICIES)
