"""Client overhead: the client's own time per call and the size of what it uploads.

What it measures
----------------
For one clip of 10 s of 44.1 kHz stereo audio (a synthetic, music-like signal):

* **client time per call** -- the work ``Client`` does around the endpoint, timed piece by
  piece on the real code path:

  1. ``Client.prepare(y, sr, description)``: validation, mono mix, resampling (a no-op at
     44.1 kHz: uploads are sent at ``min(sr, 48 kHz)``) and the 16-bit WAV encode;
  2. base64 of the upload and the JSON body (built and serialised as ``requests`` does for
     ``json=``);
  3. the answer: ``decode_audio`` + ``fit_answer`` (48 kHz -> 44.1 kHz, cut to the input
     length) of a realistic answer -- 48 kHz mono 16-bit WAV padded to a whole number of
     1920-sample frames -- plus the residual (mix minus target) the client computes.

  Baselines timed in the same process: ``np.copy`` of the audio, and the naive upload encode
  (``soundfile.write`` of a float32 stereo WAV + base64 + JSON), as a naive user would send.
* **request bytes per second of audio** -- the JSON body ``Client`` sends, against the naive
  body (base64 of a float32 stereo WAV at the input rate); an extra line for
  ``Client(upload_format="flac")``.
* **end-to-end** -- wall time of ``Client.separate`` against a ``LocalEndpoint(latency=0)``
  on 127.0.0.1. This *includes the local server's own work* (decode, resample to 48 kHz,
  encode) and loopback HTTP, which cannot be cleanly subtracted, so it is a separate line; the
  naive upload through the same server (``requests.post`` + ``soundfile.read``) is its baseline.

Targets
-------
* client time (1 + 2 + 3, median) under 1% of the audio's duration: < 100 ms for 10 s;
* the request at least 4 times smaller than the naive one.

How to read the output
----------------------
Times are medians over the repetitions (min in brackets), in ms. "x naive encode" is the
client's total divided by the naive upload's encode time (the naive user does no answer work
at all, so a ratio of 1-3x is the expected price of resampling and fitting the answer back).
PASS/MISS lines compare against the targets; nothing is asserted. Figures vary with the
machine; ratios against the same-process baselines are the comparable part.

Run: ``python benchmarks/client_overhead.py`` (about 10 s) or ``--quick`` (a few seconds).
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import requests  # noqa: E402
import soundfile as sf  # noqa: E402

from samaudio_data import Client  # noqa: E402
from samaudio_data import audio  # noqa: E402
from samaudio_data.testing import FRAME, MODEL_SR, LocalEndpoint  # noqa: E402

SR = 44100
SECONDS = 10.0
DESCRIPTION = "a man speaking"
KEY = "local-key"
TARGET_PCT = 1.0      # client time < 1% of the audio duration
TARGET_BYTES = 4.0    # request at least 4x smaller than the naive one


def music_like(seconds: float = SECONDS, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Stereo float32 (2, n): decaying harmonic notes, panned, over a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros((2, n))
    for start in np.arange(0.0, seconds, 0.25):
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        i0 = int(start * sr)
        tt = t[i0:] - start
        env = np.exp(-tt * 4.0)
        note = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 6)) * env
        pan = rng.uniform(0.2, 0.8)
        y[0, i0:] += 0.08 * (1 - pan) * note
        y[1, i0:] += 0.08 * pan * note
    y += 0.005 * rng.standard_normal(y.shape)
    return (y / max(1.0, 1.1 * np.abs(y).max())).astype(np.float32)


def timeit(fn, reps: int):
    """(median, min) seconds of ``fn()`` over ``reps`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def json_body(body: dict) -> bytes:
    # what requests does with json=: complexjson.dumps(..., allow_nan=False).encode("utf-8")
    return json.dumps(body, allow_nan=False).encode("utf-8")


def prepare_job(client: Client, y: np.ndarray):
    """What the client does to a clip before sending it: validate, mix, resample, encode."""
    from types import SimpleNamespace

    y2d = audio.check_audio(y, SR)
    up = audio.make_upload(audio.mix_to_mono(y2d), SR, fmt=client.upload_format)
    return SimpleNamespace(uploads=[up], sr=SR, description=DESCRIPTION,
                           params=dict(client.defaults))


def client_body(client: Client, job) -> bytes:
    """The body Client._request builds for the first upload of ``job``."""
    up = job.uploads[0]
    b64 = base64.b64encode(up.data).decode("ascii")
    mime = "audio/flac" if client.upload_format == "flac" else "audio/wav"
    value = f"data:{mime};base64,{b64}" if client.audio_encoding == "data_uri" else b64
    return json_body({"audio": value, "description": job.description, **job.params})


def naive_body(y: np.ndarray, sr: int) -> bytes:
    """What a naive user sends: base64 of a float32 stereo WAV written with soundfile."""
    buf = io.BytesIO()
    sf.write(buf, y.T, sr, format="WAV", subtype="FLOAT")
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return json_body({"audio": b64, "description": DESCRIPTION})


def realistic_answer(up: audio.Upload) -> bytes:
    """The endpoint's answer to ``up``: 48 kHz mono 16-bit WAV padded to whole frames."""
    y48 = audio.resample(up.mono, SR, MODEL_SR)
    n = -(-y48.shape[-1] // FRAME) * FRAME
    return audio.encode_wav(audio.fit_length(y48, n), MODEL_SR)


def pct(seconds: float) -> float:
    return 100.0 * seconds / SECONDS


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a few seconds)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per timing")
    args = ap.parse_args(argv)
    reps = args.reps or (8 if args.quick else 40)
    e2e_reps = 4 if args.quick else 20

    y = music_like()
    n = y.shape[-1]
    client = Client(KEY, endpoint="http://127.0.0.1:9/v1/sam-audio-large", cache_dir=False,
                    progress=False)
    flac_client = Client(KEY, endpoint="http://127.0.0.1:9/v1/sam-audio-large",
                         cache_dir=False, progress=False, upload_format="flac")

    print(f"client_overhead: {SECONDS:g} s of {SR} Hz stereo float32, {reps} repetitions"
          f"{' (quick)' if args.quick else ''}")

    # cold first call: includes lazy imports (librosa/soxr) paid once per process
    t0 = time.perf_counter()
    job = prepare_job(client, y)
    cold = time.perf_counter() - t0

    # --- the client's own work, piece by piece ----------------------------------------
    up = job.uploads[0]
    answer = realistic_answer(up)
    ans_n = audio.decode_audio(answer)[0].shape[-1]

    def prepare():
        return prepare_job(client, y)

    def body():
        return client_body(client, job)

    def fit_back():
        a, asr = audio.decode_audio(answer)
        target = audio.fit_answer(a, asr, sr=job.sr, n=n, gain=up.gain, reference=up.mono,
                                  realign=False)
        return (up.mono - target).astype(np.float32)  # the residual, as Client._run does

    t_prep = timeit(prepare, reps)
    t_body = timeit(body, reps)
    t_ans = timeit(fit_back, reps)
    total = t_prep[0] + t_body[0] + t_ans[0]
    total_min = t_prep[1] + t_body[1] + t_ans[1]

    # --- baselines in the same process --------------------------------------------------
    t_copy = timeit(lambda: np.copy(y), reps)
    t_naive = timeit(lambda: naive_body(y, SR), reps)

    def ms(t):
        return f"{1e3 * t[0]:7.2f} ms  [min {1e3 * t[1]:6.2f}]"

    print("\nclient's own time per call (median [min])")
    print(f"  prepare: validate + mix + resample + WAV  {ms(t_prep)}")
    print(f"  base64 + JSON body                         {ms(t_body)}")
    print(f"  answer: decode + fit_answer + residual     {ms(t_ans)}"
          f"   ({ans_n} samples @ 48 kHz -> {n} @ {SR})")
    print(f"  total                                      {1e3 * total:7.2f} ms  "
          f"[min {1e3 * total_min:6.2f}]")
    print(f"  first call in this process (cold prepare)  {1e3 * cold:7.2f} ms  "
          "(lazy librosa/soxr import, once per process)")
    print("baselines (same process)")
    print(f"  np.copy of the audio                       {ms(t_copy)}")
    print(f"  naive upload encode (float WAV+b64+JSON)   {ms(t_naive)}")
    print("ratios")
    print(f"  client time / audio duration               {pct(total):7.3f} %   "
          f"(target < {TARGET_PCT:g} %: < {10 * SECONDS * TARGET_PCT:g} ms)")
    print(f"  client time / naive upload encode          {total / t_naive[0]:7.2f} x")
    print(f"  client time / np.copy                      {total / t_copy[0]:7.1f} x")

    # --- bytes --------------------------------------------------------------------------
    ours = len(client_body(client, job))
    naive = len(naive_body(y, SR))
    flac = len(client_body(flac_client, prepare_job(flac_client, y)))
    print("\nrequest bytes per second of audio (JSON body)")
    print(f"  ours (16-bit mono WAV @ {up.sr} Hz, base64)   {ours / SECONDS / 1e3:9.1f} kB/s")
    print(f"  naive (float32 stereo WAV, base64)          {naive / SECONDS / 1e3:9.1f} kB/s")
    print(f"  naive / ours                                {naive / ours:9.4f} x  "
          f"(target >= {TARGET_BYTES:g} x)")
    raw_ours = up.data
    buf = io.BytesIO()
    sf.write(buf, y.T, SR, format="WAV", subtype="FLOAT")
    raw_naive = buf.getvalue()
    n_up = int(round(n * up.sr / SR))
    samples_ours, samples_naive = n_up * 2, y.size * 4  # 16-bit mono vs float32 stereo
    print(f"  of which sample data: naive / ours          {samples_naive / samples_ours:9.4f} x  "
          f"(float32 stereo vs 16-bit mono at {up.sr} Hz)")
    ovh_ours = (len(raw_ours) - samples_ours, ours - 4 * -(-len(raw_ours) // 3))
    ovh_naive = (len(raw_naive) - samples_naive, naive - 4 * -(-len(raw_naive) // 3))
    print(f"  fixed overhead: ours {ovh_ours[0]} B WAV header + {ovh_ours[1]} B of JSON "
          f"(sends {job.params}); naive {ovh_naive[0]} B header + {ovh_naive[1]} B JSON")
    print("  (with 16-bit mono WAV at the input rate, naive / ours tends to the sample-data "
          "ratio from below:\n   ours pays a fixed overhead for a quarter of the samples)")
    print(f"  extra: upload_format='flac'                 {flac / SECONDS / 1e3:9.1f} kB/s"
          f"   naive / flac = {naive / flac:.2f} x")

    # --- end to end against the local server ------------------------------------------
    with LocalEndpoint(keys={KEY: None}, latency=0.0) as ep, \
            Client(KEY, endpoint=ep.url, cache_dir=False, progress=False) as live:
        def ours_e2e():
            live.separate(y, SR, DESCRIPTION)

        sess = requests.Session()

        def naive_e2e():
            r = sess.post(ep.url, data=naive_body(y, SR),
                          headers={"x-api-key": KEY, "Content-Type": "application/json"},
                          timeout=60)
            r.raise_for_status()
            sf.read(io.BytesIO(r.content), dtype="float32")

        t_e2e = timeit(ours_e2e, e2e_reps)
        t_e2e_naive = timeit(naive_e2e, e2e_reps)
        sess.close()
        st = ep.stats
    print("\nend to end, INCLUDING the local server's work (LocalEndpoint latency=0, loopback)")
    print(f"  Client.separate                            {ms(t_e2e)}   "
          f"= {pct(t_e2e[0]):.2f} % of audio duration")
    print(f"  naive requests.post + soundfile.read       {ms(t_e2e_naive)}")
    print(f"  ours / naive                               {t_e2e[0] / t_e2e_naive[0]:7.2f} x"
          f"   (server answered {st['billed']} calls, statuses {st['by_status']})")

    print("\ntargets")
    print(f"  {verdict(pct(total) < TARGET_PCT)}  client time {1e3 * total:.1f} ms = "
          f"{pct(total):.3f} % of {SECONDS:g} s (target < {TARGET_PCT:g} %)")
    print(f"  {verdict(naive / ours >= TARGET_BYTES)}  request {naive / ours:.4f} x smaller "
          f"than naive (target >= {TARGET_BYTES:g} x; sample data alone "
          f"{samples_naive / samples_ours:.4f} x); flac {naive / flac:.2f} x")
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the end "
          "(other work on the machine skews every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
