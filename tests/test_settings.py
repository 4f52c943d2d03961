"""A client's settings: grouped, read-only, copied with with_options; one pool; estimates."""

import pickle
import threading

import numpy as np
import pytest
from signals import bandlimited

from samaudio_data import Chunking, Client, RateLimits, Retries, Upload, errors


def test_settings_are_read_only_and_say_what_to_do(client):
    with pytest.raises(errors.ReadOnlySettingError, match=r"with_options\(upload_format="):
        client.upload_format = "flac"
    with pytest.raises(AttributeError):  # also an AttributeError, as a frozen object's
        client.chunking = Chunking(chunk_seconds=5)
    assert client.upload_format == "wav" and client.chunk_seconds == 20.0


def test_with_options_sends_the_changed_settings_and_shares_the_rest(client, endpoint):
    flac = client.with_options(upload_format="flac", reranking_candidates=2)
    y = np.sin(np.arange(8000) / 5.0) * 0.1
    flac.isolate(y, 16000, "speech")
    assert endpoint.stats["last_upload_format"] == "FLAC"
    assert endpoint.stats["last_request"]["reranking_candidates"] == 2
    client.isolate(y, 16000, "speech")  # another cache key: paid again, as WAV
    assert endpoint.stats["last_upload_format"] == "WAV"
    assert endpoint.stats["billed"] == 2
    assert client.usage.billed == flac.usage.billed == 2  # one usage, one account
    assert client.limits is flac.limits
    flac.close()  # the copy closes only what it made
    client.isolate(y * 0.5, 16000, "speech")
    assert client.upload_format == "wav" and flac.upload_format == "flac"


def test_groups_and_plain_keywords_are_the_same_settings():
    plain = Client(
        "k",
        cache_dir=False,
        max_retries=1,
        requests_per_minute="free",
        chunk_seconds=8,
        upload_format="flac",
    )
    grouped = Client(
        "k",
        cache_dir=False,
        retries=Retries(max_retries=1),
        rate_limits=RateLimits(requests_per_minute="free"),
        chunking=Chunking(chunk_seconds=8),
        upload=Upload(upload_format="flac"),
    )
    assert plain.options == grouped.options
    assert pickle.dumps(plain) == pickle.dumps(grouped)
    with pytest.raises(errors.InvalidRequestError, match="both as a keyword and in retries="):
        Client("k", cache_dir=False, max_retries=2, retries=Retries())
    with pytest.raises(errors.InvalidRequestError, match="upload_format must be one of"):
        Client("k", cache_dir=False).with_options(upload_format="ogg")


def test_the_pickled_settings_are_those_fingerprints_always_hashed():
    """datasets fingerprints hash this state: its keys, order and values must not change."""
    c = Client("sk-secret-0123", endpoint="http://127.0.0.1:9/v1/m", cache_dir=False)
    state = c.__getstate__()
    assert list(state) == [
        "endpoint",
        "timeout",
        "max_retries",
        "max_concurrency",
        "requests_per_minute",
        "rate_window",
        "retry_after_max",
        "backoff_base",
        "backoff_max",
        "price_per_call",
        "cache_dir",
        "cache_namespace",
        "chunk_seconds",
        "overlap_seconds",
        "max_seconds",
        "defaults",
        "channels",
        "audio_encoding",
        "upload_format",
        "progress",
        "transport",
        "queue_retention",
        "version",
    ]
    assert state["timeout"] == (10.0, 300.0) and state["defaults"] == {
        "output_format": "wav",
        "reranking_candidates": 1,
    }
    assert "sk-secret" not in repr(state) and b"sk-secret" not in pickle.dumps(c)
    assert pickle.loads(pickle.dumps(c)).options == c.options


def test_estimate_refuses_a_short_list_of_rates():
    c = Client("k", endpoint="http://127.0.0.1:9/v1/m", cache_dir=False)
    with pytest.raises(errors.InvalidRequestError, match="3 clips but 2 sample rates"):
        c.estimate([np.zeros(800)] * 3, [8000, 8000], "speech")


def test_long_clips_of_many_use_one_pool_of_max_concurrency_threads(make_client, endpoint):
    """Each clip's thread waits for its chunks on the same pool: nothing starves."""
    client = make_client(max_concurrency=2, chunk_seconds=1, overlap_seconds=0.2, rate_window=60)
    clips = [bandlimited(3 * 8000, 8000, seed=seed) for seed in range(4)]
    est = client.estimate(clips, 8000, "half")
    before = set(threading.enumerate())
    outs = client.isolate_many(clips, 8000, "half")
    for y, out in zip(clips, outs, strict=True):
        np.testing.assert_allclose(out[400:-400], y[400:-400] / 2, atol=4e-3)
    assert est.calls == endpoint.stats["billed"] >= 4 * 3  # every chunk its own call
    names = [t.name for t in set(threading.enumerate()) - before]
    assert len([n for n in names if n.startswith("samaudio")]) <= 2, names


def test_work_waiting_on_its_own_pool_never_starves_it(make_client, endpoint, tmp_path):
    """With one thread, a map whose tasks isolate files (windows on the same pool) ends."""
    from samaudio_data import audio

    client = make_client(max_concurrency=1, chunk_seconds=1, overlap_seconds=0.2)
    paths = []
    for seed in range(2):
        paths.append(tmp_path / f"talk{seed}.wav")
        with audio.BlockWriter(paths[-1], 8000, channels=1) as w:
            w.write(bandlimited(3 * 8000, 8000, seed=seed))
    expected = client.estimate_file(paths, "half").calls  # every window, nothing cached
    done = []
    runner = threading.Thread(
        daemon=True,
        target=lambda: done.append(client.map(lambda p: client.isolate_file(p, "half"), paths)),
    )
    runner.start()
    runner.join(120)
    assert done, "the map did not end: a task waiting on its own pool starved it"
    assert [p.name for p in done[0]] == ["talk0.isolated-half.wav", "talk1.isolated-half.wav"]
    assert endpoint.stats["billed"] == expected >= 2 * 3
    other = client.with_options(api_key="another-key")  # another account: own usage
    assert other.usage.billed == 0 and client.usage.billed > 0
