"""`cpp-tracker pose`, `--export movement` and `agreement A B` on a generated video whose
pose file is written from the generator's truth (DeepLabCut's h5 layout), and on the real
DeepLabCut file of ../shared/real_videos/ (skipped where that folder is absent)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("movement", reason="the optional extra [pose] (movement) is not installed")

from cpp_tracker.cli import main  # noqa: E402
from cpp_tracker.experiment.agreement import compare_results  # noqa: E402
from tests.conftest import REAL_VIDEOS, write_config  # noqa: E402

UNSURE = slice(100, 130)  # frames whose hip the pose file is unsure of
DATA = Path(__file__).resolve().parents[1] / "data"
REAL = Path(os.environ.get("CPP_TRACKER_REAL_VIDEOS", REAL_VIDEOS))


def write_dlc_h5(path: Path, truth_track: pd.DataFrame, extra_rows: int = 0) -> Path:
    """A DeepLabCut h5 whose shoulder and hip lie 3 px either side of the true centroid
    (their mean is the truth), the hip unsure (likelihood 0.2) in the frames ``UNSURE``."""
    x = truth_track["x"].to_numpy()
    y = truth_track["y"].to_numpy()
    n = len(x)
    hip_p = np.full(n, 0.99)
    hip_p[UNSURE] = 0.2
    values = {
        ("shoulder", "x"): x - 3, ("shoulder", "y"): y - 1, ("shoulder", "likelihood"): 0.99,
        ("hip", "x"): x + 3, ("hip", "y"): y + 1, ("hip", "likelihood"): hip_p,
        ("nose", "x"): x - 9, ("nose", "y"): y - 3, ("nose", "likelihood"): 0.9,
    }
    table = pd.DataFrame({("DLC_resnet50_gen", bp, c): np.broadcast_to(v, n)
                          for (bp, c), v in values.items()})
    table.columns.names = ["scorer", "bodyparts", "coords"]
    if extra_rows:
        table = pd.concat([table, table.iloc[:extra_rows]], ignore_index=True)
    table.to_hdf(path, key="df_with_missing", mode="w")
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 20 s generated video, its truth, a pose file of it and a config with a pose
    section."""
    from cpp_tracker.synthetic import SceneSpec, generate_video

    root = tmp_path_factory.mktemp("pose")
    video = root / "mouse1.mp4"
    truth = generate_video(video, SceneSpec(duration_s=20.0, seed=24))  # 4 crossings
    config = copy.deepcopy(truth.config)
    config["pose"] = {"point": ["shoulder", "hip"], "min_likelihood": 0.5}
    config_path = write_config(root / "pose.yaml", config)
    pose = write_dlc_h5(root / "mouse1DLC_resnet50_genshuffle1.h5", truth.track)
    return root, video, truth, config_path, pose


def run(*args) -> int:
    return main([str(a) for a in args])


def test_pose_gives_the_true_times_and_unknown_where_unsure(scene, tmp_path):
    root, video, truth, config, pose = scene
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path,
               "--export", "movement") == 0
    result = tmp_path / "mouse1"
    track = pd.read_parquet(result / "track.parquet")
    record = json.loads((result / "run.json").read_text())
    fps = truth.spec.fps
    # positions: the mean of shoulder and hip is the true centroid; unsure frames unknown
    known = np.ones(len(track), bool)
    known[UNSURE] = False
    np.testing.assert_array_equal(track["detected"].to_numpy(), known)
    np.testing.assert_allclose(track.loc[known, ["x", "y"]].to_numpy(),
                               truth.track.loc[known, ["x", "y"]].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(track["time_s"], truth.track["time_s"], atol=1e-6)
    # times: the true chamber of every known frame, 1/fps each; the unsure 30 frames unknown
    summary = pd.read_csv(result / "summary.csv").set_index("chamber")["time_s"]
    expected = truth.track[known].groupby("chamber").size() / fps
    for chamber, seconds in expected.items():
        assert summary[chamber] == pytest.approx(seconds, abs=1e-4)  # summary.csv: 4 decimals
    assert summary["unknown"] == pytest.approx(30 / fps, abs=1e-4)
    assert record["command"] == "pose"
    assert record["pose"]["time_from"] == "video timestamps"
    assert record["pose"]["point"] == ["shoulder", "hip"]
    assert record["video"]["fingerprint"]
    for name in ("qc.png", "background.png", "track.nc", "regions.geojson"):
        assert name in record["outputs"] and (result / name).exists()


def test_movement_export_opens_in_movement(scene, tmp_path):
    import shapely
    import xarray as xr
    from movement.roi import load_rois
    from movement.validators.datasets import ValidPosesInputs

    root, video, truth, config, pose = scene
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path,
               "--export", "movement", "--no-plots") == 0
    result = tmp_path / "mouse1"
    with xr.open_dataset(result / "track.nc") as ds:  # as movement's napari loader opens it
        ds = ds.load()
    ValidPosesInputs.validate(ds)
    assert ds.attrs["ds_type"] == "poses" and ds.attrs["time_unit"] == "seconds"
    assert list(ds["keypoints"].values) == ["centroid"]
    arena = truth.config["arenas"][0]
    assert list(ds["individuals"].values) == [arena.get("animal_id") or arena["name"]]
    np.testing.assert_allclose(ds["time"].values, truth.track["time_s"], atol=1e-6)
    x = ds["position"].sel(space="x", keypoints="centroid").values[:, 0]
    assert np.isnan(x[UNSURE]).all()
    np.testing.assert_allclose(x[:100], truth.track["x"][:100], atol=1e-9)
    assert ds["confidence"].values[UNSURE.start, 0, 0] == pytest.approx(0.2)
    rois = load_rois(result / "regions.geojson")
    chambers = [r for r in rois if type(r).__name__ == "PolygonOfInterest"]
    doors = [r for r in rois if type(r).__name__ == "LineOfInterest"]
    assert [r.name for r in chambers] == [c["name"] for c in arena["chambers"]]
    assert [r.name for r in doors] == [d["name"] for d in arena["doors"]]
    # the chambers tile the arena
    assert sum(r.region.area for r in chambers) == pytest.approx(
        shapely.Polygon(arena["polygon"]).area, rel=1e-9)


def test_tracker_and_pose_results_of_one_video_agree(scene, tmp_path, capsys):
    root, video, truth, config, pose = scene
    assert run("track", video, "--config", config, "--out", tmp_path / "t", "--no-progress",
               "--no-plots", "--export", "movement") == 0
    assert (tmp_path / "t" / "mouse1" / "track.nc").exists()
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path / "p",
               "--no-plots") == 0
    capsys.readouterr()
    assert run("agreement", tmp_path / "t" / "mouse1", tmp_path / "p" / "mouse1") == 0
    out = capsys.readouterr().out
    assert "same video fingerprint" in out and "Cohen's kappa" in out
    (a,) = compare_results(tmp_path / "t" / "mouse1", tmp_path / "p" / "mouse1").arenas
    fps = truth.spec.fps
    # the seconds split the recording; the 30 unsure pose frames are unknown in B only
    parts = a.agree_s + a.differ_s + a.unknown_a_s + a.unknown_b_s + a.unknown_both_s
    assert parts == pytest.approx(a.duration_s, abs=1e-9)
    assert a.unknown_b_s + a.unknown_both_s == pytest.approx(30 / fps, abs=1e-6)
    assert a.percent > 97.0 and a.kappa > 0.9
    assert a.frames == len(truth.track)


def test_agreement_refuses_results_of_different_videos(scene, tmp_path, capsys):
    from cpp_tracker.synthetic import SceneSpec, generate_video

    root, video, truth, config, pose = scene
    other = tmp_path / "other.mp4"
    generate_video(other, SceneSpec(duration_s=4.0, seed=5))
    assert run("track", other, "--config", config, "--out", tmp_path, "--no-progress",
               "--no-plots") == 0
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path,
               "--no-plots") == 0
    capsys.readouterr()
    assert run("agreement", tmp_path / "other", tmp_path / "mouse1") == 1
    err = capsys.readouterr().err
    assert "are results of different videos" in err and len(err.strip().splitlines()) == 1


def test_without_video_time_is_frame_over_fps(scene, tmp_path):
    root, video, truth, config, pose = scene
    assert run("pose", pose, "--config", config, "--fps", 25, "--out", tmp_path) == 0
    result = tmp_path / pose.stem
    record = json.loads((result / "run.json").read_text())
    track = pd.read_parquet(result / "track.parquet")
    np.testing.assert_allclose(track["time_s"], np.arange(len(track)) / 25.0)
    assert record["pose"]["time_from"] == "fps 25"
    assert record["time_base"]["nominal_fps"] == 25
    # without a video (and frame_size), qc.png is drawn on the smallest frame that holds the
    # arena and every position
    polygon = np.array(truth.config["arenas"][0]["polygon"], dtype=float)
    assert record["video"]["width"] == int(np.ceil(max(polygon[:, 0].max(),
                                                       track["x"].max()))) + 1
    assert record["video"]["height"] == int(np.ceil(max(polygon[:, 1].max(),
                                                        track["y"].max()))) + 1
    assert record["video"]["fingerprint"] is None and (result / "qc.png").exists()


def test_bad_input_is_one_sentence(scene, tmp_path, capsys):
    root, video, truth, config, pose = scene
    longer = write_dlc_h5(tmp_path / "longer.h5", truth.track, extra_rows=5)
    assert run("pose", longer, "--config", config, "--video", video, "--out", tmp_path) == 1
    err = capsys.readouterr().err
    n = len(truth.track)
    assert f"has {n + 5} frames but {video} has {n}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    wrong = copy.deepcopy(truth.config)
    wrong["pose"] = {"point": "tailbase"}
    wrong_path = write_config(tmp_path / "wrong.yaml", wrong)
    assert run("pose", pose, "--config", wrong_path, "--video", video, "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "pose.point: tailbase is not a keypoint" in err and "shoulder, hip, nose" in err
    assert run("pose", video, "--config", config, "--fps", 25, "--out", tmp_path) == 1
    assert "is not a pose file" in capsys.readouterr().err
    (tmp_path / "broken.slp").write_bytes(b"not a SLEAP file")
    assert run("pose", tmp_path / "broken.slp", "--config", config, "--fps", 25, "--out",
               tmp_path) == 1
    err = capsys.readouterr().err  # movement's own log lines are kept off the console
    assert "cannot be read as a SLEAP slp file" in err and len(err.strip().splitlines()) == 1


def test_reprocess_of_a_pose_result_keeps_its_export_and_refuses_pose_changes(scene, tmp_path,
                                                                            capsys):
    root, video, truth, config, pose = scene
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path,
               "--no-plots", "--export", "movement") == 0
    result = tmp_path / "mouse1"
    moved = copy.deepcopy(truth.config)
    moved["pose"] = {"point": ["shoulder", "hip"], "min_likelihood": 0.5}
    for door in moved["arenas"][0]["doors"]:
        door["line"] = [[x + 10, y] for x, y in door["line"]]
    moved_path = write_config(tmp_path / "moved.yaml", moved)
    assert run("reprocess", result, "--config", moved_path, "--no-plots") == 0
    record = json.loads((result / "run.json").read_text())
    assert record["command"] == "reprocess" and record["pose"]["format"] == "DeepLabCut h5"
    assert "track.nc" in record["outputs"]
    regions = json.loads((result / "regions.geojson").read_text())
    door = next(f for f in regions["features"] if f["properties"]["roi_type"] ==
                "LineOfInterest")
    assert door["geometry"]["coordinates"] == moved["arenas"][0]["doors"][0]["line"]
    other_point = copy.deepcopy(moved)
    other_point["pose"]["point"] = ["nose"]
    capsys.readouterr()
    assert run("reprocess", result, "--config",
               write_config(tmp_path / "nose.yaml", other_point)) == 2
    assert "run 'cpp-tracker pose' again" in capsys.readouterr().err


@pytest.mark.slow
def test_real_deeplabcut_file_agrees_with_the_tracker(tmp_path, capsys):
    video = REAL / "bottom_view_white_on_black.mp4"
    dlc = REAL / "bottom_view_white_on_black.dlc.csv"
    if not (video.exists() and dlc.exists()):
        pytest.skip(f"{REAL} is absent (the real recordings live in ../shared/real_videos/)")
    assert run("track", video, "--config", DATA / "bottom_view_white_on_black.yaml", "--out",
               tmp_path / "t", "--no-progress", "--no-plots") == 0
    assert run("pose", dlc, "--config", DATA / "bottom_view_pose.yaml", "--video", video,
               "--out", tmp_path / "p") == 0
    err = capsys.readouterr().err
    # the file has 750 rows for the 749 frames that decode: the last row is not used
    assert "750 rows for the 749 frames" in err
    result = tmp_path / "p" / video.stem
    assert (result / "qc.png").exists()
    (a,) = compare_results(tmp_path / "t" / video.stem, result).arenas
    assert a.frames == 749
    # measured 98.7 % and kappa 0.966 over 693 frames; the pose result has no position in
    # 48 frames (46 with a paw below likelihood 0.6, 2 just outside the outline)
    assert a.percent > 95.0 and a.kappa > 0.9
    assert a.frames_both_known > 650
    # both need review (the pose result: 6.4 % without a position, limit 5 %; the tracker
    # on this bottom view: competing blobs, jumps): the comparison says so beside its figures
    assert a.review_b.startswith("no detection in 6.4 % of frames")
    assert "implausible jumps" in a.review_a
    capsys.readouterr()
    assert run("agreement", tmp_path / "t" / video.stem, result) == 0
    out = capsys.readouterr().out
    assert "    B NEEDS REVIEW: no detection in 6.4 % of frames" in out
    assert "    A NEEDS REVIEW: " in out


def test_sleap_file_ending_at_its_last_instance_leaves_the_rest_unknown(scene, tmp_path,
                                                                        capsys):
    import sleap_io as sio

    root, video, truth, config, pose = scene
    skeleton = sio.Skeleton(["shoulder", "hip", "nose"])
    clip = sio.Video(filename=str(video), open_backend=False)
    last = len(truth.track) - 20  # SLEAP found no mouse in the last 20 frames
    frames = []
    for i, r in enumerate(truth.track.iloc[:last].itertuples(index=False)):
        points = np.array([[r.x - 3, r.y - 1], [r.x + 3, r.y + 1], [r.x - 9, r.y - 3]])
        instance = sio.PredictedInstance.from_numpy(points, skeleton=skeleton,
                                                    point_scores=np.full(3, 0.9), score=1.0)
        frames.append(sio.LabeledFrame(video=clip, frame_idx=i, instances=[instance]))
    slp = tmp_path / "mouse1.predictions.slp"
    sio.save_slp(sio.Labels(labeled_frames=frames, videos=[clip], skeletons=[skeleton]),
                 str(slp))
    assert run("pose", slp, "--config", config, "--video", video, "--out", tmp_path,
               "--no-plots") == 0
    assert "frame(s) after it have no position" in capsys.readouterr().err
    track = pd.read_parquet(tmp_path / "mouse1" / "track.parquet")
    assert len(track) == len(truth.track)
    assert not track["detected"].iloc[last:].any() and track["detected"].iloc[:last].all()
    np.testing.assert_allclose(track[["x", "y"]].to_numpy()[:last],
                               truth.track[["x", "y"]].to_numpy()[:last], atol=1e-4)


def test_trial_start_counts_from_it_as_track_does(scene, tmp_path, capsys):
    root, video, truth, config, pose = scene
    later = copy.deepcopy(truth.config)
    later["pose"] = {"point": ["shoulder", "hip"], "min_likelihood": 0.5}
    later["trial"] = {"start": 6}
    later_path = write_config(tmp_path / "later.yaml", later)
    assert run("pose", pose, "--config", later_path, "--video", video, "--out", tmp_path / "p",
               "--no-plots") == 0
    assert run("track", video, "--config", later_path, "--out", tmp_path / "t",
               "--no-progress", "--no-plots") == 0
    p = pd.read_parquet(tmp_path / "p" / "mouse1" / "track.parquet")
    t = pd.read_parquet(tmp_path / "t" / "mouse1" / "track.parquet")
    # the same frames and times as track's, counted from 6 s
    np.testing.assert_array_equal(p["frame"], t["frame"])
    np.testing.assert_allclose(p["time_s"], t["time_s"], atol=1e-9)
    after = truth.track[truth.track["time_s"] >= 6 - 1e-9]
    assert p["frame"].iloc[0] == after["frame"].iloc[0] and p["time_s"].iloc[0] < 0.05
    summary = pd.read_csv(tmp_path / "p" / "mouse1" / "summary.csv").set_index("chamber")
    expected = after.groupby("chamber").size() / truth.spec.fps  # UNSURE lies before 6 s
    for chamber, seconds in expected.items():
        assert summary.loc[chamber, "time_s"] == pytest.approx(seconds, abs=1e-4)
    record = json.loads((tmp_path / "p" / "mouse1" / "run.json").read_text())
    assert record["window"]["start_s"] == 6 and record["trial"]["start_s"] == 6
    auto = copy.deepcopy(later)
    auto["trial"] = {"start": "auto"}
    auto_path = write_config(tmp_path / "auto.yaml", auto)
    capsys.readouterr()
    assert run("pose", pose, "--config", auto_path, "--fps", 30, "--out", tmp_path) == 2
    assert "trial.start: auto finds the trial's start in the video" in capsys.readouterr().err


def test_body_fraction_on_a_pose_track_counts_the_share_of_the_chosen_keypoints(scene,
                                                                               tmp_path):
    """The entry rule for pose users: the share of the chosen keypoints in each chamber
    (here shoulder, hip and nose, 12 px apart along the body) decides the chamber, and
    reprocess switches back to the point rule from the stored pose track."""
    from cpp_tracker.geometry.chambers import assign_by_body_fraction
    from cpp_tracker.synthetic import chamber_of

    root, video, truth, _, pose = scene
    raw = copy.deepcopy(truth.config)
    raw["pose"] = {"point": ["shoulder", "hip", "nose"], "min_likelihood": 0.5}
    raw["chambers"] = {"rule": "body_fraction", "enter_fraction": 0.6, "exit_fraction": 0.4}
    config = write_config(tmp_path / "fraction.yaml", raw)
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path) == 0
    result = tmp_path / "mouse1"
    track = pd.read_parquet(result / "track.parquet")
    # the shares, counted here from the generator's own chamber test on each keypoint
    arena = truth.config["arenas"][0]
    names = [c["name"] for c in arena["chambers"]]
    x, y = truth.track["x"].to_numpy(), truth.track["y"].to_numpy()
    points = [(x - 3, y - 1), (x + 3, y + 1), (x - 9, y - 3)]
    inside = np.stack([[chamber_of(px, py, arena) == name for px, py in points]
                       for name in names]).mean(axis=1).T  # (frames, chambers)
    known = track["detected"].to_numpy()
    shares = track[["share_0", "share_1"]].to_numpy()
    np.testing.assert_allclose(shares[known], inside[known], atol=1e-6)
    assert np.isin(np.round(3 * shares[known]), [0, 1, 2, 3]).all()
    assert ((shares[known] > 0) & (shares[known] < 1)).any()  # frames across the door
    codes, _ = assign_by_body_fraction(inside, known, 0.6, 0.4)
    expected = np.where(codes >= 0, np.array(names + ["unknown"])[codes], "unknown")
    np.testing.assert_array_equal(track["chamber"].to_numpy(), expected)
    # back to the point rule from the stored track: the mean of the three keypoints decides
    raw["chambers"] = {"rule": "point"}
    point = write_config(tmp_path / "point.yaml", raw)
    assert run("reprocess", result, "--config", point) == 0
    summary = pd.read_csv(result / "summary.csv").set_index("chamber")["time_s"]
    centre_x, centre_y = x - 3, y - 1  # mean of (x-3, x+3, x-9) and (y-1, y+1, y-3)
    true_chamber = chamber_of(centre_x, centre_y, arena)[known]
    for name in names:
        assert summary[name] == pytest.approx((true_chamber == name).sum() / truth.spec.fps,
                                              abs=1e-4)


def test_pose_refuses_a_result_folder_another_live_run_holds(scene, tmp_path, capsys):
    """One run at a time in a result folder, as for track and reprocess: the lock of a live
    process (this test's own parent, for a pid that surely runs) refuses with exit 2."""
    import socket

    from cpp_tracker.results.lock import LOCK_FILE

    root, video, truth, config, pose = scene
    held = tmp_path / "mouse1"
    held.mkdir()
    (held / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(),
                                              "pid": os.getppid(), "started": "t0",
                                              "command": "batch"}))
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert f"is in use by 'batch' process {os.getppid()}" in err and "\n" not in err
    assert not (held / "summary.csv").exists()
    (held / LOCK_FILE).unlink()
    assert run("pose", pose, "--config", config, "--video", video, "--out", tmp_path) == 0
    assert (held / "summary.csv").exists() and not (held / LOCK_FILE).exists()
