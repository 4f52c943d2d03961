"""429 storm: ``max_concurrency=8`` against an account limited to 2 requests/s (burst 2).

What it measures
----------------
A ``LocalEndpoint`` on 127.0.0.1 enforces a token bucket of 2 tokens refilled at 2 per
second per key (``rate_limit_per_minute=2, rate_window=1.0, rate_limit_burst=2``), answers
after ``latency=0.3`` s, and sends ``Retry-After`` (whole seconds) on a 429. A
``Client(max_concurrency=8, rate_window=1.0)`` isolates 60 distinct 0.5 s clips with
``separate_many(..., return_exceptions=True)``, twice, each against a fresh server:

* **rate stated**: ``requests_per_minute=2`` (2 per ``rate_window`` of 1 s);
* **no rate stated**: the client starts at 2 in flight and learns the limit from 429s.

Printed per run: rows completed, 429s (counted by the server and by ``client.usage``),
requests and billed calls, wall time against the ideal (``rows / limit``: the account's
physical limit), the share of the limit used (achieved rate / limit, the achieved rate being
billed calls per second of wall time; the bucket's burst and the last answer's latency make
the physical best ``rows / ((rows - burst) / limit + latency)``, 103 % for 60 rows), and what
``client.limits.snapshot()`` ends at (rate, concurrency, latency). The baseline is the
account's limit itself.

Targets (issue 7)
-----------------
Completes (every row), >= 85 % of the limit, <= 3 429s with ``requests_per_minute`` set.
Without it: completes (429s are expected while the limit is learned).

Run: ``python benchmarks/rate_storm.py`` (60 clips, about 75 s) or ``--quick`` (20 clips,
about 25 s). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from _common import DESCRIPTION, KEY, load_line, short_clips, verdict

from samaudio_data import Client
from samaudio_data.testing import LocalEndpoint

LIMIT = 2  # requests per window
WINDOW = 1.0  # seconds
BURST = 2
LATENCY = 0.3
CAP = 8
SR = 16000
TARGET_SHARE = 0.85
TARGET_429 = 3


def run(clips: list, rpm) -> dict:
    with (
        LocalEndpoint(
            keys={KEY: None},
            rate_limit_per_minute=LIMIT,
            rate_window=WINDOW,
            rate_limit_burst=BURST,
            latency=LATENCY,
        ) as ep,
        Client(
            KEY,
            endpoint=ep.url,
            max_concurrency=CAP,
            requests_per_minute=rpm,
            rate_window=WINDOW,
            cache_dir=tempfile.mkdtemp(prefix="samaudio-storm-"),
            progress=False,
        ) as client,
    ):
        t0 = time.perf_counter()
        out = client.separate_many(clips, SR, DESCRIPTION, return_exceptions=True)
        seconds = time.perf_counter() - t0
        st, usage, snap = ep.stats, client.usage, client.limits.snapshot()
    errors = [o for o in out if isinstance(o, BaseException)]
    return {
        "rows": len(clips),
        "ok": len(clips) - len(errors),
        "errors": errors,
        "seconds": seconds,
        "server_429": st["by_status"].get(429, 0),
        "requests": st["requests"],
        "billed": st["billed"],
        "client_429": usage.rate_limited,
        "max_in_flight": st["max_in_flight"],
        "snap": snap,
    }


def report(name: str, r: dict) -> None:
    rate = LIMIT / WINDOW
    ideal = r["rows"] / rate
    r["share"] = r["billed"] / r["seconds"] / rate
    r["ratio"] = r["seconds"] / ideal
    s = r["snap"]
    print(
        f"  {name:<28} {r['ok']:>3}/{r['rows']:<3} rows  {r['seconds']:6.1f} s "
        f"= {r['ratio']:.3f} x ideal {ideal:.1f} s   429s {r['server_429']:>3} (client saw "
        f"{r['client_429']})  requests {r['requests']:>3}  billed {r['billed']:>3}  "
        f"share of limit {100 * r['share']:5.1f} %  max in flight {r['max_in_flight']}"
    )
    lat = "?" if s["latency"] is None else f"{s['latency']:.2f} s"
    pace = (
        "unpaced"
        if s["rate_per_minute"] is None
        else f"{s['rate_per_minute'] / 60 * WINDOW:.2f}/window"
    )
    print(f"  {'':<28} client ends at: pace {pace}, concurrency {s['concurrency']}, latency {lat}")
    for e in r["errors"][:2]:
        print(f"  !! {type(e).__name__}: {str(e)[:200]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 clips instead of 60")
    ap.add_argument("--rows", type=int, default=None)
    args = ap.parse_args(argv)
    rows = args.rows or (20 if args.quick else 60)
    clips = short_clips(rows, sr=SR)

    print(
        f"rate_storm: {rows} clips of 0.5 s, max_concurrency {CAP}, account limit {LIMIT} "
        f"per {WINDOW:g} s (token bucket, burst {BURST}), latency {LATENCY:g} s"
        f"{' (quick)' if args.quick else ''}"
    )
    print(
        f"  baseline: the account's limit, {LIMIT / WINDOW:g} requests/s; ideal "
        f"{rows} / {LIMIT / WINDOW:g} = {rows * WINDOW / LIMIT:.1f} s"
    )
    stated = run(clips, LIMIT)
    report(f"requests_per_minute={LIMIT}", stated)
    learned = run(short_clips(rows, sr=SR, seed=1), None)
    report("no rate stated", learned)

    print("\ntargets")
    ok = stated["ok"] == rows
    print(f"  {verdict(ok)}  rate stated: completes ({stated['ok']}/{rows} rows)")
    print(
        f"  {verdict(stated['share'] >= TARGET_SHARE)}  rate stated: "
        f"{100 * stated['share']:.1f} % of the limit (target >= {100 * TARGET_SHARE:.0f} %)"
    )
    print(
        f"  {verdict(stated['server_429'] <= TARGET_429)}  rate stated: "
        f"{stated['server_429']} 429s (target <= {TARGET_429})"
    )
    print(
        f"  {verdict(learned['ok'] == rows)}  no rate stated: completes "
        f"({learned['ok']}/{rows} rows, {learned['server_429']} 429s, "
        f"{100 * learned['share']:.1f} % of the limit)"
    )
    print(f"\n{load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
