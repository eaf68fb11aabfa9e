"""The PyAV reader (``video.reader: pyav``): without decoder options it gives OpenCV's frames
and timestamps exactly, through every path of the reader (whole reads, checked seeks before
a stretch, resumed reads); ``fast_decode`` changes pixels a little; ``skip_nonref`` with a
stride leaves frames undecoded but keeps indices, counts and the stride's spacing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cpp_tracker.video.reader import DecodeOptions, FrameSpan, VideoReader

PYAV = DecodeOptions(reader="pyav")
FAST = DecodeOptions(reader="pyav", fast_decode=True)


def _read(video, decode=None, **kwargs):
    with VideoReader(video, decode=decode) as reader:
        chunks = list(reader.chunks(32, prefetch=False, **kwargs))
    return (
        reader,
        np.concatenate([c.index for c in chunks]),
        np.concatenate([c.time_s for c in chunks]),
        np.concatenate([c.frames for c in chunks]),
        chunks,
    )


@pytest.fixture(scope="module")
def clip(video_factory):
    """20 s at 30 fps, 320x240, a keyframe every 2 s, H.264 with B-frames."""
    video, _, _ = video_factory("video_clip", duration_s=20.0, seed=41)
    _, index, times, frames, _ = _read(video)
    return video, index, times, frames


def test_pyav_gives_opencvs_frames_and_times(clip):
    video, index, times, frames = clip
    reader, i, t, f, _ = _read(video, PYAV)
    assert np.array_equal(i, index) and np.array_equal(t, times)
    assert np.array_equal(f, frames)
    assert reader.frames_decoded == 600 and reader.frames_not_decoded == 0


@pytest.mark.parametrize("cuts", [[0.5, 7.2, 13.37], [10.0, 19.9]])
def test_pyav_stretches_join_exactly(clip, cuts):
    video, index, times, frames = clip
    bounds = [-math.inf, *cuts, math.inf]
    got, first = [], 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        reader, i, t, f, _ = _read(video, PYAV, span=FrameSpan(a, b, first_index=first))
        assert reader.span_report.frames == len(f) and reader.span_report.non_increasing == 0
        if a > 2.5:
            assert reader.span_report.seek_s is not None and reader.span_report.seek_s < a
        got.append((i, t, f))
        first += len(f)
    assert np.array_equal(np.concatenate([g[0] for g in got]), index)
    assert np.array_equal(np.concatenate([g[1] for g in got]), times)
    assert np.array_equal(np.concatenate([g[2] for g in got]), frames)


def test_pyav_resumes_after_a_position_exactly(clip):
    video, index, times, frames = clip
    *_, chunks = _read(video, PYAV)
    position = chunks[4].end_position
    reader, i, t, f, _ = _read(video, PYAV, resume_after=position)
    assert reader.resumed_by_seek is True
    assert np.array_equal(i, index[5 * 32:]) and np.array_equal(t, times[5 * 32:])
    assert np.array_equal(f, frames[5 * 32:])


def test_fast_decode_changes_pixels_only_a_little(clip):
    video, index, times, frames = clip
    _, i, t, f, _ = _read(video, FAST)
    assert np.array_equal(i, index) and np.array_equal(t, times)
    diff = np.abs(f.astype(np.int16) - frames)
    # deblocking smooths block edges: most pixels equal, the mean change small
    assert diff.mean() < 1.0
    assert 0 < np.mean(diff > 0) < 0.6


@pytest.mark.parametrize("stride", [2, 5])
def test_skipping_non_reference_frames_keeps_the_stride(clip, stride):
    video, index, times, frames = clip
    skip = DecodeOptions(reader="pyav", fast_decode=True, skip_nonref=True)
    reader, i, t, f, _ = _read(video, skip, stride=stride)
    assert reader.frames_decoded == 600
    assert reader.frames_not_decoded > 0  # the generated videos have B-frames no one uses
    # one frame per stretch of `stride` frames: the one due, or the next decoded one
    assert np.array_equal(i // stride, np.arange(len(i)))
    assert len(i) == math.ceil(600 / stride)
    assert np.array_equal(t, times[i])
    # the frames kept are those frames (decoded without deblocking)
    _, _, _, fast, _ = _read(video, FAST)
    assert np.array_equal(f, fast[i])


def test_without_a_stride_nothing_is_skipped(clip):
    video, index, _, _ = clip
    skip = DecodeOptions(reader="pyav", fast_decode=True, skip_nonref=True)
    reader, i, *_ = _read(video, skip)
    # skip_nonref is the pipeline's choice for a stride only; asked for without one, the
    # frames the decoder skipped are missing, never replaced or renumbered
    assert set(i) <= set(index) and reader.frames_decoded == 600
    assert len(i) + reader.frames_not_decoded == 600
