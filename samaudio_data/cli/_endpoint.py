"""Which endpoint a command talks to: the client built from the options, or a local endpoint.

:func:`client_for` opens a ``Client`` from a command's options: the real endpoint when
``SEGMIND_API_KEY`` is set, else (or with ``--local``) a local endpoint started in this
process on a port that stays the same across runs (:func:`local_port`), so a rerun finds its
cache and resumes its journal.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import errors

if TYPE_CHECKING:
    from .._client import Client


@contextlib.contextmanager
def client_for(args) -> Iterator[Client]:
    from .._client import Client

    kw = dict(
        max_concurrency=args.max_concurrency,
        requests_per_minute=args.requests_per_minute,
        output_format=args.output_format,
        reranking_candidates=args.candidates,
        channels=args.channels,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
    )
    for name in ("chunk_seconds", "overlap_seconds"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    has_key = bool((os.environ.get("SEGMIND_API_KEY") or "").strip())
    chosen = args.endpoint or os.environ.get("SAMAUDIO_ENDPOINT")
    if not args.local and not has_key and chosen:
        where = "--endpoint" if args.endpoint else "SAMAUDIO_ENDPOINT"
        raise errors.AuthenticationError(
            f"{where} is set ({chosen}) but SEGMIND_API_KEY is not: nothing was sent.",
            hint="Set SEGMIND_API_KEY to the key that endpoint accepts (samaudio-data serve "
            "prints it), or pass --local for a local endpoint in this process.",
        )
    local = args.local or not has_key
    if local:
        print(
            "samaudio-data: no SEGMIND_API_KEY set (or --local): using a local endpoint. "
            "Its answers are not real separations, and nothing is billed: costs shown are "
            "what the real endpoint would charge.",
            file=sys.stderr,
        )
        with local_endpoint(args.cache_dir) as ep:
            # a stable identity (the stand-in's answers do not depend on its port), so a
            # rerun finds its cached answers; and a stable port, so a killed run's journal
            # still points at this endpoint and the rerun resumes it
            with Client(
                "local-key", endpoint=ep.url, cache_namespace="samaudio-local-endpoint", **kw
            ) as client:
                yield client
    else:
        with Client(endpoint=args.endpoint, **kw) as client:
            yield client


def local_port(cache_dir: str | None) -> int:
    """The local endpoint's port for this user and cache directory: the same every run.

    >>> 20000 <= local_port("/tmp/c") < 40000 and local_port("/tmp/c") == local_port("/tmp/c")
    True
    """
    from .. import _settings

    where = os.path.abspath(os.path.expanduser(cache_dir or str(_settings.default_cache_dir())))
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
    digest = hashlib.sha256(f"{user}:{where}".encode()).digest()
    return 20000 + int.from_bytes(digest[:4], "big") % 20000


@contextlib.contextmanager
def local_endpoint(cache_dir: str | None) -> Iterator[Any]:
    from ..testing import LocalEndpoint

    port = local_port(cache_dir)
    try:
        ep = LocalEndpoint(port=port).start()
    except OSError as exc:  # taken (another run, another program): any free port
        print(
            f"samaudio-data: port {port} of the local endpoint is taken ({exc.strerror}); "
            "using another one: requests a killed run left in flight are sent again "
            "(free on the local endpoint).",
            file=sys.stderr,
        )
        ep = LocalEndpoint().start()
    try:
        yield ep
    finally:
        ep.stop()
