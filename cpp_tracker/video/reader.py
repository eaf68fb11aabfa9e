"""Open a video: grayscale frames in decode order with their presentation timestamps.

OpenCV's ``VideoCapture`` (FFmpeg backend) decodes. Frames are returned as 8-bit grayscale;
where the decoder's pixel format is planar YUV the luma plane is taken directly (no colour
conversion, which costs about as much as decoding at 720p), otherwise BGR is converted.
The container's frame count and fps are advisory: the time base comes from each frame's
presentation timestamp, and falls back to ``index / fps`` only where the container gives
none (recorded in :attr:`VideoReader.timestamp_source`).
"""

from __future__ import annotations

import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import VideoError
from ..processes import start_helper_thread
from .pyav_capture import DecodeOptions

__all__ = [
    "VideoInfo",
    "FrameChunk",
    "FrameSpan",
    "SpanReport",
    "ReadPosition",
    "VideoReader",
    "DecodeOptions",
    "probe_video",
    "frame_times",
    "chunk_frames_for",
    "available_cores",
    "cgroup_cpu_limit",
    "tracking_decode_threads",
    "VIDEO_SUFFIXES",
    "mp4_without_index",
]

#: Frames per chunk are chosen so that one chunk holds about this many bytes of pixels:
#: with the prefetch queue, a few chunks are alive at once, whatever the frame size.
CHUNK_BYTES = 4_000_000

#: Chunks decoded ahead of the one being tracked.
PREFETCH_CHUNKS = 3

#: File endings treated as videos when a folder is searched.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".h264", ".mts")


def _quiet_opencv() -> None:
    """Keep OpenCV's per-frame warnings (e.g. about raw luma output) and FFmpeg's decoder
    messages (hundreds per damaged stretch) off the terminal; damage is reported in
    run.json instead. ``OPENCV_FFMPEG_LOGLEVEL`` set by the user wins."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - older builds
        pass


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (advisory), and the file's identity."""

    path: str
    width: int
    height: int
    nominal_fps: float | None
    nominal_frame_count: int | None
    codec: str
    size_bytes: int
    mtime: float

    @property
    def nominal_duration_s(self) -> float | None:
        if self.nominal_fps and self.nominal_frame_count:
            return self.nominal_frame_count / self.nominal_fps
        return None


@dataclass(frozen=True)
class ReadPosition:
    """Where an earlier read stopped: the last frame it handled and that frame's time.

    ``timestamps_repaired`` is the reader's count of repaired timestamps up to that frame,
    so that a read resumed here reports the same count as one read from the start.
    """

    frame: int
    time_s: float
    timestamps_repaired: int = 0


@dataclass(frozen=True)
class FrameChunk:
    """A run of consecutive decoded frames."""

    index: np.ndarray  # int64, 0-based decode index
    time_s: np.ndarray  # float64, presentation time of each frame
    frames: np.ndarray  # uint8, (n, height, width)
    timestamps_repaired: int = 0  # repaired timestamps up to the chunk's last frame

    @property
    def end_position(self) -> ReadPosition:
        """The position after this chunk, to resume a read from (see ``resume_after``)."""
        return ReadPosition(int(self.index[-1]), float(self.time_s[-1]), self.timestamps_repaired)

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class FrameSpan:
    """A stretch of a video to read on its own: the frames whose time lies in
    ``[start_s, end_s)``.

    The reader seeks to a little before ``start_s``, checks that the first frame it gets
    lies before ``start_s`` (else it seeks earlier, down to the start of the file), and
    decodes on from there, so no frame of the stretch is skipped. ``first_index`` is the
    decode index the first frame of the stretch has in the whole video (the caller knows it
    from :func:`frame_times`, or adjusts the indices afterwards).
    """

    start_s: float
    end_s: float = math.inf
    first_index: int = 0
    lead_s: float = 2.0  # how far before start_s the first seek aims


@dataclass
class SpanReport:
    """What reading a :class:`FrameSpan` found (for checking that spans join exactly)."""

    seek_s: float | None = None  # where the successful seek aimed (None: from the start)
    seeks: int = 0  # seeks tried
    lead_in_frames: int = 0  # frames decoded before start_s
    first_time_s: float | None = None  # time of the first frame of the span
    last_time_s: float | None = None
    frames: int = 0  # frames of the span (all, whatever the stride)
    reached_end: bool = False  # a frame at or after end_s was seen (not the end of file)
    non_increasing: int = 0  # timestamps missing or not after the previous one


def available_cores() -> int:
    """Cores this process may use: its CPU affinity (e.g. under SLURM), and no more than a
    cgroup's CPU quota allows (``cpu.max``: a container limited to 4 CPUs on a 64-core host
    gets 4)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cores = max(1, os.cpu_count() or 1)
    quota = cgroup_cpu_limit()
    return cores if quota is None else max(1, min(cores, int(quota)))


def cgroup_cpu_limit(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """CPUs the cgroup v2 quota allows (``cpu.max``: "QUOTA PERIOD"), None without a limit
    (or where the file cannot be read: cgroup v1, not Linux)."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(float(quota) / float(period), 0.0)
    except (ValueError, ZeroDivisionError):
        return None


def tracking_decode_threads(processes: int = 1) -> int:
    """Decoder threads for a tracking process when ``processes`` track at once: the cores
    left after one per process for detection. Measured on 2 cores: one decoder thread and
    detection in the other thread track a 640x480 video in 1.3x the time of a bare
    two-thread ``grab()`` loop, two decoder threads in 1.9x (three busy threads on two
    cores; FFmpeg's frame threads cost a third more CPU than one thread)."""
    return max(1, available_cores() // max(1, processes) - 1)


def chunk_frames_for(width: int, height: int, limit: int = 64) -> int:
    """Frames per chunk for this frame size (about :data:`CHUNK_BYTES` per chunk)."""
    return max(1, min(limit, CHUNK_BYTES // max(1, width * height)))


def _open_capture(path: str, raw_luma: bool, threads: int | None = None) -> cv2.VideoCapture:
    _quiet_opencv()
    params = [] if not threads else [cv2.CAP_PROP_N_THREADS, int(threads)]
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        if mp4_without_index(path):
            raise VideoError(
                f"{path}: the MP4 file has no index ('moov' box): the recording was cut off "
                "before the recorder closed the file (power failure, full disk?) and cannot "
                "be read as it is; repair it with a tool such as untrunc and a good file "
                "from the same camera, or record to MKV or fragmented MP4"
            )
        raise VideoError(
            f"{path}: cannot be opened as a video (unsupported format, or not a video); "
            "check the file plays, or convert it to H.264 MP4"
        )
    if raw_luma:
        cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
    return cap


def mp4_without_index(path: str) -> bool:
    """True for an MP4/MOV file whose top-level boxes start well but contain no 'moov'."""
    import struct

    if not path.lower().endswith((".mp4", ".mov", ".m4v")):
        return False
    try:
        size = os.path.getsize(path)
        boxes = []
        with open(path, "rb") as f:
            pos = 0
            while pos + 8 <= size and len(boxes) < 64:
                f.seek(pos)
                length, kind = struct.unpack(">I4s", f.read(8))
                if length == 1:
                    length = struct.unpack(">Q", f.read(8))[0]
                elif length == 0:
                    length = size - pos
                boxes.append(kind)
                if length < 8:
                    break
                pos += length
    except (OSError, struct.error):
        return False
    return bool(boxes) and boxes[0] == b"ftyp" and b"moov" not in boxes


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and read its size and container metadata; raise :class:`VideoError`."""
    path = str(path)
    if not os.path.exists(path):
        raise VideoError(f"{path}: file not found; check the path")
    if os.path.isdir(path):
        raise VideoError(f"{path}: is a folder, not a video file")
    st = os.stat(path)
    if st.st_size == 0:
        raise VideoError(f"{path}: the file is empty (0 bytes); copy it again from the recorder")
    cap = _open_capture(path, raw_luma=False)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")
        ok = cap.grab()
    finally:
        cap.release()
    if width <= 0 or height <= 0 or not ok:
        raise VideoError(
            f"{path}: no frame could be decoded (damaged file or unsupported codec); "
            "check that it plays in a video player"
        )
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        nominal_fps=fps if 0 < fps < 1000 else None,
        nominal_frame_count=count if count > 0 else None,
        codec=codec or "unknown",
        size_bytes=st.st_size,
        mtime=st.st_mtime,
    )


class VideoReader:
    """Grayscale frames of one video in decode order, with timestamps.

    Use as a context manager::

        with VideoReader("night1.mp4") as reader:
            for chunk in reader.chunks(64):
                ...

    After iteration, ``frames_decoded`` (the index of the last frame read, plus one),
    ``timestamp_source`` and ``timestamps_repaired`` describe what was read;
    ``frames_grabbed`` counts the frames this reader actually decoded (fewer than
    ``frames_decoded`` when a resumed read could seek, or a damaged stretch was skipped);
    ``last_time_s`` is the timestamp of the last frame read; ``unreadable`` lists the
    stretches that could not be decoded.

    When the decoder stops before the end the container announces (a damaged stretch:
    OpenCV's ``grab()`` then fails for good), the reader seeks past the damage and goes
    on (:meth:`_resume`); each skipped stretch is listed in ``unreadable`` and shows as a
    gap in the timestamps. It stops where nothing further can be read (a truncated file).

    ``decode_threads`` sets the decoder's threads for :meth:`chunks` (None: FFmpeg's
    choice, one per core). ``decode`` chooses the decoder of :meth:`chunks` (OpenCV, or PyAV
    with its options: :mod:`cpp_tracker.video.pyav_capture`); background samples are read
    with OpenCV (and PyAV's keyframes) whatever it says. ``frames_not_decoded`` counts the
    frames a PyAV decoder skipped (``skip_nonref``).
    """

    #: How many times ``grab()`` is retried on the same capture before seeking on.
    GRAB_RETRIES = 3

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo | None = None,
        decode_threads: int | None = None,
        decode: DecodeOptions | None = None,
    ):
        self.path = str(path)
        self.info = info if info is not None else probe_video(self.path)
        self.decode_threads = decode_threads
        self.decode = decode if decode is not None else DecodeOptions()
        self.frames_not_decoded = 0
        self.span_report: SpanReport | None = None
        #: how the background samples were taken: 'keyframes', 'seek' or 'sequential'
        self.sampling: str | None = None
        self._first_luma: np.ndarray | None = None
        self.frames_decoded = 0
        self.frames_grabbed = 0
        self.last_time_s = float("nan")
        self.resumed_by_seek: bool | None = None
        self.timestamps_repaired = 0
        self.unreadable: list[dict] = []
        self._luma_direct: bool | None = None
        self._cap: cv2.VideoCapture | None = None
        self._prefetch: Iterator[FrameChunk] | None = None

    # -- context management -------------------------------------------------------------
    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._prefetch is not None:
            # end the decoding thread before the capture it grabs from is released (an
            # interrupted caller closes the reader, not always the chunks: a segfault)
            self._prefetch.close()
            self._prefetch = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # -- properties ---------------------------------------------------------------------
    @property
    def timestamp_source(self) -> str:
        """``container`` (presentation timestamps), ``frame_index`` (index / fps) or
        ``mixed`` (container, with some missing or non-increasing ones repaired)."""
        if self.timestamps_repaired == 0:
            return "container"
        if self.timestamps_repaired >= self.frames_decoded - 1:
            return "frame_index"
        return "mixed"

    @property
    def nominal_interval_s(self) -> float:
        return 1.0 / self.info.nominal_fps if self.info.nominal_fps else 1.0 / 30.0

    # -- frame conversion -----------------------------------------------------------------
    def _decide_luma(self) -> bool:
        """Whether the decoder's raw output is the luma plane of this video."""
        try:
            raw = _open_capture(self.path, raw_luma=True)
            bgr = _open_capture(self.path, raw_luma=False)
        except VideoError:
            return False
        try:
            ok1, a = raw.read()
            ok2, b = bgr.read()
        finally:
            raw.release()
            bgr.release()
        if not (ok1 and ok2) or a is None or b is None:
            return False
        if a.ndim != 2 or a.shape != (self.info.height, self.info.width) or a.dtype != np.uint8:
            return False
        self._first_luma = a
        gray = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
        luma = a.astype(np.float32).ravel()
        if gray.std() < 1 or luma.std() < 1:
            return bool(np.abs(gray.mean() - luma.mean()) < 20)
        return bool(np.corrcoef(gray, luma)[0, 1] > 0.98)

    @property
    def luma_direct(self) -> bool:
        """True when frames come straight from the decoder's luma plane."""
        if self._luma_direct is None:
            self._luma_direct = self._decide_luma()
        return self._luma_direct

    def _gray(self, frame: np.ndarray) -> np.ndarray:
        if self.luma_direct:
            return frame
        if frame.ndim == 3:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return frame

    # -- reading --------------------------------------------------------------------------
    def _open(self, threads: int | None = None):
        """A capture of the video for reading frames in order: OpenCV's, or PyAV's with the
        decoder options (same interface, :class:`~.pyav_capture.PyAVCapture`)."""
        if self.decode.reader != "pyav":
            return _open_capture(self.path, self.luma_direct, threads)
        from .pyav_capture import PyAVCapture

        cap = PyAVCapture(self.path, self.decode, threads)
        if not cap.isOpened():
            raise VideoError(f"{self.path}: cannot be opened with PyAV (video.reader: pyav); "
                             "use video.reader: opencv")
        return cap

    def chunks(
        self,
        chunk_size: int | None = None,
        *,
        start_frame: int = 0,
        stride: int = 1,
        prefetch: bool = True,
        resume_after: ReadPosition | None = None,
        span: FrameSpan | None = None,
    ) -> Iterator[FrameChunk]:
        """Yield :class:`FrameChunk` s of up to ``chunk_size`` frames until the video ends.

        ``chunk_size`` defaults to :func:`chunk_frames_for` the frame size. ``stride`` keeps
        every n-th frame (others are still decoded, except with PyAV's ``skip_nonref``:
        a frame due that the decoder skipped is replaced by the next decoded one). ``start_frame``
        skips that many frames first (decoding them). With ``prefetch``, decoding runs in a
        background thread, overlapping with the caller's work (OpenCV releases the GIL while
        it decodes). Each chunk's frames are decoded straight into its own buffer.

        ``resume_after`` continues an earlier read after its last frame: the first frame
        yielded is ``resume_after.frame + stride``, and frames, indices and timestamps are
        exactly those a read from the start would give. The reader seeks near the frame and
        checks that the frame it lands on has the recorded timestamp (seeking in H.264 can
        land a few frames off); where it cannot confirm the position it decodes from the
        start instead (slower, same result).

        ``span`` reads only one stretch of the video, by time, after a checked seek (see
        :class:`FrameSpan`; :attr:`span_report` describes it afterwards); the stride then
        counts from decode index 0 as in a whole read.
        """
        if resume_after is not None and span is not None:
            raise ValueError("resume_after and span cannot be combined")
        if chunk_size is None:
            chunk_size = chunk_frames_for(self.info.width, self.info.height)
        self._cap = self._open(self.decode_threads)
        gen = self._read_chunks(
            chunk_size, start_frame, max(1, int(stride)), resume_after, span
        )
        if not prefetch:
            yield from gen
            return
        self._prefetch = _prefetched(gen, depth=PREFETCH_CHUNKS)
        yield from self._prefetch

    def _seek_before(self, span: FrameSpan, report: SpanReport) -> bool:
        """Position the capture before ``span.start_s``; True when a frame is grabbed.

        The frame grabbed last is the first one to process. Seeks aim ``lead_s`` before the
        span, then four times as far, ..., and finally the file is read from its start: a
        seek counts only when the frame it lands on lies before the span, so that no frame
        of the span can have been skipped.
        """
        lead = span.lead_s
        while True:
            target = span.start_s - lead
            if target <= 0:
                self._cap.release()
                self._cap = self._open(self.decode_threads)
                report.seek_s = None
                return self._cap.grab()
            report.seeks += 1
            self._cap.set(cv2.CAP_PROP_POS_MSEC, target * 1000.0)
            ok = self._cap.grab()
            t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if ok and math.isfinite(t) and 0 < t < span.start_s:
                report.seek_s = target
                return True
            lead = 4 * max(lead, 0.5)

    def _seek_after(self, position: ReadPosition) -> bool:
        """Position the capture just after ``position.frame``; False if not confirmed.

        Seeks a little before the frame and grabs forward until a frame carries the recorded
        timestamp. Whatever the outcome, ``self._cap`` is left ready: after the confirmed
        frame, or reopened at the start of the video.
        """
        cap = self._cap
        assert cap is not None
        fps = self.info.nominal_fps or 30.0
        tolerance_s = 1e-6
        for back in (0, int(2 * fps), int(20 * fps)):
            target = position.frame - back
            if target <= 0:
                break
            if not cap.set(cv2.CAP_PROP_POS_FRAMES, float(target)):
                break
            for _ in range(back + int(2 * fps) + 1):
                if not cap.grab():
                    break
                self.frames_grabbed += 1
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if abs(t - position.time_s) <= tolerance_s:
                    return True
                if t > position.time_s + tolerance_s:
                    break  # landed after the frame: seek further back
        cap.release()
        self._cap = self._open()
        return False

    def _read_chunks(
        self,
        chunk_size: int,
        start_frame: int,
        stride: int,
        resume_after: ReadPosition | None = None,
        span: FrameSpan | None = None,
    ) -> Iterator[FrameChunk]:
        """The chunks of :meth:`chunks`: the kept frames of :meth:`_timed_frames`, each
        retrieved straight into its chunk's buffer."""
        start = self._start_read(start_frame, stride, resume_after, span)
        if start is None:
            return  # the seek before the span found no frame
        h, w = self.info.height, self.info.width
        keep_from, phase = start.keep_from, start.phase
        luma_direct = self.luma_direct or self.decode.reader == "pyav"
        owed = False  # the frame due by the stride was skipped by the decoder: take the next
        repaired_at_last = self.timestamps_repaired
        next_buffers = _chunk_buffers(chunk_size, h, w)
        buf, idx, ts = next_buffers()
        n = 0
        for cap, i, t in self._timed_frames(start):
            if i < keep_from or ((i - phase) % stride != 0 and not owed):
                continue
            out = buf[n]
            # the luma plane is written straight into the chunk (OpenCV returns `out`
            # itself); anything else (a colour frame, a changed size) comes back new
            ok, frame = cap.retrieve(out) if luma_direct else cap.retrieve()
            if not ok or frame is None:
                owed = stride > 1 and getattr(cap, "dropped", False)
                continue
            owed = False
            if frame is not out:
                out[...] = self._as_gray_frame(frame, i)
            idx[n] = i
            ts[n] = t
            n += 1
            repaired_at_last = self.timestamps_repaired
            if n == chunk_size:
                yield FrameChunk(idx, ts, buf, repaired_at_last)
                buf, idx, ts = next_buffers()
                n = 0
        if n:
            yield FrameChunk(idx[:n], ts[:n], buf[:n], repaired_at_last)

    def _start_read(
        self,
        start_frame: int,
        stride: int,
        resume_after: ReadPosition | None,
        span: FrameSpan | None,
    ) -> _ReadStart | None:
        """Position the capture where the read begins (after ``resume_after``, or before
        ``span``) and say where that is; None when the seek before the span finds no
        frame. A resumed read takes over the position's counts."""
        frame, last_t = 0, -math.inf
        phase = start_frame  # frames kept: start_frame, start_frame + stride, ...
        if resume_after is not None:
            phase = resume_after.frame
            start_frame = resume_after.frame + stride
            self.resumed_by_seek = resume_after.frame > 0 and self._seek_after(resume_after)
            if self.resumed_by_seek:
                frame = resume_after.frame + 1
                last_t = resume_after.time_s
                self.last_time_s = last_t
                self.timestamps_repaired = resume_after.timestamps_repaired
                self.frames_decoded = frame
        report = SpanReport()
        if span is None:
            return _ReadStart(frame, last_t, start_frame, phase, report)
        self.span_report = report
        grabbed = False
        if span.start_s > 0:
            grabbed = self._seek_before(span, report)
            if not grabbed:
                return None
        return _ReadStart(span.first_index, last_t, start_frame, phase, report,
                          span.start_s, span.end_s, grabbed, in_span=True)

    def _timed_frames(self, start: _ReadStart) -> Iterator[tuple[cv2.VideoCapture, int, float]]:
        """The frames of the read in decode order, as (the capture, which has just grabbed
        the frame, its decode index, its time), a span's lead-in left out.

        Missing or non-increasing timestamps are repaired (counted in
        ``timestamps_repaired``); where the decoder fails for good, the read goes on after
        the damage (:meth:`_skip_unreadable`). The reader's counts and ``start.report``
        follow each frame.
        """
        report, interval = start.report, self.nominal_interval_s
        i, last_t, pending = start.frame, start.last_time_s, start.grabbed
        start_s, end_s, in_span = start.start_s, start.end_s, start.in_span
        cap = self._cap
        assert cap is not None
        grabbed_here = 0
        resumed = False
        while True:
            if pending:
                pending = False
            elif not resumed and not self._grab(cap):
                found = self._after_failed_grab(cap, i, last_t)
                if found is None:
                    return
                cap, i, skipped = found  # frame i is grabbed
                resumed = skipped
                pending = not skipped
                continue
            self.frames_grabbed += 1
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            first = grabbed_here == 0 if in_span else i == 0
            grabbed_here += 1
            if not math.isfinite(t) or t <= last_t or (t == 0 and not first):
                report.non_increasing += 1
                t = (last_t + interval) if math.isfinite(last_t) else i * interval
                if resumed:  # no usable timestamp after a skipped stretch: keep the gap
                    t = max(t, i * interval)
                if i > 0:
                    self.timestamps_repaired += 1
            if t < start_s:  # decoded after the seek, before the span: not read
                report.lead_in_frames += 1
                last_t = t
                continue
            if t >= end_s:
                report.reached_end = True
                return
            if report.first_time_s is None:
                report.first_time_s = t
            report.last_time_s = t
            report.frames += 1
            if resumed:
                self.unreadable[-1]["resumed_s"] = round(float(t), 6)
            resumed = False
            last_t = t
            self.last_time_s = t
            self.frames_decoded = i + 1
            yield cap, i, t
            i += 1

    def _after_failed_grab(
        self, cap: cv2.VideoCapture, i: int, last_t: float
    ) -> tuple[cv2.VideoCapture, int, bool] | None:
        """After ``grab()`` failed for good at frame ``i``: the capture that has grabbed the
        next frame to use, its index, and whether a stretch was skipped to get there (a
        stall or a brief EIO recovers at frame ``i`` itself); None at the end."""
        again = self._retry_after_waiting(i)
        if again is not None:
            cap.release()
            self._cap = again
            return again, i, False
        found = self._skip_unreadable(cap, i, last_t)
        return None if found is None else (*found, True)

    def _skip_unreadable(
        self, cap: cv2.VideoCapture, i: int, last_t: float
    ) -> tuple[cv2.VideoCapture, int] | None:
        """After ``grab()`` failed for good at frame ``i``: the capture that replaces ``cap``
        past the damage, having grabbed the first readable frame, and that frame's index
        (the stretch is listed in :attr:`unreadable`); None at the end of what can be read."""
        found = self._resume(i)
        if found is None:
            return None
        cap.release()
        cap, i_next = found
        self._cap = cap
        self.unreadable.append(
            {"first_frame": i, "resumed_frame": i_next,
             "after_s": round(float(last_t), 6) if math.isfinite(last_t) else None}
        )
        return cap, i_next

    def _as_gray_frame(self, frame: np.ndarray, i: int) -> np.ndarray:
        """Frame ``i`` as the decoder returned it in a new array (not the luma plane), as
        grayscale; VideoError when its size is not the video's."""
        h, w = self.info.height, self.info.width
        frame = self._gray(frame)
        if frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if frame.shape != (h, w):
            raise VideoError(
                f"{self.path}: frame {i} has size {frame.shape[1]}x{frame.shape[0]}, the "
                f"video said {w}x{h}; re-encode the file with a fixed frame size"
            )
        return frame

    def _grab(self, cap: cv2.VideoCapture) -> bool:
        """``cap.grab()``, retried :attr:`GRAB_RETRIES` times when it fails."""
        for _ in range(1 + self.GRAB_RETRIES):
            if cap.grab():
                # PyAV's skip_nonref: a frame known from its packet, never decoded
                self.frames_not_decoded += int(getattr(cap, "dropped", False))
                return True
        return False

    #: Seconds waited before each new try at a frame that failed before the end the
    #: container announces: a network file system briefly unavailable (EIO) or stalled
    #: recovers; a frame still unreadable after the last is a damaged stretch.
    STALL_WAITS_S: tuple[float, ...] = (0.5, 2.0, 5.0)

    def _retry_after_waiting(self, i: int) -> cv2.VideoCapture | None:
        """After ``grab()`` failed at frame ``i``, before the container's last frame: a new
        capture that has grabbed frame ``i`` after waiting (:attr:`STALL_WAITS_S`), or None
        (at the end, or still unreadable)."""
        count = self.info.nominal_frame_count
        if not count or i >= count - 1:
            return None
        for wait_s in self.STALL_WAITS_S:
            time.sleep(wait_s)
            cap = self._seek_grab(i)
            if cap is not None:
                return cap
        return None

    #: Consecutive frames that must decode after a seek for the position to count as
    #: readable (past the end of a truncated file, a seek "succeeds" on the last frames).
    RESUME_CHECK_FRAMES = 3

    def _seek_grab(self, target: int, check: int = 1) -> cv2.VideoCapture | None:
        """A new capture that has just grabbed frame ``target`` (and ``check - 1`` frames
        after it, each at the position expected), or None."""
        try:
            cap = self._open()
        except VideoError:
            return None
        if target > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(target))
        for k in range(check):
            if not cap.grab() or int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) != target + k + 1:
                cap.release()
                return None
        return cap

    def _readable(self, target: int) -> bool:
        cap = self._seek_grab(target, check=self.RESUME_CHECK_FRAMES)
        if cap is None:
            return False
        cap.release()
        return True

    def _resume(self, failed_at: int) -> tuple[cv2.VideoCapture, int] | None:
        """After ``grab()`` failed for good at frame ``failed_at``: a capture that has just
        grabbed the first readable frame after it, and that frame's index; None at the
        real end of the readable video.

        Frames further on are tried by seeking (1, 2, 4, ... frames ahead, up to the
        container's frame count, or an hour of video when it gives none); the first
        readable one is then narrowed down by bisection.
        """
        count = self.info.nominal_frame_count
        fps = self.info.nominal_fps or 30.0
        limit = count if count else failed_at + int(3600 * fps)
        bad = failed_at
        step = 1
        good = None
        while failed_at + step < limit:
            target = failed_at + step
            if self._readable(target):
                good = target
                break
            bad = target
            step *= 2
        if good is None:
            return None
        while good - bad > 1:
            mid = (good + bad) // 2
            if self._readable(mid):
                good = mid
            else:
                bad = mid
        found = self._seek_grab(good)
        return None if found is None else (found, good)

    def sample_frames(
        self, n: int, first_frame: int = 0, last_frame: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """About ``n`` grayscale frames spread evenly over the whole video.

        Returns (frames (m, h, w) uint8, decode indices). Over a whole video with at least
        ``n`` keyframes, the keyframes nearest to ``n`` evenly spaced times are decoded, each
        on its own after a seek: cheap whatever the keyframe interval (their indices are
        estimated from time and frame rate). Otherwise: seeks where the container gives a
        frame count; frames that cannot be read at their position are skipped (a seek past
        the end of a truncated file lands on its last frames: checked by the position), and
        when the end of the file was not readable the samples are spread again over the
        part that is. ``first_frame`` / ``last_frame`` (inclusive) restrict the samples to
        a part of the video.
        """
        count = self.info.nominal_frame_count
        if first_frame <= 0 and (last_frame is None or (count and last_frame >= count - 1)):
            sampled = self._sample_keyframes(n)
            if sampled is not None:
                self.sampling = "keyframes"
                return sampled
        cap = _open_capture(self.path, raw_luma=self.luma_direct)
        try:
            lo = max(0, int(first_frame))
            hi = count - 1 if count else None
            if last_frame is not None:
                hi = int(last_frame) if hi is None else min(hi, int(last_frame))
            span = (hi - lo + 1) if hi is not None else 0
            if count and span > 4 * n:
                self.sampling = "seek"
                frames, indices = self._sample_by_seeking(cap, n, lo, hi)
            else:
                self.sampling = "sequential"
                frames, indices = self._sample_in_order(cap, n, lo, span, last_frame)
        finally:
            cap.release()
        if not frames:
            raise VideoError(f"{self.path}: no frame could be decoded; check that it plays")
        return np.stack(frames), np.asarray(indices)

    def _sample_by_seeking(
        self, cap: cv2.VideoCapture, n: int, lo: int, hi: int
    ) -> tuple[list[np.ndarray], list[int]]:
        """``n`` frames evenly spaced over ``lo..hi``, each read after a seek; when the end
        could not be read (truncated), the rest spread over the part before it."""
        frames: list[np.ndarray] = []
        indices: list[int] = []
        targets = np.linspace(lo, hi, n + 2)[1:-1].round().astype(int)
        self._read_at(cap, targets, frames, indices)
        if indices and len(indices) < n and max(indices) < targets[-1]:
            more = np.linspace(lo, max(indices), n - len(indices) + 2)[1:-1]
            self._read_at(cap, sorted(set(more.round().astype(int)) - set(indices)), frames,
                          indices)
            order = np.argsort(indices)
            frames = [frames[k] for k in order]
            indices = [indices[k] for k in order]
        return frames, indices

    def _read_at(self, cap: cv2.VideoCapture, targets, frames: list[np.ndarray],
                 indices: list[int]) -> None:
        """Append the frames at ``targets`` that a seek lands on exactly (a seek past the end
        of a truncated file lands on its last frames: checked by the position)."""
        for target in targets:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(target))
            ok, frame = cap.read()
            at = int(round(cap.get(cv2.CAP_PROP_POS_FRAMES)))
            if ok and frame is not None and at == int(target) + 1:
                frames.append(self._gray(frame))
                indices.append(int(target))

    def _sample_in_order(
        self, cap: cv2.VideoCapture, n: int, lo: int, span: int, last_frame: int | None
    ) -> tuple[list[np.ndarray], list[int]]:
        """About ``n`` frames from ``lo`` on, reading every frame (no frame count to seek
        by, or few frames): every ``span // n``-th is kept, then ``n`` of them evenly."""
        frames: list[np.ndarray] = []
        indices: list[int] = []
        i = 0
        step = max(1, max(span, 0) // max(n, 1))
        stop = None if last_frame is None else int(last_frame)
        while stop is None or i <= stop:
            ok = cap.grab()
            if not ok:
                break
            if i >= lo and (i - lo) % step == 0:
                ok, frame = cap.retrieve()
                if ok:
                    frames.append(self._gray(frame))
                    indices.append(i)
            i += 1
        if len(frames) > n:
            keep = np.linspace(0, len(frames) - 1, n).round().astype(int)
            frames = [frames[k] for k in keep]
            indices = [indices[k] for k in keep]
        return frames, indices

    def _sample_keyframes(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``n`` keyframes spread over the video, decoded with PyAV in a separate process
        (:mod:`cpp_tracker.video.keyframes`); None when the video has fewer keyframes in its
        index, PyAV's frames are not OpenCV's, or the process fails."""
        if not self.luma_direct or self._first_luma is None:
            return None
        h, w = self.info.height, self.info.width
        found, _ = _run_pyav_script(
            [self.path, str(int(n)), str(h), str(w)], "keyframes.npz", 600, _load_keyframes
        )
        if found is None:
            return None
        first, frames, times = found
        if not np.array_equal(first, self._first_luma):
            return None
        fps = self.info.nominal_fps or 1.0 / self.nominal_interval_s
        return frames, np.round(times * fps).astype(np.int64)


def frame_times(path: str | Path) -> np.ndarray:
    """Presentation time (s) of every frame, in presentation order, from the container's
    packets (no decoding), as :class:`VideoReader` reports them (time since the stream's
    start). Raises :class:`VideoError` when the packets carry no timestamps.

    Read with PyAV in a separate short-lived process (:mod:`cpp_tracker.video.keyframes`), so
    that PyAV's copy of the FFmpeg libraries (~20 MB) is not loaded into a process that
    then waits for the segment workers. :class:`FrameTimesJob` starts it ahead of time.
    """
    return FrameTimesJob(path).result()


class FrameTimesJob:
    """:func:`frame_times` read in the background: the process starts now,
    :meth:`result` waits for it (and is what :func:`frame_times` returns)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._job = _PyavJob(["--times", self.path], "times.npy")

    @property
    def pid(self) -> int | None:
        """The reading process while it runs (None once it has ended and been waited for)."""
        return self._job.running_pid()

    def result(self) -> np.ndarray:
        times, why = self._job.result(3600, np.load)
        if times is None:
            raise VideoError(f"{self.path}: {why}")
        return times

    def close(self) -> None:
        self._job.close()


def _load_keyframes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["first"], data["frames"], data["times"]


def _run_pyav_script(args: list[str], out_name: str, timeout_s: float, load):
    """Run :mod:`cpp_tracker.video.keyframes` by path in a fresh interpreter with ``args`` and an
    output file; (``load(output file)``, "") or (None, why it failed)."""
    return _PyavJob(args, out_name).result(timeout_s, load)


class _PyavJob:
    """:mod:`cpp_tracker.video.keyframes` run by path in a fresh interpreter with ``args`` and
    an output file in a temporary folder; started at once, read by :meth:`result`."""

    def __init__(self, args: list[str], out_name: str):
        self._tmp = tempfile.mkdtemp(prefix="cpp_tracker_pyav_")
        self._out = Path(self._tmp) / out_name
        self._proc: subprocess.Popen | None = None
        self._why = ""
        try:
            self._proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("keyframes.py")), *args,
                 str(self._out)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as e:
            self._why = f"its frames cannot be indexed ({e})"

    def running_pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:  # poll() waits for an end
            return None
        return self._proc.pid

    def result(self, timeout_s: float, load):
        """(``load(output file)``, "") or (None, why it failed); the folder is removed."""
        try:
            if self._proc is None:
                return None, self._why
            try:
                _, err = self._proc.communicate(timeout=timeout_s)
            except subprocess.SubprocessError as e:
                return None, f"its frames cannot be indexed ({e})"
            if self._proc.returncode != 0 or not self._out.exists():
                lines = (err or "").strip().splitlines()
                return None, lines[-1] if lines else f"exit status {self._proc.returncode}"
            return load(self._out), ""
        finally:
            self.close()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._tmp, ignore_errors=True)


@dataclass(frozen=True)
class _ReadStart:
    """Where a read begins once the capture is positioned (see ``VideoReader._start_read``)."""

    frame: int  # decode index of the next frame the capture grabs (or has grabbed)
    last_time_s: float  # time of the frame before it (-inf: none)
    keep_from: int  # the first frame kept
    phase: int  # frames kept: from keep_from on, those with (frame - phase) % stride == 0
    report: SpanReport
    start_s: float = -math.inf  # frames before this time are decoded, not read
    end_s: float = math.inf
    grabbed: bool = False  # the seek before a span has grabbed the first frame already
    in_span: bool = False  # a span: its first frame is the first one grabbed, not index 0


def _chunk_buffers(
    chunk_size: int, h: int, w: int
) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A source of (frames, index, time) buffers for one chunk each.

    Buffers are recycled once the consumer has let go of them (nothing but the pool refers
    to them any more): fresh 8 MB buffers for every chunk would be zero-filled by the
    system page by page, about a sixth of the tracking time.
    """
    pool: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def new_buffers():
        for trio in pool:
            # references: the pool's tuple and getrefcount's argument
            if all(sys.getrefcount(a) == 2 for a in trio):
                return trio
        trio = (
            np.empty((chunk_size, h, w), dtype=np.uint8),
            np.empty(chunk_size, dtype=np.int64),
            np.empty(chunk_size, dtype=np.float64),
        )
        if len(pool) < PREFETCH_CHUNKS + 3:
            pool.append(trio)
        return trio

    return new_buffers


_END = object()


def _prefetched(gen: Iterator[FrameChunk], depth: int) -> Iterator[FrameChunk]:
    """Run ``gen`` in a background thread, ``depth`` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            q.put(e)

    thread = start_helper_thread(work, "cpp-tracker-decode")
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
