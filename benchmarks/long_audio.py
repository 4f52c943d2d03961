"""Long recordings: a 10-minute and a 2-hour 44.1 kHz stereo file through ``samaudio-data isolate``.

What it measures
----------------
Each file (16-bit WAV, a music-like synthetic signal, written in blocks to a temporary
directory) goes through the real command line, ``samaudio-data isolate IN "speech" -o OUT
--residual REST``, in a subprocess, against a local endpoint started in *another* subprocess
(``samaudio-data serve``, latency 0), so the figures are the client's alone:

* **wall time** of the command and the audio's duration divided by it (x realtime);
* **client CPU** (user + system of the command's process, from ``os.wait4``): per audio
  minute, and as a percentage of the audio's duration;
* **peak RSS** of the command's process (``VmHWM``, read by the process at exit);
* **calls** paid, as the command reports them, against ``ceil((T - O) / (C - O))``.

Baseline, timed the same way in the same run: a subprocess that reads the same file with
``soundfile`` in blocks and writes it back as 32-bit float (what any streaming tool must do at
the least). "x baseline" is the client's CPU divided by the baseline's.

Targets
-------
* peak RSS under 500 MB for the 2-hour file (the whole file as float64 would be 5 GB);
* client CPU under 1 % of the audio's duration.

How to read the output
----------------------
Times in seconds, memory in MB. PASS/MISS lines compare against the targets; nothing is
asserted. Absolute figures vary with the machine; the ratios to the baseline and to the
audio's duration are the comparable part. The endpoint's own work (in its own process) and
loopback HTTP are not client CPU but are in the wall time.

Run: ``python benchmarks/long_audio.py`` (10 min + 2 h of audio, a few minutes, ~3 GB of
temporary disk) or ``--quick`` (1 min + 5 min, well under a minute). Only 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from _common import verdict  # noqa: E402

from samaudio_data import audio  # noqa: E402

SR = 44100
KEY = "bench-key"
# The peak RSS of a child is read by the child itself at exit (VmHWM of its own memory map):
# ``ru_maxrss`` from wait4 would also count the parent's pages copied by fork before exec.
PRELUDE = """
import atexit, resource, sys
def _peak():
    try:
        kb = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
    except OSError:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write('\\nPEAK_KB %d\\n' % kb)
atexit.register(_peak)
"""
CLI = (
    PRELUDE
    + """
from samaudio_data.cli._main import main
sys.exit(main(sys.argv[1:]))
"""
)
BASELINE = (
    PRELUDE
    + """
from samaudio_data import audio
src, dst = sys.argv[1:3]
info = audio.audio_file_info(src)
with audio.BlockWriter(dst, info.sr, info.channels, frames=info.frames) as w:
    for block in audio.iter_blocks(src, 1 << 18):
        w.write(block)
"""
)


def make_file(path: Path, seconds: int) -> Path:
    """A 44.1 kHz stereo 16-bit WAV of ``seconds``, written one minute at a time."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=2, subtype="PCM_16") as f:
        for start in range(0, seconds, 60):
            n = min(60, seconds - start) * SR
            t = (start * SR + np.arange(n)) / SR
            tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * t / 7))
            noise = 0.02 * rng.standard_normal((2, n))
            f.write((tone + noise).T.astype(np.float32))
    return path


def run(cmd, env) -> dict:
    """Run ``cmd``: its wall time, CPU seconds (``os.wait4``), peak RSS (MB), output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {errors[-2000:]}")
    peak = int(re.findall(r"PEAK_KB (\d+)", errors)[-1])
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": peak / 1024,
        "out": text,
        "err": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 and 5 minutes of audio")
    args = parser.parse_args()
    lengths = [60, 300] if args.quick else [600, 7200]
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        SEGMIND_API_KEY=KEY,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "samaudio_data.cli", "serve", "--port", "0", "--key", KEY],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    rows = []
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="samaudio-long-") as tmp:
            for seconds in lengths:
                src = make_file(Path(tmp) / f"{seconds}s.wav", seconds)
                base = run(
                    [sys.executable, "-c", BASELINE, str(src), str(Path(tmp) / "copy.wav")], env
                )
                cli = run(
                    [
                        sys.executable,
                        "-c",
                        CLI,
                        "isolate",
                        str(src),
                        "speech",
                        "-o",
                        str(Path(tmp) / "out.wav"),
                        "--residual",
                        str(Path(tmp) / "rest.wav"),
                        "--endpoint",
                        url,
                        "--cache-dir",
                        str(Path(tmp) / "cache"),
                        "--quiet",
                    ],
                    env,
                )
                calls = int(re.search(r"(\d+) calls paid", cli["out"]).group(1))
                expected = math.ceil((seconds - 2) / (20 - 2)) if seconds > 20 else 1
                check = audio.audio_file_info(Path(tmp) / "out.wav")
                assert check.frames == seconds * SR, check
                rows.append((seconds, cli, base, calls, expected))
                for name in ("out.wav", "rest.wav", "copy.wav", src.name):
                    (Path(tmp) / name).unlink()
    finally:
        server.terminate()
        server.wait(10)

    print(
        f"{'audio':>8} {'wall s':>8} {'x realtime':>10} {'CPU s':>7} {'CPU s/min':>9} "
        f"{'CPU % of audio':>14} {'x baseline':>10} {'peak RSS MB':>11} {'calls':>6}"
    )
    for seconds, cli, base, calls, expected in rows:
        print(
            f"{seconds / 60:>6.0f} m {cli['wall']:>8.1f} {seconds / cli['wall']:>10.0f} "
            f"{cli['cpu']:>7.1f} {cli['cpu'] / (seconds / 60):>9.3f} "
            f"{100 * cli['cpu'] / seconds:>13.2f}% {cli['cpu'] / base['cpu']:>10.1f} "
            f"{cli['rss']:>11.0f} {calls:>4}/{expected}"
        )
    print(
        "baseline (soundfile read + float write, in blocks): "
        + ", ".join(
            f"{s / 60:.0f} m {b['cpu']:.1f} s CPU, {b['rss']:.0f} MB" for s, _, b, _, _ in rows
        )
    )
    longest, cli, _, calls, expected = rows[-1]
    print("\ntargets")
    rss_ok = cli["rss"] < 500
    print(f"{verdict(rss_ok)} peak RSS {cli['rss']:.0f} MB < 500 MB for {longest / 60:.0f} min")
    for seconds, c, _, _, _ in rows:
        pct = 100 * c["cpu"] / seconds
        print(
            f"{verdict(pct < 1)} client CPU {pct:.2f}% < 1% of the audio ({seconds / 60:.0f} min)"
        )
    print(f"{verdict(calls == expected)} calls {calls} == ceil((T - O)/(C - O)) = {expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
