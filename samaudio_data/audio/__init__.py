"""Audio in and out: validation, the upload we send, and fitting the answer back to the input.

Arrays follow librosa's conventions: mono is ``(n,)``, multichannel is ``(channels, n)``.
Integer PCM is scaled to floats in [-1, 1) the way soundfile and librosa do.

The round trip is built so that a signal the endpoint returns unchanged comes back unchanged
(within 16-bit precision): the upload is mono, at most 48 kHz, 16-bit WAV, scaled down when it
would exceed full scale (and scaled back afterwards); the answer is resampled to the input's
rate, cut or padded to the input's length, and MP3 answers are re-aligned to undo codec delay.

Example
-------
>>> import numpy as np
>>> from samaudio_data import audio
>>> y = np.zeros((2, 44100), dtype=np.float32)
>>> y2d = audio.check_audio(y, 44100)
>>> audio.mix_to_mono(y2d).shape
(44100,)
"""

from ._align import estimate_lag, fit_length, resample, shift
from ._checks import (
    MAX_CHANNELS,
    MAX_SR,
    MIN_SR,
    MODEL_SR,
    check_audio,
    check_sample_rate,
    mix_to_mono,
    to_float,
)
from ._chunks import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    ChunkJoiner,
    ChunkPlan,
    check_chunk_settings,
    count_chunks,
    join_chunks,
    plan_chunks,
)
from ._codec import (
    check_complete,
    decode_audio,
    encode_flac,
    encode_mp3,
    encode_wav,
    excerpt,
    sniff_format,
)
from ._quality import (
    FLAGS,
    SILENT_INPUT_DBFS,
    Verdict,
    WindowVerdict,
    is_silent,
    is_speech_description,
    judge,
    silent_verdict,
)
from ._quality_file import judge_file
from ._roundtrip import Upload, check_covers, fit_answer, make_upload
from ._signals import SIGNAL_NAMES, cleaning_signals
from ._stream import (
    AudioFileInfo,
    BlockWriter,
    audio_file_info,
    iter_blocks,
    output_path,
    read_window,
)

__all__ = [
    "MAX_CHANNELS",
    "MAX_SR",
    "MIN_SR",
    "MODEL_SR",
    "SIGNAL_NAMES",
    "Upload",
    "check_covers",
    "check_audio",
    "check_complete",
    "check_sample_rate",
    "cleaning_signals",
    "decode_audio",
    "encode_flac",
    "encode_mp3",
    "encode_wav",
    "estimate_lag",
    "excerpt",
    "fit_answer",
    "fit_length",
    "make_upload",
    "mix_to_mono",
    "resample",
    "shift",
    "sniff_format",
    "to_float",
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_OVERLAP_SECONDS",
    "ChunkJoiner",
    "ChunkPlan",
    "check_chunk_settings",
    "count_chunks",
    "join_chunks",
    "plan_chunks",
    "AudioFileInfo",
    "BlockWriter",
    "audio_file_info",
    "iter_blocks",
    "output_path",
    "read_window",
    "FLAGS",
    "SILENT_INPUT_DBFS",
    "Verdict",
    "WindowVerdict",
    "is_silent",
    "is_speech_description",
    "judge",
    "silent_verdict",
    "judge_file",
]
