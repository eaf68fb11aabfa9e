"""`track` options for speed: --workers (time segments in parallel), --stride, and the
half-resolution search chosen automatically for a 640x480 video.

Accuracy tolerances as in test_track_cli (chamber time within 1 % of the duration, median
centroid error <= 3 px). --workers must give results identical to one pass.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import cpp_tracker.tracking.segments as segments
from cpp_tracker.cli import main
from tests.integration.test_track_cli import check_against_truth


def _track(video, config, out, *options) -> int:
    return main(
        ["track", str(video), "--config", str(config), "--out", str(out), "--no-progress",
         "--no-plots", *options]
    )


def _results(out, video):
    result = out / video.stem
    return (
        pd.read_parquet(result / "track.parquet"),
        (result / "summary.csv").read_text(),
        (result / "occupancy.csv").read_text(),
        json.loads((result / "run.json").read_text()),
    )


@pytest.fixture(scope="module")
def vga(video_factory):
    """640x480, 20 s: the mouse covers ~1500 px, so blobs are searched at half resolution."""
    return video_factory("speed_vga", width=640, height=480, duration_s=20.0, seed=61)


@pytest.fixture
def short_segments(monkeypatch):
    monkeypatch.setattr(segments, "MIN_SEGMENT_S", 2.0)


def test_half_resolution_search_matches_truth(vga, tmp_path):
    video, truth, config = vga
    assert _track(video, config, tmp_path) == 0
    track, _, _, run = _results(tmp_path, video)
    assert run["detection"][0]["scale"] == 2
    assert run["reader"]["luma_direct"] is True
    summary = pd.read_csv(tmp_path / video.stem / "summary.csv")
    check_against_truth(summary, track, truth, truth.spec.duration_s)


def test_workers_give_identical_results(vga, tmp_path, short_segments):
    video, truth, config = vga
    assert _track(video, config, tmp_path / "one") == 0
    assert _track(video, config, tmp_path / "two", "--workers", "2") == 0
    one, two = _results(tmp_path / "one", video), _results(tmp_path / "two", video)
    assert two[0].equals(one[0])  # track.parquet
    assert two[1] == one[1] and two[2] == one[2]  # summary.csv, occupancy.csv
    parallel = two[3]["parallel"]
    assert parallel["workers"] == 2 and parallel["one_pass_reason"] is None
    assert [s["first_frame"] for s in parallel["segments"]] == [0, 300]
    assert two[3]["time_base"]["frames_decoded"] == len(truth.track)


def test_stride_analyses_every_nth_frame_and_is_less_exact(vga, tmp_path, short_segments):
    video, truth, config = vga
    assert _track(video, config, tmp_path / "s1") == 0
    assert _track(video, config, tmp_path / "s3", "--stride", "3") == 0
    assert _track(video, config, tmp_path / "s3w", "--stride", "3", "--workers", "2") == 0
    track, summary, _, run = _results(tmp_path / "s3", video)
    n = len(truth.track)
    assert track["frame"].tolist() == list(range(0, n, 3))
    assert run["time_base"]["stride"] == 3
    assert run["time_base"]["frames_decoded"] == n  # every frame is still decoded
    assert run["time_base"]["frames_tracked"] == len(range(0, n, 3))
    # the frames analysed are the same as in a full run ...
    full = _results(tmp_path / "s1", video)[0].set_index("frame")
    assert np.allclose(track.set_index("frame")["x"], full.loc[track["frame"], "x"],
                       equal_nan=True)
    # ... and segments with a stride agree with one pass
    assert _results(tmp_path / "s3w", video)[0].equals(track)
    # time in chambers stays close to the full run (each frame now stands for three)
    s1 = pd.read_csv(tmp_path / "s1" / video.stem / "summary.csv").set_index("chamber")
    s3 = pd.read_csv(tmp_path / "s3" / video.stem / "summary.csv").set_index("chamber")
    for chamber in ("paired", "unpaired"):
        assert abs(s3.loc[chamber, "time_s"] - s1.loc[chamber, "time_s"]) <= 0.02 * 20.0


def test_short_video_with_workers_says_why_it_ran_in_one_pass(vga, tmp_path):
    video, _, config = vga
    assert _track(video, config, tmp_path, "--workers", "2") == 0
    parallel = _results(tmp_path, video)[3]["parallel"]
    assert parallel["workers"] == 1
    assert "shorter than 2 x 30 s" in parallel["one_pass_reason"]


@pytest.mark.parametrize("option", ["--workers", "--stride"])
def test_options_below_one_are_usage_errors(vga, tmp_path, capsys, option):
    video, _, config = vga
    assert _track(video, config, tmp_path, option, "0") == 2
    err = capsys.readouterr().err
    assert f"{option}: must be a whole number of at least 1" in err
    assert "Traceback" not in err


def test_workers_auto_is_the_default_and_leaves_short_videos_to_one_pass(vga, tmp_path):
    video, _, config = vga
    assert _track(video, config, tmp_path) == 0
    parallel = _results(tmp_path, video)[3]["parallel"]
    assert parallel["requested"] == "auto" and parallel["workers"] == 1
    assert parallel["one_pass_reason"].startswith("workers auto: ")


def test_workers_auto_splits_a_long_enough_video_with_identical_results(
    vga, tmp_path, monkeypatch
):
    import cpp_tracker.runs.pipeline as pipeline

    video, _, config = vga
    monkeypatch.setattr(pipeline, "AUTO_MIN_SEGMENT_S", 5.0)  # 20 s: 4 segments' worth
    monkeypatch.setattr(segments, "AUTO_MIN_SEGMENT_S", 5.0)
    monkeypatch.setattr(pipeline, "available_cores", lambda: 2)  # the cores, not the video
    monkeypatch.setattr(pipeline, "available_memory_mb", lambda: 8000.0)
    monkeypatch.setattr(pipeline, "idle_cores", lambda **_: 2.0)  # whatever else runs here
    assert _track(video, config, tmp_path / "auto") == 0
    assert _track(video, config, tmp_path / "one", "--workers", "1") == 0
    auto, one = _results(tmp_path / "auto", video), _results(tmp_path / "one", video)
    assert auto[3]["parallel"]["workers"] == 2, auto[3]["parallel"]
    assert auto[3]["parallel"]["requested"] == "auto"
    assert one[3]["parallel"]["workers"] == 1 and one[3]["parallel"]["requested"] == 1
    assert auto[0].equals(one[0]) and auto[1] == one[1] and auto[2] == one[2]


def test_workers_must_be_auto_or_a_whole_number(vga, tmp_path, capsys):
    video, _, config = vga
    assert _track(video, config, tmp_path, "--workers", "many") == 2
    err = capsys.readouterr().err
    assert "--workers: must be a whole number of at least 1, or auto" in err


def test_stride_with_the_fast_reader_skips_non_reference_frames_and_says_so(
    vga, tmp_path, capsys
):
    import yaml

    video, truth, config = vga
    raw = yaml.safe_load(config.read_text())
    raw["video"] = {"reader": "pyav", "fast_decode": True}
    fast = tmp_path / "fast.yaml"
    fast.write_text(yaml.safe_dump(raw))
    assert _track(video, fast, tmp_path / "f3", "--stride", "3", "--workers", "2") == 0
    out = capsys.readouterr().out
    track, _, _, run = _results(tmp_path / "f3", video)
    n = len(truth.track)
    skipped = run["reader"]["frames_not_decoded"]
    assert run["reader"]["decoder_options"] == {"skip_loop_filter": "all", "skip_frame": "nonref"}
    assert 0 < skipped < n and f"{skipped} of {n} frames were not decoded" in out
    assert run["time_base"]["frames_decoded"] == n
    assert run["parallel"]["workers"] == 1 and "fast_decode" in run["parallel"]["one_pass_reason"]
    # one frame per stretch of three, the one due or the next decoded one
    frames = track["frame"].to_numpy()
    assert np.array_equal(frames // 3, np.arange(len(frames)))
    # chamber times stay as close to the truth as a stride allows
    summary = pd.read_csv(tmp_path / "f3" / video.stem / "summary.csv").set_index("chamber")
    true_s = truth.track.groupby("chamber").size() / truth.spec.fps
    for chamber in ("paired", "unpaired"):
        assert abs(summary.loc[chamber, "time_s"] - true_s.get(chamber, 0.0)) <= 0.02 * 20.0


def test_an_unused_warm_start_is_closed_before_the_one_pass_read(
    vga, tmp_path, monkeypatch, short_segments
):
    """The worker processes started ahead are not held through a one-pass read: here the
    frame index fails, so the video is tracked in one pass, and no worker process is left
    while it is read; the result says why and equals a run that never started them."""
    import multiprocessing

    import cpp_tracker.runs.pipeline as pipeline
    from cpp_tracker.errors import VideoError
    from cpp_tracker.video.reader import FrameTimesJob

    def no_index(self):
        raise VideoError(f"{self.path}: no index here")

    monkeypatch.setattr(FrameTimesJob, "result", no_index)
    alive_while_reading = []
    read_source = pipeline._read_source

    def watched(*args, **kwargs):
        alive_while_reading.append(len(multiprocessing.active_children()))
        return read_source(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_read_source", watched)
    monkeypatch.setattr(pipeline, "MIN_SEGMENT_S", 2.0)
    started = []
    warm_start = pipeline.WarmStart

    def counted(*args):
        started.append(args)
        return warm_start(*args)

    monkeypatch.setattr(pipeline, "WarmStart", counted)
    assert _track(video := vga[0], vga[2], tmp_path / "two", "--workers", "2") == 0
    assert len(started) == 1  # one worker started ahead
    parallel = _results(tmp_path / "two", video)[3]["parallel"]
    assert parallel["workers"] == 1 and "could not be indexed" in parallel["one_pass_reason"]
    assert alive_while_reading == [0]
    assert _track(video, vga[2], tmp_path / "one", "--workers", "1") == 0
    two, one = _results(tmp_path / "two", video), _results(tmp_path / "one", video)
    assert two[0].equals(one[0]) and two[1] == one[1] and two[2] == one[2]
