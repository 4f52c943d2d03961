"""The hostile test server behaves as documented (checked with plain `requests`)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import requests
import soundfile as sf
from conftest import cut_short
from endpoint_helpers import wait_for
from hostile import (
    HostileServer,
    audio,
    cut_body,
    drip,
    drop,
    echo_key,
    huge,
    json_doc,
    redirect,
    refused_url,
    respond,
    status,
    wav_bytes,
)
from signals import tone

KEY = "sk-hostile-test-SECRET"
PATH = "/v1/sam-audio-large"
MiB = 1 << 20


@pytest.fixture
def bad():
    with HostileServer() as server:
        yield server


def call(server, path=PATH, **kw):
    kw.setdefault("timeout", 10)
    return requests.post(
        server.url + path,
        json={"audio": "AAAA", "description": "x"},
        headers={"x-api-key": KEY},
        **kw,
    )


def test_records_every_request_and_answers_404_by_default(bad):
    r = call(bad)
    assert r.status_code == 404 and "error" in r.json()
    requests.get(bad.url + "/other?x=1", timeout=5)
    first, second = bad.requests
    assert (first.method, first.path) == ("POST", PATH)
    assert first.headers["x-api-key"] == KEY and first.headers["content-type"] == "application/json"
    assert b'"description": "x"' in first.body
    assert (second.method, second.path, second.body) == ("GET", "/other", b"")
    bad.clear()
    assert bad.requests == []


def test_behaviours_are_consumed_in_order_then_default(bad):
    bad.add("POST", PATH, status(503), times=2)
    bad.add("POST", "*", respond(200, b"{}"))
    bad.add("GET", PATH, respond(200, b"get"), times=None)
    assert [call(bad).status_code for _ in range(4)] == [503, 503, 200, 404]
    assert [requests.get(bad.url + PATH, timeout=5).text for _ in range(3)] == ["get"] * 3


def test_cut_body_closing_early_breaks_the_read(bad):
    body = wav_bytes(tone(1.0))
    bad.add("POST", PATH, cut_body(body, at=len(body) // 2))
    out = cut_short(lambda: call(bad))  # urllib3 2 raises; urllib3 1.x returns a short body
    assert isinstance(out, (requests.Response, requests.exceptions.ChunkedEncodingError))


def test_cut_body_with_a_consistent_content_length(bad):
    body = wav_bytes(tone(1.0))
    bad.add("POST", PATH, cut_body(body, at=len(body) // 2, declare="cut"))
    r = call(bad)
    assert r.status_code == 200 and len(r.content) == len(body) // 2
    assert int(r.headers["Content-Length"]) == len(body) // 2
    declared = int.from_bytes(r.content[40:44], "little")  # the WAV 'data' chunk size
    assert declared == 48000 * 2 > len(r.content) - 44


def test_valid_but_short_audio(bad):
    bad.add("POST", PATH, audio(tone(0.1), 48000))
    y, sr = sf.read(io.BytesIO(call(bad).content))
    assert sr == 48000 and y.shape == (4800,)


@pytest.mark.parametrize("code", [302, 307])
def test_redirect_to_another_origin_records_what_arrives_there(bad, code):
    with HostileServer() as other:
        bad.add("POST", PATH, redirect(other.url + "/elsewhere", code), times=None)
        other.add("GET", "*", respond(200, b"{}"), times=None)  # a 302 turns POST into GET
        other.add("POST", "*", respond(200, b"{}"), times=None)
        r = call(bad, allow_redirects=False)
        assert r.status_code == code and r.headers["Location"] == other.url + "/elsewhere"
        assert other.requests == []
        call(bad)  # plain `requests` follows it and keeps custom headers: the leak to catch
        (arrived,) = other.requests
        assert arrived.path == "/elsewhere" and arrived.headers.get("x-api-key") == KEY


def test_echo_key_in_a_200_and_in_an_error(bad):
    bad.add("POST", PATH, echo_key())
    bad.add("POST", PATH, echo_key(401, '{{"error": "invalid key {key}"}}'))
    ok, err = call(bad), call(bad)
    assert ok.status_code == 200 and KEY in ok.json()["detail"]
    assert err.status_code == 401 and KEY in err.json()["error"]


def test_drip_keeps_every_read_short_but_the_answer_long(bad):
    bad.add("POST", PATH, drip(b"RIFF!", every=0.15))
    t0 = time.monotonic()
    r = call(bad, timeout=(5, 1.0))  # no single read waits 1 s
    assert r.content == b"RIFF!"
    assert time.monotonic() - t0 >= 4 * 0.15


def test_stop_ends_a_drip_in_progress():
    server = HostileServer().start()
    server.add("POST", PATH, drip(b"x" * 100, every=10.0))
    box = {}

    def run():
        box["out"] = cut_short(lambda: call(server, timeout=30))

    th = threading.Thread(target=run)
    th.start()
    wait_for(lambda: server.requests, "the request to reach the server")
    server.stop()
    th.join(10)
    assert not th.is_alive() and "out" in box


def test_huge_body_is_streamed_not_held():
    resource = pytest.importorskip("resource")  # peak memory, on POSIX
    size = 300 * MiB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with HostileServer() as bad:
        bad.add("POST", PATH, huge(size))
        with call(bad, stream=True) as r:
            assert int(r.headers["Content-Length"]) == size
            first = next(r.iter_content(64))
            got = len(first) + sum(len(c) for c in r.iter_content(MiB))
    assert first.startswith(b"RIFF") and got == size
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown * 1024 < 100 * MiB


def test_huge_body_without_content_length_ends_at_close(bad):
    bad.add("POST", PATH, huge(3 * MiB, declare_length=False))
    r = call(bad)
    assert "Content-Length" not in r.headers and len(r.content) == 3 * MiB


@pytest.mark.parametrize("value", ["3600", "inf", "-1", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_429_flood_with_chosen_retry_after(bad, value):
    bad.add("POST", PATH, status(429, "slow down", retry_after=value), times=None)
    answers = [call(bad) for _ in range(5)]
    assert {(r.status_code, r.headers["Retry-After"]) for r in answers} == {(429, value)}


def test_json_with_urls_to_itself_and_to_another_origin(bad):
    with HostileServer() as other:
        bad.add(
            "POST",
            PATH,
            json_doc({"audio_url": bad.url + "/out.wav", "output": other.url + "/big.bin"}),
        )
        bad.add("GET", "/out.wav", audio(tone(0.5)))
        other.add("GET", "/big.bin", respond(200, b"\0" * (5 * MiB), "application/octet-stream"))
        doc = call(bad).json()
        assert (
            sf.read(io.BytesIO(requests.get(doc["audio_url"], timeout=5).content))[0].size == 24000
        )
        assert len(requests.get(doc["output"], timeout=5).content) == 5 * MiB
        assert [r.path for r in other.requests] == ["/big.bin"]


def test_non_audio_200_and_drop(bad):
    bad.add("POST", PATH, respond(200, b"<html><body>oops</body></html>", "audio/wav"))
    bad.add("POST", PATH, drop())
    r = call(bad)
    assert r.status_code == 200 and r.content.startswith(b"<html>")
    with pytest.raises(requests.ConnectionError):
        call(bad)


def test_refused_url_refuses():
    url = refused_url()
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={}, timeout=5)


def test_tone_and_wav_bytes_round_trip():
    y = tone(0.25, sr=16000)
    back, sr = sf.read(io.BytesIO(wav_bytes(y, 16000)))
    assert sr == 16000 and np.max(np.abs(back - y)) < 1e-4
