"""The ``samaudio-data`` command.

::

    samaudio-data isolate IN.wav "a man speaking" [-o OUT.wav] [--residual REST.wav]
    samaudio-data map DATASET --description speech --out DIR [--dry-run] [--max-cost 5]
    samaudio-data serve [--port 8000]          # the local endpoint, for offline work
    samaudio-data demo                         # a small dataset, end to end
    samaudio-data check [--probe]              # key, credits, endpoint; --probe pays 1 call

Without ``SEGMIND_API_KEY`` (or with ``--local``), ``isolate``, ``map`` and ``demo`` run
against a local endpoint started in the same process: nothing is billed.

One module per command: ``_isolate``, ``_map`` (with ``_results``, what a map writes and
reports), ``_demo``, ``_check``; ``serve`` is the local endpoint's own ``serve_main``. The
options are declared in ``_parser``, the endpoint a command talks to is chosen in ``_endpoint``.
This module holds :func:`main`, which parses and dispatches.
"""

from __future__ import annotations

import sys

from .. import errors
from ._check import run_check
from ._demo import run_demo
from ._isolate import run_isolate
from ._map import run_map
from ._parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``samaudio-data``; returns the exit status.

    >>> import numpy as np, os, soundfile as sf, tempfile
    >>> d = tempfile.mkdtemp(); os.environ.pop("SEGMIND_API_KEY", None)
    >>> sf.write(os.path.join(d, "mix.wav"), np.zeros(8000), 8000)
    >>> main(["isolate", os.path.join(d, "mix.wav"), "drums", "-o", os.path.join(d, "d.wav"),
    ...       "--cache-dir", d])  # doctest: +ELLIPSIS
    wrote ...
    0
    """
    parser = build_parser(__doc__.split("::")[0])
    argv = sys.argv[1:] if argv is None else list(argv)
    _fewer_malloc_arenas()
    if argv[:1] == ["serve"]:
        from ..testing import serve_main

        return serve_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        commands = {"isolate": run_isolate, "map": run_map, "demo": run_demo, "check": run_check}
        return commands[args.command](args)
    except errors.SamAudioError as exc:
        print(f"samaudio-data: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samaudio-data: interrupted; answers already paid for are cached.", file=sys.stderr)
        return 130


def _fewer_malloc_arenas() -> None:
    """Let glibc keep 2 malloc arenas instead of 8 per core (a no-op elsewhere).

    Every worker thread that handles a window's arrays would otherwise get an arena of its
    own that keeps its freed pages: on a long file that is tens of MB of resident memory per
    thread (measured: 530 MB instead of 220 MB at 16 threads). Same as ``MALLOC_ARENA_MAX=2``.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
