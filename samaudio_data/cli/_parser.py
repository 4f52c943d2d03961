"""The ``samaudio-data`` argument parser: every command's options, in one place.

:func:`build_parser` declares ``isolate``, ``map``, ``serve``, ``demo`` and ``check``;
:func:`client_options` the options every command that talks to the endpoint shares. What each
command does lives in its own module (``_isolate``, ``_map``, ``_demo``, ``_check``).

>>> build_parser("samaudio-data").parse_args(["check", "--probe"]).probe
True
"""

from __future__ import annotations

import argparse

from .._settings import CANDIDATES, CHANNEL_POLICIES, OUTPUT_FORMATS, TRANSPORTS
from ..hf._map import ON_ERROR
from ..hf._prompts import KEEP
from ..hf._triage import ON_DOUBT


def build_parser(description: str) -> argparse.ArgumentParser:
    """The parser of ``samaudio-data``; ``description`` heads its ``--help``.

    >>> build_parser("x").parse_args(["isolate", "in.wav", "drums"]).output is None
    True
    """
    parser = argparse.ArgumentParser(
        prog="samaudio-data",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("isolate", help="isolate a sound in an audio file")
    p.add_argument("input", help="an audio file of any length (WAV, FLAC, ...)")
    p.add_argument("description")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="where to write the isolated sound (.wav: 32-bit float, .flac: 24-bit; "
        "default: next to the input, IN.isolated-DESCRIPTION.wav)",
    )
    p.add_argument("--residual", help="also write everything else here")
    p.add_argument("--max-cost", type=float, default=None, help="dollars; refuse or stop beyond")
    p.add_argument("--dry-run", action="store_true", help="print the estimate, send nothing")
    client_options(p)

    p = sub.add_parser("map", help="isolate a sound in every row of a dataset")
    p.add_argument(
        "dataset", help="a save_to_disk directory, an audiofolder directory or a hub dataset name"
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--description",
        help="what to isolate: text ('speech'), or a template filled from each "
        "row's columns ('{label}', 'a {instrument} playing')",
    )
    what.add_argument(
        "--stem",
        action="append",
        metavar="COLUMN=DESCRIPTION",
        help="one output column per sound, one call each per row; repeat it: "
        "--stem voice=speech --stem bgm='background music'",
    )
    p.add_argument("--out", required=True, help="directory for the result (save_to_disk)")
    p.add_argument("--column", default="audio")
    p.add_argument("--output-column", default="isolated")
    p.add_argument("--split", default=None, help="split to use (default: the only one, or train)")
    p.add_argument("--keep", choices=KEEP, default="target")
    p.add_argument("--on-error", choices=ON_ERROR, default="raise")
    p.add_argument(
        "--on-doubt",
        choices=ON_DOUBT,
        default="keep",
        help="rows the quality triage flags: keep (flag only), rerank (ask once "
        "more with --rerank-candidates, within --max-cost), skip (silence)",
    )
    p.add_argument(
        "--rerank-candidates", type=int, default=4, help="reranking_candidates of a rerank, 2..8"
    )
    p.add_argument("--max-cost", type=float, default=None, help="dollars; refuse or stop beyond")
    p.add_argument("--dry-run", action="store_true", help="print the estimate, send nothing")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-proc", type=int, default=None)
    p.add_argument(
        "--write-audio",
        default=None,
        metavar="DIR",
        help="also write one cleaned audio file per row here (same name, rate and "
        "length; .wav 32-bit float, .flac 24-bit, other formats as .wav) and "
        "a CSV of every row's signals and costs; default for a folder of "
        "files: OUT/audio",
    )
    client_options(p)

    # "serve" hands its options to local_endpoint.serve_main (see _main.main)
    sub.add_parser(
        "serve",
        help="run the local endpoint (offline, nothing billed); see samaudio-data serve --help",
    )

    p = sub.add_parser("demo", help="clean a small synthetic dataset end to end")
    p.add_argument("--out", default="samaudio-demo", help="directory for the results")
    p.add_argument("--yes", action="store_true", help="allow spending on the real endpoint")
    client_options(p)

    p = sub.add_parser(
        "check",
        help="check the key, credits, endpoint and queue (free); "
        "--probe pays for one call and describes the answer",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="spend exactly one call on one second of generated audio",
    )
    p.add_argument("--transport", choices=TRANSPORTS, default="auto")
    client_options(p)

    return parser


def client_options(p: argparse.ArgumentParser) -> None:
    """Add the options shared by every command that talks to the endpoint."""
    p.add_argument(
        "--endpoint",
        default=None,
        help="endpoint URL (default: $SAMAUDIO_ENDPOINT or the provider's)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="use a local endpoint in this process (default when no API key is set)",
    )
    p.add_argument("--output-format", choices=OUTPUT_FORMATS, default="wav")
    p.add_argument(
        "--candidates",
        type=int,
        default=1,
        help=f"reranking_candidates, {CANDIDATES[0]}..{CANDIDATES[-1]}",
    )
    p.add_argument("--channels", choices=CHANNEL_POLICIES, default="mix")
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=16,
        help="upper bound on requests in flight (the rate decides below it)",
    )
    p.add_argument(
        "--requests-per-minute",
        default=None,
        help="the account's limit: a number, or 'free' (5) / 'paid' (50); default "
        "$SAMAUDIO_RATE_LIMIT, else adapt to 429s",
    )
    p.add_argument("--cache-dir", default=None)
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help="longest window sent in one call (default 20); longer audio is split",
    )
    p.add_argument(
        "--overlap-seconds", type=float, default=None, help="crossfade between windows (default 2)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
