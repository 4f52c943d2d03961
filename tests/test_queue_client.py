"""The queue transport through real HTTP: submit once, poll, fetch, never pay twice.

Every test runs a real LocalEndpoint on 127.0.0.1 serving the asynchronous queue and counts
what it received (``submits``, ``polls``, ``fetches``, ``billed``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from conftest import KEY
from endpoint_helpers import wait_for
from signals import bandlimited

from samaudio_data import Budget, Client, errors
from samaudio_data.testing import FakeClock, LocalEndpoint

SR = 16000
ROOT = Path(__file__).resolve().parent.parent


def clip(seed=0, n=SR // 2):
    return bandlimited(n, SR, seed=seed)


def journal_files(cache_dir):
    d = Path(cache_dir) / "journal"
    return sorted(d.glob("*.json")) if d.is_dir() else []


def sync_reference(y, description="half"):
    with (
        LocalEndpoint(keys={KEY: None}) as ep,
        Client(KEY, endpoint=ep.url, cache_dir=False, transport="sync", progress=False) as c,
    ):
        return c.isolate(y, SR, description)


@pytest.mark.parametrize("output", ["url", "base64", "data-uri"])
def test_queue_happy_path_pays_once_and_matches_sync(make_client, endpoint, tmp_path, output):
    endpoint.queue_output = output
    c = make_client(transport="queue")
    y = clip()
    out = c.isolate(y, SR, "half")
    np.testing.assert_array_equal(out, sync_reference(y))
    s = endpoint.stats
    assert (s["submits"], s["billed"], s["fetches"]) == (1, 1, 1)
    assert "call" not in s["by_step"]  # nothing went to the synchronous v1 route
    assert journal_files(tmp_path / "cache") == []  # cached, so its journal entry is gone
    again = c.separate(y, SR, "half")
    assert again.cached and endpoint.stats["submits"] == 1


def test_submit_answer_sets_remaining_credits(make_endpoint, make_client):
    ep = make_endpoint(keys={KEY: 5.0})
    c = make_client(endpoint=ep.url, transport="queue")
    c.isolate(clip(), SR, "speech")
    assert c.usage.remaining_credits == pytest.approx(5.0 - 0.062)
    assert c.usage.billed == 1 and ep.credits(KEY) == pytest.approx(5.0 - 0.062)


def test_slow_jobs_are_polled_until_done(make_client, endpoint):
    endpoint.queue_delay, endpoint.latency = 0.4, 0.6
    c = make_client(transport="queue")
    y = clip(1)
    out = c.isolate(y, SR, "half")
    np.testing.assert_array_equal(out, sync_reference(y))
    s = endpoint.stats
    assert s["submits"] == 1 and s["billed"] == 1
    assert s["polls"] >= 3  # QUEUED, PROCESSING, ..., COMPLETED


def test_timeout_while_waiting_never_pays_twice(make_endpoint, make_client, tmp_path):
    """A job slower than the read timeout: the queue keeps polling the same request; the
    synchronous call pays again on each retry (the leak the queue closes)."""
    y = clip(2)
    clock = FakeClock(ticking=True)
    ep = make_endpoint(latency=1.2, clock=clock)
    kw = dict(endpoint=ep.url, timeout=(5, 0.5), max_retries=3)
    with make_client(cache_dir=tmp_path / "q", transport="queue", **kw) as c:
        c.isolate(y, SR, "speech")
        assert c.usage.retries >= 1
    assert (ep.stats["submits"], ep.stats["billed"]) == (1, 1)
    ep.reset_stats()
    with make_client(cache_dir=tmp_path / "s", transport="sync", **kw) as c:
        with pytest.raises(errors.APITimeoutError):
            c.isolate(y, SR, "speech")
    clock.advance(1.2)  # the abandoned calls finish on the server, billed
    wait_for(
        lambda: ep.stats["requests"] == 4 and not ep.stats["in_flight"],
        "the four abandoned calls to finish on the server",
    )
    assert ep.stats["billed"] == 4


@pytest.mark.parametrize("how", ["injected", "description"])
def test_failed_job_is_typed_not_retried_not_billed(make_client, endpoint, tmp_path, how):
    if how == "injected":
        endpoint.inject("fail")
    c = make_client(transport="queue")
    with pytest.raises(errors.QueueJobFailedError, match="FAILED") as info:
        c.isolate(clip(), SR, "this will fail" if how == "description" else "speech")
    assert info.value.status_code == 422 and "model failed" in str(info.value)
    assert (endpoint.stats["submits"], endpoint.stats["billed"]) == (1, 0)
    assert journal_files(tmp_path / "cache") == []
    assert c.usage.failed == 1 and c.usage.billed == 0


@pytest.mark.parametrize(
    "step,kind,status",
    [
        ("status", "status", 503),
        ("status", "drop", None),
        ("status", "html", 502),
        ("status", "slow", None),
        ("status", "garbage", None),
        ("result", "status", 500),
        ("result", "drop", None),
        ("result", "truncate", None),
        ("result", "garbage", None),
    ],
)
def test_poll_and_fetch_faults_are_retried_without_resubmitting(
    make_client, endpoint, step, kind, status
):
    endpoint.inject(kind, step=step, times=2, status=status, delay=1.0)
    c = make_client(transport="queue", timeout=(5, 0.5))
    y = clip(3)
    out = c.isolate(y, SR, "half")
    np.testing.assert_array_equal(out, sync_reference(y))
    s = endpoint.stats
    assert (s["submits"], s["billed"]) == (1, 1)
    assert s["faults"][kind] == 2


def test_submit_fault_is_retried_and_billed_once(make_client, endpoint):
    endpoint.inject("status", step="submit", status=503)
    c = make_client(transport="queue")
    c.isolate(clip(), SR, "speech")
    s = endpoint.stats
    assert s["submits"] == 2 and s["billed"] == 1 and s["by_step"]["submit"] == {503: 1, 200: 1}


@pytest.mark.parametrize("off_status", [404, 405])
def test_auto_falls_back_to_sync_once_and_remembers(make_endpoint, make_client, off_status, caplog):
    ep = make_endpoint(keys={KEY: 1.0}, queue=False, queue_off_status=off_status)
    c = make_client(endpoint=ep.url)
    with caplog.at_level(logging.INFO, logger="samaudio_data"):
        y = clip(4)
        np.testing.assert_array_equal(c.isolate(y, SR, "half"), sync_reference(y))
        c.isolate(clip(5), SR, "speech")
        s = ep.stats
        assert caplog.text.count(f"not served on the queue (HTTP {off_status}") == 1
        assert s["by_step"] == {"call": {200: 2}} and s["billed"] == 2
        assert ep.credits(KEY) == pytest.approx(1.0 - 2 * 0.062)


def test_queue_transport_without_queue_is_an_error_not_billed(make_endpoint, make_client):
    ep = make_endpoint(queue=False)
    c = make_client(endpoint=ep.url, transport="queue")
    with pytest.raises(errors.NotFoundError, match="not billed|nothing was billed"):
        c.isolate(clip(), SR, "speech")
    assert ep.stats["billed"] == 0 and "call" not in ep.stats["by_step"]


def test_status_url_on_another_origin_is_refused_and_gets_nothing(
    make_endpoint, make_client, tmp_path
):
    """The submit was accepted (billed): a typed error says so, the request stays journalled
    and asking again neither submits again nor sends anything to the other origin."""
    other, ep = make_endpoint(), make_endpoint()
    ep.queue_url_origin = other.base_url
    c = make_client(endpoint=ep.url, transport="queue")
    for _ in range(2):
        with pytest.raises(
            errors.UncollectableRequestError,
            match="billed.*not both plain URLs on the endpoint's origin",
        ) as info:
            c.isolate(clip(), SR, "speech")
    assert c.usage.billed == 1
    assert KEY not in str(info.value) and KEY not in repr(info.value.__dict__)
    assert ep.stats["submits"] == 1 and ep.stats["billed"] == 1
    o = other.stats
    assert (o["polls"], o["fetches"], o["requests"], o["per_key"]) == (0, 0, 0, {})
    [entry] = journal_files(tmp_path / "cache")
    doc = json.loads(entry.read_text())  # the foreign URLs are never followed again
    assert (doc["status_url"], doc["response_url"]) == ("", "") and doc["unfollowable"]


def test_interrupted_wait_is_collected_by_the_next_client(
    make_endpoint, make_client, leave_paid, tmp_path, caplog
):
    """A client gives up while the job runs (read timeout, no retries left); the next client
    with the same cache finds the journalled request and collects it: paid once."""
    y = clip(6)
    ep = make_endpoint(latency=1.0)
    leave_paid(ep, y, SR)
    [entry] = journal_files(tmp_path / "cache")
    text = entry.read_text()
    assert KEY not in text and "status_url" in text and "request_id" in text
    with caplog.at_level(logging.INFO, logger="samaudio_data"):
        out = make_client(endpoint=ep.url, transport="queue").isolate(y, SR, "half")
    np.testing.assert_array_equal(out, sync_reference(y))
    assert (ep.stats["submits"], ep.stats["billed"]) == (1, 1)
    assert "instead of sending it again" in caplog.text
    assert journal_files(tmp_path / "cache") == []


def test_expired_result_is_sent_again(make_endpoint, make_client, leave_paid, tmp_path, caplog):
    y = clip(7)
    clock = FakeClock(ticking=True)
    ep = make_endpoint(latency=0.5, queue_retention=0.1, clock=clock)
    leave_paid(ep, y, SR, age=60)  # a minute ago: past the status store's lag grace
    assert len(journal_files(tmp_path / "cache")) == 1
    clock.advance(0.6)  # finished and past the server's retention
    requests.get(f"{ep.base_url}/v2/requests/any/status", headers={"x-api-key": KEY})
    ep.queue_retention = 3600  # the first job is gone; the second one stays
    with caplog.at_level(logging.WARNING, logger="samaudio_data"):
        out = make_client(endpoint=ep.url, transport="queue").isolate(y, SR, "half")
    np.testing.assert_array_equal(out, sync_reference(y))
    assert ep.stats["submits"] == 2 and "expired" in caplog.text
    assert journal_files(tmp_path / "cache") == []


def test_journal_entry_past_the_client_retention_is_not_collected(
    make_endpoint, make_client, leave_paid, tmp_path
):
    y = clip(8)
    ep = make_endpoint(latency=0.6)
    leave_paid(ep, y, SR, "speech")
    [entry] = journal_files(tmp_path / "cache")
    wait_for(
        lambda: time.time() - entry.stat().st_mtime > 0.1,
        "the journal entry to be older than the next client's retention",
    )
    make_client(endpoint=ep.url, transport="queue", queue_retention=0.1).isolate(y, SR, "speech")
    assert ep.stats["submits"] == 2


def test_max_cost_refuses_when_provider_credits_are_below_the_price(make_endpoint, make_client):
    ep = make_endpoint(keys={KEY: 0.1})
    c = make_client(endpoint=ep.url)
    c.separate(clip(0), SR, "speech", budget=Budget(10.0))
    assert c.usage.remaining_credits == pytest.approx(0.038)
    with pytest.raises(errors.BudgetExceededError, match="credits left"):
        c.separate(clip(1), SR, "speech", budget=Budget(10.0))
    assert ep.stats["requests"] == 1  # the refused call was never sent


_WORKER = """
import sys
import numpy as np
from samaudio_data import Client
from signals import bandlimited
url, cache, transport = sys.argv[1:4]
clips = [bandlimited(8000, 16000, seed=i) for i in range(10)]
with Client(%r, endpoint=url, cache_dir=cache, transport=transport, max_concurrency=4,
            requests_per_minute=6000, progress=False) as c:
    outs = c.isolate_many(clips, 16000, "half")
print("done", len(outs))
"""


def test_kill_9_then_rerun_pays_exactly_once_per_piece(tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
    )
    code = _WORKER % KEY
    cache = tmp_path / "cache"
    clock = FakeClock()  # jobs run 1 s of this clock: they finish when the test says
    with LocalEndpoint(keys={KEY: None}, latency=1.0, clock=clock) as ep:
        args = [sys.executable, "-c", code, ep.url, str(cache), "queue"]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def settled(submits, fetches):  # every accepted request is journaled or collected
            s = ep.stats
            return (s["submits"], s["fetches"]) == (submits, fetches) and len(
                journal_files(cache)
            ) == submits - fetches

        # 4 in flight at a time; the first wave finishes, the second waits: kill then (a
        # kill between the provider accepting a submit and its answer arriving would still
        # pay twice: no API lets a request be found again without its id)
        wait_for(lambda: settled(4, 0), "the first four jobs to be submitted and journaled")
        clock.advance(1.0)
        wait_for(lambda: settled(8, 4), "the second wave to be submitted and journaled")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        entries = journal_files(cache)
        assert ep.stats["submits"] == 8 and len(entries) == 4  # killed, paid requests waiting
        assert all(KEY not in e.read_text() for e in entries)
        clock.advance(1.0)  # the second wave finishes on the server
        ep.latency = 0  # and what the rerun sends finishes at once
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "done 10" in done.stdout
        s = ep.stats
        assert s["submits"] == 10 and s["billed"] == 10  # every piece paid exactly once
        assert journal_files(cache) == []


def test_budget_holds_one_price_per_paid_request_and_refunds_failed_jobs(
    make_endpoint, make_client
):
    ep = make_endpoint(latency=1.0)
    c = make_client(endpoint=ep.url, transport="queue", timeout=(5, 0.4), max_retries=4)
    budget = Budget(0.1)
    ep.inject("fail")
    with pytest.raises(errors.QueueJobFailedError):
        c.separate(clip(0), SR, "speech", budget=budget)
    assert budget.spent == 0  # a FAILED job is not billed: its reservation is returned
    c.separate(clip(1), SR, "speech", budget=budget)  # polls time out twice, then done
    assert c.usage.retries >= 1 and budget.spent == pytest.approx(0.062)
    assert (ep.stats["submits"], ep.stats["billed"]) == (2, 1)
    with pytest.raises(errors.BudgetExceededError):
        c.separate(clip(2), SR, "speech", budget=budget)


def test_a_429_on_a_poll_backs_off_and_collects_without_resubmitting(make_client, endpoint):
    endpoint.inject("status", step="status", status=429, retry_after=1)
    c = make_client(transport="queue", retry_after_max=0.3)
    t0 = time.monotonic()
    c.isolate(clip(), SR, "speech")
    assert time.monotonic() - t0 >= 0.25  # the Retry-After (capped) was waited
    assert (endpoint.stats["submits"], endpoint.stats["billed"]) == (1, 1)
    assert c.usage.rate_limited == 1
