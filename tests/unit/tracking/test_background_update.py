"""background_update: kicked bedding taken into the background, a sleeping mouse never.

Scenes from the generator (rendered without encoding), tracked frame by frame with a
:class:`BackgroundFollower`, compared with the generator's exact truth. Tolerances: a
frame "tracks something else" when its centroid is more than half a body length from the
truth; the usual centroid tolerance of these scenes is 0.25 body lengths.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cpp_tracker.config.settings import parse_config
from cpp_tracker.errors import ConfigError
from cpp_tracker.synthetic import SceneSpec, body_length_px, iter_frames, make_scene
from cpp_tracker.synthetic.scenes import _build_scene
from cpp_tracker.tracking.background_update import (
    BackgroundFollower,
    plan_background_update,
)
from cpp_tracker.tracking.empty_box import estimate_background_for
from cpp_tracker.tracking.tracker import detect_chunk, make_detector

BASE = dict(width=320, height=240, fps=15.0, duration_s=60.0, seed=1)


def _run(spec: SceneSpec, mode: str, *, after_s: float = 10.0):
    """Track a rendered scene with the background a run would make; (x, y, times, truth,
    the follower or None, the detector before any update)."""
    times, frames = zip(*iter_frames(spec), strict=True)
    frames = np.stack(frames)
    times = np.asarray(times)
    truth = make_scene(spec)
    config = parse_config({**truth.config, "detection": {
        "background_update": mode, "background_update_after_s": after_s}})
    index = np.linspace(0, len(frames) - 1, 40).round().astype(int)
    model = estimate_background_for(frames[index], index, config)  # as a run makes it
    detector = make_detector(config.arenas[0], config.detection, model.image, model.samples,
                             follow_lighting=True)
    detector = plan_background_update(detector, config.detection, model.samples)
    follower = BackgroundFollower(detector) if detector.update["active"] else None
    if follower is None:
        x, y, *_ = detect_chunk(frames, detector)
    else:
        x, y = np.empty(len(frames)), np.empty(len(frames))
        for a in range(0, len(frames), 50):  # chunks, as the pipeline hands them on
            x[a: a + 50], y[a: a + 50], *_ = follower.detect_chunk(frames[a: a + 50],
                                                                   times[a: a + 50])
    return x, y, times, truth, follower, detector


def _error_bl(spec, x, y, truth) -> np.ndarray:
    return np.hypot(x - truth.track["x"], y - truth.track["y"]) / body_length_px(spec)[0]


@pytest.fixture(scope="module")
def kicked():
    spec = SceneSpec(**BASE, bedding="chips", kicks=4, sleep_fraction=0.3)
    return spec, _run(spec, "auto")


def test_kicked_bedding_is_taken_in_and_never_tracked_as_the_mouse(kicked):
    spec, (x, y, times, truth, follower, detector) = kicked
    assert detector.update["active"], "auto sees the moved bedding in the samples"
    # the margin scales with the mouse: its length measured in the samples (the body and
    # head, from nose to tail base, about the generator's reference length)
    length = body_length_px(spec)[0]
    assert 0.8 * length <= detector.update["body_length_px"] <= 1.4 * length
    assert detector.update["margin_px"] == pytest.approx(detector.update["body_length_px"])
    assert follower.absorbed_px > 0
    err = _error_bl(spec, x, y, truth)
    found = np.isfinite(err)
    assert found.mean() >= 0.99
    # from the mouse's first movement on (before it, nothing tells the mouse from floor
    # that changed later in the video)
    moved = times >= 1.0
    assert (err[found & moved] <= 0.5).mean() >= 0.99
    # once a patch has settled (kicked, faded in, held for after_s + 5 s), never again
    settled = times >= max(_build_scene(spec).bedding.kick_times()) + 1.0 + 10.0 + 5.0
    assert np.all(err[found & settled] <= 0.5)
    assert np.median(err[found]) <= 0.1


def test_without_the_update_a_patch_is_tracked_as_the_mouse(kicked):
    """The scene of the test above is one the update is needed for."""
    spec = kicked[0]
    x, y, times, truth, follower, _ = _run(spec, "off")
    assert follower is None
    err = _error_bl(spec, x, y, truth)
    assert (err[np.isfinite(err)] > 0.5).mean() > 0.05


def test_a_sleeping_mouse_is_never_taken_in():
    spec = SceneSpec(**{**BASE, "seed": 1}, sleep_fraction=0.6)
    x, y, times, truth, follower, first = _run(spec, "on", after_s=3.0)
    err = _error_bl(spec, x, y, truth)
    still = ~truth.track["moving"].to_numpy()
    asleep = still & (times > 0.2 * spec.duration_s)  # the long still stretch
    assert asleep.sum() > 0.5 * len(times)
    assert np.isfinite(err[asleep]).mean() >= 0.99
    assert np.nanmax(err[asleep]) <= 0.25
    # nothing was taken in within a body length of where it sleeps
    sx, sy = np.median(truth.track["x"][asleep]), np.median(truth.track["y"][asleep])
    rows, cols = np.indices(first.background.shape)
    near = np.hypot(cols + first.x0 - sx, rows + first.y0 - sy) <= body_length_px(spec)[0]
    assert np.array_equal(follower.detector.background[near], first.background[near])


def test_auto_stays_off_on_a_plain_recording():
    spec = SceneSpec(**{**BASE, "duration_s": 20.0})
    *_, follower, detector = _run(spec, "auto")
    assert follower is None
    assert detector.update["active"] is False
    assert "no floor changed" in detector.update["why"]


def test_the_update_keys_are_validated_with_their_path():
    base = make_scene(SceneSpec(duration_s=1.0)).config
    with pytest.raises(ConfigError, match=r"detection\.background_update"):
        parse_config({**base, "detection": {"background_update": "sometimes"}})
    with pytest.raises(ConfigError, match=r"detection\.background_update_after_s"):
        parse_config({**base, "detection": {"background_update_after_s": 0.5}})
    with pytest.raises(ConfigError, match=r"detection\.background_update_margin_bl"):
        parse_config({**base, "detection": {"background_update_margin_bl": 50}})
    # YAML 1.1 reads a bare on / off as true / false
    assert parse_config({**base, "detection": {"background_update": False}}
                        ).detection.background_update == "off"
    assert dataclasses.asdict(parse_config(base).detection)["background_update"] == "auto"
