"""The first hour of a new user (issue 22): files others' tools read, and clear messages.

Each message test checks one clear line naming the real cause, and that nothing was billed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from samaudio_data import audio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_float_wavs_read_by_sox_without_a_warning(tmp_path):
    y = (0.25 * np.sin(np.arange(2 * 8000) / 5)).reshape(2, -1)
    made = tmp_path / "bytes.wav"
    made.write_bytes(audio.encode_wav(y, 8000, subtype="FLOAT"))
    with audio.BlockWriter(tmp_path / "blocks.wav", 8000, channels=2) as w:  # isolate_file's
        w.write(y[:, :5000])
        w.write(y[:, 5000:])
    for path in (made, tmp_path / "blocks.wav"):
        for cmd in (["soxi", str(path)], ["sox", str(path), "-n", "stat"]):
            run = subprocess.run(cmd, capture_output=True, text=True)
            assert run.returncode == 0 and "WARN" not in run.stderr, (cmd, run.stderr)
        back, sr = sf.read(str(path), dtype="float32", always_2d=True)
        assert sr == 8000 and np.array_equal(back.T, y.astype(np.float32))
        assert np.array_equal(audio.decode_audio(path.read_bytes())[0], y.astype(np.float32))


# --- helpers -----------------------------------------------------------------------------

import time  # noqa: E402
import warnings  # noqa: E402

from conftest import KEY  # noqa: E402
from datasets import Dataset  # noqa: E402
from signals import bandlimited  # noqa: E402

from samaudio_data import Client, audio_folder, errors, isolate, prefetch  # noqa: E402
from samaudio_data.cli import main  # noqa: E402
from samaudio_data.testing import LocalEndpoint  # noqa: E402


def one_line(capsys) -> str:
    """The CLI's one error line (and nothing else on stderr that is ours)."""
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("samaudio-data")]
    assert len(ours) == 1 and "Traceback" not in err, err
    return ours[0]


def cli_map(source, out, *extra) -> int:
    """``samaudio-data map SOURCE --description speech --out OUT ...``; the exit status."""
    args = ["map", str(source), "--description", "speech", "--out", str(out)]
    return main(args + [str(e) for e in extra])


def folder(tmp_path, n=3, sr=16000):
    d = tmp_path / "clips"
    d.mkdir(parents=True)
    for i in range(n):
        sf.write(d / f"c{i}.wav", bandlimited(sr // 2, sr, seed=i), sr)
    return d


# --- bad paths: one line each, the real cause, nothing sent ----------------------------


def test_bad_paths_are_one_line_each_and_send_nothing(tmp_path, capsys, monkeypatch):
    with LocalEndpoint(keys={KEY: None}) as ep:
        monkeypatch.setenv("SEGMIND_API_KEY", KEY)
        monkeypatch.setenv("SAMAUDIO_ENDPOINT", ep.url)
        cache = ["--cache-dir", str(tmp_path / "cache")]
        (tmp_path / "clips").mkdir()
        (tmp_path / "clips" / "readme.txt").write_text("no audio here")
        (tmp_path / "empty.wav").write_bytes(b"")
        started = time.monotonic()
        assert cli_map(tmp_path / "clipz", tmp_path / "o", *cache) == 2
        assert "no folder at" in one_line(capsys)
        assert cli_map("clipz", tmp_path / "o", *cache) == 2  # no Hub retries
        assert "no folder at 'clipz'" in one_line(capsys)
        assert time.monotonic() - started < 10
        assert cli_map(tmp_path / "clips", tmp_path / "o", *cache) == 2
        assert "no audio files in" in one_line(capsys)
        assert main(["isolate", str(tmp_path / "missing.wav"), "speech", *cache]) == 2
        assert "no file at" in one_line(capsys)
        assert main(["isolate", str(tmp_path / "clips"), "speech", *cache]) == 2
        assert "is a folder, not an audio file" in one_line(capsys)
        assert main(["isolate", str(tmp_path / "empty.wav"), "speech", *cache]) == 2
        assert "is empty (0 bytes)" in one_line(capsys)
        good = folder(tmp_path / "g", n=1) / "c0.wav"
        assert main(["isolate", str(good), "speech", "--max-cost", "-1", *cache]) == 2
        assert "--max-cost must be a number of dollars >= 0, got -1.0" in one_line(capsys)
        assert ep.stats["requests"] == 0


def test_an_endpoint_without_a_key_is_refused_with_a_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    monkeypatch.setenv("SAMAUDIO_ENDPOINT", "http://127.0.0.1:9/v1/sam-audio-large")
    d = folder(tmp_path)
    assert cli_map(d, tmp_path / "o", "--dry-run") == 2
    line = one_line(capsys)
    assert "SAMAUDIO_ENDPOINT is set" in line and "SEGMIND_API_KEY is not" in line
    assert "--local" in line
    assert cli_map(d, tmp_path / "o", "--dry-run", "--local", "--cache-dir", tmp_path / "c") == 0


def test_no_key_points_at_the_local_endpoint(monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    with pytest.raises(errors.AuthenticationError) as info:
        Client(cache_dir=False, progress=False).isolate(np.zeros(800, np.float32), 8000, "speech")
    assert info.value.hint and "LocalEndpoint" in info.value.hint
    assert "local-key" in str(info.value)


def test_a_folder_reads_without_torch_and_names_each_broken_file(tmp_path, client, endpoint):
    d = folder(tmp_path, n=2)
    (d / "sub").mkdir()
    sf.write(d / "sub" / "c2.flac", bandlimited(4000, 8000, seed=9), 8000)
    (d / "broken.wav").write_bytes(b"RIFF but nothing else")
    (d / "metadata.csv").write_text("file_name,speaker,take\nc0.wav,ann,1\nc1.wav,bob,2\n")
    ds = audio_folder(str(d))
    assert list(ds["file_name"]) == ["broken.wav", "c0.wav", "c1.wav", "sub/c2.flac"]
    assert (
        list(ds["speaker"]) == [None, "ann", "bob", None] and ds.features["take"].dtype == "int64"
    )
    out = ds.map(isolate("speech", client=client, on_error="skip"), batched=True)
    errs = list(out["isolated_error"])
    assert errs[0].startswith("InvalidAudioError: cannot read 'broken.wav': neither soundfile")
    assert "without torch" not in errs[0] and not any(errs[1:])
    assert endpoint.stats["billed"] == 3


# --- fail fast ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, cause",
    [
        ("https://samaudio-first-hour.invalid/v1/sam-audio-large", "does not resolve (DNS)"),
        (None, "TLS handshake"),
    ],
)
def test_an_unreachable_endpoint_stops_the_run_after_a_few_attempts(tmp_path, url, cause):
    rows = [
        {"audio": {"array": bandlimited(800, 8000, seed=i), "sampling_rate": 8000}}
        for i in range(20)
    ]
    with LocalEndpoint(keys={KEY: None}) as ep:  # http only: https to it fails in TLS
        url = url or ep.url.replace("http://", "https://")
        client = Client(
            KEY,
            endpoint=url,
            cache_dir=tmp_path,
            backoff_base=0.01,
            progress=False,
            transport="sync",
        )
        started = time.monotonic()
        with pytest.raises(errors.EndpointUnreachableError) as info:
            Dataset.from_list(rows).map(
                isolate("speech", client=client, on_error="skip"), batched=True, batch_size=20
            )
        assert time.monotonic() - started < 30
        with pytest.raises(errors.EndpointUnreachableError):
            prefetch(Dataset.from_list(rows), isolate("speech", client=client), progress=False)
        assert ep.stats["billed"] == 0
    message = str(info.value)
    assert cause in message and "samaudio-data check" in message and "Traceback" not in message
    assert "0 calls paid ($0.00)" in message
    assert client.usage.billed == 0


def test_the_cli_stops_at_once_when_the_endpoint_cannot_be_reached(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    monkeypatch.setenv("SAMAUDIO_ENDPOINT", "https://samaudio-first-hour.invalid/v1/m")
    d = folder(tmp_path, n=6)
    started = time.monotonic()
    extra = ["--on-error", "skip", "--quiet", "--cache-dir", str(tmp_path / "c")]
    assert cli_map(d, tmp_path / "o", *extra) == 2
    line = one_line(capsys)
    assert "EndpointUnreachableError" in line and "samaudio-data check" in line
    assert time.monotonic() - started < 60


# --- numbers that add up ----------------------------------------------------------------


def test_usage_shows_this_runs_requests_with_labels(tmp_path, make_endpoint):
    ep = make_endpoint(keys={KEY: None})
    quiet = Client(KEY, endpoint=ep.url, cache_dir=tmp_path, progress=False)
    assert (
        str(quiet.usage) == "0 billed calls ($0.00), 0 from cache, 0 failed, 0 retries, "
        "0 rate-limited"
    )
    busy = Client(
        KEY,
        endpoint=ep.url,
        cache_dir=tmp_path,
        progress=False,
        requests_per_minute=120,
        rate_window=60.0,
    )
    busy.isolate_many([bandlimited(800, 8000, seed=i) for i in range(4)], 8000, "speech")
    text = str(busy.usage)
    assert text.startswith("4 billed calls ($0.25), 0 from cache, 0 failed, 0 retries")
    assert "4 requests sent over " in text and " s of wall time" in text
    assert "s of request time summed over requests" in text
    rate = float(text.split(", at ")[1].split(" requests per minute")[0])
    assert 100 <= rate <= 120 and "(limit 120/min)" in text  # 3 gaps of 0.52 s: ~115/min
    assert str(quiet.usage).endswith("0 rate-limited")  # another client's run: not here


def test_a_budget_stop_counts_no_failure_and_says_what_the_next_call_costs(client, endpoint):
    rows = [
        {"audio": {"array": bandlimited(800, 8000, seed=i), "sampling_rate": 8000}}
        for i in range(4)
    ]
    with pytest.raises(errors.BudgetExceededError) as info:
        Dataset.from_list(rows).map(
            isolate("speech", client=client, max_cost=0.10), batched=True, batch_size=4
        )
    text = str(info.value)
    assert (
        "max_cost $0.10: $0.06 spent so far, and the next call ($0.062) would bring it "
        "to $0.12" in text
    )
    assert client.usage.failed == 0 and endpoint.stats["billed"] == 1
    assert "1 call paid ($0.06)" in text


def test_an_unbatched_map_warns_once_with_the_fix(client, endpoint):
    rows = [
        {"audio": {"array": bandlimited(800, 8000, seed=i), "sampling_rate": 8000}}
        for i in range(3)
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Dataset.from_list(rows).map(isolate("speech", client=client))
        streamed = (
            Dataset.from_list(rows).to_iterable_dataset().map(isolate("treble", client=client))
        )
        assert len(list(streamed)) == 3
    hints = [w for w in caught if "not batched" in str(w.message)]
    assert len(hints) == 2 and hints[0].filename == __file__  # once per map, at its line
    assert endpoint.stats["billed"] == 6
    assert "batched=True" in str(hints[0].message) and "prefetch" in str(hints[0].message)


def test_the_cli_columns_say_what_each_row_cost_in_this_run_with_num_proc(tmp_path):
    # in a child process: datasets' num_proc map leaves a test's environment variables set
    d = folder(tmp_path, n=4)
    with LocalEndpoint(keys={KEY: None}) as ep:
        env = dict(os.environ, SEGMIND_API_KEY=KEY, SAMAUDIO_ENDPOINT=ep.url)
        env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
        args = ["map", str(d), "--description", "speech", "--out", str(tmp_path / "o")]
        args += ["--num-proc", "2", "--quiet", "--cache-dir", str(tmp_path / "c")]
        run = subprocess.run(
            [sys.executable, "-m", "samaudio_data.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert ep.stats["billed"] == 4
    summary = "4 rows: 4 paid in this run (4 calls, $0.25), 0 from the cache of an earlier run"
    assert summary + ", 0 failed" in run.stdout
    import datasets

    saved = datasets.load_from_disk(str(tmp_path / "o"))
    assert list(saved["isolated_cost"]) == [0.062] * 4
    assert list(saved["isolated_cached"]) == [False] * 4
    assert all(s > 0 for s in saved["isolated_seconds"])
    written = sorted(os.listdir(tmp_path / "o" / "audio"))
    assert written == ["c0.wav", "c1.wav", "c2.wav", "c3.wav", "isolated.csv"]


def test_the_progress_bar_counts_successes_with_a_total(client, endpoint, capsys):
    clips = [bandlimited(800, 8000, seed=1), np.zeros((800, 2)), bandlimited(800, 8000, seed=2)]

    def work(y):  # the middle clip is (n, channels): refused before sending
        return client.separate(y, 8000, "speech")

    done = list(client.stream(work, clips, progress=True, total=len(clips)))
    assert sum(isinstance(r, errors.InvalidAudioError) for _, r in done) == 1
    bar = capsys.readouterr().err
    assert "0/3" in bar and "2/2" in bar and "1 failed" in bar  # the total, less the failure
    assert "1/3" not in bar and "3/3" not in bar
    assert endpoint.stats["billed"] == 2


def test_cli_stems_write_a_folder_each_and_costs_that_add_up_to_the_bill(
    tmp_path, capsys, monkeypatch
):
    import csv

    import datasets

    d = folder(tmp_path, n=2)
    (d / "broken.wav").write_bytes(b"RIFF but nothing else")
    (d / "metadata.csv").write_text(
        "file_name,label\nbroken.wav,rain\nc0.wav,dog barking\nc1.wav,bass\n"
    )
    with LocalEndpoint(keys={KEY: None}) as ep:
        monkeypatch.setenv("SEGMIND_API_KEY", KEY)
        monkeypatch.setenv("SAMAUDIO_ENDPOINT", ep.url)
        args = ["map", str(d), "--stem", "voice=speech", "--stem", "own={label}"]
        args += ["--keep", "both", "--on-error", "skip", "--quiet"]
        args += ["--cache-dir", str(tmp_path / "c")]
        assert main(args + ["--out", str(tmp_path / "o")]) == 0
        assert ep.stats["billed"] == 4  # two rows, two stems; the broken file sends nothing
        out = capsys.readouterr().out
        assert "3 rows: 2 paid in this run (4 calls, $0.25), 0 from the cache" in out
        assert ", 1 failed" in out
        saved = datasets.load_from_disk(str(tmp_path / "o"))
        for stem in ("voice", "own"):
            assert list(saved[f"{stem}_cost"]) == [0.0, 0.062, 0.062]  # what the prefetch paid
            assert list(saved[f"{stem}_cached"]) == [False] * 3
            assert saved[f"{stem}_error"][0] and not any(saved[f"{stem}_error"][1:])
        billed = sum(saved["voice_cost"]) + sum(saved["own_cost"])
        assert billed == pytest.approx(ep.stats["billed"] * 0.062)
        assert saved["own_description"][1:] == ["dog barking", "bass"]
        for stem, descriptions in (("voice", ["speech"] * 2), ("own", ["dog barking", "bass"])):
            where = tmp_path / "o" / "audio" / stem
            assert sorted(os.listdir(where)) == [
                "c0.residual.wav",
                "c0.wav",
                "c1.residual.wav",
                "c1.wav",
                f"{stem}.csv",
            ]
            with open(where / f"{stem}.csv", newline="", encoding="utf-8") as fh:
                table = list(csv.DictReader(fh))
            assert [r["file_name"] for r in table] == ["broken.wav", "c0.wav", "c1.wav"]
            assert [r["written"] for r in table] == ["", "c0.wav", "c1.wav"]
            assert [float(r["cost"]) for r in table] == [0.0, 0.062, 0.062]
            assert [r["description"] for r in table][1:] == descriptions
            y, sr = sf.read(str(where / "c0.wav"))
            assert sr == 16000 and len(y) == 8000
        # a rerun pays nothing and says so, every row counted once
        assert main(args + ["--out", str(tmp_path / "o2")]) == 0
        assert ep.stats["billed"] == 4
        out = capsys.readouterr().out
        assert (
            "3 rows: 0 paid in this run (0 calls, $0.00), 2 from the cache of an earlier "
            "run, 1 failed" in out
        )
        saved = datasets.load_from_disk(str(tmp_path / "o2"))
        assert list(saved["own_cached"]) == [False, True, True]
