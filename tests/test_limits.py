"""The shared limits with an injected clock: pace, back-off, learned rate and concurrency are
checked exactly, without sleeping for real."""

from __future__ import annotations

import math

import pytest

from samaudio_data._state.limits import SharedLimits
from samaudio_data.errors import Halted


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def limits(tmp_path, t, **kw):
    kw.setdefault("rate_window", 60.0)
    return SharedLimits(tmp_path / "lim", sleep=t.sleep, clock=t.clock, **kw)


def send(lim, started=None):
    """What a request does: wait its turn, then pass the gate as its bytes leave."""
    lim.wait_turn(started)
    with lim.gate(started):
        pass


def send_times(lim, t, n):
    out = []
    for _ in range(n):
        lim.wait_turn()
        with lim.gate():
            out.append(t.now)
    return out


def test_requests_are_evenly_spaced_under_the_stated_rate(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=50)
    times = send_times(lim, t, 120)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) == pytest.approx(max(gaps))  # no bursts
    assert 60 / 50 < gaps[0] < 60 / 50 * 1.08  # under the limit, close to it
    # any 60 s window holds at most 50 requests (sliding window), and so does a token bucket
    assert max(sum(1 for x in times if s <= x < s + 60) for s in times) <= 50


def test_a_sender_that_woke_late_pushes_the_next_one_back(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=60)
    send(lim)
    lim.wait_turn()
    t.now += 0.5  # the next sender is late by half a second
    with lim.gate():
        late = t.now
    send(lim)
    assert t.now - late >= 60 / 60  # still a whole interval after the late one


def test_after_a_429_everyone_waits_then_leaves_one_at_a_time(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=120)
    send(lim)
    start = t.now
    lim.record_rate_limited(10.0)
    times = send_times(lim, t, 3)
    assert times[0] >= start + 10.0
    assert times[1] - times[0] >= 60 / 120 and times[2] - times[1] >= 60 / 120
    snap = lim.snapshot()
    assert snap["rate_limited"] == 1 and snap["rate_per_minute"] < 120  # slowed down


def test_the_rate_recovers_slowly_after_a_429(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=100)
    lim.record_rate_limited(0.0)
    low = lim.snapshot()["rate_per_minute"]
    for _ in range(5):
        lim.record_success(1.0)
    mid = lim.snapshot()["rate_per_minute"]
    for _ in range(50):
        lim.record_success(1.0)
    assert low < mid < 100 and lim.snapshot()["rate_per_minute"] == pytest.approx(100)


def test_in_flight_follows_littles_law(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=50, max_concurrency=32)
    assert lim.snapshot()["concurrency"] == 32  # latency unknown: the pace alone
    lim.record_success(12.6)
    expected = math.ceil(50 / 63.05 * 12.6 * 1.25) + 1  # rate x latency x headroom + 1
    assert lim.snapshot()["concurrency"] == expected
    capped = limits(tmp_path / "b", t, requests_per_minute=50, max_concurrency=4)
    capped.record_success(12.6)
    assert capped.snapshot()["concurrency"] == 4  # max_concurrency is an upper bound


def test_with_no_rate_concurrency_grows_then_halves_and_the_limit_is_learned(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, max_concurrency=16, rate_window=1.0)
    assert lim.snapshot()["concurrency"] == 2 and lim.snapshot()["rate_per_minute"] is None
    for _ in range(30):  # 30 accepted in three seconds
        send(lim)
        lim.record_success(0.1)
        t.now += 0.1
    grown = lim.snapshot()["concurrency"]
    assert grown > 2
    lim.record_rate_limited(1.0)
    snap = lim.snapshot()
    assert snap["concurrency"] <= grown // 2 + 1
    # ten were accepted in the last second: the learned limit is about 10/s, kept below it
    assert 6 * 60 <= snap["rate_per_minute"] <= 10 * 60


def test_retry_after_inf_never_reaches_the_shared_state(tmp_path):
    from samaudio_data import errors
    from samaudio_data._net.retry import RetryPolicy, parse_retry_after

    wait = RetryPolicy(retry_after_max=60).rate_limit_wait(
        errors.RateLimitError("x", retry_after=parse_retry_after("inf"))
    )
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=10)
    lim.record_rate_limited(wait)
    send(lim)
    assert t.now - 1_000_000.0 <= 60.0 + 1e-6


def test_the_halt_and_the_ledger_are_shared_by_instances(tmp_path):
    t = FakeTime()
    a, b = limits(tmp_path, t), limits(tmp_path, t)
    started = t.now
    a.halt(406, "InsufficientCreditsError", "no credits")
    with pytest.raises(Halted) as stopped:  # an operation that began before it stops
        b.wait_turn(started)
    assert stopped.value.halt["status"] == 406
    t.now += 1
    b.wait_turn(started + 1)  # one that began after it does not
    assert a.spend("run", 0.06, 0.1) and not b.spend("run", 0.06, 0.1)
    assert b.ledger("run") == pytest.approx(0.06)


def test_the_turn_is_granted_early_and_the_gate_keeps_the_exact_moment(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=60, rate_window=60.0)
    interval = 60 * 1.04 / 60  # the spacing, with its slack
    send(lim)
    first = t.now
    lim.wait_turn()
    granted = t.now
    assert granted < first + interval  # the turn comes a little ahead ...
    t.now += 0.01  # (the HTTP stack takes its time)
    with lim.gate():
        passed = t.now
    assert passed == pytest.approx(first + interval)  # ... the gate at the exact moment
    lim.wait_turn()
    t.now += 0.3  # this one reaches its gate late
    with lim.gate():
        late = t.now
    send(lim)
    assert t.now == pytest.approx(late + interval)  # the next is spaced from the late one


def test_a_request_leaving_holds_the_gate_for_a_bounded_time(tmp_path):
    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=6000)
    send(lim)
    leaving = lim.gate()
    leaving.__enter__()  # its bytes are still being written
    start = t.now
    send(lim)  # another sender waits for it ...
    assert 1.0 < t.now - start < 3.0  # ... but not for ever
    leaving.__exit__(None, None, None)


def test_the_gate_stops_on_a_halt_and_requeues_after_a_new_429(tmp_path):
    from samaudio_data.errors import Halted, Requeue

    t = FakeTime()
    lim = limits(tmp_path, t, requests_per_minute=60)
    started = t.now
    send(lim, started)
    lim.wait_turn(started)
    lim.record_rate_limited(5.0)  # a 429 after this one's turn
    with pytest.raises(Requeue):
        with lim.gate(started):
            pass
    lim.halt(401, "AuthenticationError", "bad key")
    with pytest.raises(Halted):
        with lim.gate(started):
            pass
    assert lim.snapshot()["achieved_per_minute"] is None  # one send only was recorded
