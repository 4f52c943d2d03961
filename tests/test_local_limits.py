"""The local endpoint's limits: rate-limit shapes, Retry-After forms, body and duration limits."""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timezone

import pytest
import requests
from endpoint_helpers import KEY, SR, body_for, post
from signals import noise

from samaudio_data.testing import FRAME, FakeClock, LocalEndpoint

SMALL = body_for(noise(FRAME))


def test_token_bucket_refuses_a_burst_the_sliding_window_allows():
    # 2 requests per second either way; the window lets 2 leave at once, the bucket 1
    with LocalEndpoint(keys={KEY: None}, rate_limit_per_minute=2, rate_window=1.0) as ep:
        assert [post(ep, SMALL).status_code for _ in range(2)] == [200] * 2
    clock = FakeClock()
    with LocalEndpoint(
        keys={KEY: None}, rate_limit_per_minute=2, rate_window=1.0, rate_limit_burst=1, clock=clock
    ) as ep:
        assert post(ep, SMALL).status_code == 200
        r = post(ep, SMALL)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "burst 1" in r.json()["error"]
        clock.advance(0.49)  # a token every 0.5 s: not yet
        assert post(ep, SMALL).status_code == 429
        clock.advance(0.01)
        assert post(ep, SMALL).status_code == 200
        assert ep.stats["billed"] == 2 and ep.stats["by_status"] == {200: 2, 429: 2}


def test_token_bucket_burst_then_steady_rate():
    clock = FakeClock()
    with LocalEndpoint(
        keys={KEY: None, "other": None},
        rate_limit_per_minute=3,
        rate_window=1.0,
        rate_limit_burst=3,
        clock=clock,
    ) as ep:
        codes = [post(ep, SMALL).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert post(ep, SMALL, key="other").status_code == 200  # buckets are per key
        clock.advance(0.7)  # 3 tokens/s: two more, not three
        assert [post(ep, SMALL).status_code for _ in range(3)] == [200, 200, 429]
        clock.advance(10.0)  # a full bucket holds 3, however long the wait
        assert [post(ep, SMALL).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_fractional_retry_after_from_the_bucket():
    with LocalEndpoint(
        keys={KEY: None},
        rate_limit_per_minute=2,
        rate_window=1.0,
        rate_limit_burst=1,
        send_retry_after="fraction",
    ) as ep:
        post(ep, SMALL)
        r = post(ep, SMALL)
        assert r.status_code == 429 and "." in r.headers["Retry-After"]
        assert 0 < float(r.headers["Retry-After"]) <= 0.5


@pytest.mark.parametrize(
    "setting, expected",
    [
        (3600, "3600"),
        ("inf", "inf"),
        (-5, "-5"),
        ("nan", "nan"),
        ("soon", "soon"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"),
        (2.5, "2.5"),
    ],
)
def test_hostile_retry_after_values_are_sent_verbatim(setting, expected):
    with LocalEndpoint(keys={KEY: None}, rate_limit_per_minute=1, send_retry_after=setting) as ep:
        post(ep, SMALL)
        r = post(ep, SMALL)
        assert r.status_code == 429 and r.headers["Retry-After"] == expected


def test_retry_after_as_an_http_date():
    with LocalEndpoint(
        keys={KEY: None}, rate_limit_per_minute=1, rate_window=30, send_retry_after="http-date"
    ) as ep:
        post(ep, SMALL)
        r = post(ep, SMALL)
    when = email.utils.parsedate_to_datetime(r.headers["Retry-After"])
    ahead = (when - datetime.now(timezone.utc)).total_seconds()
    assert 25 <= ahead <= 32


@pytest.mark.parametrize("route", ["v1", "v2"])
def test_max_body_bytes_is_a_413_the_client_can_read(route):
    big, small = body_for(noise(SR)), body_for(noise(FRAME))
    limit = len(json.dumps(small).encode()) + 10
    with LocalEndpoint(keys={KEY: 1.0}, max_body_bytes=limit) as ep:
        url = ep.url if route == "v1" else ep.queue_url
        with requests.Session() as s:
            r = s.post(url, json=big, headers={"x-api-key": KEY}, timeout=10)
            assert r.status_code == 413
            error = r.json()["error"]
            assert f"at most {limit} bytes" in error and str(len(json.dumps(big))) in error
            ok = s.post(url, json=small, headers={"x-api-key": KEY}, timeout=10)
            assert ok.status_code == 200
        stats = ep.stats
        assert stats["by_status"] == {413: 1, 200: 1} and stats["billed"] == 1
        assert stats["request_bytes"] == [len(json.dumps(big)), len(json.dumps(small))]
        assert ep.credits(KEY) == pytest.approx(1.0 - 0.062)


def test_max_body_bytes_applies_before_the_key_is_checked():
    with LocalEndpoint(keys={KEY: None}, max_body_bytes=100) as ep:
        assert post(ep, SMALL, key=None).status_code == 413
        assert post(ep, {"audio": "x"}, key=None).status_code == 401


def test_max_audio_seconds_on_v1_and_v2():
    with LocalEndpoint(keys={KEY: None}, max_audio_seconds=1.0) as ep:
        for url in (ep.url, ep.queue_url):
            r = post(ep, body_for(noise(SR + 1)), url=url)
            assert r.status_code == 400 and "at most 1 s" in r.json()["error"]
            assert post(ep, body_for(noise(SR)), url=url).status_code == 200


def test_rate_limit_429_retry_after_and_recovery():
    clock = FakeClock()
    with LocalEndpoint(
        keys={KEY: None, "other": None}, rate_limit_per_minute=2, rate_window=1.0, clock=clock
    ) as ep:
        body = body_for(noise(FRAME))
        assert [post(ep, body).status_code for _ in range(2)] == [200, 200]
        r = post(ep, body)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "Rate limit" in r.json()["error"]
        assert post(ep, body, key="other").status_code == 200  # windows are per key
        clock.advance(0.99)  # both still inside the window
        assert post(ep, body).status_code == 429
        clock.advance(0.01)  # the window slid past them: two free slots
        assert [post(ep, body).status_code for _ in range(3)] == [200, 200, 429]
        assert ep.stats["billed"] == 5


def test_rate_limit_without_retry_after():
    with LocalEndpoint(
        keys={KEY: None}, rate_limit_per_minute=1, rate_window=1.0, send_retry_after=False
    ) as ep:
        body = body_for(noise(FRAME))
        assert post(ep, body).status_code == 200
        r = post(ep, body)
        assert r.status_code == 429 and "Retry-After" not in r.headers
