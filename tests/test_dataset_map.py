"""dataset.map(isolate(...)) on real datasets objects with real Audio decoding."""

import importlib.util
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest
from conftest import HIDE_TORCH, KEY
from datasets import Audio, Dataset
from signals import bandlimited

from samaudio_data import Client, errors, estimate_cost, isolate
from samaudio_data.hf import encode_value, read_value

RATES = [16000, 22050, 44100, 48000, 8000, 32000]


def make_rows(n=6, channels=1, seed=0):
    rows = []
    for i in range(n):
        sr = RATES[i % len(RATES)]
        y = bandlimited(int(sr * (0.5 + 0.1 * i)), sr, seed=seed + i, channels=channels)
        rows.append({"audio": encode_value(y, sr), "id": i})
    return rows


def decoded_dataset(n=6, channels=1):
    return Dataset.from_list(make_rows(n, channels)).cast_column("audio", Audio())


def on_disk(tmp_path, n):
    """A decoded dataset saved to ``tmp_path/d`` and loaded back (datasets then caches maps)."""
    decoded_dataset(n).save_to_disk(str(tmp_path / "d"))
    return datasets.load_from_disk(str(tmp_path / "d"))


def check_outputs(ds_out, ds_in, column="isolated", tol=3e-3):
    """Each output has its row's rate and length and matches the (identity) input."""
    out = ds_out.cast_column(column, Audio(decode=False))
    raw = ds_in.cast_column("audio", Audio(decode=False))
    for r_out, r_in in zip(out, raw, strict=True):
        y_in, sr_in = read_value(r_in["audio"])
        y_out, sr_out = read_value(r_out[column])
        assert sr_out == sr_in and y_out.shape == (1, y_in.shape[-1])
        edge = sr_in // 100
        np.testing.assert_allclose(y_out[0, edge:-edge], y_in.mean(axis=0)[edge:-edge], atol=tol)


@pytest.fixture
def ep(endpoint):  # conftest's endpoint (and client), under a shorter name
    return endpoint


def test_decoded_audio_batched_keeps_rate_length_and_casts_to_audio(client, ep):
    ds = decoded_dataset(6, channels=2)  # torchcodec decoders, stereo: all channels used
    out = ds.map(isolate("speech", client=client), batched=True, batch_size=4)
    check_outputs(out, ds)
    assert ep.stats["requests"] == 6
    decoded = out.cast_column("isolated", Audio())[2]["isolated"]  # any datasets version
    assert read_value(decoded)[1] == RATES[2]
    assert out["isolated_cost"] == pytest.approx([0.062] * 6)
    assert out["isolated_cached"] == [False] * 6 and out["isolated_error"] == [""] * 6


def test_non_batched_and_rerun_costs_nothing(client, ep):
    ds = decoded_dataset(4)
    out = ds.map(isolate("speech", client=client))
    check_outputs(out, ds)
    again = ds.map(isolate("speech", client=client), batched=True)
    assert ep.stats["requests"] == 4 and again["isolated_cached"] == [True] * 4
    assert again["isolated_cost"] == [0.0] * 4


def test_decode_false_and_dict_forms(client, ep, tmp_path):
    rows = make_rows(3)
    raw = Dataset.from_list(rows).cast_column("audio", Audio(decode=False))
    check_outputs(raw.map(isolate("speech", client=client), batched=True), raw)
    # decode=False with a local path and no bytes
    paths = []
    for i, r in enumerate(rows):
        p = tmp_path / f"clip{i}.wav"
        p.write_bytes(r["audio"]["bytes"])
        paths.append({"audio": {"bytes": None, "path": str(p)}})
    by_path = Dataset.from_list(paths).cast_column("audio", Audio(decode=False))
    out = by_path.map(isolate("speech", client=client), batched=True)
    assert out["isolated_cached"] == [True] * 3
    # 3.x-style {"array", "sampling_rate"} dicts, stored as plain structs
    arrays = Dataset.from_list(
        [
            {
                "audio": {
                    "array": read_value(r["audio"])[0][0].tolist(),
                    "sampling_rate": read_value(r["audio"])[1],
                }
            }
            for r in rows
        ]
    )
    out = arrays.map(isolate("speech", client=client), batched=True)
    assert out["isolated_cached"] == [True] * 3


def test_decode_false_works_without_torch(ep, tmp_path):
    path = str(tmp_path / "ds")  # a str: older fsspec (datasets 3.x) takes no Path
    Dataset.from_list(make_rows(2)).cast_column("audio", Audio(decode=False)).save_to_disk(path)
    code = (
        HIDE_TORCH
        + f"""
import sys
import datasets
from samaudio_data import Client, isolate
ds = datasets.load_from_disk({str(path)!r})
c = Client({KEY!r}, endpoint={ep.url!r}, cache_dir={str(tmp_path / "c")!r}, progress=False)
out = ds.map(isolate("speech", client=c), batched=True)
assert out["isolated_error"] == ["", ""], out["isolated_error"]
print("ok", "torch" in sys.modules)
"""
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-2:] == ["ok", "False"]


def test_missing_audio_follows_on_error(client, ep):
    rows = make_rows(3)
    rows.insert(1, {"audio": None, "id": 99})
    ds = Dataset.from_list(rows).cast_column("audio", Audio())
    with pytest.raises(errors.InvalidAudioError, match="no audio"):
        ds.map(isolate("speech", client=client), batched=True)
    assert ep.stats["requests"] == 0  # the whole batch is checked before sending
    out = ds.map(isolate("speech", client=client, on_error="skip"), batched=True, batch_size=2)
    assert out["isolated_error"][1].startswith("InvalidAudioError")
    assert np.isnan(out["isolated_target_db"][1]) and out["isolated_present"][1] is False
    decoded = out.cast_column("isolated", Audio())  # every row stays decodable
    assert not read_value(decoded[1]["isolated"])[0].any()
    kept = ds.map(isolate("speech", client=client, on_error="keep_original"), batched=True)
    assert kept["isolated_error"][1] != "" and kept["isolated_error"][0] == ""


def test_first_batch_all_failing_keeps_types(client, ep):
    ds = Dataset.from_list([{"audio": None}] * 2 + make_rows(2)).cast_column("audio", Audio())
    out = ds.map(isolate("speech", client=client, on_error="skip"), batched=True, batch_size=2)
    assert out["isolated_error"][2:] == ["", ""]


def test_iterable_dataset(client, ep):
    ds = decoded_dataset(5)
    it = ds.to_iterable_dataset().map(isolate("speech", client=client), batched=True, batch_size=2)
    rows = list(it)
    assert len(rows) == 5 and all(r["isolated_error"] == "" for r in rows)
    for r, src in zip(rows, ds.cast_column("audio", Audio(decode=False)), strict=True):
        y, sr = read_value(r["isolated"])
        assert (sr, y.shape[-1]) == (
            read_value(src["audio"])[1],
            read_value(src["audio"])[0].shape[-1],
        )
    assert estimate_cost(ds.to_iterable_dataset(), isolate("speech", client=client)).cached == 5


def test_keep_residual_and_both(client, ep):
    ds = decoded_dataset(2)
    out = ds.map(
        isolate("half", client=client, output_column="no_half", keep="residual"), batched=True
    )
    both = ds.map(isolate("half", client=client, keep="both"), batched=True)
    assert ep.stats["requests"] == 2
    for r_res, r_both in zip(out, both, strict=True):
        a, _ = read_value(r_res["no_half"])
        b, _ = read_value(r_both["isolated_residual"])
        np.testing.assert_allclose(a, b, atol=1e-7)
    assert both["isolated_target_db"][0] == pytest.approx(-6.02, abs=0.05)


def test_cleaning_signals_tell_present_from_absent(client, ep):
    ds = decoded_dataset(3)
    there = ds.map(isolate("speech", client=client), batched=True)
    gone = ds.map(isolate("silence", client=client), batched=True)
    assert all(there["isolated_present"]) and not any(gone["isolated_present"])
    assert there["isolated_target_db"][0] == pytest.approx(0.0, abs=0.05)
    assert gone["isolated_target_db"] == [-120.0] * 3
    kept = gone.filter(lambda r: r["isolated_present"])
    assert len(kept) == 0


def test_num_proc_2_shares_the_concurrency_cap(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: None}, latency=0.15)
    c = Client(
        KEY, endpoint=ep.url, cache_dir=tmp_path / "cache", max_concurrency=2, progress=False
    )
    ds = on_disk(tmp_path, 8)
    out = ds.map(isolate("speech", client=c), batched=True, batch_size=2, num_proc=2)
    check_outputs(out, ds)
    assert ep.stats["billed"] == 8 and ep.stats["max_in_flight"] <= 2


def test_fingerprint_stable_and_free_of_the_key(ep, tmp_path):
    from datasets.fingerprint import Hasher

    def fp(key, description="speech", **kw):
        code = f"""
from datasets.fingerprint import Hasher
from samaudio_data import Client, isolate
c = Client({key!r}, endpoint={ep.url!r}, cache_dir={str(tmp_path / "c")!r})
print(Hasher.hash(isolate({description!r}, client=c, **{kw!r})))
"""
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        ).stdout.strip()

    a = fp(KEY)
    assert a == fp("another-key-entirely") == fp(KEY)
    assert a != fp(KEY, "music") and a != fp(KEY, reranking_candidates=4)
    c = Client(KEY, endpoint=ep.url, cache_dir=tmp_path / "c")
    c.isolate(bandlimited(800, 16000), 16000, "speech")  # a used client: same fingerprint
    assert Hasher.hash(isolate("speech", client=c)) == a


def test_key_in_no_cache_file(ep, tmp_path):
    Dataset.from_list(make_rows(3)).cast_column("audio", Audio()).save_to_disk(str(tmp_path / "d"))
    ds = datasets.load_from_disk(str(tmp_path / "d"))  # on disk: datasets writes cache files
    c = Client(KEY, endpoint=ep.url, cache_dir=tmp_path / "cache", progress=False)
    out = ds.map(isolate("speech", client=c), batched=True, num_proc=2)
    out.save_to_disk(str(tmp_path / "saved"))
    assert any(f.startswith("cache-") for f in os.listdir(tmp_path / "d"))
    for root, _, files in os.walk(tmp_path):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert KEY.encode() not in fh.read(), os.path.join(root, f)


def test_406_stops_the_map_and_a_rerun_pays_only_for_the_rest(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: 3 * 0.062 + 0.001})
    c = Client(
        KEY, endpoint=ep.url, cache_dir=tmp_path / "cache", max_concurrency=2, progress=False
    )
    ds = decoded_dataset(8)
    with pytest.raises(errors.InsufficientCreditsError, match="pays only for the rest"):
        ds.map(isolate("speech", client=c, on_error="skip"), batched=True, batch_size=4)
    assert ep.stats["billed"] == 3 and ep.stats["by_status"].get(406, 0) <= 2
    ep.set_credits(KEY, 1.0)
    ep.reset_stats()
    out = ds.map(isolate("speech", client=c, on_error="skip"), batched=True, batch_size=4)
    assert ep.stats["billed"] == 5 and sum(out["isolated_cached"]) == 3


def test_406_stops_every_num_proc_worker(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: 2 * 0.062 + 0.001}, latency=0.1)
    c = Client(
        KEY, endpoint=ep.url, cache_dir=tmp_path / "cache", max_concurrency=1, progress=False
    )
    ds = on_disk(tmp_path, 12)
    with pytest.raises(errors.InsufficientCreditsError):
        ds.map(isolate("speech", client=c), batched=True, batch_size=6, num_proc=2)
    # after the first 406 the other worker sends nothing more
    assert ep.stats["billed"] == 2 and ep.stats["by_status"][406] == 1
    assert ep.stats["requests"] == 3


def test_max_cost_refuses_to_start_or_stops_before_exceeding(client, ep):
    ds = decoded_dataset(6)
    with pytest.raises(errors.BudgetExceededError, match="max_cost"):
        ds.map(isolate("speech", client=client, max_cost=0.05), batched=True)
    assert ep.stats["requests"] == 0
    with pytest.raises(errors.BudgetExceededError, match="max_cost \\$0.20"):
        ds.map(
            isolate("speech", client=client, max_cost=0.20, on_error="skip"),
            batched=True,
            batch_size=2,
        )
    assert ep.stats["billed"] == 3  # 3 x $0.062 <= $0.20 < 4 x $0.062


def test_estimate_cost_sends_nothing(client, ep):
    ds = decoded_dataset(4)
    est = estimate_cost(ds, isolate("speech", client=client))
    assert (est.calls, est.cached, ep.stats["requests"]) == (4, 0, 0)
    assert est.cost == pytest.approx(4 * 0.062) and "4 calls to pay for" in str(est)
    ds.select(range(2)).map(isolate("speech", client=client), batched=True)
    est = estimate_cost(ds, isolate("speech", client=client))
    assert (est.calls, est.cached) == (2, 2)


def test_bad_column_and_arguments_are_clear(client):
    ds = decoded_dataset(1)
    with pytest.raises(errors.InvalidRequestError, match="no column 'sound'"):
        ds.map(isolate("speech", column="sound", client=client))
    for kw in (
        dict(keep="all"),
        dict(on_error="ignore"),
        dict(max_cost=-1),
        dict(reranking_candidates=0),
    ):
        with pytest.raises(errors.InvalidRequestError):
            isolate("speech", **kw)


def test_cli_map_dry_run_refusal_and_save(ep, tmp_path, monkeypatch):
    from samaudio_data.cli import main

    Dataset.from_list(make_rows(3)).cast_column("audio", Audio()).save_to_disk(str(tmp_path / "d"))
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    monkeypatch.setenv("SAMAUDIO_CACHE_DIR", str(tmp_path / "cache"))
    base = [
        "map",
        str(tmp_path / "d"),
        "--description",
        "speech",
        "--out",
        str(tmp_path / "out"),
        "--endpoint",
        ep.url,
    ]
    assert main(base + ["--dry-run"]) == 0 and ep.stats["requests"] == 0
    assert main(base + ["--max-cost", "0.1"]) == 3 and ep.stats["requests"] == 0
    assert main(base) == 0 and ep.stats["billed"] == 3
    saved = datasets.load_from_disk(str(tmp_path / "out"))
    assert isinstance(saved.features["isolated"], Audio)
    assert main(base) == 0 and ep.stats["billed"] == 3  # resumable: all cached


def test_cli_isolate_file(ep, tmp_path, monkeypatch):
    import soundfile as sf

    from samaudio_data.cli import main

    y = bandlimited(44100, 44100, channels=2)
    sf.write(tmp_path / "in.wav", y.T, 44100, subtype="PCM_16")
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    monkeypatch.setenv("SAMAUDIO_CACHE_DIR", str(tmp_path / "cache"))
    assert (
        main(
            [
                "isolate",
                str(tmp_path / "in.wav"),
                "speech",
                "-o",
                str(tmp_path / "o.wav"),
                "--residual",
                str(tmp_path / "r.wav"),
                "--endpoint",
                ep.url,
            ]
        )
        == 0
    )
    out, sr = sf.read(tmp_path / "o.wav")
    assert sr == 44100 and out.shape == (44100,)
    assert (
        main(
            [
                "isolate",
                str(tmp_path / "missing.wav"),
                "speech",
                "-o",
                "x.wav",
                "--endpoint",
                ep.url,
            ]
        )
        == 2
    )


def test_cli_map_on_an_audiofolder(ep, tmp_path, monkeypatch):
    import soundfile as sf

    from samaudio_data.cli import main

    folder = tmp_path / "clips"
    folder.mkdir()
    for i, sr in enumerate([16000, 44100, 22050]):
        sf.write(folder / f"clip{i}.wav", bandlimited(sr // 2, sr, seed=i), sr)
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    monkeypatch.setenv("SAMAUDIO_CACHE_DIR", str(tmp_path / "cache"))
    assert (
        main(
            [
                "map",
                str(folder),
                "--description",
                "speech",
                "--out",
                str(tmp_path / "out"),
                "--endpoint",
                ep.url,
                "--keep",
                "both",
            ]
        )
        == 0
    )
    saved = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(saved) == 3 and ep.stats["billed"] == 3
    for row in saved.cast_column("isolated", Audio(decode=False)):
        y, sr = read_value(row["isolated"])
        assert y.shape[-1] == sr // 2


def test_fingerprint_changes_with_the_library_version(monkeypatch):
    from datasets.fingerprint import Hasher

    import samaudio_data._client as client_module
    import samaudio_data.hf._map as dataset_map

    before = Hasher.hash(isolate("speech", client=Client("k", cache_dir=False)))
    monkeypatch.setattr(dataset_map, "__version__", "99.0")
    monkeypatch.setattr(client_module, "__version__", "99.0")
    assert Hasher.hash(isolate("speech", client=Client("k", cache_dir=False))) != before


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_interrupted_map_loses_nothing_paid_for(make_endpoint, tmp_path, signal_name):
    """Ctrl-C lets requests in flight finish into the cache; even a kill -9 keeps every
    answer that arrived. A rerun pays only for what is not cached."""
    import signal
    import time

    from samaudio_data._answers.cache import ResultCache

    Dataset.from_list(make_rows(10)).cast_column("audio", Audio()).save_to_disk(str(tmp_path / "d"))
    ep = make_endpoint(keys={KEY: None}, latency=0.4)
    # Ctrl-C as at a terminal, whatever the test runner's own state: a child inherits an
    # ignored or blocked SIGINT, and Python then never raises KeyboardInterrupt in it
    code = f"""
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
import datasets
from samaudio_data import Client, isolate
c = Client({KEY!r}, endpoint={ep.url!r}, cache_dir={str(tmp_path / "cache")!r},
           max_concurrency=2, progress=False, transport="sync")
datasets.load_from_disk({str(tmp_path / "d")!r}).map(isolate("speech", client=c),
                                                     batched=True, batch_size=10)
"""
    log = open(tmp_path / "child.log", "w+")  # noqa: SIM115 - read back on failure
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=log)
    deadline = time.monotonic() + 60
    while ep.stats["billed"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signal_name))
    proc.wait(30)
    while ep.stats["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)  # orphaned requests of a killed client still get billed
    paid = ep.stats["billed"]
    cached = len(ResultCache(tmp_path / "cache"))
    log.seek(0)
    said = log.read()[-3000:]  # what the child said (why it did or did not stop)
    log.close()
    assert 3 <= paid < 10, f"paid {paid}, exit code {proc.returncode}; the child said:\n{said}"
    if signal_name == "SIGINT":
        assert cached == paid  # requests in flight finished and were cached
    else:
        assert cached >= paid - 2  # at most the 2 in flight when killed were lost
    ep.reset_stats()
    c = Client(KEY, endpoint=ep.url, cache_dir=tmp_path / "cache", progress=False)
    out = datasets.load_from_disk(str(tmp_path / "d")).map(
        isolate("speech", client=c), batched=True
    )
    assert ep.stats["billed"] == 10 - cached and sum(out["isolated_cached"]) == cached


def test_max_cost_is_shared_by_num_proc_workers(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: None}, latency=0.05)
    c = Client(
        KEY, endpoint=ep.url, cache_dir=tmp_path / "cache", max_concurrency=2, progress=False
    )
    ds = on_disk(tmp_path, 12)
    with pytest.raises(errors.BudgetExceededError):
        ds.map(isolate("speech", client=c, max_cost=0.20), batched=True, batch_size=3, num_proc=2)
    assert ep.stats["billed"] == 3  # both workers together: 3 x $0.062 <= $0.20


def test_undecodable_bytes_say_what_to_do(client, ep):
    ds = Dataset.from_list(
        [{"audio": {"bytes": b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 64, "path": "clip.m4a"}}]
    ).cast_column("audio", Audio(decode=False))
    # where torchcodec is installed, datasets' own decoder is named as a way out too
    way_out = "Audio\\(decode=True\\)" if importlib.util.find_spec("torchcodec") else "WAV or FLAC"
    with pytest.raises(errors.InvalidAudioError, match=f"clip.m4a.*{way_out}"):
        ds.map(isolate("speech", client=client))
    assert ep.stats["requests"] == 0
