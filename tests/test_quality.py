"""Quality triage on a labelled corpus, through real HTTP: the local endpoint answers each mix
with a scripted behaviour (good, empty, invented, wrong_source, unchanged, absent), and the
flags the datasets map writes are compared with the labels."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from conftest import KEY
from datasets import Dataset

from samaudio_data import Client, errors, estimate_cost, isolate
from samaudio_data.audio import BlockWriter, judge_file, plan_chunks
from samaudio_data.audio._vad import speech_detector, unavailable_reason
from samaudio_data.cli import main
from samaudio_data.hf import read_value
from samaudio_data.testing import LocalEndpoint
from samaudio_data.testing._corpus import build_corpus, tools_missing

NEEDS_VAD = pytest.mark.skipif(
    speech_detector() is None,
    reason=f"{unavailable_reason()} (the oldest-versions env runs without the extra)",
)
FAILURES = ("empty", "invented", "wrong_source", "unchanged", "absent")
NO_VAD_CLASSES = ("empty", "invented", "unchanged", "absent")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    if tools_missing():
        pytest.skip(f"{tools_missing()} not installed (make install-test installs them)")
    return build_corpus(tmp_path_factory.mktemp("corpus"), other_wrong_source=False)


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    """One cache for the corpus's answers: each mix is paid for once in this module."""
    return tmp_path_factory.mktemp("answers")


@pytest.fixture(scope="module")
def scripted(corpus):
    """One endpoint knowing every scene of the corpus."""
    with LocalEndpoint(keys={KEY: None}) as ep:
        for ex in corpus:
            ep.add_scene(ex.mix, ex.sr, **ex.scene())
        yield ep


def flags_by_class(rows, ep, cache_dir, **isolate_kw):
    """Map every row through HTTP with its own description; {behaviour: [flag, ...]}."""
    out = collections.defaultdict(list)
    with Client(KEY, endpoint=ep.url, cache_dir=cache_dir, progress=False) as client:
        for description in sorted({r.description for r in rows}):
            part = [r for r in rows if r.description == description]
            ds = Dataset.from_dict(
                {"audio": [{"array": r.mix, "sampling_rate": r.sr} for r in part]}
            )
            mapped = ds.map(
                isolate(description, client=client, **isolate_kw), batched=True, batch_size=64
            )
            flags, quality = mapped["isolated_flag"], mapped["isolated_quality"]
            for r, flag, q in zip(part, flags, quality, strict=True):
                assert 0.0 <= q <= 1.0 and (q <= 0.5) == bool(flag), (r.name, flag, q)
                out[r.behaviour].append(flag)
    return out


def rates(flags):
    return {k: sum(bool(f) for f in v) / len(v) for k, v in flags.items()}


@NEEDS_VAD
def test_speech_descriptions_flag_every_failure_class_and_few_good_rows(corpus, scripted, answers):
    flags = flags_by_class([r for r in corpus if r.speech], scripted, answers)
    got = rates(flags)
    assert got["good"] <= 0.05, flags["good"]
    for cls in FAILURES:
        assert got[cls] >= 0.9, (cls, flags[cls])
    # and the reason is the right one for most rows of each class
    for cls in FAILURES:
        right = sum(f.split(":")[0] == cls for f in flags[cls]) / len(flags[cls])
        assert right >= 0.8, (cls, flags[cls])


def test_other_descriptions_flag_what_needs_no_speech_detector(corpus, scripted, answers):
    flags = flags_by_class([r for r in corpus if not r.speech], scripted, answers)
    got = rates(flags)
    assert got["good"] <= 0.05, flags["good"]
    for cls in NO_VAD_CLASSES:
        assert got[cls] >= 0.9, (cls, flags[cls])
    assert all(not f.endswith(":no_vad") for v in flags.values() for f in v)


def test_without_the_speech_detector_flags_say_so(corpus, scripted, answers, monkeypatch):
    monkeypatch.setenv("SAMAUDIO_VAD", "off")  # the documented way to run without it
    rows = [r for r in corpus if r.speech and r.behaviour in ("good",) + NO_VAD_CLASSES]
    flags = flags_by_class(rows, scripted, answers)
    got = rates(flags)
    assert got["good"] <= 0.05
    for cls in ("empty", "invented", "unchanged", "absent"):
        assert got[cls] >= 0.9, (cls, flags[cls])
        assert all(f.endswith(":no_vad") for f in flags[cls] if f), flags[cls]


def test_silent_rows_are_answered_locally_and_counted_apart(
    endpoint, make_client, tmp_path, capsys, monkeypatch
):
    client = make_client()
    tone = 0.2 * np.sin(np.arange(16000) * 0.05)
    ds = Dataset.from_dict(
        {
            "audio": [
                {"array": a, "sampling_rate": 16000} for a in (tone, np.zeros(16000), tone * 1e-4)
            ]
        }
    )
    est = estimate_cost(ds, isolate("hum", client=client))
    assert (est.calls, est.silent) == (1, 2) and "2 silent rows answered locally" in str(est)
    out = ds.map(isolate("hum", client=client), batched=True)
    assert endpoint.stats["billed"] == 1
    assert out["isolated_flag"][1:] == ["absent:silent_input"] * 2
    assert out["isolated_cost"][1:] == [0.0, 0.0] and out["isolated_quality"][1:] == [0.0, 0.0]
    # the CLI's dry run says the same
    ds.save_to_disk(str(tmp_path / "d"))
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    assert (
        main(
            [
                "map",
                str(tmp_path / "d"),
                "--description",
                "hum",
                "--out",
                str(tmp_path / "o"),
                "--dry-run",
                "--endpoint",
                endpoint.url,
                "--cache-dir",
                str(tmp_path / "c2"),
            ]
        )
        == 0
    )
    assert "2 silent rows answered locally for free" in capsys.readouterr().out


def rerank_scenes(ep, n=4, fixed=True):
    """Mixes whose first answer is unchanged and whose rerank is good (``fixed``)."""
    rng = np.random.default_rng(1)
    mixes = []
    for i in range(n):
        t = 0.2 * np.sin(np.arange(16000) * (0.05 + 0.01 * i))
        noise = 0.05 * rng.standard_normal(16000)
        behaviour = "unchanged" if i % 2 == 0 else "good"
        ep.add_scene(t + noise, 16000, target=t, behaviour=behaviour, fixed_by_rerank=fixed)
        mixes.append(t + noise)
    return Dataset.from_dict({"audio": [{"array": m, "sampling_rate": 16000} for m in mixes]})


def test_rerank_is_priced_first_paid_once_and_keeps_the_better_answer(endpoint, make_client):
    client = make_client()
    ds = rerank_scenes(endpoint)
    fn = isolate("hum", client=client, on_doubt="rerank", rerank_candidates=3)
    est = estimate_cost(ds, fn)
    assert (est.calls, est.rerank_calls) == (4, 4) and "may add at most 4 calls" in str(est)
    out = ds.map(fn, batched=True)
    assert out["isolated_flag"] == ["", "", "", ""]  # the reranks were good
    assert endpoint.stats["billed"] == 6  # 4 + 2 doubtful rows
    assert [round(c / client.price_per_call) for c in out["isolated_cost"]] == [2, 1, 2, 1]
    # a rerun pays nothing: both answers of a reranked row are cached
    again = ds.map(
        isolate("hum", client=client, on_doubt="rerank", rerank_candidates=3),
        batched=True,
        load_from_cache_file=False,
    )
    assert endpoint.stats["billed"] == 6 and again["isolated_flag"] == out["isolated_flag"]
    assert estimate_cost(ds, fn).rerank_calls == 2  # the 2 others not yet asked


def test_rerank_stays_inside_max_cost(endpoint, make_client):
    client = make_client()
    ds = rerank_scenes(endpoint, n=2)
    fn = isolate("hum", client=client, on_doubt="rerank", max_cost=2.5 * client.price_per_call)
    with pytest.raises(errors.BudgetExceededError):
        ds.map(fn, batched=True, batch_size=1)
    assert endpoint.stats["billed"] == 2  # never past the cap


def test_skip_silences_doubtful_rows_and_keep_only_flags(endpoint, make_client):
    client = make_client()
    ds = rerank_scenes(endpoint, fixed=False)
    kept = ds.map(isolate("hum", client=client), batched=True)
    skipped = ds.map(isolate("hum", client=client, on_doubt="skip"), batched=True)
    assert kept["isolated_flag"] == skipped["isolated_flag"] == ["unchanged", "", "unchanged", ""]
    for row in (0, 2):
        assert np.abs(read_value(skipped[row]["isolated"])[0]).max() == 0.0
        assert np.abs(read_value(kept[row]["isolated"])[0]).max() > 0.1
    assert len(kept.filter(lambda r: not r["isolated_flag"])) == 2


@NEEDS_VAD
def test_a_long_file_says_which_seconds_invented_speech(corpus, endpoint, make_client, tmp_path):
    """Windows 2 of 3 of a 50 s recording invent speech; the file's verdict names them."""
    noise_only = [r for r in corpus if r.speech and r.behaviour == "invented"][0]
    sr = noise_only.sr
    n = 50 * sr
    rng = np.random.default_rng(3)
    mix = 0.03 * rng.standard_normal(n)
    plan = plan_chunks(n, sr, 20, 2)
    speech = [r.invented for r in corpus if r.invented is not None and r.speech][:3]
    for i, (a, b) in enumerate(plan.windows):
        window = mix[a:b].astype(np.float32).astype(np.float64)
        if i == 1:
            invented = np.resize(speech[0], b - a) * 3
            endpoint.add_scene(window, sr, invented=invented, behaviour="invented")
        else:
            endpoint.add_scene(window, sr, behaviour="absent")
    path = tmp_path / "street.wav"
    with BlockWriter(path, sr, 1) as w:
        w.write(mix.astype(np.float32))
    client = make_client()
    out = client.isolate_file(path, "a man speaking")
    verdict = judge_file(path, out, "a man speaking")
    a, b = plan.windows[1]
    assert verdict.flag == f"invented:{a / sr:.1f}-{b / sr:.1f}s"
    assert [w.flag.split(":")[0] for w in verdict.windows] == ["absent", "invented", "absent"]
    # the same clip in memory: Separation carries the verdict, per window too
    res = client.separate(mix.astype(np.float32), sr, "a man speaking")
    assert res.flag == verdict.flag and res.quality <= 0.5
    assert len(res.verdict.windows) == 3


def test_cli_map_reports_flags(endpoint, tmp_path, capsys, monkeypatch):
    ds = rerank_scenes(endpoint, fixed=False)
    ds.save_to_disk(str(tmp_path / "d"))
    monkeypatch.setenv("SEGMIND_API_KEY", KEY)
    assert (
        main(
            [
                "map",
                str(tmp_path / "d"),
                "--description",
                "hum",
                "--out",
                str(tmp_path / "o"),
                "--endpoint",
                endpoint.url,
                "--quiet",
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 of 4 rows look right; 2 flagged (2 unchanged)" in out


def test_the_explorer_shows_the_verdict_and_acts_on_doubtful_rows():
    from samaudio_data.explorer import Explorer, example_dataset
    from samaudio_data.explorer._actions import dispatch

    ds = example_dataset(8, quality=True)
    ex = Explorer(ds)
    assert ex.columns[:3] == ["audio.path", "isolated_flag", "path"]  # the flag column
    ex.goto(3)
    reason = [s for s in ex.current["signals"] if s["column"] == "isolated_flag"][0]
    assert reason["value"] == "empty (the answer is (near) silence)"
    dispatch(ex, "doubtful", {})  # the widget's "doubtful first" button
    assert ex.queue == [3, 7] and "2 flagged rows" in ex.message
    assert ex.current["can_doubt"] is True
    assert ex.bulk("discard") == 2  # a bulk decision on the doubtful rows
    assert len(ex.apply(ds)) == 6
    ex.sort_by("isolated_quality")  # most doubtful first, over every row
    ex.set_filter()
    assert ex.queue[:2] in ([3, 7], [7, 3])


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_nothing_separated_is_seen_at_any_rate_through_the_round_trip(endpoint, make_client, sr):
    """The endpoint's identity answer (resampled to 48 kHz and back) is 'unchanged'; a good
    separation of the same mix is not, whatever the input's rate."""
    client = make_client(cache_dir=False)
    n = 2 * sr
    tone = 0.2 * np.sin(2 * np.pi * 200 * np.arange(n) / sr)
    mix = tone + 0.05 * np.random.default_rng(1).standard_normal(n)
    assert client.separate(mix, sr, "hum").flag == "unchanged"
    endpoint.add_scene(mix, sr, target=tone, behaviour="good")
    assert client.separate(mix, sr, "hum").flag == ""


@NEEDS_VAD
def test_rerank_leaves_rows_without_the_sound_alone(endpoint, make_client):
    client = make_client()
    noise = 0.05 * np.random.default_rng(5).standard_normal(16000)
    endpoint.add_scene(noise, 16000, behaviour="absent", fixed_by_rerank=True)
    ds = Dataset.from_dict({"audio": [{"array": noise, "sampling_rate": 16000}]})
    out = ds.map(isolate("speech", client=client, on_doubt="rerank"), batched=True)
    assert out["isolated_flag"] == ["absent"] and endpoint.stats["billed"] == 1
