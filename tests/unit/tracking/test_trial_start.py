"""Finding the trial's start in frames: empty box + one mouse, no hand, doors open."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from cpp_tracker.config.settings import parse_config
from cpp_tracker.results.record import TrialStartRecord
from cpp_tracker.runs.pipeline import trial_doubts
from cpp_tracker.synthetic import ArenaSpec, SceneSpec, iter_frames, make_scene
from cpp_tracker.tracking.tracker import make_detector
from cpp_tracker.tracking.trial_start import arena_looks, find_trial_start, look_at
from cpp_tracker.video.reader import FrameChunk


def _chunks(spec: SceneSpec, size: int = 32):
    """The scene's frames (not encoded) as the reader gives them."""
    times, frames = zip(*iter_frames(spec), strict=True)
    times, frames = np.array(times), np.stack(frames)
    for a in range(0, len(times), size):
        yield FrameChunk(np.arange(a, min(a + size, len(times))), times[a:a + size],
                         frames[a:a + size])


def _looks(spec: SceneSpec):
    """The empty box and the tracker's calibration from frames after the start (as
    ``detect_trial_start`` samples them), the looks made from them."""
    truth = make_scene(spec)
    config = parse_config(truth.config)
    frames = [f for t, f in iter_frames(spec) if t > spec.duration_s / 2][::10]
    samples = np.stack(frames)
    detectors = [make_detector(a, config.detection, truth.background, samples)
                 for a in config.arenas]
    return truth, arena_looks(config, truth.background, detectors)


@pytest.mark.parametrize("seed, chambers, early_doors", [(10, 2, False), (11, 3, True),
                                                          (12, 3, False)])
def test_the_start_is_found_within_a_tenth_of_a_second(seed, chambers, early_doors):
    spec = SceneSpec(duration_s=24.0, fps=15.0, seed=seed, experimenter=True, lid_gain=0.9,
                     arenas=(ArenaSpec(n_chambers=chambers),),
                     doors_open_s=1.0 if early_doors else None)
    truth, looks = _looks(spec)
    found = find_trial_start(_chunks(spec), looks, settle_s=1.0, search_s=600, stride=2)
    assert found.found
    assert found.start_s == pytest.approx(truth.trial_start_s, abs=0.1)
    assert found.hand_last_seen_s is not None and found.hand_last_seen_s < found.start_s
    if not early_doors:  # the doors decided it, and the reason says so
        assert "a door last closed at" in found.reason
        assert found.door_last_closed_s == pytest.approx(truth.trial_start_s, abs=0.2)
    assert f"box = empty image + one mouse from {found.start_s:.1f} s" in found.reason


def test_in_an_open_field_the_hand_leaving_is_the_start():
    spec = SceneSpec(duration_s=16.0, fps=10.0, seed=16, experimenter=True,
                     arenas=(ArenaSpec(n_chambers=1),))
    truth, looks = _looks(spec)
    found = find_trial_start(_chunks(spec), looks, settle_s=1.0, search_s=600)
    assert found.start_s == pytest.approx(truth.trial_start_s, abs=0.1)
    assert "doors open from the first frame" in found.reason


def test_each_frame_is_judged_by_hand_doors_and_mouse():
    spec = SceneSpec(duration_s=24.0, fps=10.0, seed=13, experimenter=True,
                     arenas=(ArenaSpec(n_chambers=2),))
    truth, looks = _looks(spec)
    seen = {round(t, 1): look_at(f, looks[0]) for t, f in iter_frames(spec)}
    start = truth.trial_start_s
    assert not seen[0.0].mouse and seen[0.0].doors_closed  # empty box, doors closed
    assert any(s.hand for t, s in seen.items() if t < start)
    assert all(s.ok for t, s in seen.items() if t > start + 0.1)
    assert not any(s.ok for t, s in seen.items() if t < start - 0.1)


def test_without_an_experimenter_the_start_is_the_first_frame():
    spec = SceneSpec(duration_s=12.0, fps=10.0, seed=14)
    _, looks = _looks(spec)
    found = find_trial_start(_chunks(spec), looks, settle_s=1.0, search_s=600)
    assert found.found and found.start_s == pytest.approx(0.0, abs=0.15)
    assert "no hand seen" in found.reason


def test_no_start_within_the_search_limit_is_said_in_one_sentence():
    spec = SceneSpec(duration_s=16.0, fps=10.0, seed=15, experimenter=True,
                     doors_open_s=12.0)
    _, looks = _looks(spec)
    found = find_trial_start(_chunks(spec), looks, settle_s=1.0, search_s=8.0)
    assert not found.found and found.start_s == 0.0
    assert found.reason.startswith("no trial start found in the first 8 s:")
    assert "a closed door until" in found.reason
    assert "give trial.start in seconds" in found.reason
    assert "\n" not in found.reason


def test_a_masked_cable_near_the_wall_is_no_arm_across_the_outline():
    """The zoo found it: a swinging cable in a corner, masked in the config, was taken as
    an arm reaching in until the video's end, so no start was found."""
    spec = SceneSpec(duration_s=24.0, fps=10.0, seed=17, experimenter=True,
                     distractor="cable")
    truth = make_scene(spec)
    raw = dict(truth.config)
    raw["arenas"] = [dict(raw["arenas"][0], masks=[truth.distractor_polygon])]
    config = parse_config(raw)
    samples = np.stack([f for t, f in iter_frames(spec) if t > spec.duration_s / 2][::10])
    detectors = [make_detector(a, config.detection, truth.background, samples)
                 for a in config.arenas]
    looks = arena_looks(config, truth.background, detectors)
    found = find_trial_start(_chunks(spec), looks, settle_s=1.0, search_s=600, stride=2)
    assert found.found, found.reason
    assert found.start_s == pytest.approx(truth.trial_start_s, abs=0.2)


def _with_patch_until(spec: SceneSpec, until_s: float, box: tuple[int, int, int, int]):
    """The scene's chunks with a patch of floor changed (bedding before a kick moved it
    where the empty-box image has it) in every frame up to ``until_s``."""
    x0, y0, x1, y1 = box
    for chunk in _chunks(spec):
        frames = chunk.frames.copy()
        early = chunk.time_s <= until_s
        frames[early, y0:y1, x0:x1] = np.clip(
            frames[early, y0:y1, x0:x1].astype(int) + 60, 0, 255).astype(np.uint8)
        yield FrameChunk(chunk.index, chunk.time_s, frames)


def test_a_large_change_inside_after_the_arm_left_makes_the_start_doubtful():
    """Zoo held-out 10107: bedding that differed from the empty-box image looked like a
    hand for 9 s after the last arm, so the start came late; the run must say so."""
    spec = SceneSpec(duration_s=24.0, fps=10.0, seed=18, experimenter=True,
                     arenas=(ArenaSpec(n_chambers=2),))
    truth, looks = _looks(spec)
    clean = find_trial_start(_chunks(spec), looks, settle_s=1.0, search_s=600)
    assert clean.arm_last_seen_s == clean.hand_last_seen_s  # a hand comes with its arm
    assert trial_doubts(_record(clean)) == ()
    # a patch of five mouse areas in a corner of the box, there until 4 s after the start
    x0, y0, x1, y1 = looks[0].crop
    side = int(np.sqrt(5 * looks[0].mouse_area_px))
    inner = np.argwhere(looks[0].inside)
    top, left = inner.min(axis=0) + 4
    late = truth.trial_start_s + 4.0
    moved = find_trial_start(_with_patch_until(
        spec, late, (x0 + left, y0 + top, x0 + left + side, y0 + top + side)),
        looks, settle_s=1.0, search_s=600)
    assert late - 0.1 <= moved.start_s <= late + 1.5  # not before the patch has gone
    assert moved.arm_last_seen_s == pytest.approx(clean.arm_last_seen_s, abs=0.2)
    (doubt,) = trial_doubts(_record(moved))
    assert doubt.startswith("trial start uncertain (trial.start: auto): no arm reached in "
                            f"after {moved.arm_last_seen_s:.1f} s")
    assert f"counted from {moved.start_s:.1f} s" in doubt


def _record(found) -> TrialStartRecord:
    return TrialStartRecord(requested="auto", start_s=found.start_s, found=found.found,
                            reason=found.reason, hand_last_seen_s=found.hand_last_seen_s,
                            arm_last_seen_s=found.arm_last_seen_s)



def test_a_light_step_is_no_arm_and_noise_on_a_door_line_is_no_closed_door(tmp_path):
    """Zoo held-out 10109 (a black mouse on a dark floor, MPEG-4, a light step, the hand at
    the start), at 320x240: the light step made the band around the box (light walls) look
    like an arm, and specks of noise on a door line added up to a closed door; the start
    was found 9.7 s late. Now within a fifth of a second."""
    from cpp_tracker.config.settings import load_config
    from cpp_tracker.synthetic import generate_video
    from cpp_tracker.synthetic.scenes import scaled
    from cpp_tracker.synthetic.zoo import held_out_scenes
    from cpp_tracker.tracking.trial_start import detect_trial_start
    from cpp_tracker.video.reader import probe_video

    (zoo,) = [z for z in held_out_scenes(16, skip=100) if z.seed == 10109]
    spec = scaled(dataclasses.replace(zoo.spec, duration_s=60.0), 0.25)
    truth = generate_video(tmp_path / "v.mp4", spec)
    raw = dict(truth.config, trial={"start": "auto"})
    raw["arenas"] = [dict(raw["arenas"][0], masks=[truth.distractor_polygon])]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    found = detect_trial_start([probe_video(tmp_path / "v.mp4")],
                               load_config(tmp_path / "c.yaml"))
    assert found.found, found.reason
    assert found.start_s == pytest.approx(truth.trial_start_s, abs=0.2)
    assert found.arm_last_seen_s < truth.trial_start_s
