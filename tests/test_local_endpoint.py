"""Tests of the local SAM Audio Large stand-in, over real HTTP on 127.0.0.1 with `requests`."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from endpoint_helpers import KEY, SR, TOL, answer, b64, body_for, post, wait_for
from signals import noise

from samaudio_data.audio import decode_audio, encode_flac, encode_wav
from samaudio_data.errors import InvalidRequestError
from samaudio_data.testing import (
    FRAME,
    FakeClock,
    LocalEndpoint,
    UploadInfo,
    choose_transform,
    separate,
    serve_main,
)


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


@pytest.mark.parametrize(
    "description, expected",
    [
        ("silence", lambda low, high: np.zeros_like(low)),
        ("half of everything", lambda low, high: 0.5 * (low + high)),
        ("bass guitar", lambda low, high: low),
        ("low rumble", lambda low, high: low),
        ("treble", lambda low, high: high),
        ("high hats", lambda low, high: high),
        ("Dog Barking", lambda low, high: low + high),
        ("half the bass", lambda low, high: 0.5 * (low + high)),  # first rule wins
    ],
)
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
    with LocalEndpoint(
        keys={KEY: None}, output_sample_rate=44100, output_channels=2, output_subtype="FLOAT"
    ) as ep:
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
    assert last == {
        "audio": len(body["audio"]),
        "description": "dog barking",
        "reranking_candidates": 3,
    }
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
            assert (
                s.get(
                    ep.base_url + "/v1/get-user-credits",
                    headers={"x-api-key": "local-key"},
                    timeout=5,
                ).status_code
                == 200
            )
        s.close()
    assert time.monotonic() - t0 < 25  # a stop() blocked by keep-alive would hang
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def test_latency_and_slow_faults_follow_the_endpoints_clock():
    clock = FakeClock()
    with (
        LocalEndpoint(keys={"local-key": 1.0}, latency=5.0, clock=clock) as ep,
        ThreadPoolExecutor(1) as pool,
    ):
        pending = pool.submit(post, ep, body_for(noise(FRAME)), key="local-key")
        wait_for(lambda: clock.waiting == 1, "the call to reach the model")
        clock.advance(4.9)  # the model is still working: no answer yet
        assert not concurrent.futures.wait([pending], timeout=0.2).done
        clock.advance(0.1)
        assert pending.result(timeout=30).status_code == 200
        ep.latency = 0
        ep.inject("slow", delay=60.0)  # a minute of the endpoint's time, not the test's
        pending = pool.submit(post, ep, body_for(noise(FRAME)), key="local-key")
        wait_for(lambda: clock.waiting == 1, "the slow request to arrive")
        clock.advance(60.0)
        assert pending.result(timeout=30).status_code == 200
        assert ep.stats["billed"] == 2 and ep.stats["faults"] == {"slow": 1}
    with pytest.raises(InvalidRequestError, match="clock must be"):
        LocalEndpoint(clock=lambda: 0.0)


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
    wait_for(
        lambda: ep.stats["in_flight"] == 1 and ep.stats["requests"] == 1,
        "the call to reach the model",
    )
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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"response_format": "xml"},
        {"output_subtype": "PCM_8"},
        {"keys": {KEY: -1.0}},
        {"keys": {"": None}},
        {"rate_limit_per_minute": 0},
        {"rate_window": 0},
        {"rate_limit_burst": 0},
        {"latency": -1},
        {"output_channels": 0},
        {"output_sample_rate": 5},
        {"max_body_bytes": 0},
        {"queue_output": "ftp"},
        {"queue_off_status": 500},
        {"queue_retention": -1},
        {"queue_url_origin": "nowhere"},
        {"no_such_setting": 1},
    ],
)
def test_constructor_validation(kwargs):
    with pytest.raises(InvalidRequestError):
        LocalEndpoint(**kwargs)


def test_settings_are_attributes_validated_on_assignment():
    ep = LocalEndpoint(latency=0.25)
    assert ep.latency == 0.25
    ep.latency = 0.5
    assert ep.latency == 0.5
    with pytest.raises(InvalidRequestError):
        ep.latency = -1
    assert ep.latency == 0.5
    with pytest.raises(AttributeError):
        ep.not_a_setting = 1


# --- command line ------------------------------------------------------------------------


@contextlib.contextmanager
def serving(args):
    """Run ``serve_main(args)`` in a subprocess; yield its first stdout line (the model URL)."""
    code = f"from samaudio_data.testing import serve_main; serve_main({args!r})"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            yield proc
        finally:
            proc.terminate()
            proc.communicate(timeout=5)


def test_serve_main_in_a_subprocess():
    """The first stdout line is the URL, the next names the key; the server answers."""
    with serving(
        [
            "--port",
            "0",
            "--key",
            "cli-key",
            "--credits",
            "1",
            "--response-format",
            "json-base64",
            "--price",
            "0.1",
        ]
    ) as proc:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/sam-audio-large")
        assert "cli-key" in proc.stdout.readline()
        r = requests.post(
            url, json=body_for(noise(FRAME)), headers={"x-api-key": "cli-key"}, timeout=10
        )
        assert r.status_code == 200 and r.headers["x-remaining-credits"] == "0.9"
        assert decode_audio(base64.b64decode(r.json()["audio"]))[0].shape == (1, FRAME)
        assert requests.post(url, json={}, timeout=10).status_code == 401


def test_serve_main_rejects_bad_flags():
    with pytest.raises(SystemExit):
        serve_main(["--response-format", "xml"])


def test_serve_main_queue_and_limit_flags():
    with serving(
        [
            "--port",
            "0",
            "--no-queue",
            "--rpm",
            "60",
            "--burst",
            "1",
            "--max-body-bytes",
            "2000",
            "--max-audio-seconds",
            "0.01",
        ]
    ) as proc:
        url = proc.stdout.readline().strip()
        base = url.rsplit("/v1/", 1)[0]
        headers = {"x-api-key": "local-key"}
        body = body_for(noise(FRAME))  # over 2000 bytes
        assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 413
        short = {"audio": b64(encode_wav(np.zeros(100), SR)), "description": "x"}
        assert requests.post(url, json=short, headers=headers, timeout=10).status_code == 200
        r = requests.post(url, json=short, headers=headers, timeout=10)
        assert r.status_code == 429  # burst 1
        long = {"audio": b64(encode_wav(np.zeros(600), SR)), "description": "x"}

        answers = []

        def past_the_limit():  # a 429 takes no token: ask until the next one (1 s) is there
            answers.append(requests.post(url, json=long, headers=headers, timeout=10))
            return answers[-1].status_code != 429

        wait_for(past_the_limit, "the bucket's next token", interval=0.05)
        r = answers[-1]
        assert r.status_code == 400 and "at most 0.01 s" in r.json()["error"]
        r = requests.post(base + "/v2/sam-audio-large", json=short, headers=headers, timeout=10)
        assert r.status_code == 404
