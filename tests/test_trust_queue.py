"""Trust on the queue: where the key goes, what is paid, and which answer belongs to which clip.

Real HTTP to a hostile server (tests/hostile.py) playing the provider's queue. Each test
asserts what the user sees (the typed error or the answer), what was paid (the server's own
count of billed POSTs, and ``client.usage``) and where the key went (every request recorded
by the servers).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import KEY, hostile_client
from hostile import HostileServer, accepted, json_doc, queued_result, redirect, status
from signals import tone

from samaudio_data import Budget, errors

SUBMIT = "/v2/sam-audio-large"
SR = 48000


def clip(seed=0):
    return tone(1.0, SR, freq=220.0 + 40 * seed)


queue_client = functools.partial(hostile_client, transport="queue")


def journal(tmp_path):
    d = Path(tmp_path) / "cache" / "journal"
    return sorted(d.glob("*.json")) if d.is_dir() else []


def urls(server, rid="req-1"):
    base = f"{server.url}/v2/requests/{rid}"
    return {"status_url": base + "/status", "response_url": base}


def serve_job(server, rid="req-1", y=None, *, named=None):
    """Status COMPLETED and the result for ``rid``, for ever."""
    server.add("GET", f"/v2/requests/{rid}/status", json_doc({"status": "COMPLETED"}), times=None)
    server.add(
        "GET",
        f"/v2/requests/{rid}",
        queued_result(clip() if y is None else y, request_id=named),
        times=None,
    )


def keyless(*servers):
    return all("x-api-key" not in r.headers for s in servers for r in s.requests)


# --- one notion of where a request goes -----------------------------------------------------


@pytest.mark.parametrize("trick", ["backslash", "userinfo", "other-origin", "control"])
def test_status_urls_that_lead_elsewhere_get_nothing_and_are_paid_once(tmp_path, trick):
    with HostileServer() as bad, HostileServer() as other:
        good = urls(bad)
        hostport = urlsplit(bad.url).netloc
        evil = {
            # urlsplit reads the host after the "@"; urllib3 (and requests) connects to other
            "backslash": f"http://127.0.0.1:{other.port}\\@{hostport}/v2/requests/req-1/status",
            "userinfo": f"http://127.0.0.1:{other.port}@{hostport}/v2/requests/req-1/status",
            "other-origin": f"{other.url}/v2/requests/req-1/status",
            "control": f"{bad.url}/v2/requests/req-1/status\r\nHost: 127.0.0.1:{other.port}",
        }[trick]
        if trick == "backslash":
            assert urlsplit(evil).port == bad.port  # what the old same-origin check believed
        bad.add("POST", SUBMIT, accepted("req-1", evil, good["response_url"]), times=None)
        other.add("GET", "*", json_doc({"status": "COMPLETED"}), times=None)
        c = queue_client(bad, tmp_path)
        for _ in range(2):  # asking again neither pays again nor follows the URL
            with pytest.raises(errors.UncollectableRequestError, match="billed") as info:
                c.isolate(clip(), SR, "speech")
        assert other.requests == [] and keyless(other)
        assert bad.billed == 1 and c.usage.billed == 1
        assert [r.method for r in bad.requests] == ["POST"]
        assert KEY not in str(info.value)
        [entry] = journal(tmp_path)
        assert f"127.0.0.1:{other.port}" not in json.loads(entry.read_text())["status_url"]


def test_a_307_location_with_a_backslash_is_not_followed(tmp_path):
    with HostileServer() as bad, HostileServer() as other:
        loc = f"http://127.0.0.1:{other.port}\\@{urlsplit(bad.url).netloc}/v1/sam-audio-large"
        bad.add("POST", "/v1/sam-audio-large", redirect(loc, 307), times=None)
        other.add("POST", "*", status(200), times=None)
        c = queue_client(bad, tmp_path, transport="sync")
        with pytest.raises(errors.RedirectError, match="not repeated there"):
            c.isolate(clip(), SR, "speech")
        assert other.requests == [] and len(bad.requests) == 1  # the upload went nowhere else
        assert c.usage.billed == 0 and bad.billed == 0


def test_a_status_url_carrying_the_key_is_journalled_redacted_and_still_followed(tmp_path):
    with HostileServer() as bad:
        u = urls(bad)
        bad.add(
            "POST",
            SUBMIT,
            accepted("req-1", u["status_url"] + f"?api_key={KEY}", u["response_url"]),
        )
        bad.add("GET", "/v2/requests/req-1/status", status(503), times=None)  # not yet
        c = queue_client(bad, tmp_path, max_retries=0)
        with pytest.raises(errors.ServerError):
            c.isolate(clip(), SR, "speech")
        [entry] = journal(tmp_path)
        text = entry.read_text()
        assert KEY not in text and "api_key=***" in text
        bad.clear()
        serve_job(bad)
        c2 = queue_client(bad, tmp_path)  # the next run restores the URL and collects
        out = c2.isolate(clip(), SR, "speech")
        assert np.allclose(out, clip(), atol=1e-4)
        assert bad.billed == 0 and c2.usage.billed == 0 and journal(tmp_path) == []


# --- billing counted when a submit is accepted ------------------------------------------------


def test_accepted_submits_count_against_max_cost_even_when_they_cannot_be_followed(tmp_path):
    """3 clips, answers without a request_id, a 2-call budget: 2 paid, the 3rd never sent."""
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, json_doc({"status": "QUEUED"}), times=None)
        c = queue_client(bad, tmp_path)
        budget = Budget(2 * c.price_per_call)
        seen = []
        for i in range(3):
            with pytest.raises(
                (errors.UncollectableRequestError, errors.BudgetExceededError)
            ) as info:
                c.separate(clip(i), SR, "speech", budget=budget)
            seen.append(type(info.value).__name__)
        assert seen == ["UncollectableRequestError"] * 2 + ["BudgetExceededError"]
        assert bad.billed == 2 and c.usage.billed == 2
        assert budget.spent == pytest.approx(2 * c.price_per_call)
        assert len(journal(tmp_path)) == 2  # kept: not submitted again within the retention


def test_a_lagging_status_store_is_polled_again_and_paid_once(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, accepted("req-1", **urls(bad)))
        bad.add("GET", "/v2/requests/req-1/status", status(404, "unknown request"), times=3)
        serve_job(bad)
        c = queue_client(bad, tmp_path)
        out = c.isolate(clip(), SR, "speech")
        assert np.allclose(out, clip(), atol=1e-4)
        polls = [r for r in bad.requests if r.path.endswith("/status")]
        assert len(polls) == 4 and bad.billed == 1 and c.usage.billed == 1
        assert journal(tmp_path) == []


def test_a_status_store_that_never_knows_the_request_is_paid_once_and_kept(tmp_path, monkeypatch):
    from samaudio_data._net import collect as _collect

    monkeypatch.setattr(_collect, "LAG_GRACE", 0.3)  # the store lags past the grace period
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, accepted("req-1", **urls(bad)), times=None)
        bad.add("GET", "/v2/requests/req-1/status", status(404, "unknown"), times=None)
        c = queue_client(bad, tmp_path)
        for _ in range(2):
            with pytest.raises(errors.UncollectableRequestError, match="404"):
                c.isolate(clip(), SR, "speech")
        assert bad.billed == 1 and c.usage.billed == 1 and len(journal(tmp_path)) == 1


def test_a_failed_job_is_refunded(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, accepted("req-1", **urls(bad)))
        bad.add(
            "GET",
            "/v2/requests/req-1/status",
            json_doc({"status": "FAILED", "error": "model crashed"}, code=422),
        )
        c = queue_client(bad, tmp_path)
        budget = Budget(1.0)
        with pytest.raises(errors.QueueJobFailedError, match="model crashed"):
            c.separate(clip(), SR, "speech", budget=budget)
        assert c.usage.billed == 0 and c.usage.cost == 0 and budget.spent == 0
        assert journal(tmp_path) == []


# --- answers tied to their requests -------------------------------------------------------


def test_a_result_naming_another_request_is_never_used_then_dropped(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, accepted("req-1", **urls(bad)))
        serve_job(bad, y=clip(7), named="req-0")  # another clip's audio, another id
        c = queue_client(bad, tmp_path, max_retries=2)
        with pytest.raises(errors.AnswerMismatchError, match="req-0.*pays again"):
            c.isolate(clip(), SR, "speech")
        fetches = [r for r in bad.requests if r.path == "/v2/requests/req-1"]
        assert len(fetches) == 3 and bad.billed == 1 and c.usage.billed == 1
        assert len(c.cache) == 0 and journal(tmp_path) == []  # fetched for its retries only
        # the documented rule: asking again submits again, and pays again
        bad.clear()
        bad.add("POST", SUBMIT, accepted("req-2", **urls(bad, "req-2")))
        serve_job(bad, "req-2")
        assert np.allclose(c.isolate(clip(), SR, "speech"), clip(), atol=1e-4)
        assert bad.billed == 1 and c.usage.billed == 2


def test_an_id_already_kept_for_another_clip_is_an_error(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, accepted("req-1", **urls(bad)), times=None)  # always req-1
        bad.add("GET", "/v2/requests/req-1/status", status(503), times=None)
        c = queue_client(bad, tmp_path, max_retries=0)
        with pytest.raises(errors.ServerError):  # clip A: paid, kept, still collectable
            c.isolate(clip(0), SR, "speech")
        with pytest.raises(errors.UncollectableRequestError, match="another piece"):
            c.isolate(clip(1), SR, "speech")  # clip B: the provider reused A's id
        assert bad.billed == 2 and c.usage.billed == 2
        assert len(journal(tmp_path)) == 2
        statuses = [r for r in bad.requests if r.method == "GET"]
        assert len(statuses) == 1  # B's answer was never asked for with A's id
        assert len(c.cache) == 0


def test_an_invalid_queued_result_is_dropped_after_its_retries(tmp_path):
    with HostileServer() as bad:
        bad.add("POST", SUBMIT, accepted("req-1", **urls(bad)), times=None)
        bad.add("GET", "/v2/requests/req-1/status", json_doc({"status": "COMPLETED"}), times=None)
        bad.add(
            "GET", "/v2/requests/req-1", queued_result(clip(), output={"nothing": 1}), times=None
        )
        c = queue_client(bad, tmp_path, max_retries=2)
        with pytest.raises(errors.ResponseDecodeError, match="pays again"):
            c.isolate(clip(), SR, "speech")
        fetches = [r for r in bad.requests if r.path == "/v2/requests/req-1"]
        assert len(fetches) == 3 and bad.billed == 1 and journal(tmp_path) == []
        # a later run does not fetch it again for the journal's retention
        before = len(bad.requests)
        c2 = queue_client(bad, tmp_path, max_retries=0)
        with pytest.raises(errors.ResponseDecodeError):
            c2.isolate(clip(), SR, "speech")
        assert bad.requests[before].method == "POST" and bad.billed == 2


def test_the_key_never_reaches_the_journal_or_the_limits_state(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with HostileServer() as bad:
        u = urls(bad)
        bad.add(
            "POST",
            SUBMIT,
            accepted("req-1", u["status_url"] + f"?k={KEY}", u["response_url"] + f"?k={KEY}"),
        )
        bad.add("GET", "/v2/requests/req-1/status", status(429, retry_after=0), times=1)
        bad.add("GET", "/v2/requests/req-1/status", status(503, f"bad key {KEY}"), times=None)
        c = queue_client(bad, tmp_path, max_retries=0, rate_window=1.0)
        with pytest.raises(errors.ServerError) as info:
            c.isolate(clip(), SR, "speech")
        assert KEY not in str(info.value)
        # (urllib3's own DEBUG lines show the URLs the provider gave, as they were sent)
        assert not any(
            KEY in r.getMessage() for r in caplog.records if r.name.startswith("samaudio_data")
        )
    written = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert any(p.parent.name == "journal" for p in written)
    assert any(p.name == "state.json" for p in written)
    for p in written:
        assert KEY.encode() not in p.read_bytes(), p


@pytest.mark.parametrize("credits", ["nan", "inf", "-5", "lots"])
def test_an_unusable_credits_header_is_ignored_not_trusted(tmp_path, credits):
    from hostile import respond, wav_bytes

    with HostileServer() as bad:
        body = wav_bytes(clip())
        bad.add(
            "POST",
            "/v1/sam-audio-large",
            respond(200, body, "audio/wav", {"x-remaining-credits": credits}),
            times=None,
        )
        c = queue_client(bad, tmp_path, transport="sync")
        budget = Budget(1.0)
        c.separate(clip(0), SR, "speech", budget=budget)
        c.separate(clip(1), SR, "speech", budget=budget)  # not stopped by a figure it ignored
        assert c.usage.remaining_credits is None and bad.billed == 2 and c.usage.billed == 2
