"""Dataset throughput: rows per minute of ``dataset.map(isolate(...), batched=True)``.

What it measures
----------------
Against a ``LocalEndpoint`` on 127.0.0.1 that sleeps a fixed ``latency`` per call (default
0.5 s, ``--quick`` 0.2 s) -- a stand-in for the real model's ~13 s -- with a concurrency cap
of 8 (``Client(max_concurrency=8)``), side by side in one run:

* **plain loop** (the baseline): the provider's example, sequential -- for each row read the
  WAV file, base64 it, ``requests.post(url, json={"audio": b64, "description": ...},
  headers={"x-api-key": key})``, write ``resp.content`` to a file;
* **map**: ``ds.map(isolate(...), batched=True, batch_size=16)`` on a real ``datasets.Dataset``
  with an ``Audio()`` column of 48 short clips (1-3 s, 16/22.05/44.1/48 kHz, every third
  stereo); extra lines for ``datasets``' default ``batch_size=1000`` and for the same column
  cast to ``Audio(decode=False)`` (the library then reads the bytes with soundfile);
* **num_proc=2**: the same map on the dataset saved to disk and loaded back, two worker
  processes sharing the cap of 8 through the library's lock files; the server's
  ``max_in_flight`` shows whether the cap held;
* **memory** (run first, so the peak RSS is its own): a longer map (400 tiny clips,
  ``--quick`` 100, latency 0) on a dataset loaded from disk; RSS (``/proc/self/status``), peak
  RSS (``VmHWM``) and the Python heap (``tracemalloc``) after each batch, with
  the growth from the end of the first quarter of rows to the end.

For the bs=16 runs the script also splits the wall time into phases by wrapping (never
changing) the map function, with the mean round trip from ``client.usage``: datasets
decoding the audio column,
the isolate call (each row is read, encoded, sent and turned into its output row in a worker
thread, so these overlap with other rows' requests), and datasets' own work between batches.

Caching is off everywhere (``datasets.disable_caching()``, ``Client(cache_dir=False)``, fresh
temp dirs), so every row is paid for: the server's billed count is printed for each run. The
server runs in a child process so that its own work (decoding uploads, encoding answers) does
not take this process's GIL, as with a remote endpoint (``--in-process-server`` to compare);
it still shares the machine's cores.

Targets
-------
* efficiency = ideal time / actual time >= 85 %, where the ideal is
  ``rows x latency / cap`` (the endpoint's latency fully overlapped at the cap);
* speed-up over the plain loop >= 6x at cap 8 (the ideal is 8x);
* ``num_proc=2``: the server never sees more than 8 requests in flight;
* memory flat: the Python heap (tracemalloc, which also sees numpy arrays) does not grow
  with the rows after the first quarter (< 1 kB/row, or < 0.5 MB in all for short runs, as
  one batch's buffers come and go); anonymous RSS is printed beside it
  (it moves by a few MB either way with the allocator). Total RSS does grow, by the pages of
  the memory-mapped input Arrow file as rows are read (shown as "files"): that is the page
  cache, not the process's heap.

How to read the output
----------------------
Each run prints seconds, rows/min, efficiency, the server's billed count and max requests in
flight; "x plain" is its rows/min over the plain loop's, measured in the same process. The
plain loop is sequential, so its rows/min does not depend on the row count; ``--quick`` times
it on 16 rows. The "per-request overhead" line gives the time each request costs beyond the
latency even alone (the stand-in's decode/resample/encode and loopback HTTP), and the
efficiency against an ideal that includes it. The phase lines show where the time above the
ideal went. PASS/MISS lines compare with the targets; nothing is asserted.

Run: ``python benchmarks/dataset_throughput.py`` (about 1 minute; ``--latency``, ``--rows``,
``--memory-rows`` to change) or ``--quick`` (32 rows, under 30 s including imports). Only
127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import base64
import gc
import os
import shutil
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import requests
import soundfile as sf
from _common import DESCRIPTION, KEY, Server, load_line, peak_rss_mb, verdict

CAP = 8
RATES = (16000, 22050, 44100, 48000)
TARGET_EFFICIENCY = 0.85
TARGET_SPEEDUP = 6.0


def make_clips(
    directory: str, rows: int, *, min_s: float, max_s: float, seed: int = 0, rates=RATES
) -> list:
    """Write ``rows`` 16-bit WAV clips (tones + noise, every third stereo); return paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in range(rows):
        sr = rates[i % len(rates)]
        n = int(rng.uniform(min_s, max_s) * sr)
        t = np.arange(n) / sr
        y = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.02 * rng.standard_normal(n)
        if i % 3 == 2:
            y = np.stack([y, 0.5 * y + 0.01 * rng.standard_normal(n)])
        path = os.path.join(directory, f"clip_{i:04d}.wav")
        sf.write(path, y.T if y.ndim == 2 else y, sr, subtype="PCM_16")
        paths.append(path)
    return paths


def audio_dataset(paths: list):
    from datasets import Audio, Dataset

    return Dataset.from_dict({"audio": paths, "id": list(range(len(paths)))}).cast_column(
        "audio", Audio()
    )


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory in MB: VmRSS (all), RssAnon (heap, stacks) or RssFile (mapped files)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Result:
    def __init__(self, name: str, rows: int, seconds: float, stats: dict, ideal: float):
        self.name, self.rows, self.seconds, self.stats, self.ideal = (
            name,
            rows,
            seconds,
            stats,
            ideal,
        )

    @property
    def per_min(self) -> float:
        return 60.0 * self.rows / self.seconds

    @property
    def efficiency(self) -> float:
        return self.ideal / self.seconds

    def line(self, plain: Result = None) -> str:
        extra = f"{self.per_min / plain.per_min:6.2f} x plain" if plain else ""
        return (
            f"  {self.name:<34} {self.seconds:7.2f} s  {self.per_min:8.1f} rows/min  "
            f"eff {100 * self.efficiency:5.1f} %  billed {self.stats['billed']:>3}/"
            f"{self.rows:<3} max in flight {self.stats['max_in_flight']:>2}  {extra}"
        )


def run_plain(server: Server, paths: list, latency: float, outdir: str) -> Result:
    """The provider's example: one blocking request per row, in order."""
    os.makedirs(outdir, exist_ok=True)
    server.configure(latency)
    url = server.url
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        with open(path, "rb") as fh:
            b64 = base64.b64encode(fh.read()).decode("utf-8")
        resp = requests.post(
            url,
            json={"audio": b64, "description": DESCRIPTION},
            headers={"x-api-key": KEY},
            timeout=60,
        )
        resp.raise_for_status()
        with open(os.path.join(outdir, f"out_{i:04d}.wav"), "wb") as fh:
            fh.write(resp.content)
    seconds = time.perf_counter() - t0
    return Result(
        "plain requests loop (sequential)",
        len(paths),
        seconds,
        server.stats,
        len(paths) * latency / CAP,
    )


def run_map(
    server: Server,
    ds,
    latency: float,
    *,
    name: str,
    batch_size: int,
    num_proc=None,
    trace: bool = False,
) -> Result:
    """``ds.map(isolate(...), batched=True)``; with ``trace``, time the phases of each batch.

    The trace wraps (never changes) the map function, to split the wall time into: datasets
    decoding the audio column (lazily, when the function first reads it), the isolate call
    (rows read, sent and turned into output rows in worker threads, overlapping), and
    datasets' own work between calls (formatting, writing Arrow). The mean round trip is
    ``client.usage.seconds / client.usage.requests`` (time inside HTTP requests).
    """
    from samaudio_data import Client, isolate

    server.configure(latency)
    rows = len(ds)
    phases = {"column": 0.0, "fn": 0.0}
    with Client(
        KEY, endpoint=server.url, max_concurrency=CAP, cache_dir=False, progress=False
    ) as client:
        fn = isolate(DESCRIPTION, client=client)

        def traced(batch):
            t0 = time.perf_counter()
            batch[fn.column]  # datasets decodes the column here (lazily, then cached)
            t1 = time.perf_counter()
            out = fn(batch)
            t2 = time.perf_counter()
            phases["column"] += t1 - t0
            phases["fn"] += t2 - t1
            return out

        mapper = traced if trace else fn
        t0 = time.perf_counter()
        out = ds.map(
            mapper,
            batched=True,
            batch_size=batch_size,
            num_proc=num_proc,
            new_fingerprint=f"samaudio-bench-{time.time_ns()}" if trace else None,
        )
        seconds = time.perf_counter() - t0
        usage = client.usage
        phases["round_trip"] = usage.seconds / max(1, usage.requests)
    stats = server.stats
    bad = [e for e in out["isolated_error"] if e]
    if len(out) != rows or bad:
        print(f"  !! {name}: {len(out)} rows out, {len(bad)} errors: {bad[:1]}")
    result = Result(name, rows, seconds, stats, rows * latency / CAP)
    result.phases = phases if trace else None
    return result


def print_phases(r: Result, latency: float, batch_size: int) -> None:
    ph = r.phases
    batches = -(-r.rows // batch_size)
    waves = sum(-(-min(batch_size, r.rows - i) // CAP) for i in range(0, r.rows, batch_size))
    other = r.seconds - ph["fn"] - ph["column"]
    print(
        f"    where the {r.seconds:.2f} s of '{r.name}' went ({batches} batches, {waves} "
        f"waves of <= {CAP} requests; ideal {r.ideal:.2f} s):"
    )
    print(
        f"      datasets decoding the Audio column (lazy)   {ph['column']:6.2f} s  "
        f"{1e3 * ph['column'] / r.rows:5.1f} ms/row, serial, before any request"
    )
    print(
        f"      isolate call (rows pipelined in threads)     {ph['fn']:6.2f} s  "
        f"{ph['fn'] / waves:.3f} s/wave vs latency {latency:g} s; round trip mean "
        f"{1e3 * ph['round_trip']:.0f} ms (client.usage)"
    )
    print(f"      datasets between batches (format, write)     {other:6.2f} s")


def run_memory(server: Server, paths: list, workdir: str, batch_size: int = 16) -> dict:
    """A long map at latency 0 on an Arrow-backed dataset; memory sampled after each batch.

    Samples: rows done, RSS (MB), peak RSS (MB, lifetime of the process), Python heap traced
    by tracemalloc (MB, current) and its peak since the end of the first quarter, and the
    bytes held by pyarrow's memory pool (datasets' buffers; not seen by tracemalloc).
    """
    import pyarrow as pa
    from datasets import load_from_disk

    from samaudio_data import Client, isolate

    saved = os.path.join(workdir, "mem_ds")
    audio_dataset(paths).save_to_disk(saved)
    ds = load_from_disk(saved)
    rows = len(ds)
    samples = []
    server.configure(0.0)
    with Client(
        KEY, endpoint=server.url, max_concurrency=CAP, cache_dir=False, progress=False
    ) as client:
        fn = isolate(DESCRIPTION, client=client)

        def sample(done: int) -> tuple:
            cur, peak = tracemalloc.get_traced_memory()
            return (
                done,
                rss_mb(),
                peak_rss_mb(),
                cur / 2**20,
                peak / 2**20,
                pa.total_allocated_bytes() / 2**20,
                rss_mb("RssAnon"),
                rss_mb("RssFile"),
            )

        def measured(batch):
            out = fn(batch)
            done = (samples[-1][0] if samples else 0) + len(batch["id"])
            samples.append(sample(done))
            if done >= rows / 4 and not any(s[0] >= rows / 4 for s in samples[:-1]):
                tracemalloc.reset_peak()  # peak from here on: the later rows' high-water mark
            return out

        gc.collect()
        tracemalloc.start()
        start = sample(0)
        t0 = time.perf_counter()
        # writer_batch_size=batch_size: results go to the Arrow file as they come, so the
        # figure is the library's footprint, not datasets' write buffer (1000 rows default)
        out = ds.map(
            measured,
            batched=True,
            batch_size=batch_size,
            writer_batch_size=batch_size,
            new_fingerprint="samaudio-bench-memory",
        )
        seconds = time.perf_counter() - t0
        tracemalloc.stop()
    billed = server.stats["billed"]

    def at(frac: float) -> tuple:
        return next(s for s in samples if s[0] >= frac * rows)

    return {
        "rows": rows,
        "seconds": seconds,
        "billed": billed,
        "start": start,
        "q1": at(0.25),
        "half": at(0.5),
        "q3": at(0.75),
        "end": samples[-1],
        "errors": sum(1 for e in out["isolated_error"] if e),
        "samples": samples,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="latency 0.2 s and a 100-row memory run (under 30 s)"
    )
    ap.add_argument("--latency", type=float, default=None, help="endpoint latency in seconds")
    ap.add_argument(
        "--rows", type=int, default=None, help="rows of the throughput dataset (48; --quick 32)"
    )
    ap.add_argument("--memory-rows", type=int, default=None, help="rows of the memory run")
    ap.add_argument(
        "--in-process-server",
        action="store_true",
        help="run the LocalEndpoint in this process (its work then competes with "
        "the client for the GIL)",
    )
    args = ap.parse_args(argv)
    latency = args.latency if args.latency is not None else (0.2 if args.quick else 0.5)
    mem_rows = args.memory_rows or (100 if args.quick else 400)
    args.rows = args.rows or (32 if args.quick else 48)

    t_start = time.perf_counter()
    import datasets
    from datasets import Audio

    datasets.disable_caching()
    datasets.logging.disable_progress_bar()
    workdir = tempfile.mkdtemp(prefix="samaudio-bench-")
    server = Server(in_process=args.in_process_server)
    try:
        paths = make_clips(os.path.join(workdir, "clips"), args.rows, min_s=1.0, max_s=3.0)
        ds = audio_dataset(paths)
        secs = sum(sf.info(p).duration for p in paths)
        where = "in this process" if args.in_process_server else "in a child process"
        print(
            f"dataset_throughput: {args.rows} clips ({secs:.0f} s of audio, 1-3 s, "
            f"{'/'.join(str(r) for r in RATES)} Hz, every 3rd stereo), LocalEndpoint "
            f"{where}, latency {latency:g} s, cap {CAP}{' (quick)' if args.quick else ''}"
        )
        ideal = args.rows * latency / CAP
        print(
            f"  ideal at cap {CAP}: {args.rows} x {latency:g} s / {CAP} = {ideal:.2f} s "
            f"= {60 * args.rows / ideal:.1f} rows/min; plain loop ideal "
            f"{args.rows * latency:.2f} s = {60 / latency:.1f} rows/min"
        )

        # warm-up (not timed): lazy imports, first decode
        run_map(server, ds.select(range(min(4, args.rows))), 0.0, name="warm-up", batch_size=16)

        # memory first, so that the peak RSS is not set by the runs before it
        print(
            f"\nmemory: map of {mem_rows} tiny clips (0.1-0.3 s) from disk, latency 0, "
            "batch_size=16"
        )
        mem_paths = make_clips(
            os.path.join(workdir, "tiny"), mem_rows, min_s=0.1, max_s=0.3, seed=1
        )
        mem = run_memory(server, mem_paths, workdir)
        for label in ("start", "q1", "half", "q3", "end"):
            done, rss, peak, cur, tpeak, arrow, anon, mapped = mem[label]
            print(
                f"  after {done:>4} rows: RSS {rss:6.1f} MB (anon {anon:6.1f}, files "
                f"{mapped:5.1f})  peak RSS {peak:6.1f}  python heap {cur:5.2f} MB (peak "
                f"{tpeak:5.2f})  arrow pool {arrow:5.2f} MB"
            )
        later = mem["end"][0] - mem["q1"][0]
        grow = mem["end"][1] - mem["q1"][1]
        grow_peak = mem["end"][2] - mem["q1"][2]
        grow_heap = mem["end"][3] - mem["q1"][3]
        heap_peak_over = mem["end"][4] - mem["q1"][3]
        grow_anon = mem["end"][6] - mem["q1"][6]
        grow_file = mem["end"][7] - mem["q1"][7]
        print(
            f"  first quarter -> end ({later} rows): RSS {grow:+.1f} MB "
            f"({1024 * grow / max(1, later):+.1f} kB/row) = anon {grow_anon:+.1f} MB "
            f"({1024 * grow_anon / max(1, later):+.1f} kB/row) + mapped files "
            f"{grow_file:+.1f} MB (the input Arrow file, memory-mapped, pages in as rows are "
            f"read), peak RSS {grow_peak:+.1f} MB, "
            f"python heap {grow_heap:+.2f} MB ({1024 * grow_heap / max(1, later):+.2f} "
            f"kB/row), heap high-water {heap_peak_over:+.2f} MB above the quarter mark"
        )
        print(
            f"  {mem['rows'] / mem['seconds'] * 60:.0f} rows/min at latency 0 (tracemalloc "
            f"on), billed {mem['billed']}/{mem['rows']}, {mem['errors']} errors"
        )

        print(f"\nthroughput ({args.rows} rows, latency {latency:g} s)")
        # sequential, so its rows/min does not depend on the row count: --quick times 16 rows
        plain_paths = paths[:16] if args.quick else paths
        plain = run_plain(server, plain_paths, latency, os.path.join(workdir, "plain_out"))
        print(plain.line())
        m16 = run_map(
            server, ds, latency, name="map batched, batch_size=16", batch_size=16, trace=True
        )
        print(m16.line(plain))
        m1000 = run_map(server, ds, latency, name="map batched, batch_size=1000", batch_size=1000)
        print(m1000.line(plain))
        raw = run_map(
            server,
            ds.cast_column("audio", Audio(decode=False)),
            latency,
            name="map bs=16, Audio(decode=False)",
            batch_size=16,
            trace=True,
        )
        print(raw.line(plain))
        saved = os.path.join(workdir, "ds_on_disk")
        ds.save_to_disk(saved)
        mp = run_map(
            server,
            datasets.load_from_disk(saved),
            latency,
            name="map bs=16, num_proc=2, from disk",
            batch_size=16,
            num_proc=2,
        )
        print(mp.line(plain))
        ovh = plain.seconds / plain.rows - latency
        fair = args.rows * (latency + ovh) / CAP
        print(
            f"  per-request overhead of the plain loop (server stand-in's work + loopback HTTP,"
            f" no contention): {1e3 * ovh:.0f} ms; ideal including it {fair:.2f} s -> "
            f"bs=16 {100 * fair / m16.seconds:.1f} %, bs=1000 {100 * fair / m1000.seconds:.1f}"
            f" %, decode=False {100 * fair / raw.seconds:.1f} %"
        )
        print()
        print_phases(m16, latency, 16)
        print_phases(raw, latency, 16)

        print("\ntargets")
        print(
            f"  {verdict(m16.efficiency >= TARGET_EFFICIENCY)}  map (bs=16) efficiency "
            f"{100 * m16.efficiency:.1f} % of ideal (target >= {100 * TARGET_EFFICIENCY:.0f} %)"
            f"; bs=1000 {100 * m1000.efficiency:.1f} %, decode=False "
            f"{100 * raw.efficiency:.1f} %"
        )
        sp = m16.per_min / plain.per_min
        print(
            f"  {verdict(sp >= TARGET_SPEEDUP)}  map (bs=16) speed-up {sp:.2f} x the plain "
            f"loop (target >= {TARGET_SPEEDUP:g} x at cap {CAP}); bs=1000 "
            f"{m1000.per_min / plain.per_min:.2f} x, decode=False "
            f"{raw.per_min / plain.per_min:.2f} x"
        )
        print(
            f"  {verdict(mp.stats['max_in_flight'] <= CAP)}  num_proc=2: max in flight "
            f"{mp.stats['max_in_flight']} (cap {CAP}); {mp.per_min:.0f} rows/min, "
            f"efficiency {100 * mp.efficiency:.1f} %, {mp.per_min / plain.per_min:.2f} x plain"
        )
        per_row = 1024 * grow_heap / max(1, later)
        anon_row = 1024 * grow_anon / max(1, later)
        flat = per_row < 1 or grow_heap < 0.5  # few rows: a batch's buffers swing ~0.5 MB
        print(
            f"  {'flat' if flat else 'GROWING'}  memory over the last {later} rows: "
            f"python heap (incl. numpy arrays) {grow_heap:+.2f} MB ({per_row:+.2f} kB/row; "
            f"one output row is ~{0.2 * 32500 * 4 / 1024:.0f} kB); anonymous RSS "
            f"{grow_anon:+.1f} MB ({anon_row:+.1f} kB/row, allocator noise of a few MB is "
            "normal)"
        )
        print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s; {load_line()}")
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
