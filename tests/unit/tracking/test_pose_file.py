"""Pose files of every supported format, written with the formats' own libraries (pandas for
DeepLabCut's MultiIndex layout, sleap-io, movement's writers, xarray) from known positions,
read back by :mod:`cpp_tracker.tracking.pose_file`: the positions, the mean of the chosen
keypoints and the undetected frames must be exactly those written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("movement", reason="the optional extra [pose] (movement) is not installed")

from cpp_tracker.config.settings import ArenaConfig, Chamber, Door, PoseSettings  # noqa: E402
from cpp_tracker.errors import ConfigError, PoseError  # noqa: E402
from cpp_tracker.tracking.pose_file import pose_positions, read_pose_file  # noqa: E402

N = 12
KEYPOINTS = ["nose", "shoulder", "hip"]
# frame i: nose (100 + 3i, 50), shoulder (90 + 3i, 60), hip (80 + 3i, 70 + i)
XY = np.stack([
    np.stack([100 + 3.0 * np.arange(N), np.full(N, 50.0)], axis=1),
    np.stack([90 + 3.0 * np.arange(N), np.full(N, 60.0)], axis=1),
    np.stack([80 + 3.0 * np.arange(N), 70.0 + np.arange(N)], axis=1),
], axis=1)  # (frames, keypoints, 2)
LIKELIHOOD = np.full((N, 3), 0.95)
LIKELIHOOD[4, 2] = 0.3  # the hip unsure in frame 4
LIKELIHOOD[7, 0] = 0.1  # the nose unsure in frame 7 (not used for the body centre)


def _arena(name="box", animal_id=None, x0=0.0) -> ArenaConfig:
    return ArenaConfig(
        name=name, polygon=((x0, 0), (x0 + 320, 0), (x0 + 320, 240), (x0, 240)),
        doors=(Door("d", ((x0 + 160, 0), (x0 + 160, 240))),),
        chambers=(Chamber("a", (x0 + 80, 120)), Chamber("b", (x0 + 240, 120))),
        animal_id=animal_id,
    )


def _dlc_frame(individuals: list[str] | None, offsets=(0.0,),
               scorer="DLC_resnet50_test") -> pd.DataFrame:
    """DeepLabCut's table: columns scorer / (individuals) / bodyparts / coords (LightningPose
    writes the single-animal one, its scorer naming the model, e.g. heatmap_tracker)."""
    columns, data = [], []
    for k, ind in enumerate(individuals or [None]):
        for j, kp in enumerate(KEYPOINTS):
            for c, values in (("x", XY[:, j, 0] + offsets[k]), ("y", XY[:, j, 1]),
                              ("likelihood", LIKELIHOOD[:, j])):
                columns.append((scorer, *(() if ind is None else (ind,)), kp, c))
                data.append(values)
    names = ["scorer", "bodyparts", "coords"] if individuals is None else [
        "scorer", "individuals", "bodyparts", "coords"]
    return pd.DataFrame(np.array(data).T, columns=pd.MultiIndex.from_tuples(columns,
                                                                             names=names))


def _movement_ds():
    from movement.io import load_poses

    position = XY.transpose(0, 2, 1)[..., None]  # (frames, space, keypoints, individuals)
    return load_poses.from_numpy(position, LIKELIHOOD[..., None], individual_names=["m1"],
                                 keypoint_names=KEYPOINTS, source_software="test")


def _write_slp(path):
    import sleap_io as sio

    skeleton = sio.Skeleton(list(KEYPOINTS))  # sleap-io turns the list into Nodes
    video = sio.Video(filename="made_up.mp4", open_backend=False)
    frames = [
        sio.LabeledFrame(video=video, frame_idx=i, instances=[sio.PredictedInstance.from_numpy(
            XY[i], skeleton=skeleton, point_scores=LIKELIHOOD[i], score=1.0)])
        for i in range(N)
    ]
    sio.save_slp(sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton]),
                 str(path))


def _write(fmt: str, tmp_path):
    from movement.io import save_poses

    if fmt == "DeepLabCut csv":
        path = tmp_path / "mouseDLC_resnet50.csv"
        _dlc_frame(None).to_csv(path)
    elif fmt == "DeepLabCut h5":
        path = tmp_path / "mouseDLC_resnet50.h5"
        _dlc_frame(None).to_hdf(path, key="df_with_missing", mode="w")
    elif fmt == "SLEAP slp":
        path = tmp_path / "mouse.slp"
        _write_slp(path)
    elif fmt == "SLEAP analysis h5":
        path = tmp_path / "mouse.analysis.h5"
        save_poses.to_sleap_analysis_file(_movement_ds(), path)
    elif fmt == "LightningPose csv":
        path = tmp_path / "mouse_lp.csv"
        _dlc_frame(None, scorer="heatmap_tracker").to_csv(path)
    else:
        path = tmp_path / "mouse.nc"
        _movement_ds().to_netcdf(path)
    return path


FORMATS = ["DeepLabCut csv", "DeepLabCut h5", "SLEAP slp", "SLEAP analysis h5",
           "LightningPose csv", "movement netCDF"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_the_positions_written(fmt, tmp_path):
    pose = read_pose_file(_write(fmt, tmp_path))
    assert pose.format == fmt
    assert pose.keypoints == tuple(KEYPOINTS)
    assert pose.n_frames == N
    np.testing.assert_allclose(pose.position[:, 0], XY, rtol=0, atol=1e-4)
    np.testing.assert_allclose(pose.confidence[:, 0], LIKELIHOOD, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["DeepLabCut csv", "SLEAP slp"])
def test_body_centre_is_the_mean_and_unsure_frames_are_undetected(fmt, tmp_path):
    pose = read_pose_file(_write(fmt, tmp_path))
    settings = PoseSettings(point=("shoulder", "hip"), min_likelihood=0.5)
    (p,) = pose_positions(pose, settings, (_arena(),))
    expected = (XY[:, 1] + XY[:, 2]) / 2
    undetected = np.zeros(N, bool)
    undetected[4] = True  # the hip below 0.5; frame 7's unsure nose is not chosen
    np.testing.assert_array_equal(p.detected, ~undetected)
    np.testing.assert_allclose(p.x[~undetected], expected[~undetected, 0], atol=1e-4)
    np.testing.assert_allclose(p.y[~undetected], expected[~undetected, 1], atol=1e-4)
    assert np.isnan(p.x[4]) and np.isnan(p.y[4])  # never guessed
    assert p.likelihood[4] == pytest.approx(0.3)


def test_multi_animal_deeplabcut_one_arena_per_individual(tmp_path):
    path = tmp_path / "twoDLC.csv"
    _dlc_frame(["mA", "mB"], offsets=(0.0, 1000.0)).to_csv(path)
    pose = read_pose_file(path)
    assert pose.individuals == ("mA", "mB")
    arenas = (_arena("left", animal_id="mB", x0=1000.0), _arena("right", animal_id="mA"))
    by_arena = PoseSettings(point=("nose",), min_likelihood=0.0, individual="by_arena")
    left, right = pose_positions(pose, by_arena, arenas)
    assert (left.individual, right.individual) == ("mB", "mA")
    np.testing.assert_allclose(left.x, XY[:, 0, 0] + 1000.0)
    np.testing.assert_allclose(right.x, XY[:, 0, 0])
    (only,) = pose_positions(pose, PoseSettings(point=("nose",), individual="mB"),
                             (_arena(x0=1000.0),))
    np.testing.assert_allclose(only.x[only.detected], XY[only.detected, 0, 0] + 1000.0)
    # the other box's mouse is never counted in this box's nearest chamber
    (elsewhere,) = pose_positions(pose, PoseSettings(point=("nose",), min_likelihood=0.0,
                                                     individual="mB"), (_arena(),))
    assert not elsewhere.detected.any() and elsewhere.outside == N
    with pytest.raises(ConfigError, match="has the individuals mA, mB"):
        pose_positions(pose, PoseSettings(point=("nose",)), (_arena(),))


def test_a_keypoint_the_file_lacks_is_named_with_those_it_has(tmp_path):
    pose = read_pose_file(_write("DeepLabCut csv", tmp_path))
    with pytest.raises(ConfigError, match=r"pose\.point: tail is not a keypoint .* it has "
                                          r"nose, shoulder, hip"):
        pose_positions(pose, PoseSettings(point=("tail",)), (_arena(),))
    with pytest.raises(ConfigError, match="is needed"):
        pose_positions(pose, PoseSettings(), (_arena(),))


def test_a_file_that_is_not_a_pose_file_is_one_sentence(tmp_path):
    (tmp_path / "notes.csv").write_text("frame,x,y\n0,1,2\n")
    with pytest.raises(PoseError, match="first row should start with 'scorer'"):
        read_pose_file(tmp_path / "notes.csv")
    (tmp_path / "video.mp4").write_bytes(b"\0" * 10)
    with pytest.raises(PoseError, match="is not a pose file this version reads"):
        read_pose_file(tmp_path / "video.mp4")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(PoseError, match="is not an HDF5 file"):
        read_pose_file(tmp_path / "broken.h5")
    with pytest.raises(PoseError, match="file not found"):
        read_pose_file(tmp_path / "absent.slp")
