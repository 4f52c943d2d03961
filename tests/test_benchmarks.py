"""Each benchmark script runs with ``--quick`` and prints figures that are physically possible.

Speed is never asserted here (targets are read from the printed PASS/MISS lines): these tests
parse the printed numbers and check that they are finite, positive and within what the setup
allows (an efficiency cannot pass 100 %, an endpoint cannot bill more rows than it answered,
a run cannot beat the account's rate limit, a lossless cache entry is not larger than raw
PCM), so a benchmark that silently measures the wrong thing fails.
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
NUM = r"(-?\d+(?:\.\d+)?)"


def run(script: str, *args: str) -> str:
    env = dict(os.environ)
    root = str(BENCH.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    targets = out.split("\ntargets")[-1].split("\n\n")[0].strip().splitlines()[1:]
    assert targets, out
    for line in targets:  # every target line carries a verdict
        assert re.match(r"\s*(PASS|MISS|INFO|flat|GROWING)\s", line), line
    return out


def nums(pattern: str, text: str) -> list:
    """Every match of ``pattern`` (its groups as floats); at least one must exist."""
    found = [tuple(float(g) for g in m.groups()) for m in re.finditer(pattern, text)]
    assert found, f"no {pattern!r} in:\n{text}"
    for groups in found:
        assert all(math.isfinite(g) for g in groups), (pattern, groups)
    return [g[0] if len(g) == 1 else g for g in found]


def num(pattern: str, text: str) -> float:
    return nums(pattern, text)[0]


def test_client_overhead():
    out = run("client_overhead.py")
    cpu = num(r"CPU time of Client\.separate.*?" + NUM + " ms", out)
    prep = num(r"audio\.make_upload\)\s+" + NUM + " ms", out)
    fit = num(r"decode \+ fit_answer \+ residual\s+" + NUM + " ms", out)
    assert 0 < prep < 10_000 and 0 < fit < 10_000 and 0 < cpu < 10_000
    ours = num(r"ours \(16-bit mono WAV @ 44100 Hz, base64\)\s+" + NUM, out)
    naive = num(r"naive \(float32 stereo WAV, base64\)\s+" + NUM, out)
    flac = num(r"upload_format='flac'\s+" + NUM, out)
    # 44100 x 2 bytes a second, base64 (4/3), plus a few hundred bytes of JSON over 10 s
    assert 117.6 <= ours < 118.0
    assert 470.4 <= naive < 471.0  # 2 x 44100 x 4 bytes, base64
    assert 0 < flac < ours
    assert num(r"sample data: naive / ours\s+" + NUM, out) == 4.0
    assert 3.9 < num(r"naive / ours\s+" + NUM, out) < 4.0  # fixed overhead keeps it under 4
    e2e, e2e_naive = (
        num(r"Client\.separate\s+" + NUM + " ms", out),
        num(r"naive requests\.post \+ soundfile\.read\s+" + NUM, out),
    )
    assert e2e > 0 and e2e_naive > 0
    calls = num(r"server answered (\d+) calls", out)
    assert re.search(rf"statuses \{{200: {calls:.0f}\}}", out), out


def test_dataset_throughput():
    out = run("dataset_throughput.py")
    rows = nums(
        r"(\d+\.\d+) s\s+(\d+\.\d+) rows/min\s+eff\s+(\d+\.\d+) %\s+billed\s+(\d+)/(\d+)"
        r"\s+max in flight\s+(\d+)",
        out,
    )
    assert len(rows) == 5
    for seconds, per_min, eff, billed, total, in_flight in rows:
        assert seconds > 0 and per_min > 0
        assert 0 < eff <= 100.0  # the ideal is a lower bound on the time
        assert billed == total  # caching is off: every row is paid exactly once
        assert 1 <= in_flight <= 8  # the cap
    assert rows[0][5] == 1  # the plain loop is sequential
    for rss, peak in nums(r"RSS\s+" + NUM + r" MB \(anon.*?peak RSS\s+" + NUM, out):
        assert 0 < rss <= peak < 100_000
    billed, total = nums(r"billed (\d+)/(\d+), (?:\d+) errors", out)[0]
    assert billed == total


def test_rate_storm():
    out = run("rate_storm.py")
    runs = nums(
        r"(\d+)/(\d+)\s+rows\s+"
        + NUM
        + r" s = "
        + NUM
        + r" x ideal "
        + NUM
        + r" s\s+429s\s+(\d+) \(client saw (\d+)\)\s+requests\s+(\d+)\s+billed\s+(\d+)"
        r"\s+share of limit\s+" + NUM + r" %\s+max in flight (\d+)",
        out,
    )
    assert len(runs) == 2
    for ok, rows, seconds, ratio, ideal, s429, c429, requests, billed, share, in_flight in runs:
        assert 0 <= ok <= rows
        assert requests == billed + s429  # every request was answered 200 (billed) or 429
        assert c429 <= s429  # the client cannot see more 429s than were sent
        # the bucket holds 2 and refills 2/s: no run can beat that (and the last answer takes
        # the latency)
        assert seconds >= (billed - 2) / 2.0 + 0.3 - 0.05
        assert abs(ratio - seconds / ideal) < 0.01
        # billed / seconds / limit: at most the physical best, rows / ((rows - 2) / 2 + 0.3)
        assert 0 < share <= 100 * rows / ((rows - 2) + 0.6) + 0.5
        assert 1 <= in_flight <= 8


def test_at_the_limit():
    out = run("at_the_limit.py")
    line = re.compile(
        r"^\s+(paid|free)\s+.*?"
        + NUM
        + r" s = "
        + NUM
        + r" x ideal\s+"
        + NUM
        + r" s\s+429s\s+(\d+)\s+requests\s+(\d+)\s+billed\s+(\d+)\s+paid/row "
        + NUM
        + r"\s+rows ok (\d+)/(\d+)\s+in flight max\s+(\d+)",
        re.M,
    )
    runs = line.findall(out)
    assert len(runs) >= 4, out
    for plan, *figures in runs:
        figures = [float(f) for f in figures]
        assert all(math.isfinite(f) for f in figures)
        seconds, ratio, ideal, r429, requests, billed, paid_row, ok, rows, in_flight = figures
        rate = {"paid": 50, "free": 5}[plan] / 2.5
        assert abs(ideal - rows / rate) < 0.01
        # a token bucket with a burst of 1 (2 in the control run) lets one request through
        # every 1/rate seconds, and the last answer takes the latency: nothing is faster
        assert seconds >= (rows - 2) / rate + 0.525 - 0.05
        assert abs(ratio - seconds / ideal) < 0.01
        assert ok == rows and paid_row >= 1.0  # every row answered, so paid at least once
        assert abs(paid_row - billed / rows) < 0.005
        # no faults: each request was answered 200 (billed) or 429 (never billed)
        assert requests == billed + r429
        assert 1 <= in_flight <= 16  # the client's default upper bound


def test_startup():
    out = run("startup.py")
    imp = num(r"import samaudio_data\s+" + NUM + " s", out)
    first = num(r"first call\s+" + NUM + " s", out)
    warm = num(r"warm call\s+" + NUM + " s", out)
    assert 0 < imp < 60 and 0 < first < 60 and 0 < warm < 60
    assert abs(num(r"first - warm\s+" + NUM + " s", out) - (first - warm)) < 0.002
    rss = num(r"peak RSS\s+" + NUM + " MB", out)
    base_rss = num(r"baseline: requests \+ soundfile.*?peak RSS " + NUM + " MB", out)
    assert 10 < base_rss < 2000 and 10 < rss < 2000
    cold = num(r"cold \(first map in the process\)\s+" + NUM + " s", out)
    mwarm = num(r"warm \(second map, other clips\)\s+" + NUM + " s", out)
    rows = num(r"Dataset\.map: (\d+) rows", out)
    ideal = num(r"\(ideal " + NUM + r" s\)", out)
    assert abs(ideal - rows * 0.5 / 8) < 0.01
    assert cold >= ideal and mwarm >= ideal  # 8 in flight at most, 0.5 s each
    # lossless 16-bit storage of a 48 kHz answer: above zero, not above raw PCM (96 kB/s)
    speech = num(r"speech-like, room noise -50 dBFS\s+" + NUM + " kB/s", out)
    music = num(r"music-like, noise -46 dBFS \(mixed\)\s+" + NUM + " kB/s", out)
    for kb in (speech, music):
        assert 0 < kb <= 96.5
    table = {
        name: [float(v) for v in row.split()]
        for name, row in re.findall(r"^\s+(speech-like|music-like)\s+([\d. ]+?)\s+kB/s$", out, re.M)
    }
    for name, row in table.items():
        assert len(row) == 4 and all(0 < v <= 96.5 for v in row)
        assert row == sorted(row, reverse=True), (name, row)  # less noise, fewer bytes
    assert table["speech-like"][0] == pytest.approx(speech, abs=0.15)


def test_long_audio():
    out = run("long_audio.py")
    rows = nums(
        r"(\d+) m\s+"
        + NUM
        + r"\s+"
        + NUM
        + r"\s+"
        + NUM
        + r"\s+"
        + NUM
        + r"\s+"
        + NUM
        + r"%\s+"
        + NUM
        + r"\s+(\d+)\s+(\d+)/(\d+)",
        out,
    )
    assert len(rows) == 2
    for minutes, wall, realtime, cpu, cpu_min, cpu_pct, base, rss, calls, expected in rows:
        assert wall > 0 and realtime > 1 and cpu > 0 and 0 < cpu_pct < 100 and base > 0
        assert cpu_min == pytest.approx(cpu / minutes, abs=0.06 / minutes)  # cpu: 0.1 s steps
        assert 20 < rss < 24_000 and calls == expected >= 1  # every window paid once


def test_kill_resume():
    out = run("kill_resume.py")
    rows = {
        m[0]: m[1:]
        for m in re.findall(
            r"^(sync|queue)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+\.\d+)\s+(\d+)", out, re.M
        )
    }
    assert set(rows) == {"sync", "queue"}, out
    for kills, billed, unique, per_unique, lost in rows.values():
        billed, unique = int(billed), int(unique)
        assert int(kills) >= 1 and billed >= unique > 0  # nothing is paid less than once
        assert int(lost) == billed - unique  # what was paid more than once
        assert float(per_unique) == pytest.approx(billed / unique, abs=0.01)


def test_stems():
    out = run("stems.py")
    runs = nums(
        r"(\d+)/(\d+)\s+calls billed\s+429s\s+(\d+)\s+"
        + NUM
        + r" s = "
        + NUM
        + r" x ideal "
        + NUM
        + " s",
        out,
    )
    assert len(runs) == 2
    for billed, calls, s429, seconds, ratio, ideal in runs:
        assert billed <= calls == 16 and s429 >= 0
        assert ideal == 16 / 8 + 1.0
        # the bucket holds 8 and refills 8/s; the last answer takes the latency
        assert seconds >= (billed - 8) / 8 + 1.0 - 0.05
        assert abs(ratio - seconds / ideal) < 0.01
    times = num(r"a map per stem takes " + NUM + " x the one map", out)
    assert abs(times - runs[1][3] / runs[0][3]) < 0.01


def test_ray_scale():
    pytest.importorskip("ray.data", reason="the Ray extra is not installed here")
    out = run("ray_scale.py")
    runs = nums(
        r"(?:one process|two nodes)\s+" + NUM + r"\s+(\d+)\s+(\d+)\s+(\d+)\s+" + NUM + r"\s+" + NUM,
        out,
    )
    assert len(runs) == 2, out
    for share, r429, requests, billed, paid_row, wall in runs:
        assert requests == billed + r429  # every request was answered 200 (billed) or 429
        assert billed >= 40 and abs(paid_row - billed / 40) < 0.005
        # a bucket of burst 1 lets one request through every interval: requests that all
        # passed cannot arrive faster than the limit (a 429'd one may)
        assert 0 < share <= 1.0 + 1e-6 or r429 > 0
        assert wall > 0


def test_long_run():
    out = run("long_run.py", "--rows", "40")  # a smoke run: the figures, not the targets
    runs = nums(r"(\d+) requests in \d+ s; share of the stated limit " + NUM + r", 429s (\d+)", out)
    assert len(runs) == 2, out
    for (requests, share, r429), rows in zip(runs, (40, 40), strict=True):
        assert requests == rows + r429  # every row paid once; the rest were 429s
        # a bucket of burst 1 accepts one request per interval: no run beats the limit
        assert 0 < share <= 1.0 + 1e-6
    stretches = re.findall(r"^\s+\d+\s+(\d\.\d+)\s+\d+\s+\d\.\d+$", out, re.M)
    assert stretches, out  # (the share of each stretch of the run)
    assert all(0 < float(share) <= 1.0 + 1e-6 for share in stretches), out


def test_quality():
    out = run("quality.py")
    rows = re.findall(
        r"^\s+(good|empty|invented|wrong_source|unchanged|absent)\s+(\d+) %\s+"
        r"(\d+) %\s+(\d+) %\s+(\d+) %",
        out,
        re.M,
    )
    assert len(rows) in (6, 12), out  # one table, or two with speech detection
    for _, *pcts in rows:
        assert all(0 <= int(p) <= 100 for p in pcts)
    per_second = nums(NUM + r" ms per clip-second", out)
    assert all(0 < ms < 1000 for ms in per_second)  # CPU per second of audio
    base = num(r"baseline\)\s+" + NUM + " ms", out)
    assert base > 0


def test_polls():
    out = run("polls.py", "--latencies", "0.3", "--rows", "16")  # one batch: a few seconds
    runs = re.findall(
        r"^\s+(sync|queue, learned|queue, fixed)\s+"
        + NUM
        + r" s = "
        + NUM
        + r" x ideal\s+"
        + NUM
        + r" s\s+(?:"
        + NUM
        + r" x sync)?\s+billed (\d+)/(\d+)\s+rows ok (\d+)/(\d+)\s+(.*)$",
        out,
        re.M,
    )
    assert [r[0] for r in runs] == ["sync", "queue, learned", "queue, fixed"], out
    sync_seconds = float(runs[0][1])
    for mode, seconds, ratio, ideal, vs_sync, billed, rows, ok, rows2, rest in runs:
        seconds, ratio, ideal = float(seconds), float(ratio), float(ideal)
        assert ideal == pytest.approx(16 * 0.3 / 8, abs=0.01)
        # 8 in flight at most and 0.3 s each: nothing beats the ideal
        assert seconds >= ideal - 0.01 and abs(ratio - seconds / ideal) < 0.01
        assert int(billed) == int(ok) == int(rows) == int(rows2) == 16  # every row paid once
        if mode == "sync":
            assert "answered in the call" in rest and vs_sync == ""
            continue
        # (both times are printed to 10 ms: at ~1 s each the ratio carries ~1 % of rounding)
        assert float(vs_sync) == pytest.approx(seconds / sync_seconds, rel=0.02)
        seen_med, seen_p90, got_med, got_p90, pct_med, pct_p90, polls = (
            float(v)
            for v in re.match(
                r"seen \+\s*(\d+)/\s*(\d+) ms\s+collected \+\s*(\d+)/\s*(\d+) ms = "
                r"(\d+\.\d)/\s*(\d+\.\d) % \(median/p90\)\s+polls/request\s+(\d+\.\d+)",
                rest,
            ).groups()
        )
        # a result is fetched after a poll found it done: each answer's collected >= seen
        assert 0 <= seen_med <= got_med and seen_p90 <= got_p90 and seen_med <= seen_p90
        assert pct_med == pytest.approx(got_med / 3, abs=0.2)  # ms / 300 ms, in %
        assert pct_p90 == pytest.approx(got_p90 / 3, abs=0.2)
        assert polls >= 1.0  # each request is polled at least once before its fetch
