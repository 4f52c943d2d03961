"""Shared by the benchmark scripts: test signals, small datasets, result lines.

Only the package's public API is used (``Client``, ``isolate``, ``prefetch``,
``samaudio_data.audio``, ``samaudio_data.testing``); nothing here reaches into internals.
"""

from __future__ import annotations

import os
import resource
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KEY = "local-key"
DESCRIPTION = "a man speaking"


def music_like(
    seconds: float = 10.0, sr: int = 44100, seed: int = 0, noise_db: float = -46.0
) -> np.ndarray:
    """Stereo float32 (2, n): decaying harmonic notes (4 a second), panned, over white noise
    at ``noise_db`` dBFS (RMS; None: none)."""
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
    if noise_db is not None:
        y += 10 ** (noise_db / 20) * rng.standard_normal(y.shape)
    return (y / max(1.0, 1.1 * np.abs(y).max())).astype(np.float32)


def speech_like(
    seconds: float = 10.0, sr: int = 44100, seed: int = 0, noise_db: float = -50.0
) -> np.ndarray:
    """Mono float32 (n,): voiced syllables (a glottal pulse train, 100-160 Hz with vibrato,
    through three moving formant resonators), 3-6 syllables a second with short pauses, over
    white room noise at ``noise_db`` dBFS (RMS; None: none)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 130 + 25 * np.sin(2 * np.pi * 0.3 * t) + 5 * np.sin(2 * np.pi * 5.5 * t)
    phase = np.cumsum(f0 / sr)
    pulses = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(float)
    source = lfilter([1.0], [1.0, -0.97], pulses) + 0.05 * rng.standard_normal(n)
    env = np.zeros(n)
    pos = 0.0
    while pos < seconds:
        dur = rng.uniform(0.15, 0.3)
        i0, i1 = int(pos * sr), min(n, int((pos + dur) * sr))
        env[i0:i1] = np.hanning(max(2, i1 - i0))[: i1 - i0]
        pos += dur + (rng.uniform(0.2, 0.5) if rng.random() < 0.2 else rng.uniform(0.0, 0.06))
    y = np.zeros(n)
    block = int(0.05 * sr)  # formants move every 50 ms
    for i0 in range(0, n, block):
        seg = source[i0 : i0 + block]
        out = np.zeros_like(seg)
        for lo, hi, bw in ((300, 800, 80), (900, 2200, 120), (2300, 3000, 200)):
            f = rng.uniform(lo, hi)
            r = np.exp(-np.pi * bw / sr)
            a = [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
            out += lfilter([1.0 - r], a, seg)
        y[i0 : i0 + block] = out
    y *= env
    y = 0.5 * y / np.abs(y).max()
    if noise_db is not None:
        y += 10 ** (noise_db / 20) * rng.standard_normal(n)
    return y.astype(np.float32)


def short_clips(rows: int, *, seconds: float = 0.5, sr: int = 16000, seed: int = 0) -> list:
    """``rows`` distinct short mono float32 clips (tones + noise): every one a new request."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return [
        (
            0.2 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t)
            + 0.02 * rng.standard_normal(t.size)
        ).astype(np.float32)
        for _ in range(rows)
    ]


def wav_dataset(clips: list, sr: int):
    """A ``datasets.Dataset`` whose ``audio`` column is ``Audio(decode=False)`` WAV bytes
    (read by the library itself, so no torch decoding is timed)."""
    from datasets import Audio, Dataset

    from samaudio_data.audio import encode_wav

    values = [{"bytes": encode_wav(y, sr), "path": None} for y in clips]
    return Dataset.from_dict({"audio": values, "id": list(range(len(clips)))}).cast_column(
        "audio", Audio(decode=False)
    )


def quiet_datasets() -> None:
    """No datasets cache files, no progress bars."""
    import datasets

    datasets.disable_caching()
    datasets.logging.disable_progress_bar()


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: ``VmHWM`` of ``/proc/self/status`` (not
    ``ru_maxrss``, which in a child starts at its parent's peak at fork time); ``ru_maxrss``
    where there is no /proc."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def load_line() -> str:
    return (
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the end "
        "(other work on the machine skews every figure)"
    )


_STAT_KEYS = (
    "requests",
    "billed",
    "by_status",
    "max_in_flight",
    "request_bytes",
    "last_request",
    "submits",
    "polls",
    "seen_lags",
    "collect_lags",
)


def _serve(conn, settings: dict) -> None:
    """Child process: run a LocalEndpoint and answer commands from the parent."""
    from samaudio_data.testing import LocalEndpoint

    ep = LocalEndpoint(keys={KEY: None}, **settings).start()
    conn.send(ep.url)
    while True:
        cmd, arg = conn.recv()
        if cmd == "stats":
            st = ep.stats
            conn.send({k: st[k] for k in _STAT_KEYS})
        elif cmd == "latency":
            ep.latency = float(arg)
            ep.reset_stats()
            conn.send(None)
        elif cmd == "stop":
            ep.stop()
            conn.send(None)
            return


class Server:
    """A LocalEndpoint in a child process (default) or in this one (``in_process=True``).

    In a child process the server's own work (decoding the upload, resampling, encoding the
    answer) does not compete with the client for this process's GIL or show in its CPU
    time, as with a remote endpoint; it still shares the machine's cores.
    """

    def __init__(self, *, in_process: bool = False, **settings) -> None:
        self.in_process = in_process
        if in_process:
            from samaudio_data.testing import LocalEndpoint

            self._ep = LocalEndpoint(keys={KEY: None}, **settings).start()
            self.url = self._ep.url
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            self._conn, child = ctx.Pipe()
            self._proc = ctx.Process(target=_serve, args=(child, settings), daemon=True)
            self._proc.start()
            self.url = self._recv()

    def _recv(self, timeout: float = 120.0):
        if not self._conn.poll(timeout):
            raise RuntimeError(
                f"the LocalEndpoint child process did not answer in {timeout:g} s "
                f"(alive: {self._proc.is_alive()})"
            )
        return self._conn.recv()

    def _ask(self, cmd: str, arg=None):
        self._conn.send((cmd, arg))
        return self._recv()

    def configure(self, latency: float) -> None:
        """Set the latency and zero the counters, before a run."""
        if self.in_process:
            self._ep.latency = float(latency)
            self._ep.reset_stats()
        else:
            self._ask("latency", latency)

    @property
    def stats(self) -> dict:
        if self.in_process:
            st = self._ep.stats
            return {k: st[k] for k in _STAT_KEYS}
        return self._ask("stats")

    def close(self) -> None:
        if self.in_process:
            self._ep.stop()
        else:
            self._ask("stop")
            self._proc.join(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
