"""End to end: `cpp-tracker track` on generated videos, compared with their ground truth.

Tolerances (from the issue): time in each chamber within 1 % of the video's duration of the
truth; median centroid error at most 3 px. The truth's chamber has no hysteresis, the
tracker's has, so the tracker lags at each crossing by the time the mouse needs to walk
`hysteresis_px`: a few frames per crossing, well inside 1 %.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cpp_tracker.cli import main

CASES = {
    "black_on_light": dict(mouse="dark", floor="light", seed=11),
    "white_on_dark": dict(mouse="light", floor="dark", seed=12),
    "dark_on_grey": dict(mouse="dark", floor="grey", seed=13),
    # seed 2 rests in a doorway a few px past the line before walking on: without
    # backdated crossings the tracker was 4.4 % of the duration off the truth here
    "doorway_rest": dict(mouse="dark", floor="light", seed=2),
    # seed 14 stops 2-4 px past a door line for 2.5 s and turns back: with time following
    # the hysteresis chamber (not the position) this was 8.7 % of the duration off
    "doorway_stop": dict(mouse="light", floor="grey", seed=14),
    # a high-contrast white mouse: a fixed 10-grey-level threshold kept the tail base and
    # pulled the centroid 2 px tailwards
    "white_on_dark_light_wall": dict(mouse="light", floor="dark", wall="light", seed=16),
}


def truth_times(truth, arena: str) -> dict[str, float]:
    t = truth.track[truth.track["arena"] == arena]
    dt = 1.0 / truth.spec.fps
    return (t.groupby("chamber").size() * dt).to_dict()


def run_track(video, config, out) -> tuple[int, pd.DataFrame, pd.DataFrame, dict]:
    code = main(["track", str(video), "--config", str(config), "--out", str(out), "--no-progress"])
    result = out / video.stem
    summary = pd.read_csv(result / "summary.csv")
    track = pd.read_parquet(result / "track.parquet")
    run = json.loads((result / "run.json").read_text())
    return code, summary, track, run


def check_against_truth(summary, track, truth, duration_s):
    for arena_cfg in truth.config["arenas"]:
        arena = arena_cfg["name"]
        expected = truth_times(truth, arena)
        got = summary[summary["arena"] == arena].set_index("chamber")["time_s"]
        for chamber in (c["name"] for c in arena_cfg["chambers"]):
            assert abs(got[chamber] - expected.get(chamber, 0.0)) <= 0.01 * duration_s, (
                arena, chamber, got[chamber], expected.get(chamber))
        mine = track[track["arena"] == arena].reset_index(drop=True)
        true = truth.track[truth.track["arena"] == arena].reset_index(drop=True)
        assert len(mine) == len(true)
        err = np.hypot(mine["x"] - true["x"], mine["y"] - true["y"])
        assert np.nanmedian(err) <= 3.0
        assert mine["detected"].mean() > 0.97


@pytest.mark.parametrize("case", list(CASES))
def test_two_chambers_match_truth(video_factory, tmp_path, case):
    video, truth, config = video_factory(case, duration_s=40.0, **CASES[case])
    code, summary, track, run = run_track(video, config, tmp_path)
    assert code == 0
    check_against_truth(summary, track, truth, truth.spec.duration_s)


def test_three_chambers_match_truth(video_factory, tmp_path):
    from cpp_tracker.synthetic import ArenaSpec

    video, truth, config = video_factory(
        "three", duration_s=40.0, seed=14, arenas=(ArenaSpec(n_chambers=3),)
    )
    code, summary, track, _ = run_track(video, config, tmp_path)
    assert code == 0
    assert set(summary["chamber"]) == {"paired", "neutral", "unpaired", "unknown"}
    check_against_truth(summary, track, truth, truth.spec.duration_s)


def test_outputs_are_complete_and_traceable(video_factory, tmp_path):
    video, truth, config = video_factory(
        "black_on_light", duration_s=40.0, **CASES["black_on_light"]
    )
    code, summary, track, run = run_track(video, config, tmp_path)
    result = tmp_path / video.stem
    assert sorted(p.name for p in result.iterdir()) == [
        "background.png", "occupancy.csv", "qc.png", "run.json", "summary.csv", "track.parquet"]
    # track: one row per decoded frame, documented columns
    assert list(track.columns) == [
        "frame", "time_s", "arena", "x", "y", "area_px", "detected", "n_blobs", "chamber",
        "light_gain", "position_chamber", "share_0", "share_1"]
    assert track.loc[track["detected"], ["share_0", "share_1"]].sum(axis=1).round(6).eq(1).all()
    assert track["frame"].tolist() == list(range(len(truth.track)))
    assert np.allclose(track["time_s"], truth.track["time_s"], atol=1e-3)
    assert track.loc[~track["detected"], ["x", "y"]].isna().all().all()
    # occupancy: rows sum to 1 s (last one to its length), totals equal the summary
    occ = pd.read_csv(result / "occupancy.csv")
    assert list(occ.columns) == ["arena", "second", "paired", "unpaired", "unknown",
                                 "qc_frames", "qc_undetected", "qc_multi_blob", "qc_jumps",
                                 "qc_area_outlier", "qc_flag"]
    sums = occ[["paired", "unpaired", "unknown"]].sum(axis=1)
    assert np.allclose(sums.iloc[:-1], 1.0, atol=1e-6)
    s = summary.set_index("chamber")
    assert occ["paired"].sum() == pytest.approx(s.loc["paired", "time_s"], abs=1e-4)
    # run.json: identity of video and config, frames, time base
    assert run["video"]["size_bytes"] == video.stat().st_size
    assert run["config"]["hash"] and run["config"]["resolved"]["arenas"][0]["name"] == "box1"
    assert run["time_base"]["frames_decoded"] == len(truth.track)
    assert run["time_base"]["timestamp_source"] == "container"
    assert run["time_base"]["measured_fps"] == pytest.approx(30.0, rel=1e-3)
    assert run["arenas"]["box1"]["frames_without_detection"] == int((~track["detected"]).sum())
    assert run["version"]
    assert not (result / ".partial").exists()


def test_unreadable_video_is_one_line_exit_1(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "arenas:\n- name: b\n  polygon: [[0,0],[10,0],[10,10],[0,10]]\n"
        "  chambers: [{name: a, point: [5, 5]}]\n"
    )
    code = main(["track", str(bad), "--config", str(cfg), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.mp4" in err and "cannot be opened" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_video(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "arenas:\n- name: b\n  polygon: [[0,0],[10,0],[10,10],[0,10]]\n"
        "  chambers: [{name: a, point: [5, 5]}]\n"
    )
    code = main(["track", str(tmp_path / "nope.mp4"), "--config", str(cfg), "--out", str(tmp_path)])
    assert code == 1
    assert "nope.mp4: file not found" in capsys.readouterr().err


def test_bad_config_exit_2_names_key(video_factory, tmp_path, capsys):
    video, truth, _ = video_factory("black_on_light", duration_s=40.0, **CASES["black_on_light"])
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("arenas:\n- name: box1\n  polygon: [[0,0],[10,0]]\n  chambers: []\n")
    code = main(["track", str(video), "--config", str(cfg), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "arenas[0].polygon: needs at least 3 points" in err
    assert "Traceback" not in err


def test_geometry_outside_the_frame_exit_2(video_factory, tmp_path, capsys):
    import yaml

    video, truth, _ = video_factory("black_on_light", duration_s=40.0, **CASES["black_on_light"])
    cfg = dict(truth.config)
    arena = dict(cfg["arenas"][0])
    arena["polygon"] = [[p[0] + 100, p[1]] for p in arena["polygon"]]
    arena["doors"] = [{"name": "door1", "line": [[260, 10], [260, 230]]}]
    arena["chambers"] = [
        {"name": "paired", "point": [200, 120]},
        {"name": "unpaired", "point": [350, 120]},
    ]
    path = tmp_path / "shifted.yaml"
    path.write_text(yaml.safe_dump({"arenas": [arena]}))
    code = main(["track", str(video), "--config", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "arenas[0].polygon[1]" in err and "outside the video frame" in err


def test_a_config_drawn_on_another_frame_size_exit_2(video_factory, tmp_path, capsys):
    """A config drawn on 320x240 (frame_size) fits inside a 640x480 frame, so the
    out-of-frame checks pass it; frame_size refuses it in one sentence before any frame is
    decoded (it ran with 89.5 % unknown time and exit 0)."""
    import yaml

    _, truth, _ = video_factory("black_on_light", duration_s=40.0, **CASES["black_on_light"])
    big, _, _ = video_factory("frame_640x480", width=640, height=480, duration_s=2.0, seed=17)
    path = tmp_path / "box.yaml"
    path.write_text(yaml.safe_dump(dict(truth.config, frame_size=[320, 240]), sort_keys=False))
    code = main(["track", str(big), "--config", str(path), "--out", str(tmp_path / "o"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"error: {path}: drawn on a 320x240 frame (frame_size), but {big} is 640x480; redraw "
        "it for this camera (cpp-tracker init / draw), or use a template in cm (units: cm) "
        "with this camera's corners_px\n"
    )
    assert not (tmp_path / "o" / big.stem).exists()


def test_out_that_is_a_file_is_one_line_exit_1(video_factory, tmp_path, capsys):
    """--out naming a file (or a folder inside a file, or a folder holding a file where the
    result's folder goes): one sentence naming the file, exit 1, nothing written."""
    video, _, config = video_factory("black_on_light", duration_s=40.0,
                                     **CASES["black_on_light"])
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    for out in (notes, notes / "results"):
        code = main(["track", str(video), "--config", str(config), "--out", str(out),
                     "--no-progress"])
        err = capsys.readouterr().err
        assert code == 1
        assert err == f"error: {notes}: is a file, not a folder; give a folder for the results\n"
    assert notes.read_text() == "not a folder"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / video.stem).write_text("")
    code = main(["track", str(video), "--config", str(config), "--out", str(tmp_path / "out"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"error: {tmp_path / 'out' / video.stem}: is a file, but the results of {video.stem} "
        "go into a folder of this name; move the file away or give another folder for the "
        "results\n"
    )


def _with_fast_reader(config, folder) -> object:
    import yaml

    raw = yaml.safe_load(config.read_text())
    raw["video"] = {**(raw.get("video") or {}), "reader": "pyav", "fast_decode": True}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fast.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_fast_reader_matches_truth_and_stays_close_to_opencv(video_factory, tmp_path, case):
    """video.reader: pyav with fast_decode (no deblocking): the same accuracy against the
    truth, the same frames detected, and centroids close to OpenCV's normal decode: median
    shift 0 - 0.04 px, 99 % of frames within 0.26 px, the worst frame 0.48 px on these six
    320x240 cases (a small mouse: an edge pixel more or less moves its centroid most)."""
    video, truth, config = video_factory(case, duration_s=40.0, **CASES[case])
    code, _, normal, _ = run_track(video, config, tmp_path / "opencv")
    assert code == 0
    fast_config = _with_fast_reader(config, tmp_path)
    code, summary, fast, run = run_track(video, fast_config, tmp_path / "pyav")
    assert code == 0
    assert run["reader"]["decoder"] == "pyav"
    assert run["reader"]["decoder_options"] == {"skip_loop_filter": "all"}
    check_against_truth(summary, fast, truth, truth.spec.duration_s)
    assert fast["frame"].equals(normal["frame"])
    assert fast["detected"].equals(normal["detected"])
    both = normal["detected"].to_numpy()
    shift = np.hypot(fast["x"] - normal["x"], fast["y"] - normal["y"]).to_numpy()[both]
    assert np.median(shift) <= 0.05 and np.percentile(shift, 99) <= 0.3
    assert shift.max() <= 0.6, (case, shift.max())
    # and not farther from the truth
    true = truth.track.reset_index(drop=True)
    err_normal = np.hypot(normal["x"] - true["x"], normal["y"] - true["y"])[both]
    err_fast = np.hypot(fast["x"] - true["x"], fast["y"] - true["y"])[both]
    assert np.median(err_fast) <= np.median(err_normal) + 0.02
