"""The reader: chunks, timestamps, resuming a read after a position, stretches read after
a checked seek (FrameSpan), frame times from the packets, keyframe background samples."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from cpp_tracker.video.reader import (
    CHUNK_BYTES,
    FrameSpan,
    ReadPosition,
    VideoReader,
    chunk_frames_for,
    frame_times,
)


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


# -- stretches, frame times, keyframe samples --------------------------------------------
@pytest.fixture(scope="module")
def spans_clip(video_factory):
    """20 s at 30 fps, a keyframe every 2 s (10 keyframes), H.264 with B-frames."""
    video, truth, _ = video_factory("video_clip", duration_s=20.0, seed=41)
    with VideoReader(video) as reader:
        chunks = list(reader.chunks(prefetch=False))
    frames = np.concatenate([c.frames for c in chunks])
    index = np.concatenate([c.index for c in chunks])
    times = np.concatenate([c.time_s for c in chunks])
    return video, truth, frames, index, times


def _read(video, **kwargs):
    reader = VideoReader(video)
    chunks = list(reader.chunks(**kwargs))
    if not chunks:
        return reader, np.zeros((0,)), np.zeros(0, int), np.zeros(0)
    return (
        reader,
        np.concatenate([c.frames for c in chunks]),
        np.concatenate([c.index for c in chunks]),
        np.concatenate([c.time_s for c in chunks]),
    )


def test_frames_are_the_luma_plane_with_container_times(spans_clip):
    video, truth, frames, index, times = spans_clip
    assert len(frames) == len(truth.track) == 600
    assert np.array_equal(index, np.arange(600))
    assert np.allclose(times, truth.track["time_s"], atol=1e-9)
    with av.open(str(video)) as container:
        first = next(container.decode(video=0))
    plane = first.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:240, :320]
    assert np.array_equal(frames[0], luma)


def test_chunks_hold_a_bounded_number_of_bytes():
    assert chunk_frames_for(320, 240) == min(64, CHUNK_BYTES // (320 * 240))
    assert chunk_frames_for(1280, 720) == CHUNK_BYTES // (1280 * 720)
    assert chunk_frames_for(8000, 8000) == 1


def test_frame_times_from_packets_equal_the_decoded_times(spans_clip):
    video, _, _, _, times = spans_clip
    assert np.array_equal(frame_times(video), times)


@pytest.mark.parametrize(
    "cuts",
    [
        [10.0],  # on a keyframe
        [0.5, 7.2, 13.37],  # inside groups of pictures, one before the first keyframe
        [19.9],  # a last stretch of a few frames
    ],
)
def test_stretches_read_separately_join_exactly(spans_clip, cuts):
    video, _, frames, index, times = spans_clip
    bounds = [-math.inf, *cuts, math.inf]
    got_f, got_i, got_t = [], [], []
    first = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        reader, f, i, t = _read(video, span=FrameSpan(start_s=a, end_s=b, first_index=first))
        report = reader.span_report
        assert report.frames == len(f)
        assert report.non_increasing == 0
        assert report.reached_end == (b != math.inf)
        if a > 2.5:  # far enough in for a seek, which must land before the stretch
            assert report.seeks >= 1 and report.seek_s is not None and report.seek_s < a
        got_f.append(f)
        got_i.append(i)
        got_t.append(t)
        first += len(f)
    assert np.array_equal(np.concatenate(got_f), frames)
    assert np.array_equal(np.concatenate(got_i), index)
    assert np.array_equal(np.concatenate(got_t), times)


def test_a_seek_that_overshoots_is_retried_earlier(spans_clip):
    video, _, frames, _, times = spans_clip
    start = float(times[300] + times[301]) / 2
    # lead_s 0: the first seek aims at the stretch itself; landing on or after its start
    # cannot prove that no frame was skipped, so the reader seeks farther back
    reader, f, i, _ = _read(video, span=FrameSpan(start_s=start, first_index=301, lead_s=0.0))
    assert reader.span_report.seeks >= 2
    assert np.array_equal(f, frames[301:])
    assert i[0] == 301


def test_stride_counts_from_the_global_index(spans_clip):
    video, _, frames, _, times = spans_clip
    start = float(times[299] + times[300]) / 2
    _, f, i, _ = _read(video, stride=7, span=FrameSpan(start_s=start, first_index=300))
    expected = np.arange(301, 600, 7)  # 301 is the first multiple of 7 from 300
    assert np.array_equal(i, expected)
    assert np.array_equal(f, frames[expected])


def test_background_samples_are_keyframes_when_there_are_enough(spans_clip):
    video, _, frames, _, _ = spans_clip
    reader = VideoReader(video)
    samples, indices = reader.sample_frames(8)
    assert reader.sampling == "keyframes"
    assert len(samples) == 8
    assert np.all(indices % 60 == 0)  # keyframes every 2 s at 30 fps
    for sample, k in zip(samples, indices, strict=True):
        assert np.array_equal(sample, frames[k])
    # more samples than keyframes: frames at their exact positions instead
    reader = VideoReader(video)
    samples, indices = reader.sample_frames(40)
    assert reader.sampling == "seek" and len(samples) == 40
    assert np.array_equal(samples[3], frames[indices[3]])


def test_keyframes_are_decoded_in_a_lean_separate_process(spans_clip, tmp_path):
    """PyAV's FFmpeg libraries stay out of the tracking process: the keyframe sampler runs
    as a script that imports neither the package nor OpenCV, pandas or matplotlib."""
    import subprocess
    import sys

    import cpp_tracker.video.reader as video_module

    video = spans_clip[0]
    script = Path(video_module.__file__).with_name("keyframes.py")
    out = tmp_path / "k.npz"
    probe = (
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        "code = 0\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in ('cv2', 'pandas', 'matplotlib', 'cpp_tracker') "
        "if m in sys.modules)\n"
        "print(code, heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(script), str(video), "8", "240", "320", str(out)],
        capture_output=True, text=True, check=True,
    )
    assert done.stdout.strip() == "0 []"
    with np.load(out) as data:
        assert data["frames"].shape == (8, 240, 320)
    # fewer keyframes than asked: exit 1, nothing written
    out.unlink()
    code = subprocess.run([sys.executable, str(script), str(video), "40", "240", "320",
                           str(out)], check=False).returncode
    assert code == 1 and not out.exists()


@pytest.mark.timeout(60)  # before the fix, release() waited for the grab forever
def test_closing_the_reader_ends_its_decoding_thread_first(clip):
    """A caller interrupted mid-read (Ctrl-C) closes the reader but not always the chunks:
    the decoding thread must end before the capture it grabs from is released (releasing
    it under a running grab crashed the process)."""
    import threading

    def decoding() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "cpp-tracker-decode"]

    reader = VideoReader(clip)
    chunks = reader.chunks(8, prefetch=True)
    first = next(chunks)  # the thread now decodes ahead
    assert len(first) == 8 and decoding(), "the read did not prefetch in a thread"
    reader.close()
    assert not decoding(), "the decoding thread outlived the reader"
    assert reader._cap is None
    del chunks  # a generator left behind by the interrupted caller: closing it is harmless
