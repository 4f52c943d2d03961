"""The local endpoint's errors, credits and injected faults, over real HTTP with `requests`."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from conftest import cut_short
from endpoint_helpers import KEY, SR, b64, body_for, post
from signals import noise

from samaudio_data.audio import decode_audio, encode_wav
from samaudio_data.errors import InvalidRequestError, ResponseDecodeError
from samaudio_data.testing import FRAME, LocalEndpoint


@pytest.fixture
def ep():
    with LocalEndpoint(keys={KEY: None}) as server:
        yield server


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


@pytest.mark.parametrize(
    "body, words",
    [
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
    ],
)
def test_bad_requests_are_400_and_unbilled(body, words):
    with LocalEndpoint(keys={KEY: 1.0}) as ep:
        r = post(ep, body)
        assert r.status_code == 400
        assert words in r.json()["error"]
        assert ep.stats["billed"] == 0 and ep.credits(KEY) == 1.0


def test_valid_optional_fields(ep):
    for n in (1, 8):
        assert (
            post(
                ep,
                {
                    "audio": WAV,
                    "description": "x",
                    "reranking_candidates": n,
                    "output_format": "wav",
                },
            ).status_code
            == 200
        )


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
    with pytest.raises(InvalidRequestError):
        ep.credits("bad")


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
    cut_short(lambda: post(ep, body_for(noise(FRAME))))
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
    with pytest.raises(ResponseDecodeError):
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


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("explode",), {}),
        (("status",), {}),
        (("status",), {"status": 200}),
        (("drop",), {"times": 0}),
        (("slow",), {}),
    ],
)
def test_inject_rejects_bad_arguments(args, kwargs):
    with pytest.raises(InvalidRequestError):
        LocalEndpoint().inject(*args, **kwargs)
