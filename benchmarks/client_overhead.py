"""Client overhead: the client's own time per call and the size of what it uploads.

What it measures
----------------
For one clip of 10 s of 44.1 kHz stereo audio (a synthetic, music-like signal):

* **client time per call** -- the CPU time this process spends in one ``Client.separate``
  (``time.process_time``, all threads) against a ``LocalEndpoint(latency=0)`` running in a
  *child* process, so the server's work is not counted: validation, mix, resampling, WAV
  encode, base64 + JSON, HTTP over loopback, decoding the answer (48 kHz mono 16-bit WAV
  padded to whole 1920-sample frames), fitting it back to 44.1 kHz and the residual. A
  breakdown times the public ``samaudio_data.audio`` steps the client is built from:

  1. ``check_audio`` + ``mix_to_mono`` + ``make_upload`` (validation, mono mix, resampling --
     a no-op at 44.1 kHz: uploads are sent at ``min(sr, 48 kHz)`` -- and the WAV encode);
  2. ``decode_audio`` + ``fit_answer`` of the answer, plus the residual (mix minus target);

  the rest of the CPU time is the HTTP exchange (base64, JSON, sockets).
  Baselines timed in the same process: ``np.copy`` of the audio, and the naive upload encode
  (``soundfile.write`` of a float32 stereo WAV + base64 + JSON), as a naive user would send.
* **request bytes per second of audio** -- the body sizes the local endpoint received
  (``LocalEndpoint.stats["request_bytes"]``) from ``Client`` and from
  ``Client(upload_format="flac")``, against the naive body (base64 of a float32 stereo WAV
  at the input rate).
* **end-to-end** -- wall time of ``Client.separate`` against the same endpoint. This
  *includes the local server's own work* (decode, resample to 48 kHz, encode) and loopback
  HTTP, so it is a separate line; the naive upload through the same server
  (``requests.post`` + ``soundfile.read``) is its baseline.

Targets
-------
* client CPU time per call (median) under 1% of the audio's duration: < 100 ms for 10 s;
* the request at least 4 times smaller than the naive one.

How to read the output
----------------------
Times are medians over the repetitions (min in brackets), in ms: CPU time of this process
(``time.process_time``, every thread), except the end-to-end lines, which are wall time.
"x naive encode" is the client's CPU time divided by the naive upload's encode time (the
naive user does no answer work at all; the client's time also holds the HTTP exchange,
which the naive encode does not).
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
import statistics
import sys
import time

import numpy as np
import requests
import soundfile as sf
from _common import DESCRIPTION, KEY, Server, load_line, music_like, verdict

from samaudio_data import Client, audio
from samaudio_data.testing import FRAME, MODEL_SR

SR = 44100
SECONDS = 10.0
TARGET_PCT = 1.0  # client time < 1% of the audio duration
TARGET_BYTES = 4.0  # request at least 4x smaller than the naive one


def timeit(fn, reps: int, clock=time.process_time):
    """(median, min) seconds of ``fn()`` by ``clock`` over ``reps`` calls, after a warm-up."""
    fn()
    times = []
    for _ in range(reps):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times), min(times)


def prepare(y: np.ndarray, fmt: str = "wav") -> audio.Upload:
    """The public steps a clip goes through before it is sent: validate, mix, encode."""
    return audio.make_upload(audio.mix_to_mono(audio.check_audio(y, SR)), SR, fmt=fmt)


def naive_body(y: np.ndarray, sr: int) -> bytes:
    """What a naive user sends: base64 of a float32 stereo WAV written with soundfile."""
    buf = io.BytesIO()
    sf.write(buf, y.T, sr, format="WAV", subtype="FLOAT")
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return json.dumps({"audio": b64, "description": DESCRIPTION}, allow_nan=False).encode()


def realistic_answer(up: audio.Upload) -> bytes:
    """The endpoint's answer to ``up``: 48 kHz mono 16-bit WAV padded to whole frames."""
    y48 = audio.resample(up.mono, SR, MODEL_SR)
    n = -(-y48.shape[-1] // FRAME) * FRAME
    return audio.encode_wav(audio.fit_length(y48, n), MODEL_SR)


def pct(seconds: float) -> float:
    return 100.0 * seconds / SECONDS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a few seconds)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per timing")
    args = ap.parse_args(argv)
    reps = args.reps or (8 if args.quick else 40)
    e2e_reps = 4 if args.quick else 20

    y = music_like()
    n = y.shape[-1]
    print(
        f"client_overhead: {SECONDS:g} s of {SR} Hz stereo float32, {reps} repetitions"
        f"{' (quick)' if args.quick else ''}"
    )

    # cold first call: includes lazy imports paid once per process
    t0 = time.perf_counter()
    up = prepare(y)
    cold = time.perf_counter() - t0

    # --- the public steps the client is built from -------------------------------------
    answer = realistic_answer(up)
    ans_n = audio.decode_audio(answer)[0].shape[-1]

    def fit_back():
        a, asr = audio.decode_audio(answer)
        target = audio.fit_answer(
            a, asr, sr=SR, n=n, gain=up.gain, reference=up.mono, realign=False
        )
        return (up.mono - target).astype(np.float32)

    t_prep = timeit(lambda: prepare(y), reps)
    t_ans = timeit(fit_back, reps)
    t_copy = timeit(lambda: np.copy(y), reps)
    t_naive = timeit(lambda: naive_body(y, SR), reps)

    # --- the real client against a server in a child process ---------------------------
    with Server(latency=0.0) as server:
        with (
            Client(KEY, endpoint=server.url, cache_dir=False, progress=False) as live,
            Client(
                KEY, endpoint=server.url, cache_dir=False, progress=False, upload_format="flac"
            ) as flac_client,
        ):

            def ours_e2e():
                live.separate(y, SR, DESCRIPTION)

            server.configure(0.0)
            t_cpu = timeit(ours_e2e, reps)
            t_e2e = timeit(ours_e2e, e2e_reps, clock=time.perf_counter)
            st = server.stats
            ours = st["request_bytes"][-1]
            sent = {k: v for k, v in (st["last_request"] or {}).items() if k != "audio"}
            flac_client.separate(y, SR, DESCRIPTION)
            flac = server.stats["request_bytes"][-1]
            sess = requests.Session()

            def naive_e2e():
                r = sess.post(
                    server.url,
                    data=naive_body(y, SR),
                    headers={"x-api-key": KEY, "Content-Type": "application/json"},
                    timeout=60,
                )
                r.raise_for_status()
                sf.read(io.BytesIO(r.content), dtype="float32")

            t_e2e_naive = timeit(naive_e2e, e2e_reps, clock=time.perf_counter)
            sess.close()
            st = server.stats
    total = t_cpu[0]
    http = total - t_prep[0] - t_ans[0]

    def ms(t):
        return f"{1e3 * t[0]:7.2f} ms  [min {1e3 * t[1]:6.2f}]"

    print("\nclient's own time per call (median [min])")
    print(f"  CPU time of Client.separate (this process, server in a child)  {ms(t_cpu)}")
    print(f"    of which validate + mix + resample + WAV (audio.make_upload)  {ms(t_prep)}")
    print(
        f"    of which decode + fit_answer + residual                     {ms(t_ans)}"
        f"   ({ans_n} samples @ 48 kHz -> {n} @ {SR})"
    )
    print(f"    the rest: base64, JSON, HTTP                                {1e3 * http:7.2f} ms")
    print(
        f"  first prepare in this process (cold)                          {1e3 * cold:7.2f} ms"
        "  (lazy imports, once per process)"
    )
    print("baselines (same process)")
    print(f"  np.copy of the audio                       {ms(t_copy)}")
    print(f"  naive upload encode (float WAV+b64+JSON)   {ms(t_naive)}")
    print("ratios")
    print(
        f"  client time / audio duration               {pct(total):7.3f} %   "
        f"(target < {TARGET_PCT:g} %: < {10 * SECONDS * TARGET_PCT:g} ms)"
    )
    print(f"  client time / naive upload encode          {total / t_naive[0]:7.2f} x")
    print(f"  client time / np.copy                      {total / t_copy[0]:7.1f} x")

    # --- bytes --------------------------------------------------------------------------
    naive = len(naive_body(y, SR))
    buf = io.BytesIO()
    sf.write(buf, y.T, SR, format="WAV", subtype="FLOAT")
    raw_naive = buf.getvalue()
    n_up = int(round(n * up.sr / SR))
    samples_ours, samples_naive = n_up * 2, y.size * 4  # 16-bit mono vs float32 stereo
    print("\nrequest bytes per second of audio (JSON body, as received by the endpoint)")
    print(f"  ours (16-bit mono WAV @ {up.sr} Hz, base64)   {ours / SECONDS / 1e3:9.1f} kB/s")
    print(f"  naive (float32 stereo WAV, base64)          {naive / SECONDS / 1e3:9.1f} kB/s")
    print(
        f"  naive / ours                                {naive / ours:9.4f} x  "
        f"(target >= {TARGET_BYTES:g} x)"
    )
    print(
        f"  of which sample data: naive / ours          {samples_naive / samples_ours:9.4f} x  "
        f"(float32 stereo vs 16-bit mono at {up.sr} Hz)"
    )
    ovh_ours = ours - 4 * -(-(samples_ours + 44) // 3)
    ovh_naive = (len(raw_naive) - samples_naive, naive - 4 * -(-len(raw_naive) // 3))
    print(
        f"  fixed overhead: ours {ovh_ours} B of JSON beyond a 44-byte-header WAV in base64 "
        f"(sends {sent}); naive {ovh_naive[0]} B header + {ovh_naive[1]} B JSON"
    )
    print(
        "  (with 16-bit mono WAV at the input rate, naive / ours tends to the sample-data "
        "ratio from below:\n   ours pays a fixed overhead for a quarter of the samples)"
    )
    print(
        f"  extra: upload_format='flac'                 {flac / SECONDS / 1e3:9.1f} kB/s"
        f"   naive / flac = {naive / flac:.2f} x"
    )

    print("\nend to end, INCLUDING the local server's work (LocalEndpoint latency=0, loopback)")
    print(
        f"  Client.separate                            {ms(t_e2e)}   "
        f"= {pct(t_e2e[0]):.2f} % of audio duration"
    )
    print(f"  naive requests.post + soundfile.read       {ms(t_e2e_naive)}")
    print(
        f"  ours / naive                               {t_e2e[0] / t_e2e_naive[0]:7.2f} x"
        f"   (server answered {st['billed']} calls, statuses {st['by_status']})"
    )

    print("\ntargets")
    print(
        f"  {verdict(pct(total) < TARGET_PCT)}  client CPU time {1e3 * total:.1f} ms = "
        f"{pct(total):.3f} % of {SECONDS:g} s (target < {TARGET_PCT:g} %)"
    )
    print(
        f"  {verdict(naive / ours >= TARGET_BYTES)}  request {naive / ours:.4f} x smaller "
        f"than naive (target >= {TARGET_BYTES:g} x; sample data alone "
        f"{samples_naive / samples_ours:.4f} x); flac {naive / flac:.2f} x"
    )
    print(f"\n{load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
