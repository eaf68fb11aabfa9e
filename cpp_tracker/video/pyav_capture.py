"""A PyAV decoder behind the few ``cv2.VideoCapture`` calls :class:`VideoReader` makes.

``video.reader: pyav`` reads frames through this class instead of OpenCV, so that every rule
of the reader (timestamps and their repair, spans and checked seeks, resumed reads, damaged
stretches) stays the one written and tested for OpenCV. What PyAV adds is access to the
decoder's options, which OpenCV does not pass through:

- ``fast_decode``: ``skip_loop_filter=all``, H.264's deblocking filter is not run (about a
  third less decoding work; block edges differ by a few grey levels, the mouse's centroid
  by hundredths of a pixel on the generated cases).
- ``skip_nonref`` (asked for with a stride): ``skip_frame=nonref``, frames no other frame
  refers to are not decoded at all. They still exist in the stream: each is reported as a
  grabbed frame with its timestamp (from its packet) that cannot be retrieved, so frame
  indices, counts and spans stay exact (see :attr:`PyAVCapture.dropped`).

Frames are the luma plane, copied once into the caller's buffer. PyAV is imported when a
capture is opened, never on import (the tracking modules must not load it).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DecodeOptions", "PyAVCapture", "READERS"]

#: The values of ``video.reader``.
READERS = ("opencv", "pyav")

# the cv2 property numbers the reader asks for (cv2.CAP_PROP_*), without importing cv2 here
_POS_MSEC, _POS_FRAMES = 0, 1

#: 8-bit pixel formats whose first plane is the luma (or gray) plane.
_LUMA_FORMATS = frozenset(
    "yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p yuv440p yuvj440p yuv411p yuv410p "
    "gray nv12 nv21".split()
)


@dataclass(frozen=True)
class DecodeOptions:
    """Which decoder reads the frames tracked, and what it may skip (``video.reader``,
    ``video.fast_decode``; ``skip_nonref`` is set by the pipeline for a stride > 1)."""

    reader: str = "opencv"
    fast_decode: bool = False
    skip_nonref: bool = False

    def codec_options(self) -> dict[str, str]:
        return {"skip_loop_filter": "all"} if self.fast_decode else {}


class PyAVCapture:
    """One pass of a PyAV decoder over a video, in presentation order, with the interface
    of ``cv2.VideoCapture`` that :class:`~cpp_tracker.video.reader.VideoReader` uses:
    ``grab``, ``retrieve``, ``get`` / ``set`` of the position (ms or frame), ``release``."""

    def __init__(self, path: str, options: DecodeOptions, threads: int | None = None):
        import av

        self._av = av
        self.options = options
        try:
            self._container = av.open(path)
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError):
            self._container = None
            return
        ctx = self._stream.codec_context
        ctx.options = options.codec_options()
        if options.skip_nonref:
            ctx.skip_frame = "NONREF"
        if threads:
            ctx.thread_count = int(threads)
        self._base = self._stream.start_time or 0
        self._tb = float(self._stream.time_base)
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._fps = float(rate) if rate else 30.0
        self._reset()

    # -- state ----------------------------------------------------------------------------
    def _reset(self) -> None:
        self._packets = self._container.demux(self._stream)
        self._frames: list = []  # decoded, not yet handed out
        self._pending: list[int] = []  # heap: pts of packets whose frame is not out yet
        self._current = None  # the frame grabbed last (None: a dropped frame)
        self._current_pts: int | None = None
        self._next_index = 0
        self._eof = False
        self.dropped = False  # the frame grabbed last was skipped by the decoder
        self.frames_dropped = 0

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return self._container is not None

    def release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    # -- decoding -------------------------------------------------------------------------
    def _decode_more(self) -> bool:
        """Feed packets until the decoder gives a frame (or the stream ends); False at
        the end."""
        while not self._frames:
            if self._eof:
                return False
            try:
                packet = next(self._packets)
            except StopIteration:
                self._eof = True
                return bool(self._frames) or bool(self._pending)
            except self._av.FFmpegError:
                continue  # a damaged packet: the frames after it still come
            if packet.pts is not None and packet.size:
                heapq.heappush(self._pending, packet.pts)
            try:
                self._frames.extend(packet.decode())
            except self._av.FFmpegError:
                continue
        return True

    def _next_event(self) -> tuple[object | None, int | None] | None:
        """The next frame in presentation order: (frame, pts), (None, pts) for a frame the
        decoder skipped, or None at the end."""
        if not self._decode_more():
            if self._pending:  # frames at the very end that the decoder skipped
                return None, heapq.heappop(self._pending)
            return None
        frame = self._frames[0]
        pts = frame.pts
        if pts is not None and self._pending and self._pending[0] < pts:
            return None, heapq.heappop(self._pending)  # skipped frame presented before
        self._frames.pop(0)
        if pts is not None and self._pending and self._pending[0] == pts:
            heapq.heappop(self._pending)
        return frame, pts

    def grab(self) -> bool:
        event = self._next_event()
        if event is None:
            return False
        self._current, self._current_pts = event
        self.dropped = self._current is None
        self.frames_dropped += int(self.dropped)
        self._next_index += 1
        return True

    def retrieve(self, out: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        frame = self._current
        if frame is None:
            return False, None
        if frame.format.name in _LUMA_FORMATS:
            plane = frame.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            luma = rows[: frame.height, : frame.width]
        else:
            luma = frame.to_ndarray(format="gray")
        if out is not None and out.shape == luma.shape:
            out[...] = luma
            return True, out
        return True, np.array(luma)

    # -- position -------------------------------------------------------------------------
    def _time_s(self) -> float:
        if self._current_pts is None:
            return math.nan
        return (self._current_pts - self._base) * self._tb

    def get(self, prop: int) -> float:
        if prop == _POS_MSEC:
            return self._time_s() * 1000.0
        if prop == _POS_FRAMES:
            return float(self._next_index)
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        """Seek so that the next grab returns the first frame at or after the time (ms) or
        frame number asked for (decoding on from the keyframe before it, as OpenCV does)."""
        if prop == _POS_MSEC:
            target_s = value / 1000.0
        elif prop == _POS_FRAMES:
            target_s = value / self._fps
        else:
            return False
        target_pts = self._base + int(math.floor(max(0.0, target_s) / self._tb))
        try:
            self._container.seek(target_pts, stream=self._stream, backward=True)
        except self._av.FFmpegError:
            return False
        self._reset()
        half = 0.5 / self._fps
        while True:  # decode up to the frame asked for; it is handed out by the next grab
            event = self._next_event()
            if event is None:
                return False
            frame, pts = event
            t = math.nan if pts is None else (pts - self._base) * self._tb
            if math.isfinite(t) and t >= target_s - half:
                if frame is None:
                    heapq.heappush(self._pending, pts)
                else:
                    self._frames.insert(0, frame)
                self._next_index = int(round(t * self._fps))
                return True
