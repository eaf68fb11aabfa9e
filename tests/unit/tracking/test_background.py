"""Background estimation: lighting-corrected median, and removal of a resting mouse."""

import numpy as np
import pytest

from cpp_tracker.tracking.background import estimate_background, median_background, sample_gains

H, W = 60, 80


def _floor(seed=0):
    rng = np.random.default_rng(seed)
    base = np.full((H, W), 180.0)
    base[:, W // 2 :] = 150.0  # two chambers of different brightness
    return base + rng.normal(0, 4, (H, W))  # texture


def _frame(floor, mouse_xy=None, gain=1.0, rng=None, level=40.0):
    img = floor.copy()
    if mouse_xy is not None:
        x, y = mouse_xy
        yy, xx = np.ogrid[:H, :W]
        img[((xx - x) / 6.0) ** 2 + ((yy - y) / 3.5) ** 2 <= 1] = level
    img = img * gain
    if rng is not None:
        img = img + rng.normal(0, 2, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _region():
    r = np.zeros((H, W), dtype=bool)
    r[2:-2, 2:-2] = True
    return r


def test_median_background_is_the_floor_when_the_mouse_moves():
    floor = _floor()
    rng = np.random.default_rng(1)
    frames = np.stack([_frame(floor, (10 + 2 * i, 30), rng=rng) for i in range(30)])
    bg = median_background(frames)
    assert np.abs(bg.astype(float) - floor).max() < 8


def test_a_mouse_asleep_in_most_samples_is_removed():
    floor = _floor()
    rng = np.random.default_rng(2)
    sleep_xy = (20, 20)
    positions = [sleep_xy] * 24 + [(30 + 1.5 * i, 40) for i in range(16)]  # 60 % asleep
    frames = np.stack([_frame(floor, p, rng=rng) for p in positions])
    plain = median_background(frames)
    assert plain[20, 20] < 80  # the median alone holds the sleeping mouse
    model = estimate_background(frames, regions={"box1": _region()})
    assert np.abs(model.image[14:27, 12:29].astype(float) - floor[14:27, 12:29]).max() < 12
    (report,) = model.resting_mouse
    assert report["arena"] == "box1"
    assert report["samples_without_mouse"] == 24
    assert report["samples_without_mouse_after"] == 0
    assert abs(report["where_xy"][0] - 20) < 3 and abs(report["where_xy"][1] - 20) < 3


def test_a_mouse_that_moves_leaves_the_background_untouched():
    floor = _floor()
    rng = np.random.default_rng(3)
    # resting 40 % of the samples in one place: below half, the median is the floor
    positions = [(60, 15)] * 16 + [(10 + 2 * i, 40) for i in range(24)]
    frames = np.stack([_frame(floor, p, rng=rng) for p in positions])
    model = estimate_background(frames, regions={"box1": _region()})
    assert model.resting_mouse == ()
    assert np.array_equal(model.image, median_background(frames))


def test_a_mouse_asleep_in_nearly_every_sample_is_a_warning():
    floor = _floor()
    rng = np.random.default_rng(4)
    positions = [(20, 20)] * 38 + [(60, 40)] * 2
    frames = np.stack([_frame(floor, p, rng=rng) for p in positions])
    model = estimate_background(frames, regions={"box1": _region()})
    assert model.resting_mouse == ()
    (warning,) = model.warnings
    assert warning.startswith("arena box1: no mouse is visible in 38 of 40 background samples")
    assert "background.samples" in warning


def test_samples_under_different_lighting_are_brought_to_one_brightness():
    floor = _floor()
    rng = np.random.default_rng(5)
    gains = np.r_[np.linspace(1.0, 0.9, 20), np.full(20, 0.55)]  # drift, then a step
    frames = np.stack(
        [_frame(floor, (10 + 1.5 * i, 30), gain=g, rng=rng) for i, g in enumerate(gains)]
    )
    model = estimate_background(frames, regions={"box1": _region()})
    ratio = model.sample_gains / gains
    assert ratio.std() / ratio.mean() < 0.01  # the measured gains follow the true ones
    scale = float(np.median(model.image / floor))
    assert np.abs(model.image / scale - floor).max() < 10  # and the background is the floor
    again = sample_gains(model.samples, model.image, _region())
    assert np.allclose(again, 1.0, atol=0.02)  # calibration samples share one lighting


def test_lighting_correction_can_be_switched_off():
    floor = _floor()
    frames = np.stack([_frame(floor, (10 + i, 30), gain=g) for i, g in
                       enumerate(np.linspace(1, 0.5, 20))])
    model = estimate_background(frames, correct_lighting=False, remove_resting=False)
    assert np.array_equal(model.samples, frames)
    assert np.all(model.sample_gains == 1.0)


def test_describe_is_plain_data():
    floor = _floor()
    frames = np.stack([_frame(floor, (10 + i, 30)) for i in range(10)])
    d = estimate_background(frames, np.arange(10) * 7).describe()
    assert d["samples"] == 10 and d["sample_frames"][:2] == [0, 7]
    assert d["resting_mouse"] == []
    with pytest.raises(ValueError):
        median_background(np.zeros((0, 4, 4), np.uint8))


def test_a_sleeping_mouse_whose_tail_moves_is_still_removed():
    floor = _floor()
    rng = np.random.default_rng(6)
    frames = []
    for i in range(40):
        if i < 24:  # asleep at (20, 20); the tail (a small blob) flicks about
            img = _frame(floor, (20, 20), rng=rng)
            tx = 34 + (i % 4) * 3
            img[30:34, tx : tx + 5] = 40
        else:
            img = _frame(floor, (40 + i, 45), rng=rng)
        frames.append(img)
    model = estimate_background(np.stack(frames), regions={"box1": _region()})
    (report,) = model.resting_mouse
    assert report["samples_mouse_there"] == 24
    assert np.abs(model.image[14:27, 12:29].astype(float) - floor[14:27, 12:29]).max() < 12


def test_a_blinking_light_is_not_taken_for_a_sleeping_mouse():
    floor = _floor()
    rng = np.random.default_rng(7)
    frames = []
    for i in range(40):
        img = _frame(floor, (10 + 1.5 * i, 45), rng=rng)
        if i % 5 < 3:  # on in 60 % of the samples: the median has it on
            img[8:14, 60:70] = 250
        frames.append(img)
    model = estimate_background(np.stack(frames), regions={"box1": _region()})
    assert model.resting_mouse == ()
    assert np.array_equal(model.image, median_background(np.stack(frames)))


def test_a_mouse_resting_in_a_corner_and_asleep_elsewhere():
    floor = _floor()
    rng = np.random.default_rng(8)
    positions = [(20, 20)] * 22 + [(65, 45)] * 10 + [(30 + 2 * i, 40) for i in range(8)]
    frames = np.stack([_frame(floor, p, rng=rng) for p in positions])
    model = estimate_background(frames, regions={"box1": _region()})
    (report,) = model.resting_mouse
    assert report["spots"] == 1 and abs(report["where_xy"][0] - 20) < 3
    # the corner where it rested 25 % of the time was floor in the median and stays so
    assert np.array_equal(model.image[38:52, 56:74], median_background(frames)[38:52, 56:74])
