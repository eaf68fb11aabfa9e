"""`cpp-tracker batch` on generated videos: isolation, kill and resume, Dask, sessions.

Every result is compared with another run of the same inputs (an uninterrupted one, a local
one, the joined video), so the tests check that the ways of running agree, not only that
they finish.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml

import cpp_tracker
from cpp_tracker.cli import main
from cpp_tracker.runs.batch import STATUS_COLUMNS

REPO = Path(cpp_tracker.__file__).resolve().parents[1]
TIMING = ["started", "finished", "duration_s"]


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def status_of(out_dir: Path) -> pd.DataFrame:
    return pd.read_csv(out_dir / "batch_status.csv", dtype=str, keep_default_na=False)


def assert_same_results(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "track.parquet"), pd.read_parquet(b / "track.parquet")
    )
    for name in ("summary.csv", "occupancy.csv", "background.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def inputs(video_factory, tmp_path_factory):
    """Two 20 s videos, a corrupt one, a manifest (with a missing file) and a config with a
    checkpoint every 2 s of video."""
    a, truth, _ = video_factory("batch_a", duration_s=20.0, seed=21)
    b, _, _ = video_factory("batch_b", duration_s=20.0, seed=22)
    root = tmp_path_factory.mktemp("batch_inputs")
    config = root / "box.yaml"
    config.write_text(yaml.safe_dump(dict(truth.config, video={"checkpoint_s": 2})))
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(50_000))
    rows = [
        {"video": os.path.relpath(a, root), "animal_id": "m1", "phase": "pre", "cohort": "A"},
        {"video": os.path.relpath(b, root), "animal_id": "m2", "phase": "post", "cohort": ""},
        {"video": "corrupt.mp4", "animal_id": "m3", "phase": "pre", "cohort": ""},
        {"video": "missing.mp4", "animal_id": "m4", "phase": "pre", "cohort": ""},
    ]
    manifest = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    single = root / "only_a.csv"
    pd.DataFrame(rows[:1]).to_csv(single, index=False)
    return {"a": a, "b": b, "truth": truth, "config": config, "manifest": manifest,
            "only_a": single, "corrupt": corrupt, "root": root}


@pytest.fixture(scope="module")
def local_batch(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "results"
    code, stdout, stderr = run_cli(
        ["batch", inputs["manifest"], "--config", inputs["config"], "--out", out,
         "--workers", "2", "--no-progress"]
    )
    return code, stdout, stderr, out


def test_failures_are_isolated_and_reported(inputs, local_batch):
    code, stdout, stderr, out = local_batch
    assert code == 1
    status = status_of(out)
    assert list(status.columns) == STATUS_COLUMNS
    corrupt = str(inputs["root"] / "corrupt.mp4")
    missing = str(inputs["root"] / "missing.mp4")
    assert list(status["video"]) == [
        os.path.normpath(inputs["a"]), os.path.normpath(inputs["b"]), corrupt, missing
    ]
    assert list(status["status"]) == ["ok", "ok", "failed", "failed"]
    assert list(status["result_dir"]) == ["batch_a", "batch_b", "corrupt", "missing"]
    assert status["error"][2] == (
        f"{corrupt}: cannot be opened as a video (unsupported format, or not a video); check "
        "the file plays, or convert it to H.264 MP4"
    )
    assert status["error"][3] == (
        f"{missing}: file not found; check the path (listed at {inputs['manifest']} line 5)"
    )
    assert (status["error"][:2] == "").all() and (status["finished"] != "").all()
    assert "batch finished: 2 ok, 0 need review, 0 skipped (up to date), 2 failed" in stdout
    assert stderr.splitlines()[-3:] == [
        "2 failed:", f"  {status['error'][2]}", f"  {status['error'][3]}"
    ]
    # the manifest's animal_id replaces the config's, the other columns are kept
    summary = pd.read_csv(out / "batch_a" / "summary.csv")
    assert set(summary["animal_id"]) == {"m1"}
    run = json.loads((out / "batch_a" / "run.json").read_text())
    assert run["metadata"] == {"animal_id": "m1", "phase": "pre", "cohort": "A"}
    assert json.loads((out / "batch_b" / "run.json").read_text())["metadata"] == {
        "animal_id": "m2", "phase": "post"}
    # and the numbers are right: chamber times within 1 % of the duration of the truth
    truth = inputs["truth"].track
    expected = truth.groupby("chamber").size() / inputs["truth"].spec.fps
    got = summary.set_index("chamber")["time_s"]
    for chamber, seconds in expected.items():
        assert abs(got[chamber] - seconds) <= 0.2, (chamber, got[chamber], seconds)


def test_dask_cluster_gives_identical_results(inputs, local_batch, tmp_path):
    distributed = pytest.importorskip("distributed")
    code, _, _, local_out = local_batch
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        dask_code, stdout, _ = run_cli(
            ["batch", inputs["manifest"], "--config", inputs["config"], "--out", tmp_path,
             "--scheduler", cluster.scheduler_address, "--no-progress"]
        )
    assert dask_code == code == 1
    assert f"on the Dask cluster at {cluster.scheduler_address}" in stdout
    pd.testing.assert_frame_equal(
        status_of(tmp_path).drop(columns=TIMING), status_of(local_out).drop(columns=TIMING)
    )
    for name in ("batch_a", "batch_b"):
        assert_same_results(tmp_path / name, local_out / name)


def test_killed_batch_resumes_and_a_second_rerun_does_nothing(inputs, local_batch, tmp_path):
    """SIGKILL the whole batch (main process and workers) once the first checkpoint of its
    video is on disk, rerun: it continues from there and ends with the uninterrupted
    run's results."""
    _, _, _, local_out = local_batch
    args = ["batch", inputs["only_a"], "--config", inputs["config"], "--out", tmp_path,
            "--workers", "1", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpp_tracker", *map(str, args)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    checkpoint = tmp_path / "batch_a" / ".partial" / "checkpoint.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if checkpoint.exists() and json.loads(checkpoint.read_text())["parts"] >= 1:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the batch ended before it could be killed"
    assert not (tmp_path / "batch_a" / "run.json").exists()

    code, stdout, _ = run_cli(args)
    assert code == 0
    row = status_of(tmp_path).iloc[0]
    assert row["status"] == "ok" and float(row["resumed_from_s"]) > 0
    assert f"continued from {float(row['resumed_from_s']):.1f} s" in stdout
    fresh_frames = int(status_of(local_out)["frames_decoded"][0])
    assert int(row["frames_decoded"]) < fresh_frames - 60  # at least 2 s not decoded again
    run = json.loads((tmp_path / "batch_a" / "run.json").read_text())
    assert run["resume"]["resumed"] and run["resume"]["seek_confirmed"]
    assert_same_results(tmp_path / "batch_a", local_out / "batch_a")

    code, stdout, _ = run_cli(args)
    assert code == 0
    assert "nothing to do: all 1 result(s) are up to date (--force redoes them)" in stdout
    assert status_of(tmp_path)["status"].tolist() == ["skipped"]

    code, stdout, _ = run_cli([*args, "--force"])
    row = status_of(tmp_path).iloc[0]
    assert code == 0 and row["status"] == "ok" and row["resumed_from_s"] == ""
    assert int(row["frames_decoded"]) == fresh_frames
    assert_same_results(tmp_path / "batch_a", local_out / "batch_a")


def split_at_keyframes(src: Path, outs: list[Path], cuts_s: list[float]) -> None:
    """Copy ``src``'s packets into ``outs``, starting a new file at the first keyframe at or
    after each cut; each file's timestamps start at 0 (as a camera's hourly files do)."""
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        cuts = [round(c / stream.time_base) for c in cuts_s]
        k, out, out_stream, base = -1, None, None, 0
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            if packet.is_keyframe and (k == -1 or (k < len(cuts) and packet.pts >= cuts[k])):
                if out is not None:
                    out.close()
                k += 1
                out = av.open(str(outs[k]), "w")
                out_stream = out.add_stream_from_template(stream)
                base = packet.pts
            packet.pts -= base
            packet.dts -= base
            packet.stream = out_stream
            out.mux(packet)
        out.close()


def test_chunk_files_of_a_session_give_the_joined_videos_results(inputs, local_batch, tmp_path):
    _, _, _, local_out = local_batch
    folder = tmp_path / "camera"
    folder.mkdir()
    chunks = [folder / f"night_{i}.mp4" for i in (1, 2, 3)]
    split_at_keyframes(inputs["a"], chunks, [6.0, 14.0])  # keyframes every 2 s
    code, stdout, _ = run_cli(
        ["batch", folder, "--config", inputs["config"], "--out", tmp_path / "out",
         "--session-pattern", r"^(?P<session>night)_(?P<chunk>\d+)\.mp4$", "--no-progress"]
    )
    assert code == 0
    assert "1 result(s) from 3 video file(s) (1 session(s) of chunk files)" in stdout
    result = tmp_path / "out" / "night"
    run = json.loads((result / "run.json").read_text())
    assert [v["frame_offset"] for v in run["videos"]] == [0, 180, 420]
    assert run["videos"][2]["time_offset_s"] == pytest.approx(14.0, abs=1e-9)
    assert run["metadata"] == {"session": "night"}
    session = pd.read_parquet(result / "track.parquet")
    joined = pd.read_parquet(local_out / "batch_a" / "track.parquet")
    # one continuous recording: the same frames at the same times as the joined video
    np.testing.assert_array_equal(session["frame"], joined["frame"])
    np.testing.assert_allclose(session["time_s"], joined["time_s"], atol=1e-9)
    # and the same chambers (the background is sampled from other frames: allow 2 frames)
    fps = inputs["truth"].spec.fps
    mine = pd.read_csv(result / "summary.csv").set_index("chamber")["time_s"]
    theirs = pd.read_csv(local_out / "batch_a" / "summary.csv").set_index("chamber")["time_s"]
    for chamber in theirs.index:
        assert abs(mine[chamber] - theirs[chamber]) <= 2 / fps, chamber


def test_usage_errors_exit_2_with_one_line(inputs, tmp_path):
    code, _, err = run_cli(["batch", inputs["a"], "--config", inputs["config"], "--out",
                            tmp_path, "--workers", "0"])
    assert code == 2
    assert err == "error: --workers: must be a whole number of at least 1\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("file,phase\nx.mp4,pre\n")
    code, _, err = run_cli(["batch", bad, "--config", inputs["config"], "--out", tmp_path])
    assert code == 2
    assert err == (
        f"error: {bad}: a manifest needs a 'video' column with one video file per row "
        "(columns found: file, phase)\n"
    )
    code, _, err = run_cli(["batch", inputs["a"], "--config", tmp_path / "nope.yaml",
                            "--out", tmp_path])
    assert code == 2
    assert err == f"error: {tmp_path / 'nope.yaml'}: file not found; check the path given to " \
        "--config\n"


def test_out_that_is_a_file_is_one_line_exit_1(inputs, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    for out in (notes, notes / "results"):
        code, _, err = run_cli(["batch", inputs["a"], "--config", inputs["config"], "--out",
                                out, "--no-progress"])
        assert code == 1
        assert err == f"error: {notes}: is a file, not a folder; give a folder for the results\n"
    assert notes.read_text() == "not a folder"


def test_geometry_change_reprocesses_from_the_stored_track(inputs, tmp_path):
    """A batch rerun with only a moved door line decodes no video and equals a fresh track."""
    out = tmp_path / "results"
    args = ["batch", inputs["only_a"], "--out", out, "--workers", "1", "--no-progress"]
    code, _, _ = run_cli(args + ["--config", inputs["config"]])
    assert code == 0
    moved = yaml.safe_load(inputs["config"].read_text())
    door = moved["arenas"][0]["doors"][0]["line"]
    moved["arenas"][0]["doors"][0]["line"] = [[door[0][0] + 8, door[0][1]],
                                              [door[1][0] + 8, door[1][1]]]
    new_config = tmp_path / "moved.yaml"
    new_config.write_text(yaml.safe_dump(moved))
    code, _, _ = run_cli(args + ["--config", new_config])
    assert code == 0
    row = status_of(out).iloc[0]
    assert row["status"] == "ok"
    assert row["frames_decoded"] == "0"
    assert "reprocessed from the stored track" in row["note"]
    assert "doors" in row["note"]
    fresh = tmp_path / "fresh"
    code, _, _ = run_cli(["track", inputs["a"], "--config", new_config, "--out", fresh,
                          "--no-progress", "--no-plots"])
    assert code == 0
    name = inputs["a"].stem
    assert (out / name / "occupancy.csv").read_bytes() == (
        fresh / name / "occupancy.csv").read_bytes()
    # the manifest gave this video an animal_id; everything else is the same
    batch_summary = pd.read_csv(out / name / "summary.csv").drop(columns="animal_id")
    fresh_summary = pd.read_csv(fresh / name / "summary.csv").drop(columns="animal_id")
    pd.testing.assert_frame_equal(batch_summary, fresh_summary)

    # chambers.rule: body_fraction needs chamber shares cut by these door lines; the ones
    # the video was tracked with were cut by the old line (and dropped by the reprocess),
    # so the batch tracks the video again instead of failing
    moved["chambers"] = {"rule": "body_fraction"}
    body_config = tmp_path / "body.yaml"
    body_config.write_text(yaml.safe_dump(moved))
    code, _, _ = run_cli(args + ["--config", body_config])
    assert code == 0
    row = status_of(out).iloc[0]
    assert row["status"] == "ok" and int(row["frames_decoded"]) > 0
    assert "share_0" in pd.read_parquet(out / name / "track.parquet")
