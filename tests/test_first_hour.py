"""The first hour of a new user (issue 22): files others' tools read, and clear messages.

Each message test checks one clear line naming the real cause, and that nothing was billed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from samaudio_data import audio


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_float_wavs_read_by_sox_without_a_warning(tmp_path):
    y = (0.25 * np.sin(np.arange(2 * 8000) / 5)).reshape(2, -1)
    made = tmp_path / "bytes.wav"
    made.write_bytes(audio.encode_wav(y, 8000, subtype="FLOAT"))
    with audio.BlockWriter(tmp_path / "blocks.wav", 8000, channels=2) as w:   # isolate_file's
        w.write(y[:, :5000])
        w.write(y[:, 5000:])
    for path in (made, tmp_path / "blocks.wav"):
        for cmd in (["soxi", str(path)], ["sox", str(path), "-n", "stat"]):
            run = subprocess.run(cmd, capture_output=True, text=True)
            assert run.returncode == 0 and "WARN" not in run.stderr, (cmd, run.stderr)
        back, sr = sf.read(str(path), dtype="float32", always_2d=True)
        assert sr == 8000 and np.array_equal(back.T, y.astype(np.float32))
        assert np.array_equal(audio.decode_audio(path.read_bytes())[0], y.astype(np.float32))
