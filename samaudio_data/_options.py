"""A client's settings: a few small frozen groups, checked once, read-only afterwards.

:class:`Options` is everything a :class:`~samaudio_data.Client` was configured with. The
settings that belong together are grouped (:class:`Retries`, :class:`RateLimits`,
:class:`Chunking`, :class:`Upload`); each group checks its values when it is made and can
be passed to the client as a whole (``Client(retries=Retries(max_retries=2))``) or field by
field as plain keywords (``Client(max_retries=2)``). Nothing can change afterwards: the
cache key and the request are built from the same values for the client's whole life.
:meth:`Options.replace` (behind :meth:`samaudio_data.Client.with_options`) makes a modified
copy, checked the same way.

Example
-------
>>> opts = Options.build(max_retries=2, chunking=Chunking(chunk_seconds=10))
>>> opts.retries.max_retries, opts.chunking.chunk_seconds, opts.chunking.overlap_seconds
(2, 10.0, 2.0)
>>> opts.replace(upload_format="flac").upload
Upload(upload_format='flac', audio_encoding='base64')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import _settings as settings
from . import audio, errors

Timeout = float | tuple[float, float]


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


UNSET: Any = _Unset()
"""A grouped setting not given as a plain keyword: its group's value applies."""


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # a frozen dataclass normalising its own field


@dataclass(frozen=True)
class Retries:
    """Attempts after a fault (5xx, a dropped connection, a timeout, an answer cut short) and
    the waits between them. 429s wait ``Retry-After`` (at most ``retry_after_max`` seconds)
    and never use up ``max_retries``.

    >>> Retries(max_retries=0).backoff_max
    60.0
    """

    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        _set(
            self,
            "max_retries",
            settings.positive("max_retries", self.max_retries, integer=True, zero=True),
        )
        for name in ("backoff_base", "backoff_max", "retry_after_max"):
            _set(self, name, settings.positive(name, getattr(self, name), zero=True))


@dataclass(frozen=True)
class RateLimits:
    """The account's limit and how many requests may be in flight (shared by every client
    and process on the endpoint). ``requests_per_minute``: a number, ``"free"``/``"paid"``,
    else ``$SAMAUDIO_RATE_LIMIT``; None: learned from the first 429. A 429 without
    ``Retry-After`` waits a whole ``rate_window``.

    >>> RateLimits(requests_per_minute="paid").requests_per_minute
    50.0
    """

    requests_per_minute: float | str | None = None
    max_concurrency: int = 16
    rate_window: float = 60.0

    def __post_init__(self) -> None:
        _set(self, "requests_per_minute", settings.requests_per_minute(self.requests_per_minute))
        _set(
            self,
            "max_concurrency",
            settings.positive("max_concurrency", self.max_concurrency, integer=True),
        )
        _set(self, "rate_window", settings.positive("rate_window", self.rate_window))

    @property
    def per_minute(self) -> float | None:
        """``requests_per_minute`` as checked: a number, or None when unknown."""
        return cast(float | None, self.requests_per_minute)


@dataclass(frozen=True)
class Chunking:
    """Clips longer than ``chunk_seconds`` go as overlapping windows, each its own paid and
    cached call, joined with a crossfade over ``overlap_seconds``; ``max_seconds`` refuses
    longer clips before anything is sent.

    >>> Chunking(chunk_seconds=10, overlap_seconds=1)
    Chunking(chunk_seconds=10.0, overlap_seconds=1.0, max_seconds=None)
    """

    chunk_seconds: float = audio.DEFAULT_CHUNK_SECONDS
    overlap_seconds: float = audio.DEFAULT_OVERLAP_SECONDS
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        chunk, overlap = audio.check_chunk_settings(self.chunk_seconds, self.overlap_seconds)
        _set(self, "chunk_seconds", chunk)
        _set(self, "overlap_seconds", overlap)
        if self.max_seconds is not None:
            _set(self, "max_seconds", settings.positive("max_seconds", self.max_seconds))


@dataclass(frozen=True)
class Upload:
    """How the audio is written into the request: ``upload_format`` "wav" or "flac", and
    ``audio_encoding`` "base64" or "data_uri". Part of every cache key.

    >>> Upload(upload_format="mp3")
    Traceback (most recent call last):
    ...
    samaudio_data.errors.InvalidRequestError: upload_format must be one of 'wav', 'flac', got 'mp3'.
    """

    upload_format: str = "wav"
    audio_encoding: str = "base64"

    def __post_init__(self) -> None:
        settings.check_choice("upload_format", self.upload_format, settings.UPLOAD_FORMATS)
        settings.check_choice("audio_encoding", self.audio_encoding, settings.AUDIO_ENCODINGS)


GROUPS: dict[str, type] = {
    "retries": Retries,
    "rate_limits": RateLimits,
    "chunking": Chunking,
    "upload": Upload,
}
GROUP_OF = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}
"""The group each plain keyword belongs to, e.g. ``"max_retries" -> "retries"``."""

# the pickled state (and so every dataset fingerprint) lists the settings in this order
STATE_KEYS = (
    "endpoint",
    "timeout",
    "max_retries",
    "max_concurrency",
    "requests_per_minute",
    "rate_window",
    "retry_after_max",
    "backoff_base",
    "backoff_max",
    "price_per_call",
    "cache_dir",
    "cache_namespace",
    "chunk_seconds",
    "overlap_seconds",
    "max_seconds",
    "defaults",
    "channels",
    "audio_encoding",
    "upload_format",
    "progress",
    "transport",
    "queue_retention",
)


@dataclass(frozen=True)
class Options:
    """Every setting of a client (see :class:`~samaudio_data.Client` for their meaning)."""

    endpoint: str = settings.DEFAULT_ENDPOINT
    timeout: Timeout = (10.0, 300.0)
    retries: Retries = field(default_factory=Retries)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    chunking: Chunking = field(default_factory=Chunking)
    upload: Upload = field(default_factory=Upload)
    price_per_call: float = settings.DEFAULT_PRICE_PER_CALL
    cache_dir: Path | None = None
    cache_namespace: str | None = None
    output_format: str = "wav"
    reranking_candidates: int = 1
    channels: str = "mix"
    progress: bool = True
    transport: str = "auto"
    queue_retention: float = 3600.0
    coordinator: Any = None  # None: limits in a file; a samaudio_data.ray.Coordinator: an actor

    @classmethod
    def build(cls, **given: Any) -> Options:
        """Options from a client's keywords (plain or grouped); environment defaults apply
        to what is not given (``endpoint``, ``price_per_call``, ``cache_dir``, ...)."""
        given.setdefault("endpoint", None)
        given.setdefault("price_per_call", None)
        given.setdefault("cache_dir", None)
        return cls().replace(**given)

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` (plain keywords or whole groups), checked as new.

        >>> Options().replace(max_retries=1, progress=False).retries.max_retries
        1
        """
        flat: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for name, value in changes.items():
            if name in GROUP_OF:
                flat.setdefault(GROUP_OF[name], {})[name] = value
            elif name in GROUPS:
                if not isinstance(value, GROUPS[name]):
                    raise errors.InvalidRequestError(
                        f"{name} must be a samaudio_data.{GROUPS[name].__name__}, got "
                        f"{type(value).__name__}."
                    )
                top[name] = value
            elif name in {f.name for f in dataclasses.fields(self)}:
                top[name] = value
            else:
                raise errors.InvalidRequestError(
                    f"unknown setting {name!r}; the settings are listed in the README's "
                    "'Settings' (help(samaudio_data.Client))."
                )
        for group, fields in flat.items():
            if group in top:
                raise errors.InvalidRequestError(
                    f"{', '.join(fields)} given both as a keyword and in {group}=; pass "
                    "one or the other."
                )
            top[group] = dataclasses.replace(getattr(self, group), **fields)
        return dataclasses.replace(self, **{k: _check(k, v) for k, v in top.items()})

    @property
    def identity(self) -> str:
        """The endpoint's identity in cache keys and fingerprints (never the key)."""
        return self.cache_namespace or self.endpoint

    @property
    def defaults(self) -> dict[str, Any]:
        """The endpoint parameters every call starts from."""
        return {
            "output_format": self.output_format,
            "reranking_candidates": self.reranking_candidates,
        }

    def get(self, name: str) -> Any:
        """One setting by its plain name (``"max_retries"``, ``"upload_format"``, ...)."""
        if name == "defaults":
            return self.defaults
        if name in GROUP_OF:
            return getattr(getattr(self, GROUP_OF[name]), name)
        return getattr(self, name)

    def state(self) -> dict[str, Any]:
        """The settings as a client pickles them (no key): a dataset fingerprint hashes it."""
        state = {k: self.get(k) for k in STATE_KEYS}
        state["cache_dir"] = str(self.cache_dir) if self.cache_dir else None
        if self.coordinator is not None:  # (absent otherwise: fingerprints stay as they were)
            state["coordinator"] = self.coordinator
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Options:
        """The options of a pickled client (also one pickled by an older version)."""
        state = {k: v for k, v in state.items() if k in STATE_KEYS or k == "coordinator"}
        state.update(state.pop("defaults", {}))
        state["cache_dir"] = state.get("cache_dir") or False
        return cls.build(**state)


def _check(name: str, value: Any) -> Any:
    """The checked value of one top-level setting."""
    if name == "endpoint":
        return settings.endpoint(value)
    if name == "price_per_call":
        return settings.price_per_call(value)
    if name == "cache_dir":
        return settings.cache_location(value)
    if name == "timeout":
        return _timeout(value)
    if name == "output_format":
        return settings.check_choice(name, value, settings.OUTPUT_FORMATS)
    if name == "reranking_candidates":
        return settings.check_candidates(value)
    if name == "channels":
        return settings.check_channels(value)
    if name == "transport":
        return settings.check_choice(name, value, settings.TRANSPORTS)
    if name == "queue_retention":
        return settings.positive(name, value)
    if name == "progress":
        return bool(value)
    if name == "cache_namespace" and value is not None and not isinstance(value, str):
        raise errors.InvalidRequestError(
            f"cache_namespace must be a string, got {type(value).__name__}."
        )
    return value


def _timeout(value: Any) -> Timeout:
    """A timeout as given (seconds, or ``(connect, read)``), if every number is > 0."""
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(parts) not in (1, 2):
        raise errors.InvalidRequestError(
            f"timeout must be seconds or a (connect, read) pair, got {value!r}."
        )
    for part in parts:
        settings.positive("timeout", part)
    return tuple(value) if isinstance(value, list) else value


class ReadOnlySettings:
    """Every setting of :class:`Options` as a read-only attribute of its plain name (a base
    of :class:`~samaudio_data.Client`; it uses only ``self._options``). Assigning one raises
    :class:`~samaudio_data.errors.ReadOnlySettingError`.
    """

    _options: Options
    endpoint: str
    timeout: float | tuple[float, float]
    max_retries: int
    max_concurrency: int
    requests_per_minute: float | None
    rate_window: float
    retry_after_max: float
    backoff_base: float
    backoff_max: float
    price_per_call: float
    cache_dir: Path | None
    cache_namespace: str | None
    chunk_seconds: float
    overlap_seconds: float
    max_seconds: float | None
    defaults: dict[str, Any]
    channels: str
    audio_encoding: str
    upload_format: str
    progress: bool
    transport: str
    queue_retention: float
    output_format: str
    reranking_candidates: int
    retries: Retries
    rate_limits: RateLimits
    chunking: Chunking
    upload: Upload
    coordinator: Any

    def __setattr__(self, name: str, value: Any) -> None:
        if name in GROUP_OF or name in STATE_KEYS or hasattr(type(self), name):
            raise errors.ReadOnlySettingError(
                f"Client settings are read-only: the cache key and the request are built "
                f"from the same values for the client's life. Use client.with_options("
                f"{name}=...) for a copy with another {name}."
            )
        object.__setattr__(self, name, value)


def _setting(name: str) -> property:
    return property(
        lambda self: self._options.get(name),
        doc=f"The ``{name}`` setting (read-only; see ``with_options``).",
    )


for _name in (*STATE_KEYS, *GROUPS, "output_format", "reranking_candidates", "coordinator"):
    setattr(ReadOnlySettings, _name, _setting(_name))
