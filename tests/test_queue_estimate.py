"""The estimate tells what the run then does with requests an earlier run paid for.

A real LocalEndpoint serves the queue; earlier clients leave the journal states a crash or a
lying queue leaves: a request paid and still collectable, one paid whose result the provider
has since dropped, one paid whose answer cannot be followed. The estimate of a new client is
then compared with what its run bills (the server's own count) and raises.
"""

from __future__ import annotations

import time

import pytest
import requests
from conftest import KEY
from endpoint_helpers import wait_for
from signals import bandlimited

from samaudio_data import errors, estimate_cost, isolate
from samaudio_data.testing import FakeClock

SR = 16000


def clips(n):
    return [bandlimited(SR // 4, SR, seed=i) for i in range(n)]


@pytest.fixture
def states(make_endpoint, make_client, leave_paid):
    """Clips 0..3 left cached, paid and collectable, paid and dropped by the provider, and
    paid but uncollectable by earlier clients of one cache; clip 4 is new. Returns the
    endpoint (its stats reset), a maker of new queue clients of that cache, and the clips."""
    clock = FakeClock(ticking=True)
    ep, other = make_endpoint(clock=clock, latency=0.5), make_endpoint()
    ys = clips(5)

    def client(**kw):
        return make_client(endpoint=ep.url, transport="queue", **kw)

    ep.queue_retention = 0.1  # clip 2: paid, finished, then past the provider's retention
    leave_paid(ep, ys[2], SR, age=60)  # (a minute ago: past the status store's lag grace)
    clock.advance(0.6)
    requests.get(f"{ep.base_url}/v2/requests/any/status", headers={"x-api-key": KEY})
    ep.queue_retention = 3600
    leave_paid(ep, ys[1], SR)  # clip 1: paid, still running
    ep.latency, ep.queue_url_origin = 0, other.base_url  # clip 3: its URLs lead elsewhere
    with pytest.raises(errors.UncollectableRequestError):
        client().isolate(ys[3], SR, "half")
    ep.queue_url_origin = None
    client().isolate(ys[0], SR, "half")
    ep.reset_stats()
    return ep, client, ys


def test_the_estimate_tells_what_the_run_then_bills_and_raises(states):
    ep, client, ys = states
    with client() as c:
        est = c.estimate(ys, SR, "half")
        assert (est.calls, est.cached, est.pending, est.uncollectable) == (1, 1, 2, 1)
        assert estimate_cost(_dataset(ys), isolate("half", client=c)).counts() == est.counts()
        assert 59 * 60 < est.uncollectable_until - time.time() <= 3600
        text = str(est)
        assert "1 call to pay for, 1 already cached, 2 already paid" in text
        assert "at most $0.12 more" in text
        assert "raises UncollectableRequestError for it and pays nothing more" in text
        assert "for up to 60 more minutes" in text and "journal/" in text
        assert ep.stats["requests"] == 0  # the estimate sent nothing

        out = c.separate_many(ys, SR, "half", return_exceptions=True)

        assert [type(r).__name__ for r in out] == ["Separation"] * 3 + [
            "UncollectableRequestError",
            "Separation",
        ]
        # the new clip, and the one whose result the provider dropped, are paid: no more
        # than the estimate's cost plus its "at most" for the paid requests it counted
        assert ep.stats["billed"] == c.usage.billed == est.calls + 1
        assert c.usage.cost <= est.cost + est.pending_cost + 1e-9
        assert c.usage.cached == est.cached + est.pending - 1  # the collectable one: free
        assert ep.stats["submits"] == 2


def test_an_uncollectable_request_is_paid_again_once_its_entry_expires(states, tmp_path):
    ep, client, ys = states
    entries = sorted((tmp_path / "cache" / "journal").glob("*.json"))
    wait_for(
        lambda: all(time.time() - p.stat().st_mtime > 0.2 for p in entries),
        "the journal entries to be older than the next client's retention",
    )
    c = client(queue_retention=0.2)
    est = c.estimate(ys[3:4], SR, "half")
    assert (est.calls, est.pending, est.uncollectable) == (1, 0, 0)
    assert "Uncollectable" not in str(est)
    c.separate(ys[3], SR, "half")
    assert ep.stats["billed"] == c.usage.billed == est.calls


def _dataset(ys):
    from datasets import Dataset

    return Dataset.from_dict({"audio": [{"array": y, "sampling_rate": SR} for y in ys]})


def test_the_cli_dry_run_says_what_the_run_will_do_and_a_run_that_would_stop_is_refused(
    make_endpoint, tmp_path, capsys, monkeypatch
):
    import soundfile as sf

    from samaudio_data.cli import main

    folder = tmp_path / "clips"
    folder.mkdir()
    for i, y in enumerate(clips(2)):
        sf.write(folder / f"clip{i}.wav", y, SR)
    ep, other = make_endpoint(), make_endpoint()
    ep.queue_url_origin = other.base_url  # every answer leads elsewhere: paid, uncollectable
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    args = ["map", str(folder), "--description", "speech", "--endpoint", ep.url]
    args += ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(args + ["--out", str(tmp_path / "o1"), "--on-error", "skip"]) == 0
    assert ep.stats["billed"] == 2
    capsys.readouterr()

    assert main(args + ["--out", str(tmp_path / "o2"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0 calls to pay for, 0 already cached" in out
    assert "2 pieces already paid cannot be collected" in out
    assert "for up to 60 more minutes" in out and "--on-error skip" in out
    assert main(args + ["--out", str(tmp_path / "o3")]) == 3
    assert "refusing to start: 2 requests paid for earlier" in capsys.readouterr().err
    assert ep.stats["billed"] == 2 and other.stats["requests"] == 0


def test_the_explorer_never_quotes_an_uncollectable_re_isolation_as_free(
    make_endpoint, make_client
):
    from samaudio_data.explorer import Explorer, ExplorerError, example_dataset

    ep, other = make_endpoint(), make_endpoint()
    ep.queue_url_origin = other.base_url
    ex = Explorer(example_dataset(2), client=make_client(endpoint=ep.url, transport="queue"))
    assert ex.quote("half").calls == 1
    with pytest.raises(errors.UncollectableRequestError):
        ex.confirm()
    with pytest.raises(ExplorerError, match="paid for earlier but its answer cannot be collected"):
        ex.quote("half")
    assert ep.stats["billed"] == 1
