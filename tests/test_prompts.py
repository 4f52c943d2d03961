"""Each row its own description, and several sounds per row: real datasets, real HTTP.

The local endpoint's answer depends on the description (silence: zeros, half: 0.5 x the mix,
bass/low: below 500 Hz, high/treble: the rest, anything else: the mix), so every row's
target level tells which description it was isolated with.
"""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
from conftest import KEY
from datasets import Audio, Dataset
from datasets.fingerprint import Hasher

from samaudio_data import Client, errors, estimate_cost, isolate, prefetch
from samaudio_data.cli import main
from samaudio_data.hf import encode_value, read_value

SR = 16000
# a 200 Hz tone carrying 90 % of the energy and a 3 kHz tone carrying 10 %
LABELS = ["silence", "half", "bass drum", "high hat", "dog barking", "half"]
TARGET_DB = {
    "silence": -120.0,
    "half": -6.02,
    "bass drum": -0.46,
    "high hat": -10.0,
    "dog barking": 0.0,
}


def mix(i, seconds=0.5):
    t = np.arange(int(SR * seconds)) / SR
    y = 0.3 * np.sin(2 * np.pi * 200 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t + i)
    # on 16-bit steps: datasets 3.x stores a mapped dataset's decoded audio again as 16-bit
    # PCM, which then reads back the same and is the same request (a cache hit)
    return (np.round((0.5 + 0.1 * i) * y * 32768) / 32768).astype(np.float32)


def labelled(labels=LABELS, **extra):
    """A decoded labelled dataset: audio, label (and any extra columns)."""
    rows = [
        {"audio": encode_value(mix(i), SR), "label": lab, **{k: v[i] for k, v in extra.items()}}
        for i, lab in enumerate(labels)
    ]
    return Dataset.from_list(rows).cast_column("audio", Audio())


def assert_isolated_with(out, labels, column="isolated"):
    """Every row's answer is the one its own description gives."""
    assert out[f"{column}_description"] == list(labels)
    got = out[f"{column}_target_db"]
    for lab, db in zip(labels, got, strict=True):
        assert db == pytest.approx(TARGET_DB[lab], abs=0.1), (lab, db)


def test_each_row_is_isolated_with_its_own_label_and_a_rerun_pays_nothing(client, endpoint):
    ds = labelled()
    fn = isolate("{label}", client=client)
    est = estimate_cost(ds, fn)
    assert (est.calls, est.cached, est.invalid) == (6, 0, [])
    assert endpoint.stats["requests"] == 0
    out = ds.map(fn, batched=True, batch_size=4)
    assert_isolated_with(out, LABELS)
    assert sorted(endpoint.stats["descriptions"]) == sorted(LABELS)
    assert out["isolated_cost"] == pytest.approx([0.062] * 6)
    # a rerun (a new map function, same template) pays nothing; the estimate says so first
    assert estimate_cost(ds, isolate("{label}", client=client)).calls == 0
    again = ds.map(isolate("{label}", client=client), batched=True)
    assert endpoint.stats["requests"] == 6 and again["isolated_cached"] == [True] * 6
    assert_isolated_with(again, LABELS)


def test_templates_with_text_literal_braces_and_a_callable(client, endpoint):
    ds = labelled(["half", "silence"], kind=["bass", "high"])
    out = ds.map(isolate("the {kind} part {{of the mix}}", client=client), batched=True)
    assert out["isolated_description"] == [
        "the bass part {of the mix}",
        "the high part {of the mix}",
    ]
    assert out["isolated_target_db"] == pytest.approx([-0.46, -10.0], abs=0.1)
    by_fn = ds.map(
        isolate(lambda row: f"{row['label'].upper()} please", client=client, output_column="by_fn")
    )  # unbatched
    assert by_fn["by_fn_description"] == ["HALF please", "SILENCE please"]
    assert by_fn["by_fn_target_db"] == pytest.approx([-6.02, -120.0], abs=0.1)
    assert endpoint.stats["requests"] == 4


def test_per_row_options_are_sent_and_checked_per_row(client, endpoint):
    ds = labelled(["half", "half", "half"], cands=[1, 4, 9])
    with pytest.raises(errors.InvalidRequestError) as e:
        ds.map(
            isolate("{label}", client=client, reranking_candidates="{cands}"),
            batched=True,
            with_indices=True,
        )
    assert "row 2" in str(e.value) and "'cands'" in str(e.value) and "1 to 8" in str(e.value)
    assert endpoint.stats["requests"] == 0  # nothing sent
    fn = isolate(
        "{label}",
        client=client,
        reranking_candidates="{cands}",
        output_format=lambda row: "mp3" if row["cands"] == 4 else "wav",
        on_error="skip",
    )
    assert [why for _, why in estimate_cost(ds, fn).invalid] == [
        "reranking_candidates must be an integer from 1 to 8, got 9. (column 'cands' is 9)"
    ]
    out = ds.map(fn, batched=True)
    assert [bool(e) for e in out["isolated_error"]] == [False, False, True]
    assert endpoint.stats["requests"] == 2
    # each row was sent (and cached) with its own options
    for i, (cands, fmt) in enumerate([(1, "wav"), (4, "mp3")]):
        y = read_value(ds.cast_column("audio", Audio(decode=False))[i]["audio"])[0]
        assert (
            client.estimate([y], SR, "half", reranking_candidates=cands, output_format=fmt).calls
            == 0
        )
        assert client.estimate([y], SR, "half", reranking_candidates=5).calls == 1


def test_a_missing_column_fails_before_anything_is_sent(client, endpoint):
    ds = labelled(["half", "half"])
    fn = isolate("a {lable} sound", client=client, on_error="skip")
    for run in (
        lambda: ds.map(fn, batched=True),
        lambda: ds.map(fn),
        lambda: estimate_cost(ds, fn),
        lambda: prefetch(ds, fn, progress=False),
        lambda: list(ds.to_iterable_dataset().map(fn, batched=True)),
    ):
        with pytest.raises(errors.SamAudioError) as e:
            run()
        assert "'lable'" in str(e.value) and "'label'" in str(e.value)
    opts = isolate("{label}", client=client, reranking_candidates="{k}")
    with pytest.raises(errors.InvalidRequestError, match="reranking_candidates '{k}'"):
        ds.map(opts, batched=True)
    for bad in ("{", "{label", "a {} sound", "{0}"):
        with pytest.raises(errors.InvalidRequestError, match="brace"):
            isolate(bad)
    assert endpoint.stats["requests"] == 0


def test_empty_missing_or_wordless_descriptions_follow_on_error(client, endpoint):
    labels = ["half", "", None, "7", "silence"]
    ds = labelled(["half"] * 5).remove_columns("label").add_column("label", labels)
    with pytest.raises(errors.InvalidRequestError) as e:
        ds.map(isolate("{label}", client=client), batched=True, with_indices=True)
    assert str(e.value).startswith("row 1: ") and "column 'label' is ''" in str(e.value)
    assert endpoint.stats["requests"] == 0
    est = estimate_cost(ds, isolate("{label}", client=client))
    assert est.calls == 2 and [i for i, _ in est.invalid] == [1, 2, 3]
    assert "ClassLabel" in est.invalid[2][1]
    out = ds.map(isolate("{label}", client=client, on_error="skip"), batched=True)
    errs = out["isolated_error"]
    assert [bool(x) for x in errs] == [False, True, True, True, False]
    assert "None" in errs[2] and "row 2 of this batch" in errs[2]
    assert out["isolated_description"] == ["half", "", "", "", "silence"]
    assert endpoint.stats["requests"] == 2
    kept = ds.map(
        isolate(lambda r: r["label"], client=client, on_error="keep_original", output_column="k"),
        batched=True,
    )
    assert "description must be a non-empty string" in kept["k_error"][2]


@pytest.mark.filterwarnings("ignore:batches of")
def test_stems_give_their_own_columns_one_call_each_sent_together(make_endpoint, tmp_path):
    ep = make_endpoint(latency=0.5)
    client = Client(
        KEY,
        endpoint=ep.url,
        cache_dir=tmp_path / "c",
        max_concurrency=4,
        requests_per_minute=6000,
        progress=False,
        transport="sync",
    )
    ds = labelled(["x", "y"])
    fn = isolate(
        {"low": "bass", "quiet": "half", "gone": "{label} silence"},
        keep={"quiet": "both"},
        client=client,
    )
    assert estimate_cost(ds, fn).calls == 6
    out = ds.map(fn, batched=True, batch_size=2)
    assert ep.stats["billed"] == 6 and ep.stats["max_in_flight"] == 4  # one pool, not stem by stem
    assert {
        "low",
        "low_cost",
        "quiet",
        "quiet_residual",
        "gone",
        "gone_error",
        "gone_description",
    } <= set(out.column_names)
    assert "low_residual" not in out.column_names
    assert out["low_target_db"] == pytest.approx([-0.46] * 2, abs=0.1)
    assert out["quiet_residual_db"] == pytest.approx([-6.02] * 2, abs=0.1)
    assert out["gone_description"] == ["x silence", "y silence"]
    assert out["gone_target_db"] == [-120.0] * 2
    assert out["low_cost"] == pytest.approx([0.062] * 2)
    # each stem's call is cached alone: a map asking for one of them pays nothing
    alone = ds.map(isolate("half", client=client), batched=True)
    assert alone["isolated_cached"] == [True] * 2 and ep.stats["billed"] == 6
    assert estimate_cost(ds, fn).calls == 0
    with pytest.raises(errors.InvalidRequestError, match="pay twice"):
        isolate({"a": "speech", "b": "speech"})
    with pytest.raises(errors.InvalidRequestError, match="output_column"):
        isolate({"a": "speech"}, output_column="x")


def test_prefetch_and_iterable_datasets_with_templates_and_stems(client, endpoint):
    ds = labelled(["half", "silence", "bass drum"])
    fn = isolate({"own": "{label}", "mix": "dog barking"}, client=client)
    report = prefetch(ds, fn, progress=False)
    assert (report.rows, report.calls, report.paid, report.cached) == (3, 6, 6, 0)
    assert str(report) == "3 rows (6 calls): 6 paid, 0 already cached, 0 failed"
    out = ds.map(fn, batched=True)
    assert endpoint.stats["requests"] == 6 and all(out["own_cached"]) and all(out["mix_cached"])
    assert_isolated_with(out, ["half", "silence", "bass drum"], column="own")
    it = ds.to_iterable_dataset().map(
        isolate("{label}", client=client, output_column="o"), batched=True, batch_size=2
    )
    rows = list(it)
    assert [r["o_description"] for r in rows] == ["half", "silence", "bass drum"]
    assert all(r["o_cached"] for r in rows) and endpoint.stats["requests"] == 6
    est = estimate_cost(ds.to_iterable_dataset(), isolate("{label} now", client=client))
    assert (est.calls, est.cached) == (3, 0)


def test_num_proc_workers_send_each_row_its_own_description_and_stems(client, endpoint, tmp_path):
    labelled().save_to_disk(str(tmp_path / "d"))
    ds = datasets.load_from_disk(str(tmp_path / "d"))
    fn = isolate(
        {"isolated": "{label}", "by_fn": lambda row: f"half of {row['label']}"}, client=client
    )
    out = ds.map(fn, batched=True, batch_size=2, num_proc=2, with_indices=True)
    assert_isolated_with(out, LABELS)
    assert out["by_fn_description"] == [f"half of {lab}" for lab in LABELS]
    # the local model's first rule wins: "silence" before "half"
    assert out["by_fn_target_db"] == pytest.approx(
        [-120.0 if lab == "silence" else -6.02 for lab in LABELS], abs=0.1
    )
    assert endpoint.stats["requests"] == 12


def test_the_fingerprint_changes_when_and_only_when_the_template_or_stems_change(
    client, endpoint, tmp_path
):
    labelled().save_to_disk(str(tmp_path / "d"))
    ds = datasets.load_from_disk(str(tmp_path / "d"))  # on disk: datasets caches maps

    def run(description, **kw):
        before = client.usage.snapshot()
        out = ds.map(isolate(description, client=client, **kw), batched=True)
        now = client.usage
        # a map datasets served from its cache file never called the function
        called = (now.billed + now.cached) > (before.billed + before.cached)
        return out._fingerprint, called

    first, called = run("{label}")
    assert called
    assert run("{label}") == (first, False)  # same template: reused
    other, called = run("{label} sound")
    assert other != first and called
    stems = {"a": "{label}", "b": "half"}
    two, called = run(stems)
    assert called and two not in (first, other)
    assert run(dict(stems)) == (two, False)  # the same stems: reused
    three, called = run({**stems, "c": "silence"})
    assert called and three != two
    assert run(stems, keep={"b": "both"})[0] not in (two, three)
    assert Hasher.hash(
        isolate("{label}", client=client, reranking_candidates="{c}")
    ) != Hasher.hash(isolate("{label}", client=client))
    # a plain description keeps the fingerprint it had before templates existed
    assert isolate("speech").__getstate__()["description"] == "speech"


def test_isolate_many_takes_one_description_per_clip(client, endpoint):
    clips = [mix(0), mix(1), mix(2)]
    outs = client.separate_many(clips, SR, ["half", "silence", "bass"])
    assert [
        round(10 * np.log10(np.sum(o.target**2) / np.sum(c**2) + 1e-12), 1)
        for o, c in zip(outs, clips, strict=True)
    ] == [-6.0, -120.0, -0.5]
    assert endpoint.stats["descriptions"] and sorted(endpoint.stats["descriptions"]) == [
        "bass",
        "half",
        "silence",
    ]
    with pytest.raises(errors.InvalidRequestError, match="3 clips but 2 descriptions"):
        client.isolate_many(clips, SR, ["half", "silence"])
    assert endpoint.stats["requests"] == 3


def test_cli_map_with_a_template_and_stems(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    labelled(["half", "silence"]).save_to_disk(str(tmp_path / "d"))
    base = ["map", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main(base + ["--description", "{label}", "--out", str(tmp_path / "o1")]) == 0
    assert "2 calls to pay for" in capsys.readouterr().out
    saved = datasets.load_from_disk(str(tmp_path / "o1"))
    assert saved["isolated_description"] == ["half", "silence"]
    assert saved["isolated_target_db"] == pytest.approx([-6.02, -120.0], abs=0.1)
    assert (
        main(base + ["--stem", "low=bass", "--stem", "own={label}", "--out", str(tmp_path / "o2")])
        == 0
    )
    out = capsys.readouterr().out
    assert "2 calls to pay for, 2 already cached" in out  # "own" is the first run's answer
    saved = datasets.load_from_disk(str(tmp_path / "o2"))
    assert isinstance(saved.features["low"], Audio) and isinstance(saved.features["own"], Audio)
    assert saved["own_description"] == ["half", "silence"]
    assert main(base + ["--description", "{nope}", "--out", str(tmp_path / "o3")]) == 2
    assert "'nope'" in capsys.readouterr().err
    assert main(base + ["--stem", "speech", "--out", str(tmp_path / "o4")]) == 2
    assert "COLUMN=DESCRIPTION" in capsys.readouterr().err


def test_the_explorer_shows_each_rows_description_and_uses_it_to_re_isolate(client, endpoint):
    from samaudio_data import Explorer

    out = labelled(["half", "silence", "bass drum"]).map(
        isolate("{label}", client=client), batched=True
    )
    ex = Explorer(out, client=client)
    view = ex.current
    assert view["description"] == "half" and "isolated as 'half'" in view["info"]
    assert "isolated_description" not in ex.columns  # shown on the row instead
    q = ex.quote()  # the row's own description, already paid
    assert (q.description, q.cached) == ("half", True)
    ex.widget.receive({"action": "quote", "description": "treble", "candidates": "1"})
    assert ex.current["description"] == "treble"  # typed: kept on this row
    ex.next()
    assert ex.current["description"] == "silence" and ex.quote().cached
    assert endpoint.stats["requests"] == 3
    # description= may itself be a template (or a function) of the row
    by_template = Explorer(out, client=client, description="the {label} part")
    assert by_template.current["description"] == "the half part"
    by_template.goto(2)
    assert by_template.current["description"] == "the bass drum part"
    by_fn = Explorer(out, client=client, description=lambda row: row["label"].split()[0])
    by_fn.goto(2)
    assert by_fn.current["description"] == "bass"
    with pytest.raises(errors.SamAudioError, match="'lable'"):
        Explorer(out, description="{lable}")


def test_the_explorer_reviews_several_stems_one_at_a_time(client, endpoint, tmp_path):
    from samaudio_data import Explorer

    out = labelled(["a", "b"]).map(
        isolate({"low": "bass", "quiet": "half"}, client=client), batched=True
    )
    session = tmp_path / "review.json"
    ex = Explorer(out, client=client, session=session)
    assert ex.stems == ["low", "quiet"] and ex.isolated == "low"
    assert ex.current["stems"] == ["low", "quiet"] and ex.current["stem"] == "low"
    assert all(not c.startswith("quiet") for c in ex.columns + ex.metrics)
    ex.decide("keep")  # decisions are per row
    ex.widget.receive({"action": "stem", "stem": "quiet"})
    assert ex.isolated == "quiet" and ex.current["description"] == "half"
    assert ex.decisions == {0: "keep"} and ex.cost_column == "quiet_cost"
    target_db = {s["column"]: s["value"] for s in ex.current["signals"]}
    assert target_db["quiet_target_db"].startswith("-6.0")
    assert ex.spend()["dataset"] == pytest.approx(4 * 0.062)
    ex.quote("silence")
    ex.confirm()  # re-isolates the quiet stem
    assert ex.reisolated[0]["description"] == "silence"
    resumed = Explorer(out, client=client, session=session)
    assert resumed.isolated == "quiet" and resumed.reisolated[0]["description"] == "silence"
    resumed.show_stem("low")
    assert resumed.reisolated == {}
    applied = resumed.apply(mode="column")
    assert applied["quiet_target_db"][0] == -120.0 and applied["low_target_db"][0] < 0
    with pytest.raises(errors.SamAudioError, match="no stem 'voice'"):
        ex.show_stem("voice")
    doc = json.loads(session.read_text())  # every stem's entries are checked
    doc["stems"]["low"] = {"0": {"cost": "free"}}
    session.write_text(json.dumps(doc))
    with pytest.raises(errors.SamAudioError, match="damaged"):
        Explorer(out, client=client, session=session)


def test_a_row_holding_the_key_is_refused_and_the_key_written_nowhere(client, endpoint):
    ds = labelled(["half", f"dog {KEY}"])
    out = ds.map(isolate("{label}", client=client, on_error="skip"), batched=True)
    assert "API key" in out["isolated_error"][1] and endpoint.stats["requests"] == 1
    added = out.remove_columns(["label"]).to_dict()  # the user's own column holds it
    assert KEY not in str(added) and out["isolated_description"][1] == "dog ***"


def test_each_stem_gets_its_verdict_and_a_silent_row_is_free_for_every_stem(client, endpoint):
    rows = [
        {"audio": encode_value(mix(0), SR), "label": "half"},
        {"audio": encode_value(np.zeros(SR // 2, np.float32), SR), "label": "half"},
    ]
    ds = Dataset.from_list(rows).cast_column("audio", Audio())
    fn = isolate({"own": "{label}", "gone": "silence"}, client=client)
    est = estimate_cost(ds, fn)
    assert (est.calls, est.silent) == (2, 1)
    out = ds.map(fn, batched=True)
    assert endpoint.stats["requests"] == 2  # the silent row sent nothing
    assert out["own_flag"][1] == out["gone_flag"][1] == "absent:silent_input"
    # half the mix is nothing separated; silence where the mix has sound is an empty target
    assert out["own_flag"][0].startswith("unchanged") and out["gone_flag"][0].startswith("empty")
    assert 0 <= out["own_quality"][0] <= 1 and out["own_cost"] == pytest.approx([0.062, 0.0])


def test_ray_batches_fill_each_rows_description_from_its_columns(client, endpoint):
    pytest.importorskip("ray", reason="the Ray extra is not installed here")
    from samaudio_data.ray import IsolateBatches

    # the numpy batch map_batches hands the callable class (ray.data.from_items rows)
    batch = {
        "audio": np.array([encode_value(mix(i), SR) for i in range(2)], dtype=object),
        "label": np.array(["half", "silence"]),
    }
    out = IsolateBatches("{label}", client=client)(batch)
    assert list(out["isolated_description"]) == ["half", "silence"]
    assert list(out["isolated_target_db"]) == pytest.approx([-6.02, -120.0], abs=0.1)
    assert list(out["label"]) == ["half", "silence"]
