"""Tests of the local SAM Audio Large stand-in, over real HTTP on 127.0.0.1 with `requests`."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from samaudio_data.audio import decode_audio, encode_flac, encode_wav
from samaudio_data.testing import (FRAME, LocalEndpoint, UploadInfo, choose_transform,
                                          serve_main, separate)

KEY = "test-key"
TOL = 2 / 32768  # two 16-bit steps
SR = 48000


def noise(n=SR, sr=SR, amp=0.5, seed=0, channels=None):
    rng = np.random.default_rng(seed)
    shape = (n,) if channels is None else (channels, n)
    return (rng.uniform(-amp, amp, shape)).astype(np.float64)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body_for(y, sr=SR, description="a man speaking", **extra):
    return {"audio": b64(encode_wav(y, sr)), "description": description, **extra}


def post(ep, body, key=KEY, timeout=10):
    headers = {} if key is None else {"x-api-key": key}
    if isinstance(body, (bytes, str)):
        return requests.post(ep.url, data=body, headers=headers, timeout=timeout)
    return requests.post(ep.url, json=body, headers=headers, timeout=timeout)


def answer(resp):
    assert resp.status_code == 200, resp.text[:300]
    y, sr = decode_audio(resp.content)
    return y, sr


@pytest.fixture
def ep():
    with LocalEndpoint(keys={KEY: None}) as server:
        yield server


# --- the deterministic "model" ---------------------------------------------------------

def test_identity_round_trip_is_exact_at_48k(ep):
    y = noise(SR)  # 25 whole frames: no padding
    r = post(ep, body_for(y))
    assert r.headers["Content-Type"] == "audio/wav"
    out, sr = answer(r)
    assert sr == SR and out.shape == (1, SR)
    assert np.max(np.abs(out[0] - y)) <= TOL


def test_padding_to_whole_frames(ep):
    y = noise(50000)
    out, _ = answer(post(ep, body_for(y)))
    assert out.shape == (1, 51840) and 51840 % FRAME == 0
    assert np.max(np.abs(out[0, :50000] - y)) <= TOL
    assert not np.any(out[0, 50000:])


def test_no_padding_when_disabled():
    with LocalEndpoint(keys={KEY: None}, pad_to_frame=False) as ep:
        out, _ = answer(post(ep, body_for(noise(50000))))
    assert out.shape == (1, 50000)


def test_16k_upload_comes_back_at_48k(ep):
    t16 = np.arange(16000) / 16000
    out, sr = answer(post(ep, body_for(0.5 * np.sin(2 * np.pi * 440 * t16), sr=16000)))
    assert sr == SR and out.shape == (1, SR)
    t48 = np.arange(SR) / SR
    mid = slice(2000, SR - 2000)
    assert np.max(np.abs(out[0, mid] - 0.5 * np.sin(2 * np.pi * 440 * t48[mid]))) < 2e-3


def test_stereo_upload_is_averaged(ep):
    y = noise(SR, channels=2)
    out, _ = answer(post(ep, body_for(y)))
    assert np.max(np.abs(out[0] - y.mean(axis=0))) <= TOL


def _two_tones():
    t = np.arange(SR) / SR  # 1 s: both tones have whole periods, so the FFT split is exact
    low, high = 0.3 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 3000 * t)
    return low, high


@pytest.mark.parametrize("description, expected", [
    ("silence", lambda low, high: np.zeros_like(low)),
    ("half of everything", lambda low, high: 0.5 * (low + high)),
    ("bass guitar", lambda low, high: low),
    ("low rumble", lambda low, high: low),
    ("treble", lambda low, high: high),
    ("high hats", lambda low, high: high),
    ("Dog Barking", lambda low, high: low + high),
    ("half the bass", lambda low, high: 0.5 * (low + high)),  # first rule wins
])
def test_description_transforms(ep, description, expected):
    low, high = _two_tones()
    out, _ = answer(post(ep, body_for(low + high, description=description)))
    assert np.max(np.abs(out[0] - expected(low, high))) <= 3 * TOL


def test_choose_transform_matches_whole_words():
    assert choose_transform("lowing cattle") == "identity"
    assert choose_transform("SILENCE please") == "silence"
    assert choose_transform("highway traffic") == "identity"
    assert choose_transform("high pitched whistle") == "highpass"


def test_separate_matches_the_server(ep):
    y = noise(30000, seed=3)
    out, _ = answer(post(ep, body_for(y, description="treble")))
    expected = separate(np.round(y * 32768) / 32768, SR, "treble")
    assert out.shape == expected.shape
    assert np.max(np.abs(out - expected)) <= TOL


def test_mp3_output_decodes(ep):
    y = noise(SR, amp=0.3)
    r = post(ep, body_for(y, output_format="mp3"))
    assert r.headers["Content-Type"] == "audio/mpeg"
    out, sr = answer(r)
    assert sr == SR and out.shape[0] == 1 and abs(out.shape[1] - SR) < 4 * FRAME


def test_output_shape_options():
    with LocalEndpoint(keys={KEY: None}, output_sample_rate=44100, output_channels=2,
                       output_subtype="FLOAT") as ep:
        y = noise(SR)
        out, sr = answer(post(ep, body_for(y)))
        assert ep.stats["last_upload"] == UploadInfo(SR, 1, SR, "PCM_16")
    assert sr == 44100 and out.shape == (2, 44100)
    assert np.array_equal(out[0], out[1])


def test_float_output_keeps_overs_and_pcm_output_clips_loudly():
    loud = {"audio": b64(encode_wav(np.full(FRAME, 1.5), SR, "FLOAT")), "description": "x"}
    with LocalEndpoint(keys={KEY: None}, output_subtype="FLOAT") as ep:
        r = post(ep, loud)
        assert "x-clipped-samples" not in r.headers
        assert np.allclose(answer(r)[0], 1.5)
    with LocalEndpoint(keys={KEY: None}) as ep:
        r = post(ep, loud)
        assert r.headers["x-clipped-samples"] == str(FRAME)
        assert ep.stats["clipped_samples"] == FRAME
        assert np.max(answer(r)[0]) <= 1.0


@pytest.mark.parametrize("fmt", ["wav", "json-base64", "json-data-uri", "json-url", "octet"])
@pytest.mark.parametrize("output_format", ["wav", "mp3"])
def test_response_formats(fmt, output_format):
    y = noise(SR, amp=0.3)
    with LocalEndpoint(keys={KEY: None}, response_format=fmt) as ep:
        r = post(ep, body_for(y, output_format=output_format))
        assert r.status_code == 200
        mime = "audio/wav" if output_format == "wav" else "audio/mpeg"
        ctype = r.headers["Content-Type"]
        if fmt == "wav":
            assert ctype == mime
            data = r.content
        elif fmt == "octet":
            assert ctype == "application/octet-stream"
            data = r.content
        else:
            assert ctype == "application/json"
            doc = r.json()
            if fmt == "json-base64":
                data = base64.b64decode(doc["audio"])
            elif fmt == "json-data-uri":
                head, payload = doc["audio"].split(",", 1)
                assert head == f"data:{mime};base64"
                data = base64.b64decode(payload)
            else:
                url = doc["audio_url"]
                assert url.startswith(ep.base_url + "/files/")
                assert url.endswith("." + output_format)
                f = requests.get(url, timeout=10)
                assert f.status_code == 200 and f.headers["Content-Type"] == mime
                data = f.content
    out, sr = decode_audio(data)
    assert sr == SR
    if output_format == "wav":
        assert np.max(np.abs(out[0] - y)) <= TOL


def test_audio_as_data_uri_flac_and_own_url(ep):
    y = noise(FRAME * 4)
    uri = "data:audio/wav;base64," + b64(encode_wav(y, SR))
    assert np.max(np.abs(answer(post(ep, {"audio": uri, "description": "x"}))[0] - y)) <= TOL
    flac = {"audio": b64(encode_flac(y, SR)), "description": "x"}
    assert np.max(np.abs(answer(post(ep, flac))[0] - y)) <= TOL
    assert ep.stats["last_upload_format"] == "FLAC"
    url = ep.add_file(encode_wav(y, SR), "wav")
    assert np.max(np.abs(answer(post(ep, {"audio": url, "description": "x"}))[0] - y)) <= TOL


def test_base64_with_line_breaks_is_accepted(ep):
    y = noise(FRAME)
    wrapped = base64.encodebytes(encode_wav(y, SR)).decode()
    assert "\n" in wrapped
    assert answer(post(ep, {"audio": wrapped, "description": "x"}))[0].shape == (1, FRAME)


# --- errors ------------------------------------------------------------------------------

def test_auth_errors():
    with LocalEndpoint(keys={KEY: 1.0}, forbidden_keys=["banned"]) as ep:
        good = body_for(noise(FRAME))
        for key, status in [(None, 401), ("wrong", 401), ("banned", 403)]:
            r = post(ep, good, key=key)
            assert r.status_code == status
            assert "error" in r.json()
        assert ep.stats["billed"] == 0 and ep.credits(KEY) == 1.0
        assert ep.stats["by_status"] == {401: 2, 403: 1}


WAV = b64(encode_wav(np.zeros(FRAME), SR))


@pytest.mark.parametrize("body, words", [
    (b"not json", "JSON"),
    (b"[1, 2]", "JSON object"),
    ({"description": "x"}, "'audio' is required"),
    ({"audio": 123, "description": "x"}, "must be a string"),
    ({"audio": "%%%notbase64%%%", "description": "x"}, "not valid base64"),
    ({"audio": "", "description": "x"}, "empty"),
    ({"audio": b64(b"hello, not audio"), "description": "x"}, "could not be decoded"),
    ({"audio": "data:audio/wav,plain", "description": "x"}, "data URI"),
    ({"audio": "https://example.com/a.wav", "description": "x"}, "remote URLs not supported"),
    ({"audio": WAV}, "'description' is required"),
    ({"audio": WAV, "description": ""}, "'description' is required"),
    ({"audio": WAV, "description": "   "}, "'description' is required"),
    ({"audio": WAV, "description": 5}, "'description' is required"),
    ({"audio": WAV, "description": "x", "output_format": "flac"}, "output_format"),
    ({"audio": WAV, "description": "x", "reranking_candidates": 0}, "reranking_candidates"),
    ({"audio": WAV, "description": "x", "reranking_candidates": 9}, "reranking_candidates"),
    ({"audio": WAV, "description": "x", "reranking_candidates": True}, "reranking_candidates"),
    ({"audio": WAV, "description": "x", "reranking_candidates": 2.5}, "reranking_candidates"),
    ({"audio": WAV, "description": "x", "reranking_candidates": "3"}, "reranking_candidates"),
])
def test_bad_requests_are_400_and_unbilled(body, words):
    with LocalEndpoint(keys={KEY: 1.0}) as ep:
        r = post(ep, body)
        assert r.status_code == 400
        assert words in r.json()["error"]
        assert ep.stats["billed"] == 0 and ep.credits(KEY) == 1.0


def test_valid_optional_fields(ep):
    for n in (1, 8):
        assert post(ep, {"audio": WAV, "description": "x", "reranking_candidates": n,
                         "output_format": "wav"}).status_code == 200


def test_data_uri_refused_when_disabled():
    with LocalEndpoint(keys={KEY: None}, accept_data_uri=False) as ep:
        r = post(ep, {"audio": "data:audio/wav;base64," + WAV, "description": "x"})
        assert r.status_code == 400 and "data:" in r.json()["error"]
        assert post(ep, {"audio": WAV, "description": "x"}).status_code == 200


def test_max_audio_seconds():
    with LocalEndpoint(keys={KEY: None}, max_audio_seconds=0.5) as ep:
        r = post(ep, body_for(noise(SR)))
        assert r.status_code == 400 and "at most 0.5 s" in r.json()["error"]
        assert post(ep, body_for(noise(SR // 4))).status_code == 200


def test_unknown_own_file_url_is_400(ep):
    r = post(ep, {"audio": ep.base_url + "/files/f999999.wav", "description": "x"})
    assert r.status_code == 400 and "not on this server" in r.json()["error"]


def test_404_and_405(ep):
    r = requests.get(ep.base_url + "/v1/other-model", timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    r = requests.post(ep.base_url + "/nope", json={}, timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    r = requests.get(ep.url, timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and "error" in r.json()
    r = requests.post(ep.base_url + "/v1/get-user-credits", json={}, timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    r = requests.delete(ep.url, timeout=5)
    assert r.status_code == 405
    r = requests.get(ep.base_url + "/files/missing.wav", timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    assert ep.stats["requests"] == 0  # only model POSTs count


# --- credits and rate limits -------------------------------------------------------------

def test_credits_run_out_with_406_unbilled():
    with LocalEndpoint(keys={KEY: 0.2}, price_per_call=0.062) as ep:
        body = body_for(noise(FRAME))
        left = [post(ep, body).headers["x-remaining-credits"] for _ in range(3)]
        assert left == ["0.138", "0.076", "0.014"]
        r = post(ep, body)
        assert r.status_code == 406 and "Insufficient credits" in r.json()["error"]
        assert "x-remaining-credits" not in r.headers
        stats = ep.stats
        assert stats["billed"] == 3 and stats["by_status"] == {200: 3, 406: 1}
        assert stats["per_key"][KEY] == {"requests": 4, "billed": 3}
        assert ep.credits(KEY) == pytest.approx(0.014)
        ep.set_credits(KEY, 0.062)
        assert post(ep, body).status_code == 200
        assert ep.credits(KEY) == pytest.approx(0.0)
        assert post(ep, body).status_code == 406


def test_get_user_credits():
    with LocalEndpoint(keys={KEY: 5.0, "free": None}) as ep:
        url = ep.base_url + "/v1/get-user-credits"
        r = requests.get(url, headers={"x-api-key": KEY}, timeout=5)
        assert r.status_code == 200 and r.json() == {"credits": 5.0, "free-credits": 0.0}
        assert requests.get(url, headers={"x-api-key": "free"}, timeout=5).json()["credits"] > 1e3
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, headers={"x-api-key": "bad"}, timeout=5).status_code == 401
        post(ep, body_for(noise(FRAME)))
        r = requests.get(url, headers={"x-api-key": KEY}, timeout=5)
        assert r.json()["credits"] == pytest.approx(5.0 - 0.062)
    with pytest.raises(KeyError):
        ep.credits("bad")


def test_rate_limit_429_retry_after_and_recovery():
    with LocalEndpoint(keys={KEY: None, "other": None}, rate_limit_per_minute=2,
                       rate_window=1.0) as ep:
        body = body_for(noise(FRAME))
        assert [post(ep, body).status_code for _ in range(2)] == [200, 200]
        r = post(ep, body)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "Rate limit" in r.json()["error"]
        assert post(ep, body, key="other").status_code == 200  # windows are per key
        time.sleep(1.05)
        assert post(ep, body).status_code == 200
        assert ep.stats["billed"] == 4


def test_rate_limit_without_retry_after():
    with LocalEndpoint(keys={KEY: None}, rate_limit_per_minute=1, rate_window=1.0,
                       send_retry_after=False) as ep:
        body = body_for(noise(FRAME))
        assert post(ep, body).status_code == 200
        r = post(ep, body)
        assert r.status_code == 429 and "Retry-After" not in r.headers


# --- injected faults ---------------------------------------------------------------------

def test_fault_status_times_and_retry_after():
    with LocalEndpoint(keys={KEY: 1.0}, rate_limit_per_minute=1, rate_window=60) as ep:
        ep.inject("status", status=503, times=2, retry_after=7)
        ep.inject("status", status=500, message="boom")
        body = body_for(noise(FRAME))
        r1, r2, r3 = (post(ep, body) for _ in range(3))
        assert (r1.status_code, r2.status_code) == (503, 503)
        assert r1.headers["Retry-After"] == "7" and "error" in r1.json()
        assert r3.status_code == 500 and r3.json() == {"error": "boom"}
        assert "Retry-After" not in r3.headers
        # faults were neither billed nor counted by the rate limiter
        assert post(ep, body).status_code == 200
        assert ep.credits(KEY) == pytest.approx(1.0 - 0.062)
        assert ep.stats["faults"] == {"status": 3}
        assert ep.stats["by_status"] == {503: 2, 500: 1, 200: 1}


def test_fault_drop(ep):
    ep.inject("drop")
    with pytest.raises(requests.ConnectionError):
        post(ep, body_for(noise(FRAME)))
    assert post(ep, body_for(noise(FRAME))).status_code == 200
    stats = ep.stats
    assert stats["requests"] == 2 and stats["billed"] == 1 and stats["by_status"] == {200: 1}


def test_fault_truncate(ep):
    ep.inject("truncate")
    try:  # urllib3 2 raises on a body shorter than its Content-Length; urllib3 1.x returns it
        r = post(ep, body_for(noise(FRAME)))
    except requests.RequestException:
        pass
    else:
        assert r.status_code == 200 and len(r.content) < int(r.headers["Content-Length"])
    assert ep.stats["billed"] == 0
    assert post(ep, body_for(noise(FRAME))).status_code == 200


def test_fault_html(ep):
    ep.inject("html")
    ep.inject("html", status=504, retry_after=2)
    r = post(ep, body_for(noise(FRAME)))
    assert r.status_code == 502 and r.headers["Content-Type"] == "text/html"
    assert r.text.lstrip().startswith("<html>") and "502 Bad Gateway" in r.text
    r = post(ep, body_for(noise(FRAME)))
    assert r.status_code == 504 and r.headers["Retry-After"] == "2"


def test_fault_garbage(ep):
    ep.inject("garbage")
    r = post(ep, body_for(noise(FRAME)))
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/wav"
    with pytest.raises(Exception):
        decode_audio(r.content)
    assert ep.stats["billed"] == 0


def test_fault_slow_times_out_the_client(ep):
    ep.inject("slow", delay=5.0)
    t0 = time.monotonic()
    with pytest.raises(requests.Timeout):
        post(ep, body_for(noise(FRAME)), timeout=0.3)
    assert time.monotonic() - t0 < 4.0  # cut short by the timeout, not served after 5 s
    ep.inject("slow", delay=0.2)
    t0 = time.monotonic()
    assert post(ep, body_for(noise(FRAME))).status_code == 200
    assert time.monotonic() - t0 >= 0.2


def test_faults_are_fifo_and_clearable(ep):
    ep.inject("status", status=429)
    ep.inject("status", status=404)
    body = body_for(noise(FRAME))
    assert post(ep, body).status_code == 429
    ep.clear_faults()
    assert post(ep, body).status_code == 200


@pytest.mark.parametrize("args, kwargs", [
    (("explode",), {}),
    (("status",), {}),
    (("status",), {"status": 200}),
    (("drop",), {"times": 0}),
    (("slow",), {}),
])
def test_inject_rejects_bad_arguments(args, kwargs):
    with pytest.raises(ValueError):
        LocalEndpoint().inject(*args, **kwargs)


# --- concurrency, stats, lifecycle -------------------------------------------------------

def test_parallel_requests_overlap():
    with LocalEndpoint(keys={KEY: None}, latency=0.3) as ep:
        body = body_for(noise(FRAME))
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: post(ep, body).status_code, range(4)))
        elapsed = time.monotonic() - t0
        assert codes == [200] * 4
        assert ep.stats["max_in_flight"] == 4
        assert ep.stats["in_flight"] == 0
    assert elapsed >= 0.3  # overlap itself is proven by max_in_flight


def test_stats_record_what_the_client_sent(ep):
    y = noise(FRAME * 2, sr=16000)
    body = body_for(y, sr=16000, description="dog barking", reranking_candidates=3)
    post(ep, body)
    post(ep, b"garbage")
    stats = ep.stats
    assert stats["descriptions"] == ["dog barking"]
    assert stats["request_bytes"][0] == len(json.dumps(body).encode())
    assert stats["request_bytes"][1] == len(b"garbage")
    assert stats["last_request"] is None
    post(ep, body)
    last = ep.stats["last_request"]
    assert last == {"audio": len(body["audio"]), "description": "dog barking",
                    "reranking_candidates": 3}
    assert ep.stats["last_upload"] == (16000, 1, FRAME * 2, "PCM_16")
    assert ep.stats["last_upload_format"] == "WAV"
    ep.reset_stats()
    stats = ep.stats
    assert stats["requests"] == 0 and stats["descriptions"] == [] and stats["by_status"] == {}


def test_many_start_stop_cycles_leave_no_threads():
    before = threading.active_count()
    t0 = time.monotonic()
    for _ in range(25):
        with LocalEndpoint() as ep:
            s = requests.Session()  # a kept-alive connection must not block stop()
            assert s.get(ep.base_url + "/v1/get-user-credits",
                         headers={"x-api-key": "local-key"}, timeout=5).status_code == 200
        s.close()
    assert time.monotonic() - t0 < 25  # a stop() blocked by keep-alive would hang
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def test_stop_abandons_sleeping_requests_quickly():
    ep = LocalEndpoint(keys={"local-key": 1.0}, latency=30).start()
    box = {}

    def call():
        try:
            box["r"] = post(ep, body_for(noise(FRAME)), key="local-key", timeout=10)
        except requests.RequestException as exc:
            box["exc"] = exc

    th = threading.Thread(target=call)
    th.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    ep.stop()
    th.join(5)
    assert time.monotonic() - t0 < 10 and "exc" in box  # not the 30 s latency
    assert ep.stats["billed"] == 0 and ep.credits("local-key") == 1.0  # refunded


def test_logging_never_shows_the_key(capsys):
    with LocalEndpoint(keys={"secret-key-123": None}, log_requests=True) as ep:
        post(ep, body_for(noise(FRAME)), key="secret-key-123")
    err = capsys.readouterr().err
    assert "POST /v1/sam-audio-large" in err and "secret-key-123" not in err


def test_silent_by_default(capsys):
    with LocalEndpoint(keys={"secret-key-123": None}) as ep:
        post(ep, body_for(noise(FRAME)), key="secret-key-123")
        post(ep, b"junk", key="nope")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_constructor_validation():
    with pytest.raises(ValueError):
        LocalEndpoint(response_format="xml")
    with pytest.raises(ValueError):
        LocalEndpoint(output_subtype="PCM_8")
    with pytest.raises(ValueError):
        LocalEndpoint(keys={KEY: -1.0})
    with pytest.raises(ValueError):
        LocalEndpoint(rate_limit_per_minute=0)


# --- command line ------------------------------------------------------------------------

def test_serve_main_in_a_subprocess():
    code = ("from samaudio_data.testing import serve_main; "
            "serve_main(['--port', '0', '--key', 'cli-key', '--credits', '1', "
            "'--response-format', 'json-base64', '--price', '0.1'])")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            _check_cli(proc)
        finally:
            proc.terminate()
            proc.communicate(timeout=5)


def _check_cli(proc):
    """The first stdout line is the URL, the next names the key; the server answers."""
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/sam-audio-large")
    assert "cli-key" in proc.stdout.readline()
    r = requests.post(url, json=body_for(noise(FRAME)), headers={"x-api-key": "cli-key"},
                      timeout=10)
    assert r.status_code == 200 and r.headers["x-remaining-credits"] == "0.9"
    assert decode_audio(base64.b64decode(r.json()["audio"]))[0].shape == (1, FRAME)
    assert requests.post(url, json={}, timeout=10).status_code == 401


def test_serve_main_rejects_bad_flags():
    with pytest.raises(SystemExit):
        serve_main(["--response-format", "xml"])
