"""Stems: one map asking for several sounds per row against one map per sound.

What it measures
----------------
A ``LocalEndpoint`` on 127.0.0.1 limits the account to ``LIMIT`` requests per second (token
bucket, burst ``LIMIT``) and answers after ``LATENCY`` s. A dataset of ``rows`` distinct
0.5 s clips is split into ``S`` stems (``"bass"``, ``"half"``, ``"treble"``) two ways, each
with a fresh cache and server, the rate stated to the client, one batch per map:

* **one map**: ``ds.map(isolate({"low": "bass", "quiet": "half", ...}), batched=True)``: the
  ``rows x S`` calls go through one pool at the account's limit;
* **a map per stem**: ``S`` maps of ``isolate("bass")``, ``isolate("half")``, ...: the
  account idles one latency at the end of each (its slowest answer).

Printed per run: calls billed, 429s, wall time against the ideal (``calls / limit +
latency``: the account's limit, then the last answer), and the ratio of the two runs. The
baseline is the account's limit itself.

Targets (issue 18)
------------------
Both complete with every call billed once and no 429; the one map is within 15 % of the
ideal and faster than a map per stem.

Run: ``python benchmarks/stems.py`` (16 rows, 3 stems, about 20 s) or ``--quick`` (8 rows,
2 stems, about 8 s). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings

from _common import KEY, load_line, quiet_datasets, short_clips, verdict, wav_dataset

from samaudio_data import Client, isolate
from samaudio_data.testing import LocalEndpoint

LIMIT = 8  # requests per second
LATENCY = 1.0
SR = 16000
STEMS = {"low": "bass", "quiet": "half", "high": "treble"}
TARGET_RATIO = 1.15


def run(ds, stems: dict, together: bool) -> dict:
    with (
        LocalEndpoint(
            keys={KEY: None},
            rate_limit_per_minute=LIMIT,
            rate_window=1.0,
            rate_limit_burst=LIMIT,
            latency=LATENCY,
        ) as ep,
        Client(
            KEY,
            endpoint=ep.url,
            requests_per_minute=LIMIT,
            rate_window=1.0,
            max_concurrency=16,
            transport="sync",
            progress=False,
            cache_dir=tempfile.mkdtemp(prefix="samaudio-stems-"),
        ) as client,
    ):
        t0 = time.perf_counter()
        if together:
            out = ds.map(isolate(stems, client=client), batched=True, batch_size=len(ds))
        else:
            out = ds
            for name, description in stems.items():
                out = out.map(
                    isolate(description, client=client, output_column=name),
                    batched=True,
                    batch_size=len(ds),
                )
        seconds = time.perf_counter() - t0
        st = ep.stats
    missing = [c for c in stems if c not in out.column_names]
    calls = len(ds) * len(stems)
    ideal = calls / LIMIT + LATENCY
    return {
        "seconds": seconds,
        "billed": st["billed"],
        "requests": st["requests"],
        "s429": st["by_status"].get(429, 0),
        "calls": calls,
        "ideal": ideal,
        "ratio": seconds / ideal,
        "missing": missing,
    }


def report(name: str, r: dict) -> None:
    print(
        f"  {name:<20} {r['billed']:>3}/{r['calls']:<3} calls billed  429s {r['s429']:>2}  "
        f"{r['seconds']:6.2f} s = {r['ratio']:.3f} x ideal {r['ideal']:.2f} s"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 rows and 2 stems")
    args = ap.parse_args(argv)
    quiet_datasets()
    warnings.filterwarnings("ignore", "batches of")  # one batch per map, on purpose
    rows = 8 if args.quick else 16
    stems = dict(list(STEMS.items())[: 2 if args.quick else 3])
    ds = wav_dataset(short_clips(rows, sr=SR), SR)
    print(
        f"stems: {rows} clips of 0.5 s, {len(stems)} stems, account limit {LIMIT}/s, "
        f"latency {LATENCY:g} s, one batch per map{' (quick)' if args.quick else ''}"
    )
    print(
        f"  baseline: the account's limit; ideal {rows * len(stems)} / {LIMIT} + {LATENCY:g}"
        f" = {rows * len(stems) / LIMIT + LATENCY:.2f} s"
    )
    one = run(ds, stems, together=True)
    report("one map, all stems", one)
    each = run(ds, stems, together=False)
    report("a map per stem", each)
    print(f"  a map per stem takes {each['seconds'] / one['seconds']:.3f} x the one map")

    print("\ntargets")
    for name, r in (("one map", one), ("a map per stem", each)):
        ok = r["billed"] == r["calls"] == r["requests"] and not r["s429"] and not r["missing"]
        print(
            f"  {verdict(ok)}  {name}: every call billed once, no 429 ({r['billed']} of "
            f"{r['calls']}, {r['s429']} 429s)"
        )
    print(
        f"  {verdict(one['ratio'] <= TARGET_RATIO)}  one map: {one['ratio']:.3f} x the ideal "
        f"(target <= {TARGET_RATIO})"
    )
    print(
        f"  {verdict(one['seconds'] < each['seconds'])}  one map faster than a map per stem "
        f"({one['seconds']:.2f} s against {each['seconds']:.2f} s)"
    )
    print(f"\n{load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
