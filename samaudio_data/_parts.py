"""The parts a :class:`~samaudio_data.Client` owns, built from its options.

:class:`Parts` holds, explicitly: the HTTP layer and its key (``http``, a
:class:`~samaudio_data._net.transport.Transport`), the answer pipeline (``caller``: cache,
retries, validation, accounting, the queue), the limits shared with other processes
(``limits``), the usage (``usage``) and the one thread pool (``runner``). The client's
operations (:mod:`._many`, :mod:`._longfile`, :mod:`._account`) receive these parts; none
reaches into the client. :func:`build` makes them; a copy made by ``with_options`` shares
those its changes do not touch.

Example
-------
>>> from samaudio_data._options import Options
>>> parts = build(Options.build(cache_dir=False, endpoint="http://127.0.0.1:9/v1/m"), "k")
>>> job = parts.prepare(np.zeros(8000), 8000, "speech", {})
>>> parts.caller.count(job).calls, parts.runner.workers
(1, 16)
>>> parts.close()
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _settings as settings
from . import errors
from ._answers.cache import ResultCache
from ._answers.calls import Caller
from ._answers.jobs import Job, assemble, prepare
from ._models import Budget, Separation, Usage
from ._net.journal import Journal
from ._net.queue import QueueExchange
from ._net.retry import RetryPolicy
from ._net.transport import Transport
from ._options import Options
from ._runner import Runner
from ._state.files import private_dir
from ._state.limits import SharedLimits


@dataclass
class Parts:
    """What a client owns (see the module); ``owned`` lists what its ``close`` closes."""

    options: Options
    http: Transport
    caller: Caller
    limits: SharedLimits
    usage: Usage
    runner: Runner
    owned: list[Any] = field(default_factory=list)

    def request(self, description: Any, params: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
        """The checked description, endpoint parameters and channel mode of a call."""
        params = dict(params)
        channels = settings.check_channels(params.pop("channels", self.options.channels))
        merged = {**self.options.defaults, **settings.check_params(**params)}
        description = settings.check_description(description)
        if self.http.redact(description) != description:
            raise errors.InvalidRequestError(
                "the description contains this client's API key (was it pasted by mistake?); "
                "nothing was sent. Describe the sound instead, e.g. 'man speaking'."
            )
        return description, merged, channels

    def prepare(self, y: np.ndarray, sr: int, description: Any, params: dict[str, Any]) -> Job:
        """One clip's checked, encoded job; a typed error before anything is sent."""
        description, merged, channels = self.request(description, params)
        chunking = self.options.chunking
        return prepare(
            y,
            sr,
            description,
            merged,
            channels=channels,
            upload_format=self.options.upload.upload_format,
            chunk_seconds=chunking.chunk_seconds,
            overlap_seconds=chunking.overlap_seconds,
            max_seconds=chunking.max_seconds,
        )

    def run(self, job: Job, budget: Budget | None) -> Separation:
        """One clip's separation; a long clip's chunks are sent concurrently."""
        started = self.runner.started()
        calls = [
            functools.partial(self.caller.answer, p, job, started=started, budget=budget)
            for p in job.pieces
        ]
        if len(calls) == 1:
            return assemble(job, [calls[0]()])
        seconds = job.original.shape[-1] / job.sr
        return assemble(job, self.runner.gather(calls, desc=f"{seconds:.0f} s clip"))

    def usage_now(self) -> Usage:
        """The usage so far, with the rate at which this client sent its requests (not
        earlier runs' in the shared state) and the account's limit (both per minute)."""
        snap = self.usage.snapshot()
        shared = self.limits.snapshot()
        snap.achieved_rate = snap.send_rate()
        rates = self.options.rate_limits
        stated = rates.per_minute and rates.per_minute * 60.0 / rates.rate_window
        snap.rate_limit = stated or shared["rate_per_minute"]
        return snap

    def close(self) -> None:
        """Close what these parts own (not what they share with the client copied)."""
        for part in self.owned:
            part.close()


def build(options: Options, api_key: str | None, *, like: Parts | None = None) -> Parts:
    """The parts for ``options``; those of ``like`` (a client with the same key being
    copied) that ``options`` leaves unchanged are shared: the connection pool, the limits,
    the usage."""
    owned: list[Any] = []
    old = like.options if like is not None else None
    if (
        like is not None
        and old is not None
        and (old.endpoint, old.timeout, old.rate_limits.max_concurrency)
        == (options.endpoint, options.timeout, options.rate_limits.max_concurrency)
    ):
        http = like.http
    else:
        http = Transport(
            options.endpoint,
            api_key,
            timeout=options.timeout,
            pool_size=max(10, 2 * options.rate_limits.max_concurrency),
        )
        owned.append(http)
    if (
        like is not None
        and old is not None
        and (
            old.identity,
            old.cache_dir,
            old.rate_limits,
            old.retries.retry_after_max,
            old.coordinator,
        )
        == (
            options.identity,
            options.cache_dir,
            options.rate_limits,
            options.retries.retry_after_max,
            options.coordinator,
        )
    ):
        limits = like.limits
    else:
        tag = hashlib.sha256(options.identity.encode()).hexdigest()[:16]
        # without a cache directory: a per-user private one (0700), never a shared /tmp path
        root = _local_dir(options) or private_dir("samaudio_data-limits")
        rates = options.rate_limits
        limits = SharedLimits(
            root / "limits" / tag,
            max_concurrency=rates.max_concurrency,
            requests_per_minute=rates.per_minute,
            rate_window=rates.rate_window,
            retry_after_max=options.retries.retry_after_max,
            coordinator=options.coordinator,
            account=http.account,
        )
    usage = like.usage if like is not None else Usage(rate_limit=options.rate_limits.per_minute)
    retries = options.retries
    policy = RetryPolicy(
        max_retries=retries.max_retries,
        backoff_base=retries.backoff_base,
        backoff_max=retries.backoff_max,
        retry_after_max=retries.retry_after_max,
        rate_window=options.rate_limits.rate_window,
    )
    cache_dir, local = options.cache_dir, _local_dir(options)
    journal = Journal(local / "journal", retention=options.queue_retention) if local else None
    exchange = QueueExchange(
        http, mode=options.transport, journal=journal, state_dir=limits.directory
    )
    caller = Caller(
        http,
        cache=ResultCache(cache_dir) if cache_dir else None,
        limits=limits,
        policy=policy,
        usage=usage,
        price_per_call=options.price_per_call,
        identity=options.identity,
        audio_encoding=options.upload.audio_encoding,
        upload_format=options.upload.upload_format,
        exchange=exchange,
    )
    runner = Runner(
        options.rate_limits.max_concurrency,
        usage=usage,
        limits=limits,
        progress=options.progress,
        cache_dir=cache_dir,
    )
    owned.append(runner)
    return Parts(
        options=options,
        http=http,
        caller=caller,
        limits=limits,
        usage=usage,
        runner=runner,
        owned=owned,
    )


def _local_dir(options: Options) -> Path | None:
    """This machine's directory for the journal and the limits' file: the cache directory,
    or the default one when answers are cached at a URL (shared by a cluster); None when
    nothing is cached."""
    if isinstance(options.cache_dir, Path):
        return options.cache_dir
    return settings.default_cache_dir() if options.cache_dir else None
