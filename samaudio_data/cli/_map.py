"""``samaudio-data map``: a dataset in, every row isolated, the result saved.

Loading the dataset argument (:func:`load_dataset_arg`: a ``save_to_disk`` folder, a folder of
audio files or a hub name), the checks before anything is sent, the estimate, the prefetch, the
map and its report (:func:`flag_summary`; what is written afterwards lives in ``_results``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import errors
from .._models import plural
from ._endpoint import client_for


def _check_out(dataset: str, out: str) -> None:
    """Refuse ``--out`` equal to or inside the input folder (a rerun would read it)."""
    if not os.path.isdir(dataset):
        return
    src, dst = Path(dataset).resolve(), Path(out).resolve()
    if dst == src or src in dst.parents:
        raise errors.InvalidRequestError(
            f"--out {out!r} is {'the input folder' if dst == src else 'inside the input folder'}"
            f" {dataset!r}: the results would mix with the input, and a rerun would read them "
            "as input. Choose a folder outside it. Nothing was sent."
        )


def load_dataset_arg(name: str, split: str | None):
    """Load a ``save_to_disk`` directory, a folder of audio files or a hub dataset.

    A folder of audio files is read by :func:`samaudio_data.audio_folder` (no torch needed);
    a name that is neither a folder here nor ``owner/name`` fails at once, without asking the
    Hub.
    """
    import datasets

    from ..hf import audio_folder

    if os.path.isdir(name):
        marker = ("dataset_info.json", "state.json", "dataset_dict.json")
        if not any(os.path.exists(os.path.join(name, m)) for m in marker):
            return audio_folder(name)
        loader, args = datasets.load_from_disk, (name,)
    elif os.path.exists(name):
        raise errors.InvalidRequestError(
            f"{name!r} is a file: map takes a folder of audio files, a save_to_disk folder or "
            f"a hub dataset (for one file: samaudio-data isolate {name} DESCRIPTION)."
        )
    elif not _hub_name(name):
        raise errors.InvalidRequestError(
            f"no folder at {name!r}: check the path (a hub dataset is named owner/name)."
        )
    else:
        _check_hub(name)
        loader, args = datasets.load_dataset, (name,)
    try:
        ds = loader(*args)
    except Exception as exc:  # datasets raises many kinds; one clear line instead
        cause = exc.__cause__ or exc.__context__ or exc  # DatasetGenerationError wraps it
        raise errors.InvalidRequestError(
            f"could not load the dataset {name!r}: {type(cause).__name__}: "
            f"{str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
        ) from exc
    if isinstance(ds, datasets.DatasetDict):
        if split is None:
            split = next(iter(ds)) if len(ds) == 1 else "train"
        if split not in ds:
            raise errors.InvalidRequestError(
                f"split {split!r} not in the dataset (it has {list(ds)}); pass --split."
            )
        ds = ds[split]
    return ds


def _hub_name(name: str) -> bool:
    """``owner/name``: what a hub dataset is called (and a local path usually is not)."""
    import re

    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", name) is not None


def _check_hub(name: str) -> None:
    """One quick question to the Hub, so that a typo or no network fails in seconds, not
    after the Hub client's retries."""
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info(name, timeout=10)
    except Exception as exc:  # noqa: BLE001 - RepositoryNotFound, HTTP and connection errors
        if type(exc).__name__ in ("RepositoryNotFoundError", "GatedRepoError"):
            why = "the Hub has no such dataset (or it is private or gated: log in first)"
        else:
            why = f"the Hub could not be reached ({type(exc).__name__})"
        raise errors.InvalidRequestError(
            f"no folder at {name!r}, and {why}: check the name or path."
        ) from exc


def run_map(args) -> int:
    from datasets import Audio

    from ..hf import estimate_cost, isolate, prefetch
    from . import _results

    _check_out(args.dataset, args.out)
    ds = load_dataset_arg(args.dataset, args.split)
    if args.column not in ds.column_names:
        raise errors.InvalidRequestError(
            f"the dataset has no column {args.column!r} (it has {ds.column_names}); pass "
            "--column naming the audio column."
        )
    feature = ds.features.get(args.column)
    if isinstance(feature, Audio) and feature.decode and feature.sampling_rate is None:
        # read the files ourselves (soundfile, librosa: no torch needed), so a broken file
        # is one row's error naming the file, not a decoder traceback
        ds = ds.cast_column(args.column, Audio(decode=False))
    audio_dir = args.write_audio
    if audio_dir is None and "file_name" in ds.column_names and os.path.isdir(args.dataset):
        audio_dir = os.path.join(args.out, "audio")  # a folder in: a folder of files out
    if audio_dir:
        _results.check_audio_dir(audio_dir, args.dataset)
    names = _results.row_names(ds, args.column)
    with client_for(args) as client:
        fn = isolate(
            _what(args),
            column=args.column,
            output_column=args.output_column,
            keep=args.keep,
            on_error=args.on_error,
            max_cost=args.max_cost,
            client=client,
            on_doubt=args.on_doubt,
            rerank_candidates=args.rerank_candidates,
        )
        est = estimate_cost(ds, fn)
        print(f"{plural(len(ds), 'row')}: {est.describe(reasons=False)}")  # listed below
        for row, why in est.invalid[:50]:
            print(f"  row {row}{_results.named(names, row)}: {why}")
        if len(est.invalid) > 50:
            print(f"  ... and {plural(len(est.invalid) - 50, 'more row')}")
        if args.dry_run:
            return 0
        if est.invalid and args.on_error == "raise":
            print(
                f"samaudio-data: refusing to start: {plural(len(est.invalid), 'row')} cannot "
                "be sent (listed above). Fix them, or pass --on-error skip (or "
                "keep_original) to process the rest. Nothing was sent.",
                file=sys.stderr,
            )
            return 3
        if est.uncollectable and args.on_error == "raise":
            print(
                f"samaudio-data: refusing to start: {plural(est.uncollectable, 'request')} "
                "paid for earlier cannot be collected (said above), and the run would stop "
                "there. Pass --on-error skip (or keep_original) to process the rest. Nothing "
                "was sent.",
                file=sys.stderr,
            )
            return 3
        if args.max_cost is not None and est.cost > args.max_cost:
            print(
                f"samaudio-data: refusing to start: about ${est.cost:.2f} needed, over "
                f"--max-cost ${args.max_cost:.2f}. Nothing was sent.",
                file=sys.stderr,
            )
            return 3
        done = {}
        if est.calls or est.rerank_calls:
            # every request at the account's limit first, from one stream (no idle account
            # at batch boundaries); the map below then reads the answers from the cache
            report = prefetch(ds, fn, progress=client.progress)
            print(f"prefetch: {report}")
            done = report.done
        # never datasets' cached result of an earlier map: its columns would describe that run
        out = ds.map(
            fn,
            batched=True,
            batch_size=args.batch_size,
            num_proc=args.num_proc,
            with_indices=True,
            desc=f"isolating {fn.prompts.describe()}",
            load_from_cache_file=False,
        )
        stems = [stem.output_column for stem in fn.prompts.stems]
        out = _results.with_prefetch_costs(out, stems, done)
        listed = {row for row, _ in est.invalid}
        for line in _results.failures(out, stems, names, skip=listed)[:50]:
            print(f"  {line}")
        if audio_dir:
            for stem in fn.prompts.stems:  # several stems: a folder each
                where = (
                    audio_dir if len(stems) == 1 else os.path.join(audio_dir, stem.output_column)
                )
                written, table = _results.write_audio(
                    out,
                    where,
                    output_column=stem.output_column,
                    keep=stem.keep,
                    on_error=args.on_error,
                    names=names,
                )
                print(
                    f"wrote {plural(written, 'audio file')} to {where} and the signals and "
                    f"costs of every row to {table}"
                )
        for col in fn.audio_columns:
            out = out.cast_column(col, Audio())
        out.save_to_disk(args.out)
        print(f"saved to {args.out}: {_results.summary(out, stems, client.price_per_call)}")
        for name in stems:
            print(flag_summary(out[f"{name}_flag"], name))
        usage = client.usage
        if usage.requests:
            print(f"requests from this process: {usage.traffic()}")
    return 0


def _what(args):
    """``--description`` as given, or the ``--stem COLUMN=DESCRIPTION`` options as a dict."""
    if args.description is not None:
        return args.description
    stems = {}
    for item in args.stem:
        name, sep, description = item.partition("=")
        if not sep or not name.strip():
            raise errors.InvalidRequestError(
                f"--stem wants COLUMN=DESCRIPTION (e.g. --stem voice=speech), got {item!r}."
            )
        if name.strip() in stems:
            raise errors.InvalidRequestError(f"--stem {name.strip()!r} is given twice.")
        stems[name.strip()] = description
    return stems


def flag_summary(flags: list[str], column: str = "isolated") -> str:
    """One line on the quality triage's flags of a map's rows.

    >>> print(flag_summary(["", "invented", "empty", "invented", ""]))
    quality: 2 of 5 rows look right; 3 flagged (2 invented, 1 empty): keep the rest with
    ds.filter(lambda r: not r["isolated_flag"])
    """
    from collections import Counter

    codes = Counter(f.split(":", 1)[0] for f in flags if f)
    flagged = sum(codes.values())
    text = f"quality: {len(flags) - flagged} of {len(flags)} rows look right"
    if not flagged:
        return text
    detail = ", ".join(f"{n} {code}" for code, n in codes.most_common())
    return (
        f"{text}; {flagged} flagged ({detail}): keep the rest with "
        f'ds.filter(lambda r: not r["{column}_flag"])'
    )
