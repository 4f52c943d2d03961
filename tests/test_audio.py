"""The audio round trip's pieces: validation, uploads, fitting answers back."""

import numpy as np
import pytest
from signals import bandlimited

from samaudio_data import audio
from samaudio_data.errors import InvalidAudioError, ResponseDecodeError


@pytest.mark.parametrize(
    "y, sr, words",
    [
        (np.zeros(0), 16000, "empty"),
        (np.array([0.0, np.nan]), 16000, "NaN"),
        (np.array([0.0, np.inf]), 16000, "NaN or infinite"),
        (np.zeros(100), 4000, "outside the supported"),
        (np.zeros(100), 400000, "outside the supported"),
        (np.zeros(100), 16000.5, "whole number"),
        (np.zeros(100), "16k", "number of Hz"),
        (np.zeros((44100, 2)), 44100, "looks transposed"),
        (np.zeros((2, 2, 10)), 16000, "1-D"),
        (np.array(["a", "b"]), 16000, "numeric"),
        (None, 16000, "None"),
    ],
)
def test_bad_audio_is_rejected_with_a_clear_message(y, sr, words):
    with pytest.raises(InvalidAudioError, match=words):
        audio.check_audio(y, sr)


def test_too_long_audio_names_the_limit():
    with pytest.raises(InvalidAudioError, match="over the limit of 2 s"):
        audio.check_audio(np.zeros(3 * 8000), 8000, max_seconds=2)


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.int16, 2**15), (np.int32, 2**31), (np.uint8, None), (np.float32, 1), (np.float64, 1)],
)
def test_integer_pcm_is_scaled_like_soundfile(dtype, scale):
    if dtype is np.uint8:
        assert audio.to_float(np.array([128, 255, 0], dtype=np.uint8)).tolist() == [
            0.0,
            127 / 128,
            -1.0,
        ]
        return
    y = (np.array([0.25, -0.5]) * scale).astype(dtype)
    assert audio.to_float(y).tolist() == [0.25, -0.5]


def test_upload_is_mono_16bit_at_most_48k():
    import io

    import soundfile as sf

    up = audio.make_upload(bandlimited(96000, 96000), 96000)
    info = sf.info(io.BytesIO(up.data))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")
    up = audio.make_upload(bandlimited(8000, 8000), 8000)
    assert sf.info(io.BytesIO(up.data)).samplerate == 8000


def test_upload_above_full_scale_is_scaled_not_clipped():
    y = bandlimited(16000, 16000, amp=3.0)
    up = audio.make_upload(y, 16000)
    sent, _ = audio.decode_audio(up.data)
    assert up.gain == pytest.approx(np.max(np.abs(y)), rel=1e-3)
    assert np.max(np.abs(sent)) <= 1.0
    restored = audio.fit_answer(sent, 16000, sr=16000, n=16000, gain=up.gain)
    np.testing.assert_allclose(restored, y, atol=3 * 3 / 32768)


def test_fit_answer_resamples_and_cuts_padding():
    y = bandlimited(44100, 44100)
    at48 = audio.resample(y.astype(np.float64), 44100, 48000)
    padded = np.pad(at48, (0, 1920 - at48.size % 1920))[np.newaxis]
    out = audio.fit_answer(padded, 48000, sr=44100, n=44100)
    assert out.shape == (44100,) and out.dtype == np.float32
    np.testing.assert_allclose(out[100:-100], y[100:-100], atol=2e-3)


def test_mp3_codec_delay_is_removed():
    sr = 48000
    y = bandlimited(sr, sr, seed=3)
    delayed = np.concatenate([np.zeros(1105), y])  # an encoder delay a decoder did not trim
    dec, asr = audio.decode_audio(audio.encode_mp3(delayed, sr))
    out = audio.fit_answer(dec, asr, sr=sr, n=sr, reference=y.astype(np.float64), realign=True)
    assert audio.estimate_lag(out.astype(np.float64), y.astype(np.float64), 2000) == 0
    assert np.corrcoef(out, y)[0, 1] > 0.95
    silent = audio.fit_answer(np.zeros((1, sr)), sr, sr=sr, n=sr, reference=y, realign=True)
    assert not silent.any()


def test_sniff_and_decode_errors():
    wav = audio.encode_wav(np.zeros(10), 8000)
    assert audio.sniff_format(wav) == "wav"
    assert audio.sniff_format(audio.encode_mp3(np.zeros(4800), 48000)) == "mp3"
    assert audio.sniff_format(audio.encode_flac(np.zeros(10), 8000)) == "flac"
    with pytest.raises(ResponseDecodeError, match="<html>"):
        audio.decode_audio(b"<html>not audio</html>")
