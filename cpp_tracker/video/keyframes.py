"""Keyframes of a video decoded with PyAV, run as a separate short-lived process.

:meth:`cpp_tracker.video.reader.VideoReader.sample_frames` takes its background samples from the
video's keyframes: each keyframe is decoded on its own after a seek, cheap whatever the
keyframe interval. PyAV brings its own copy of the FFmpeg libraries (OpenCV has another);
decoding with it inside the tracking process would keep both mapped for the whole run
(~40 MB of a 720p run's ~300 MB). So this file runs as a script in a fresh interpreter
(by path, so that it imports only numpy and PyAV, not the package), writes the frames to a
``.npz`` file and exits.

    python keyframes.py VIDEO N HEIGHT WIDTH OUT.npz
    python keyframes.py --times VIDEO OUT.npy

The second form writes the presentation time of every frame from the container's packets
(no decoding), for :func:`cpp_tracker.video.reader.frame_times`; on failure it prints the reason
and exits with status 2.

``OUT.npz`` holds ``first`` (the luma plane of the first frame, to check that PyAV's frames
are OpenCV's), ``frames`` (m, h, w) and ``times`` (s since the stream's start). Exit status
1 with nothing written when the video has fewer than N keyframes in its index or its
frames are not in a planar YUV or gray format.
"""

from __future__ import annotations

import sys

import numpy as np

#: 8-bit pixel formats whose first plane is the luma (or gray) plane.
LUMA_FORMATS = frozenset(
    "yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p yuv440p yuvj440p yuv411p yuv410p "
    "gray nv12 nv21".split()
)


def luma_plane(frame, height: int, width: int) -> np.ndarray | None:
    """The luma plane of a PyAV frame in a planar YUV or gray format (a copy), else None."""
    if frame.format.name not in LUMA_FORMATS:
        return None
    if frame.width != width or frame.height != height:
        return None
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return np.ascontiguousarray(rows[:height, :width])


def keyframes(path: str, n: int, height: int, width: int):
    """(first frame's luma, frames, times) for about ``n`` keyframes spread over the video,
    or None."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            keys = np.array(
                [e.timestamp for e in stream.index_entries if e.is_keyframe], dtype=np.int64
            )
            keys = np.unique(keys)
            if len(keys) < n:
                return None
            first = luma_plane(next(container.decode(stream)), height, width)
            if first is None:
                return None
            wanted = np.linspace(keys[0], keys[-1], n + 2)[1:-1]
            picks = np.unique(np.abs(keys[None, :] - wanted[:, None]).argmin(axis=1))
            if len(picks) < max(3, (4 * n) // 5):
                return None
            frames = np.empty((len(picks), height, width), dtype=np.uint8)
            times = np.empty(len(picks))
            m = 0
            for k in picks:
                container.seek(int(keys[k]), stream=stream, backward=True, any_frame=False)
                frame = next(container.decode(stream), None)
                if frame is None or frame.pts is None:
                    continue
                luma = luma_plane(frame, height, width)
                if luma is None:
                    return None
                frames[m] = luma
                times[m] = float((frame.pts - (stream.start_time or 0)) * stream.time_base)
                m += 1
    except (av.FFmpegError, StopIteration, IndexError, ValueError):
        return None
    if m < max(3, (4 * n) // 5):
        return None
    return first, frames[:m], times[:m]


def packet_times(path: str) -> np.ndarray:
    """Presentation time (s since the stream's start) of every frame, in presentation
    order, from the packets. Raises ValueError when there are none."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            start = stream.start_time or 0
            tb = stream.time_base
            pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
    except (av.FFmpegError, IndexError) as e:
        raise ValueError(f"its frames cannot be indexed ({e})") from None
    if not pts:
        raise ValueError("its packets carry no timestamps")
    ticks = np.sort(np.asarray(pts, dtype=np.int64)) - start
    # the same arithmetic as OpenCV's CAP_PROP_POS_MSEC, then / 1000 as the reader does
    return ticks.astype(np.float64) * (tb.numerator / tb.denominator) * 1000.0 / 1000.0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--times":
        path, out = argv[1:]
        try:
            times = packet_times(path)
        except ValueError as e:
            print(e, file=sys.stderr)
            return 2
        with open(out, "wb") as f:
            np.save(f, times)
        return 0
    path, n, height, width, out = argv
    found = keyframes(path, int(n), int(height), int(width))
    if found is None:
        return 1
    first, frames, times = found
    with open(out, "wb") as f:
        np.savez(f, first=first, frames=frames, times=times)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
