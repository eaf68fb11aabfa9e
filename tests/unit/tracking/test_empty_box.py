"""tracking.empty_box: the one empty-box image (track, init, preview, draw, overlay)."""

from __future__ import annotations

import numpy as np

from cpp_tracker.config.settings import parse_config
from cpp_tracker.tracking.background import median_background
from cpp_tracker.tracking.empty_box import (
    estimate_background_for,
    sampled_background,
    whole_frame_background,
)

H, W = 120, 200
AWAKE = [(y, x) for y in (8, 50, 92) for x in (80, 110, 140, 170)]  # 12 places, apart


def night(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured floor, a dark mouse asleep at one spot in 60 % of the samples and
    elsewhere in the rest, and the light stepped down to 0.6 for the second half."""
    rng = np.random.default_rng(seed)
    floor = 150 + 20 * ((np.arange(W) // 6) % 2)[None, :] + np.zeros((H, 1))
    frames = []
    for i in range(n):
        frame = floor + rng.normal(0, 2, (H, W))
        asleep = i < 0.6 * n
        y, x = (50, 20) if asleep else AWAKE[(i - 18) % len(AWAKE)]
        frame[y : y + 16, x : x + 24] = 40
        gain = 1.0 if i < n // 2 else 0.6
        frames.append(np.clip(np.round(frame * gain), 0, 255).astype(np.uint8))
    return np.stack(frames), floor.astype(np.uint8)


def test_the_whole_frame_background_follows_the_light_and_drops_the_sleeper():
    samples, floor = night()
    model = whole_frame_background(samples)
    assert abs(model.sample_gains[-1] / model.sample_gains[0] - 0.6) < 0.02
    # the empty floor at one lighting (between the two, as the samples' median has it)
    level = float(np.median(model.image / floor))
    assert np.abs(model.image - level * floor).max() <= 3
    (rest,) = model.resting_mouse
    assert rest["arena"] == "frame" and rest["where_xy"] == [31.5, 57.5]
    # the plain median holds the sleeping mouse
    plain = median_background(samples).astype(float)
    assert np.abs(plain - level * floor)[52:64, 22:42].min() > 50


def test_without_a_config_it_is_a_config_of_one_arena_covering_the_frame():
    samples, _ = night(seed=1)
    index = np.arange(len(samples)) * 10
    config = parse_config({"arenas": [{
        "name": "frame", "polygon": [[0, 0], [W, 0], [W, H], [0, H]],
        "chambers": [{"name": "all", "point": [W / 2, H / 2]}]}]})
    a = whole_frame_background(samples, index)
    b = estimate_background_for(samples, index, config)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
    assert np.array_equal(a.sample_index, index)


def test_sampled_background_is_tracks(video_factory):
    from cpp_tracker.config.settings import load_config
    from cpp_tracker.tracking.empty_box import background_samples
    from cpp_tracker.video.reader import probe_video

    video, _, config_path = video_factory("draw_2ch", duration_s=6.0, seed=31)
    config = load_config(config_path)
    samples, index, _ = background_samples([probe_video(video)], 12)
    model = sampled_background(video, 12, config)
    assert np.array_equal(model.sample_index, index)
    assert np.array_equal(model.image, estimate_background_for(samples, index, config).image)
    assert sampled_background(video, 12).image.shape == model.image.shape
