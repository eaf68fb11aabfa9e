"""The reader: resuming a read after a position gives exactly the frames of a full read."""

from __future__ import annotations

import numpy as np
import pytest

from cpp_tracker.video import ReadPosition, VideoReader


def read_all(reader, **kwargs):
    chunks = list(reader.chunks(32, prefetch=False, **kwargs))
    return (
        np.concatenate([c.index for c in chunks]),
        np.concatenate([c.time_s for c in chunks]),
        np.concatenate([c.frames for c in chunks]),
        chunks,
    )


@pytest.fixture(scope="module")
def clip(video_factory):
    video, truth, config = video_factory("reader_clip", duration_s=8.0, seed=5)
    return video


@pytest.mark.parametrize("stride", [1, 3])
def test_resume_after_a_chunk_seeks_and_continues_exactly(clip, stride):
    with VideoReader(clip) as reader:
        index, time_s, frames, chunks = read_all(reader, stride=stride)
        total_frames = reader.frames_decoded
    position = chunks[1].end_position
    with VideoReader(clip) as reader:
        index2, time2, frames2, _ = read_all(reader, stride=stride, resume_after=position)
        assert reader.resumed_by_seek is True
        # the seek lands at the frame: the frames before it are not decoded again
        assert reader.frames_grabbed < total_frames - position.frame // 2
        assert reader.frames_decoded == total_frames
    start = 2 * 32
    assert index2[0] == position.frame + stride
    np.testing.assert_array_equal(index2, index[start:])
    np.testing.assert_array_equal(time2, time_s[start:])
    np.testing.assert_array_equal(frames2, frames[start:])


def test_resume_falls_back_to_decoding_from_the_start(clip):
    """A recorded time no frame has (e.g. a repaired timestamp): decode forward instead."""
    with VideoReader(clip) as reader:
        index, time_s, frames, chunks = read_all(reader)
    pos = chunks[2].end_position
    wrong = ReadPosition(pos.frame, pos.time_s + 0.0123, 0)
    with VideoReader(clip) as reader:
        index2, time2, frames2, _ = read_all(reader, resume_after=wrong)
        assert reader.resumed_by_seek is False
        assert reader.frames_decoded == len(index)
    np.testing.assert_array_equal(index2, index[3 * 32 :])
    np.testing.assert_array_equal(time2, time_s[3 * 32 :])
    np.testing.assert_array_equal(frames2, frames[3 * 32 :])


def test_sample_frames_within_a_range(clip):
    with VideoReader(clip) as reader:
        frames, indices = reader.sample_frames(10, first_frame=60, last_frame=180)
    assert len(frames) == 10
    assert indices.min() >= 60 and indices.max() <= 180
