"""The ``samaudio-data`` command.

::

    samaudio-data isolate IN.wav "a man speaking" [-o OUT.wav] [--residual REST.wav]
    samaudio-data map DATASET --description speech --out DIR [--dry-run] [--max-cost 5]
    samaudio-data serve [--port 8000]          # the local endpoint, for offline work
    samaudio-data demo                         # a small dataset, end to end
    samaudio-data check [--probe]              # key, credits, endpoint; --probe pays 1 call

Without ``SEGMIND_API_KEY`` (or with ``--local``), ``isolate``, ``map`` and ``demo`` run
against a local endpoint started in the same process: nothing is billed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import audio, errors
from .._models import plural
from .._settings import CANDIDATES, CHANNEL_POLICIES, OUTPUT_FORMATS, TRANSPORTS
from ..hf._map import ON_ERROR
from ..hf._prompts import KEEP
from ..hf._triage import ON_DOUBT

if TYPE_CHECKING:
    from .._client import Client


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
    parser = argparse.ArgumentParser(
        prog="samaudio-data",
        description=__doc__.split("::")[0],
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
    _client_options(p)

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
    _client_options(p)

    # "serve" hands its options to local_endpoint.serve_main (see main below)
    sub.add_parser(
        "serve",
        help="run the local endpoint (offline, nothing billed); see samaudio-data serve --help",
    )

    p = sub.add_parser("demo", help="clean a small synthetic dataset end to end")
    p.add_argument("--out", default="samaudio-demo", help="directory for the results")
    p.add_argument("--yes", action="store_true", help="allow spending on the real endpoint")
    _client_options(p)

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
    _client_options(p)

    argv = sys.argv[1:] if argv is None else list(argv)
    _fewer_malloc_arenas()
    if argv[:1] == ["serve"]:
        from ..testing import serve_main

        return serve_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        return {"isolate": _isolate, "map": _map, "demo": _demo, "check": _check}[args.command](
            args
        )
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


def _client_options(p: argparse.ArgumentParser) -> None:
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


@contextlib.contextmanager
def _client(args) -> Iterator[Client]:
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
        with _local_endpoint(args.cache_dir) as ep:
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
def _local_endpoint(cache_dir: str | None) -> Iterator[Any]:
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


def _isolate(args) -> int:
    """Stream the file through ``Client.isolate_file``: memory does not grow with its length."""
    from .._models import Budget

    if args.max_cost is not None and not args.max_cost >= 0:
        raise errors.InvalidRequestError(
            f"--max-cost must be a number of dollars >= 0, got {args.max_cost}."
        )
    from ..audio import audio_file_info

    audio_file_info(args.input)  # a missing file, a folder, an empty file: one line, now
    with _client(args) as client:
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


def _map(args) -> int:
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
    with _client(args) as client:
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
            print(f"  row {row}{_results._named(names, row)}: {why}")
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


def _demo(args) -> int:
    import numpy as np
    from datasets import Audio

    from .._net.transport import is_local
    from .._settings import endpoint as resolve_endpoint
    from ..hf import estimate_cost, isolate

    paying = os.environ.get("SEGMIND_API_KEY") and not is_local(resolve_endpoint(args.endpoint))
    if paying and not (args.local or args.yes):
        print(
            "samaudio-data: SEGMIND_API_KEY is set: the demo would spend about $0.50 on the "
            "real endpoint. Pass --yes to do so, or --local to stay offline.",
            file=sys.stderr,
        )
        return 3
    import soundfile as sf

    from ..hf import audio_folder

    # a folder of clips as a user has them (WAV and FLAC, several rates), read with no torch
    clips = os.path.join(args.out, "clips")
    os.makedirs(clips, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, sr in enumerate([16000, 22050, 44100, 48000, 16000, 44100, 24000, 32000]):
        t = np.arange(int(sr * (1.0 + 0.25 * i))) / sr
        hum = 0.3 * np.sin(2 * np.pi * (60 + 20 * i) * t)  # low: "bass"
        spec = np.fft.rfft(rng.standard_normal(t.size))
        spec[np.fft.rfftfreq(t.size, 1 / sr) < 2000] = 0
        hiss = 0.05 * np.fft.irfft(spec, t.size) / np.std(np.fft.irfft(spec, t.size))
        y = (hum + hiss) if i % 3 else hiss  # some clips have no hum
        sf.write(os.path.join(clips, f"clip{i}.{'flac' if i % 2 else 'wav'}"), y, sr)
    ds = audio_folder(clips)
    with _client(args) as client:
        fn = isolate("bass hum", client=client, keep="both")
        print(f"demo folder {clips}: {len(ds)} clips; {estimate_cost(ds, fn)}")
        out = ds.map(fn, batched=True, batch_size=len(ds), desc="isolating 'bass hum'")
        for r in out.select_columns(["file_name", "isolated_target_db", "isolated_present"]):
            print(
                f"  {r['file_name']:10s} target {r['isolated_target_db']:7.1f} dB, "
                f"present={r['isolated_present']}"
            )
        kept = out.filter(lambda r: r["isolated_present"])
        kept = kept.cast_column("isolated", Audio(decode=False))
        cleaned = os.path.join(args.out, "cleaned")
        kept.save_to_disk(cleaned)
        print(f"kept {len(kept)} of {len(out)} clips in {cleaned}; {client.usage}")
    return 0


def _check(args) -> int:
    """``samaudio-data check``: print the report; exit 1 when anything needs fixing."""
    from .._client import Client

    if args.local:  # the whole check against a local endpoint, for a try offline
        with _client(args) as client:
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
