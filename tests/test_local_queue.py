"""The local endpoint's asynchronous queue (/v2), over real HTTP with `requests`."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import requests
from conftest import cut_short
from endpoint_helpers import KEY, SR, TOL, body_for, get, post, wait_until_done
from signals import noise

from samaudio_data.audio import decode_audio
from samaudio_data.testing import FRAME, FakeClock, LocalEndpoint

PRICE = 0.062


def submit(ep, body, key=KEY, timeout=10):
    return post(ep, body, key=key, timeout=timeout, url=ep.queue_url)


def output_audio(doc, form):
    """The audio bytes of a COMPLETED result's ``output``, whatever its form."""
    out = doc["output"]
    if form == "url":
        r = requests.get(out, timeout=10)  # a file URL: no key needed
        assert r.status_code == 200 and r.headers["Content-Type"] == "audio/wav"
        return r.content
    if form == "data-uri":
        head, payload = out.split(",", 1)
        assert head == "data:audio/wav;base64"
        return base64.b64decode(payload)
    return base64.b64decode(out)


@pytest.mark.parametrize("form", ["url", "base64", "data-uri"])
def test_happy_path_submit_poll_fetch(form):
    y = noise(SR + 100)
    with LocalEndpoint(keys={KEY: 1.0}, queue_output=form) as ep:
        r = submit(ep, body_for(y))
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
        assert r.headers["x-remaining-credits"] == "0.938"  # billed once, when accepted
        doc = r.json()
        rid = doc["request_id"]
        assert doc["status"] == "COMPLETED"  # latency 0: done at once
        assert doc["status_url"] == f"{ep.base_url}/v2/requests/{rid}/status"
        assert doc["response_url"] == f"{ep.base_url}/v2/requests/{rid}"
        assert doc["poll_url"] == f"{ep.base_url}/v1/requests/{rid}"
        states, last = wait_until_done(doc["status_url"])
        assert states == ["COMPLETED"] and last.status_code == 200
        assert last.json() == {"request_id": rid, "status": "COMPLETED"}
        res = get(doc["response_url"])
        assert res.status_code == 200
        result = res.json()
        assert result["status"] == "COMPLETED" and result["error"] is None
        assert set(result["metrics"]) == {"queue_time", "inference_time"}
        out, sr = decode_audio(output_audio(result, form))
        assert sr == SR and out.shape == (1, -(-y.size // FRAME) * FRAME)
        assert np.max(np.abs(out[0, : y.size] - y)) <= TOL
        assert get(doc["poll_url"]).json() == result  # the SDK's poll_url is the result too
        stats = ep.stats
        assert (stats["submits"], stats["polls"], stats["fetches"]) == (1, 1, 2)
        assert stats["billed"] == 1 and stats["requests"] == 1
        assert stats["by_step"] == {"submit": {200: 1}, "status": {200: 1}, "result": {200: 2}}
        assert stats["jobs"] == {"COMPLETED": 1}
        assert ep.credits(KEY) == pytest.approx(1.0 - PRICE)


def test_slow_job_goes_queued_processing_completed():
    clock = FakeClock()
    with LocalEndpoint(keys={KEY: None}, queue_delay=0.6, latency=0.6, clock=clock) as ep:
        doc = submit(ep, body_for(noise(FRAME), description="half")).json()
        assert doc["status"] == "QUEUED"
        early = get(doc["response_url"])
        assert early.status_code == 202 and early.json() == {
            "request_id": doc["request_id"],
            "status": "QUEUED",
        }
        states = []
        for _ in range(3):
            states.append(get(doc["status_url"]).json()["status"])
            clock.advance(0.6)
        assert states == ["QUEUED", "PROCESSING", "COMPLETED"]
        result = get(doc["response_url"]).json()
        assert result["metrics"] == {"queue_time": 0.6, "inference_time": 0.6}
        get(doc["response_url"])  # fetched again: collected once, 0.6 s after it finished
        assert ep.stats["billed"] == 1 and ep.stats["collect_lags"] == [pytest.approx(0.6)]
        assert ep.stats["seen_lags"] == [0.0]  # the third poll came as it finished


def test_jobs_run_concurrently_in_the_background():
    clock = FakeClock()
    with LocalEndpoint(keys={KEY: None}, latency=2.0, clock=clock) as ep:
        docs = [submit(ep, body_for(noise(FRAME, seed=i))).json() for i in range(5)]
        assert ep.stats["jobs"] == {"PROCESSING": 5}
        clock.advance(2.0)  # all five at once: they ran side by side
        for doc in docs:
            assert wait_until_done(doc["status_url"])[0] == ["COMPLETED"]
        assert ep.stats["jobs"] == {"COMPLETED": 5} and ep.stats["billed"] == 5


def test_failed_job_is_422_with_its_error_and_unbilled():
    with LocalEndpoint(keys={KEY: 1.0}, latency=0.2) as ep:
        r = submit(ep, body_for(noise(FRAME), description="please fail"))
        assert r.status_code == 200 and "x-remaining-credits" not in r.headers
        doc = r.json()
        states, last = wait_until_done(doc["status_url"])
        assert states[-1] == "FAILED" and set(states) <= {"PROCESSING", "FAILED"}
        assert last.status_code == 422
        body = last.json()
        assert body["status"] == "FAILED" and "fail" in body["error"]
        res = get(doc["response_url"])
        assert res.status_code == 422 and res.json()["status"] == "FAILED"
        assert ep.stats["billed"] == 0 and ep.credits(KEY) == 1.0
        # the same input fails on v1 too: a 500, unbilled
        v1 = post(ep, body_for(noise(FRAME), description="please fail"))
        assert v1.status_code == 500 and "fail" in v1.json()["error"]
        assert ep.stats["billed"] == 0


def test_injected_fail_fails_the_next_submitted_job_only():
    with LocalEndpoint(keys={KEY: None}) as ep:
        ep.inject("fail")
        first = submit(ep, body_for(noise(FRAME))).json()
        second = submit(ep, body_for(noise(FRAME))).json()
        assert get(first["status_url"]).status_code == 422
        assert get(second["status_url"]).json()["status"] == "COMPLETED"
        assert ep.stats["faults"] == {"fail": 1} and ep.stats["billed"] == 1


def test_expired_and_unknown_ids_are_404():
    clock = FakeClock()
    with LocalEndpoint(keys={KEY: None}, queue_retention=1.0, clock=clock) as ep:
        doc = submit(ep, body_for(noise(FRAME))).json()
        url = get(doc["response_url"]).json()["output"]
        assert requests.get(url, timeout=5).status_code == 200
        clock.advance(1.0)  # kept 1 s after it finished...
        assert get(doc["status_url"]).json()["status"] == "COMPLETED"
        clock.advance(0.01)  # ...and not a moment more
        for target in (doc["status_url"], doc["response_url"]):
            r = get(target)
            assert r.status_code == 404 and "expired" in r.json()["error"]
        assert requests.get(url, timeout=5).status_code == 404  # its file went with it
        r = get(f"{ep.base_url}/v2/requests/00000000-0000-0000-0000-000000000000/status")
        assert r.status_code == 404 and "not found" in r.json()["error"]
        assert ep.stats["jobs"] == {} and ep.stats["billed"] == 1


@pytest.mark.parametrize("status", [404, 405])
def test_queue_off_answers_like_a_model_not_on_the_queue(status):
    with LocalEndpoint(keys={KEY: 1.0}, queue=False, queue_off_status=status) as ep:
        r = submit(ep, body_for(noise(FRAME)))
        assert r.status_code == status and "/v1/sam-audio-large" in r.json()["error"]
        assert get(f"{ep.base_url}/v2/requests/abc/status").status_code == status
        assert ep.stats["billed"] == 0 and ep.credits(KEY) == 1.0
        assert post(ep, body_for(noise(FRAME))).status_code == 200  # v1 still served


def test_faults_on_each_step_are_served_and_never_billed():
    with LocalEndpoint(keys={KEY: 1.0}) as ep:
        ep.inject("status", status=503, step="submit", retry_after=2)
        r = submit(ep, body_for(noise(FRAME)))
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        doc = submit(ep, body_for(noise(FRAME))).json()

        ep.inject("drop", step="status")
        ep.inject("html", status=502, step="status")
        with pytest.raises(requests.ConnectionError):
            get(doc["status_url"])
        assert get(doc["status_url"]).status_code == 502
        assert get(doc["status_url"]).json()["status"] == "COMPLETED"

        ep.inject("truncate", step="result")
        ep.inject("garbage", step="result")
        cut_short(lambda: get(doc["response_url"]))
        garbage = get(doc["response_url"])
        assert garbage.status_code == 200 and garbage.text.startswith("<html>")
        assert get(doc["response_url"]).json()["status"] == "COMPLETED"

        stats = ep.stats
        assert stats["submits"] == 2 and stats["billed"] == 1
        assert ep.credits(KEY) == pytest.approx(1.0 - PRICE)
        assert stats["faults"] == {"status": 1, "drop": 1, "html": 1, "truncate": 1, "garbage": 1}


def test_default_fault_step_is_the_next_model_post_v1_or_submit():
    with LocalEndpoint(keys={KEY: None}) as ep:
        ep.inject("status", status=500, times=2)
        assert submit(ep, body_for(noise(FRAME))).status_code == 500
        assert post(ep, body_for(noise(FRAME))).status_code == 500
        ep.inject("status", status=500, step="call")
        assert submit(ep, body_for(noise(FRAME))).status_code == 200  # not a v1 call
        assert post(ep, body_for(noise(FRAME))).status_code == 500


def test_slow_poll_times_out_the_client():
    with LocalEndpoint(keys={KEY: None}) as ep:
        doc = submit(ep, body_for(noise(FRAME))).json()
        ep.inject("slow", delay=3.0, step="status")
        with pytest.raises(requests.Timeout):
            get(doc["status_url"], timeout=0.3)


def test_status_urls_can_point_to_another_origin():
    with LocalEndpoint(keys={KEY: None}, queue_url_origin="http://127.0.0.1:9") as ep:
        doc = submit(ep, body_for(noise(FRAME))).json()
        rid = doc["request_id"]
        assert doc["status_url"] == f"http://127.0.0.1:9/v2/requests/{rid}/status"
        assert doc["response_url"] == f"http://127.0.0.1:9/v2/requests/{rid}"
        # the job itself is still served here
        assert get(f"{ep.base_url}/v2/requests/{rid}/status").json()["status"] == "COMPLETED"


def test_polls_need_the_submitting_key_and_are_not_rate_limited():
    with LocalEndpoint(
        keys={KEY: None, "other": None},
        forbidden_keys=["banned"],
        rate_limit_per_minute=1,
        rate_window=60,
    ) as ep:
        doc = submit(ep, body_for(noise(FRAME))).json()
        assert get(doc["status_url"], key=None).status_code == 401
        assert get(doc["status_url"], key="wrong").status_code == 401
        assert get(doc["status_url"], key="banned").status_code == 403
        assert get(doc["status_url"], key="other").status_code == 404
        assert [get(doc["status_url"]).status_code for _ in range(5)] == [200] * 5
        assert get(doc["response_url"]).status_code == 200
        r = submit(ep, body_for(noise(FRAME)))
        assert r.status_code == 429 and "Retry-After" in r.headers


def test_submit_validates_and_bills_like_v1():
    with LocalEndpoint(keys={KEY: 0.1}, max_audio_seconds=0.5) as ep:
        r = submit(ep, {"audio": "%%%", "description": "x"})
        assert r.status_code == 400 and "base64" in r.json()["error"]
        r = submit(ep, body_for(noise(SR)))
        assert r.status_code == 400 and "at most 0.5 s" in r.json()["error"]
        assert submit(ep, body_for(noise(FRAME))).status_code == 200
        r = submit(ep, body_for(noise(FRAME)))
        assert r.status_code == 406 and "Insufficient credits" in r.json()["error"]
        assert submit(ep, body_for(noise(FRAME)), key="nope").status_code == 401
        stats = ep.stats
        assert stats["billed"] == 1 and stats["by_status"] == {400: 2, 200: 1, 406: 1, 401: 1}
        assert stats["descriptions"] == [
            "x",
            "a man speaking",
            "a man speaking",
            "a man speaking",
            "a man speaking",
        ]


def test_wrong_methods_on_queue_routes_are_405():
    with LocalEndpoint(keys={KEY: None}) as ep:
        assert requests.get(ep.queue_url, timeout=5).status_code == 405
        r = requests.post(ep.base_url + "/v2/requests/abc/status", json={}, timeout=5)
        assert r.status_code == 405 and r.headers["Allow"] == "GET"
        assert requests.get(ep.base_url + "/v2/requests/a/b/c", timeout=5).status_code == 404


def test_queue_max_jobs_drops_the_oldest_finished_job():
    with LocalEndpoint(keys={KEY: None}, queue_max_jobs=2) as ep:
        docs = [submit(ep, body_for(noise(FRAME, seed=i))).json() for i in range(3)]
        r = get(docs[0]["status_url"])
        assert r.status_code == 404 and "expired" in r.json()["error"]
        assert [get(d["status_url"]).status_code for d in docs[1:]] == [200, 200]
        assert ep.stats["jobs"] == {"COMPLETED": 2} and ep.stats["billed"] == 3
