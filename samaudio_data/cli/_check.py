"""``samaudio-data check``: the key, credits, endpoint and queue; ``--probe`` pays one call."""

from __future__ import annotations

import os
import sys

from ._endpoint import client_for


def run_check(args) -> int:
    """``samaudio-data check``: print the report; exit 1 when anything needs fixing."""
    from .._client import Client

    if args.local:  # the whole check against a local endpoint, for a try offline
        with client_for(args) as client:
            report = client.check(probe=args.probe)
        print(report)
        return 0 if report.ok else 1
    if not os.environ.get("SEGMIND_API_KEY") and not args.endpoint:
        print(
            "samaudio-data: SEGMIND_API_KEY is not set: set it to the key from the "
            "provider's console, then run samaudio-data check again (or pass --local to "
            "try the check offline).",
            file=sys.stderr,
        )
        return 1
    with Client(
        endpoint=args.endpoint,
        transport=args.transport,
        cache_dir=args.cache_dir,
        max_concurrency=args.max_concurrency,
        output_format=args.output_format,
        requests_per_minute=args.requests_per_minute,
        progress=False,
    ) as client:
        report = client.check(probe=args.probe)
    print(report)
    return 0 if report.ok else 1
