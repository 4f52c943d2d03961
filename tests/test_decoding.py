"""Decoding audio columns: where datasets (>= 4) cannot decode, the user reads our message.

datasets 4.0 and later decode ``Audio()`` columns with torchcodec, which needs torch and FFmpeg's
shared libraries; samaudio_data needs neither. Each case of an unusable decoder runs in a fresh
interpreter where it really is unusable: torch and torchcodec hidden from the import system (as
on a machine without them), or FFmpeg's libraries replaced by unloadable files through
LD_LIBRARY_PATH (as on a machine without FFmpeg). A row whose data torchcodec cannot decode is
an ``InvalidAudioError`` that ``on_error`` handles like any other bad row.
"""

import importlib.util
import io
import os
import subprocess
import sys

import datasets
import pytest
from conftest import HIDE_TORCH, KEY
from datasets import Audio, Dataset
from signals import bandlimited

from samaudio_data import errors, isolate
from samaudio_data.hf import encode_value

pytestmark = pytest.mark.skipif(
    int(datasets.__version__.split(".")[0]) < 4,
    reason="datasets 3.x decodes Audio with soundfile and librosa: no torch to be missing",
)

# the libavutil of FFmpeg 4 to 8, which every libtorchcodec_core<N> needs
LIBAVUTIL = [f"libavutil.so.{major}" for major in range(56, 61)]


@pytest.fixture
def saved(tmp_path):
    """A two-row dataset with a decoded ``Audio()`` column, saved (saving decodes nothing)."""
    path = str(tmp_path / "ds")
    rows = [
        {"audio": encode_value(bandlimited(8000 + 800 * i, 16000, seed=i), 16000)} for i in range(2)
    ]
    Dataset.from_list(rows).cast_column("audio", Audio()).save_to_disk(path)
    return path


@pytest.fixture(params=["no torch", "no FFmpeg"])
def broken(request, tmp_path):
    """(code run first, environment) of an interpreter where torchcodec cannot decode."""
    if request.param == "no torch":
        return HIDE_TORCH, {}
    if importlib.util.find_spec("torchcodec") is None:
        pytest.skip("torchcodec is not installed here, so there is no FFmpeg to take away")
    libs = tmp_path / "no-ffmpeg"
    libs.mkdir()
    for name in LIBAVUTIL:
        (libs / name).write_bytes(b"")  # found first, then refused by the loader
    return "", {"LD_LIBRARY_PATH": str(libs)}


def run(code: str, env: dict) -> str:
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_reading_a_row_says_both_ways_out(saved, broken):
    prelude, env = broken
    out = run(
        prelude
        + f"""
import datasets
from samaudio_data import errors
from samaudio_data.hf._values import audio_decoding
ds = datasets.load_from_disk({saved!r})
try:
    ds[0]["audio"]
except Exception as exc:  # what datasets itself says
    print("DATASETS", type(exc).__name__)
try:
    with audio_decoding("audio"):
        ds[0]["audio"]
except errors.InvalidAudioError as exc:
    print("OURS", exc.__cause__ is not None, str(exc).replace(chr(10), " "))
""",
        env,
    )
    assert "DATASETS ImportError" in out or "DATASETS RuntimeError" in out
    ours = out.split("OURS ", 1)[1]
    assert ours.startswith("True ")  # the cause is kept
    assert "cannot decode the Audio column 'audio'" in ours
    assert "pip install torch" in ours and "torchcodec" in ours and "FFmpeg" in ours
    assert "ds = ds.cast_column('audio', datasets.Audio(decode=False))" in ours


def test_inside_map_and_the_way_out_works(saved, broken, endpoint, tmp_path):
    """Dataset.map decodes lazily, when the function reads the column: read_column is there."""
    prelude, env = broken
    out = run(
        prelude
        + f"""
import datasets
from samaudio_data import Client, errors, isolate
from samaudio_data.hf import read_value
from samaudio_data.hf._values import read_column
ds = datasets.load_from_disk({saved!r})
rates = lambda batch: {{"sr": [read_value(v)[1] for v in read_column(batch, "audio")]}}
try:
    ds.map(rates, batched=True)
except errors.InvalidAudioError as exc:
    print("MAP", "decode=False" in str(exc))
# the way out that needs no decoder: samaudio_data reads the bytes itself
raw = ds.cast_column("audio", datasets.Audio(decode=False))
print("RATES", list(raw.map(rates, batched=True)["sr"]))
c = Client({KEY!r}, endpoint={endpoint.url!r}, cache_dir={str(tmp_path / "c")!r},
           progress=False)
print("ISOLATED", list(raw.map(isolate("speech", client=c), batched=True)["isolated_error"]))
""",
        env,
    )
    assert "MAP True" in out
    assert "RATES [16000, 16000]" in out
    assert "ISOLATED ['', '']" in out
    assert endpoint.stats["requests"] == 2


def test_isolate_and_estimate_cost_say_both_ways_out(saved, broken, endpoint, tmp_path):
    prelude, env = broken
    out = run(
        prelude
        + f"""
import datasets
from samaudio_data import Client, errors, estimate_cost, isolate
ds = datasets.load_from_disk({saved!r})
c = Client({KEY!r}, endpoint={endpoint.url!r}, cache_dir={str(tmp_path / "c")!r},
           progress=False)
for name, call in [("MAP", lambda: ds.map(isolate("speech", client=c), batched=True)),
                   ("ESTIMATE", lambda: estimate_cost(ds, isolate("speech", client=c)))]:
    try:
        call()
    except errors.InvalidAudioError as exc:
        print(name, "decode=False" in str(exc))
    except Exception as exc:
        print(name, type(exc).__name__)
""",
        env,
    )
    assert "MAP True" in out and "ESTIMATE True" in out
    assert endpoint.stats["requests"] == 0


def test_a_row_torchcodec_cannot_decode_follows_on_error(client, endpoint):
    import soundfile as sf

    y = bandlimited(16000, 16000)
    flac = io.BytesIO()
    sf.write(flac, y, 16000, format="FLAC")
    cut = flac.getvalue()[: len(flac.getvalue()) // 2] + bytes(100)  # torchcodec opens it,
    rows = [{"audio": encode_value(y, 16000)}, {"audio": {"bytes": cut, "path": None}}]
    ds = Dataset.from_list(rows).cast_column("audio", Audio())  # then fails to decode it
    with pytest.raises(errors.InvalidAudioError, match="cannot decode the audio of this row"):
        ds.map(isolate("speech", client=client), batched=True)
    out = ds.map(isolate("speech", client=client, on_error="skip"), batched=True)
    assert list(out["isolated_error"])[0] == ""
    assert list(out["isolated_error"])[1].startswith("InvalidAudioError: cannot decode")
    assert "/" not in list(out["isolated_error"])[1]  # no C++ source path in the message
    assert endpoint.stats["requests"] == 1  # the good row, paid once over both maps
