"""The client against a real local endpoint over HTTP on 127.0.0.1."""

import logging
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import KEY
from signals import bandlimited

from samaudio_data import Client, errors

TRANSPORT = 2.5 / 32768  # 16-bit quantisation, both ways


# --- exactly right: rate, length, level, channels ----------------------------------------


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000, 96000, 192000])
def test_identity_answer_comes_back_at_input_rate_length_and_level(client, sr):
    n = int(sr * 0.77) + 13  # not a whole number of model frames
    y = bandlimited(n, sr)
    out = client.isolate(y, sr, "a man speaking")
    assert out.shape == y.shape and out.dtype == np.float32
    tol = TRANSPORT if sr == 48000 else 2e-3  # resampling both ways elsewhere
    edge = int(0.01 * sr)
    np.testing.assert_allclose(out[edge:-edge], y[edge:-edge], atol=tol)


def test_48k_identity_is_exact_to_16_bits(client):
    y = bandlimited(48000, 48000)
    np.testing.assert_allclose(client.isolate(y, 48000, "speech"), y, atol=TRANSPORT)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float64])
def test_integer_and_float64_input(client, dtype):
    y = bandlimited(16000, 48000)
    scaled = (
        (y * 2 ** (8 * np.dtype(dtype).itemsize - 1)).astype(dtype)
        if np.dtype(dtype).kind == "i"
        else y.astype(dtype)
    )
    np.testing.assert_allclose(client.isolate(scaled, 48000, "speech"), y, atol=TRANSPORT * 2)


def test_above_full_scale_is_not_clipped(client, endpoint):
    y = bandlimited(48000, 48000, amp=4.0)
    out = client.isolate(y, 48000, "speech")
    np.testing.assert_allclose(out, y, atol=4 * TRANSPORT)
    assert endpoint.stats["last_upload"][:2] == (48000, 1)


def test_stereo_is_mixed_to_mono_by_default(client, endpoint):
    y = bandlimited(48000, 48000, channels=2)
    res = client.separate(y, 48000, "speech")
    assert res.target.shape == (48000,)
    np.testing.assert_allclose(res.target, y.mean(axis=0), atol=TRANSPORT)
    assert endpoint.stats["requests"] == 1


def test_each_channel_policy_returns_channels_first(client, endpoint):
    y = bandlimited(24000, 48000, channels=2)
    y[1] *= 0.5
    res = client.separate(y, 48000, "speech", channels="each")
    assert res.target.shape == (2, 24000) and res.residual.shape == (2, 24000)
    np.testing.assert_allclose(res.target, y, atol=TRANSPORT)
    assert endpoint.stats["requests"] == 2


def test_upload_is_small_mono_16bit(client, endpoint):
    y = bandlimited(44100 * 2, 44100, channels=2)
    client.isolate(y, 44100, "speech")
    sr, ch, n, subtype = endpoint.stats["last_upload"]
    assert (sr, ch, n, subtype) == (44100, 1, 88200, "PCM_16")
    assert endpoint.stats["request_bytes"][-1] < 88200 * 2 * 4 / 3 + 1000


def test_residual_is_mix_minus_target(client):
    y = bandlimited(32000, 16000)
    res = client.separate(y, 16000, "half of it")
    np.testing.assert_allclose(res.target[100:-100], 0.5 * y[100:-100], atol=2e-3)
    np.testing.assert_allclose(res.residual[100:-100], 0.5 * y[100:-100], atol=2e-3)
    np.testing.assert_allclose(res.target + res.residual, y, atol=1e-6)


@pytest.mark.parametrize("fmt", ["wav", "json-base64", "json-data-uri", "json-url", "octet"])
def test_every_response_shape_is_understood(make_endpoint, tmp_path, fmt):
    ep = make_endpoint(keys={KEY: None}, response_format=fmt)
    c = Client(KEY, endpoint=ep.url, cache_dir=False, progress=False)
    y = bandlimited(48000, 48000)
    np.testing.assert_allclose(c.isolate(y, 48000, "speech"), y, atol=TRANSPORT)


@pytest.mark.parametrize("osr, channels", [(44100, 1), (24000, 2), (16000, 1)])
def test_answer_rate_and_channels_do_not_matter(make_endpoint, osr, channels):
    ep = make_endpoint(keys={KEY: None}, output_sample_rate=osr, output_channels=channels)
    c = Client(KEY, endpoint=ep.url, cache_dir=False)
    y = bandlimited(22050, 22050)
    out = c.isolate(y, 22050, "speech")
    assert out.shape == y.shape
    np.testing.assert_allclose(out[300:-300], y[300:-300], atol=3e-3)


def test_mp3_answer_is_aligned_and_level_kept(client):
    y = bandlimited(48000, 48000, seed=5)
    out = client.isolate(y, 48000, "speech", output_format="mp3")
    assert out.shape == y.shape
    lag = np.argmax(np.correlate(out[1000:5000], y[1000:5000], "full")) - 3999
    assert lag == 0
    assert np.std(out) == pytest.approx(np.std(y), rel=0.05)


# --- validation before sending ------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, err",
    [
        (dict(description=""), errors.InvalidRequestError),
        (dict(description="   "), errors.InvalidRequestError),
        (dict(description=None), errors.InvalidRequestError),
        (dict(output_format="flac"), errors.InvalidRequestError),
        (dict(reranking_candidates=0), errors.InvalidRequestError),
        (dict(reranking_candidates=9), errors.InvalidRequestError),
        (dict(reranking_candidates=True), errors.InvalidRequestError),
        (dict(reranking_candidates=2.5), errors.InvalidRequestError),
        (dict(y=np.zeros(0)), errors.InvalidAudioError),
        (dict(y=np.full(100, np.nan)), errors.InvalidAudioError),
        (dict(sr=1000), errors.InvalidAudioError),
        (dict(y=np.zeros((16000, 2))), errors.InvalidAudioError),
        (dict(y=np.full(16000, 1e39)), errors.InvalidAudioError),  # beyond float32: would be inf
        (dict(temperature=3), errors.InvalidRequestError),
    ],
)
def test_bad_input_sends_nothing(client, endpoint, kw, err):
    args = dict(y=np.zeros(16000, dtype=np.float32), sr=16000, description="speech")
    args.update(kw)
    y, sr, d = args.pop("y"), args.pop("sr"), args.pop("description")
    with pytest.raises(err):
        client.isolate(y, sr, d, **args)
    assert endpoint.stats["requests"] == 0


def test_bad_clip_in_a_batch_sends_nothing(client, endpoint):
    clips = [np.zeros(1600, np.float32)] * 3 + [np.zeros(0)]
    with pytest.raises(errors.InvalidAudioError, match="clip 3"):
        client.isolate_many(clips, 16000, "speech")
    assert endpoint.stats["requests"] == 0


def test_missing_key_fails_before_sending(endpoint, monkeypatch, tmp_path):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    c = Client(endpoint=endpoint.url, cache_dir=False)
    with pytest.raises(errors.AuthenticationError, match="SEGMIND_API_KEY"):
        c.isolate(np.zeros(1600), 16000, "speech")
    assert endpoint.stats["requests"] == 0


# --- errors and retries -------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, err",
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (406, errors.InsufficientCreditsError),
    ],
)
def test_final_errors_are_typed_and_not_retried(make_client, endpoint, status, err):
    client = make_client(transport="sync")
    endpoint.inject("status", status=status, message="told you so")
    with pytest.raises(err) as info:
        client.isolate(bandlimited(1600, 16000), 16000, "speech")
    assert info.value.status_code == status and "told you so" in str(info.value)
    assert endpoint.stats["requests"] == 1


@pytest.mark.parametrize(
    "kind, status, err",
    [
        ("status", 500, errors.ServerError),
        ("status", 502, errors.BadGatewayError),
        ("status", 503, errors.ServerError),
        ("status", 504, errors.GatewayTimeoutError),
        ("drop", None, errors.APIConnectionError),
        ("truncate", None, errors.APIConnectionError),
        ("html", None, errors.BadGatewayError),
    ],
)
def test_transient_errors_are_retried_then_typed(make_client, endpoint, kind, status, err):
    y = bandlimited(1600, 16000)
    endpoint.inject(kind, status=status, times=2)
    out = make_client(max_retries=2).isolate(y, 16000, "speech")
    assert out.shape == y.shape
    assert endpoint.stats["requests"] == 3
    endpoint.reset_stats()
    endpoint.inject(kind, status=status, times=3)
    with pytest.raises(err):
        make_client(max_retries=2, cache_dir=False).isolate(y * 0.5, 16000, "speech")
    assert endpoint.stats["requests"] == 3


def test_429s_wait_and_never_use_up_the_fault_retries(make_client, endpoint):
    """A 429 storm slows a call down; it does not exhaust max_retries and kill the row."""
    y = bandlimited(1600, 16000)
    endpoint.inject("status", status=429, times=5, retry_after=0)
    client = make_client(max_retries=1)
    out = client.isolate(y, 16000, "speech")
    assert out.shape == y.shape
    assert endpoint.stats["requests"] == 6
    assert client.usage.rate_limited == 5 and client.usage.retries == 0


def test_html_error_page_message_is_short(make_client, endpoint):
    endpoint.inject("html")
    with pytest.raises(errors.BadGatewayError) as info:
        make_client(max_retries=0).isolate(bandlimited(1600, 16000), 16000, "speech")
    assert "HTML error page" in str(info.value) and len(str(info.value)) < 400


def test_garbage_200_is_a_decode_error_with_excerpt(client, endpoint):
    endpoint.inject("garbage")
    with pytest.raises(errors.ResponseDecodeError, match="starts with"):
        client.isolate(bandlimited(1600, 16000), 16000, "speech")


def test_retry_after_is_honoured(make_client, endpoint):
    endpoint.inject("status", status=429, retry_after=1)
    t0 = time.monotonic()
    make_client().isolate(bandlimited(1600, 16000), 16000, "speech")
    assert time.monotonic() - t0 >= 1.0


def test_429_without_retry_after_waits_a_whole_window(make_client, endpoint):
    endpoint.inject("status", status=429)
    t0 = time.monotonic()
    make_client(rate_window=1.5).isolate(bandlimited(1600, 16000), 16000, "speech")
    assert time.monotonic() - t0 >= 1.5
    assert endpoint.stats["requests"] == 2


def test_timeout_is_typed(make_client, endpoint):
    endpoint.inject("slow", delay=2.0)
    with pytest.raises(errors.APITimeoutError):
        make_client(timeout=(2, 0.3), max_retries=0).isolate(
            bandlimited(1600, 16000), 16000, "speech"
        )


def test_pace_keeps_under_the_server_limit(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: None}, rate_limit_per_minute=3, rate_window=2.0)
    # a "minute" shrunk to 2 s on both sides: 3 requests per window
    c = Client(
        KEY,
        endpoint=ep.url,
        cache_dir=tmp_path,
        requests_per_minute=3,
        rate_window=2.0,
        max_concurrency=8,
        progress=False,
    )
    clips = [bandlimited(800, 16000, seed=i) for i in range(7)]
    t0 = time.monotonic()
    c.isolate_many(clips, 16000, "speech")
    assert time.monotonic() - t0 >= 4.0  # 7 requests need three windows
    assert 429 not in ep.stats["by_status"]


def test_without_pace_429s_slow_everyone_and_recover(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: None}, rate_limit_per_minute=2, rate_window=1.0)
    c = Client(
        KEY, endpoint=ep.url, cache_dir=tmp_path, rate_window=1.0, max_concurrency=4, progress=False
    )
    clips = [bandlimited(800, 16000, seed=i) for i in range(6)]
    outs = c.isolate_many(clips, 16000, "speech")
    assert len(outs) == 6 and ep.stats["by_status"].get(429, 0) >= 1
    assert ep.stats["billed"] == 6


# --- concurrency, order, usage ------------------------------------------------------------


def test_isolate_many_is_concurrent_bounded_and_ordered(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: None}, latency=0.3)
    c = Client(
        KEY,
        endpoint=ep.url,
        cache_dir=tmp_path,
        max_concurrency=3,
        progress=False,
        transport="sync",
    )
    clips = [bandlimited(1600, 16000, seed=i, amp=0.1 + 0.05 * i) for i in range(9)]
    outs = c.isolate_many(clips, [16000] * 9, "speech")
    assert ep.stats["max_in_flight"] == 3  # concurrent, and never above the cap
    for y, out in zip(clips, outs, strict=True):
        np.testing.assert_allclose(out[50:-50], y[50:-50], atol=2e-3)
    assert c.usage.billed == 9 and c.usage.cost == pytest.approx(9 * 0.062)


def test_406_stops_every_request_and_says_what_was_done(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: 3 * 0.062 + 0.01}, latency=0.05)
    c = Client(KEY, endpoint=ep.url, cache_dir=tmp_path, max_concurrency=2, progress=False)
    clips = [bandlimited(800, 16000, seed=i) for i in range(10)]
    with pytest.raises(errors.InsufficientCreditsError) as info:
        c.isolate_many(clips, 16000, "speech")
    msg = str(info.value)
    assert "calls paid" in msg and "pays only for the rest" in msg
    sent = ep.stats["requests"]
    assert ep.stats["billed"] == 3 and sent <= 3 + 2  # at most the ones in flight
    ep.set_credits(KEY, None)
    ep.reset_stats()
    outs = c.isolate_many(clips, 16000, "speech")  # topped up: only the rest is paid
    assert len(outs) == 10 and ep.stats["billed"] == 7


def test_return_exceptions_keeps_going(client, endpoint):
    endpoint.inject("status", status=400)
    clips = [bandlimited(800, 16000, seed=i) for i in range(3)]
    outs = client.isolate_many(clips, 16000, "speech", return_exceptions=True)
    assert sum(isinstance(o, errors.BadRequestError) for o in outs) == 1
    assert sum(isinstance(o, np.ndarray) for o in outs) == 2


def test_usage_and_remaining_credits(make_endpoint):
    ep = make_endpoint(keys={KEY: 1.0}, price_per_call=0.1)
    c = Client(KEY, endpoint=ep.url, cache_dir=False, price_per_call=0.1)
    c.isolate(bandlimited(800, 16000), 16000, "speech")
    assert c.usage.billed == 1 and c.usage.cost == pytest.approx(0.1)
    assert c.usage.remaining_credits == pytest.approx(0.9)
    assert c.credits() == pytest.approx(0.9)
    assert "1 billed call (" in str(c.usage)


# --- paying once ----------------------------------------------------------------------------


def test_asking_twice_pays_once(client, endpoint):
    y = bandlimited(16000, 16000)
    a = client.separate(y, 16000, "speech")
    b = client.separate(y, 16000, "speech")
    assert endpoint.stats["requests"] == 1
    assert not a.cached and b.cached and b.cost == 0.0
    np.testing.assert_array_equal(a.target, b.target)
    client.isolate(y, 16000, "speech", reranking_candidates=3)  # other params: new request
    client.isolate(y, 16000, "drums")
    assert endpoint.stats["requests"] == 3
    assert client.estimate([y, y * 0.5], 16000, "speech").calls == 1


def test_cache_is_shared_across_processes(endpoint, tmp_path):
    y = bandlimited(16000, 16000, seed=11)
    np.save(tmp_path / "y.npy", y)
    code = (
        "import numpy as np; from samaudio_data import Client;"
        f"c = Client({KEY!r}, endpoint={endpoint.url!r}, cache_dir={str(tmp_path / 'c')!r});"
        f"c.isolate(np.load({str(tmp_path / 'y.npy')!r}), 16000, 'speech')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert endpoint.stats["requests"] == 1
    c = Client(KEY, endpoint=endpoint.url, cache_dir=tmp_path / "c")
    assert c.separate(y, 16000, "speech").cached
    assert endpoint.stats["requests"] == 1


def test_concurrent_askers_of_one_clip_pay_once(make_endpoint, tmp_path):
    ep = make_endpoint(keys={KEY: None}, latency=0.2)
    c = Client(KEY, endpoint=ep.url, cache_dir=tmp_path, max_concurrency=4, progress=False)
    y = bandlimited(1600, 16000)
    outs = c.isolate_many([y] * 4, 16000, "speech")
    assert len(outs) == 4 and ep.stats["requests"] == 1


# --- the key stays secret -------------------------------------------------------------------


def test_key_never_leaks(make_client, endpoint, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # cache_dir=False: limits here
    c = make_client(max_retries=1)
    assert KEY not in repr(c)
    endpoint.inject("status", status=500, times=2, message=f"invalid key {KEY}")
    with pytest.raises(errors.ServerError) as info:
        c.isolate(bandlimited(1600, 16000), 16000, "speech")
    assert KEY not in str(info.value) and "***" in str(info.value)
    c.isolate(bandlimited(1600, 16000), 16000, "speech")
    state = pickle.dumps(c)
    assert KEY.encode() not in state
    # a queued request left in flight (journalled), and a client without a cache directory
    endpoint.latency = 0.6
    q = make_client(transport="queue", timeout=(5, 0.2), max_retries=0)
    with pytest.raises(errors.APITimeoutError):
        q.isolate(bandlimited(1600, 16000, seed=3), 16000, "speech")
    endpoint.latency = 0.0
    make_client(cache_dir=False).isolate(bandlimited(1600, 16000, seed=4), 16000, "speech")
    assert KEY not in caplog.text
    written = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files]
    for kind in ("journal", "state.json", "samaudio_data-limits"):
        assert any(kind in p for p in written), kind  # the scan covers them
    for path in written:
        with open(path, "rb") as fh:
            assert KEY.encode() not in fh.read(), path


def test_pickled_client_works_without_carrying_the_key(client, endpoint):
    clone = pickle.loads(pickle.dumps(client))
    assert clone.endpoint == client.endpoint
    assert clone.isolate(bandlimited(800, 16000), 16000, "speech").shape == (800,)


def test_stop_summary_counts_requests_that_were_in_flight(make_endpoint, tmp_path):
    from samaudio_data import Budget

    ep = make_endpoint(keys={KEY: None}, latency=0.5)
    c = Client(KEY, endpoint=ep.url, cache_dir=tmp_path, max_concurrency=4, progress=False)
    clips = [bandlimited(1600, 16000, seed=i) for i in range(4)]
    with pytest.raises(errors.BudgetExceededError) as info:
        c.separate_many(clips, 16000, "speech", budget=Budget(0.10))
    assert ep.stats["billed"] == 1 and c.usage.billed == 1
    assert "1 call paid ($0.06)" in str(info.value)


def test_seconds_count_the_endpoint_not_the_pace(make_client, endpoint):
    c = make_client(requests_per_minute=1, rate_window=2.0)
    c.isolate(bandlimited(800, 16000, seed=1), 16000, "speech")
    res = c.separate(bandlimited(800, 16000, seed=2), 16000, "speech")  # waits ~2 s for pace
    assert res.seconds < 1.0  # the request itself, not the wait before it


def test_cli_serve_takes_its_options():
    proc = subprocess.Popen(
        [sys.executable, "-m", "samaudio_data.cli", "serve", "--port", "0", "--key", "cli-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        c = Client("cli-key", endpoint=url, cache_dir=False)
        assert c.isolate(bandlimited(800, 16000), 16000, "speech").shape == (800,)
    finally:
        proc.terminate()
        proc.wait(10)
