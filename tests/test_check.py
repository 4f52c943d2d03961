"""``Client.check`` and ``samaudio-data check`` through real HTTP against a LocalEndpoint."""

from __future__ import annotations

import pytest
from conftest import KEY

from samaudio_data import Client
from samaudio_data.cli import main
from samaudio_data.testing import LocalEndpoint


def check(ep, probe=False, key=KEY, **kw):
    kw.setdefault("cache_dir", False)
    with Client(key, endpoint=ep.url, progress=False, **kw) as c:
        report = c.check(probe=probe)
        return report, c.usage.snapshot()


def test_good_key_free_check_spends_nothing():
    with LocalEndpoint(keys={KEY: 3.0}) as ep:
        report, usage = check(ep, requests_per_minute=50)
        s = ep.stats
    assert report.ok, str(report)
    assert report.credits == pytest.approx(3.0) and report.key_set
    assert "405" in report.reachable
    assert report.limits["requests_per_minute"] == 50.0
    assert (s["requests"], s["billed"], usage.billed) == (0, 0, 0)
    text = str(report)
    assert text.startswith("samaudio-data check: OK") and "credits: 3.0000" in text
    assert KEY not in text and KEY not in repr(report)


@pytest.mark.parametrize(
    "setup,code,advice",
    [
        (dict(keys={"someone-else": 1.0}), "401", "SEGMIND_API_KEY"),
        (dict(keys={KEY: 1.0}, forbidden_keys=[KEY]), "403", "permissions"),
        (dict(keys={KEY: 0.0}), "less than one call", "Top up"),
    ],
)
def test_account_problems_are_diagnosed_and_block_the_probe(setup, code, advice):
    with LocalEndpoint(**setup) as ep:
        report, _ = check(ep, probe=True)
        s = ep.stats
    assert not report.ok
    [problem] = report.problems
    assert code in problem and advice in problem
    if code == "403":  # the credits route serves a forbidden key: the probe finds out
        assert "probe call failed: PermissionDeniedError" in problem
    else:
        assert "probe was not sent" in str(report)
    assert report.probe is None
    assert s["requests"] == (1 if code == "403" else 0) and s["billed"] == 0
    assert KEY not in str(report)


def test_no_key_is_a_problem():
    with LocalEndpoint() as ep, Client(endpoint=ep.url, cache_dir=False) as c:
        report = c.check()
    assert not report.ok and "SEGMIND_API_KEY" in report.problems[0]


def test_unreachable_endpoint_is_a_problem():
    with LocalEndpoint() as ep:
        url = ep.url
    report, _ = check(type("E", (), {"url": url})())
    assert not report.ok and report.reachable == "NO"
    assert any("cannot be reached" in p or "nothing is listening" in p for p in report.problems)


def test_probe_spends_exactly_one_call_and_describes_the_answer():
    with LocalEndpoint(keys={KEY: 2.0}) as ep:
        report, usage = check(ep, probe=True)
        s = ep.stats
    assert report.ok, str(report)
    p = report.probe
    assert (s["billed"], s["submits"], usage.billed) == (1, 1, 1)
    assert (p.via, p.format, p.sample_rate, p.channels) == ("queue", "wav", 48000, 1)
    assert p.input_frames == 47500 and p.frames == 48000 and p.padding == 500
    assert p.remaining_credits == "1.938" and p.charged == pytest.approx(0.062)
    assert "URL" in p.carrier and p.content_type == "audio/wav"
    assert "queue: served" in str(report) and "+500 samples" in str(report)
    assert KEY not in str(report)


def test_probe_on_sync_json_answer_without_padding():
    with LocalEndpoint(
        keys={KEY: 2.0},
        queue=False,
        response_format="json-data-uri",
        pad_to_frame=False,
        output_sample_rate=44100,
        output_channels=2,
    ) as ep:
        report, _ = check(ep, probe=True)
    assert report.ok, str(report)
    p = report.probe
    assert (p.via, p.sample_rate, p.channels, p.padding) == ("sync", 44100, 2, 0)
    assert "data: URI" in p.carrier and "not served" in report.queue


def test_probe_reports_a_price_that_differs_from_the_setting():
    with LocalEndpoint(keys={KEY: 2.0}, price_per_call=0.074) as ep:
        report, _ = check(ep, probe=True, price_per_call=0.062)
    assert not report.ok
    assert any("charged $0.0740" in p and "SAMAUDIO_PRICE_PER_CALL" in p for p in report.problems)


def test_probe_whose_answer_is_not_audio_is_diagnosed():
    with LocalEndpoint(keys={KEY: 2.0}) as ep:
        ep.inject("garbage", step="result", message='{"status": "COMPLETED", "output": 42}')
        report, _ = check(ep, probe=True)
    assert not report.ok
    assert any("probe call failed" in p and "ResponseDecodeError" in p for p in report.problems)


def test_cli_check_exit_status_and_output(monkeypatch, capsys):
    with LocalEndpoint(keys={KEY: 2.0}) as ep:
        monkeypatch.setenv("SEGMIND_API_KEY", KEY)
        assert main(["check", "--endpoint", ep.url, "--requests-per-minute", "50"]) == 0
        out = capsys.readouterr().out
        assert "samaudio-data check: OK" in out and ep.stats["billed"] == 0
        assert main(["check", "--endpoint", ep.url, "--probe"]) == 0
        out = capsys.readouterr().out
        assert "probe: 1 call via queue" in out and ep.stats["billed"] == 1
        monkeypatch.setenv("SEGMIND_API_KEY", "sk-wrong-SECRET")
        assert main(["check", "--endpoint", ep.url, "--probe"]) == 1
        captured = capsys.readouterr()
        assert "401" in captured.out and "sk-wrong-SECRET" not in captured.out + captured.err
        assert ep.stats["billed"] == 1
    monkeypatch.delenv("SEGMIND_API_KEY")
    assert main(["check"]) == 1
    assert "SEGMIND_API_KEY is not set" in capsys.readouterr().err
