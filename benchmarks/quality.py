"""Quality triage: flag rates per class on the labelled corpus, and the signals' CPU cost.

What it measures
----------------
* **Rates**: the labelled corpus of ``samaudio_data.testing._corpus`` (espeak-ng speech and
  sox noises, hum, rain and plucked chords, mixed at 0-20 dB SNR; every mix a scene of a
  ``LocalEndpoint`` scripted to answer it well or with one failure: empty, invented,
  wrong_source, unchanged, absent) goes through ``ds.map(isolate(...))`` over real HTTP,
  one map per description. For each class and description kind (speech descriptions,
  ``"music"``) it prints the share of rows flagged (any reason) and flagged with the right
  reason; then the same with speech detection off (``SAMAUDIO_VAD=off``): what a run
  without the ``[quality]`` extra catches.
* **Cost**: CPU time (one thread, ``time.process_time``) of ``audio.judge`` on 10 s clips at
  44.1 kHz, per second of audio, for a non-speech description (spectrogram and energy
  signals only: weight-free) and a speech one (plus silero-vad on the mix, the answer and,
  when needed, what it left out), against the baseline of reading the same clip's 16-bit
  WAV bytes with soundfile (a decode every map does anyway).

Targets (issue 17)
------------------
* speech descriptions: at most 5 % of good rows flagged, at least 90 % of each failure
  class; other descriptions: the same for the classes that need no speech detector (empty,
  invented, unchanged, absent); a wrong source for ``"music"`` is shown, not targeted;
* all signals together well under 1 % of the audio's duration in CPU time; the
  weight-free ones a few ms per 10 s clip.

Run: ``python benchmarks/quality.py`` (about a minute) or ``--quick`` (smaller corpus).
Needs ``espeak-ng`` and ``sox``; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import tempfile
import time

import numpy as np
import soundfile as sf
from _common import KEY, load_line, verdict
from datasets import Dataset, disable_progress_bars

from samaudio_data import Client, audio, isolate
from samaudio_data.audio._vad import speech_detector
from samaudio_data.testing import LocalEndpoint
from samaudio_data.testing._corpus import build_corpus, tools_missing

CLASSES = ("good", "empty", "invented", "wrong_source", "unchanged", "absent")
NO_VAD = ("empty", "invented", "unchanged", "absent")


def flags(rows, ep, cache_dir):
    out = collections.defaultdict(list)
    with Client(KEY, endpoint=ep.url, cache_dir=cache_dir, progress=False) as client:
        for description in sorted({r.description for r in rows}):
            part = [r for r in rows if r.description == description]
            ds = Dataset.from_dict(
                {"audio": [{"array": r.mix, "sampling_rate": r.sr} for r in part]}
            )
            mapped = ds.map(
                isolate(description, client=client),
                batched=True,
                batch_size=64,
                load_from_cache_file=False,
            )
            for r, f in zip(part, mapped["isolated_flag"], strict=True):
                out[(r.speech, r.behaviour)].append(f)
    return out


def table(title, got, kinds):
    print(f"\n{title}")
    print(f"  {'class':<14}{'speech descr.':>22}{'music':>22}")
    print(f"  {'':<14}{'flagged  right code':>22}{'flagged  right code':>22}")
    for cls in CLASSES:
        cells = []
        for speech in kinds:
            fl = got.get((speech, cls), [])
            if not fl:
                cells.append(f"{'-':>22}")
                continue
            flagged = sum(bool(f) for f in fl) / len(fl)
            right = (
                sum(f.split(":")[0] == cls for f in fl) / len(fl) if cls != "good" else 1 - flagged
            )
            cells.append(f"{100 * flagged:>8.0f} %{100 * right:>9.0f} %  ")
        print(
            f"  {cls:<14}" + "".join(cells) + f"  (n={len(got.get((True, cls), []))}/"
            f"{len(got.get((False, cls), []))})"
        )


def cost(seconds=10.0, sr=44100, repeats=5):
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    voice = 0.1 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    mix = voice + 0.03 * rng.standard_normal(n)
    answer = voice + 0.003 * rng.standard_normal(n)
    wav = io.BytesIO()
    sf.write(wav, mix.astype(np.float32), sr, subtype="PCM_16", format="WAV")
    data = wav.getvalue()

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        return min(times)

    base = best(lambda: sf.read(io.BytesIO(data)))
    plain = best(lambda: audio.judge(mix, answer, sr, "music"))
    speech = (
        best(lambda: audio.judge(mix, answer, sr, "a man speaking"))
        if speech_detector()
        else float("nan")
    )
    return seconds, base, plain, speech


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if tools_missing():
        raise SystemExit(f"needs {tools_missing()} (Debian: apt-get install espeak-ng sox)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    disable_progress_bars()
    work = tempfile.mkdtemp(prefix="quality-bench-")
    per_class, good = (5, 12) if args.quick else (10, 24)
    rows = build_corpus(os.path.join(work, "corpus"), per_class=per_class, good=good)
    print(
        f"corpus: {len(rows)} mixes of 3 s at 16 kHz ({per_class} per failure class, {good} "
        f"good for speech descriptions, {good // 2} for 'music')"
    )
    with LocalEndpoint(keys={KEY: None}) as ep:
        for r in rows:
            ep.add_scene(r.mix, r.sr, **r.scene())
        cache = os.path.join(work, "cache")
        vad = speech_detector() is not None
        got = flags(rows, ep, cache) if vad else {}
        os.environ["SAMAUDIO_VAD"] = "off"
        try:
            off = flags(rows, ep, cache)  # the answers come from the cache
        finally:
            del os.environ["SAMAUDIO_VAD"]
    if vad:
        table(
            "rows flagged, with speech detection (silero-vad, the [quality] extra):",
            got,
            (True, False),
        )
    table("rows flagged, speech detection off (SAMAUDIO_VAD=off, or no extra):", off, (True, False))

    seconds, base, plain, speech = cost()
    print(f"\nsignals' CPU time on {seconds:.0f} s of 44.1 kHz audio (one thread, best of 5):")
    print(f"  read the clip's 16-bit WAV (baseline)   {1000 * base:8.2f} ms  1.00x")
    print(
        f"  judge, 'music' (weight-free)            {1000 * plain:8.2f} ms  "
        f"{plain / base:5.2f}x  {1000 * plain / seconds:6.2f} ms per clip-second"
    )
    if vad:
        print(
            f"  judge, 'a man speaking' (+ silero-vad)  {1000 * speech:8.2f} ms  "
            f"{speech / base:5.2f}x  {1000 * speech / seconds:6.2f} ms per clip-second"
        )

    def rate(table_, speech, cls):
        fl = table_.get((speech, cls), [])
        return sum(bool(f) for f in fl) / max(1, len(fl))

    print("\ntargets")
    if vad:
        ok = rate(got, True, "good") <= 0.05 and all(rate(got, True, c) >= 0.9 for c in CLASSES[1:])
        print(
            f"  {verdict(ok)} speech descriptions: good rows flagged "
            f"{100 * rate(got, True, 'good'):.0f} % (<= 5 %), every failure class >= 90 %"
        )
    else:
        print("  INFO speech detection unavailable: install samaudio-data[quality]")
    src = got if vad else off
    ok = rate(src, False, "good") <= 0.05 and all(rate(src, False, c) >= 0.9 for c in NO_VAD)
    print(
        f"  {verdict(ok)} 'music': good rows flagged {100 * rate(src, False, 'good'):.0f} %, "
        f"empty/invented/unchanged/absent >= 90 %"
    )
    print(
        f"  INFO 'music' wrong_source flagged {100 * rate(src, False, 'wrong_source'):.0f} % "
        "(no check sees another sound of the mix without a model of meaning)"
    )
    worst = speech if vad else plain
    print(
        f"  {verdict(worst / seconds < 0.01)} all signals {100 * worst / seconds:.2f} % of the "
        f"audio's duration (< 1 %)"
    )
    print(
        f"  {verdict(plain < 0.01)} weight-free signals {1000 * plain:.1f} ms per "
        f"{seconds:.0f} s clip (a few ms)"
    )
    print(f"\n{load_line()}")


if __name__ == "__main__":
    main()
