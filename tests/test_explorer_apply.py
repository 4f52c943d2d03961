"""Headless tests of the explorer's session file, ``apply`` and re-isolation: real
datasets, the real widget object and actions sent as the browser sends them, re-isolation
against a real local HTTP endpoint, and the API key kept out of the widget state and the
session file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import KEY  # noqa: E402  endpoint and client fixtures too
from explorer_fixtures import (  # noqa: E402
    PRICE,
    clip,
    isolated_dataset,
    lane_audio,
    send,
    synthetic_dataset,
    wav_bytes,
)

from samaudio_data import Client  # noqa: E402
from samaudio_data.explorer import Explorer, ExplorerError  # noqa: E402
from samaudio_data.hf import read_value  # noqa: E402


@pytest.fixture(scope="module")
def small_ds():
    return synthetic_dataset(8, seconds=0.5)


# --- session file ------------------------------------------------------------------------------


def test_session_round_trip(small_ds, tmp_path):
    path = tmp_path / "review.json"
    ex = Explorer(small_ds, session=path)
    assert json.loads(path.read_text())["decisions"] == {}
    send(ex, "decide", decision="keep")
    assert json.loads(path.read_text())["decisions"] == {"0": "keep"}
    send(ex, "decide", decision="discard")
    send(ex, "decide", decision="flag")
    ex.sort_by("isolated_target_db", ascending=False)
    ex.set_filter(text="clip")
    ex.goto(5)
    assert [p.name for p in tmp_path.iterdir()] == ["review.json"]  # no temp files left
    ex.close()

    ex2 = Explorer(small_ds, session=str(path))  # e.g. after a kernel restart
    assert ex2.decisions == {0: "keep", 1: "discard", 2: "flag"}
    assert ex2.row == 5 and ex2.state.sort == ("isolated_target_db", False)
    assert ex2.table["filter"]["text"] == "clip"
    assert ex2.current["counts_text"] == "1 keep · 1 discard · 1 flag · 5 undecided"
    ex2.decide(None, row=1)
    assert Explorer(small_ds, session=path).decisions == {0: "keep", 2: "flag"}


def test_session_errors_say_what_to_do(small_ds, tmp_path):
    path = tmp_path / "review.json"
    Explorer(small_ds, session=path).decide("keep")
    with pytest.raises(ExplorerError, match="made for a dataset of 8 rows"):
        Explorer(small_ds.select(range(3)), session=path)
    path.write_text("{not json")
    with pytest.raises(ExplorerError, match="another session= path"):
        Explorer(small_ds, session=path)
    with pytest.raises(ExplorerError, match="no session file"):
        Explorer(small_ds).save()


# --- apply ----------------------------------------------------------------------------------


def test_apply_filter_and_column(small_ds):
    ex = Explorer(small_ds)
    ex.decide("keep", row=0)
    ex.decide("discard", row=1)
    ex.decide("flag", row=2)
    assert ex.apply(small_ds)["id"][:] == [0, 3, 4, 5, 6, 7]  # discards and flags dropped
    assert ex.apply(small_ds, keep_flagged=True)["id"][:] == [0, 2, 3, 4, 5, 6, 7]
    assert ex.apply(small_ds, keep_undecided=False)["id"][:] == [0]
    marked = ex.apply(small_ds, mode="column")
    assert len(marked) == 8 and marked.features["decision"].dtype == "string"
    assert marked["decision"][:] == ["keep", "discard", "flag"] + [None] * 5
    assert marked.features["audio"] == small_ds.features["audio"]
    assert ex.apply(marked, mode="column")["decision"][:3] == ["keep", "discard", "flag"]
    ex.undo(), ex.undo(), ex.undo()
    assert Explorer(small_ds).apply(mode="column").features["decision"].dtype == "string"
    with pytest.raises(ExplorerError, match="same dataset"):
        ex.apply(small_ds.select(range(4)))
    with pytest.raises(ExplorerError, match="'filter' or 'column'"):
        ex.apply(small_ds, mode="drop")


def test_bad_arguments_are_explained(small_ds):
    with pytest.raises(ExplorerError, match="no isolated column 'clean'"):
        Explorer(small_ds, isolated="clean")
    with pytest.raises(ExplorerError, match="not a numeric or boolean"):
        Explorer(small_ds, metrics=["label"])
    with pytest.raises(ExplorerError, match="DatasetDict"):
        from datasets import DatasetDict

        Explorer(DatasetDict({"train": small_ds}))
    with pytest.raises(ExplorerError, match="needs a client"):
        Explorer(small_ds).quote("dog barking")
    with pytest.raises(ExplorerError, match="nothing to confirm"):
        Explorer(small_ds).confirm()
    assert not Explorer(small_ds).current["can_reisolate"]


# --- re-isolation against a real local endpoint ---------------------------------------------


def test_reisolate_shows_price_then_spends_once_then_is_cached(endpoint, client, tmp_path):
    ds = isolated_dataset(client, n=3)
    session = tmp_path / "review.json"
    ex = Explorer(
        ds,
        client=client,
        session=session,
        description="a man speaking",
        columns=["isolated_target_db", "isolated_cost", "isolated_cached"],
    )
    ex.goto(1)
    before = endpoint.stats["requests"]
    v = send(ex, "quote", description="half", candidates="3")  # the price, nothing sent
    assert endpoint.stats["requests"] == before
    assert v["quote"]["ready"] and v["quote"]["label"] == f"confirm: spend ${PRICE:.3f}"
    assert v["quote"]["text"].startswith("row 2: isolate 'half' with 3 candidate(s) costs $0.062")
    v = send(ex, "confirm", description="half", candidates="4")  # edited since: not spent
    assert "changed since the price" in v["message"] and not v["quote"]
    send(ex, "quote", description="half", candidates="4")
    v = send(ex, "confirm", description="half", candidates="4")
    assert v["message"] == "row 2 re-isolated with 'half' for $0.062." and not v["quote"]
    assert endpoint.stats["requests"] == before + 1  # one billed request

    expected = client.isolate(clip(1, 16000, 1.0), 16000, "half", reranking_candidates=4)
    iso, _ = lane_audio(ex, "isolated")
    np.testing.assert_allclose(iso[0], expected, atol=2e-4)
    assert v["lanes"][1]["note"].startswith("re-isolated: 'half'")
    meta = ex.reisolated[1]
    assert (meta["description"], meta["reranking_candidates"], meta["cost"]) == ("half", 4, PRICE)
    assert meta["signals"]["target_db"] == pytest.approx(-6.02, abs=0.05)  # 0.5 x the mix
    # the table and the signals show the new cost and cache state; one spend figure adds up
    cells = next(r for r in ex.table["rows"] if r["row"] == 1)["cells"]
    assert cells[1:] == [f"${2 * PRICE:.3f}", "no"]
    sig = {s["name"]: s for s in v["signals"]}
    assert sig["target_db"]["value"] == "-6.0" and sig["cost"]["was"] == "$0.062"
    assert v["spend"] == "spent $0.248 = dataset $0.186 + re-isolations $0.062"
    assert ex.spend() == pytest.approx(
        {"dataset": 3 * PRICE, "reisolations": PRICE, "total": 4 * PRICE}
    )

    v = send(ex, "quote", description="half", candidates="4")  # the same again: cached
    assert v["quote"]["label"] == "confirm (free, cached)"
    assert v["quote"]["text"].startswith("row 2: isolate 'half' with 4 candidate(s) is already")
    n = endpoint.stats["requests"]
    v = send(ex, "confirm", description="half", candidates="4")
    assert endpoint.stats["requests"] == n
    assert v["message"] == "row 2 re-isolated with 'half' from the cache (free)."
    cells = next(r for r in ex.table["rows"] if r["row"] == 1)["cells"]
    assert cells[1:] == [f"${2 * PRICE:.3f}", "yes"]

    out = ex.apply(ds)
    y, sr = read_value(out[1]["isolated"])
    np.testing.assert_allclose(y[0], expected, atol=1e-6)
    assert out[1]["isolated_target_db"] == pytest.approx(meta["signals"]["target_db"])
    assert out[1]["isolated_cost"] == pytest.approx(ds[1]["isolated_cost"] + PRICE)
    assert out[0]["isolated_target_db"] == pytest.approx(ds[0]["isolated_target_db"])
    assert out.features["isolated"] == ds.features["isolated"]

    # a new kernel: the metadata comes from the session file, the audio from the cache
    with Client(
        KEY, endpoint=endpoint.url, cache_dir=tmp_path / "cache", progress=False
    ) as client2:
        n = endpoint.stats["requests"]
        ex2 = Explorer(ds, client=client2, session=session)
        assert ex2.row == 1 and ex2.reisolated[1]["description"] == "half"
        iso2, _ = lane_audio(ex2, "isolated")
        np.testing.assert_allclose(iso2[0], expected, atol=2e-4)
        out2 = ex2.apply(ds, mode="column")
        np.testing.assert_allclose(read_value(out2[1]["isolated"])[0][0], expected, atol=1e-6)
        assert endpoint.stats["requests"] == n and client2.usage.cost == 0.0

    text = session.read_text()
    assert KEY not in text and "x-api-key" not in text
    with pytest.raises(ExplorerError, match="pass client="):
        Explorer(ds, session=session).apply(ds)


def test_reisolate_errors_are_shown_in_the_widget(endpoint, client):
    ds = synthetic_dataset(2, seconds=0.3)
    ex = Explorer(ds, client=client)
    v = send(ex, "quote", description="", candidates="1")
    assert "type what to isolate" in v["message"]
    v = send(ex, "quote", description="dog", candidates="9")
    assert v["message"] == "candidates must be 1..8, got 9."
    assert (v["description"], v["candidates"]) == ("dog", "9")  # the boxes keep the typing
    assert not v["quote"]
    send(ex, "quote", description="dog", candidates="1")
    endpoint.inject("status", status=406)  # out of credits
    v = send(ex, "confirm", description="dog", candidates="1")
    assert "credits" in v["message"].lower() and v["message_error"] and KEY not in v["message"]
    assert ex.reisolated == {}


def test_api_key_never_in_widget_state_or_session(endpoint, client, tmp_path):
    ds = isolated_dataset(client, n=2)
    ex = Explorer(ds, client=client, session=tmp_path / "s.json", description="low")
    ex.quote()
    ex.confirm()
    send(ex, "decide", decision="keep")
    send(ex, "quote", description="low", candidates="2")
    state = ex.widget.get_state()
    assert {"view", "table", "media"} <= set(state)
    for k, v in state.items():
        blob = json.dumps(v, default=lambda o: bytes(o).hex()).encode()
        assert KEY.encode() not in blob and KEY.encode().hex().encode() not in blob, k
    assert KEY not in repr(ex) and KEY not in (tmp_path / "s.json").read_text()
    v = send(ex, "quote", description=f"speech {KEY}", candidates="1")
    assert KEY not in json.dumps(ex.widget.get_state()["view"])
    # a key pasted as a description is refused before anything is priced, sent or saved
    with pytest.raises(ExplorerError, match="API key"):
        ex.quote(f"speech {KEY}")
    assert KEY not in (tmp_path / "s.json").read_text()
    assert not any(
        KEY.encode() in p.read_bytes() for p in client.cache_dir.rglob("*") if p.is_file()
    )


def test_works_on_dataset_map_output(endpoint, client):
    from datasets import Audio, Dataset

    from samaudio_data import isolate

    sr = 16000
    ds = Dataset.from_list(
        [{"audio": {"bytes": wav_bytes(clip(i, sr, 0.5), sr), "path": None}} for i in range(3)]
    ).cast_column("audio", Audio())
    ds = ds.map(isolate("low", client=client, keep="both"), batched=True, batch_size=4)
    ex = Explorer(ds, client=client)
    assert ex.residual == "isolated_residual" and "isolated_target_db" in ex.metrics
    send(ex, "decide", decision="discard")
    ex.quote("half")
    ex.confirm()
    out = ex.apply(ds, mode="column")
    mix = read_value(ds[1]["audio"])[0][0]
    expected = client.isolate(mix, sr, "half")
    y, _ = read_value(out[1]["isolated"])
    np.testing.assert_allclose(y[0], expected, atol=1e-6)
    r, _ = read_value(out[1]["isolated_residual"])
    np.testing.assert_allclose(r[0], mix - expected, atol=1e-6)
    assert out[1]["isolated_target_db"] == pytest.approx(-6.02, abs=0.05)
    assert out["decision"][:] == ["discard", None, None]
