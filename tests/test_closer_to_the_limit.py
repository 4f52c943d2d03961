"""Closer to the limit, in one process as on a cluster: the spacing's margin adapts, limits
the provider announces are kept, and queue polls follow the completion time learned."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KEY

from samaudio_data import Client
from samaudio_data._net.polls import PollSchedule
from samaudio_data._state.limits import SharedLimits
from samaudio_data.testing import FakeClock


def gap(lim, t) -> float:
    """The spacing of the next two requests."""
    times = []
    for _ in range(2):
        lim.wait_turn()
        with lim.gate():
            times.append(t())
    return times[1] - times[0]


def test_the_margin_tightens_without_429s_and_widens_on_one(tmp_path):
    t = FakeClock(start=1e6)  # moves only when the limits sleep
    lim = SharedLimits(tmp_path, requests_per_minute=60, sleep=t.advance, clock=t)
    assert gap(lim, t) == pytest.approx(1.04)  # today's 4 % to start with
    for _ in range(3000):  # a long run without a 429
        lim.record_success(1.0)
    assert gap(lim, t) == pytest.approx(1.01)  # 99 % of the stated limit
    lim.record_rate_limited(0.0)  # one 429 ...
    widened = lim.snapshot()["slack"]
    assert widened == pytest.approx(0.02)
    for _ in range(1000):  # ... and the margin that met it
        lim.record_success(1.0)  # is not tried again soon
    assert 0.011 < lim.snapshot()["slack"] < 0.02
    # (the rate factor a 429 costs is regained long before)
    assert lim.snapshot()["rate_per_minute"] == pytest.approx(60)


def test_limits_the_provider_announces_are_kept(tmp_path):
    t = FakeClock(start=1e6)
    lim = SharedLimits(tmp_path, rate_window=60.0, sleep=t.advance, clock=t)
    assert lim.snapshot()["rate_per_minute"] is None  # nothing stated, nothing known
    lim.record_announced(50.0, 10.0, 30.0)  # x-ratelimit-limit: 50 ...
    assert lim.snapshot()["rate_per_minute"] == pytest.approx(50)
    lim.record_announced(None, 0.0, 12.5)  # ... none left for 12.5 s
    start = t()
    lim.wait_turn()
    assert t() - start >= 12.4  # (a turn is let go 50 ms early)


def test_a_client_keeps_to_the_announced_limit_without_a_429(make_endpoint, tmp_path):
    ep = make_endpoint(
        rate_limit_per_minute=12, rate_window=2.0, send_ratelimit_headers=True, latency=0.05
    )
    client = Client(
        KEY, endpoint=ep.url, cache_dir=tmp_path, rate_window=2.0, progress=False, transport="sync"
    )
    rng = np.random.default_rng(0)
    client.isolate_many([0.1 * rng.standard_normal(1600) for _ in range(24)], 16000, "speech")
    assert ep.stats["billed"] == 24
    assert 429 not in ep.stats["by_status"]  # no rate stated, none learned
    assert client.usage.rate_limit == pytest.approx(12 * 30)  # per minute: 12 per 2 s


def test_polls_are_dense_around_the_expected_completion():
    ps = PollSchedule()
    for done in (10.0, 10.0, 10.0):
        ps.learn(done, 0.0)
    polls, at, delay = [], 0.0, None
    while at < 12.0:
        delay = ps.delay(at, delay)
        at += delay
        polls.append(at)
    before = [p for p in polls if p < 9.0]
    around = [p for p in polls if 9.0 <= p <= 12.0]
    assert len(before) <= 4  # sparse before
    # a job done at any moment in 9..12 s is seen within 0.31 s (3 % of its time)
    assert max(b - a for a, b in zip(around, around[1:], strict=False)) <= 0.31
    # with nothing learned yet: the SDK's schedule, at most a second apart
    fresh = PollSchedule()
    assert fresh.delay(0.0, None) == 0.1 and fresh.delay(5.0, 0.9) == 1.0


def poll_one(ps, done_at) -> tuple:
    """Poll a job that finishes ``done_at`` s after its submit as ``collect`` does (at once
    while nothing is known, then after each ``ps.delay``): (how late it was found, polls,
    when, gap before it)."""
    at, previous, delay, polls = 0.0, 0.0, None, 0
    if ps.first() is not None:
        at = delay = ps.first()
    while True:
        polls += 1
        if at >= done_at:
            return at - done_at, polls, at, at - previous
        delay = ps.delay(at, delay)
        previous, at = at, at + delay


def test_polls_learn_from_jobs_sent_together_and_follow_a_change():
    # a map keeps 8 in flight: jobs sent together finish together, and all 8 report the same
    # poll; that must count as one observation, not move the expectation 8 times
    ps = PollSchedule()
    for done_at, rounds, settled in ((0.3, 6, 1), (10.0, 3, 1), (8.0, 3, 1), (0.5, 8, 5)):
        late = []
        for _ in range(rounds):
            lag, polls, at, gap = poll_one(ps, done_at)
            for _ in range(8):
                ps.learn(at, gap)
            late.append(lag / done_at)
            assert polls <= 31
        # once settled, found within 4 % of the latency (at 0.3 s, POLL_MIN's 10 ms is 3.3 %)
        assert max(late[settled:]) <= 0.04, (done_at, late)
        assert ps.expected == pytest.approx(done_at, rel=0.04)
