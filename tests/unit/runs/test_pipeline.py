"""Pipeline: resuming an interrupted run, time windows, and when results are up to date."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest
import yaml

from cpp_tracker.cli import main
from cpp_tracker.config.settings import load_config, parse_config
from cpp_tracker.errors import ConfigError, VideoError
from cpp_tracker.results.outputs import write_json
from cpp_tracker.results.record import RunRecord
from cpp_tracker.runs import pipeline
from cpp_tracker.runs.pipeline import result_status, run_key, track_video


@pytest.fixture(scope="module")
def clip(video_factory, tmp_path_factory):
    """A 20 s video and its config with a checkpoint every 2 s of video."""
    video, truth, config_path = video_factory("batch_a", duration_s=20.0, seed=21)
    raw = dict(truth.config, video={"checkpoint_s": 2})
    path = tmp_path_factory.mktemp("cfg") / "box.yaml"
    path.write_text(yaml.safe_dump(raw))
    return video, truth, path


@pytest.fixture(scope="module")
def fresh(clip, tmp_path_factory):
    """An uninterrupted run of the clip."""
    video, truth, config_path = clip
    out = tmp_path_factory.mktemp("fresh")
    return track_video(video, load_config(config_path), out, progress=False)


def interrupt_after(monkeypatch, n_chunks: int) -> None:
    """Make tracking stop like a killed process after ``n_chunks`` chunks."""
    real = pipeline.detect_chunk
    calls = {"n": 0}

    def detect(frames, detector):
        calls["n"] += 1
        if calls["n"] > n_chunks:
            raise KeyboardInterrupt
        return real(frames, detector)

    monkeypatch.setattr(pipeline, "detect_chunk", detect)


def interrupted_run(monkeypatch, video, config, out, n_chunks: int = 5) -> tuple:
    """Track ``video`` until it is stopped after ``n_chunks`` chunks; the ``.partial``
    folder it leaves and its checkpoint."""
    interrupt_after(monkeypatch, n_chunks)
    with pytest.raises(KeyboardInterrupt):
        track_video(video, config, out, progress=False)
    monkeypatch.undo()
    partial = out / video.stem / ".partial"
    return partial, json.loads((partial / "checkpoint.json").read_text())


def assert_same_results(a, b):
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "track.parquet"), pd.read_parquet(b / "track.parquet")
    )
    for name in ("summary.csv", "occupancy.csv", "background.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_interrupted_track_resumes_and_equals_an_uninterrupted_run(
    clip, fresh, tmp_path, monkeypatch, capsys
):
    video, truth, config_path = clip
    partial, state = interrupted_run(monkeypatch, video, load_config(config_path), tmp_path)
    result_dir = tmp_path / video.stem
    assert state["parts"] >= 2 and not (result_dir / "run.json").exists()

    code = main(["track", str(video), "--config", str(config_path), "--out", str(tmp_path),
                 "--no-progress"])
    assert code == 0
    resumed_at = state["position"]["time_s"]
    assert f"continued an interrupted run from {resumed_at:.1f} s" in capsys.readouterr().out
    run = json.loads((result_dir / "run.json").read_text())
    assert run["resume"]["resumed"] and run["resume"]["seek_confirmed"]
    assert run["resume"]["attempts"] == 2
    assert run["time_base"]["frames_decoded"] == fresh.record.time_base.frames_decoded
    # the continued run decoded from (about) the checkpoint on, not from the start
    this_run = run["time_base"]["frames_decoded_this_run"]
    done_before = state["position"]["frame"] + 1
    assert done_before > 0
    assert this_run < fresh.record.time_base.frames_decoded_this_run - done_before + 10
    assert not partial.exists()
    assert_same_results(result_dir, fresh.result_dir)


def test_checkpoint_of_another_config_is_not_used(clip, fresh, tmp_path, monkeypatch):
    video, truth, config_path = clip
    raw = yaml.safe_load(config_path.read_text())
    other = parse_config(dict(raw, chambers={"hysteresis_px": 3}))
    interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        track_video(video, other, tmp_path, progress=False)
    monkeypatch.undo()
    result = track_video(video, load_config(config_path), tmp_path, progress=False)
    assert result.record.resume.resumed is False
    assert result.warnings[0] == (
        "an earlier interrupted run could not be continued (the checkpoint does not match: "
        "the config changed); tracked from the beginning"
    )
    assert_same_results(result.result_dir, fresh.result_dir)


def test_checkpoint_with_a_part_file_gone_is_not_used(clip, fresh, tmp_path, monkeypatch):
    """A part file deleted under an interrupted run (its frames would count as unknown) is
    noticed even when a later part takes its place in the count."""
    video, truth, config_path = clip
    config = load_config(config_path)
    partial, state = interrupted_run(monkeypatch, video, config, tmp_path)
    assert state["parts"] >= 2
    first = partial / "part-000001.parquet"
    first.rename(partial / f"part-{state['parts'] + 1:06d}.parquet")  # same count, a gap
    result = track_video(video, config, tmp_path, progress=False)
    assert result.record.resume.resumed is False
    assert result.warnings[0] == (
        "an earlier interrupted run could not be continued (part files of the checkpoint "
        "are missing); tracked from the beginning"
    )
    assert_same_results(result.result_dir, fresh.result_dir)


def test_checkpoint_whose_detectors_name_a_module_gone_is_not_used(
    clip, fresh, tmp_path, monkeypatch
):
    """The detectors are pickled by module path: a checkpoint written before a module moved
    (or a class was renamed) starts the run again instead of failing."""
    video, truth, config_path = clip
    config = load_config(config_path)
    partial, state = interrupted_run(monkeypatch, video, config, tmp_path)
    (partial / pipeline.DETECTORS_FILE).write_bytes(b"ccpp_tracker.gone\nArenaDetector\n.")
    result = track_video(video, config, tmp_path, progress=False)
    assert result.record.resume.resumed is False
    assert result.warnings[0] == (
        "an earlier interrupted run could not be continued (the checkpoint cannot be read "
        "(No module named 'cpp_tracker.gone')); tracked from the beginning"
    )
    assert_same_results(result.result_dir, fresh.result_dir)


def test_time_window_counts_only_its_frames(clip, fresh, tmp_path):
    video, truth, config_path = clip
    result = track_video(
        video, load_config(config_path), tmp_path, start_s=5.0, end_s=15.0, progress=False
    )
    track = pd.read_parquet(result.result_dir / "track.parquet")
    fps = truth.spec.fps
    assert track["frame"].iloc[0] == round(5.0 * fps)
    assert track["frame"].iloc[-1] == round(15.0 * fps) - 1
    assert track["time_s"].iloc[0] == pytest.approx(0.0, abs=1e-6)  # 0 s = start_s
    assert result.record.time_base.duration_s == pytest.approx(10.0, abs=1e-6)
    assert result.record.window.start_s == 5.0
    # the frames inside the window get the chambers the whole-video run gave them (the
    # background, sampled inside the window only, differs a little: allow 2 frames)
    whole = pd.read_parquet(fresh.result_dir / "track.parquet")
    inside = whole[(whole["time_s"] >= 5.0) & (whole["time_s"] < 15.0)]
    assert list(inside["frame"]) == list(track["frame"])
    expected = inside.groupby("chamber").size() / fps
    got = result.summary.set_index("chamber")["time_s"]
    for chamber, seconds in expected.items():
        assert abs(got[chamber] - seconds) <= 2 / fps, (chamber, got[chamber], seconds)


def test_bad_windows_are_explained(clip, tmp_path):
    video, truth, config_path = clip
    config = load_config(config_path)
    with pytest.raises(ConfigError) as e:
        track_video(video, config, tmp_path, start_s=10, end_s=5, progress=False)
    assert str(e.value) == "end_s: (5 s) must be later than start_s (10 s)"
    with pytest.raises(VideoError) as e:
        track_video(video, config, tmp_path, start_s=100, progress=False)
    assert str(e.value) == (
        f"{video}: no frame in the window from 100 s to the end; the recording is 20.0 s "
        "long: check start_s and end_s"
    )


def test_result_status_says_why_results_are_out_of_date(clip, tmp_path):
    video, truth, config_path = clip
    config = load_config(config_path)
    copy = tmp_path / "copy.mp4"
    shutil.copy2(video, copy)
    result_dir = tmp_path / "out" / "copy"
    result_dir.mkdir(parents=True)
    assert result_status(result_dir, run_key([copy], config)) == (False, "no results yet")
    for name in ("track.parquet", "summary.csv"):
        (result_dir / name).write_bytes(b"")
    write_json(result_dir / "run.json", {
        "run_key": run_key([copy], config),
        "outputs": ["track.parquet", "summary.csv", "run.json"],
    })
    assert result_status(result_dir, run_key([copy], config)) == (True, "up to date")
    other = parse_config(dict(yaml.safe_load(config_path.read_text()), summary={"bin_s": 60}))
    assert result_status(result_dir, run_key([copy], other)) == (False, "the config changed")
    assert result_status(result_dir, run_key([copy], config, start_s=3)) == (
        False, "the time window (start_s, end_s) changed")
    st = copy.stat()
    os.utime(copy, (st.st_atime, st.st_mtime + 10))
    assert result_status(result_dir, run_key([copy], config)) == (
        False, "the video file's modification time changed")
    with open(copy, "r+b") as f:  # same size and time, other content
        f.seek(100)
        f.write(b"\x00\x01\x02")
    os.utime(copy, (st.st_atime, st.st_mtime + 10))
    assert result_status(result_dir, run_key([copy], config)) == (
        False, "the video file's content changed")
    (result_dir / "summary.csv").unlink()
    assert result_status(result_dir, run_key([copy], config)) == (
        False, "output files are missing (summary.csv)")


def test_source_time_maps_result_time_to_the_file():
    run_info = {
        "window": {"start_s": 5.0, "end_s": None},
        "videos": [
            {"path": "n_1.mp4", "time_offset_s": 0.0},
            {"path": "n_2.mp4", "time_offset_s": 3600.0},
            {"path": "n_3.mp4", "time_offset_s": 7200.0},
        ],
    }
    record = RunRecord.from_dict(run_info)
    assert record.source_time(0.0) == ("n_1.mp4", 5.0)
    assert record.source_time(3600.0) == ("n_2.mp4", 5.0)
    assert record.source_time(7194.0) == ("n_2.mp4", 3599.0)
    assert RunRecord.from_dict({"video": {"path": "v.mp4"}}).source_time(12.5) == ("v.mp4", 12.5)


# -- chambers.rule: body_fraction through analyse_track (the pose path) ------------------
def test_analyse_track_with_keypoint_shares_by_body_fraction():
    """A pose track: three keypoints per frame, their shares per chamber as the share
    columns; 10 fps. The mouse sits in 'left' 2 s, pokes one keypoint of three across
    the door (1/3 < 0.7) for 1 s, then moves all three across: body_fraction counts the
    poke in 'left', the centroid rule (the keypoints' mean) in 'right'."""
    import copy

    import numpy as np

    from cpp_tracker.geometry.chambers import build_layout, keypoint_shares
    from cpp_tracker.runs.pipeline import analyse_track
    from tests.handmade_results import TWO_CHAMBERS

    left = [[40.0, 50.0, 60.0]] * 20
    poke = [[70.0, 90.0, 112.0]] * 10  # mean 90.7: the centroid is still left of x = 100
    poke2 = [[85.0, 95.0, 130.0]] * 10  # mean 103.3: the centroid is right of the door
    across = [[130.0, 140.0, 150.0]] * 20
    kx = np.array(left + poke + poke2 + across)
    ky = np.full_like(kx, 50.0)
    n = len(kx)
    raw = copy.deepcopy(TWO_CHAMBERS)
    raw["chambers"] = {"rule": "body_fraction", "enter_fraction": 0.7, "exit_fraction": 0.3}
    config = parse_config(raw)
    shares = keypoint_shares(build_layout(config.arenas[0], 0.0), kx, ky)
    track = pd.DataFrame({
        "frame": np.arange(n), "time_s": np.arange(n) / 10.0, "arena": "box",
        "x": kx.mean(axis=1), "y": ky.mean(axis=1), "detected": True,
        "share_0": shares[:, 0], "share_1": shares[:, 1],
    })
    body = analyse_track(track, config, video_label="pose")
    times = body.summary.set_index("chamber")["time_s"]
    assert times["left"] == pytest.approx(4.0) and times["right"] == pytest.approx(2.0)
    assert list(body.chamber[[39, 40]]) == ["left", "right"]
    point = analyse_track(track, parse_config(TWO_CHAMBERS), video_label="pose")
    assert point.summary.set_index("chamber")["time_s"]["left"] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="body_fraction needs the share of the mouse in "
                       r"each chamber, which the track of arena box does not hold \(share_1\)"):
        analyse_track(track.drop(columns=["share_1"]), config, video_label="pose")
