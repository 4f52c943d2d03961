"""Running at the account's limit: the rate stated once drives pace and concurrency; with no
rate stated the client learns it from 429s; batch boundaries never idle the account."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import KEY, TOKEN_BUCKET
from datasets import Dataset
from signals import bandlimited

from samaudio_data import Client, isolate, prefetch


def clips(n, seed=0):
    return [bandlimited(800, 16000, seed=seed + i) for i in range(n)]


def dataset(n, seed, *more_rows):
    rows = [{"audio": {"array": y, "sampling_rate": 16000}} for y in clips(n, seed)]
    return Dataset.from_list(rows + list(more_rows))


def test_with_only_the_rate_stated_no_429_and_concurrency_follows(make_endpoint, make_client):
    # 20 requests a second, as 40 per 2 s windows (a sliding window)
    ep = make_endpoint(rate_limit_per_minute=40, rate_window=2.0, latency=0.3)
    client = make_client(endpoint=ep.url, requests_per_minute=40, rate_window=2.0, transport="sync")
    client.isolate_many(clips(40), 16000, "speech")
    assert ep.stats["billed"] == 40
    assert 429 not in ep.stats["by_status"]
    # Little's law: 20/s x 0.3 s needs ~6 in flight; nobody configured concurrency
    assert ep.stats["max_in_flight"] >= 3
    usage = client.usage
    assert usage.rate_limit == 40 * 30 and usage.achieved_rate is not None


def test_requests_arrive_evenly_spaced_against_a_token_bucket(make_client):
    # a bucket of one token refilled 5 times a second answers 429 to any request arriving
    # less than 200 ms after the previous one; the client's slack is 4 % (8 ms). Turns are
    # granted a quarter interval early: the gate each request passes as its headers leave
    # keeps the exact spacing, measured from when the previous one left. The endpoint runs
    # in its own process, as a provider does (here it would stamp arrivals with this
    # process's scheduling jitter).
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "samaudio_data.cli",
            "serve",
            "--port",
            "0",
            "--key",
            KEY,
            "--rpm",
            "10",
            "--rate-window",
            "2",
            "--burst",
            "1",
            "--latency",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        client = make_client(endpoint=url, requests_per_minute=10, rate_window=2.0)
        client.isolate_many(clips(32), 16000, "speech")
        usage = client.usage  # requests per minute: 10 per 2 s = 300
    finally:
        server.terminate()
        server.wait(10)
    assert usage.billed == 32 and usage.rate_limited == 0
    assert usage.rate_limit == 300 and 250 < usage.achieved_rate <= 300


def test_the_plan_name_states_the_rate(monkeypatch):
    monkeypatch.setenv("SAMAUDIO_RATE_LIMIT", "free")
    assert Client("k", cache_dir=False).requests_per_minute == 5
    assert Client("k", cache_dir=False, requests_per_minute="paid").requests_per_minute == 50


def test_with_no_rate_stated_it_learns_the_limit_and_finishes(make_endpoint, make_client):
    ep = make_endpoint(**TOKEN_BUCKET, latency=0.1)
    client = make_client(endpoint=ep.url, rate_window=1.0, max_concurrency=8, max_retries=0)
    client.isolate_many(clips(40, seed=100), 16000, "speech")
    assert ep.stats["billed"] == 40  # nothing failed, none paid twice
    learned = client.limits.snapshot()["rate_per_minute"]
    assert learned is not None and 300 <= learned <= 900  # ~10/s, i.e. 600 per minute
    assert ep.stats["by_status"].get(429, 0) < 20


def test_small_batches_get_a_one_time_hint_at_the_users_line(make_endpoint, make_client):
    ds = dataset(24, seed=200)
    ep = make_endpoint(latency=0.1)  # ~0.3 s observed with the overhead
    client = make_client(endpoint=ep.url, requests_per_minute=300, rate_window=60.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.map(
            isolate("speech", client=client), batched=True, batch_size=3, load_from_cache_file=False
        )
    hints = [w for w in caught if "idle" in str(w.message)]
    assert len(hints) == 1 and "batch_size >=" in str(hints[0].message)
    assert hints[0].filename == __file__  # the user's ds.map line, not datasets'
    best = int(str(hints[0].message).split("batch_size >= ")[1].split()[0])
    assert 3 < best < 24  # 9 x latency x rate, a batch that exists
    assert ep.stats["billed"] == 24


def test_no_hint_when_the_dataset_is_smaller_than_the_batch_it_would_ask_for(
    make_endpoint, make_client
):
    ep = make_endpoint(latency=0.3)  # 9 x 0.3 s x 10/s: batches of 27
    client = make_client(endpoint=ep.url, requests_per_minute=600, rate_window=60.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset(8, seed=210).map(
            isolate("speech", client=client), batched=True, batch_size=2, load_from_cache_file=False
        )
    assert not [w for w in caught if "idle" in str(w.message)]
    assert ep.stats["billed"] == 8


def test_prefetch_fills_the_cache_and_the_map_pays_nothing(make_endpoint, make_client):
    ds = dataset(10, 300, {"audio": None})
    ep = make_endpoint(latency=0.05)
    client = make_client(endpoint=ep.url)
    fn = isolate("speech", client=client, on_error="skip")
    report = prefetch(ds, fn, progress=False)
    assert (report.rows, report.paid, report.cached) == (11, 10, 0)
    assert report.failed and report.failed[0][0] == 10
    billed = ep.stats["billed"]
    out = ds.map(fn, batched=True, batch_size=4)
    assert ep.stats["billed"] == billed == 10
    assert all(out["isolated_cached"][:10]) and out["isolated_error"][10]
    assert prefetch(ds, fn, progress=False).cached == 10


def test_prefetch_stops_everything_on_406(make_endpoint, make_client):
    from samaudio_data import errors

    ep = make_endpoint(keys={KEY: 0.062 * 3})
    client = make_client(endpoint=ep.url, max_concurrency=2)
    with pytest.raises(errors.InsufficientCreditsError, match="Stopped every request"):
        prefetch(dataset(8, seed=400), isolate("speech", client=client), progress=False)
    assert ep.stats["billed"] == 3
    assert np.isfinite(client.usage.cost)


def test_a_rate_stated_too_high_slows_down_and_pays_once(make_endpoint, make_client):
    # the account allows 6 a second, the client is told 12; every answer, 429s included,
    # takes 80 ms to come back, so a 429 may arrive while the next request is between its
    # turn and the wire: that one waits again, and is neither sent nor counted
    ep = make_endpoint(
        rate_limit_per_minute=6, rate_window=1.0, rate_limit_burst=1, send_retry_after="fraction"
    )
    ep.inject("slow", times=1000, delay=0.08, step="call")
    client = make_client(endpoint=ep.url, requests_per_minute=12, rate_window=1.0, transport="sync")
    client.isolate_many(clips(24, seed=300), 16000, "speech")
    usage = client.usage
    assert ep.stats["billed"] == usage.billed == 24  # each paid once
    assert ep.stats["by_status"].get(429, 0) == usage.rate_limited > 0
    assert usage.requests == ep.stats["requests"] == 24 + usage.rate_limited
