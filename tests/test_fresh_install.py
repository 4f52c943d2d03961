"""The README followed from a fresh venv: its set-up command, then the CLI on a folder of clips.

A new venv (no system site-packages, so no torch, torchcodec or FFmpeg bindings) gets the
package from this checkout through the README's own `make demo` (pip's cache reused, no
bytecode compiled, to keep it short); then `samaudio-data map` cleans a folder of generated
clips with broken files mixed in, against a local endpoint in this process. Every number the
CLI prints is checked against what that endpoint served and billed, and the cleaned files
against the inputs. (Runs in the latest environment only: `make test-oldest` skips it.)
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import KEY
from signals import bandlimited

from samaudio_data.testing import LocalEndpoint

ROOT = Path(__file__).resolve().parents[1]
PRICE = 0.062
CREDITS = 10.0

# name -> (rate, channels, seconds), written as 16-bit WAV (FLAC for .flac)
GOOD = {
    "speech0.wav": (16000, 1, 1.0),
    "speech1.wav": (22050, 1, 0.5),
    "stereo.wav": (44100, 2, 0.75),
    "noise.flac": (8000, 1, 1.25),
    "sub/deeper.wav": (48000, 1, 0.5),
}
BAD = {"empty.wav": b"", "text.wav": b"this is a text file, not audio\n"}
HEADER_ONLY = "silent.wav"  # a valid WAV header over 0 samples


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the package installed from the checkout by ``make demo``."""
    where = tmp_path_factory.mktemp("fresh")
    env = _clean_env(where)
    subprocess.run(
        [sys.executable, "-m", "venv", str(where / "venv")], check=True, env=env, timeout=300
    )
    python = where / "venv" / "bin" / "python"
    demo = subprocess.run(
        ["make", "-C", str(ROOT), "demo", f"PY={python}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "kept" in demo.stdout and "clips in samaudio-demo/cleaned" in demo.stdout
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('torchcodec'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.stdout.split() == ["None", "None"]  # truly without torch
    return where, python, env


def _clean_env(where: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "PYTHONPATH",
            "SEGMIND_API_KEY",
            "SAMAUDIO_ENDPOINT",
            "SAMAUDIO_RATE_LIMIT",
            "VIRTUAL_ENV",
        )
    }
    env.update(
        PIP_NO_COMPILE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HF_HOME=str(where / "hf"),
        SAMAUDIO_CACHE_DIR=str(where / "cache"),
    )
    return env


def _clips(folder: Path) -> dict:
    made = {}
    for i, (name, (sr, ch, seconds)) in enumerate(GOOD.items()):
        n = int(sr * seconds)
        y = np.atleast_2d(bandlimited(n, sr, seed=10 * i, channels=ch))
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y.T if ch > 1 else y[0], sr, subtype="PCM_16")
        made[name] = (sr, ch, n)
    for name, data in BAD.items():
        (folder / name).write_bytes(data)
    sf.write(folder / HEADER_ONLY, np.zeros(0), 16000)
    (folder / "notes.txt").write_text("not audio, and not named as audio: ignored\n")
    return made


def _run(python: Path, args, env, cwd):
    start = time.monotonic()
    proc = subprocess.run(
        [str(python.parent / "samaudio-data"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, time.monotonic() - start


def test_the_readme_from_a_fresh_venv_cleans_a_folder_and_every_number_adds_up(venv):
    where, python, env = venv
    clips = where / "clips"
    clips.mkdir()
    good = _clips(clips)
    bad = sorted(list(BAD) + [HEADER_ONLY])
    rows = len(good) + len(bad)
    with LocalEndpoint(keys={KEY: CREDITS}, price_per_call=PRICE) as ep:
        env = dict(env, SEGMIND_API_KEY=KEY, SAMAUDIO_ENDPOINT=ep.url)
        args = [
            "map",
            "clips",
            "--description",
            "speech",
            "--out",
            "cleaned",
            "--on-error",
            "skip",
            "--quiet",
        ]
        proc, wall = _run(python, args, env, where)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        out = proc.stdout
        stats = ep.stats
        billed, requests = stats["billed"], stats["requests"]
        assert billed == len(good) == requests  # one call per good clip, no retries
        dollars = f"${billed * PRICE:.2f}"
        lines = out.splitlines()
        assert lines[0] == (
            f"{rows} rows: {billed} calls to pay for, 0 already cached, "
            f"{len(bad)} rows with missing or invalid audio: about {dollars} at "
            f"${PRICE:.3f} per call"
        )
        for name in bad:  # each named once, with its cause
            named = [line for line in lines if f"({name})" in line]
            assert len(named) == 1, (name, out)
        assert "is empty (0 bytes)" in out and "holds 0 samples" in out
        assert "neither soundfile (Format not recognised) nor librosa" in out
        assert "torch" not in out + proc.stderr and "Traceback" not in proc.stderr
        assert f"prefetch: {rows} rows: {billed} paid, 0 already cached, {len(bad)} failed" in out
        assert (
            f"saved to cleaned: {rows} rows: {billed} paid in this run ({billed} calls, "
            f"{dollars}), 0 from the cache of an earlier run, {len(bad)} failed"
        ) in out
        traffic = re.search(
            r"requests from this process: (\d+) requests sent over "
            r"([\d.]+) s of wall time, .*?([\d.]+) s of request time summed "
            r"over requests",
            out,
        )
        assert traffic, out
        assert int(traffic.group(1)) == requests
        assert 0 < float(traffic.group(2)) < wall and float(traffic.group(3)) > 0
        assert f"wrote {billed} audio files to cleaned/audio" in out

        # the files: one per good input, same name, rate, length; the CSV: every row
        audio_dir = where / "cleaned" / "audio"
        for name, (sr, _ch, n) in good.items():
            info = sf.info(str(audio_dir / name))
            assert (info.samplerate, info.frames, info.channels) == (sr, n, 1)
            assert info.subtype == ("PCM_24" if name.endswith(".flac") else "FLOAT")
        assert not any((audio_dir / name).exists() for name in bad)
        with open(audio_dir / "isolated.csv", newline="") as fh:
            table = list(csv.DictReader(fh))
        assert len(table) == rows
        assert round(sum(float(r["cost"]) for r in table), 6) == round(billed * PRICE, 6)
        assert sorted(r["file_name"] for r in table if r["error"]) == bad
        assert all(r["cached"] == "False" for r in table)

        # the rerun pays nothing and says where every row came from
        proc, _ = _run(python, args[:5] + ["cleaned2"] + args[6:], env, where)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert ep.stats["billed"] == billed and ep.stats["requests"] == requests
        assert (
            f"{rows} rows: 0 calls to pay for, {billed} already cached, {len(bad)} rows with "
            "missing or invalid audio"
        ) in proc.stdout
        assert (
            f"{rows} rows: 0 paid in this run (0 calls, $0.00), {billed} from the cache of "
            f"an earlier run, {len(bad)} failed"
        ) in proc.stdout
        assert "requests from this process" not in proc.stdout
        # what the provider would have charged: exactly the calls shown
        assert ep.credits(KEY) == pytest.approx(CREDITS - billed * PRICE)
