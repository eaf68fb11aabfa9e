"""synthetic/boxes: the CPP boxes labs use; defaults leave every picture as it was and the
truth stays exact for each new option."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from cpp_tracker.synthetic import ArenaSpec, SceneSpec, chamber_of, iter_frames, make_scene

#: sha256 of background, frames and truth positions of two scenes, computed with the
#: generator before synthetic/boxes existed (commit 6c28fda).
_BEFORE = {
    "default": "31580f63eb6c1bf51235b5388c772925547aba9ab1b40fb1159eef3c0ec654c7",
    "three": "9b219928f1b8fe6a287dffe64d67e2d4f901f8338b9503b97ecfd1b3bbf6b57c",
}
_SCENES = {
    "default": {},
    "three": dict(arenas=(ArenaSpec(n_chambers=3, door_angle_deg=10),), floor="grey",
                  wall="light"),
}


@pytest.mark.parametrize("name", sorted(_SCENES))
def test_defaults_leave_the_scene_byte_identical(name):
    spec = SceneSpec(duration_s=1.0, fps=5, seed=3, **_SCENES[name])
    truth = make_scene(spec)
    h = hashlib.sha256(truth.background.tobytes())
    for _, frame in iter_frames(spec):
        h.update(np.asarray(frame, np.float32).tobytes())
    h.update(truth.track[["x", "y"]].to_numpy().tobytes())
    assert h.hexdigest() == _BEFORE[name]


LAB_BOXES = {
    "floor_step": dict(partition="floor_step", chamber_floors=("chips", "paper")),
    "thin": dict(partition="thin", chamber_floors=("light", "dark")),
    "guillotine": dict(guillotine=True, chamber_floors=("grid", "plain", "holes"),
                       chamber_walls=("dark", "light", "light"),
                       arenas=(ArenaSpec(n_chambers=3),)),
    "faces": dict(chamber_walls=("dark", "light"), chamber_floors=("grid", "holes"),
                  wall_face=0.04, camera_offset=0.5),
    "night": dict(night_ir=True, partition="thin", chamber_floors=("chips", "paper")),
}


@pytest.mark.parametrize("name", sorted(LAB_BOXES))
def test_truth_is_consistent_for_each_lab_box(name):
    truth = make_scene(SceneSpec(duration_s=20.0, fps=10, seed=2, **LAB_BOXES[name]))
    arena = truth.config["arenas"][0]
    track = truth.track
    got = chamber_of(track["x"].to_numpy(), track["y"].to_numpy(), arena)
    assert (got == track["chamber"].to_numpy()).all()
    xs = [p[0] for p in arena["polygon"]]
    ys = [p[1] for p in arena["polygon"]]
    assert track["x"].between(min(xs), max(xs)).all()
    assert track["y"].between(min(ys), max(ys)).all()
    assert track["chamber"].nunique() == len(arena["chambers"])  # the mouse crosses


def test_floors_differ_and_a_floor_step_draws_no_partition():
    step = make_scene(SceneSpec(duration_s=2.0, seed=1, partition="floor_step",
                                chamber_floors=("light", "dark"))).background.astype(float)
    door_x = 159  # the door line at x = 159.5
    assert step[60:180, 100:140].mean() - step[60:180, 180:220].mean() > 60
    # no band at the boundary: the columns beside it are the floors' own levels
    assert abs(step[60:180, door_x - 3].mean() - step[60:180, 100:140].mean()) < 12
    assert abs(step[60:180, door_x + 4].mean() - step[60:180, 180:220].mean()) < 12


def test_wall_faces_shrink_the_floor_more_on_the_far_side():
    plain = make_scene(SceneSpec(duration_s=2.0, seed=1)).config["arenas"][0]["polygon"]
    faced = make_scene(SceneSpec(duration_s=2.0, seed=1, wall_face=0.04,
                                 camera_offset=0.5)).config["arenas"][0]["polygon"]
    left, right = faced[0][0] - plain[0][0], plain[1][0] - faced[1][0]
    assert left > 0 and right > 0 and left == pytest.approx(3 * right, rel=0.05)


def test_night_picture_is_dim_and_low_contrast():
    spec = SceneSpec(duration_s=2.0, fps=5, seed=1, night_ir=True, noise_sigma=0.0)
    truth = make_scene(spec)
    bg = truth.background.astype(float)
    _, frame = next(iter(iter_frames(spec)))
    x, y = truth.track[["x", "y"]].iloc[0]
    mouse = float(frame[int(round(y)), int(round(x))])
    floor = float(bg[int(round(y)), int(round(x))])
    assert 60 < np.median(bg[40:200, 40:280]) < 80
    assert 8 <= floor - mouse <= 18
    assert bg[15:20, 15:20].mean() < bg[115:125, 150:170].mean() - 5  # darker corners


def test_invalid_box_options_are_rejected():
    with pytest.raises(ValueError, match="partition"):
        SceneSpec(partition="glass")
    with pytest.raises(ValueError, match="chamber_floors"):
        SceneSpec(chamber_floors=("chips",))
    with pytest.raises(ValueError, match="chamber_walls"):
        SceneSpec(chamber_walls=("dark", "pink"))
    with pytest.raises(ValueError, match="wall_face"):
        SceneSpec(wall_face=0.5)
