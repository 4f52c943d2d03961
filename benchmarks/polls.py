"""Queue polls: how late a queued answer is collected, and what it costs a map.

What it measures
----------------
A queued request is paid when submitted, then the client polls its status until it is
done and fetches its result. Every moment between the job finishing at the server and the
client fetching it holds a slot (of the concurrency cap, and of a ``datasets`` batch, which
waits for its slowest row): the map runs slower than with the synchronous call, whose
answer comes back the moment it is ready. Issue 19 measured 1.9x the ideal for the queue
against 1.3x for the synchronous call at 0.3 s calls. Two causes: the schedule (fixed) and
the local endpoint, which answered every small body (a poll's, a result's) 40 ms late
(Nagle's algorithm against the client's delayed ACK) until it set TCP_NODELAY. The client
now polls on a schedule learned from the completion times seen so far
(``samaudio_data._net.polls.PollSchedule``: sparse polls until 90 % of the expected time,
then every 3 % of it).

Against a ``LocalEndpoint`` in its own process on 127.0.0.1 whose model takes a fixed
``latency`` (0.3 s, as in the issue, and 1.5 s to show the schedule scales with it), each
run maps the same ``datasets.Dataset`` of distinct 0.5 s clips (``Audio(decode=False)`` WAV
bytes, caching off: every row paid) with
``ds.map(isolate(...), batched=True, batch_size=16)`` and ``Client(max_concurrency=8)``:

* **sync** (the baseline): ``transport="sync"``, the synchronous call;
* **queue, learned**: ``transport="queue"``, the library's poll schedule (the default);
* **queue, fixed** (the control): ``transport="queue"`` polling on the schedule used before
  issue 19, the provider SDK's: at once, after 0.1 s, then 1.5x longer each time, at most
  1 s apart, whatever the latency. There is no public setting for it: the benchmark replaces
  the client's schedule object (``client._parts.caller.exchange.polls``, a private
  attribute, see :class:`FixedPolls`) right after creating the client.

Before the runs, a short warm-up map sets the client's concurrency (with no rate stated it
starts at 2 in flight and grows per success; runs against one endpoint share that state
through a file), so that every run starts at the cap of 8: the slow start is not what is
measured.

Printed per run: wall time against the ideal (``ideal = rows x latency / 8``: the model's
time fully overlapped at the cap of 8 in flight; with batches of 16, exactly two rounds per
batch, so the batch boundary costs the ideal nothing), and against the sync run's wall
time; for the queued runs, how late each answer was, measured by the server from the job's
completion (``LocalEndpoint.stats``): **seen** (the first status poll that found it
COMPLETED: the schedule's part) and **collected** (the first fetch of its result: the
schedule plus a round trip), median and 90th percentile in ms, and the collected ones as a
share of the latency; status **polls per request** (the server's status GETs / submits);
billed per row.

Targets (issue 19)
------------------
* "collected within a small fraction of its latency": with the learned schedule, answers
  after the first round (the first 8 requests are sent before any completion is known and
  poll on the fixed schedule) are seen done at a median <= 5 % and a 90th percentile <= 10 %
  of the latency after their completion. The collected figure adds a status and a result
  round trip on top; on this loopback these are milliseconds when the machine is idle and
  tens of them when it is busy (printed, judged against nothing);
* the learned schedule beats the fixed one (lower wall time), and runs within 1.10x the
  synchronous call's wall time (the queue's floor: a submit, polls, a result and a file
  fetch instead of one call; the first round's lateness counts here);
* every row answered and paid once.

Run: ``python benchmarks/polls.py`` (about 1 minute: 96 rows at 0.3 s, 48 at 1.5 s, each
run once; ``--repeat N`` runs each N times, the targets use the median wall time and every
answer's lateness) or ``--quick`` (32 and 24 rows, about 25 s). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from _common import (
    DESCRIPTION,
    KEY,
    Server,
    load_line,
    quiet_datasets,
    short_clips,
    verdict,
    wav_dataset,
)

from samaudio_data import Client, isolate

CAP = 8
BATCH = 16
SR = 16000
TARGET_MEDIAN = 0.05  # of the latency
TARGET_P90 = 0.10
TARGET_VS_SYNC = 1.10
MODES = ("sync", "queue, learned", "queue, fixed")


class FixedPolls:
    """The control: the poll schedule before issue 19 (the provider SDK's), never learning.

    Duck-types ``samaudio_data._net.polls.PollSchedule`` (``delay``, ``learn``) and is set as
    ``client._parts.caller.exchange.polls``: a private attribute, used only here to compare
    the library's schedule with the one it replaced. Each request is polled at once after
    its submit, then on the schedule, as before.
    """

    def first(self) -> float | None:
        return None

    def delay(self, elapsed: float, previous: float | None) -> float:
        return 0.1 if previous is None else min(1.0, previous * 1.5)

    def learn(self, elapsed: float, last_delay: float) -> None:
        pass


def client(server: Server, mode: str) -> Client:
    return Client(
        KEY,
        endpoint=server.url,
        max_concurrency=CAP,
        cache_dir=False,
        progress=False,
        transport="sync" if mode == "sync" else "queue",
    )


def warm_up(server: Server) -> None:
    """A short map, so that the client's concurrency (kept per endpoint) is at the cap."""
    server.configure(0.05)
    ds = wav_dataset(short_clips(2 * BATCH, sr=SR, seed=99), SR)
    with client(server, "sync") as c:
        ds.map(isolate(DESCRIPTION, client=c), batched=True, batch_size=BATCH)


def run(server: Server, ds, latency: float, mode: str) -> dict:
    server.configure(latency)
    with client(server, mode) as c:
        if mode == "queue, fixed":
            c._parts.caller.exchange.polls = FixedPolls()  # the control (see above)
        fn = isolate(DESCRIPTION, client=c)
        t0 = time.perf_counter()
        out = ds.map(fn, batched=True, batch_size=BATCH)
        seconds = time.perf_counter() - t0
    st = server.stats
    errors = [e for e in out["isolated_error"] if e]
    return {
        "mode": mode,
        "latency": latency,
        "rows": len(ds),
        "ok": len(out) - len(errors),
        "errors": errors,
        "seconds": seconds,
        "ideal": len(ds) * latency / CAP,
        "billed": st["billed"],
        "submits": st["submits"],
        "polls": st["polls"],
        "seen": st["seen_lags"],
        "collected": st["collect_lags"],
        "max_in_flight": st["max_in_flight"],
    }


def pct(values: list, q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def report(r: dict, sync_seconds: float | None) -> None:
    lat = r["latency"]
    r["ratio"] = r["seconds"] / r["ideal"]
    vs_sync = f"{r['seconds'] / sync_seconds:5.2f} x sync" if sync_seconds else " " * 12
    if r["submits"]:
        seen, got = r["seen"], r["collected"]
        late = (
            f"seen +{1000 * statistics.median(seen):4.0f}/{1000 * pct(seen, 0.9):4.0f} ms  "
            f"collected +{1000 * statistics.median(got):4.0f}/{1000 * pct(got, 0.9):4.0f} ms "
            f"= {100 * statistics.median(got) / lat:4.1f}/{100 * pct(got, 0.9) / lat:4.1f} % "
            f"(median/p90)  polls/request {r['polls'] / r['submits']:5.2f}"
        )
    else:
        late = f"answered in the call, in flight max {r['max_in_flight']}"
    print(
        f"  {r['mode']:<15} {r['seconds']:6.2f} s = {r['ratio']:5.3f} x ideal "
        f"{r['ideal']:5.2f} s  {vs_sync}  billed {r['billed']}/{r['rows']}  "
        f"rows ok {r['ok']}/{r['rows']}  {late}"
    )
    for e in r["errors"][:2]:
        print(f"  !! {e[:200]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 rows at 0.3 s, 24 at 1.5 s")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each mode per latency")
    ap.add_argument(
        "--latencies", type=float, nargs="+", default=[0.3, 1.5], help="model seconds per call"
    )
    ap.add_argument("--rows", type=int, nargs="+", default=None, help="rows per latency")
    args = ap.parse_args(argv)
    rows_for = args.rows or ([32, 24] if args.quick else [96, 48])
    if len(rows_for) < len(args.latencies):
        rows_for += rows_for[-1:] * (len(args.latencies) - len(rows_for))
    quiet_datasets()
    print(
        f"polls: ds.map(isolate(...), batched=True, batch_size={BATCH}), max_concurrency={CAP}, "
        f"distinct 0.5 s clips, the endpoint in its own process{' (quick)' if args.quick else ''}"
    )
    summary = []
    with Server() as server:
        warm_up(server)
        for latency, rows in zip(args.latencies, rows_for, strict=False):
            ds = wav_dataset(short_clips(rows, sr=SR, seed=int(latency * 1000)), SR)
            print(
                f"\nlatency {latency:g} s, {rows} rows: baseline ideal = {rows} x {latency:g} / "
                f"{CAP} = {rows * latency / CAP:.2f} s (and the sync run's wall time)"
            )
            runs: dict[str, list] = {m: [] for m in MODES}
            for _ in range(args.repeat):
                sync_seconds = None
                for mode in MODES:
                    r = run(server, ds, latency, mode)
                    report(r, sync_seconds)
                    sync_seconds = sync_seconds or r["seconds"]
                    runs[mode].append(r)
            summary.append((latency, runs))

    print(
        f"\ntargets (learned schedule, after the first round: seen done at a median <= "
        f"{100 * TARGET_MEDIAN:g} % and p90 <= {100 * TARGET_P90:g} % of the latency after "
        f"completion; faster than the fixed schedule; <= {TARGET_VS_SYNC:g} x the sync call; "
        f"medians over {args.repeat} run(s))"
    )
    for latency, runs in summary:
        med = {m: statistics.median(r["seconds"] for r in runs[m]) for m in MODES}
        learned = [x for r in runs["queue, learned"] for x in r["seen"][CAP:] or r["seen"]]
        fixed = [x for r in runs["queue, fixed"] for x in r["seen"][CAP:] or r["seen"]]
        m, p90 = statistics.median(learned), pct(learned, 0.9)
        print(
            f"  {verdict(m <= TARGET_MEDIAN * latency and p90 <= TARGET_P90 * latency)}  "
            f"{latency:g} s: seen done after {100 * m / latency:.1f} % (median), "
            f"{100 * p90 / latency:.1f} % (p90) of the latency (fixed schedule: "
            f"{100 * statistics.median(fixed) / latency:.1f} %, "
            f"{100 * pct(fixed, 0.9) / latency:.1f} %)"
        )
        ideal = runs["sync"][0]["ideal"]
        print(
            f"  {verdict(med['queue, learned'] < med['queue, fixed'])}  {latency:g} s: learned "
            f"{med['queue, learned'] / ideal:.3f} x ideal against fixed "
            f"{med['queue, fixed'] / ideal:.3f} x"
        )
        print(
            f"  {verdict(med['queue, learned'] <= TARGET_VS_SYNC * med['sync'])}  {latency:g} "
            f"s: learned {med['queue, learned'] / med['sync']:.3f} x the sync call "
            f"({med['sync'] / ideal:.3f} x ideal)"
        )
        every = [r for m in MODES for r in runs[m]]
        ok = all(r["ok"] == r["rows"] == r["billed"] for r in every)
        print(f"  {verdict(ok)}  {latency:g} s: every row answered and paid once")
    print(f"\n{load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
