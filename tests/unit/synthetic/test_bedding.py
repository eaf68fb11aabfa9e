"""synthetic.bedding: bedding floors, kicked patches that stay, the IR night picture."""

from __future__ import annotations

import numpy as np
import pytest

from cpp_tracker.synthetic import SceneSpec, body_length_px, iter_frames, make_scene
from cpp_tracker.synthetic.scenes import _build_scene

BASE = dict(duration_s=20.0, fps=10.0, seed=2, noise_sigma=0.0)


def _frames(spec):
    times, frames = zip(*iter_frames(spec), strict=True)
    return np.asarray(times), np.stack(frames).astype(np.int16)


def test_defaults_leave_the_picture_unchanged():
    plain = SceneSpec(**BASE)
    explicit = SceneSpec(**BASE, bedding=None, kicks=0, ir_contrast=0.0, vignetting=0.0,
                         flicker=0.0)
    assert np.array_equal(_frames(plain)[1], _frames(explicit)[1])


def test_kicked_patches_appear_next_to_the_mouse_and_stay():
    spec = SceneSpec(**BASE, bedding="chips", kicks=3)
    scene = _build_scene(spec)
    patches = scene.bedding.patches
    assert len(patches) == 3
    times, frames = _frames(spec)
    truth = make_scene(spec).track
    length = body_length_px(spec)[0]
    mouse_area = 0.45 * length ** 2
    for p in patches:
        x0, y0, x1, y1 = p.roi
        changed = np.abs(p.change) > 5
        assert 0.3 * mouse_area <= changed.sum() <= 2.5 * mouse_area
        i = int(np.searchsorted(times, p.t0))
        # next to the mouse when kicked: its centre within 1.5 body lengths
        assert np.hypot(p.centre[0] - truth["x"][i], p.centre[1] - truth["y"][i]) <= 1.5 * length
        # before the kick the floor is as without it; at the end it is changed
        # (where the mouse is not)
        mouse_at_end = np.hypot(truth["x"].iloc[-1] - p.centre[0],
                                truth["y"].iloc[-1] - p.centre[1]) < 2 * length
        if i > 0 and not mouse_at_end:
            before = frames[0, y0:y1, x0:x1]
            after = frames[-1, y0:y1, x0:x1]
            assert np.median(np.abs(after - before)[changed]) > 5
    # the first patch is as dark as the mouse (a dark mouse on a light floor)
    assert patches[0].change.min() < -100


def test_ir_night_picture_contrast_vignetting():
    day = SceneSpec(**BASE, floor="grey")
    night = SceneSpec(**BASE, floor="grey", ir_contrast=13.0, vignetting=0.4)
    bg_day = make_scene(day).background.astype(float)
    bg = make_scene(night).background.astype(float)
    h, w = bg.shape
    floor, scale, vignette, _ = _build_scene(night).bedding.night
    # the corners 40 % darker, the middle as it was
    assert vignette[0, 0] == pytest.approx(0.6, abs=0.01)
    assert vignette[h // 2, w // 2] == pytest.approx(1.0, abs=0.01)
    # the night picture is the day's pressed toward the floor level, times the vignette
    expected = (floor + (bg_day - floor) * scale) * vignette
    assert np.abs(bg - expected).max() <= 1.0
    # the mouse's palest part, in the middle of the picture, 13 grey levels (decoded:
    # limited-range luma, 219/255 of the rendered ones) from the floor
    times, frames = _frames(night)
    truth = make_scene(night).track
    i = int(np.argmin(np.hypot(truth["x"] - w / 2, truth["y"] - h / 2)))
    cx, cy = int(round(truth["x"][i])), int(round(truth["y"][i]))
    diff = (frames[i] - bg)[cy - 1: cy + 2, cx - 1: cx + 2] * (219 / 255)
    assert -20 < diff.mean() < -10
