"""Overlay videos and review clips."""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from cpp_tracker.cli import main
from cpp_tracker.config.settings import config_to_dict, parse_config
from cpp_tracker.results.outputs import write_csv, write_json, write_parquet
from cpp_tracker.results.stored import load_result
from cpp_tracker.runs.pipeline import analyse_track
from cpp_tracker.visual.review import (
    _blob_contour,
    _frame_gain,
    _TrackLookup,
    detectors_for_result,
    door_close_calls,
    iter_frames,
    render_overlay,
    review_moments,
)
from tests.results_helpers import tracked


@pytest.fixture(scope="module")
def result(video_factory, tmp_path_factory):
    return tracked(video_factory, tmp_path_factory)


def _frames(path) -> tuple[int, str, tuple[int, int]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, s.codec_context.name, (s.codec_context.width, s.codec_context.height)


def test_overlay_has_the_right_frame_count(result, tmp_path):
    video, truth, result_dir = result
    t = truth.track["time_s"].to_numpy()
    expected = int(((t >= 2.0) & (t < 5.0)).sum())
    info = render_overlay(video, tmp_path / "o.mp4", result=load_result(result_dir),
                          start_s=2.0, end_s=5.0)
    n, codec, size = _frames(tmp_path / "o.mp4")
    assert n == info["frames"] == expected == 90
    assert codec == "h264"
    assert size == (640, 480)  # 320x240 enlarged for legible text
    assert info["start_s"] == pytest.approx(2.0, abs=1e-6)

    info = render_overlay(video, tmp_path / "fast.mp4", result=load_result(result_dir),
                          start_s=2.0, end_s=5.0, speed=4)
    assert _frames(tmp_path / "fast.mp4")[0] == info["frames"] == math.ceil(expected / 4)


def test_overlay_draws_the_centroid_in_its_chamber_colour(result, tmp_path):
    """The frame at the truth position shows the chamber colour there (the centroid dot)."""
    video, truth, result_dir = result
    render_overlay(video, tmp_path / "o.mp4", result=load_result(result_dir), start_s=6.0,
                   end_s=6.1)
    with av.open(str(tmp_path / "o.mp4")) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    row = truth.track.iloc[int(np.argmin(np.abs(truth.track["time_s"] - 6.0)))]
    colors = {"paired": (0xE6, 0x9F, 0x00), "unpaired": (0x56, 0xB4, 0xE9)}
    want = np.array(colors[row["chamber"]], dtype=float)
    x, y = int(round(row["x"] * 2)), int(round(row["y"] * 2))
    patch = frame[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3)
    assert np.linalg.norm(patch - want, axis=1).min() < 40


def test_overlay_from_config_alone(result, tmp_path, capsys):
    video, _, _ = result
    config = video.with_suffix(".yaml")
    assert main(["overlay", str(video), "--out", str(tmp_path / "c.mp4"), "--config",
                 str(config), "--start", "1", "--end", "2"]) == 0
    assert _frames(tmp_path / "c.mp4")[0] == 30
    assert "30 frames" in capsys.readouterr().out


def test_overlay_errors(result, tmp_path, capsys):
    video, _, result_dir = result
    out = str(tmp_path / "x.mp4")
    assert main(["overlay", str(video), "--out", out, "--results", str(result_dir),
                 "--start", "5", "--end", "3"]) == 2
    assert "--end: must be later than --start (5.0 s), got 3.0" in capsys.readouterr().err
    assert main(["overlay", str(video), "--out", out, "--results", str(result_dir),
                 "--start", "500"]) == 1
    assert "no frame after 500 s" in capsys.readouterr().err
    assert main(["overlay", str(video), "--out", out, "--results", str(tmp_path)]) == 1
    assert "has no run.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["overlay", str(video), "--out", out])  # neither --results nor --config


# ------------------------------------------------------------- outline after a light step
@pytest.fixture(scope="module")
def light_step(video_factory, tmp_path_factory):
    """The 20-s video with the light dropping to 0.6 at 10 s, tracked (light followed)."""
    return tracked(video_factory, tmp_path_factory, name="light_step",
                   light_steps=((10.0, 0.6),))


def test_blob_outline_follows_a_step_in_the_lighting(light_step):
    """After the light drops, the outline is the mouse's blob (as tracked), in every frame:
    not the whole floor, which without the frame's gain is darker than the background by
    more than the threshold (the outline then ran round the arena, 150x the mouse)."""
    video, _, result_dir = light_step
    result = load_result(result_dir)
    (detector,) = detectors_for_result(result, result.background())
    lookup = _TrackLookup(result)
    track = result.track(["time_s", "area_px", "light_gain"])
    times = track["time_s"].to_numpy()
    on_mouse, ratios, gains = 0, [], []
    for t, bgr in iter_frames(video, 10.0, 20.0):
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        x, y, _, stored = lookup(0, t, gray)
        assert np.isfinite(x)
        gains.append(stored)
        # the detector's own measurement (results without light_gain) agrees with it
        assert _frame_gain(detector, gray) == pytest.approx(stored, abs=0.03)
        contour = _blob_contour(detector, gray, x, y, _frame_gain(detector, gray, stored))
        assert contour is not None
        inside = cv2.pointPolygonTest(contour.astype(np.float32), (x, y), False) >= 0
        filled = np.zeros_like(gray)
        cv2.drawContours(filled, [contour.astype(np.int32)], -1, 255, -1)
        area = track["area_px"].iloc[int(np.argmin(np.abs(times - t)))]
        ratio = (filled > 0).sum() / area
        ratios.append(ratio)
        on_mouse += bool(inside and 0.9 < ratio < 1.25)
    assert len(gains) == 300
    assert 0.7 < np.median(gains) < 0.85  # the step is there: the floor ~22 % darker
    assert on_mouse == 300, (min(ratios), max(ratios))  # was 0 of 300 (ratio ~157)


def test_overlay_after_a_light_step_outlines_the_mouse_not_the_arena(light_step, tmp_path):
    """In the overlay at 12 s (after the step), the chamber-coloured outline is around the
    mouse: nothing of it on the arena's edge (was some 5300 coloured pixels there)."""
    video, _, result_dir = light_step
    result = load_result(result_dir)
    info = render_overlay(video, tmp_path / "o.mp4", result=result, start_s=12.0, end_s=12.2)
    track = result.track(["time_s", "x", "y"])
    polygon = np.asarray(result.config.arenas[0].polygon, dtype=float) * 2  # enlarged x2
    colours = [(0xE6, 0x9F, 0x00), (0x56, 0xB4, 0xE9)]  # paired, unpaired (RGB)
    with av.open(str(tmp_path / "o.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24").astype(float) for f in c.decode(video=0)]
    assert len(frames) == info["frames"] == 6
    for k, frame in enumerate(frames):
        row = track.iloc[int(np.argmin(np.abs(track["time_s"] - (12.0 + k / 30))))]
        coloured = np.zeros(frame.shape[:2], bool)
        for colour in colours:
            coloured |= np.linalg.norm(frame - np.array(colour, float), axis=2) < 60
        edge = np.zeros(frame.shape[:2], np.uint8)
        cv2.polylines(edge, [polygon.round().astype(np.int32)], True, 1, 7)
        yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
        dist = np.hypot(xx - 2 * row["x"], yy - 2 * row["y"])
        assert (coloured & (edge > 0) & (dist > 60)).sum() == 0
        # the outline round the mouse, outside the centroid's dot (radius 8 px)
        assert (coloured & (dist > 12) & (dist < 60)).sum() > 200


# ---------------------------------------------------------------- door calls, by hand
def _hand_result(tmp_path, xs, ys, hysteresis_px=6.0, shares_right=None):
    """A result folder for a hand-made track in a 2-chamber box, door at x = 100 (with
    ``shares_right``, the blob's share in 'right' per frame, by body_fraction 0.7 / 0.3)."""
    chambers: dict = {"hysteresis_px": hysteresis_px}
    if shares_right is not None:
        chambers.update(rule="body_fraction", enter_fraction=0.7, exit_fraction=0.3)
    config = parse_config({
        "arenas": [{
            "name": "box",
            "polygon": [[0, 0], [200, 0], [200, 100], [0, 100]],
            "doors": [{"name": "d", "line": [[100, 0], [100, 100]]}],
            "chambers": [{"name": "left", "point": [50, 50]},
                         {"name": "right", "point": [150, 50]}],
        }],
        "chambers": chambers,
    })
    n = len(xs)
    track = pd.DataFrame({
        "frame": np.arange(n), "time_s": np.arange(n) / 10.0, "arena": "box",
        "x": np.asarray(xs, float), "y": np.asarray(ys, float),
        # a blob of 2500 px: at 1 cm = sqrt(2500 / 20) px the hand-made steps stay below
        # the QC's 100 cm/s, so only the stretch without detection is flagged
        "area_px": 2500.0, "detected": np.isfinite(xs), "n_blobs": np.int16(1),
    })
    if shares_right is not None:
        track["share_0"] = 1.0 - np.asarray(shares_right, float)
        track["share_1"] = np.asarray(shares_right, float)
    analysis = analyse_track(track, config, video_label="hand.mp4")
    track["chamber"] = analysis.chamber.astype(str)
    folder = tmp_path / "hand"
    write_parquet(folder / "track.parquet", track)
    write_csv(folder / "occupancy.csv", analysis.occupancy)
    write_csv(folder / "summary.csv", analysis.summary)
    write_json(folder / "run.json", {
        "video": {"path": "hand.mp4"},
        "config": {"resolved": config_to_dict(config)},
        "time_base": {"duration_s": n / 10.0, "median_interval_s": 0.1},
    })
    return load_result(folder)


def test_door_close_calls_measure_the_margin(tmp_path):
    # left, then 4 px past the door and back (near miss), then 7 px past (a change),
    # then deep into the right chamber and back across to the left
    xs = [50] * 10 + [104] * 5 + [50] * 10 + [107] * 5 + [150] * 10 + [50] * 10
    result = _hand_result(tmp_path, xs, [50] * len(xs))
    calls = door_close_calls(result)
    assert list(calls["kind"]) == ["near miss", "change", "change"]
    near, change, back = calls.itertuples(index=False)
    assert (near.from_chamber, near.to_chamber) == ("left", "right")
    assert near.depth_px == pytest.approx(4.0) and near.excess_px == pytest.approx(-2.0)
    assert near.time_s == pytest.approx(1.0)
    assert change.depth_px == pytest.approx(50.0)  # deepest point of the new bout: x = 150
    assert (back.from_chamber, back.to_chamber) == ("right", "left")
    assert back.depth_px == pytest.approx(50.0)

    # the change that only just counted: 7 px into the right chamber, then back
    xs = [50] * 10 + [107] * 5 + [50] * 10
    calls = door_close_calls(_hand_result(tmp_path, xs, [50] * len(xs)))
    first = calls.iloc[0]
    assert first["kind"] == "change" and first["excess_px"] == pytest.approx(1.0)


def test_door_close_calls_by_body_fraction_are_in_shares_of_the_mouse(tmp_path):
    # left; 60 % across and back (near miss); 75 % across, then all in (a change); back
    right = [0.0] * 10 + [0.6] * 5 + [0.0] * 10 + [0.75] * 5 + [1.0] * 10 + [0.0] * 10
    xs = [50.0 + 100 * r for r in right]
    result = _hand_result(tmp_path, xs, [50.0] * len(xs), shares_right=right)
    calls = door_close_calls(result)
    assert list(calls["kind"]) == ["near miss", "change", "change"]
    assert "depth_px" not in calls
    near, change, back = calls.itertuples(index=False)
    assert (near.from_chamber, near.to_chamber, near.time_s) == ("left", "right", 1.0)
    assert near.depth_share == pytest.approx(0.6) and near.excess_share == pytest.approx(-0.1)
    assert change.time_s == pytest.approx(2.5) and change.depth_share == pytest.approx(1.0)
    assert (back.from_chamber, back.to_chamber) == ("right", "left")
    moments = review_moments(result, max_clips=4, pad_s=1.0)
    assert any("near miss left->right at 1.0 s: did not change, 60 % of the mouse in right "
               "(-10 % from enter_fraction)" in m.detail for m in moments)


def test_review_moments_take_flagged_seconds_and_close_calls(tmp_path):
    xs = [50.0] * 30 + [104.0] * 5 + [50.0] * 30 + [np.nan] * 15 + [50.0] * 30 + [150.0] * 30
    result = _hand_result(tmp_path, xs, [50.0] * len(xs))
    moments = review_moments(result, max_clips=4, pad_s=1.0)
    reasons = [m.reason for m in moments]
    assert "flagged" in reasons and "door" in reasons
    flagged = next(m for m in moments if m.reason == "flagged")
    assert flagged.start_s == pytest.approx(5.0) and flagged.end_s == pytest.approx(9.0)
    assert "no detection" in flagged.detail
    near = next(m for m in moments if "near miss" in m.detail)
    assert near.start_s <= 3.0 <= near.end_s
    assert [m.start_s for m in moments] == sorted(m.start_s for m in moments)


def test_review_command_writes_clips_and_index(result, capsys):
    video, _, result_dir = result
    assert main(["review", str(result_dir), "--max-clips", "2"]) == 0
    index = pd.read_csv(result_dir / "review" / "clips.csv")
    assert 1 <= len(index) <= 2
    for row in index.itertuples(index=False):
        n, codec, _ = _frames(result_dir / "review" / row.file)
        assert codec == "h264" and n > 0
    out = capsys.readouterr().out
    assert f"{len(index)} clip(s)" in out

    moved = Path(str(video) + ".moved")
    video.rename(moved)  # the recording was moved after tracking
    try:
        assert main(["review", str(result_dir), "--max-clips", "1"]) == 1
        assert "is not there any more; pass the video's new path with --video" in \
            capsys.readouterr().err
        assert main(["review", str(result_dir), "--max-clips", "1", "--video",
                     str(moved)]) == 0
    finally:
        moved.rename(video)
    assert main(["review", str(result_dir), "--max-clips", "0"]) == 2
    assert "--max-clips: must be at least 1" in capsys.readouterr().err


def test_out_that_is_a_file_or_a_folder_is_one_line_exit_1(result, tmp_path, capsys):
    import shutil

    video, _, result_dir = result
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    base = ["overlay", str(video), "--results", str(result_dir), "--end", "1"]
    assert main([*base, "--out", str(notes / "o.mp4")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {notes}: is a file, not a folder; give a folder for the overlay video\n"
    assert main([*base, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path}: is a folder; give a file name for the overlay video, "
                   f"e.g. {tmp_path / 'overlay.mp4'}\n")
    # review's clips go into <result>/review: a file of that name is in the way
    copy = tmp_path / "copy" / result_dir.name
    shutil.copytree(result_dir, copy, ignore=shutil.ignore_patterns("review"))
    (copy / "review").write_text("")
    assert main(["review", str(copy), "--max-clips", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {copy / 'review'}: is a file, but review writes its clips into a "
                   "folder of this name; move the file away and run review again\n")
    assert notes.read_text() == "not a folder"
