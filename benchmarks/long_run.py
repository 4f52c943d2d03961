"""The spacing's margin over a long run: how close to the stated limit, at what cost in 429s.

What it measures
----------------
A client that states its account's rate spaces its requests one interval apart plus a
safety margin, because a request that arrives a little early at a token bucket of burst 1
is refused. The margin starts at 4 % of the interval, tightens by a thousandth per success
while no 429 comes (down to 1 %: 99 % of the limit), and doubles on a 429, after which the
margin that met it is not tried again for a few thousand requests. Over a long run that
should use >= 98 % of the stated limit with at most one 429 per 1,000 requests (issue 19).

A local endpoint in a process of its own enforces the limit as a token bucket of burst 1
and answers after a scaled model time; ``isolate_many`` sends distinct short clips with only
the rate stated (``Client(requests_per_minute=50, rate_window=...)``). Time is scaled 4x: a
15 s "minute", so 50 requests per window is 3.33 requests/s (a 300 ms interval: the 1 %
margin is 3 ms, above the 2 ms the client always keeps for the network's jitter), and
3.15 s calls (the model's ~12.6 s). What time scaling does not shrink: each request's
departure is stamped once its headers are written and the server notes its arrival when a
thread of its own wakes up, about 2 ms per interval on this machine; that is 0.6 % of this
interval, against 0.15 % of the real one (1.2 s), so the figures here are a little worse
than a real run's.

Printed, as counted by the server: the share of the stated limit used while requests were
flowing ((accepted requests - 1) / (last arrival - first arrival) against the rate), per stretch of
the run and overall, the 429s and when they came, and paid calls per row. The baseline, in
the same run: the same client with the margin held at its starting 4 % (a private constant
of the rules set to 0 for that run only), over fewer requests (its share does not move).

Targets (issue 19): >= 98 % of the stated limit over the run, <= 1 429 per 1,000 requests,
1.00 paid per row.

Run: ``python benchmarks/long_run.py`` (1,500 requests, about 9 minutes) or ``--quick``
(1,000, about 6). Only 127.0.0.1 is contacted. Other work on the machine adds jitter that
a 2 ms margin may not cover: the adaptive margin then widens, which the figures show.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import numpy as np
from _common import KEY, load_line, verdict

SCALE = 4.0
WINDOW = 60.0 / SCALE  # 15 s
LATENCY = 12.6 / SCALE  # 3.15 s
PER_WINDOW = 50
SR = 16000


def clips(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(SR // 10)).astype(np.float32) for _ in range(n)]


class Sampler(threading.Thread):
    """Reads the server's counters and the client's margin every ``every`` seconds."""

    def __init__(self, ep, client, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.ep, self.client, self.every = ep, client, every
        self.samples: list[tuple[float, int, int, float]] = []
        self.done = threading.Event()

    def sample(self) -> None:
        st = self.ep.stats
        if st["last_request_at"] is not None:
            slack = self.client.limits.snapshot().get("slack", float("nan"))
            self.samples.append(
                (st["last_request_at"], st["requests"], st["by_status"].get(429, 0), slack)
            )

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.sample()


def one_run(rows: int, *, fixed_margin: bool) -> dict:
    from samaudio_data import Client
    from samaudio_data._state import rules
    from samaudio_data.testing import EndpointProcess

    tighten = rules._TIGHTEN
    if fixed_margin:
        rules._TIGHTEN = 0.0  # the baseline: today's starting 4 %, held
    try:
        with (
            EndpointProcess(
                keys={KEY: None},
                rate_limit_per_minute=PER_WINDOW,
                rate_window=WINDOW,
                rate_limit_burst=1,
                latency=LATENCY,
                send_retry_after="fraction",
            ) as ep,
            Client(
                KEY,
                endpoint=ep.url,
                requests_per_minute=PER_WINDOW,
                rate_window=WINDOW,
                cache_dir=tempfile.mkdtemp(prefix="samaudio-long-"),
                progress=False,
            ) as client,
        ):
            sampler = Sampler(ep, client)
            sampler.start()
            t0 = time.perf_counter()
            client.isolate_many(clips(rows, 7), SR, "a man speaking")
            wall = time.perf_counter() - t0
            sampler.done.set()
            sampler.join()
            st = ep.stats
            sampler.sample()
            snap = client.limits.snapshot()
    finally:
        rules._TIGHTEN = tighten
    rate = PER_WINDOW / WINDOW
    accepted = st["requests"] - st["by_status"].get(429, 0)  # a 429 is no use of the limit
    span = st["last_request_at"] - st["first_request_at"]
    return {
        "rows": rows,
        "wall": wall,
        "share": (accepted - 1) / span / rate if span > 0 else float("nan"),
        "requests": st["requests"],
        "billed": st["billed"],
        "r429": st["by_status"].get(429, 0),
        "first": st["first_request_at"],
        "samples": sampler.samples,
        "slack": snap.get("slack", float("nan")),
        "rate": rate,
        "arrivals": st["arrivals"],
        "concurrency": snap.get("concurrency"),
    }


def spacing(r: dict) -> str:
    """The gaps between arrivals at the server, as shares of the stated interval: between
    accepted requests, and for each 429 the gap since the last accepted one, beside the gap
    before that one (a long gap there: the last one was late, not this one early)."""
    times = sorted(r["arrivals"])
    interval = 1.0 / r["rate"]
    accepted = [t for t, refused in times if not refused]
    gaps = np.diff(accepted) / interval
    if not gaps.size:
        return "  (no gaps)"
    q = np.quantile(gaps, [0.0, 0.01, 0.5])
    before_429, last, prev_gap = [], None, float("nan")
    for t, refused in times:
        if refused and last is not None:
            before_429.append(f"{(t - last) / interval:.3f} after {prev_gap:.3f}")
        elif not refused:
            prev_gap = float("nan") if last is None else (t - last) / interval
            last = t
    return (
        f"  gaps between accepted arrivals at the server, in intervals: min {q[0]:.3f}, "
        f"1st percentile {q[1]:.3f}, median {q[2]:.3f}\n"
        f"  each 429 came this long after the last accepted arrival, which came after: "
        f"{', '.join(before_429) or 'none'}"
    )


def stretches(r: dict, parts: int) -> list[tuple[int, float, int, float]]:
    """(requests so far, share over the stretch, 429s in it, margin at its end) per stretch
    of about ``rows / parts`` requests, from the samples."""
    pts = [(r["first"], 1, 0, float("nan"))] + r["samples"]
    out, start = [], pts[0]
    step = r["rows"] / parts
    for p in pts[1:]:
        if p[1] - start[1] >= step or p is pts[-1]:
            dt = p[0] - start[0]
            if dt > 0:
                share = ((p[1] - start[1]) - (p[2] - start[2])) / dt / r["rate"]
                out.append((p[1], share, p[2] - start[2], p[3]))
            start = p
    return out


def show(name: str, r: dict, parts: int) -> None:
    print(
        f"\n{name}: {r['requests']} requests in {r['wall']:.0f} s; "
        f"share of the stated limit {r['share']:.4f}, 429s {r['r429']} "
        f"({1000 * r['r429'] / max(1, r['requests']):.2f} per 1,000), "
        f"paid per row {r['billed'] / r['rows']:.2f}, margin at the end {r['slack']:.4f}, "
        f"in flight allowed {r['concurrency']}"
    )
    print(spacing(r))
    print(f"  {'requests':>9} {'share':>7} {'429s':>5} {'margin':>7}")
    for n, share, r429, slack in stretches(r, parts):
        print(f"  {n:>9d} {share:>7.4f} {r429:>5d} {slack:>7.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 requests instead of 1,500")
    ap.add_argument("--rows", type=int, default=None)
    args = ap.parse_args()
    rows = args.rows or (1000 if args.quick else 1500)
    base_rows = max(40, rows // 5)
    print(
        f"long_run: time scaled {SCALE:g}x (a minute = {WINDOW:g} s, a call = {LATENCY:g} s), "
        f"limit {PER_WINDOW} per window = {PER_WINDOW / WINDOW:g} requests/s, token bucket "
        f"of burst 1; {rows} requests, then the baseline (margin held at 4 %) over {base_rows}"
    )
    adaptive = one_run(rows, fixed_margin=False)
    show("adaptive margin", adaptive, 8)
    fixed = one_run(base_rows, fixed_margin=True)
    show("baseline: margin held at 4 %", fixed, 2)

    per_1000 = 1000 * adaptive["r429"] / max(1, adaptive["requests"])
    paid_once = adaptive["billed"] == adaptive["rows"]
    print("\ntargets (issue 19)")
    print(
        f"  {verdict(adaptive['share'] >= 0.98)}  share of the stated limit over the run "
        f"{adaptive['share']:.4f} (target >= 0.98; the baseline's {fixed['share']:.4f}, "
        f"adaptive / baseline {adaptive['share'] / fixed['share']:.4f}x)"
    )
    print(f"  {verdict(per_1000 <= 1.0)}  429s per 1,000 requests {per_1000:.2f} (target <= 1)")
    print(
        f"  {verdict(paid_once)}  paid per row {adaptive['billed'] / adaptive['rows']:.2f} "
        "(target 1.00)"
    )
    print(f"\n{load_line()}")


if __name__ == "__main__":
    main()
