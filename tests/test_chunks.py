"""Long clips: planning overlapping windows and joining their answers with a crossfade."""

import numpy as np
import pytest
from signals import bandlimited

from samaudio_data import audio
from samaudio_data.errors import InvalidRequestError

RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]


def slices(plan, y, f=lambda part: part):
    """Each window's answer of a separation ``f`` applied to the window's slice."""
    return [f(y[..., a:b]) for a, b in plan.windows]


def check_plan(plan):
    """Every invariant a plan promises; returns the plan for chaining."""
    w, n, c, ov = plan.windows, plan.n, plan.chunk, plan.overlap
    assert w[0][0] == 0 and w[-1][1] == n
    assert all(0 < b - a <= c for a, b in w), "every window is non-empty and at most a chunk"
    if len(w) == 1:
        assert ov == 0 and n <= c
        return plan
    assert n > c and 2 * ov <= c
    for (_, b0), (a1, _) in zip(w, w[1:], strict=False):
        assert b0 - a1 == ov, "consecutive windows overlap by exactly the overlap"
    for (_, b0), (a2, _) in zip(w, w[2:], strict=False):
        assert a2 >= b0, "no sample lies in three windows"
    # the fewest windows: one fewer could not cover n with hops of at most chunk - overlap
    assert len(w) == -(-(n - ov) // (c - ov))
    # nothing degenerate: every hop is at least about half the longest possible hop
    assert min(b - a for a, b in w) - ov >= (c - ov) // 2
    return plan


# --- planning ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunk, overlap", [(10, 2), (10, 0), (10, 5), (10, 4), (1, 0.25), (0.01, 0.003), (29, 3)]
)
def test_every_plan_covers_the_clip_with_exact_overlaps(chunk, overlap):
    sr = 8000
    c = round(chunk * sr)
    ns = sorted(
        {1, 2, c - 1, c, c + 1, c + 2, 2 * c - 1, 2 * c, 2 * c + 1, 7 * c + 3}
        | set(np.random.default_rng(0).integers(1, 12 * c, 200).tolist())
    )
    for n in ns:
        plan = check_plan(audio.plan_chunks(n, sr, chunk, overlap))
        assert len(plan) == len(plan.windows) == len(list(plan))
        assert audio.count_chunks(n, sr, chunk, overlap) == len(plan)


def test_a_clip_of_exactly_one_chunk_is_one_call():
    plan = audio.plan_chunks(10 * 44100, 44100, 10, 2)
    assert plan.windows == ((0, 441000),) and len(plan) == 1 and plan.overlap == 0


def test_one_chunk_plus_one_sample_is_two_balanced_windows():
    plan = check_plan(audio.plan_chunks(10 * 44100 + 1, 44100, 10, 2))
    assert len(plan) == 2
    assert abs(plan.lengths()[0] - plan.lengths()[1]) <= 1  # not a 1-sample sliver
    assert plan.overlap == 2 * 44100


def test_a_tail_shorter_than_the_overlap_is_spread_over_all_windows():
    # 3 full windows would leave a 1 s tail (shorter than the 3 s overlap)
    sr = 16000
    n = (10 + 7 + 7 + 1) * sr
    plan = check_plan(audio.plan_chunks(n, sr, 10, 3))
    assert len(plan) == 4 and max(plan.lengths()) - min(plan.lengths()) <= 1


def test_overlap_between_a_third_and_a_half_of_a_chunk_never_puts_a_sample_in_three_windows():
    # evenly spread, the middle windows would be shorter than two overlaps
    plan = check_plan(audio.plan_chunks(16, 1, 10, 5))
    assert plan.windows == ((0, 8), (3, 13), (8, 16))


def test_tiny_clips_and_tiny_chunks():
    assert audio.plan_chunks(1, 8000, 10, 2).windows == ((0, 1),)
    plan = check_plan(audio.plan_chunks(5, 8000, 1 / 8000, 0))
    assert plan.windows == ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5))


def test_seconds_are_rounded_to_whole_samples():
    plan = audio.plan_chunks(10**6, 11025, 10, 2.5)
    assert (plan.chunk, plan.overlap, plan.sr) == (110250, 27562, 11025)  # 27562.5 -> even
    assert plan.seconds == 10**6 / 11025


@pytest.mark.parametrize(
    "args, words",
    [
        ((100, 8000, 10, 10), "not less than chunk_seconds=10"),
        ((100, 8000, 10, 12), "not less than chunk_seconds"),
        ((100, 8000, 10, 5.5), "more than half of chunk_seconds=10"),
        ((100, 8000, 10, -1), "must be 0 or more"),
        ((100, 8000, 0, 0), "must be positive"),
        ((100, 8000, 1e-5, 0), "shorter than one sample"),
        ((100, 8000, "10", 2), "number of seconds"),
        ((100, 8000, 10, float("nan")), "finite"),
        ((0, 8000, 10, 2), "at least 1"),
        ((10.5, 8000, 10, 2), "whole number of samples"),
        ((100, 0, 10, 2), "positive whole number of Hz"),
        ((100, 44100.5, 10, 2), "positive whole number of Hz"),
    ],
)
def test_bad_settings_say_what_to_do(args, words):
    with pytest.raises(InvalidRequestError, match=words) as info:
        audio.plan_chunks(*args)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidRequestError, match=words):
        audio.count_chunks(*args)


def test_default_settings_cost_200_calls_per_hour_and_keep_20_s_clips_whole():
    chunk, overlap = audio.DEFAULT_CHUNK_SECONDS, audio.DEFAULT_OVERLAP_SECONDS
    assert audio.check_chunk_settings(chunk, overlap) == (chunk, overlap)
    for sr in RATES:
        assert audio.count_chunks(3600 * sr, sr, chunk, overlap) == 200
        assert audio.count_chunks(20 * sr, sr, chunk, overlap) == 1
        assert audio.count_chunks(20 * sr + 1, sr, chunk, overlap) == 2


def test_plans_are_frozen_and_comparable():
    plan = audio.plan_chunks(10**5, 8000, 2, 0.5)
    assert plan == audio.plan_chunks(10**5, 8000, 2, 0.5)
    with pytest.raises(AttributeError):
        plan.n = 5


# --- joining: exact for linear time-invariant separations ---------------------------------


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_identity_and_half_join_exactly_at_every_rate(sr, channels):
    chunk, overlap = 1.0, 0.3
    c = round(chunk * sr)
    for n in (c, c + 1, c + round(0.1 * sr), 4 * c + 17):
        y = bandlimited(n, sr, seed=n, channels=channels)
        plan = check_plan(audio.plan_chunks(n, sr, chunk, overlap))
        assert np.array_equal(audio.join_chunks(plan, slices(plan, y)), y)
        half = audio.join_chunks(plan, slices(plan, y, lambda p: p * np.float32(0.5)))
        assert half.dtype == np.float32 and half.shape == y.shape
        assert np.array_equal(half, y * np.float32(0.5))


def test_float64_answers_join_within_float32_rounding_the_same_way_in_both_joins():
    sr = 48000
    y = np.random.default_rng(1).standard_normal((2, 37 * sr)) * 0.3
    plan = audio.plan_chunks(y.shape[-1], sr, 10, 3)
    out = audio.join_chunks(plan, slices(plan, y))
    assert out.dtype == np.float32
    assert np.array_equal(out, y.astype(np.float32))
    noisy = slices(plan, y, lambda p: p * 0.9 + 1e-3 * np.sin(np.arange(p.shape[-1])))
    joiner = audio.ChunkJoiner(plan)
    for i in reversed(range(len(plan))):
        joiner.add(i, noisy[i])
    assert np.array_equal(joiner.take(), audio.join_chunks(plan, noisy))


def test_zero_overlap_is_plain_concatenation():
    y = bandlimited(50000, 8000)
    plan = audio.plan_chunks(y.size, 8000, 1, 0)
    answers = slices(plan, y, lambda p: p + 1)
    assert np.array_equal(audio.join_chunks(plan, answers), np.concatenate(answers))


def test_crossfade_weights_sum_to_one_and_rise_smoothly():
    plan = audio.plan_chunks(3000, 8000, 0.25, 0.125)  # 2000-sample windows, 1000 overlap
    ones = [np.ones(b - a, dtype=np.float32) for a, b in plan]
    zeros = [np.zeros(b - a, dtype=np.float32) for a, b in plan]
    assert np.array_equal(audio.join_chunks(plan, ones), np.ones(plan.n, dtype=np.float32))
    # the fade-in alone: 0 -> 1 over the overlap, raised-cosine shaped, symmetric
    fade = audio.join_chunks(plan, [zeros[0], ones[1]])[plan.windows[1][0] : plan.windows[0][1]]
    assert fade.size == plan.overlap
    assert np.all(np.diff(fade) > 0) and 0 < fade[0] < 1e-5 and 1 - 1e-5 < fade[-1] < 1
    np.testing.assert_allclose(fade + fade[::-1], 1, atol=1e-6)
    t = (np.arange(plan.overlap) + 0.5) / plan.overlap
    np.testing.assert_allclose(fade, np.sin(np.pi / 2 * t) ** 2, atol=1e-7)


@pytest.mark.parametrize(
    "bad, words",
    [
        ("count", "got 1 answers for a plan of 2"),
        ("length", "has 11999 samples but its window"),
        ("channels", "expected 1 channel"),
        ("dtype", "must be a float array"),
    ],
)
def test_join_rejects_answers_that_do_not_fit_the_plan(bad, words):
    plan = audio.plan_chunks(20000, 8000, 1.5, 0.5)
    answers = [np.zeros(b - a, dtype=np.float32) for a, b in plan]
    if bad == "count":
        answers = answers[:1]
    elif bad == "length":
        answers[1] = answers[1][:-1]
    elif bad == "channels":
        answers[1] = np.zeros((2, answers[1].size), dtype=np.float32)
    else:
        answers[0] = answers[0].astype(np.int16)
    with pytest.raises(InvalidRequestError, match=words):
        audio.join_chunks(plan, answers)


# --- streaming ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("overlap", [0.4, 0])
def test_streaming_join_in_any_order_equals_the_in_memory_join(channels, seed, overlap):
    rng = np.random.default_rng(seed)
    sr = 11025
    n = int(rng.integers(3 * sr, 12 * sr))
    y = bandlimited(n, sr, seed=seed, channels=channels)
    plan = audio.plan_chunks(n, sr, 1.3, overlap)
    answers = slices(plan, y, lambda p: p * np.float32(0.7) + np.float32(0.01))
    joiner = audio.ChunkJoiner(plan, channels=channels)
    got = []
    for i in rng.permutation(len(plan)):
        joiner.add(int(i), answers[i])
        part = joiner.take()
        assert part.dtype == np.float32 and part.shape[:-1] == y.shape[:-1]
        got.append(part)
    assert joiner.done and joiner.position == n and joiner.pending == 0
    assert np.array_equal(np.concatenate(got, axis=-1), audio.join_chunks(plan, answers))


def test_streaming_in_order_holds_at_most_two_answers_and_hands_out_what_is_final():
    sr = 8000
    plan = audio.plan_chunks(20 * sr, sr, 2, 0.5)
    y = bandlimited(plan.n, sr)
    joiner = audio.ChunkJoiner(plan)
    for i, (a, b) in enumerate(plan.windows):
        joiner.add(i, y[a:b])
        part = joiner.take()
        assert joiner.pending <= 1 and joiner.next_window == i + (i == len(plan) - 1)
        # everything before the next window's fade-in is final; the fade-in waits for it
        expected_end = b if i == len(plan) - 1 else plan.windows[i + 1][0]
        assert joiner.position == expected_end
        assert np.array_equal(part, y[expected_end - part.size : expected_end])


@pytest.mark.parametrize(
    "bad, words",
    [
        ("twice", "already added"),
        ("index", "outside the plan's"),
        ("layout", "earlier answers were 1-D"),
    ],
)
def test_joiner_rejects_misuse(bad, words):
    plan = audio.plan_chunks(30000, 8000, 1.5, 0.5)
    joiner = audio.ChunkJoiner(plan)
    a, b = plan.windows[0]
    joiner.add(0, np.zeros(b - a))
    joiner.take()
    with pytest.raises(InvalidRequestError, match=words):
        if bad == "twice":
            joiner.add(0, np.zeros(b - a))
        elif bad == "index":
            joiner.add(len(plan), np.zeros(b - a))
        else:
            a, b = plan.windows[1]
            joiner.add(1, np.zeros((1, b - a)))


# --- a time-varying separation: no click, no shift ------------------------------------------


def seam_jumps(plan, out):
    """Largest sample-to-sample step inside each crossfade (or at each cut, with no overlap)."""
    jumps = []
    for (a1, _), (_, b0) in zip(plan.windows[1:], plan.windows, strict=False):
        lo, hi = min(a1, b0) - 1, max(a1, b0) + 1
        jumps.append(np.max(np.abs(np.diff(out[..., lo:hi], axis=-1))))
    return np.array(jumps)


@pytest.mark.parametrize("transform", ["gain per chunk", "normalised per chunk"])
def test_a_time_varying_separation_has_no_click_and_no_shift(transform):
    sr = 48000
    t = np.arange(40 * sr) / sr
    # low tones (so that a jump stands out) under a slowly varying level (so that per-chunk
    # normalisation really changes the gain at each seam)
    y = sum(np.sin(2 * np.pi * f * t + f) for f in (31.3, 47.9, 73.1)) / 3
    y = (y * (0.55 + 0.45 * np.sin(2 * np.pi * t / 17))).astype(np.float32)
    rng = np.random.default_rng(0)

    def separate(plan):
        if transform == "gain per chunk":
            gains = rng.uniform(0.4, 1.0, len(plan)).astype(np.float32)
            return [g * p for g, p in zip(gains, slices(plan, y), strict=True)]
        return [p / np.max(np.abs(p)) * np.float32(0.9) for p in slices(plan, y)]

    own = np.max(np.abs(np.diff(y)))  # the signal's own largest step
    smooth = audio.plan_chunks(y.size, sr, 10, 2)
    out = audio.join_chunks(smooth, separate(smooth))
    gain = np.max(np.abs(out)) / np.max(np.abs(y))
    assert np.all(seam_jumps(smooth, out) <= 1.05 * gain * own)
    assert audio.estimate_lag(out, y, max_lag=sr // 10) == 0
    # the same separation joined with hard cuts does click: the measure can fail
    cut = audio.plan_chunks(y.size, sr, 10, 0)
    hard = audio.join_chunks(cut, separate(cut))
    assert np.max(seam_jumps(cut, hard)) > 2 * gain * own
