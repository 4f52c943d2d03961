"""Kill -9 and rerun: calls paid per unique piece, synchronous call against the queue.

What it measures
----------------
A ``datasets`` map of 200 short clips (``isolate("half")``, one paid call per clip) runs in
a worker process against a ``LocalEndpoint`` whose model takes ``--latency`` seconds (0.3 s,
a scaled stand-in for the real ~12 s). The worker is killed with SIGKILL ``--kills`` times at
random moments while calls are in flight; after each kill the same map is started again with
the same cache, and the last run is let finish. The endpoint counts what it billed.

* ``paid/unique`` -- calls billed divided by unique clips. 1.00 means nothing was paid
  twice. With ``transport="sync"`` every call in flight at a kill is billed by the provider
  (it finished the work) but its answer never reached the cache, so the rerun pays again.
  With ``transport="queue"`` each accepted request is journalled before waiting; the rerun
  collects it.
* ``lost`` -- calls paid more than once.

Target: the queue pays exactly 1.00 per unique clip; the synchronous call shows the loss it
has by design. One window remains for the queue: a kill after the provider accepted a
submit but before its answer (the request id) arrived -- one round trip -- pays twice, as
no API can find a request again without its id. Random kills rarely land there.

How to read the output
----------------------
One line per transport: kills done, calls billed, unique clips, the ratio, wall time of all
runs. PASS/MISS lines compare with the target; nothing is asserted.

Run: ``python benchmarks/kill_resume.py`` (200 clips, 5 kills per transport, ~2 min) or
``--quick`` (40 clips, 3 kills, well under a minute). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import verdict  # noqa: E402

from samaudio_data.testing import LocalEndpoint  # noqa: E402

KEY = "local-key"
SR = 16000
CONCURRENCY = 8

WORKER = """
import sys
import datasets
from samaudio_data import Client
from samaudio_data.hf import isolate
url, cache, transport, data = sys.argv[1:5]
ds = datasets.load_from_disk(data)
with Client(endpoint=url, cache_dir=cache, transport=transport, max_concurrency=%d,
            requests_per_minute=6000, backoff_base=0.05, progress=False) as c:
    out = ds.map(isolate("half", client=c), batched=True, batch_size=16,
                 load_from_cache_file=False)
print("done", len(out))
"""


def make_dataset(n: int, path: Path) -> None:
    import numpy as np
    from datasets import Audio, Dataset

    from samaudio_data.hf import encode_value

    rng = np.random.default_rng(0)
    rows = [
        {
            "audio": encode_value((0.2 * rng.standard_normal(SR // 4)).astype(np.float32), SR),
            "id": i,
        }
        for i in range(n)
    ]
    Dataset.from_list(rows).cast_column("audio", Audio(decode=False)).save_to_disk(str(path))


def _kept(cache: Path) -> int:
    """Answers cached plus requests journalled: what a rerun will not pay for again."""
    from samaudio_data._answers.cache import ResultCache

    journal = cache / "journal"
    return (len(ResultCache(cache)) if cache.exists() else 0) + (
        len(list(journal.glob("*.json"))) if journal.is_dir() else 0
    )


def run(transport: str, n: int, kills: int, latency: float, work: Path, rng: random.Random):
    """One trial: ``kills`` random SIGKILLs, then a run to the end. Returns the figures."""
    cache = work / f"cache-{transport}"
    env = dict(
        os.environ,
        SEGMIND_API_KEY=KEY,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    t0 = time.monotonic()
    with LocalEndpoint(keys={KEY: None}, latency=latency) as ep:
        args = [
            sys.executable,
            "-c",
            WORKER % CONCURRENCY,
            ep.url,
            str(cache),
            transport,
            str(work / "data"),
        ]
        done = window = 0
        billed_before = 0
        for _ in range(kills):
            proc = subprocess.Popen(
                args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            start = ep.stats["requests"]
            billed_before = ep.stats["by_step"].get("submit", {}).get(200, 0) - _kept(cache)
            left = n - ep.stats["billed"]  # roughly what is not cached yet
            deadline = time.monotonic() + 120
            while (
                ep.stats["requests"] == start
                and proc.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.005)  # the worker has imported and loaded: it is sending
            # then a random moment (not tied to any request) within what is left to do
            expected = max(left, 1) * latency / CONCURRENCY
            time.sleep(rng.uniform(0.1, 0.7) * expected)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                done += 1
            proc.wait(60)
            if transport == "queue":  # accepted submits neither cached nor journalled
                time.sleep(0.05)
                accepted = ep.stats["by_step"].get("submit", {}).get(200, 0)
                window += accepted - billed_before - _kept(cache)
        final = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        if final.returncode != 0 or f"done {n}" not in final.stdout:
            raise SystemExit(f"the last {transport} run failed:\n{final.stderr[-3000:]}")
        time.sleep(latency + 0.2)  # calls orphaned by the last kill finish (and are billed)
        billed = ep.stats["billed"]
    return {
        "transport": transport,
        "kills": done,
        "billed": billed,
        "unique": n,
        "window": window,
        "ratio": billed / n,
        "seconds": time.monotonic() - t0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 clips, 3 kills")
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n = args.clips or (40 if args.quick else 200)
    kills = args.kills if args.kills is not None else (3 if args.quick else 5)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_dataset(n, work / "data")
        print(
            f"kill -9 and rerun: {n} clips of 0.25 s, {kills} kills per transport, "
            f"endpoint latency {args.latency:g} s"
        )
        print(
            f"{'transport':<10}{'kills':>6}{'billed':>8}{'unique':>8}{'paid/unique':>13}"
            f"{'lost':>6}{'seconds':>9}"
        )
        results = {}
        for transport in ("sync", "queue"):
            r = results[transport] = run(transport, n, kills, args.latency, work, rng)
            print(
                f"{transport:<10}{r['kills']:>6}{r['billed']:>8}{r['unique']:>8}"
                f"{r['ratio']:>13.2f}{r['billed'] - n:>6}{r['seconds']:>9.1f}"
            )
    q, s = results["queue"], results["sync"]
    print("\ntargets")
    print(
        f"{verdict(q['billed'] == n)} queue pays exactly once per clip after "
        f"{q['kills']} kills: {q['ratio']:.2f} (target 1.00)"
    )
    print(
        f"{verdict(q['billed'] - n == q['window'])} every extra queue payment is "
        f"a kill inside a submit's round trip (accepted, answer not yet received): "
        f"{q['billed'] - n} extra, {q['window']} such submits"
    )
    print(
        f"INFO sync pays {s['ratio']:.2f} per clip after {s['kills']} kills "
        f"({s['billed'] - n} answers paid twice: in flight when killed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
