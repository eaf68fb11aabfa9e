"""tracker: the fast detection paths against the plain steps, calibration, the track table.

The plain steps (`ArenaDetector.detect_reference`: blur, difference, threshold, mask,
opening, labelling over the whole arena) define what is detected. `detect` must give the
same centroid and area to 1e-9 px: exactly at scale 1, and at scales 2 and 4 for every
frame where the mouse is found (its measurement is the full-resolution one, in a window).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from cpp_tracker.config.settings import parse_config
from cpp_tracker.tracking.background import IntHistogram, median_background
from cpp_tracker.tracking.tracker import (
    ASSIGNED_COLUMNS,
    DOWNSCALE_MIN_AREA_PX,
    TRACK_COLUMNS,
    _opened,
    make_detector,
    track_frames,
)
from cpp_tracker.video.reader import VideoReader


def _frames_and_config(video_factory, name, **spec):
    video, truth, _ = video_factory(name, **spec)
    config = parse_config(truth.config)
    with VideoReader(video) as reader:
        samples, _ = reader.sample_frames(config.background.samples)
        frames = np.concatenate([c.frames for c in reader.chunks(prefetch=False)])
    return frames, samples, config, truth


def _same(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.all(np.isclose(a, b, rtol=0, atol=1e-9) | (np.isnan(a) & np.isnan(b)), axis=1)


@pytest.fixture(scope="module")
def small_scene(video_factory):
    """320x240, a blinking distractor, lighting steps: blobs that are not the mouse."""
    return _frames_and_config(
        video_factory, "tracker_small", duration_s=8.0, seed=31, distractor="blink",
        light_steps=((4.0, 0.85),),
    )


@pytest.fixture(scope="module")
def large_scene(video_factory):
    """640x480: the mouse covers ~1500 px, large enough for the coarse search; the light
    drops by 15 % half-way."""
    return _frames_and_config(
        video_factory, "tracker_640", width=640, height=480, duration_s=6.0, seed=32,
        light_steps=((3.0, 0.85),),
    )


@pytest.mark.parametrize("polarity", ["auto", "both"])
def test_fast_detection_equals_the_plain_steps(small_scene, polarity):
    frames, samples, config, _ = small_scene
    background = median_background(samples)
    det = make_detector(
        config.arenas[0], config.detection, background, samples, follow_lighting=True
    )
    assert det.scale == 1  # a 320x240 mouse is too small for the coarse search
    if polarity == "both":
        det = dataclasses.replace(det, polarity="both", limit=None, _lit={})
    gains = [det.light_gain(f) for f in frames]
    # the lighting step at 4 s: the limits are scaled to gains other than 1
    assert min(gains) < 0.95 and max(gains) > 1.05
    fast = [det.detect(f, g) for f, g in zip(frames, gains, strict=True)]
    ref = [det.detect_reference(f, g) for f, g in zip(frames, gains, strict=True)]
    assert _same(fast, ref).all()
    assert [r[3] for r in fast] == [r[3] for r in ref]  # n_blobs too
    assert np.isfinite(np.asarray(ref, float)[:, 0]).mean() > 0.95  # the test has teeth


@pytest.mark.parametrize("scale", [2, 4])
def test_coarse_search_measures_the_same_blob(large_scene, scale):
    frames, samples, config, truth = large_scene
    background = median_background(samples)
    settings = dataclasses.replace(config.detection, downscale=scale)
    det = make_detector(config.arenas[0], settings, background, samples, follow_lighting=True)
    assert det.scale == scale and det.coarse is not None
    gains = [det.light_gain(f) for f in frames]
    fast = np.asarray([det.detect(f, g) for f, g in zip(frames, gains, strict=True)], float)
    ref = np.asarray(
        [det.detect_reference(f, g) for f, g in zip(frames, gains, strict=True)], float
    )
    same = _same(fast[:, :3], ref[:, :3])
    assert same.mean() >= 0.99, np.flatnonzero(~same)[:5]
    assert np.isfinite(fast[:, 0]).mean() > 0.97
    err = np.hypot(fast[:, 0] - truth.track["x"].to_numpy(), fast[:, 1] - truth.track["y"])
    assert np.nanmedian(err) <= 3.0


def test_downscale_is_chosen_from_the_mouse_area(small_scene, large_scene):
    for (_, samples, config, _), expected in ((small_scene, 1), (large_scene, 2)):
        det = make_detector(
            config.arenas[0], config.detection, median_background(samples), samples
        )
        assert det.mouse_area_px is not None
        assert det.scale == expected, det.describe()
        assert det.describe()["scale"] == expected
    _, samples, config, _ = large_scene
    assert DOWNSCALE_MIN_AREA_PX <= det.mouse_area_px < 4 * DOWNSCALE_MIN_AREA_PX
    forced = make_detector(
        config.arenas[0], dataclasses.replace(config.detection, downscale=1),
        median_background(samples), samples,
    )
    assert forced.scale == 1 and forced.coarse is None


def test_histogram_median_and_mad_equal_numpy():
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 1000, 1001):
        values = rng.integers(-255, 256, size)
        hist = IntHistogram()
        hist.add(values[: size // 2])
        hist.add(values[size // 2 :])
        med, mad = hist.median_and_mad()
        assert med == np.median(values)
        assert mad == np.median(np.abs(values - np.median(values)))


@pytest.mark.parametrize("size", [5, 11, 21])
def test_opening_around_the_foreground_equals_the_whole_image(size):
    """Erosion and dilation each over their own foreground's box (plus the kernel radius)
    give the opening of the whole image, pixel for pixel: blobs touching the image's
    edges, specks, blobs the opening removes entirely."""
    rng = np.random.default_rng(size)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    kept = 0
    for _ in range(40):
        binary = np.zeros((90, 120), np.uint8)
        for _ in range(rng.integers(1, 5)):
            x, y = rng.integers(0, 120), rng.integers(0, 90)
            axes = (int(rng.integers(1, 30)), int(rng.integers(1, 20)))
            cv2.ellipse(binary, (int(x), int(y)), axes, int(rng.integers(0, 180)), 0, 360,
                        255, -1)
        binary[rng.random(binary.shape) < 0.01] = 255
        whole = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
        x, y, part = _opened(binary, kernel)
        rebuilt = np.zeros_like(whole)
        rebuilt[y : y + part.shape[0], x : x + part.shape[1]] = part
        assert np.array_equal(rebuilt, whole)
        kept += bool(whole.any())
    assert 5 <= kept < 40  # some blobs survive the opening, some vanish entirely
    x, y, part = _opened(np.zeros((10, 10), np.uint8), kernel)
    assert part.size == 0


def test_track_frames_writes_frame_major_parts_at_checkpoints(small_scene):
    frames, samples, config, _ = small_scene
    background = median_background(samples)
    det = make_detector(config.arenas[0], config.detection, background, samples)
    other = dataclasses.replace(det, name="copy")

    class Chunk:
        def __init__(self, start, n):
            self.index = np.arange(start, start + n)
            self.time_s = self.index / 30.0
            self.frames = frames[start : start + n]

        def __len__(self):
            return len(self.index)

    chunks = [Chunk(s, min(20, len(frames) - s)) for s in range(0, len(frames), 20)]
    tables = []
    n = track_frames(chunks, [det, other], tables.append, checkpoint_s=2.0)
    assert n == len(frames)
    # the part tables carry the track's dtypes (no pandas in the tracking processes)
    types = {f.name: str(f.type) for f in tables[0].schema}
    assert types == {
        "frame": "int64", "time_s": "double", "arena": "large_string", "x": "double",
        "y": "double", "area_px": "double", "detected": "bool", "n_blobs": "int16",
        "light_gain": "float", "share_0": "float", "share_1": "float",
    }
    parts = [t.to_pandas() for t in tables]
    assert len(parts) >= 3  # 8 s of video, a part every 2 s
    table = np.concatenate([p["frame"].to_numpy() for p in parts])
    assert np.array_equal(table, np.repeat(np.arange(len(frames)), 2))
    assert list(parts[0].columns) == [
        *(c for c in TRACK_COLUMNS if c not in ASSIGNED_COLUMNS), "share_0", "share_1"]
    assert list(parts[0]["arena"][:4]) == ["box1", "copy", "box1", "copy"]
    first = parts[0].iloc[0]
    x, y, area, n_blobs = det.detect(frames[0], det.light_gain(frames[0]))
    assert first["x"] == x and first["area_px"] == area and first["n_blobs"] == n_blobs
    assert first["light_gain"] == np.float32(det.light_gain(frames[0]))
    assert first["detected"] == np.isfinite(x)


# -- chamber shares (chambers.rule: body_fraction) ----------------------------------------
from cpp_tracker.geometry.chambers import build_layout  # noqa: E402
from cpp_tracker.synthetic.scenes import body_shares  # noqa: E402
from cpp_tracker.tracking.tracker import SHARE_REACH_AREAS, chamber_pieces  # noqa: E402

_SLANTED = {
    "three": {"polygon": [[10.3, 12.7], [300.2, 15.1], [305.6, 228.4], [8.1, 225.9]],
              "doors": [{"name": "d1", "line": [[110.4, 12], [104.2, 228]]},
                        {"name": "d2", "line": [[200.7, 13], [212.3, 228]]}],
              "chambers": [{"name": "a", "point": [50, 120]}, {"name": "b", "point": [155, 120]},
                           {"name": "c", "point": [260, 120]}]},
    # four chambers: two door lines crossing (per-door sides would not tell them apart)
    "four": {"polygon": [[20, 20], [300, 20], [300, 220], [20, 220]],
             "doors": [{"name": "v", "line": [[160.5, 20], [150.2, 220]]},
                       {"name": "h", "line": [[20, 118.3], [300, 131.9]]}],
             "chambers": [{"name": "a", "point": [80, 60]}, {"name": "b", "point": [240, 60]},
                          {"name": "c", "point": [80, 180]}, {"name": "d", "point": [240, 180]}]},
}


@pytest.mark.parametrize("name", sorted(_SLANTED))
def test_chamber_pieces_are_the_geometry_pieces(name):
    import shapely

    arena = parse_config({"arenas": [dict(name="box", **_SLANTED[name])]}).arenas[0]
    layout = build_layout(arena, 0.0)
    pieces = chamber_pieces(arena, 0, 0, 320, 240)
    rows, cols = np.nonzero(pieces != 255)
    x, y = cols.astype(float), rows.astype(float)
    truth = layout.raw_chamber(x, y)
    to_door = np.min([shapely.distance(s, shapely.points(x, y))
                      for s in layout.door_segments], axis=0)
    # every pixel whose centre is not on a line (0.1 px) is in the piece its centre is in
    wrong = pieces[rows, cols] != truth
    assert not (wrong & (to_door > 0.1)).any()
    assert set(np.unique(pieces)) == {*range(len(arena.chambers)), 255}


@pytest.fixture(scope="module")
def door_scene(video_factory):
    """320x240, 30 s: the mouse crosses the door several times and stops in the doorway
    for 2 s (seed 10)."""
    return _frames_and_config(video_factory, "tracker_door", duration_s=30.0, seed=10)


@pytest.fixture(scope="module")
def door_scene_640(video_factory):
    """The door scene at 640x480: the coarse search path (scale 2)."""
    return _frames_and_config(video_factory, "tracker_door_640", width=640, height=480,
                              duration_s=30.0, seed=10)


@pytest.mark.parametrize("scene", ["door_scene", "door_scene_640"])
def test_chamber_shares_are_the_detected_blob_and_the_true_body_share(scene, request):
    """The shares are counted on the very blob detection measured (at full resolution
    and on the coarse path at 640x480): found again around its centroid
    (:meth:`chamber_shares`), it has the same area and the same shares. They lie within
    0.04 of the true share of body and head (the blob's outline is the blurred,
    thresholded edge: a pixel or so off the true one along the door line)."""
    frames, samples, config, truth = request.getfixturevalue(scene)
    det = make_detector(config.arenas[0], config.detection, median_background(samples),
                        samples)
    true = body_shares(truth.spec)[["share_0", "share_1"]].to_numpy()
    near = straddling = 0
    errors = []
    for i, frame in enumerate(frames):
        gain = det.light_gain(frame)
        (x, y, area, n_blobs), shares = det.detect_with_shares(frame, gain)
        assert (x, y, area, n_blobs) == pytest.approx(det.detect(frame, gain), nan_ok=True)
        again = det.chamber_shares(frame, gain, x, y, area)
        assert np.array_equal(shares, again, equal_nan=True)
        if not np.isfinite(x):
            assert np.isnan(shares).all()
            continue
        assert shares.sum() == pytest.approx(1.0, abs=1e-6)
        errors.append(np.abs(shares - true[i]).max())
        straddling += bool(0.1 < true[i, 0] < 0.9)
        reach = SHARE_REACH_AREAS * area**0.5 + 2
        r = int(np.ceil(reach))
        cx, cy = int(round(x)) - det.x0, int(round(y)) - det.y0
        if det.door_band[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].any():
            near += 1
            _, _, blob = det._blob_near(frame, gain, x - det.x0, y - det.y0, reach)
            assert blob.sum() == area
    assert near >= 10  # the mouse came near the door
    assert straddling >= 60  # and lay across it
    assert (det.scale, scene) in ((1, "door_scene"), (2, "door_scene_640"))
    assert max(errors) < 0.04, max(errors)
