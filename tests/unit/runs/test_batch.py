"""Batch planning (inputs -> jobs) and isolation, without decoding any video.

The videos here are small placeholder files: planning only looks at paths, and the
isolation tests run a stand-in task instead of the tracker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cpp_tracker.errors import ConfigError
from cpp_tracker.processes import process_gone
from cpp_tracker.runs.batch import (
    STATUS_COLUMNS,
    STATUS_FILE,
    _connect_dask,
    _row,
    check_job,
    collect_jobs,
    compile_session_pattern,
    run_batch,
)

CONFIG = {
    "arenas": [
        {
            "name": "box1",
            "polygon": [[10, 10], [310, 10], [310, 230], [10, 230]],
            "doors": [{"name": "door1", "line": [[160, 10], [160, 230]]}],
            "chambers": [
                {"name": "paired", "point": [80, 120]},
                {"name": "unpaired", "point": [240, 120]},
            ],
        }
    ]
}


@pytest.fixture
def tree(tmp_path):
    """videos/ (with a sub-folder and a hidden one), a config, a results folder inside."""
    videos = tmp_path / "videos"
    (videos / "day2").mkdir(parents=True)
    (videos / ".trash").mkdir()
    for rel in ("m1.mp4", "m2.AVI", "notes.txt", "day2/m3.mkv", ".trash/old.mp4"):
        (videos / rel).write_bytes(b"x" * 10)
    (videos / "results").mkdir()
    (videos / "results" / "clip.mp4").write_bytes(b"x")
    config = tmp_path / "box.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    return tmp_path, videos, config


def write_manifest(path, rows: list[dict]):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_folder_is_searched_recursively_for_videos(tree):
    root, videos, config = tree
    jobs = collect_jobs([videos], config, out_dir=videos / "results")
    assert [j.name for j in jobs] == ["m1", "m2", "m3"]
    assert all(os.path.isabs(v) for j in jobs for v in j.videos)
    assert all(j.config == str(config.resolve()) for j in jobs)
    assert all(j.problem is None for j in jobs)


def test_manifest_paths_metadata_and_settings(tree):
    root, videos, config = tree
    other = root / "other.yaml"
    other.write_text(yaml.safe_dump(CONFIG))
    manifest = write_manifest(
        videos / "manifest.csv",
        [
            {"video": "m1.mp4", "config": "../other.yaml", "animal_id": "007", "phase": "pre",
             "start_s": "30", "end_s": "630", "group": "saline"},
            {"video": "day2/m3.mkv", "config": "", "animal_id": "", "phase": "post",
             "start_s": "", "end_s": "", "group": "drug"},
        ],
    )
    jobs = collect_jobs([manifest], config)
    a, b = jobs
    assert a.videos == (str((videos / "m1.mp4").resolve()),)
    assert a.config == str(other.resolve())
    assert a.animal_id == "007"  # kept as text: leading zeros survive
    assert (a.start_s, a.end_s) == (30.0, 630.0)
    assert a.metadata == {"animal_id": "007", "phase": "pre", "start_s": "30",
                          "end_s": "630", "group": "saline"}
    assert b.config == str(config.resolve()) and b.animal_id is None
    assert b.metadata == {"phase": "post", "group": "drug"}


def test_missing_files_and_bad_rows_become_failing_jobs(tree):
    root, videos, config = tree
    manifest = write_manifest(
        root / "m.csv",
        [
            {"video": "videos/m1.mp4", "start_s": "ten"},
            {"video": "videos/gone.mp4", "start_s": ""},
            {"video": "", "start_s": ""},
            {"video": "videos/m2.AVI", "start_s": "50", "end_s": "20"},
        ],
    )
    jobs = collect_jobs([manifest, root / "nothing_here.mp4"], config)
    problems = [j.problem for j in jobs]
    assert problems[0] == (
        f"{manifest} line 2: start_s must be a number of seconds or 'auto', got 'ten'")
    assert problems[1] == (
        f"{os.path.normpath(root / 'videos/gone.mp4')}: file not found; check the path "
        f"(listed at {manifest} line 3)"
    )
    assert problems[2] == f"{manifest} line 4: the video cell is empty"
    assert problems[3] == f"{manifest} line 5: end_s (20) must be later than start_s (50)"
    assert problems[4] == f"{root / 'nothing_here.mp4'}: file not found; check the path"


def test_manifest_without_video_column_is_a_usage_error(tree):
    root, videos, config = tree
    manifest = write_manifest(root / "m.csv", [{"file": "m1.mp4", "phase": "pre"}])
    with pytest.raises(ConfigError) as e:
        collect_jobs([manifest], config)
    assert str(e.value) == (
        f"{manifest}: a manifest needs a 'video' column with one video file per row "
        "(columns found: file, phase)"
    )
    assert e.value.exit_code == 2


def test_empty_folder_is_reported(tree):
    root, videos, config = tree
    (root / "empty").mkdir()
    (job,) = collect_jobs([root / "empty"], config)
    assert job.problem.startswith(f"{root / 'empty'}: no video files in this folder")


def test_a_video_listed_twice_is_tracked_once_with_its_manifest_row(tree):
    root, videos, config = tree
    manifest = write_manifest(root / "m.csv", [{"video": "videos/m1.mp4", "phase": "pre"}])
    jobs = collect_jobs([videos, manifest, videos / "m1.mp4"], config, out_dir=videos / "results")
    names = [j.name for j in jobs]
    assert names == ["m2", "m3", "m1"]
    assert jobs[2].metadata == {"phase": "pre"}


def test_same_result_name_from_two_folders_fails_both(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "cam1.mp4").write_bytes(b"x")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    jobs = collect_jobs([tmp_path / "a", tmp_path / "b"], config)
    assert len(jobs) == 2
    for job in jobs:
        assert job.problem == (
            f"{tmp_path / 'a' / 'cam1.mp4'} and {tmp_path / 'b' / 'cam1.mp4'} would all write "
            "to the result folder 'cam1'; rename the files, or name each one with a 'session' "
            "column in a manifest"
        )


def test_manifest_sessions_join_chunks_in_row_order(tree):
    root, videos, config = tree
    manifest = write_manifest(
        videos / "m.csv",
        [
            {"video": "m2.AVI", "session": "night1", "animal_id": "a1", "hour": "2"},
            {"video": "m1.mp4", "session": "night1", "animal_id": "a1", "hour": "1"},
            {"video": "day2/m3.mkv", "session": "", "animal_id": "a2", "hour": ""},
        ],
    )
    night, single = collect_jobs([manifest], config)
    assert night.name == night.session == "night1"
    assert [os.path.basename(v) for v in night.videos] == ["m2.AVI", "m1.mp4"]
    assert night.metadata == {"session": "night1", "animal_id": "a1", "hour": ["2", "1"]}
    assert night.label.count(";") == 1
    assert single.name == "m3" and single.session is None


def test_session_rows_must_agree_on_animal_and_window(tree):
    root, videos, config = tree
    manifest = write_manifest(
        videos / "m.csv",
        [
            {"video": "m1.mp4", "session": "s", "animal_id": "a1"},
            {"video": "m2.AVI", "session": "s", "animal_id": "a2"},
        ],
    )
    (job,) = collect_jobs([manifest], config)
    assert job.problem == (
        f"{manifest} line 2: the rows of session 's' give different animal_id values (a1, a2); "
        "give it once, or the same on every row"
    )


def test_session_pattern_groups_and_orders_chunks(tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    for name in ("box1_10.mp4", "box1_9.mp4", "box1_1.mp4", "box2_1.mp4", "other.mp4"):
        (folder / name).write_bytes(b"x")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    jobs = collect_jobs(
        [folder], config, session_pattern=r"^(?P<session>box\d)_(?P<chunk>\d+)\.mp4$"
    )
    assert [j.name for j in jobs] == ["box1", "box2", "other"]
    assert [os.path.basename(v) for v in jobs[0].videos] == [
        "box1_1.mp4", "box1_9.mp4", "box1_10.mp4"
    ]
    assert jobs[0].metadata == {"session": "box1"}
    assert jobs[2].session is None


def test_session_pattern_needs_a_session_group():
    with pytest.raises(ConfigError, match=r"--session-pattern: needs a named group"):
        compile_session_pattern(r"(\w+)_\d+")
    with pytest.raises(ConfigError, match=r"--session-pattern: is not a valid regular"):
        compile_session_pattern(r"(?P<session>")


# ----------------------------------------------------------------------------- isolation
def stand_in_task(job, out_dir, *, force=False, progress=False, progress_position=None):
    """Replaces the tracker in a worker process: crashes, fails or succeeds by name."""
    if job.name.startswith("crash"):
        os._exit(3)  # a segfault in the decoder looks like this to the pool
    if job.name.startswith("bug"):
        raise RuntimeError("boom")
    time.sleep(0.2)
    return _row(job, "ok", started="s", finished="f", duration_s=0.2)


def test_a_crashing_worker_fails_only_its_own_video(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    names = ["a", "crash", "b", "c"]
    for n in names:
        (folder / f"{n}.mp4").write_bytes(b"x")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    jobs = collect_jobs([folder / f"{n}.mp4" for n in names], config)
    finished = []
    result = run_batch(
        jobs, tmp_path / "out", workers=2, progress=False, task=stand_in_task,
        on_row=finished.append,
    )
    status = pd.read_csv(tmp_path / "out" / STATUS_FILE, keep_default_na=False)
    assert list(status.columns) == STATUS_COLUMNS
    assert list(status["status"]) == ["ok", "failed", "ok", "ok"]
    assert status["error"][1].startswith("the worker process died while tracking this video")
    assert result.exit_code == 1
    assert sorted(r["result_dir"] for r in finished) == ["a", "b", "c", "crash"]


def test_an_unexpected_error_is_recorded_with_its_traceback(tmp_path):
    (tmp_path / "bug.mp4").write_bytes(b"x")
    (tmp_path / "fine.mp4").write_bytes(b"x")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    jobs = collect_jobs([tmp_path / "bug.mp4", tmp_path / "fine.mp4"], config)
    result = run_batch(jobs, tmp_path / "out", workers=1, progress=False, task=stand_in_task)
    assert [r["status"] for r in result.rows] == ["failed", "ok"]
    # the stand-in raises outside run_job's handler: the pool reports it as the job's error
    log = (tmp_path / "out" / "batch_errors.log")
    assert result.rows[0]["error"].startswith("unexpected failure (RuntimeError: boom)")
    assert "RuntimeError: boom" in log.read_text()


def test_animal_id_needs_a_single_arena_config(tmp_path):
    two = {"arenas": [CONFIG["arenas"][0], dict(CONFIG["arenas"][0], name="box2")]}
    two["arenas"][1] = dict(
        two["arenas"][1],
        polygon=[[320, 10], [620, 10], [620, 230], [320, 230]],
        doors=[{"name": "door1", "line": [[470, 10], [470, 230]]}],
        chambers=[
            {"name": "paired", "point": [390, 120]},
            {"name": "unpaired", "point": [550, 120]},
        ],
    )
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(two))
    (tmp_path / "v.mp4").write_bytes(b"x")
    write_manifest(tmp_path / "m.csv", [{"video": "v.mp4", "animal_id": "m7"}])
    (job,) = collect_jobs([tmp_path / "m.csv"], config)
    row = check_job(job, tmp_path / "out")
    assert row["status"] == "failed"
    assert row["error"] == (
        f"{tmp_path / 'm.csv'} line 2: animal_id 'm7' can only replace the animal id of a "
        f"config with one arena, and {config} has 2; set animal_id for each arena in the "
        "config instead"
    )


def test_scheduler_without_dask_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    with pytest.raises(ConfigError) as e:
        _connect_dask("tcp://127.0.0.1:8786")
    assert str(e.value) == (
        "--scheduler: needs the packages dask and distributed; install them with "
        "pip install 'cpp-tracker[dask]'"
    )
    assert e.value.exit_code == 2


def sleepy_task(job, out_dir, *, force=False, progress=False, progress_position=None):
    """A video that takes long: says which process runs it, then waits."""
    pid_file = Path(out_dir) / f"{job.name}.pid"
    (pid_file.with_suffix(".tmp")).write_text(str(os.getpid()))
    os.replace(pid_file.with_suffix(".tmp"), pid_file)  # never seen half-written
    time.sleep(120)


def test_workers_end_when_the_batch_process_is_killed(tmp_path):
    """No orphan worker may go on writing into the output folder after a SIGKILL of the
    batch (a rerun would race with it)."""
    (tmp_path / "v.mp4").write_bytes(b"x")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parents[3]
    script = (
        "from cpp_tracker.runs.batch import collect_jobs, run_batch\n"
        "from tests.unit.runs.test_batch import sleepy_task\n"
        f"jobs = collect_jobs([{str(tmp_path / 'v.mp4')!r}], {str(config)!r})\n"
        f"run_batch(jobs, {str(out)!r}, workers=1, progress=False, task=sleepy_task)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo))
    )
    pid_file = out / "v.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert pid_file.exists(), "the worker never started"
    worker = int(pid_file.read_text())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while not process_gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_gone(worker), "the worker outlived the batch process"


def test_manifest_from_a_spreadsheet_with_bom_and_semicolons(tree):
    root, videos, config = tree
    manifest = root / "excel.csv"
    manifest.write_bytes("\ufeffvideo;animal_id;phase\nvideos/m1.mp4;007;pre\n".encode())
    (job,) = collect_jobs([manifest], config)
    assert job.problem is None and job.animal_id == "007"
    assert job.metadata == {"animal_id": "007", "phase": "pre"}
    single = root / "one_column.csv"
    single.write_text("video\nvideos/m2.AVI\n")
    (job,) = collect_jobs([single], config)
    assert job.problem is None and job.name == "m2"
    latin = root / "latin.csv"
    latin.write_bytes("video,phase\nvideos/m1.mp4,pr\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        collect_jobs([latin], config)
    assert str(e.value) == f"{latin}: is not UTF-8 text; save it as 'CSV UTF-8' (comma delimited)"
