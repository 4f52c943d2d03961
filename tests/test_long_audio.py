"""Long files through real HTTP: streamed window by window, joined exactly, resumable, cheap
in memory, and counted exactly by the estimate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import KEY
from signals import bandlimited

from samaudio_data import Budget, Client, audio, errors
from samaudio_data.testing import LocalEndpoint

ROOT = Path(__file__).resolve().parent.parent
RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]
TRANSPORT = 2.5 / 32768  # 16-bit quantisation, both ways
CHUNK, OVERLAP = 1.0, 0.3  # small windows keep the tests fast; the logic is the same


def write(path: Path, y: np.ndarray, sr: int, subtype: str = "FLOAT") -> Path:
    """Write ``(n,)`` or ``(channels, n)`` float audio as a WAV file."""
    sf.write(str(path), y.T if y.ndim == 2 else y, sr, subtype=subtype)
    return path


def read(path: Path) -> np.ndarray:
    """A file as float32 ``(n,)`` (mono) or ``(channels, n)``, as librosa lays it out."""
    y, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return y[:, 0] if y.shape[1] == 1 else y.T


def assert_transform(out, expected, sr):
    """``out`` is ``expected`` within 16-bit transport; at rates other than the model's 48 kHz,
    10 ms at each end of the clip are left out (resampling edges, chunked or not)."""
    edge = 0 if sr == 48000 else int(0.01 * sr)
    sl = slice(edge, out.shape[-1] - edge)
    np.testing.assert_allclose(out[..., sl], expected[..., sl], atol=2 * TRANSPORT)


def billed(ep) -> int:
    return ep.stats["billed"]


@pytest.fixture
def chunked(make_client):
    """A client with 1 s windows overlapping by 0.3 s."""
    return make_client(chunk_seconds=CHUNK, overlap_seconds=OVERLAP)


# --- exact joins at every rate, mono and multichannel ------------------------------------


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("channels, mode", [(1, "mix"), (2, "mix"), (2, "each")])
def test_a_file_comes_back_as_in_memory_and_as_unchunked(
    sr, channels, mode, endpoint, make_client, tmp_path
):
    n = round(3.7 * sr)
    y = bandlimited(n, sr, seed=sr, channels=channels)
    src = write(tmp_path / "in.wav", y, sr)
    client = make_client(chunk_seconds=CHUNK, overlap_seconds=OVERLAP, channels=mode)
    whole = make_client(cache_dir=tmp_path / "other", channels=mode)  # one call per channel
    ref = y if mode == "each" or channels == 1 else audio.mix_to_mono(y.astype(np.float64))
    for description, gain in (("speech", 1.0), ("half", 0.5)):
        before = billed(endpoint)
        out = client.isolate_file(
            src,
            description,
            tmp_path / f"{description}.wav",
            residual_path=tmp_path / f"{description}-rest.wav",
        )
        windows = len(audio.plan_chunks(n, sr, CHUNK, OVERLAP))
        sent = channels if mode == "each" else 1
        assert billed(endpoint) - before == windows * sent
        got, rest = read(out), read(tmp_path / f"{description}-rest.wav")
        assert got.shape == rest.shape == ref.shape
        # the same clip in memory: the same uploads (all cache hits), the same samples
        mem = client.separate(y, sr, description)
        assert billed(endpoint) - before == windows * sent, "in memory hits the file's cache"
        assert np.array_equal(got, mem.target) and np.array_equal(rest, mem.residual)
        # unchunked, and the transform itself: the joins are exact
        one = whole.separate(y, sr, description).target
        np.testing.assert_allclose(got, one, atol=TRANSPORT, rtol=0)
        if sr == 48000:
            assert np.array_equal(got, one)
        assert_transform(got, gain * ref, sr)
        assert_transform(rest, (1 - gain) * ref, sr)


@pytest.mark.parametrize(
    "seconds, calls",
    [
        (CHUNK, 1),  # exactly one chunk: one call, no join
        (CHUNK + 1 / 16000, 2),  # one chunk plus one sample: two balanced windows
        (2 * CHUNK - OVERLAP + 0.1, 3),  # a tail (0.1 s) shorter than the overlap
    ],
)
def test_awkward_lengths(seconds, calls, endpoint, chunked, tmp_path):
    sr = 16000
    y = bandlimited(round(seconds * sr), sr, seed=3, channels=2)
    src = write(tmp_path / "in.wav", y, sr)
    before = billed(endpoint)
    out = read(chunked.isolate_file(src, "half"))
    assert billed(endpoint) - before == calls
    mono = audio.mix_to_mono(y.astype(np.float64))
    assert out.shape == mono.shape
    assert_transform(out, 0.5 * mono, sr)
    assert np.array_equal(out, chunked.isolate(y, sr, "half"))


def test_a_window_dependent_separation_joins_without_a_click_or_a_shift(
    endpoint, make_client, tmp_path
):
    # the local "bass" transform is a brick wall over the FFT of each upload: circular, so
    # each window's edges differ from the whole clip's. The crossfade must hide that.
    sr = 48000
    t = np.arange(12 * sr) / sr
    y = sum(np.sin(2 * np.pi * f * t + f) for f in (61.0, 97.0, 143.0)) / 3
    y = (0.5 * y * (0.6 + 0.4 * np.sin(2 * np.pi * t / 5))).astype(np.float32)
    src = write(tmp_path / "in.wav", y, sr)
    smooth = make_client(chunk_seconds=2, overlap_seconds=0.5)
    out = read(smooth.isolate_file(src, "bass"))
    plan = audio.plan_chunks(y.size, sr, 2, 0.5)
    own = np.max(np.abs(np.diff(y)))
    for (a1, _), (_, b0) in zip(plan.windows[1:], plan.windows, strict=False):
        assert np.max(np.abs(np.diff(out[a1 - 1 : b0 + 1]))) <= 1.05 * own
    assert audio.estimate_lag(out, y, max_lag=sr // 10) == 0
    np.testing.assert_allclose(out[sr:-sr], y[sr:-sr], atol=0.02)  # below 500 Hz: kept
    # the same windows joined without a crossfade do click: the measure can fail
    hard = read(
        make_client(chunk_seconds=1.5, overlap_seconds=0, cache_dir=tmp_path / "h").isolate_file(
            src, "bass", tmp_path / "hard.wav"
        )
    )
    cuts = audio.plan_chunks(y.size, sr, 1.5, 0).windows
    assert max(np.max(np.abs(np.diff(hard[a - 1 : a + 1]))) for a, _ in cuts[1:]) > 2 * own


# --- the provider's limits -----------------------------------------------------------------


def test_chunks_stay_under_a_duration_and_a_body_limit(tmp_path):
    sr = 44100
    y = bandlimited(12 * sr, sr, seed=5, channels=2)
    src = write(tmp_path / "in.wav", y, sr)
    body_limit = 400_000  # 3 s of 44.1 kHz 16-bit mono is ~355 kB in base64 JSON; 12 s is not
    with LocalEndpoint(keys={KEY: None}, max_audio_seconds=5, max_body_bytes=body_limit) as ep:
        kw = dict(endpoint=ep.url, cache_dir=False, progress=False, max_retries=0)
        with Client(KEY, chunk_seconds=20, **kw) as whole:
            with pytest.raises(errors.BadRequestError) as info:
                whole.isolate_file(src, "half", tmp_path / "no.wav")
            assert info.value.status_code in (400, 413)
        assert not (tmp_path / "no.wav").exists()
        assert not list(tmp_path.glob(".*.part"))
        with Client(KEY, chunk_seconds=3, overlap_seconds=0.5, **kw) as small:
            out = read(small.isolate_file(src, "half"))
            assert small.usage.billed == len(audio.plan_chunks(y.shape[-1], sr, 3, 0.5))
        assert set(ep.stats["by_status"]) <= {200, 400, 413}
    assert_transform(out, 0.5 * audio.mix_to_mono(y.astype(np.float64)), sr)


# --- estimates, failures, resuming ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mix", "each"])
def test_the_estimate_is_what_the_run_pays(mode, endpoint, make_client, tmp_path):
    sr = 22050
    files = [
        write(tmp_path / f"in{i}.wav", bandlimited(round(s * sr), sr, seed=i, channels=2), sr)
        for i, s in enumerate((0.5, 1.0, 4.3, 7.9))
    ]
    client = make_client(chunk_seconds=CHUNK, overlap_seconds=OVERLAP, channels=mode)
    no_cache = make_client(
        chunk_seconds=CHUNK, overlap_seconds=OVERLAP, channels=mode, cache_dir=False
    )
    est = client.estimate_file(files, "speech")
    assert no_cache.estimate_file(files, "speech").calls == est.calls and est.cached == 0
    client.isolate_file(files[2], "speech")  # one file paid already
    est = client.estimate_file(files, "speech")
    before = billed(endpoint)
    for f in files:
        client.isolate_file(f, "speech")
    assert billed(endpoint) - before == est.calls
    assert est.cached == len(audio.plan_chunks(round(4.3 * sr), sr, CHUNK, OVERLAP)) * (
        2 if mode == "each" else 1
    )
    assert est.cost == pytest.approx(est.calls * client.price_per_call)
    again = client.estimate_file(files, "speech")
    assert again.calls == 0 and again.cached == est.calls + est.cached
    bad = client.estimate_file([files[0], tmp_path / "missing.wav"], "speech")
    assert bad.clips == 2 and [i for i, _ in bad.invalid] == [1]


def test_a_failing_window_leaves_no_output_and_says_where(endpoint, make_client, tmp_path):
    sr = 16000
    src = write(tmp_path / "in.wav", bandlimited(5 * sr, sr), sr)
    client = make_client(chunk_seconds=CHUNK, overlap_seconds=OVERLAP, max_retries=0)
    # the model fails on "fail": a 500 from the synchronous call, FAILED from the queue
    with pytest.raises(
        (errors.ServerError, errors.QueueJobFailedError), match=r"in\.wav, window \d+ of 7"
    ):
        client.isolate_file(src, "please fail", tmp_path / "out.wav", residual_path=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "in.wav"]
    with pytest.raises(errors.InvalidRequestError, match="is the input file"):
        client.isolate_file(src, "speech", src)
    with pytest.raises(errors.InvalidRequestError, match=r"\.wav \(32-bit float\) or \.flac"):
        client.isolate_file(src, "speech", tmp_path / "out.mp3")
    y = bandlimited(5 * sr, sr)
    y[3 * sr] = np.nan
    nan = write(tmp_path / "nan.wav", y, sr)
    with pytest.raises(errors.InvalidAudioError, match=r"nan\.wav, window [45] of 7 .*NaN"):
        client.isolate_file(nan, "speech", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists() and not list(tmp_path.glob(".*.part"))
    with pytest.raises(errors.InvalidAudioError, match="no file at"):
        client.isolate_file(tmp_path / "nope.wav", "speech")


def test_a_budget_stops_mid_file_and_a_rerun_with_more_finishes(endpoint, make_client, tmp_path):
    sr = 16000
    y = bandlimited(5 * sr, sr, seed=2)
    src = write(tmp_path / "in.wav", y, sr)
    client = make_client(chunk_seconds=CHUNK, overlap_seconds=OVERLAP, max_concurrency=1)
    with pytest.raises(errors.BudgetExceededError, match="3 calls paid") as info:
        client.isolate_file(src, "speech", budget=Budget(3.5 * client.price_per_call))
    assert "pays only for the rest" in str(info.value)
    assert billed(endpoint) == 3 and not src.with_name("in.isolated-speech.wav").exists()
    out = client.isolate_file(src, "speech", budget=Budget(4 * client.price_per_call))
    assert billed(endpoint) == 7 == len(audio.plan_chunks(y.size, sr, CHUNK, OVERLAP))
    assert_transform(read(out), y, sr)


KILLED_RUN = textwrap.dedent("""
    import sys
    from samaudio_data import Client
    url, key, cache, src = sys.argv[1:5]
    with Client(key, endpoint=url, cache_dir=cache, chunk_seconds=1, overlap_seconds=0.3,
                max_concurrency=2, progress=False) as c:
        c.isolate_file(src, "speech")
""")


def test_a_run_killed_mid_file_pays_only_the_missing_windows_when_run_again(tmp_path):
    sr = 16000
    y = bandlimited(30 * sr, sr, seed=7)
    src = write(tmp_path / "long.wav", y, sr)
    total = len(audio.plan_chunks(y.size, sr, 1, 0.3))
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with LocalEndpoint(keys={KEY: None}, latency=0.05) as ep:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, ep.url, KEY, str(cache), str(src)],
            env=env,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while ep.stats["billed"] < 12 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        while ep.stats["in_flight"] and time.time() < deadline:  # the server bills what it
            time.sleep(0.01)  # had received, then is idle
        paid_before = ep.stats["billed"]
        assert 12 <= paid_before < total, proc.stderr.read().decode()[-2000:]
        out = src.with_name("long.isolated-speech.wav")
        assert not out.exists()
        with Client(
            KEY,
            endpoint=ep.url,
            cache_dir=cache,
            chunk_seconds=1,
            overlap_seconds=0.3,
            progress=False,
        ) as c:
            est = c.estimate_file(src, "speech")
            # every answer paid before the kill is cached, or journalled (already paid,
            # collected for free); at most the 2 in flight at the kill are neither
            paid_for = est.cached + est.pending
            assert paid_for >= paid_before - 2 and est.calls == total - paid_for
            c.isolate_file(src, "speech")
            assert ep.stats["billed"] - paid_before == est.calls
            assert c.usage.cached == paid_for
    assert_transform(read(out), y, sr)


# --- memory ----------------------------------------------------------------------------------


def test_memory_does_not_grow_with_the_length_of_the_file(make_endpoint, make_client, tmp_path):
    sr = 8000
    # the local endpoint runs in this process: it keeps only a few queued results, so that
    # what is traced is the client's memory
    ep = make_endpoint(queue_max_jobs=4)
    # one window in flight: the windows finish in order, so the peak is deterministic
    client = make_client(
        endpoint=ep.url, chunk_seconds=2, overlap_seconds=0.5, max_concurrency=1, cache_dir=False
    )
    peaks = {}
    for seconds in (40, 160):
        src = tmp_path / f"{seconds}.wav"
        with audio.BlockWriter(src, sr, channels=2) as w:
            for i in range(0, seconds, 10):
                w.write(bandlimited(10 * sr, sr, seed=i, channels=2))
        tracemalloc.start()
        try:
            client.isolate_file(src, "speech", residual_path=True)
            peaks[seconds] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # the same file read into memory and separated: what streaming avoids
    tracemalloc.start()
    try:
        client.separate(read(src), sr, "speech")
        in_memory = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # 4x the windows: anything kept per window would show (the server's threads vary it a
    # little run to run)
    assert peaks[160] < 1.25 * peaks[40], peaks
    assert peaks[160] < in_memory / 3, (peaks, in_memory)


# --- the command line ------------------------------------------------------------------------


def cli(*args, key=KEY):
    env = dict(os.environ, PYTHONPATH=str(ROOT), SEGMIND_API_KEY=key)
    return subprocess.run(
        [sys.executable, "-m", "samaudio_data.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_cli_streams_a_file_and_counts_its_windows(endpoint, make_client, tmp_path):
    sr = 44100
    y = bandlimited(round(6.5 * sr), sr, seed=11, channels=2)
    src = write(tmp_path / "talk.wav", y, sr, subtype="PCM_16")
    opts = [
        "--endpoint",
        endpoint.url,
        "--cache-dir",
        tmp_path / "cache",
        "--chunk-seconds",
        CHUNK,
        "--overlap-seconds",
        OVERLAP,
        "--channels",
        "each",
    ]
    windows = len(audio.plan_chunks(y.shape[-1], sr, CHUNK, OVERLAP))
    dry = cli("isolate", src, "half", *opts, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{2 * windows} calls to pay for, 0 already cached" in dry.stdout
    assert billed(endpoint) == 0
    refused = cli("isolate", src, "half", *opts, "--max-cost", 0.5)
    assert refused.returncode == 3 and "refusing to start" in refused.stderr
    res = cli("isolate", src, "half", *opts, "--residual", tmp_path / "rest.flac")
    assert res.returncode == 0, res.stderr
    assert f"{2 * windows} calls paid" in res.stdout and billed(endpoint) == 2 * windows
    assert "chunk" in res.stderr  # the progress bar counts windows
    out = src.with_name("talk.isolated-half.wav")
    client = make_client(chunk_seconds=CHUNK, overlap_seconds=OVERLAP, channels="each")
    mine = read(client.isolate_file(src, "half", tmp_path / "mine.wav"))
    assert billed(endpoint) == 2 * windows, "the library hits the CLI's cache"
    assert np.array_equal(read(out), mine)
    assert_transform(read(tmp_path / "rest.flac"), 0.5 * read(src), sr)
    bad = cli("isolate", tmp_path / "missing.wav", "half", *opts)
    assert bad.returncode == 2 and "InvalidAudioError" in bad.stderr
