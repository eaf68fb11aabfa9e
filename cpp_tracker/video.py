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
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import VideoError

__all__ = [
    "VideoInfo",
    "FrameChunk",
    "FrameSpan",
    "SpanReport",
    "VideoReader",
    "probe_video",
    "frame_times",
    "chunk_frames_for",
    "VIDEO_SUFFIXES",
]

#: Frames per chunk are chosen so that one chunk holds about this many bytes of pixels:
#: with the prefetch queue, a few chunks are alive at once, whatever the frame size.
CHUNK_BYTES = 8_000_000

#: Chunks decoded ahead of the one being tracked.
PREFETCH_CHUNKS = 3

#: File endings treated as videos when a folder is searched.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".h264", ".mts")


def _quiet_opencv() -> None:
    """Keep OpenCV's per-frame warnings (e.g. about raw luma output) off the terminal."""
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
class FrameChunk:
    """A run of consecutive decoded frames."""

    index: np.ndarray  # int64, 0-based decode index
    time_s: np.ndarray  # float64, presentation time of each frame
    frames: np.ndarray  # uint8, (n, height, width)

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


def chunk_frames_for(width: int, height: int, limit: int = 64) -> int:
    """Frames per chunk for this frame size (about :data:`CHUNK_BYTES` per chunk)."""
    return max(1, min(limit, CHUNK_BYTES // max(1, width * height)))


def _open_capture(path: str, raw_luma: bool, threads: int | None = None) -> cv2.VideoCapture:
    _quiet_opencv()
    params = [] if not threads else [cv2.CAP_PROP_N_THREADS, int(threads)]
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"{path}: cannot be opened as a video (unsupported format, or not a video); "
            "check the file plays, or convert it to H.264 MP4"
        )
    if raw_luma:
        cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
    return cap


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

    After iteration, ``frames_decoded``, ``timestamp_source`` and ``timestamps_repaired``
    describe what was read. ``decode_threads`` sets the decoder's threads for
    :meth:`chunks` (None: FFmpeg's choice, one per core).
    """

    def __init__(
        self, path: str | Path, info: VideoInfo | None = None, decode_threads: int | None = None
    ):
        self.path = str(path)
        self.decode_threads = decode_threads
        self.info = info if info is not None else probe_video(self.path)
        self.frames_decoded = 0
        self.timestamps_repaired = 0
        self._luma_direct: bool | None = None
        self._first_luma: np.ndarray | None = None
        self._cap: cv2.VideoCapture | None = None
        self.span_report: SpanReport | None = None
        #: how the background samples were taken: 'keyframes', 'seek' or 'sequential'
        self.sampling: str | None = None

    # -- context management -------------------------------------------------------------
    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
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
    def chunks(
        self,
        chunk_size: int | None = None,
        *,
        start_frame: int = 0,
        stride: int = 1,
        prefetch: bool = True,
        span: FrameSpan | None = None,
    ) -> Iterator[FrameChunk]:
        """Yield :class:`FrameChunk` s of up to ``chunk_size`` frames until the video ends.

        ``chunk_size`` defaults to :func:`chunk_frames_for` the frame size. ``stride`` keeps
        every n-th frame (counted from decode index 0; the others are still decoded: H.264
        cannot skip). ``start_frame`` skips that many frames first (decoding them). ``span``
        reads only one stretch of the video, after a checked seek (see :class:`FrameSpan`;
        :attr:`span_report` describes it afterwards). With ``prefetch``, decoding runs in a
        background thread, overlapping with the caller's work (OpenCV releases the GIL while
        it decodes).
        """
        if chunk_size is None:
            chunk_size = chunk_frames_for(self.info.width, self.info.height)
        self._cap = _open_capture(self.path, self.luma_direct, self.decode_threads)
        gen = self._read_chunks(chunk_size, start_frame, max(1, int(stride)), span)
        if not prefetch:
            yield from gen
            return
        yield from _prefetched(gen, depth=PREFETCH_CHUNKS)

    def _seek_before(self, span: FrameSpan, report: SpanReport) -> tuple[bool, float]:
        """Position the capture before ``span.start_s``; return (grabbed, time of frame).

        The frame grabbed last is the first one to process. Seeks aim ``lead_s`` before the
        span, then twice as far, ..., and finally the file is read from its start.
        """
        lead = span.lead_s
        while True:
            target = span.start_s - lead
            if target <= 0:
                self._cap.release()
                self._cap = _open_capture(self.path, self.luma_direct, self.decode_threads)
                report.seek_s = None
                return self._cap.grab(), self._frame_time()
            report.seeks += 1
            self._cap.set(cv2.CAP_PROP_POS_MSEC, target * 1000.0)
            ok = self._cap.grab()
            t = self._frame_time()
            if ok and np.isfinite(t) and t < span.start_s and t > 0:
                report.seek_s = target
                return True, t
            lead *= 4

    def _frame_time(self) -> float:
        return self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0

    def _read_chunks(
        self, chunk_size: int, start_frame: int, stride: int, span: FrameSpan | None = None
    ) -> Iterator[FrameChunk]:
        cap = self._cap
        assert cap is not None
        h, w = self.info.height, self.info.width
        interval = self.nominal_interval_s
        start_s, end_s = -math.inf, math.inf
        i = 0  # decode index of the next frame of the span (or of the video)
        grabbed, pending = 0, False
        report = SpanReport()
        if span is not None:
            self.span_report = report
            start_s, end_s, i = span.start_s, span.end_s, span.first_index
            if start_s > 0:
                ok, _ = self._seek_before(span, report)
                cap = self._cap
                pending = ok
                if not ok:
                    return
        last_t = -math.inf
        luma_direct = self.luma_direct

        def new_buffers():
            return (
                np.empty((chunk_size, h, w), dtype=np.uint8),
                np.empty(chunk_size, dtype=np.int64),
                np.empty(chunk_size, dtype=np.float64),
            )

        buf, idx, ts = new_buffers()
        n = 0
        while True:
            if pending:
                pending = False
            elif not cap.grab():
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not math.isfinite(t) or t <= last_t or (t == 0 and grabbed > 0):
                report.non_increasing += 1
                t = (last_t + interval) if math.isfinite(last_t) else i * interval
                if grabbed > 0:
                    self.timestamps_repaired += 1
            grabbed += 1
            last_t = t
            if t < start_s:
                report.lead_in_frames += 1
                continue
            if t >= end_s:
                report.reached_end = True
                break
            if report.first_time_s is None:
                report.first_time_s = t
            report.last_time_s = t
            report.frames += 1
            self.frames_decoded += 1
            if i >= start_frame and (i - start_frame) % stride == 0:
                out = buf[n]
                # the luma plane is written straight into the chunk (OpenCV returns `out`
                # itself); anything else (a colour frame, a changed size) comes back new
                ok, frame = cap.retrieve(out) if luma_direct else cap.retrieve()
                if ok and frame is not None:
                    if frame is not out:
                        if frame.ndim == 3:
                            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                        if frame.shape != (h, w):
                            raise VideoError(
                                f"{self.path}: frame {i} has size {frame.shape[1]}x"
                                f"{frame.shape[0]}, the video said {w}x{h}; re-encode the file "
                                "with a fixed frame size"
                            )
                        out[...] = frame
                    idx[n] = i
                    ts[n] = t
                    n += 1
                    if n == chunk_size:
                        yield FrameChunk(idx, ts, buf)
                        buf, idx, ts = new_buffers()
                        n = 0
            i += 1
        if n:
            yield FrameChunk(idx[:n], ts[:n], buf[:n])

    def sample_frames(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """About ``n`` grayscale frames spread evenly over the whole video.

        Returns (frames (m, h, w) uint8, decode indices). Where the video has at least
        ``n`` keyframes, the keyframes nearest to ``n`` evenly spaced times are decoded
        (each on its own, from a seek: cheap whatever the keyframe interval; their indices
        are estimated from time and frame rate). Otherwise the frames are taken at their
        positions by seeking where the container gives a frame count (each seek decodes
        from the previous keyframe), or in one pass. Frames that cannot be read at their
        position (truncated files) are skipped. :attr:`sampling` says which way was used.
        """
        sampled = self._sample_keyframes(n)
        if sampled is not None:
            self.sampling = "keyframes"
            return sampled
        cap = _open_capture(self.path, raw_luma=self.luma_direct)
        frames: list[np.ndarray] = []
        indices: list[int] = []
        try:
            count = self.info.nominal_frame_count
            if count and count > 4 * n:
                self.sampling = "seek"
                targets = np.linspace(0, count - 1, n + 2)[1:-1].round().astype(int)
                for target in targets:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, int(target))
                    ok, frame = cap.read()
                    if ok and frame is not None:
                        frames.append(self._gray(frame))
                        indices.append(int(target))
            else:
                self.sampling = "sequential"
                i = 0
                step = max(1, (count or 0) // max(n, 1))
                while True:
                    ok = cap.grab()
                    if not ok:
                        break
                    if i % step == 0:
                        ok, frame = cap.retrieve()
                        if ok:
                            frames.append(self._gray(frame))
                            indices.append(i)
                    i += 1
                if len(frames) > n:
                    keep = np.linspace(0, len(frames) - 1, n).round().astype(int)
                    frames = [frames[k] for k in keep]
                    indices = [indices[k] for k in keep]
        finally:
            cap.release()
        if not frames:
            raise VideoError(f"{self.path}: no frame could be decoded; check that it plays")
        return np.stack(frames), np.asarray(indices)

    def _sample_keyframes(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``n`` keyframes spread over the video, decoded with PyAV; None when the video
        has fewer keyframes in its index, or PyAV's frames are not OpenCV's."""
        if not self.luma_direct or self._first_luma is None:
            return None
        try:
            import av
        except ImportError:  # pragma: no cover - a dependency
            return None
        h, w = self.info.height, self.info.width
        try:
            with av.open(self.path) as container:
                stream = container.streams.video[0]
                keys = np.array(
                    [e.timestamp for e in stream.index_entries if e.is_keyframe], dtype=np.int64
                )
                keys = np.unique(keys)
                if len(keys) < n:
                    return None
                first = next(container.decode(stream))
                if not np.array_equal(_luma_plane(first, h, w), self._first_luma):
                    return None
                wanted = np.linspace(keys[0], keys[-1], n + 2)[1:-1]
                picks = np.unique(np.abs(keys[None, :] - wanted[:, None]).argmin(axis=1))
                if len(picks) < max(3, (4 * n) // 5):
                    return None
                frames = np.empty((len(picks), h, w), dtype=np.uint8)
                times = np.empty(len(picks))
                m = 0
                for k in picks:
                    container.seek(int(keys[k]), stream=stream, backward=True, any_frame=False)
                    frame = next(container.decode(stream), None)
                    if frame is None or frame.pts is None:
                        continue
                    luma = _luma_plane(frame, h, w)
                    if luma is None:
                        return None
                    frames[m] = luma
                    times[m] = float((frame.pts - (stream.start_time or 0)) * stream.time_base)
                    m += 1
        except (av.FFmpegError, StopIteration, IndexError, ValueError):
            return None
        if m < max(3, (4 * n) // 5):
            return None
        fps = self.info.nominal_fps or 1.0 / self.nominal_interval_s
        return frames[:m], np.round(times[:m] * fps).astype(np.int64)


#: 8-bit pixel formats whose first plane is the luma (or gray) plane.
_LUMA_FORMATS = frozenset(
    "yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p yuv440p yuvj440p yuv411p yuv410p "
    "gray nv12 nv21".split()
)


def _luma_plane(frame, height: int, width: int) -> np.ndarray | None:
    """The luma plane of a PyAV frame in a planar YUV or gray format (a copy), else None."""
    if frame.format.name not in _LUMA_FORMATS:
        return None
    if frame.width != width or frame.height != height:
        return None
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return np.ascontiguousarray(rows[:height, :width])


def frame_times(path: str | Path) -> np.ndarray:
    """Presentation time (s) of every frame, in presentation order, from the container's
    packets (no decoding), as :class:`VideoReader` reports them (time since the stream's
    start). Raises :class:`VideoError` when the packets carry no timestamps."""
    import av

    path = str(path)
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            start = stream.start_time or 0
            tb = stream.time_base
            pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
    except (av.FFmpegError, IndexError) as e:
        raise VideoError(f"{path}: its frames cannot be indexed ({e})") from None
    if not pts:
        raise VideoError(f"{path}: its packets carry no timestamps")
    ticks = np.sort(np.asarray(pts, dtype=np.int64)) - start
    # the same arithmetic as OpenCV's CAP_PROP_POS_MSEC, then / 1000 as the reader does
    return ticks.astype(np.float64) * (tb.numerator / tb.denominator) * 1000.0 / 1000.0


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

    thread = threading.Thread(target=work, name="cpp-tracker-decode", daemon=True)
    thread.start()
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
