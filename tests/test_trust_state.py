"""Trust in what is read back from disk: the shared limits state, the journal, the session file,
the private limits directory, and the inputs and outputs of a run.

Runs talk real HTTP to the local endpoint; each test asserts what the user sees (the run
completes, or a typed error saying what to do), what was paid (the endpoint's own billing)
and that nothing went anywhere else.
"""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pytest
from conftest import KEY
from signals import bandlimited

from samaudio_data import errors, isolate

SR = 16000


def clips(n, seed=0):
    return [bandlimited(SR // 4, SR, seed=seed + i) for i in range(n)]


def warned(caplog, text):
    return [r for r in caplog.records if r.name == "samaudio_data" and text in r.getMessage()]


# --- the shared limits state: damaged, wrong types, deadlines ahead, clock steps ----------


def _ahead(now):
    return now + 7200.0


DAMAGE = {
    "backoff far ahead": lambda now: {"backoff_until": _ahead(now)},
    "clock stepped back": lambda now: {
        "last_sent": _ahead(now),
        "next_send": _ahead(now),
        "first_send": _ahead(now),
        "sent": [_ahead(now)],
        "leaving": {"since": _ahead(now), "id": "x"},
    },
    "401 halt stamped ahead": lambda now: {
        "halt": {
            "time": _ahead(now),
            "status": 401,
            "kind": "AuthenticationError",
            "message": "an old bad key",
        }
    },
    "rate factor -1": lambda now: {"rate_factor": -1},
    "wrong types": lambda now: {
        "backoff_until": "soon",
        "rate_factor": "fast",
        "latency": [1],
        "sent": "x",
        "halt": "401",
        "ledgers": [1],
        "window_limit": True,
        "next_send": None,
    },
    "not json": lambda now: b"\x00{garbage",
    "not an object": lambda now: [1, 2, 3],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_limits_state_never_stalls_stops_or_breaks_a_run(
    make_endpoint, make_client, damage, caplog
):
    caplog.set_level(logging.WARNING, logger="samaudio_data")
    # the account allows 8 requests per second, one at a time: 3 ms apart would be 429s;
    # the client paces at 4 (headroom for a loaded machine's jitter)
    ep = make_endpoint(rate_limit_per_minute=8, rate_window=1.0, rate_limit_burst=1)
    c = make_client(endpoint=ep.url, requests_per_minute=4, rate_window=1.0, retry_after_max=2.0)
    state = c.limits.directory / "state.json"
    doc = DAMAGE[damage](time.time())
    state.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    t0 = time.monotonic()
    outs = c.isolate_many(clips(3), SR, "speech")
    took = time.monotonic() - t0
    assert len(outs) == 3 and c.usage.billed == 3 and ep.stats["billed"] == 3
    assert 429 not in ep.stats["by_status"]
    assert took < 30  # not an hour behind a stored deadline
    repaired = warned(caplog, "shared limits state") + warned(caplog, "is damaged")
    assert len(repaired) == 1  # logged once, then replaced
    fixed = json.loads(state.read_bytes())
    assert isinstance(fixed, dict) and 0.2 <= fixed.get("rate_factor", 1.0) <= 1.0
    assert fixed.get("backoff_until", 0) <= time.time() + 2.0
    assert "halt" not in fixed or fixed["halt"]["time"] <= time.time()


def test_a_symlink_planted_as_the_state_file_is_replaced_not_followed(client, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    state = client.limits.directory / "state.json"
    state.symlink_to(victim)
    client.isolate(clips(1)[0], SR, "speech")
    assert victim.read_text() == "keep me"
    assert not state.is_symlink() and json.loads(state.read_text())["last_sent"] > 0


def test_without_a_cache_dir_the_limits_live_in_a_private_per_user_directory(
    make_client, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    c = make_client(cache_dir=False)
    c.isolate(clips(1)[0], SR, "speech")
    root = run / "samaudio_data-limits"
    assert c.limits.directory.is_relative_to(root)
    assert (root.stat().st_mode & 0o777) == 0o700 and root.stat().st_uid == os.getuid()
    assert KEY.encode() not in (c.limits.directory / "state.json").read_bytes()


@pytest.mark.parametrize("plant", ["symlink", "open to all"])
def test_a_planted_limits_directory_is_not_used(
    endpoint, make_client, tmp_path, monkeypatch, plant
):
    run, attacker = tmp_path / "run", tmp_path / "attacker"
    run.mkdir(mode=0o700)
    attacker.mkdir(mode=0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    if plant == "symlink":
        (run / "samaudio_data-limits").symlink_to(attacker)
    else:
        (run / "samaudio_data-limits").mkdir()
        os.chmod(run / "samaudio_data-limits", 0o777)
    with pytest.warns(RuntimeWarning, match="not a private directory"):
        c = make_client(cache_dir=False)
    c.isolate(clips(1)[0], SR, "speech")
    assert endpoint.stats["billed"] == 1
    assert list(attacker.iterdir()) == []
    assert plant == "symlink" or list((run / "samaudio_data-limits").iterdir()) == []


# --- the journal: damaged, foreign, ahead of the clock ------------------------------------


JOURNAL_DAMAGE = {
    "foreign origin": (lambda d: dict(d, status_url="http://127.0.0.1:1/v2/requests/x/status"), 2),
    "backslash": (
        lambda d: dict(d, status_url=d["status_url"].replace("http://", "http://127.0.0.1:1\\@")),
        2,
    ),
    "non-string URLs": (lambda d: dict(d, status_url=5, response_url=None), 2),
    "created a day ahead": (lambda d: dict(d, created=time.time() + 86400), 1),
    "not json": (lambda d: "{", 2),
    "id not a string": (lambda d: dict(d, request_id=["r"]), 2),
}


@pytest.mark.parametrize("damage", list(JOURNAL_DAMAGE))
def test_a_damaged_journal_entry_is_removed_once_and_never_fatal(
    make_endpoint, make_client, leave_paid, tmp_path, damage, caplog
):
    change, submits = JOURNAL_DAMAGE[damage]
    caplog.set_level(logging.INFO, logger="samaudio_data")
    y = clips(1, seed=5)[0]
    ep = make_endpoint(latency=0.5)
    leave_paid(ep, y, SR)
    [entry] = sorted((tmp_path / "cache" / "journal").glob("*.json"))
    doc = change(json.loads(entry.read_text()))
    entry.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    out = make_client(endpoint=ep.url, transport="queue").isolate(y, SR, "half")
    assert out.shape == y.shape
    # an unusable entry cannot be collected: the piece is sent (and paid) again, once
    assert ep.stats["submits"] == submits and ep.stats["billed"] == submits
    assert list((tmp_path / "cache" / "journal").glob("*.json")) == []
    if submits == 2:
        assert len(warned(caplog, "journal entry")) == 1


# --- learned rates are bounded below -------------------------------------------------------


def test_one_429_on_a_quiet_account_teaches_no_less_than_the_slowest_plan(tmp_path):
    from samaudio_data._state.limits import SharedLimits

    now = [1_000_000.0]
    lim = SharedLimits(
        tmp_path,
        rate_window=60.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    lim.wait_turn()
    with lim.gate():
        pass
    lim.record_rate_limited(1.0)  # one request in the window, refused: not "1 per minute"
    assert lim.snapshot()["rate_per_minute"] == pytest.approx(5.0)
    now[0] += 2.0  # 429s keep coming at that rate: only then lower
    lim.record_rate_limited(1.0)
    assert lim.snapshot()["rate_per_minute"] == pytest.approx(4.0)


# --- the session file ---------------------------------------------------------------------


def test_a_session_saved_on_another_dataset_of_the_same_size_is_refused(tmp_path):
    from samaudio_data import Explorer, ExplorerError
    from samaudio_data.explorer import example_dataset

    session = tmp_path / "review.json"
    ex = Explorer(example_dataset(4), session=session)
    ex.decide("keep")
    other = example_dataset(4).map(lambda r: {"text": r["text"] + "!"})
    with pytest.raises(ExplorerError, match="another dataset"):
        Explorer(other, session=session)


@pytest.mark.parametrize(
    "edit",
    [
        {"decisions": {"first": "keep"}},
        {"decisions": {"0": 1}},
        {"row": "3"},
        {"sort": ["a"]},
        {"reisolated": {"0": {"cost": "free", "description": "x"}}},
        {"filter": {"column": "x", "min": "low", "max": None}},
    ],
)
def test_a_hand_edited_session_with_wrong_types_is_a_clear_error(tmp_path, edit):
    from samaudio_data import Explorer, ExplorerError
    from samaudio_data.explorer import example_dataset

    session = tmp_path / "review.json"
    Explorer(example_dataset(4), session=session).decide("keep")
    doc = json.loads(session.read_text())
    session.write_text(json.dumps({**doc, **edit}))
    with pytest.raises(ExplorerError, match="is damaged"):
        Explorer(example_dataset(4), session=session)


# --- inputs and outputs of a run ------------------------------------------------------------


def test_an_int16_list_column_is_read_as_int16_or_refused(endpoint, client):
    import datasets

    features = datasets.Features(
        {
            "audio": {
                "array": datasets.Sequence(datasets.Value("int16")),
                "sampling_rate": datasets.Value("int32"),
            }
        }
    )
    y = (bandlimited(SR // 4, SR) * 20000).astype(np.int16)
    ds = datasets.Dataset.from_dict(
        {"audio": [{"array": y.tolist(), "sampling_rate": SR}]}, features=features
    )
    with pytest.raises(errors.InvalidAudioError, match="sample_dtype='int16'"):
        ds.map(isolate("speech", client=client), batched=True, load_from_cache_file=False)
    assert endpoint.stats["billed"] == 0
    fn = isolate("speech", client=client)
    from samaudio_data import estimate_cost

    assert estimate_cost(ds, fn).calls == 1 and fn.sample_dtype == "int16"
    out = ds.map(fn, batched=True, load_from_cache_file=False)
    got = out.cast_column("isolated", datasets.Audio(decode=False))[0]["isolated"]
    from samaudio_data.hf import read_value

    back, _ = read_value(got)
    ref = y / 32768.0  # not silence: scaled as int16 (as int64 it would be ~1e-15)
    assert np.corrcoef(back[0], ref)[0, 1] > 0.99
    assert np.sqrt(np.mean(back[0] ** 2)) == pytest.approx(np.sqrt(np.mean(ref**2)), rel=0.05)
    assert endpoint.stats["billed"] == 1


def test_an_output_path_that_cannot_be_written_is_refused_before_anything_is_sent(
    endpoint, client, tmp_path
):
    from samaudio_data import audio

    src = tmp_path / "long.wav"
    with audio.BlockWriter(src, SR, channels=1) as w:
        w.write(np.tile(bandlimited(SR, SR), 45))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(errors.InvalidRequestError, match="is a directory"):
        client.isolate_file(src, "speech", tmp_path)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(errors.InvalidRequestError, match="cannot write"):
            client.isolate_file(src, "speech", locked / "out.wav")
    with pytest.raises(errors.InvalidRequestError, match="cannot write"):
        client.isolate_file(src, "speech", tmp_path / "missing" / "out.wav")
    assert endpoint.stats["requests"] == 0 and client.usage.billed == 0


def test_cli_map_out_inside_its_input_folder_is_refused(tmp_path, capsys):
    import soundfile as sf

    from samaudio_data.cli import main

    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "a.wav", bandlimited(SR // 4, SR), SR)
    for out in (folder, folder / "cleaned"):
        argv = [
            "map",
            str(folder),
            "--description",
            "speech",
            "--out",
            str(out),
            "--local",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
        assert main(argv) == 2
        assert "input folder" in capsys.readouterr().err
        assert sorted(p.name for p in folder.iterdir()) == ["a.wav"]  # nothing written


def test_cli_local_endpoint_keeps_its_port_across_runs(tmp_path, capsys):
    from samaudio_data.cli._endpoint import local_endpoint

    with local_endpoint(str(tmp_path)) as a:
        first = a.url
        with local_endpoint(str(tmp_path)) as b:  # taken: another port, said once
            assert b.url != first
        assert "is taken" in capsys.readouterr().err
    with local_endpoint(str(tmp_path)) as c:  # the next run: the same origin again
        assert c.url == first


@pytest.mark.parametrize("step", [-3600.0, -5.0, 3600.0])
def test_a_clock_step_during_a_run_costs_at_most_one_interval(tmp_path, step, caplog):
    from samaudio_data._state.limits import SharedLimits

    now = [1_000_000.0]
    lim = SharedLimits(
        tmp_path,
        requests_per_minute=60,
        rate_window=60.0,
        retry_after_max=30.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    interval = 60.0 * 1.04 / 60  # one request per second, plus the spacing slack
    for _ in range(3):
        lim.wait_turn()
        with lim.gate():
            pass
    lim.record_rate_limited(10.0)  # a back-off ahead when the clock steps
    now[0] += step
    t0 = now[0]
    lim.wait_turn()
    with lim.gate():
        pass
    waited = now[0] - t0
    # back: the stored times are clamped (a back-off at most retry_after_max); forward: they
    # are simply past
    assert waited <= (30.0 + interval if step < 0 else interval) + 0.5
    assert lim.snapshot()["rate_per_minute"] > 0
