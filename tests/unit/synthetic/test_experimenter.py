"""The session start in synthetic scenes: hand, doors, confinement and the truth's start."""

from __future__ import annotations

import numpy as np
import pytest

from cpp_tracker.synthetic import ArenaSpec, SceneSpec, iter_frames, make_scene

SPEC = dict(duration_s=16.0, fps=10.0, experimenter=True, lid_gain=0.85)


def _frames(spec: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    times, frames = zip(*iter_frames(spec), strict=True)
    return np.array(times), np.stack(frames)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_start_varies_by_seed_and_the_mouse_stays_in_its_chamber_until_it(seed):
    truth = make_scene(SceneSpec(seed=seed, arenas=(ArenaSpec(n_chambers=3),), **SPEC))
    start = truth.trial_start_s
    assert 3.0 < start < 16.0
    before = truth.track[truth.track["time_s"] < start - 0.2]
    # set down in one chamber and kept there by the closed doors
    assert before["chamber"].nunique() == 1
    # counted from the start only
    counted = truth.chamber_times().to_numpy().sum()
    assert counted == pytest.approx((truth.track["time_s"] >= start).sum() / 10.0)
    starts = {make_scene(SceneSpec(seed=s, **SPEC)).trial_start_s for s in (0, 1, 2)}
    assert len(starts) == 3


def test_a_hand_larger_than_several_mice_comes_in_from_the_edge_and_leaves():
    spec = SceneSpec(seed=4, doors_open_s=1.0, **{k: v for k, v in SPEC.items()
                                                 if k != "lid_gain"})
    truth = make_scene(spec)
    times, frames = _frames(spec)
    diff = np.abs(frames.astype(np.int16) - truth.background.astype(np.int16)) > 30
    area = diff.reshape(len(frames), -1).sum(axis=1)
    mouse = np.median(area[times > truth.trial_start_s + 0.5])
    assert area.max() > 4 * mouse  # the hand and arm: several mouse areas
    at_max = diff[int(np.argmax(area))]
    edges = at_max[0].any() or at_max[-1].any() or at_max[:, 0].any() or at_max[:, -1].any()
    assert edges  # the arm reaches in from outside the frame
    # gone after the start: only the mouse differs from the empty box
    assert area[times >= truth.trial_start_s].max() < 2 * mouse
    assert truth.trial_start_s > 1.0  # the hand, not the early doors, set the start


def test_doors_are_closed_until_they_open_and_the_lid_changes_the_lighting():
    spec = SceneSpec(seed=3, doors_open_s=9.0, **SPEC)
    truth = make_scene(spec)
    times, frames = _frames(spec)
    door = truth.config["arenas"][0]["doors"][0]["line"]
    cx = int(round((door[0][0] + door[1][0]) / 2))
    cy = int(round((door[0][1] + door[1][1]) / 2))
    gap = frames[:, cy - 2:cy + 3, cx - 1:cx + 2].reshape(len(frames), -1).mean(axis=1)
    floor = float(truth.background[cy - 2:cy + 3, cx - 1:cx + 2].mean())
    closed, opened = gap[times < 8.8], gap[times > 9.2]
    mouse_free = np.abs(opened - floor) < 15
    assert np.all(np.abs(closed - floor) > 30)  # a plate over the doorway
    assert mouse_free.mean() > 0.8  # the empty doorway, but when the mouse passes
    assert truth.trial_start_s == pytest.approx(9.0)
    corner = frames[:, :8, :8].reshape(len(frames), -1).mean(axis=1)  # the table
    dim = corner / np.median(corner)
    assert dim.min() == pytest.approx(0.85, abs=0.03)  # the lid closing, half a second
    assert 3 <= np.count_nonzero(dim < 0.93) <= 6


def test_defaults_leave_the_scene_unchanged():
    plain = make_scene(SceneSpec(duration_s=4.0, seed=7))
    assert plain.trial_start_s is None
    with pytest.raises(ValueError, match="lid_gain"):
        SceneSpec(experimenter=True, lid_gain=3.0)
    with pytest.raises(ValueError, match="doors_open_s"):
        SceneSpec(duration_s=10.0, experimenter=True, doors_open_s=12.0)
