"""Trust: nothing wrong comes back silently, the key stays with the endpoint, nothing hangs.

Every test talks real HTTP to a hostile server (tests/hostile.py) or the local endpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
import time
import warnings

import numpy as np
import pytest
from conftest import KEY, TOKEN_BUCKET, hostile_client
from hostile import (
    HostileServer,
    audio,
    cut_body,
    drip,
    echo_key,
    huge,
    json_doc,
    redirect,
    refused_url,
    respond,
    status,
    wav_bytes,
)
from signals import bandlimited, tone

from samaudio_data import Client, errors

PATH = "/v1/sam-audio-large"
SR = 48000


def clip(seconds=1.0):
    return tone(seconds, SR)


def assert_no_key(*texts):
    for text in texts:
        assert KEY not in str(text)


# --- wrong results never come back silently, nor are cached ---------------------------------


@pytest.mark.parametrize("declare", ["full", "cut"])
def test_an_answer_cut_short_is_an_error_and_never_cached(tmp_path, declare):
    body = wav_bytes(clip())
    with HostileServer() as bad:
        bad.add("POST", PATH, cut_body(body, len(body) // 2, declare=declare), times=None)
        client = hostile_client(bad, tmp_path)
        with pytest.raises((errors.IncompleteResponseError, errors.APIConnectionError)):
            client.isolate(clip(), SR, "speech")
        assert len(bad.requests) == 2  # retried once as a transient fault
        assert len(client.cache) == 0


def test_a_valid_but_much_shorter_wav_is_an_error(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", PATH, audio(clip(0.5)), times=None)
        client = hostile_client(bad, tmp_path)
        with pytest.raises(errors.IncompleteResponseError, match="does not cover"):
            client.isolate(clip(1.0), SR, "speech")
        assert len(client.cache) == 0


def test_an_answer_far_longer_than_the_input_is_an_error(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", PATH, audio(clip(3.0)), times=None)
        with pytest.raises(errors.IncompleteResponseError, match="longer"):
            hostile_client(bad, tmp_path).isolate(clip(1.0), SR, "speech")


def test_a_200_that_is_not_audio_is_not_cached_and_fails_clearly(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", PATH, json_doc({"status": "ok", "note": "no audio here"}), times=None)
        client = hostile_client(bad, tmp_path)
        with pytest.raises(errors.ResponseDecodeError, match="JSON without audio"):
            client.isolate(clip(), SR, "speech")
        assert len(client.cache) == 0
        assert len(bad.requests) == 1  # not retried: it would be billed again


def test_a_good_answer_after_a_cut_one_is_used_and_cached(tmp_path):
    good = wav_bytes(clip())
    with HostileServer() as bad:
        bad.add("POST", PATH, cut_body(good, 1000, declare="cut"))
        bad.add("POST", PATH, respond(200, good, "audio/wav"))
        client = hostile_client(bad, tmp_path)
        out = client.isolate(clip(), SR, "speech")
        assert np.allclose(out, clip(), atol=1e-4)
        assert len(client.cache) == 1


# --- the cache is verified before it is served ------------------------------------------


def entries(client):
    return sorted(p for p in (client.cache_dir / "results").glob("*/*.bin"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "garbage"])
def test_a_damaged_cache_entry_is_a_miss_and_is_replaced(client, endpoint, damage, caplog):
    a, b = bandlimited(4800, SR, seed=1), bandlimited(4800, SR, seed=2)
    client.isolate(a, SR, "speech")
    (pa,) = entries(client)
    client.isolate(b, SR, "speech")
    (pb,) = set(entries(client)) - {pa}
    raw = pa.read_bytes()
    if damage == "flip":
        pa.write_bytes(raw[:-50] + bytes([raw[-50] ^ 0xFF]) + raw[-49:])
    elif damage == "truncate":
        pa.write_bytes(raw[: len(raw) // 2])
    elif damage == "swap":
        pa.write_bytes(pb.read_bytes())
    else:
        pa.write_bytes(os.urandom(len(raw)))
    before = endpoint.stats["billed"]
    with caplog.at_level(logging.WARNING, logger="samaudio_data"):
        out_a = client.isolate(a, SR, "speech")
        client.isolate(a, SR, "speech")
    assert endpoint.stats["billed"] == before + 1  # re-requested once, then served
    assert np.allclose(out_a, a, atol=1e-4)
    assert sum("unusable" in r.message for r in caplog.records) == 1  # logged once


def test_a_directory_or_fifo_where_an_entry_should_be_is_a_miss(client, endpoint):
    y = bandlimited(4800, SR, seed=3)
    client.isolate(y, SR, "speech")
    (entry,) = entries(client)
    entry.unlink()
    os.mkfifo(entry)
    t0 = time.monotonic()
    assert np.allclose(client.isolate(y, SR, "speech"), y, atol=1e-4)  # no hang on the FIFO
    assert time.monotonic() - t0 < 30
    entry.unlink()
    entry.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.allclose(client.isolate(y, SR, "speech"), y, atol=1e-4)
    assert any("could not write" in str(w.message) for w in caught)


def test_a_paid_answer_that_cannot_be_cached_is_still_returned(client, endpoint):
    """The cache cannot be written (its shard directory is not a directory: the same OSError
    path as a read-only directory, and it fails for root too): a warning, and the answer."""
    y = bandlimited(4800, SR, seed=4)
    client.isolate(bandlimited(480, SR, seed=9), SR, "speech")  # creates the tree
    results = client.cache_dir / "results"
    for shard in [f"{i:02x}" for i in range(256)]:  # every shard, also the one just made
        if (results / shard).is_dir():  # (the answer may land in the one just made)
            shutil.rmtree(results / shard)
        (results / shard).write_bytes(b"not a directory")
    with pytest.warns(RuntimeWarning, match="could not write"):
        out = client.isolate(y, SR, "speech")
    assert np.allclose(out, y, atol=1e-4)
    assert endpoint.stats["billed"] == 2


@pytest.fixture
def full_disk(tmp_path):
    """A real, tiny file system (tmpfs, 256 KiB), filled up: every write fails with ENOSPC."""
    import subprocess

    mnt = tmp_path / "full"
    mnt.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")

    def fill(leave: int = 0):
        """Fill the file system, then free ``leave`` bytes again."""
        try:
            with open(mnt / "filler", "wb", buffering=0) as fh:
                while True:
                    fh.write(b"\0" * 4096)
        except OSError:
            pass
        if leave:
            size = (mnt / "filler").stat().st_size
            os.truncate(mnt / "filler", max(0, size - leave))

    try:
        yield mnt / "cache", fill
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_still_returns_the_paid_answer(endpoint, full_disk):
    cache_dir, fill = full_disk
    client = Client(KEY, endpoint=endpoint.url, cache_dir=cache_dir, progress=False)
    client.isolate(bandlimited(480, SR, seed=6), SR, "speech")  # a cache in use...
    fill()  # ...then the disk fills up
    y = bandlimited(4800, SR, seed=5)
    with pytest.warns(RuntimeWarning, match="could not write"):
        out = client.isolate(y, SR, "speech")
    assert np.allclose(out, y, atol=1e-4) and endpoint.stats["billed"] == 2


def test_a_paid_answer_that_cannot_be_cached_is_collected_again_not_paid(endpoint, full_disk):
    # room for the journal's few hundred bytes, not for the answer: the queued request stays
    # journalled, so asking again collects it from the queue instead of paying for it again
    cache_dir, fill = full_disk
    client = Client(
        KEY, endpoint=endpoint.url, cache_dir=cache_dir, transport="queue", progress=False
    )
    client.isolate(bandlimited(480, SR, seed=6), SR, "speech")
    fill(leave=3 * 4096)
    y = bandlimited(16000, SR, seed=7)
    with pytest.warns(RuntimeWarning, match="could not write"):
        first = client.isolate(y, SR, "speech")
    with pytest.warns(RuntimeWarning, match="could not write"):
        again = client.isolate(y, SR, "speech")
    assert np.array_equal(first, again)
    assert endpoint.stats["billed"] == 2 and endpoint.stats["submits"] == 2


# --- the key stays with the endpoint ------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_never_receives_the_key(tmp_path, code):
    with HostileServer() as bad, HostileServer() as other:
        bad.add("POST", PATH, redirect(other.url + "/steal", code), times=None)
        other.add("*", "*", respond(200, wav_bytes(clip())), times=None)
        client = hostile_client(bad, tmp_path)
        with pytest.raises(errors.RedirectError) as info:
            client.isolate(clip(), SR, "speech")
        assert other.requests == []  # nothing, key or audio, went there
        assert "SAMAUDIO_ENDPOINT" in str(info.value)
        assert len(bad.requests) == 1  # not retried


def test_a_same_origin_307_is_followed_with_the_key(tmp_path):
    with HostileServer() as srv:
        srv.add("POST", PATH, redirect(srv.url + "/v1/moved", 307))
        srv.add("POST", "/v1/moved", respond(200, wav_bytes(clip()), "audio/wav"))
        out = hostile_client(srv, tmp_path).isolate(clip(), SR, "speech")
        assert out.shape == clip().shape
        assert srv.requests[-1].headers.get("x-api-key") == KEY


def test_a_key_read_from_a_file_with_a_newline_is_stripped(endpoint, tmp_path):
    client = Client(KEY + "\n", endpoint=endpoint.url, cache_dir=tmp_path, progress=False)
    assert client.isolate(np.zeros(800), 16000, "speech").shape == (800,)


def test_a_key_with_inner_whitespace_is_refused_without_showing_it():
    with pytest.raises(errors.InvalidRequestError) as info:
        Client("sk-abc def-SECRET", endpoint="http://127.0.0.1:9/m")
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("code", [200, 400, 500])
def test_a_body_echoing_the_key_is_redacted_everywhere(tmp_path, code, caplog):
    with HostileServer() as bad:
        bad.add("POST", PATH, echo_key(code), times=None)
        client = hostile_client(bad, tmp_path, max_retries=1)
        with caplog.at_level(logging.DEBUG, logger="samaudio_data"):
            with pytest.raises(errors.SamAudioError) as info:
                client.isolate(clip(), SR, "speech")
        exc = info.value
        assert_no_key(exc, exc.message, repr(exc), exc.response, caplog.text)
        assert "***" in str(exc) or "***" in str(exc.response)


def test_urls_in_answers_are_downloaded_without_the_key_and_bounded(tmp_path):
    with HostileServer() as bad, HostileServer() as files:
        files.add("GET", "/a.wav", respond(200, wav_bytes(clip()), "audio/wav"))
        files.add("GET", "/big.wav", huge(300 * 1024 * 1024))
        bad.add("POST", PATH, json_doc({"audio_url": files.url + "/a.wav"}))
        bad.add("POST", PATH, json_doc({"audio_url": files.url + "/big.wav"}), times=None)
        client = hostile_client(bad, tmp_path, max_retries=0)
        assert client.isolate(clip(), SR, "speech").shape == clip().shape
        assert all("x-api-key" not in r.headers for r in files.requests)
        with pytest.raises(errors.ResponseDecodeError, match="larger than"):
            client.isolate(clip(1.1), SR, "speech")


# --- nothing hangs, nothing explodes -------------------------------------------------------


def test_a_huge_body_is_refused_unread(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", PATH, huge(300 * 1024 * 1024), times=None)
        with pytest.raises(errors.ResponseDecodeError, match="larger than"):
            hostile_client(bad, tmp_path, max_retries=0).isolate(clip(0.2), SR, "speech")


def test_a_dripping_server_is_cut_off_at_the_total_deadline(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", PATH, drip(wav_bytes(clip(0.1)), every=0.2), times=None)
        client = hostile_client(bad, tmp_path, max_retries=0, timeout=(2.0, 2.0))
        t0 = time.monotonic()
        with pytest.raises(errors.APITimeoutError):
            client.isolate(clip(0.1), SR, "speech")
        assert time.monotonic() - t0 < 15  # a per-read timeout alone would take minutes


@pytest.mark.parametrize("value", ["3600", "inf", "-5", "nan", "soon"])
def test_retry_after_is_capped_and_garbage_is_ignored(tmp_path, value):
    good = wav_bytes(clip(0.2))
    with HostileServer() as bad:
        bad.add("POST", PATH, status(429, "slow down", retry_after=value))
        bad.add("POST", PATH, respond(200, good, "audio/wav"))
        client = hostile_client(bad, tmp_path, retry_after_max=0.5, rate_window=0.5)
        t0 = time.monotonic()
        client.isolate(clip(0.2), SR, "speech")
        assert time.monotonic() - t0 < 10
        state = json.loads(next((tmp_path / "cache" / "limits").glob("*/state.json")).read_text())
        assert math.isfinite(state["backoff_until"]) and state["backoff_until"] < time.time() + 5


def test_connection_refused_on_a_local_endpoint_fails_fast_with_a_hint(tmp_path):
    client = Client(KEY, endpoint=refused_url(), cache_dir=tmp_path, progress=False)
    t0 = time.monotonic()
    with pytest.raises(errors.EndpointDownError) as info:
        client.isolate(np.zeros(800), 16000, "speech")
    assert time.monotonic() - t0 < 5
    assert "samaudio-data serve" in str(info.value) and "SAMAUDIO_ENDPOINT" in str(info.value)


# --- 429 storms slow a run down; they never kill it ----------------------------------------


def test_a_429_storm_against_a_token_bucket_does_not_kill_the_run(make_endpoint, make_client):
    ep = make_endpoint(**TOKEN_BUCKET, latency=0.05)
    client = make_client(endpoint=ep.url, max_concurrency=8, rate_window=1.0, max_retries=1)
    clips = [bandlimited(800, 16000, seed=i) for i in range(30)]
    outs = client.isolate_many(clips, 16000, "speech")
    assert len(outs) == 30 and ep.stats["billed"] == 30


def test_with_the_rate_stated_a_token_bucket_sees_few_429s(make_endpoint, make_client):
    ep = make_endpoint(**TOKEN_BUCKET, latency=0.05)
    client = make_client(
        endpoint=ep.url, max_concurrency=8, rate_window=1.0, requests_per_minute=10
    )
    client.isolate_many([bandlimited(800, 16000, seed=i) for i in range(20)], 16000, "speech")
    assert ep.stats["billed"] == 20
    assert ep.stats["by_status"].get(429, 0) <= 2


def test_concurrent_threads_share_one_pace(make_endpoint, make_client):
    """Two clients (threads) on one endpoint share the pace through the cache directory."""
    ep = make_endpoint(
        rate_limit_per_minute=6, rate_window=1.0, rate_limit_burst=1, send_retry_after="fraction"
    )
    clients = [
        make_client(endpoint=ep.url, requests_per_minute=6, rate_window=1.0) for _ in range(2)
    ]
    threads = [
        threading.Thread(
            target=c.isolate_many,
            args=([bandlimited(800, 16000, seed=10 * k + i) for i in range(5)], 16000, "speech"),
        )
        for k, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ep.stats["billed"] == 10
    assert ep.stats["by_status"].get(429, 0) <= 5  # a few at most, under load jitter


def test_a_key_pasted_into_the_description_is_refused_before_sending(client, endpoint):
    with pytest.raises(errors.InvalidRequestError, match="API key") as info:
        client.isolate(bandlimited(800, 16000), 16000, f"speech {KEY}")
    assert KEY not in str(info.value) and endpoint.stats["requests"] == 0
    assert not any(
        KEY.encode() in p.read_bytes() for p in client.cache_dir.rglob("*") if p.is_file()
    )
