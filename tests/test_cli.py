"""The command line under bad input, and dataset cache identity (real datasets, real files)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from datasets import Audio, Dataset
from datasets.fingerprint import Hasher
from signals import bandlimited

from samaudio_data import Client, isolate
from samaudio_data.cli import main


def audiofolder(tmp_path, n=3, broken=()):
    d = tmp_path / "clips"
    d.mkdir()
    for i in range(n):
        path = d / f"clip{i}.wav"
        if i in broken:
            path.write_bytes(b"" if i % 2 == 0 else b"RIFF garbage, not a wav file")
        else:
            sf.write(path, bandlimited(8000, 16000, seed=i), 16000)
    return d


def test_dry_run_names_each_undecodable_file_and_why(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    d = audiofolder(tmp_path, n=4, broken=(1, 2))
    assert (
        main(
            [
                "map",
                str(d),
                "--description",
                "speech",
                "--out",
                str(tmp_path / "o"),
                "--dry-run",
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 calls to pay for" in out
    assert "row 1 (clip1.wav):" in out and "row 2 (clip2.wav):" in out


def test_a_broken_file_stops_before_sending_unless_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    d = audiofolder(tmp_path, n=3, broken=(1,))
    args = [
        "map",
        str(d),
        "--description",
        "speech",
        "--out",
        str(tmp_path / "o"),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert main(args) == 3
    assert "refusing to start" in capsys.readouterr().err
    assert main(args + ["--on-error", "skip"]) == 0
    import datasets

    saved = datasets.load_from_disk(str(tmp_path / "o"))
    errs = saved["isolated_error"]
    assert errs[1] and not errs[0] and not errs[2] and "clip1.wav" in errs[1]


def test_a_bad_column_or_missing_directory_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    d = audiofolder(tmp_path, n=1)
    assert (
        main(
            [
                "map",
                str(d),
                "--description",
                "speech",
                "--out",
                str(tmp_path / "o"),
                "--column",
                "sound",
                "--dry-run",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("samaudio-data")]
    assert "no column 'sound'" in err and len(ours) == 1 and "Traceback" not in err
    assert (
        main(
            [
                "map",
                str(tmp_path / "nope"),
                "--description",
                "speech",
                "--out",
                str(tmp_path / "o"),
                "--dry-run",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no folder at" in err and "Traceback" not in err


def test_a_rerun_of_the_cli_with_its_local_endpoint_pays_nothing(tmp_path, capsys, monkeypatch):
    """The built-in local endpoint gets a new port every run; its cache identity is stable."""
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    d = audiofolder(tmp_path, n=2)
    args = ["map", str(d), "--description", "speech", "--cache-dir", str(tmp_path / "c")]
    assert main(args + ["--out", str(tmp_path / "o1")]) == 0
    assert "2 paid in this run (2 calls, $0.12)" in capsys.readouterr().out
    assert main(args + ["--out", str(tmp_path / "o2"), "--dry-run"]) == 0
    assert "0 calls to pay for, 2 already cached" in capsys.readouterr().out


def test_the_fingerprint_depends_on_the_endpoint_never_the_key(monkeypatch):
    monkeypatch.setenv("SAMAUDIO_ENDPOINT", "http://127.0.0.1:1/v1/sam-audio-large")
    local = Hasher.hash(isolate("speech"))
    monkeypatch.setenv("SAMAUDIO_ENDPOINT", "https://api.segmind.com/v1/sam-audio-large")
    real = Hasher.hash(isolate("speech"))
    assert local != real
    a = Hasher.hash(isolate("speech", client=Client("key-one", cache_dir=False)))
    b = Hasher.hash(isolate("speech", client=Client("key-two", cache_dir=False)))
    assert a == b


def test_a_rerun_reads_every_row_from_the_cache_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    ds = Dataset.from_dict(
        {
            "audio": [
                {"array": bandlimited(4000, 16000, seed=i), "sampling_rate": 16000}
                for i in range(2)
            ]
        }
    )
    ds = ds.cast_column("audio", Audio(sampling_rate=16000))
    ds.save_to_disk(str(tmp_path / "d"))
    args = [
        "map",
        str(tmp_path / "d"),
        "--description",
        "speech",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert main(args + ["--out", str(tmp_path / "o1")]) == 0
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "o2")]) == 0
    out = capsys.readouterr().out
    assert "0 paid in this run (0 calls, $0.00), 2 from the cache of an earlier run" in out


def test_int16_dicts_and_bad_rates_read_as_the_client_reads_them(client, endpoint):
    """One reading path: a 3.x-style int16 dict is scaled like Client.isolate scales it; a
    non-integer or NaN rate is a typed error that on_error='skip' catches, never billed."""
    y = (bandlimited(1600, 16000) * 32767).astype(np.int16)
    ds = Dataset.from_dict({"audio": [{"array": y.tolist(), "sampling_rate": 16000}]})
    rows = [{"audio": {"array": y, "sampling_rate": 16000}}]
    out = isolate("speech", client=client)({"audio": [rows[0]["audio"]]})
    from samaudio_data.hf import read_value

    got, sr = read_value(out["isolated"][0])
    assert np.allclose(got[0], client.isolate(y, 16000, "speech"), atol=1e-6)
    before = endpoint.stats["requests"]
    bad = isolate("speech", client=client, on_error="skip")(
        {
            "audio": [
                {"array": y, "sampling_rate": 16000.5},
                {"array": y, "sampling_rate": float("nan")},
            ]
        }
    )
    assert all("sample rate" in e for e in bad["isolated_error"])
    assert endpoint.stats["requests"] == before
    assert len(ds) == 1
