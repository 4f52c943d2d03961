"""Headless tests of the explorer: real datasets with Audio decoding, real widgets, buttons
clicked with ``button.click()``, re-isolation against a real local HTTP endpoint."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from explorer_fixtures import (PRICE, clip, isolated_dataset, synthetic_dataset,  # noqa: E402
                               wav_bytes)

from samaudio_data import Client  # noqa: E402
from samaudio_data.audio import decode_audio  # noqa: E402
from samaudio_data.hf import read_value  # noqa: E402
from samaudio_data.explorer import KEYS, Explorer, ExplorerError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
from conftest import KEY  # noqa: E402  (endpoint and client fixtures too)


def all_widgets(ex):
    return Explorer._walk(ex.widget)


def player_audio(ex, lane):
    data = bytes(ex._ui[f"player_{lane}"].value)
    y, sr = decode_audio(data)
    return y, sr


@pytest.fixture(scope="module")
def small_ds():
    return synthetic_dataset(8, seconds=0.5)



# --- display ------------------------------------------------------------------------------

def test_row_shows_players_images_signals_and_cost(small_ds):
    ex = Explorer(small_ds)
    ui = ex._ui
    assert ui is None                                    # nothing built before display
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    ui = ex._ui
    for lane in ("original", "isolated", "residual"):
        p = ui[f"player_{lane}"]
        assert (p.autoplay, p.loop, p.controls, p.format) == (False, False, True, "wav")
        assert bytes(p.value[:4]) == b"RIFF"
        for kind in ("wave", "spec"):
            img = ui[f"{kind}_{lane}"]
            assert img.format == "png" and bytes(img.value[:8]) == b"\x89PNG\r\n\x1a\n"
    html = ui["signals"].value
    for s in ("target_db", "residual_db", "present", "clipped_fraction", "cost"):
        assert s in html
    assert "$0.496" in ui["spend"].value                 # 8 rows x $0.062 from the cost column
    assert "row 0" in ui["header"].value and "undecided" in ui["header"].value


def test_residual_is_original_minus_isolated(small_ds):
    ex = Explorer(small_ds)
    ex.widget
    ex.goto(1)                                           # gain 0.5: isolated = residual = mix/2
    mix = clip(1, 16000, 0.5)
    iso, _ = player_audio(ex, "isolated")
    res, sr = player_audio(ex, "residual")
    assert sr == 16000 and res.shape[-1] == mix.size
    np.testing.assert_allclose(iso[0], 0.5 * mix, atol=2e-4)
    np.testing.assert_allclose(res[0], 0.5 * mix, atol=2e-4)
    assert "original − isolated" in ex._ui["label_residual"].value


def test_isolated_at_another_rate_and_stereo_original_are_aligned():
    from datasets import Audio, Dataset

    sr = 16000
    mix = clip(3, sr, 0.5, channels=2)
    mono = mix.mean(axis=0)
    from samaudio_data.audio import resample

    iso48 = resample(mono.astype(np.float64), sr, 48000)[: 48000 // 2 + 960]   # longer, 48 kHz
    ds = Dataset.from_list([{"audio": {"bytes": wav_bytes(mix, sr), "path": None},
                             "isolated": {"bytes": wav_bytes(iso48.astype(np.float32), 48000,
                                                             "FLOAT"), "path": None}}])
    ds = ds.cast_column("audio", Audio()).cast_column("isolated", Audio())
    ex = Explorer(ds)
    ex.widget
    orig, _ = player_audio(ex, "original")
    iso, sr_iso = player_audio(ex, "isolated")
    res, _ = player_audio(ex, "residual")
    assert orig.shape == (2, mono.size)                  # the original plays with its channels
    assert sr_iso == sr and iso.shape == (1, mono.size)
    assert np.max(np.abs(res)) < 0.02                    # identity isolation: nothing left


def test_residual_column_is_used_when_present(small_ds):
    from datasets import Audio

    silent = [{"bytes": wav_bytes(np.zeros(8000, np.float32), 16000), "path": None}] * 8
    ds = small_ds.add_column("isolated_residual", silent).cast_column("isolated_residual",
                                                                       Audio())
    ex = Explorer(ds)
    assert ex.residual == "isolated_residual"
    ex.widget
    ex.goto(1)
    res, _ = player_audio(ex, "residual")
    assert np.max(np.abs(res)) == 0.0


def test_failed_row_shows_the_error_instead_of_crashing():
    from datasets import Audio, Dataset

    sr = 16000
    rows = [{"audio": {"bytes": wav_bytes(clip(i, sr, 0.3), sr), "path": None},
             "isolated": {"bytes": wav_bytes(clip(i, sr, 0.3), sr) if i else b"", "path": None},
             "isolated_error": "" if i else "ServerError: [500] boom",
             "isolated_target_db": 0.0 if i else float("nan")} for i in range(2)]
    ds = Dataset.from_list(rows).cast_column("audio", Audio())
    ex = Explorer(ds)
    ex.widget
    assert "no isolated audio" in ex._ui["label_isolated"].value
    assert "boom" in ex._ui["signals"].value
    assert ex._ui["message"].value == ""
    ex.sort_by("isolated_target_db")
    assert ex.queue == [1, 0]                            # NaN last


# --- decisions, buttons, keys ---------------------------------------------------------------

def test_buttons_decide_and_advance(small_ds):
    ex = Explorer(small_ds)
    ui = ex._ui if ex._ui else (ex.widget, ex._ui)[1]
    ui["keep"].click()
    assert ex.decisions == {0: "keep"} and ex.row == 1
    ui["discard"].click()
    ui["flag"].click()
    assert ex.decisions == {0: "keep", 1: "discard", 2: "flag"} and ex.row == 3
    ui["prev"].click()
    assert ex.row == 2 and "flag" in ui["header"].value
    ui["clear"].click()
    assert 2 not in ex.decisions
    ui["next"].click()
    ui["next"].click()
    assert ex.row == 4
    ui["jump"].value = 6
    ui["go"].click()
    assert ex.row == 6
    assert "1 keep, 1 discard, 0 flag, 6 undecided" in ui["queue"].value
    ex.goto(7)
    ui["next"].click()                                   # end of the queue: stays
    assert ex.row == 7 and "end of the queue" in ui["message"].value
    ex.auto_advance = False
    ui["discard"].click()
    assert ex.row == 7 and ex.decisions[7] == "discard"


def test_keyboard_box(small_ds):
    ex = Explorer(small_ds)
    ex.widget
    keys = ex._ui["keys"]
    assert keys.continuous_update is True
    keys.value = "d"                                     # what the browser sends on a key press
    assert ex.decisions == {0: "discard"} and ex.row == 1 and keys.value == ""
    keys.value = "K"
    keys.value = "f"
    assert ex.decisions == {0: "discard", 1: "keep", 2: "flag"} and ex.row == 3
    keys.value = "j"
    assert ex.row == 2
    keys.value = "u"
    assert 2 not in ex.decisions
    keys.value = "l"
    keys.value = "n"
    keys.value = "p"
    assert ex.row == 3
    keys.value = "xx"                                    # unknown: a hint, nothing changes
    assert ex.row == 3 and "does nothing" in ex._ui["message"].value
    assert set(KEYS) == set("kdfulnjp")


def test_decide_rejects_bad_values(small_ds):
    ex = Explorer(small_ds)
    with pytest.raises(ExplorerError, match="keep"):
        ex.decide("maybe")
    with pytest.raises(ExplorerError, match="out of range"):
        ex.decide("keep", row=99)
    with pytest.raises(ExplorerError, match="out of range"):
        ex.goto(-1)


# --- sort and filter ------------------------------------------------------------------------

def test_sort_and_filter_from_the_widgets(small_ds):
    ex = Explorer(small_ds)
    ex.widget
    ui = ex._ui
    ui["sort"].value = "isolated_target_db"              # least target energy first
    db = np.array(small_ds["isolated_target_db"][:])
    assert ex.queue == list(np.argsort(db, kind="stable"))
    assert db[ex.queue[0]] == -120.0
    assert ex.row == 0                                   # current row stays shown
    ui["order"].value = "descending"
    assert db[ex.queue[0]] > -0.01
    ui["fcol"].value = "isolated_target_db"
    ui["fmin"].value = "-30"
    ui["fmax"].value = "-1"
    assert sorted(ex.queue) == [1, 2, 5, 6]              # gains 0.5 and 0.1
    assert ex.row in ex.queue
    ui["next"].click()
    assert ex.row in ex.queue
    ui["fmin"].value = "oops"
    assert "must be a number" in ui["message"].value
    ui["fmin"].value = ""
    ui["fmax"].value = ""
    ui["fcol"].value = ""
    assert len(ex.queue) == 8
    ex.decide("flag", row=3)
    ui["fdec"].value = "flag"
    assert ex.queue == [3] and ex.row == 3
    ui["fdec"].value = "undecided"
    assert 3 not in ex.queue and len(ex.queue) == 7


def test_programmatic_sort_filter_updates_widgets(small_ds):
    ex = Explorer(small_ds)
    ex.widget
    ex.sort_by("isolated_target_db", ascending=True)
    ex.set_filter("isolated_present", min=1)
    assert ex._ui["sort"].value == "isolated_target_db"
    assert ex._ui["fcol"].value == "isolated_present" and ex._ui["fmin"].value == "1.0"
    present = small_ds["isolated_present"][:]
    assert sorted(ex.queue) == [i for i in range(8) if present[i]]
    ex.set_filter("isolated_target_db", max=-200)
    assert ex.queue == []
    ex.next()
    assert "queue is empty" in ex._ui["message"].value
    with pytest.raises(ExplorerError, match="sortable columns"):
        ex.sort_by("label")
    with pytest.raises(ExplorerError, match="needs a column"):
        ex.set_filter(min=3)


# --- laziness and speed ---------------------------------------------------------------------

def test_construction_decodes_nothing_and_rows_load_on_demand(monkeypatch):
    import datasets

    import samaudio_data.explorer._explorer as explorer_mod

    ds = synthetic_dataset(200, seconds=0.1)
    keys, decodes = [], []
    orig_getitem = datasets.Dataset.__getitem__
    orig_read = explorer_mod.read_value
    orig_decode = datasets.Audio.decode_example

    def getitem(self, key):
        keys.append(key)
        return orig_getitem(self, key)

    def counting_read(value):
        decodes.append(value)
        return orig_read(value)

    def counting_decode(self, *a, **k):
        decodes.append("datasets")
        return orig_decode(self, *a, **k)

    monkeypatch.setattr(datasets.Dataset, "__getitem__", getitem)
    monkeypatch.setattr(explorer_mod, "read_value", counting_read)
    monkeypatch.setattr(datasets.Audio, "decode_example", counting_decode)
    ex = Explorer(ds)
    ex.sort_by("isolated_target_db")
    ex.set_filter("isolated_target_db", max=-10)
    assert decodes == []
    assert not [k for k in keys if isinstance(k, (int, np.integer))]
    assert ex._ui is None                                # nothing drawn either
    ex.widget
    row_keys = [k for k in keys if isinstance(k, (int, np.integer))]
    assert row_keys == [ex.row] and len(decodes) == 2    # original + isolated of one row
    ex.next()
    row_keys = [k for k in keys if isinstance(k, (int, np.integer))]
    assert row_keys == ex.queue[:2] and len(decodes) == 4
    ex.prev()                                            # recent rows are kept
    assert len(decodes) == 4


def test_moving_between_rows_is_fast():
    ds = synthetic_dataset(6, sr=48000, seconds=5.0, channels=2)
    ex = Explorer(ds)
    ex.widget
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        ex.next()
        times.append(time.perf_counter() - t0)
    assert max(times) < 1.0, times
    assert sorted(times)[2] < 0.5, times


# --- session file ---------------------------------------------------------------------------

def test_session_round_trip(small_ds, tmp_path):
    path = tmp_path / "review.json"
    ex = Explorer(small_ds, session=path)
    ex.widget
    assert json.loads(path.read_text())["decisions"] == {}
    ex._ui["keep"].click()
    assert json.loads(path.read_text())["decisions"] == {"0": "keep"}
    ex._ui["discard"].click()
    ex._ui["flag"].click()
    ex.sort_by("isolated_target_db", ascending=False)
    ex.goto(5)
    assert [p.name for p in tmp_path.iterdir()] == ["review.json"]   # no temp files left
    del ex

    ex2 = Explorer(small_ds, session=str(path))          # e.g. after a kernel restart
    assert ex2.decisions == {0: "keep", 1: "discard", 2: "flag"}
    assert ex2.row == 5 and ex2._sort == ("isolated_target_db", False)
    ex2.widget
    assert ex2._ui["sort"].value == "isolated_target_db"
    assert ex2._ui["order"].value == "descending" and ex2._ui["fcol"].value == ""
    assert "1 keep, 1 discard, 1 flag" in ex2._ui["queue"].value
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
    kept = ex.apply(small_ds)
    assert kept["id"][:] == [0, 3, 4, 5, 6, 7]           # default: discards and flags dropped
    assert ex.apply(small_ds, keep_flagged=True)["id"][:] == [0, 2, 3, 4, 5, 6, 7]
    assert ex.apply(small_ds, keep_undecided=False)["id"][:] == [0]
    marked = ex.apply(small_ds, mode="column")
    assert len(marked) == 8
    assert marked["decision"][:] == ["keep", "discard", "flag"] + [None] * 5
    assert marked.features["audio"] == small_ds.features["audio"]
    assert ex.apply(marked, mode="column")["decision"][:3] == ["keep", "discard", "flag"]
    with pytest.raises(ExplorerError, match="same dataset"):
        ex.apply(small_ds.select(range(4)))
    with pytest.raises(ExplorerError, match="'filter' or 'column'"):
        ex.apply(small_ds, mode="drop")


def test_bad_arguments_are_explained(small_ds):
    with pytest.raises(ExplorerError, match="no isolated column 'clean'"):
        Explorer(small_ds, isolated="clean")
    with pytest.raises(ExplorerError, match="not numeric"):
        Explorer(small_ds, metrics=["label"])
    with pytest.raises(ExplorerError, match="DatasetDict"):
        from datasets import DatasetDict

        Explorer(DatasetDict({"train": small_ds}))
    with pytest.raises(ExplorerError, match="needs a client"):
        Explorer(small_ds).quote("dog barking")
    with pytest.raises(ExplorerError, match="nothing to confirm"):
        Explorer(small_ds).confirm()


# --- re-isolation against a real local endpoint ---------------------------------------------

def test_reisolate_shows_price_then_spends_once_then_is_cached(endpoint, client, tmp_path):
    ds = isolated_dataset(client, n=3)
    session = tmp_path / "review.json"
    ex = Explorer(ds, client=client, session=session, description="a man speaking")
    ex.widget
    ui = ex._ui
    ex.goto(1)
    before = endpoint.stats["requests"]
    ui["desc"].value = "half"
    ui["cand"].value = 3
    assert ui["confirm"].disabled
    ui["price"].click()                                  # the price, nothing sent
    assert endpoint.stats["requests"] == before
    assert f"${PRICE:.3f}" in ui["quote"].value and not ui["confirm"].disabled
    assert ui["confirm"].description == f"confirm: spend ${PRICE:.3f}"
    ui["cand"].value = 4                                 # changing the request drops the price
    assert ui["confirm"].disabled
    ui["price"].click()
    ui["confirm"].click()
    assert ui["message"].value == ""
    assert endpoint.stats["requests"] == before + 1      # one billed request
    assert ui["confirm"].disabled

    expected = client.isolate(clip(1, 16000, 1.0), 16000, "half", reranking_candidates=4)
    iso, _ = player_audio(ex, "isolated")
    np.testing.assert_allclose(iso[0], expected, atol=2e-4)
    assert "re-isolated" in ui["label_isolated"].value
    assert "→" in ui["signals"].value
    meta = ex.reisolated[1]
    assert (meta["description"], meta["reranking_candidates"], meta["cost"]) == ("half", 4, PRICE)
    assert meta["signals"]["target_db"] == pytest.approx(-6.02, abs=0.05)   # 0.5 x the mix
    assert ex.spend()["reisolations"] == PRICE
    assert f"${3 * PRICE + PRICE:.3f}" in ui["spend"].value

    ui["price"].click()                                  # the same request again: cached
    assert "cached: free" in ui["quote"].value
    n = endpoint.stats["requests"]
    ui["confirm"].click()
    assert endpoint.stats["requests"] == n

    out = ex.apply(ds)
    y, sr = read_value(out[1]["isolated"])
    np.testing.assert_allclose(y[0], expected, atol=1e-6)
    assert out[1]["isolated_target_db"] == pytest.approx(meta["signals"]["target_db"])
    assert out[1]["isolated_cost"] == pytest.approx(ds[1]["isolated_cost"] + PRICE)
    assert out[0]["isolated_target_db"] == pytest.approx(ds[0]["isolated_target_db"])
    assert out.features["isolated"] == ds.features["isolated"]

    # a new kernel: the metadata comes from the session file, the audio from the cache
    with Client(KEY, endpoint=endpoint.url, cache_dir=tmp_path / "cache",
                progress=False) as client2:
        n = endpoint.stats["requests"]
        ex2 = Explorer(ds, client=client2, session=session)
        assert ex2.row == 1 and ex2.reisolated[1]["description"] == "half"
        ex2.widget
        iso2, _ = player_audio(ex2, "isolated")
        np.testing.assert_allclose(iso2[0], expected, atol=2e-4)
        out2 = ex2.apply(ds, mode="column")
        np.testing.assert_allclose(read_value(out2[1]["isolated"])[0][0], expected, atol=1e-6)
        assert endpoint.stats["requests"] == n and client2.usage.cost == 0.0

    text = session.read_text()
    assert KEY not in text and "x-api-key" not in text
    # without a client the earlier re-isolation cannot come back: apply says what to do
    with pytest.raises(ExplorerError, match="pass client="):
        Explorer(ds, session=session).apply(ds)


def test_reisolate_errors_are_shown_in_the_widget(endpoint, client):
    ds = synthetic_dataset(2, seconds=0.3)
    ex = Explorer(ds, client=client)
    ex.widget
    ex._ui["desc"].value = ""
    ex._ui["price"].click()
    assert "type what to isolate" in ex._ui["message"].value
    ex._ui["desc"].value = "dog"
    ex._ui["price"].click()
    endpoint.inject("status", status=406)               # out of credits
    ex._ui["confirm"].click()
    msg = ex._ui["message"].value
    assert "InsufficientCreditsError" in msg and KEY not in msg
    assert ex.reisolated == {}


def test_api_key_never_in_widget_state(endpoint, client, tmp_path):
    ds = isolated_dataset(client, n=2)
    ex = Explorer(ds, client=client, session=tmp_path / "s.json", description="low")
    ex.widget
    ex.quote()
    ex.confirm()
    ex._ui["keep"].click()
    ex._ui["price"].click()
    widgets = all_widgets(ex)
    assert len(widgets) > 30
    for w in widgets:
        state = w.get_state()
        for k, v in state.items():
            blob = bytes(v) if isinstance(v, (bytes, memoryview)) else \
                json.dumps(v, default=str).encode()
            assert KEY.encode() not in blob, (type(w).__name__, k)
    assert KEY not in repr(ex) and KEY not in (tmp_path / "s.json").read_text()


# --- the pipeline from dataset_map, and the notebook ----------------------------------------

def test_works_on_dataset_map_output(endpoint, client):
    from datasets import Audio, Dataset

    isolate = pytest.importorskip("samaudio_data").isolate
    sr = 16000
    ds = Dataset.from_list([{"audio": {"bytes": wav_bytes(clip(i, sr, 0.5), sr), "path": None}}
                            for i in range(3)]).cast_column("audio", Audio())
    ds = ds.map(isolate("low", client=client, keep="both"), batched=True, batch_size=4)
    ex = Explorer(ds, client=client)
    assert ex.residual == "isolated_residual" and "isolated_target_db" in ex.metrics
    ex.widget
    ex._ui["discard"].click()
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


def test_notebook_runs_without_error(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    path = REPO / "notebooks" / "03_explorer.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "store the notebook without outputs"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("SAMAUDIO_CACHE_DIR", str(tmp_path / "cache"))
    NotebookClient(nb, kernel_name="python3", timeout=180,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "kept" in text
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
