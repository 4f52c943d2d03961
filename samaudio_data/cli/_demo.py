"""``samaudio-data demo``: a small folder of synthetic clips, cleaned end to end."""

from __future__ import annotations

import os
import sys

from ._endpoint import client_for


def run_demo(args) -> int:
    import numpy as np
    from datasets import Audio

    from .._net.transport import is_local
    from .._settings import endpoint as resolve_endpoint
    from ..hf import estimate_cost, isolate

    paying = os.environ.get("SEGMIND_API_KEY") and not is_local(resolve_endpoint(args.endpoint))
    if paying and not (args.local or args.yes):
        print(
            "samaudio-data: SEGMIND_API_KEY is set: the demo would spend about $0.50 on the "
            "real endpoint. Pass --yes to do so, or --local to stay offline.",
            file=sys.stderr,
        )
        return 3
    import soundfile as sf

    from ..hf import audio_folder

    # a folder of clips as a user has them (WAV and FLAC, several rates), read with no torch
    clips = os.path.join(args.out, "clips")
    os.makedirs(clips, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, sr in enumerate([16000, 22050, 44100, 48000, 16000, 44100, 24000, 32000]):
        t = np.arange(int(sr * (1.0 + 0.25 * i))) / sr
        hum = 0.3 * np.sin(2 * np.pi * (60 + 20 * i) * t)  # low: "bass"
        spec = np.fft.rfft(rng.standard_normal(t.size))
        spec[np.fft.rfftfreq(t.size, 1 / sr) < 2000] = 0
        hiss = 0.05 * np.fft.irfft(spec, t.size) / np.std(np.fft.irfft(spec, t.size))
        y = (hum + hiss) if i % 3 else hiss  # some clips have no hum
        sf.write(os.path.join(clips, f"clip{i}.{'flac' if i % 2 else 'wav'}"), y, sr)
    ds = audio_folder(clips)
    with client_for(args) as client:
        fn = isolate("bass hum", client=client, keep="both")
        print(f"demo folder {clips}: {len(ds)} clips; {estimate_cost(ds, fn)}")
        out = ds.map(fn, batched=True, batch_size=len(ds), desc="isolating 'bass hum'")
        for r in out.select_columns(["file_name", "isolated_target_db", "isolated_present"]):
            print(
                f"  {r['file_name']:10s} target {r['isolated_target_db']:7.1f} dB, "
                f"present={r['isolated_present']}"
            )
        kept = out.filter(lambda r: r["isolated_present"])
        kept = kept.cast_column("isolated", Audio(decode=False))
        cleaned = os.path.join(args.out, "cleaned")
        kept.save_to_disk(cleaned)
        print(f"kept {len(kept)} of {len(out)} clips in {cleaned}; {client.usage}")
    return 0
