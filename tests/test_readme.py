"""Every code block of the README runs, offline, against the local endpoint.

The Python blocks run in order in one fresh interpreter (later blocks use earlier names, as a
reader would), with SEGMIND_API_KEY and SAMAUDIO_ENDPOINT pointing at a LocalEndpoint; the
shell blocks' ``samaudio-data`` commands run against files made to match their names.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import KEY
from signals import bandlimited

from samaudio_data.testing import LocalEndpoint

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(lang):
    return [code for kind, code in BLOCK.findall(README.read_text()) if kind == lang]


@pytest.fixture
def workdir(tmp_path):
    """Files the README's examples name: an audiofolder ``clips/`` with a transcript column,
    ``mix.wav``, ``talk.wav``, a saved dataset ``my_dataset/`` and a labelled one ``events/``."""
    clips = tmp_path / "clips"
    clips.mkdir()
    lines = ["file_name,text"]
    for i in range(3):
        sf.write(clips / f"c{i}.wav", bandlimited(16000, 16000, seed=i), 16000)
        lines.append(f"c{i}.wav,clip number {i}")
    (clips / "metadata.csv").write_text("\n".join(lines) + "\n")
    for name in ("mix.wav", "talk.wav"):
        sf.write(tmp_path / name, np.stack([bandlimited(48000, 16000, seed=7)] * 2).T, 16000)
    from datasets import Audio, Dataset

    Dataset.from_dict({"audio": [str(p) for p in sorted(clips.glob("*.wav"))]}).cast_column(
        "audio", Audio()
    ).save_to_disk(str(tmp_path / "my_dataset"))
    Dataset.from_dict(
        {
            "audio": [str(p) for p in sorted(clips.glob("*.wav"))],
            "label": ["dog barking", "siren", "rain"],
        }
    ).cast_column("audio", Audio()).save_to_disk(str(tmp_path / "events"))
    return tmp_path


def env_for(ep, workdir):
    env = dict(
        os.environ,
        SEGMIND_API_KEY=KEY,
        SAMAUDIO_ENDPOINT=ep.url,
        SAMAUDIO_CACHE_DIR=str(workdir / "cache"),
        MPLBACKEND="Agg",
    )
    env["PYTHONPATH"] = os.pathsep.join([str(README.parent), env.get("PYTHONPATH", "")])
    return env


def _ray_installed() -> bool:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_python_blocks_run_in_order(workdir):
    # "Beyond one machine" needs the Ray extra (a local Ray instance starts); without it
    # (the oldest environment) its blocks are left out
    runnable = [
        b
        for b in blocks("python")
        if _ray_installed() or ("samaudio_data.ray" not in b and "cleaned" not in b)
    ]
    code = "\n\n".join(runnable)
    assert "isolate_many" in code and "prefetch" in code
    with LocalEndpoint(keys={KEY: None, "local-key": None}) as ep:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=workdir,
            env=env_for(ep, workdir),
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert KEY not in proc.stdout + proc.stderr


def test_the_samaudio_data_commands_run(workdir):
    commands = [
        line.split("#")[0].strip()
        for code in blocks("bash")
        for line in code.splitlines()
        if line.startswith("samaudio-data ")
    ]
    runnable = [c for c in commands if not c.startswith("samaudio-data serve")]
    assert len(runnable) >= 3
    with LocalEndpoint(keys={KEY: None}) as ep:
        for command in runnable:
            args = shlex.split(command)[1:]
            proc = subprocess.run(
                [sys.executable, "-m", "samaudio_data.cli", *args],
                cwd=workdir,
                env=env_for(ep, workdir),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"
            assert KEY not in proc.stdout + proc.stderr
