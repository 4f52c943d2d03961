"""Headless tests of the explorer's review: real datasets with Audio columns, the real widget
object (its synced ``view``/``table``/``media`` traits are what the browser draws) and actions
sent the way the browser sends them (``widget.receive``). Session file, apply and
re-isolation: ``test_explorer_apply.py``; the browser side: ``test_explorer_browser.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from explorer_fixtures import clip, lane_audio, send, synthetic_dataset, wav_bytes  # noqa: E402

from samaudio_data.explorer import (  # noqa: E402
    KEY_MAP,
    KEYS,
    SILENCE_RGB,
    Explorer,
    ExplorerError,
    example_dataset,
    png_pixels,
)


@pytest.fixture(scope="module")
def small_ds():
    return synthetic_dataset(8, seconds=0.5)


# --- what a row shows -----------------------------------------------------------------------


def test_row_shows_players_images_signals_and_one_spend_figure(small_ds):
    ex = Explorer(small_ds)
    bundle = ex._repr_mimebundle_()  # what IPython displays
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    media = ex.widget.media
    for lane in ("original", "isolated", "residual"):
        assert bytes(media[lane]["wav"][:4]) == b"RIFF"
        for kind in ("wave", "spec"):
            assert bytes(media[lane][kind][:8]) == b"\x89PNG\r\n\x1a\n"
    v = ex.widget.view
    assert v["title"] == "row 1 of 8" and v["position"] == "1 of 8 in the queue"
    assert v["decision"] == "" and v["info"] == "0.50 s · 16000 Hz · 1 ch"
    names = [s["name"] for s in v["signals"]]
    for s in ("target_db", "residual_db", "present", "clipped_fraction", "cost"):
        assert s in names
    assert v["spend"] == "spent $0.496 = dataset $0.496 + re-isolations $0.000"
    assert [t[1] for t in v["time_ticks"]] == ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5 s"]
    assert [t[1] for t in v["freq_ticks"]] == ["100", "300", "1k", "3k"]
    assert [k for k, _ in KEY_MAP][:5] == ["k", "d", "f", "u", "z"]


def test_numbers_are_formatted_one_way_everywhere(small_ds):
    ex = Explorer(
        small_ds,
        columns=[
            "label",
            "isolated_target_db",
            "isolated_clipped_fraction",
            "isolated_present",
            "isolated_cost",
        ],
    )
    ex.goto(3)  # gain 0: a silent isolated sound
    row = next(r for r in ex.table["rows"] if r["row"] == 3)
    assert row["label"] == "4" and row["cells"] == ["clip-3", "-120.0", "0.000", "no", "$0.062"]
    sig = {s["name"]: s["value"] for s in ex.current["signals"]}
    assert sig["target_db"] == "-120.0" and sig["cost"] == "$0.062"


def test_residual_is_original_minus_isolated(small_ds):
    ex = Explorer(small_ds)
    ex.goto(1)  # gain 0.5: isolated = residual = mix/2
    mix = clip(1, 16000, 0.5)
    iso, _ = lane_audio(ex, "isolated")
    res, sr = lane_audio(ex, "residual")
    assert sr == 16000 and res.shape[-1] == mix.size
    np.testing.assert_allclose(iso[0], 0.5 * mix, atol=2e-4)
    np.testing.assert_allclose(res[0], 0.5 * mix, atol=2e-4)
    assert ex.current["lanes"][2]["note"] == "original − isolated"


def test_isolated_at_another_rate_and_stereo_original_are_aligned():
    from datasets import Audio, Dataset

    from samaudio_data.audio import resample

    sr = 16000
    mix = clip(3, sr, 0.5, channels=2)
    mono = mix.mean(axis=0)
    iso48 = resample(mono.astype(np.float64), sr, 48000)[: 48000 // 2 + 960]  # longer, 48 kHz
    ds = Dataset.from_list(
        [
            {
                "audio": {"bytes": wav_bytes(mix, sr), "path": None},
                "isolated": {
                    "bytes": wav_bytes(iso48.astype(np.float32), 48000, "FLOAT"),
                    "path": None,
                },
            }
        ]
    )
    ds = ds.cast_column("audio", Audio()).cast_column("isolated", Audio())
    ex = Explorer(ds)
    orig, _ = lane_audio(ex, "original")
    iso, sr_iso = lane_audio(ex, "isolated")
    res, _ = lane_audio(ex, "residual")
    assert orig.shape == (2, mono.size)  # the original plays with its channels
    assert sr_iso == sr and iso.shape == (1, mono.size)
    assert np.max(np.abs(res)) < 0.02  # identity isolation: nothing left
    assert ex.current["info"] == "0.50 s · 16000 Hz · 2 ch"


def test_residual_column_is_used_when_present(small_ds):
    from datasets import Audio

    silent = [{"bytes": wav_bytes(np.zeros(8000, np.float32), 16000), "path": None}] * 8
    ds = small_ds.add_column("isolated_residual", silent).cast_column("isolated_residual", Audio())
    ex = Explorer(ds)
    assert ex.residual == "isolated_residual"
    ex.goto(1)
    res, _ = lane_audio(ex, "residual")
    assert np.max(np.abs(res)) == 0.0


def test_failed_row_shows_the_error_instead_of_crashing():
    from datasets import Audio, Dataset

    sr = 16000
    rows = [
        {
            "audio": {"bytes": wav_bytes(clip(i, sr, 0.3), sr), "path": None},
            "isolated": {"bytes": wav_bytes(clip(i, sr, 0.3), sr) if i else b"", "path": None},
            "isolated_error": "" if i else "ServerError: [500] boom",
            "isolated_target_db": 0.0 if i else float("nan"),
        }
        for i in range(2)
    ]
    ds = Dataset.from_list(rows).cast_column("audio", Audio())
    ex = Explorer(ds)
    v = ex.current
    assert v["lanes"][1]["note"].startswith("no isolated audio") and v["lanes"][1]["empty"]
    assert "boom" in v["error"] and v["message"] == ""
    assert ex.widget.media["isolated"]["wav"] == b""
    ex.sort_by("isolated_target_db")
    assert ex.queue == [1, 0]  # NaN last
    assert ex.table["rows"][1]["cells"][ex.columns.index("isolated_target_db")] == "–"


# --- images: shared scale, silence dark ---------------------------------------------------


def test_silence_is_dark_and_lanes_share_one_scale(small_ds):
    ex = Explorer(small_ds)
    ex.goto(3)  # gain 0: silent isolated lane
    spec = png_pixels(ex.widget.media["isolated"]["spec"])
    assert (spec == SILENCE_RGB).all()  # dark, not bright pale yellow
    ex.goto(1)  # isolated = mix / 2
    coloured = {}
    for lane in ("original", "isolated"):
        px = png_pixels(ex.widget.media[lane]["wave"])
        coloured[lane] = int((px.min(axis=2) < 200).sum(axis=0).max())  # tallest column
    assert 0.4 < coloured["isolated"] / coloured["original"] < 0.65
    bright = {
        lane: float(png_pixels(ex.widget.media[lane]["spec"]).mean())
        for lane in ("original", "isolated")
    }
    assert bright["isolated"] < bright["original"]  # 6 dB down on the same colour scale

    from datasets import Audio, Dataset

    silent = Dataset.from_list(
        [
            {
                "audio": {"bytes": wav_bytes(np.zeros(8000, np.float32), 16000), "path": None},
                "isolated": {"bytes": wav_bytes(np.zeros(8000, np.float32), 16000), "path": None},
            }
        ]
    )
    ex = Explorer(silent.cast_column("audio", Audio()).cast_column("isolated", Audio()))
    for lane in ("original", "isolated", "residual"):  # reference power 0: still dark
        assert (png_pixels(ex.widget.media[lane]["spec"]) == SILENCE_RGB).all()


# --- keys, buttons, numbering ------------------------------------------------------------------


def test_the_browser_code_and_the_kernel_agree_on_actions_and_keys():
    """Every action the shipped front end sends has a handler, every handler has a sender,
    and the keys the browser forwards are the kernel's own list, sent once."""
    import re
    from importlib.resources import files

    from samaudio_data.explorer._actions import ACTIONS
    from samaudio_data.explorer._widget import ExplorerWidget

    js = files("samaudio_data.explorer").joinpath("static/explorer.js").read_text()
    sent = set(re.findall(r'send\("(\w+)"', js))
    assert sent == set(ACTIONS)
    assert "ArrowLeft" not in js and '"k"' not in js  # no second copy of the key list
    w = ExplorerWidget()
    assert w.shortcuts == {"actions": list(KEYS), "help": [list(k) for k in KEY_MAP]}
    assert "keys" not in Explorer(example_dataset(2)).widget.view  # not resent per row


def test_keys_decide_advance_and_undo(small_ds):
    ex = Explorer(small_ds)
    assert set(KEYS) == set("kdfulnjpz") | {"ArrowLeft", "ArrowRight"}
    send(ex, "key", key="d")  # what the browser sends on "d"
    assert ex.decisions == {0: "discard"} and ex.row == 1
    send(ex, "key", key="K")
    send(ex, "key", key="f")
    assert ex.decisions == {0: "discard", 1: "keep", 2: "flag"} and ex.row == 3
    send(ex, "key", key="ArrowLeft")
    assert ex.row == 2
    send(ex, "key", key="u")
    assert 2 not in ex.decisions
    v = send(ex, "key", key="z")  # undo the clear
    assert ex.decisions[2] == "flag" and v["message"] == "undid clear of row 3"
    send(ex, "key", key="z")
    send(ex, "key", key="z")
    assert ex.decisions == {0: "discard"} and ex.row == 1  # undo goes back to the row
    send(ex, "key", key="l")
    send(ex, "key", key="ArrowRight")
    send(ex, "key", key="p")
    assert ex.row == 2
    v = send(ex, "key", key="x")  # unknown: a hint, nothing changes
    assert ex.row == 2 and "does nothing" in v["message"]
    send(ex, "key", key="z")
    v = send(ex, "key", key="z")
    assert v["message"] == "nothing to undo." and v["message_error"] and ex.decisions == {}


def test_buttons_and_row_box_use_one_based_numbers(small_ds):
    ex = Explorer(small_ds)
    send(ex, "decide", decision="keep")
    assert ex.decisions == {0: "keep"} and ex.row == 1
    v = send(ex, "goto", row="7")  # the row box: Enter or "go"
    assert ex.row == 6 and v["title"] == "row 7 of 8" and v["position"] == "7 of 8 in the queue"
    v = send(ex, "goto", row="99")  # out of range: an error, no jump
    assert ex.row == 6 and v["message"] == "row 99 is out of range: rows are 1..8."
    assert v["message_error"]
    v = send(ex, "goto", row="abc")
    assert "type a row number 1..8" in v["message"] and ex.row == 6
    send(ex, "goto", row="8")
    v = send(ex, "next")
    assert ex.row == 7 and v["message"] == "end of the queue."
    ex.auto_advance = False
    send(ex, "decide", decision="discard")
    assert ex.row == 7 and ex.decisions[7] == "discard"
    send(ex, "decide", decision="")  # clear
    assert 7 not in ex.decisions
    with pytest.raises(ExplorerError, match="row 100 is out of range: rows are 1..8"):
        ex.decide("keep", row=99)
    with pytest.raises(ExplorerError, match="keep"):
        ex.decide("maybe")


# --- queue table: columns, sort, filter, pages, open ------------------------------------------


def test_table_shows_text_columns_sorts_filters_and_opens_rows():
    ds = example_dataset(24)
    ex = Explorer(
        ds, columns=["path", "text", "isolated_target_db", "isolated_present"], page_size=10
    )
    t = ex.table
    assert [c["short"] for c in t["columns"]] == ["path", "text", "target_db", "present"]
    assert [c["kind"] for c in t["columns"]] == ["text", "text", "float", "bool"]
    assert (t["page"], t["pages"], t["total"], len(t["rows"])) == (0, 3, 24, 10)
    assert t["rows"][0]["cells"][:2] == ["clips/clip_000.wav", "rain on a tin roof"]
    assert [r["current"] for r in t["rows"]][:2] == [True, False]
    send(ex, "sort", column="text", ascending=True)
    assert ex.row == 0 and ex.table["page"] == ex.state.page_of()  # the row shown stays
    send(ex, "page", page=0)
    texts = [r["cells"][1] for r in ex.table["rows"]]
    assert texts == sorted(texts) and texts[0] == "a dog barking"
    send(ex, "sort", column="isolated_target_db", ascending=False)
    assert ex.table["sort"] == {"column": "isolated_target_db", "ascending": False}
    send(ex, "filter", text="DOG")  # any text column, any case
    assert sorted(ex.queue) == [2, 10, 18] and ex.row in (2, 10, 18)
    send(ex, "filter", column="isolated_present", max="0")
    assert sorted(ex.queue) == [3, 7, 11, 15, 19, 23]
    v = send(ex, "filter", column="isolated_present", min="oops")
    assert "filter min must be a number" in v["message"]
    send(ex, "filter")
    send(ex, "sort", column="")
    send(ex, "page", page=2)
    t = ex.table
    assert t["page"] == 2 and [r["label"] for r in t["rows"]] == [str(i) for i in range(21, 25)]
    send(ex, "open", row=22)  # a click on the table row "23"
    assert ex.current["title"] == "row 23 of 24"
    assert [r["row"] for r in ex.table["rows"] if r["current"]] == [22]
    send(ex, "page", page=0)
    send(ex, "next")  # moving brings the page back
    assert ex.table["page"] == 2
    with pytest.raises(ExplorerError, match="cannot show column 'nope'"):
        Explorer(ds, columns=["nope"])
    assert "audio.path" in Explorer(ds).columns  # the file name, by default


def test_decision_filter_and_programmatic_sort(small_ds):
    ex = Explorer(small_ds)
    ex.sort_by("isolated_target_db")
    db = np.array(small_ds["isolated_target_db"][:])
    assert ex.queue == list(np.argsort(db, kind="stable")) and ex.row == 0
    ex.set_filter("isolated_target_db", min=-30, max=-1)
    assert sorted(ex.queue) == [1, 2, 5, 6]
    assert ex.table["filter"] == {
        "column": "isolated_target_db",
        "min": "-30",
        "max": "-1",
        "decision": "",
        "text": "",
    }
    ex.set_filter()
    ex.decide("flag", row=3)
    ex.set_filter(decision="flag")
    assert ex.queue == [3] and ex.row == 3
    ex.set_filter(decision="undecided")
    assert 3 not in ex.queue and len(ex.queue) == 7
    ex.set_filter("isolated_target_db", max=-200)
    assert ex.queue == []
    ex.next()
    assert ex.message == "the queue is empty: widen the filter to see rows."
    with pytest.raises(ExplorerError, match="columns=\\[...\\]"):
        ex.sort_by("nope")
    with pytest.raises(ExplorerError, match="needs a column"):
        ex.set_filter(min=3)


def test_bulk_decision_on_the_filter_asks_with_the_count_and_undoes(small_ds):
    ex = Explorer(small_ds)
    ex.decide("keep", row=0)
    send(ex, "filter", column="isolated_present", max="0")  # the silent rows 3 and 7
    assert ex.queue == [3, 7]
    v = send(ex, "bulk", decision="discard")
    assert v["bulk"] == {"decision": "discard", "count": 2} and ex.decisions == {0: "keep"}
    v = send(ex, "bulk_cancel")
    assert v["bulk"] == {} and ex.decisions == {0: "keep"}
    send(ex, "bulk", decision="discard")
    v = send(ex, "filter")  # the filter changed: no longer asked
    assert v["bulk"] == {}
    v = send(ex, "bulk_confirm")
    assert "nothing to confirm" in v["message"] and ex.decisions == {0: "keep"}
    send(ex, "bulk", decision="discard")  # all 8 rows now
    v = send(ex, "bulk_confirm")
    assert ex.counts() == {"keep": 0, "discard": 8, "flag": 0, "undecided": 0}
    assert v["message"] == "discard: 8 rows changed (z or undo takes it back)."
    assert v["undo"] == "discard of 8 rows"
    v = send(ex, "undo")
    assert ex.decisions == {0: "keep"} and v["message"] == "undid discard of 8 rows"
    assert ex.bulk("flag") == 8 and ex.bulk("flag") == 0


def test_hundred_thousand_rows_page_without_reading_audio():
    from datasets import Dataset

    n = 100_000
    words = np.array(["speech", "music", "noise", "dog"])
    ds = Dataset.from_dict(
        {
            "audio": [{"bytes": b"", "path": f"c{i}.wav"} for i in range(n)],
            "isolated": [{"bytes": b"", "path": None}] * n,
            "text": list(words[np.arange(n) % 4]),
            "isolated_target_db": list(-(np.arange(n) % 97).astype(float)),
        }
    )
    ex = Explorer(ds, columns=["audio.path", "text", "isolated_target_db"])
    assert ex.table["pages"] == 10_000 and len(ex.table["rows"]) == 10
    ex.sort_by("isolated_target_db")
    ex.set_filter(text="dog")
    assert len(ex.queue) == n // 4 and ex.table["rows"][0]["cells"][1] == "dog"
    assert ex.bulk("discard") == n // 4 and ex.counts()["discard"] == n // 4
    ex.undo()
    assert ex.counts()["undecided"] == n


def test_construction_decodes_nothing_and_rows_load_on_demand(monkeypatch):
    import datasets

    ds = synthetic_dataset(200, seconds=0.1)
    keys, decodes = [], []
    orig_getitem = datasets.Dataset.__getitem__
    orig_decode = datasets.Audio.decode_example

    def getitem(self, key):
        keys.append(key)
        return orig_getitem(self, key)

    def counting_decode(self, *a, **k):
        decodes.append("datasets")
        return orig_decode(self, *a, **k)

    monkeypatch.setattr(datasets.Dataset, "__getitem__", getitem)
    monkeypatch.setattr(datasets.Audio, "decode_example", counting_decode)
    ex = Explorer(ds)
    ex.sort_by("isolated_target_db")
    ex.set_filter("isolated_target_db", max=-10)
    _ = ex.table
    assert not [k for k in keys if isinstance(k, (int, np.integer))]
    _ = ex.widget
    assert [k for k in keys if isinstance(k, (int, np.integer))] == [ex.row]
    ex.next()
    assert [k for k in keys if isinstance(k, (int, np.integer))] == ex.queue[:2]
    ex.prev()  # recent rows are kept
    assert len([k for k in keys if isinstance(k, (int, np.integer))]) == 2
    assert decodes == []  # audio decoded by us, from bytes
