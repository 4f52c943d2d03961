"""Long files in blocks: header info, windows, block writing, output names, bounded memory."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from signals import bandlimited

from samaudio_data import audio
from samaudio_data.errors import InvalidAudioError, InvalidRequestError


def write_blocks(path, y, sr, sizes=(1000, 1, 4097, 0, 25000), **kw):
    """Write ``y`` (channels, n) through a BlockWriter in blocks of uneven sizes."""
    with audio.BlockWriter(path, sr, channels=y.shape[0], **kw) as w:
        pos, k = 0, 0
        while pos < y.shape[1]:
            step = sizes[k % len(sizes)]
            w.write(y[:, pos : pos + step])
            pos, k = pos + step, k + 1
    return w


@pytest.mark.parametrize(
    "name, subtype, channels, tol",
    [
        ("a.wav", None, 1, 0),
        ("a.wav", None, 2, 0),
        ("a.wav", "PCM_16", 2, 2**-15),
        ("a.flac", None, 1, 2**-23),
        ("a.flac", None, 6, 2**-23),
        ("A.WAV", None, 3, 0),
    ],
)
def test_block_write_and_window_reads_match_a_whole_read(tmp_path, name, subtype, channels, tol):
    sr = 44100
    y = bandlimited(3 * sr + 123, sr, channels=channels, amp=0.9).reshape(channels, -1)
    path = tmp_path / name
    w = write_blocks(path, y, sr, subtype=subtype)
    assert w.frames_written == y.shape[1] and path.exists()
    assert not list(tmp_path.glob(".*.part"))
    whole, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert file_sr == sr
    np.testing.assert_allclose(whole.T, y, rtol=0, atol=tol)
    if tol == 0:
        assert np.array_equal(whole.T, y)

    info = audio.audio_file_info(path)
    assert (info.sr, info.frames, info.channels) == (sr, y.shape[1], channels)
    assert info.seconds == y.shape[1] / sr
    for start, stop in [
        (0, 1),
        (0, y.shape[1]),
        (sr - 7, 2 * sr + 9),
        (y.shape[1] - 1, y.shape[1]),
        (5, 5),
    ]:
        window = audio.read_window(path, start, stop)
        assert window.dtype == np.float32 and window.flags["C_CONTIGUOUS"]
        assert np.array_equal(window, whole.T[:, start:stop])
    blocks = list(audio.iter_blocks(path, 10000))
    assert all(b.shape == (channels, 10000) for b in blocks[:-1])
    assert np.array_equal(np.concatenate(blocks, axis=1), whole.T)
    assert np.array_equal(
        np.concatenate(list(audio.iter_blocks(path, 999, start=sr)), axis=1), whole.T[:, sr:]
    )


@pytest.mark.parametrize("fmt", ["MP3", "OGG"])
def test_compressed_inputs_read_windows_exactly_as_a_whole_read(tmp_path, fmt):
    sr = 44100
    y = bandlimited(5 * sr, sr, channels=2)
    path = tmp_path / f"in.{fmt.lower()}"
    sf.write(str(path), y.T, sr, format=fmt)
    whole = sf.read(str(path), dtype="float32", always_2d=True)[0].T
    info = audio.audio_file_info(path)
    assert info.frames == whole.shape[1] and info.channels == 2
    for start, stop in [(0, 1000), (sr + 13, 3 * sr), (4 * sr, info.frames)]:
        assert np.array_equal(audio.read_window(path, start, stop), whole[:, start:stop])


def test_wav_keeps_values_beyond_full_scale_and_flac_clips_and_counts_them(tmp_path):
    y = np.array([[0.5, 1.5, -2.0, 0.25]], dtype=np.float32)
    wav = write_blocks(tmp_path / "loud.wav", y, 8000)
    assert (wav.peak, wav.clipped, wav.subtype, wav.format) == (2.0, 0, "FLOAT", "WAV")
    assert np.array_equal(audio.read_window(tmp_path / "loud.wav", 0, 4), y)
    flac = write_blocks(tmp_path / "loud.flac", y, 8000)
    assert (flac.peak, flac.clipped, flac.subtype) == (2.0, 2, "PCM_24")
    np.testing.assert_allclose(
        audio.read_window(tmp_path / "loud.flac", 0, 4), [[0.5, 1.0, -1.0, 0.25]], atol=2**-23
    )


def test_a_wav_over_4_gib_is_written_as_rf64(tmp_path):
    frames = 2**29 + 1  # 2 channels x 4 bytes: just over 4 GiB of samples
    w = audio.BlockWriter(tmp_path / "huge.wav", 48000, channels=2, frames=frames)
    w.write(np.zeros((2, 10), dtype=np.float32))
    w.close()
    assert w.format == "RF64"
    info = audio.audio_file_info(tmp_path / "huge.wav")
    assert (info.format, info.frames) == ("RF64", 10)
    small = audio.BlockWriter(tmp_path / "small.wav", 48000, channels=2, frames=2**28)
    small.abort()
    assert small.format == "WAV"


def test_an_interrupted_write_leaves_no_file_and_keeps_an_older_one(tmp_path):
    path = tmp_path / "out.wav"
    with pytest.raises(RuntimeError, match="boom"):
        with audio.BlockWriter(path, 8000, channels=1) as w:
            w.write(np.zeros(100))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    write_blocks(path, np.ones((1, 50), dtype=np.float32) * 0.5, 8000)
    with pytest.raises(RuntimeError):
        with audio.BlockWriter(path, 8000, channels=1) as w:
            w.write(np.zeros(100))
            raise RuntimeError("boom")
    assert audio.audio_file_info(path).frames == 50
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda p: audio.BlockWriter(p / "x.mp3", 8000, 1), InvalidRequestError, ".wav"),
        (lambda p: audio.BlockWriter(p / "x.flac", 8000, 9), InvalidRequestError, "at most 8"),
        (
            lambda p: audio.BlockWriter(p / "x.flac", 8000, 1, subtype="FLOAT"),
            InvalidRequestError,
            "cannot hold subtype 'FLOAT'",
        ),
        (
            lambda p: audio.BlockWriter(p / "x.wav", 8000, 2).write(np.zeros((1, 5))),
            InvalidRequestError,
            r"shape \(2, n\)",
        ),
        (
            lambda p: audio.BlockWriter(p / "x.wav", 8000, 1).write(np.zeros(5, dtype=np.int16)),
            InvalidRequestError,
            "float arrays",
        ),
        (lambda p: audio.audio_file_info(p / "missing.wav"), InvalidAudioError, "no file at"),
        (lambda p: audio.read_window(p / "missing.wav", 0, 1), InvalidAudioError, "cannot read"),
        (lambda p: list(audio.iter_blocks(p / "missing.wav")), InvalidAudioError, "cannot read"),
        (lambda p: list(audio.iter_blocks(p / "missing.wav", 0)), InvalidRequestError, "at least"),
    ],
)
def test_bad_files_and_arguments_say_what_to_do(tmp_path, make, error, words):
    with pytest.raises(error, match=words):
        make(tmp_path)


def test_windows_outside_the_file_are_refused(tmp_path):
    write_blocks(tmp_path / "a.wav", np.zeros((1, 100), dtype=np.float32), 8000)
    for start, stop in [(-1, 5), (50, 101), (60, 50)]:
        with pytest.raises(InvalidRequestError, match="outside the file's 100 frames"):
            audio.read_window(tmp_path / "a.wav", start, stop)


def test_a_text_file_is_not_audio(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(
        InvalidAudioError, match="Format not recognised. Check the file, or convert it"
    ):
        audio.audio_file_info(tmp_path / "notes.wav")


@pytest.mark.parametrize(
    "src, description, kw, expected",
    [
        ("/data/talk.wav", "speech", {}, "/data/talk.isolated-speech.wav"),
        ("/data/talk.FLAC", "Dog barking!", {}, "/data/talk.isolated-dog-barking-afb83faf.FLAC"),
        ("show.final.mp3", "drums", {"kind": "residual"}, "show.final.residual-drums.wav"),
        (
            "a.wav",
            "Café ambiance / rain",
            {"ext": "flac"},
            "a.isolated-cafe-ambiance-rain-eacdbb91.flac",
        ),
        ("a.wav", "../../etc/passwd", {}, "a.isolated-etc-passwd-3754d6cb.wav"),
        ("a.wav", "音声", {}, "a.isolated-e83d3ddc.wav"),
        ("a.wav", "声", {}, "a.isolated-693e132f.wav"),  # non-ASCII: distinct by their hash
        ("a.wav", "Speech", {}, "a.isolated-speech-3565fcc6.wav"),
        (
            "a.wav",
            "a man speaking loudly over a crowded room with music in the background",
            {},
            "a.isolated-a-man-speaking-loudly-over-a-crowded-room-with-1b9d46d6.wav",
        ),
    ],
)
def test_output_names_sit_next_to_the_input_and_are_filesystem_safe(src, description, kw, expected):
    out = audio.output_path(src, description, **kw)
    assert out.as_posix() == expected
    assert out.parent == audio.output_path(src, "x").parent


def test_output_name_refuses_formats_it_cannot_write():
    with pytest.raises(InvalidRequestError, match="'.wav' or '.flac'"):
        audio.output_path("a.wav", "speech", ext=".mp3")


# --- the streaming path end to end ----------------------------------------------------------

HALF = np.float32(0.5)


def stream_isolate(src, dst, chunk_seconds=10, overlap_seconds=2, gain=HALF):
    """A file through plan, window reads, a linear 'separation', the joiner and the writer."""
    info = audio.audio_file_info(src)
    plan = audio.plan_chunks(info.frames, info.sr, chunk_seconds, overlap_seconds)
    joiner = audio.ChunkJoiner(plan, channels=info.channels)
    order = [i ^ 1 if i ^ 1 < len(plan) else i for i in range(len(plan))]  # 1, 0, 3, 2, ...
    with audio.BlockWriter(dst, info.sr, info.channels, frames=info.frames) as w:
        for i in order:  # answers arrive out of order
            a, b = plan.windows[i]
            joiner.add(i, audio.read_window(src, a, b) * gain)
            w.write(joiner.take())
    assert joiner.done
    return plan


def make_long_file(path, minutes, sr=8000, channels=2, block=65536):
    """A long synthetic file written in blocks (never whole in memory)."""
    rng = np.random.default_rng(int(minutes * 10))
    n = int(minutes * 60 * sr)
    with audio.BlockWriter(path, sr, channels) as w:
        for start in range(0, n, block):
            w.write(rng.uniform(-0.5, 0.5, (channels, min(block, n - start))).astype(np.float32))
    return n


def test_a_file_streams_through_chunks_and_comes_back_exactly(tmp_path):
    src, dst = tmp_path / "talk.wav", tmp_path / "talk.isolated-speech.wav"
    n = make_long_file(src, 1.1, sr=44100)
    plan = stream_isolate(src, dst)
    assert len(plan) == 8 and audio.audio_file_info(dst).frames == n
    for x, y in zip(audio.iter_blocks(src, 100000), audio.iter_blocks(dst, 100000), strict=True):
        assert np.array_equal(y, x * np.float32(0.5))


def traced_peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_of_the_streaming_path_does_not_grow_with_length(tmp_path):
    sr, channels = 8000, 2
    short, long_ = tmp_path / "short.wav", tmp_path / "long.wav"
    make_long_file(short, 4, sr, channels)
    n = make_long_file(long_, 24, sr, channels)  # 6x longer: 92 MB of float32 samples
    chunk_bytes = 10 * sr * channels * 4
    peak_short = traced_peak(lambda: stream_isolate(short, tmp_path / "o1.wav"))
    peak_long = traced_peak(lambda: stream_isolate(long_, tmp_path / "o2.wav"))
    print(
        f"traced peak: {peak_short / 1e6:.2f} MB (4 min), {peak_long / 1e6:.2f} MB (24 min), "
        f"one chunk {chunk_bytes / 1e6:.2f} MB, whole file {n * channels * 4 / 1e6:.0f} MB"
    )
    assert peak_long < 6 * chunk_bytes and 6 * chunk_bytes < n * channels * 4 / 20
    assert peak_long < peak_short + chunk_bytes / 4
