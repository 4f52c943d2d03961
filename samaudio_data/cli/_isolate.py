"""``samaudio-data isolate``: one audio file of any length, streamed through the client."""

from __future__ import annotations

import sys

from .. import audio, errors
from .._models import plural
from ._endpoint import client_for


def run_isolate(args) -> int:
    """Stream the file through ``Client.isolate_file``: memory does not grow with its length."""
    from .._models import Budget

    if args.max_cost is not None and not args.max_cost >= 0:
        raise errors.InvalidRequestError(
            f"--max-cost must be a number of dollars >= 0, got {args.max_cost}."
        )
    from ..audio import audio_file_info

    audio_file_info(args.input)  # a missing file, a folder, an empty file: one line, now
    with client_for(args) as client:
        if args.dry_run or args.max_cost is not None:
            est = client.estimate_file(args.input, args.description)
            if est.invalid:
                raise errors.InvalidAudioError(est.invalid[0][1])
            print(f"{args.input}: {est}")
            if args.dry_run:
                return 0
            if est.cost > args.max_cost:
                print(
                    f"samaudio-data: refusing to start: about ${est.cost:.2f} needed, over "
                    f"--max-cost ${args.max_cost:.2f}. Nothing was sent.",
                    file=sys.stderr,
                )
                return 3
        before = client.usage.snapshot()
        budget = Budget(args.max_cost) if args.max_cost is not None else None
        out = client.isolate_file(
            args.input, args.description, args.output, residual_path=args.residual, budget=budget
        )
        now = client.usage.snapshot()
        paid, hits = now.billed - before.billed, now.cached - before.cached
        rest = f" and {args.residual}" if args.residual else ""
        print(
            f"wrote {out}{rest}: {plural(paid, 'call')} paid (${now.cost - before.cost:.2f}), "
            f"{plural(hits, 'window')} from the cache"
        )
        verdict = audio.judge_file(
            args.input,
            out,
            args.description,
            chunk_seconds=client.chunk_seconds,
            overlap_seconds=client.overlap_seconds,
        )
        print(
            f"quality: {verdict.flag or 'looks right'} (quality {verdict.quality:.2f}"
            f"{f', {len(verdict.windows)} windows' if len(verdict.windows) > 1 else ''})"
        )
    return 0
