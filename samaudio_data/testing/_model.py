"""The deterministic fake "model": what the local endpoint computes for an upload.

The description picks a transform by whole lowercase words, first match wins:

========================  =========================================================
word in description       output (``mix`` = the 48 kHz mono input)
========================  =========================================================
``silence``               zeros
``half``                  ``0.5 * mix``
``bass`` or ``low``       low-pass: FFT brick wall keeping bins below 500 Hz
``treble`` or ``high``    ``mix - lowpass(mix)``
anything else             ``mix`` unchanged (identity)
========================  =========================================================

The output is then padded with zeros to a whole number of 1920-sample frames (the model's
latent frame at 48 kHz), resampled to the requested rate and repeated on every output channel.
:func:`encode_answer` turns it into the bytes of a WAV or MP3 answer, clipping loudly.

Example
-------
>>> import numpy as np
>>> separate(np.ones(50000) * 0.5, 48000, "a man speaking").shape
(1, 51840)
>>> wants_failure("please fail this one"), wants_failure("failing engine")
(True, False)
"""

from __future__ import annotations

import re

import numpy as np

from .. import audio

MODEL_SR = 48000
"""The model's working rate (Hz)."""
FRAME = 1920
"""The model's latent frame in samples at 48 kHz (25 frames per second)."""
LOWPASS_HZ = 500.0
"""Cut-off of the ``bass``/``low`` brick-wall low-pass."""
FAIL_WORD = "fail"
"""A description containing this whole word makes the model fail (500 on v1, FAILED queued)."""
WAV_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def _words(description: str) -> set:
    return set(re.findall(r"[a-z0-9]+", description.lower()))


def choose_transform(description: str) -> str:
    """Name the transform a description selects: silence, half, lowpass, highpass or identity.

    Whole lowercase words are matched, first rule wins (see the module docstring).

    >>> choose_transform("Bass guitar"), choose_transform("half the drums, low")
    ('lowpass', 'half')
    >>> choose_transform("a man speaking")
    'identity'
    """
    words = _words(description)
    if "silence" in words:
        return "silence"
    if "half" in words:
        return "half"
    if words & {"bass", "low"}:
        return "lowpass"
    if words & {"treble", "high"}:
        return "highpass"
    return "identity"


def wants_failure(description: str) -> bool:
    """True when the description holds the whole word ``fail``: the model fails on it.

    >>> wants_failure("FAIL"), wants_failure("a man speaking")
    (True, False)
    """
    return FAIL_WORD in _words(description)


def _lowpass(mono: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft(mono)
    spectrum[np.fft.rfftfreq(mono.shape[-1], 1.0 / MODEL_SR) >= LOWPASS_HZ] = 0.0
    return np.fft.irfft(spectrum, n=mono.shape[-1])


def separate(
    y: np.ndarray,
    sr: int,
    description: str,
    *,
    pad_to_frame: bool = True,
    output_sample_rate: int = MODEL_SR,
    output_channels: int = 1,
) -> np.ndarray:
    """Compute what the local endpoint returns for ``y`` at ``sr``, before encoding.

    ``y`` is ``(n,)`` or ``(channels, n)`` float audio; the result is float64
    ``(output_channels, m)``: channels averaged, resampled to 48 kHz (skipped when already
    48 kHz), transformed, padded to whole frames, resampled to ``output_sample_rate``.

    >>> separate(np.ones(1000) * 0.25, 48000, "half the piano").shape
    (1, 1920)
    >>> float(separate(np.ones(1000) * 0.25, 48000, "half the piano")[0, 0])
    0.125
    """
    y2d = np.atleast_2d(np.asarray(y, dtype=np.float64))
    mix = audio.resample(audio.mix_to_mono(y2d), int(sr), MODEL_SR)
    kind = choose_transform(description)
    if kind == "silence":
        out = np.zeros_like(mix)
    elif kind == "half":
        out = mix * 0.5
    elif kind == "lowpass":
        out = _lowpass(mix)
    elif kind == "highpass":
        out = mix - _lowpass(mix)
    else:
        out = mix
    if pad_to_frame:
        out = audio.fit_length(out, -(-out.shape[-1] // FRAME) * FRAME)
    out = audio.resample(out, MODEL_SR, int(output_sample_rate))
    return np.tile(out, (int(output_channels), 1))


def encode_answer(out: np.ndarray, sr: int, fmt: str, subtype: str = "PCM_16") -> tuple[bytes, int]:
    """Encode ``out`` as ``fmt`` ("wav" with ``subtype``, or "mp3"); return bytes and clip count.

    Integer PCM and MP3 cannot hold samples beyond full scale: those are clipped to [-1, 1]
    and counted, never silently.

    >>> data, clipped = encode_answer(np.array([[0.5, 1.5, -2.0]]), 48000, "wav")
    >>> data[:4], clipped
    (b'RIFF', 2)
    """
    clipped = 0
    if fmt == "mp3" or subtype.startswith("PCM"):
        clipped = int(np.count_nonzero(np.abs(out) > 1.0))
        if clipped:
            out = np.clip(out, -1.0, 1.0)
    if fmt == "mp3":
        return audio.encode_mp3(out, sr), clipped
    return audio.encode_wav(out, sr, subtype), clipped
