"""``samaudio-data serve``: run a local endpoint until Ctrl-C.

Example
-------
>>> serve_main(["--help"])  # prints the options, then exits like any --help
Traceback (most recent call last):
...
SystemExit: 0
"""

from __future__ import annotations

import argparse
import time

from ._endpoint import LocalEndpoint
from ._options import DEFAULT_PRICE
from ._protocol import RESPONSE_FORMATS
from ._queue import QUEUE_OUTPUTS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samaudio-data serve",
        description="Serve a local, deterministic stand-in for the SAM Audio Large endpoint "
        "(POST /v1/sam-audio-large, and the queue at /v2/sam-audio-large).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=8000, help="port (0: any free port)")
    add(
        "--key",
        action="append",
        metavar="KEY",
        help="accepted API key, repeatable (default: local-key)",
    )
    add(
        "--credits",
        type=float,
        default=None,
        help="dollars of credit for each key (default: unlimited)",
    )
    add(
        "--rpm",
        type=int,
        default=None,
        help="rate limit, requests per minute per key (default: none)",
    )
    add(
        "--rate-window",
        type=float,
        default=60.0,
        help="seconds over which --rpm counts (default 60; smaller scales time down)",
    )
    add(
        "--burst",
        type=int,
        default=None,
        help="enforce --rpm as a token bucket of this size (default: a sliding window)",
    )
    add(
        "--latency",
        type=float,
        default=0.0,
        help="seconds of simulated model time per call (default 0)",
    )
    add(
        "--response-format",
        choices=RESPONSE_FORMATS,
        default="wav",
        help="how a v1 200 carries the audio (default wav)",
    )
    add(
        "--price",
        type=float,
        default=DEFAULT_PRICE,
        help=f"dollars per call (default {DEFAULT_PRICE})",
    )
    add(
        "--max-audio-seconds",
        type=float,
        default=None,
        help="refuse longer uploads with a 400 (default: no limit)",
    )
    add(
        "--max-body-bytes",
        type=int,
        default=None,
        help="refuse larger request bodies with a 413 (default: no limit)",
    )
    add(
        "--no-queue",
        action="store_true",
        help="do not serve the asynchronous queue (/v2 answers 404)",
    )
    add(
        "--queue-output",
        choices=QUEUE_OUTPUTS,
        default="url",
        help="how a queued result's 'output' carries the audio (default url)",
    )
    add("--verbose", action="store_true", help="log one line per request to stderr (never the key)")
    return parser


def serve_main(argv: list[str] | None = None) -> int:
    """Run a local endpoint until Ctrl-C (``samaudio-data serve``).

    The first line printed is the model URL; the next ones say which key to use.

    Example (shell)::

        samaudio-data serve --port 8000 --key my-key --credits 5 --rpm 50 --latency 2
    """
    args = _parser().parse_args(argv)
    keys = args.key or ["local-key"]
    ep = LocalEndpoint(
        host=args.host,
        port=args.port,
        keys={k: args.credits for k in keys},
        price_per_call=args.price,
        rate_limit_per_minute=args.rpm,
        rate_window=args.rate_window,
        rate_limit_burst=args.burst,
        latency=args.latency,
        response_format=args.response_format,
        max_audio_seconds=args.max_audio_seconds,
        max_body_bytes=args.max_body_bytes,
        queue=not args.no_queue,
        queue_output=args.queue_output,
        log_requests=args.verbose,
    )
    ep.start()
    print(ep.url, flush=True)
    print(f"API key: {keys[0]}  (send it in the x-api-key header)", flush=True)
    print(f"  export SAMAUDIO_ENDPOINT={ep.url} SEGMIND_API_KEY={keys[0]}", flush=True)
    if not args.no_queue:
        print(f"Queue: POST {ep.queue_url}", flush=True)
    print("Serving until Ctrl-C.", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        ep.stop()
    return 0
