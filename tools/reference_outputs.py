"""Record the outputs of every cpp-tracker command, and prove that later code gives the same.

Made before the issue-14 refactor (modules moved into subpackages, run.json written from a
typed record): ``record`` runs the current code on fixed inputs and keeps everything it
writes; ``check`` runs the same commands with whatever code is installed now and compares.

Usage (from the repository, with the package installed in the active interpreter)::

    python tools/reference_outputs.py record /work/reference     # once, on the old code
    python tools/reference_outputs.py check /work/reference      # on any later code
    python tools/reference_outputs.py check /work/reference --scenario track_sample --keep

``check`` exits 0 only when every compared file is the same (warnings do not count).

How it works
------------
Every command runs through the command line as a subprocess, ``sys.executable -m
cpp_tracker ...`` (the interpreter that runs this script), with ``--no-progress`` where the
command has it, so the script keeps working whatever moves inside the package. The only
import from the package is :mod:`cpp_tracker.synthetic` (its public names), to make the
input videos.

``record REFDIR`` writes

- ``REFDIR/inputs/``: the generated videos with their configs (``videos/``), the batch
  videos, their configs and the manifest (``batch/``), the bundled sample video and its
  config (``sample/``), the changed configs (``configs/``), the CPP design (``design.csv``),
  the generator's truth (``truth/``: the true track, config, empty-box image and rendered
  frames' sha256 of each generated video) and ``specs.json`` (the scene specs). Every input
  file gets the same fixed modification time, because run.json records it
  (``video.mtime``, ``run_key``).
- ``REFDIR/outputs/<scenario>/``: what the scenario's commands wrote, ``_console.txt`` (each
  command, its exit code, stdout and stderr) and ``_steps.json`` (commands and exit codes).
- ``REFDIR/reference.json``: where and with what it was recorded (commit, versions).

All commands run with the working directory at the run's root (REFDIR, or check's temporary
folder) and relative paths, so the outputs name ``inputs/...`` and ``outputs/...``.

``check REFDIR`` copies ``REFDIR/inputs`` into a fresh temporary folder (same layout, same
fixed modification times), runs the same scenarios there and compares each scenario's
folder with ``REFDIR/outputs/<scenario>``. Scenarios that work on existing results
(reprocess, summarize, plot, report, review) start from a copy of the *reference* results
of the scenario that made them, so each scenario stands alone (one failure hides nothing
else) and the new code is shown to read results written by the old code. It then renders the
generated videos again with the current :mod:`cpp_tracker.synthetic`, in a child process
pinned to one CPU (x264 takes its thread count from the CPUs it may use, and the encoding
depends on it), and compares the truth tables, configs and empty-box images, the sha256 of
every rendered frame (``iter_frames``, before the encoder) and the decoded frames of the
encoded files with the recorded inputs; and it checks that the bundled sample video is
unchanged. (``--scenario`` runs only the named scenarios and skips the generator.)

Comparison rules
----------------
Before comparing, absolute paths of the run's root (check's temporary folder, and REFDIR
as recorded and as now) become ``<ROOT>`` in every text, table cell and JSON string.

- CSV and parquet tables: the same columns in the same order, the same dtype kind
  (``f``, ``i``, ``b``, ``O`` ...), equal values: floats exactly equal as read
  (pandas 3 reads floats exactly; before it, ``float_precision="round_trip"``; NaN equals
  NaN), strings after path normalisation.
  Wall-clock columns are not compared (:data:`IGNORED_TABLE_COLUMNS`: ``started``,
  ``finished``, ``duration_s`` of ``batch_status.csv``). When the tables are equal but the
  CSV text is not (number formatting), that is a warning.
- JSON (run.json, segments, ...): compared recursively; key order does not matter, every
  other key and value must match (numbers by value, so 6 equals 6.0; NaN equals NaN). Keys
  that hold wall-clock times or durations are dropped wherever they occur
  (:data:`IGNORED_JSON_KEYS`). Keys in :data:`ALLOWED_NEW_KEYS` (JSON paths, list indices
  written ``[*]``; ``schema_version`` = the top-level key) may exist on the new side only.
  The first 20 differences are reported by their JSON path.
- YAML written by the tool (init's commented config): compared as text, line by line,
  after path normalisation; the comments are part of what init writes (and PyYAML is not
  among the libraries this script may use). A difference is a failure.
- PNG: decoded pixels must be identical (mode, size, every value); a difference is reported
  with the largest absolute difference and the share of differing pixels. This holds for
  qc.png too: it shows no time and no path (its header has the video's stem, its length,
  the config hash, the package version, the number of warnings and the QC verdict), so a
  changed version string, and only that, also changes its header pixels.
- MP4 (the tool's review clips, the regenerated input videos): the number of frames and
  their timestamps must be equal, and so must the decoded pixels; pixels that differ only by
  encoder noise (every frame at least :data:`VIDEO_MIN_PSNR_DB` dB) are a warning:
  libx264 as PyAV bundles it encoded the same rendered frames to different bytes now and
  then (up to 3 of 6 videos in one run, also on one thread; at most 47 grey levels, in
  about 1 % of the pixels, every frame 49.9 dB or more). For the generated videos the exact
  check is on the rendered frames.
- HTML (report.html, draw.html, ...): text after normalising paths and ISO timestamps;
  a difference is a warning only.
- Console (``_console.txt``): after normalising paths, ISO timestamps, reprocess's ``in
  0.12 s`` and progress bars; a difference is a warning only. The exit codes
  (``_steps.json``) must be equal: a difference is a failure.
- Any other file: bytes equal (text after path normalisation).
- A file on one side only is a failure, unless its path matches
  :data:`ALLOWED_ONE_SIDED_FILES` (glob patterns relative to ``outputs/``; empty).

Determinism, measured on this project's 2-core machine: the recording code (aefe392)
checked twice against its own recording, and main at 2aa25e2, gave every output file the
same. What differs between two runs of the same code is only the wall-clock fields
(:data:`IGNORED_JSON_KEYS`, :data:`IGNORED_TABLE_COLUMNS`) and, on the console, the seconds
that reprocess and batch print for each result; no float needed a tolerance. The one source
of chance is libx264 (see MP4 above): the regenerated input videos, and possibly the review
clips, differ by encoder noise from run to run.

Timing on that machine, busy with other work: record 95 s, check 65-110 s.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = "<ROOT>"
#: Every input file gets this modification time (run.json records the video's mtime).
FIXED_MTIME_NS = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z
#: Keys holding wall-clock times or durations, dropped wherever they occur in a JSON file.
#: started/finished: ISO times of the run (top level, ``track``, every ``history`` entry);
#: first_started: the first attempt of a resumed run; elapsed_s/tracking_s: seconds the run
#: took. (``duration_s`` is not here: in run.json it is the recording's length.)
IGNORED_JSON_KEYS = frozenset({"started", "finished", "first_started", "elapsed_s", "tracking_s"})
#: JSON paths that may exist on the new side only (``[*]`` for any list index).
ALLOWED_NEW_KEYS = {"schema_version"}
#: Columns of a table (by file name) whose values are wall-clock times, not compared.
IGNORED_TABLE_COLUMNS = {"batch_status.csv": {"started", "finished", "duration_s"}}
#: Files (glob patterns relative to outputs/) that may exist on one side only.
ALLOWED_ONE_SIDED_FILES: set[str] = set()
#: Special files this script writes into each scenario folder.
CONSOLE_FILE, STEPS_FILE = "_console.txt", "_steps.json"
MAX_REPORTED = 20
#: Two encodings of the same frames by libx264 differed by at most 47 grey levels in about 1 %
#: of the pixels, 49.9 dB PSNR or more per frame; a changed drawing or scene is far below this
#: (a changed time stamp in a clip, some 200 levels in 0.5 % of the pixels: about 25 dB).
VIDEO_MIN_PSNR_DB = 40.0

#: read_csv reads floats exactly by default from pandas 3 on (and deprecates the option)
CSV_OPTIONS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
REPROCESS_ELAPSED = re.compile(r"\bin \d+(\.\d+)? s\b")  # reprocess: "reprocessed in 0.12 s"
BATCH_ELAPSED = re.compile(r"^(ok .* -> \S+ \()\d+(\.\d+)? s", re.MULTILINE)  # batch: "(3.0 s"
PROGRESS_BAR = re.compile(r".*(\d+%\||it/s\]|s/it\]).*")  # tqdm's bars


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Video:
    """A generated input video: where it goes and the SceneSpec fields that make it."""

    name: str
    folder: str  # under inputs/
    spec: dict


def arena(**fields) -> dict:
    return {"arena": fields}


# Two chambers, 64 s: long enough for `--workers 2` to cut it into two segments (the
# minimum is 30 s per worker, and there is no command-line option to lower it).
VIDEOS = [
    Video("two_chambers", "videos",
          {"duration_s": 64.0, "seed": 21, "arenas": [arena(animal_id="m01")]}),
    # three chambers, the lights drift and then drop to 0.6 at 20 s, the mouse asleep in
    # one place for half of the video (the resting-mouse removal of the background)
    Video("three_chambers_light_sleep", "videos",
          {"duration_s": 40.0, "seed": 3, "arenas": [arena(n_chambers=3)],
           "light_drift": -0.1, "light_steps": [[20.0, 0.6]], "sleep_fraction": 0.5}),
    # two boxes side by side in one view, doors at an angle, two and three chambers
    Video("two_boxes", "videos",
          {"width": 480, "height": 160, "duration_s": 30.0, "seed": 33,
           "arenas": [arena(n_chambers=2, door_angle_deg=25.0, animal_id="m01"),
                      arena(n_chambers=3, door_angle_deg=-15.0, animal_id="m02")]}),
    # the batch: one animal's pre-test, confined conditioning and post-test
    Video("m01_pre", "batch", {"duration_s": 20.0, "seed": 41}),
    Video("m01_cond", "batch", {"duration_s": 20.0, "seed": 42}),
    Video("m01_post", "batch", {"duration_s": 20.0, "seed": 43}),
]

# m01_pre has no config column: it takes --config; the session joins m01_cond's file(s)
# into the result folder m01_C1
MANIFEST = """\
video,config,animal_id,session,phase,cohort
m01_pre.mp4,,m01,,pre-test,c1
m01_cond.mp4,m01_cond.yaml,m01,m01_C1,conditioning,c1
m01_post.mp4,m01_post.yaml,m01,,post-test,c1
"""

# m02 has rows but no results: warned about and flagged
DESIGN = """\
animal_id,group,sex,phase,session,paired_chamber,doors_closed,video
m01,drug,f,pre-test,,paired,no,
m01,drug,f,conditioning,m01_C1,,yes,
m01,drug,f,post-test,,,no,
m02,saline,m,pre-test,,unpaired,no,
m02,saline,m,post-test,,,no,
"""

# check-config lists every problem at once, exit status 2: README's example (a door that
# misses the arena among them), and the same with a reserved chamber name
BROKEN_CONFIG = """\
arenas:
  - name: box1
    polygon: [[14, 14], [306, 14], [306, 226], [14, 226]]
    doors: [{name: door1, line: [[400, 10], [400, 230]]}]
    chambers: [{name: paired, point: [80, 120]}, {name: unpaired, point: [240, 120]}]
    px_per_cm: -4.8
detection: {treshold: 20}
"""
RESERVED_NAME_CONFIG = BROKEN_CONFIG.replace("name: unpaired", "name: unknown")


def scene_spec(fields: dict):
    """The SceneSpec of a Video's fields (arenas given as {"arena": {...}})."""
    from cpp_tracker.synthetic import ArenaSpec, SceneSpec

    fields = dict(fields)
    fields["arenas"] = tuple(ArenaSpec(**a["arena"]) for a in fields.get("arenas", [arena()]))
    return SceneSpec(**fields)


def rendered_frames(spec) -> dict:
    """Time and sha256 of every frame as rendered, before the encoder (which varies)."""
    from cpp_tracker.synthetic import iter_frames

    frames = {"time_s": [], "sha256": []}
    for t, image in iter_frames(spec):
        frames["time_s"].append(t)
        frames["sha256"].append(hashlib.sha256(np.ascontiguousarray(image)).hexdigest())
    return frames


def render_video(video: Video, folder: Path) -> dict:
    """Render one video into folder; return its truth (track, config, background) and the
    digests of its rendered frames."""
    from cpp_tracker.synthetic import generate_video

    spec = scene_spec(video.spec)
    truth = generate_video(folder / f"{video.name}.mp4", spec)
    return {"track": truth.track, "config": truth.config, "background": truth.background,
            "frames": rendered_frames(spec)}


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_truth(truth: dict, name: str, truth_dir: Path) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    truth["track"].to_parquet(truth_dir / f"{name}_truth.parquet", index=False)
    write_json(truth_dir / f"{name}_config.json", truth["config"])
    write_json(truth_dir / f"{name}_frames.json", truth["frames"])
    Image.fromarray(truth["background"]).save(truth_dir / f"{name}_background.png")


def door_moved_config(config: dict, dx: float) -> dict:
    """The config with every door line moved dx px to the right, and time bins and windows."""
    moved = json.loads(json.dumps(config))
    for box in moved["arenas"]:
        for door in box.get("doors", []):
            door["line"] = [[x + dx, y] for x, y in door["line"]]
    moved["summary"] = {"bin_s": 20, "windows": {"early": [0, 30], "late": [30, "end"]}}
    return moved


def write_generated_inputs(inputs: Path) -> None:
    """Render every video with its config (JSON, which YAML reads) and truth."""
    configs = {}
    for video in VIDEOS:
        folder = inputs / video.folder
        truth = render_video(video, folder)
        write_json(folder / f"{video.name}.yaml", truth["config"])
        write_truth(truth, video.name, inputs / "truth")
        configs[video.name] = truth["config"]
    write_json(inputs / "configs" / "two_chambers_door_moved_bins.yaml",
               door_moved_config(configs["two_chambers"], 4.0))
    write_json(inputs / "specs.json", {v.name: v.spec for v in VIDEOS})


def pin_to_one_cpu() -> None:
    """x264 takes its thread count from the CPUs this process may use, and its encoding
    depends on it: on one CPU the encoder does the same work on every machine (it still
    varies now and then, see compare_video)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def generate_inputs(folder: Path) -> None:
    """Render the generated inputs into folder, in a child process pinned to one CPU."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "generate",
                           str(folder)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"rendering the videos failed: {done.stderr.strip()[-2000:]}")


def write_inputs(inputs: Path) -> None:
    """All inputs of the scenarios, with the fixed modification time."""
    generate_inputs(inputs)
    (inputs / "sample").mkdir(parents=True, exist_ok=True)
    for name in ("cpp_sample.mp4", "cpp_sample.yaml"):
        shutil.copyfile(REPO / "sample_videos" / name, inputs / "sample" / name)
    (inputs / "batch" / "manifest.csv").write_text(MANIFEST, encoding="utf-8")
    (inputs / "design.csv").write_text(DESIGN, encoding="utf-8")
    (inputs / "configs" / "broken.yaml").write_text(BROKEN_CONFIG, encoding="utf-8")
    (inputs / "configs" / "reserved_name.yaml").write_text(RESERVED_NAME_CONFIG,
                                                           encoding="utf-8")
    set_fixed_mtimes(inputs)


def set_fixed_mtimes(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            os.utime(path, ns=(FIXED_MTIME_NS, FIXED_MTIME_NS))


def copy_inputs(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    set_fixed_mtimes(target)


# -------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Step:
    """One command line (after ``cpp-tracker``); paths relative to the run's root."""

    args: tuple[str, ...]
    expect_exit: int = 0


@dataclass(frozen=True)
class Scenario:
    """Commands writing into outputs/<name>/; `seeds` are reference result folders copied
    in first, as (folder under REFDIR/outputs, folder under outputs/<name>)."""

    name: str
    steps: tuple[Step, ...]
    seeds: tuple[tuple[str, str], ...] = ()
    premise: Callable[[Path], list[str]] | None = None  # checked by record

    @property
    def out(self) -> str:
        return f"outputs/{self.name}"


def step(*args: str, expect_exit: int = 0) -> Step:
    return Step(tuple(args), expect_exit)


def read_run_json(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text(encoding="utf-8"))


def workers_premise(out: Path) -> list[str]:
    """Two segments really were used, and the results equal the one-pass run's."""
    parallel = read_run_json(out / "two_chambers")["parallel"]
    problems = []
    if parallel["workers"] != 2 or len(parallel["segments"]) != 2:
        problems.append(f"run.json parallel is not 2 workers with 2 segments: {parallel}")
    one_pass = out.parent / "track_two_chambers" / "two_chambers"
    for name in ("occupancy.csv", "summary.csv"):
        if (one_pass / name).read_bytes() != (out / "two_chambers" / name).read_bytes():
            problems.append(f"{name} differs from the one-pass run's")
    # the same table; the file has one row group per segment, so its bytes differ
    if not read_table(one_pass / "track.parquet").equals(
            read_table(out / "two_chambers" / "track.parquet")):
        problems.append("track.parquet differs from the one-pass run's")
    return problems


def reprocess_premise(out: Path) -> list[str]:
    run = read_run_json(out / "two_chambers")
    problems = [] if run["command"] == "reprocess" else [f"command is {run['command']}"]
    if not (out / "two_chambers" / "summary_bins.csv").exists():
        problems.append("no summary_bins.csv")
    return problems


def light_sleep_premise(out: Path) -> list[str]:
    run = read_run_json(out / "three_chambers_light_sleep")
    problems = []
    if run["lighting"]["abrupt_changes"] < 1:
        problems.append("no abrupt lighting change found")
    if not run["background"]["resting_mouse"]:
        problems.append("no resting mouse removed from the background")
    return problems


def two_boxes_premise(out: Path) -> list[str]:
    summary = pd.read_csv(out / "two_boxes" / "summary.csv")
    arenas = sorted(summary["arena"].unique())
    return [] if arenas == ["box1", "box2"] else [f"arenas tracked: {arenas}"]


def track(video: str, config: str, name: str, *options: str) -> Step:
    return step("track", video, "--config", config, "--out", f"outputs/{name}",
                "--no-progress", *options)


def generated(name: str, folder: str = "videos") -> tuple[str, str]:
    return f"inputs/{folder}/{name}.mp4", f"inputs/{folder}/{name}.yaml"


def scenarios() -> list[Scenario]:
    """Every scenario, those that make results before those that start from them."""
    sample = ("inputs/sample/cpp_sample.mp4", "inputs/sample/cpp_sample.yaml")
    two, three, boxes = (generated(n) for n in
                         ("two_chambers", "three_chambers_light_sleep", "two_boxes"))
    return [
        Scenario("track_sample", (track(*sample, "track_sample"),)),
        Scenario("track_two_chambers", (track(*two, "track_two_chambers"),)),
        Scenario("track_three_chambers_light_sleep",
                 (track(*three, "track_three_chambers_light_sleep"),),
                 premise=light_sleep_premise),
        Scenario("track_two_boxes", (track(*boxes, "track_two_boxes"),),
                 premise=two_boxes_premise),
        Scenario("track_workers2", (track(*two, "track_workers2", "--workers", "2"),),
                 premise=workers_premise),
        Scenario("batch", (step(
            "batch", "inputs/batch/manifest.csv", "--config", "inputs/batch/m01_pre.yaml",
            "--out", "outputs/batch", "--workers", "1", "--no-progress"),)),
        reprocess_scenario(),
        summarize_scenario(),
        Scenario("preview", (step("preview", boxes[0], "--config", boxes[1], "--out",
                                  "outputs/preview/two_boxes_preview.png"),)),
        Scenario("init", (
            step("init", two[0], "--out", "outputs/init/box.yaml"),
            step("init", boxes[0], "--out", "outputs/init/boxes.yaml", "--arenas", "2"),
            step("check-config", "outputs/init/box.yaml", "--video", two[0]),
        )),
        Scenario("check_config", (
            step("check-config", sample[1], "--video", sample[0]),
            step("check-config", boxes[1], "--video", boxes[0]),
            step("check-config", "inputs/configs/broken.yaml", expect_exit=2),
            step("check-config", "inputs/configs/reserved_name.yaml", expect_exit=2),
        )),
        Scenario("draw", (step("draw", two[0], "--config", two[1], "--out",
                               "outputs/draw/draw.html"),)),
        Scenario("plot", (step("plot", "outputs/plot"),),
                 seeds=(("track_sample/cpp_sample", "cpp_sample"),
                        ("track_two_boxes/two_boxes", "two_boxes"))),
        Scenario("report", (step("report", "outputs/report"),),
                 seeds=(("track_sample/cpp_sample", "cpp_sample"),
                        ("track_two_boxes/two_boxes", "two_boxes"))),
        Scenario("review", (
            step("review", "outputs/review/cpp_sample", "--max-clips", "2"),
            step("review", "outputs/review", "--sample", "6", "--seed", "3"),
        ), seeds=(("track_sample/cpp_sample", "cpp_sample"),)),
    ]


def reprocess_scenario() -> Scenario:
    """A copy of a track result, its door moved 4 px, with time bins and windows; then the
    same again (nothing to do), then --force (the results kept again)."""
    config = "inputs/configs/two_chambers_door_moved_bins.yaml"
    return Scenario("reprocess", (
        step("reprocess", "outputs/reprocess", "--config", config, "--keep-previous"),
        step("reprocess", "outputs/reprocess", "--config", config),
        step("reprocess", "outputs/reprocess", "--config", config, "--force",
             "--keep-previous"),
    ), seeds=(("track_two_chambers/two_chambers", "two_chambers"),),
        premise=reprocess_premise)


def summarize_scenario() -> Scenario:
    results = "outputs/summarize/batch"
    return Scenario("summarize", (
        step("summarize", results, "--design", "inputs/design.csv", "--out",
             "outputs/summarize/cpp_results.csv"),
        step("summarize", results, "--design", "inputs/design.csv", "--long", "--out",
             "outputs/summarize/cpp_results_long.csv"),
        step("summarize", results, "--out", "outputs/summarize/all_sessions.csv"),
        step("summarize", results, "--long", "--out", "outputs/summarize/all_long.csv"),
    ), seeds=(("batch", "batch"),))


# ---------------------------------------------------------------------------- running
def run_cli(args: tuple[str, ...], root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpp_tracker", *args], cwd=root,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def seed_results(scenario: Scenario, root: Path, refdir: Path) -> None:
    for source, target in scenario.seeds:
        src = refdir / "outputs" / source
        dst = root / scenario.out / target
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(CONSOLE_FILE, STEPS_FILE))


def console_block(step_: Step, done: subprocess.CompletedProcess) -> str:
    return (f"$ cpp-tracker {' '.join(step_.args)}\n[exit {done.returncode}]\n"
            f"--- stdout ---\n{done.stdout}--- stderr ---\n{done.stderr}\n")


def run_scenario(scenario: Scenario, root: Path, refdir: Path) -> list[str]:
    """Run one scenario into root/outputs/<name>; return the problems with its exit codes."""
    out = root / scenario.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seed_results(scenario, root, refdir)
    console, steps, problems = [], [], []
    for s in scenario.steps:
        done = run_cli(s.args, root)
        console.append(console_block(s, done))
        steps.append({"args": list(s.args), "exit": done.returncode})
        if done.returncode != s.expect_exit:
            problems.append(f"{' '.join(s.args[:1])} exited {done.returncode}, expected "
                            f"{s.expect_exit}: {done.stderr.strip()[-500:]}")
    (out / CONSOLE_FILE).write_text("".join(console), encoding="utf-8")
    write_json(out / STEPS_FILE, steps)
    return problems


def run_all(chosen: list[Scenario], root: Path, refdir: Path, check_premises: bool) -> dict:
    """Run the scenarios; print one line each; return {name: problems}."""
    problems = {}
    for scenario in chosen:
        t0 = time.perf_counter()
        found = run_scenario(scenario, root, refdir)
        if check_premises and scenario.premise and not found:
            found = scenario.premise(root / scenario.out)
        problems[scenario.name] = found
        state = "ok" if not found else "PROBLEM: " + "; ".join(found)
        print(f"ran {scenario.name:<34} {time.perf_counter() - t0:6.1f} s  {state}", flush=True)
    return problems


# ------------------------------------------------------------------------ normalising
class Normaliser:
    """Replaces the absolute paths of the run roots by PLACEHOLDER."""

    def __init__(self, roots: list[str]):
        variants = set()
        for root in roots:
            variants.update({root, str(Path(root).resolve())})
        self.roots = sorted((r.rstrip("/") for r in variants if r), key=len, reverse=True)

    def text(self, value: str) -> str:
        for root in self.roots:
            value = value.replace(root, PLACEHOLDER)
        return value

    def json(self, value):
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items() if k not in IGNORED_JSON_KEYS}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def normalise_console(text: str, norm: Normaliser) -> str:
    text = norm.text(text)
    text = ISO_TIME.sub("<TIME>", text)
    text = REPROCESS_ELAPSED.sub("in <ELAPSED> s", text)
    text = BATCH_ELAPSED.sub(r"\1<ELAPSED> s", text)
    lines = [line.split("\r")[-1] for line in text.split("\n")]
    return "\n".join(line for line in lines if not PROGRESS_BAR.fullmatch(line))


def normalise_html(text: str, norm: Normaliser) -> str:
    return ISO_TIME.sub("<TIME>", norm.text(text))


# ------------------------------------------------------------------------- comparing
@dataclass
class Outcome:
    status: str  # "same", "DIFFERENT" or "WARNING"
    detail: str = ""


SAME = Outcome("same")


def first_line_difference(old: str, new: str, label: str) -> str:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)):
        if a != b:
            return f"{label}line {i + 1}: {a[:150]!r} -> {b[:150]!r}"
    return f"{label}{len(old_lines)} lines -> {len(new_lines)} lines"


def compare_text(old: str, new: str, label: str, failure: bool) -> Outcome:
    if old == new:
        return SAME
    return Outcome("DIFFERENT" if failure else "WARNING", first_line_difference(old, new, label))


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, **CSV_OPTIONS)


def plain(value):
    """A numpy scalar as the Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def column_differences(old: pd.Series, new: pd.Series, norm: Normaliser) -> list[int]:
    """Row numbers where two columns of the same dtype kind differ."""
    if old.dtype.kind == "f":
        a, b = old.to_numpy(float), new.to_numpy(float)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        return list(np.flatnonzero(~same))
    if old.dtype.kind in "iub":
        return list(np.flatnonzero(old.to_numpy() != new.to_numpy()))
    rows = []
    for i, (a, b) in enumerate(zip(old.tolist(), new.tolist(), strict=True)):
        a = norm.text(a) if isinstance(a, str) else a
        b = norm.text(b) if isinstance(b, str) else b
        if not (a == b or (is_missing(a) and is_missing(b))):
            rows.append(i)
    return rows


def table_structure_difference(old: pd.DataFrame, new: pd.DataFrame) -> str | None:
    if list(old.columns) != list(new.columns):
        return f"columns {list(old.columns)} -> {list(new.columns)}"
    if len(old) != len(new):
        return f"{len(old)} rows -> {len(new)} rows"
    kinds = [f"{c}: {old[c].dtype} -> {new[c].dtype}" for c in old.columns
             if old[c].dtype.kind != new[c].dtype.kind]
    return "dtype " + ", ".join(kinds) if kinds else None


def compare_tables(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    old, new = read_table(old_path), read_table(new_path)
    structure = table_structure_difference(old, new)
    if structure:
        return Outcome("DIFFERENT", structure)
    ignored = IGNORED_TABLE_COLUMNS.get(old_path.name, set())
    problems = []
    for column in old.columns:
        if column in ignored:
            continue
        rows = column_differences(old[column], new[column], norm)
        if rows:
            r = rows[0]
            problems.append(f"{column}: {len(rows)} row(s), first row {r}: "
                            f"{plain(old[column].iloc[r])!r} -> {plain(new[column].iloc[r])!r}")
    if problems:
        return Outcome("DIFFERENT", "; ".join(problems[:MAX_REPORTED]))
    if old_path.suffix == ".csv" and not ignored:
        old_text = norm.text(old_path.read_text(encoding="utf-8"))
        text = compare_text(old_text, norm.text(new_path.read_text(encoding="utf-8")),
                            "values equal, text differs: ", failure=False)
        return text
    return SAME


def allowed_new(path: str) -> bool:
    return re.sub(r"\[\d+\]", "[*]", path) in ALLOWED_NEW_KEYS


def equal_scalars(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def json_differences(old, new, path: str, found: list[str]) -> None:
    """Append to found the JSON paths where old and new differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            child = f"{path}.{key}" if path else key
            if key not in new:
                found.append(f"{child}: missing on the new side")
            else:
                json_differences(old[key], new[key], child, found)
        for key in new:
            child = f"{path}.{key}" if path else key
            if key not in old and not allowed_new(child):
                found.append(f"{child}: new key, {json.dumps(new[key])[:100]}")
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            found.append(f"{path}: {len(old)} items -> {len(new)} items")
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            json_differences(a, b, f"{path}[{i}]", found)
    elif not equal_scalars(old, new):
        found.append(f"{path}: {json.dumps(old)[:100]} -> {json.dumps(new)[:100]}")


def compare_json(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    old = norm.json(json.loads(old_path.read_text(encoding="utf-8")))
    new = norm.json(json.loads(new_path.read_text(encoding="utf-8")))
    found: list[str] = []
    json_differences(old, new, "", found)
    if not found:
        return SAME
    more = f" (+{len(found) - MAX_REPORTED} more)" if len(found) > MAX_REPORTED else ""
    return Outcome("DIFFERENT", "; ".join(found[:MAX_REPORTED]) + more)


def read_pixels(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        return image.mode, np.asarray(image)


def compare_png(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    (old_mode, old), (new_mode, new) = read_pixels(old_path), read_pixels(new_path)
    if old_mode != new_mode or old.shape != new.shape:
        return Outcome("DIFFERENT", f"{old_mode} {old.shape} -> {new_mode} {new.shape}")
    if np.array_equal(old, new):
        return SAME
    diff = np.abs(old.astype(int) - new.astype(int))
    pixels = diff.reshape(old.shape[0], old.shape[1], -1).max(axis=2) > 0
    return Outcome("DIFFERENT", f"pixels differ: max abs difference {diff.max()}, "
                   f"{100 * pixels.mean():.3f} % of the pixels")


def decoded_frames(path: Path) -> tuple[list[float], np.ndarray]:
    """Each frame's timestamp (ms) and luma, as OpenCV decodes the file."""
    capture = cv2.VideoCapture(str(path))
    times, frames = [], []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            times.append(capture.get(cv2.CAP_PROP_POS_MSEC))
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    finally:
        capture.release()
    return times, np.array(frames)


def lowest_psnr(old: np.ndarray, new: np.ndarray) -> float:
    """The lowest PSNR (dB) of any frame of new against old (same shapes)."""
    mse = ((old.astype(np.float64) - new) ** 2).mean(axis=(1, 2))
    return float(10 * np.log10(255.0**2 / max(float(mse.max()), 1e-12)))


def compare_video(old_path: Path, new_path: Path, norm: Normaliser | None = None) -> Outcome:
    """Frame count and timestamps exactly; pixels exactly, or within encoder noise (a
    warning): libx264 as PyAV bundles it encodes the same frames to different bytes now and
    then, even on one thread."""
    (old_t, old), (new_t, new) = decoded_frames(old_path), decoded_frames(new_path)
    if old.shape != new.shape or not len(old):
        return Outcome("DIFFERENT", f"frames {old.shape} -> {new.shape}")
    if old_t != new_t:
        return Outcome("DIFFERENT", "frame timestamps differ")
    if np.array_equal(old, new):
        return SAME
    differ = int((old != new).any(axis=(1, 2)).sum())
    psnr = lowest_psnr(old, new)
    detail = (f"{differ} of {len(old)} decoded frames differ, largest difference "
              f"{int(np.abs(old.astype(int) - new).max())}, lowest PSNR {psnr:.1f} dB")
    if psnr >= VIDEO_MIN_PSNR_DB:
        return Outcome("WARNING", f"{detail} (encoder noise)")
    return Outcome("DIFFERENT", detail)


def compare_yaml(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    return compare_text(norm.text(old_path.read_text(encoding="utf-8")),
                        norm.text(new_path.read_text(encoding="utf-8")), "", failure=True)


def compare_html(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    return compare_text(normalise_html(old_path.read_text(encoding="utf-8"), norm),
                        normalise_html(new_path.read_text(encoding="utf-8"), norm), "",
                        failure=False)


def compare_console(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    return compare_text(normalise_console(old_path.read_text(encoding="utf-8"), norm),
                        normalise_console(new_path.read_text(encoding="utf-8"), norm), "",
                        failure=False)


def compare_steps(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    old = json.loads(old_path.read_text(encoding="utf-8"))
    new = json.loads(new_path.read_text(encoding="utf-8"))
    codes = [f"{' '.join(a['args'][:2])}: exit {a['exit']} -> {b['exit']}"
             for a, b in zip(old, new, strict=False) if a["exit"] != b["exit"]]
    if len(old) != len(new):
        codes.append(f"{len(old)} commands -> {len(new)} commands")
    return Outcome("DIFFERENT", "; ".join(codes)) if codes else SAME


def compare_bytes(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    old, new = old_path.read_bytes(), new_path.read_bytes()
    try:
        old, new = norm.text(old.decode("utf-8")), norm.text(new.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    if old == new:
        return SAME
    if isinstance(old, str):
        return Outcome("DIFFERENT", first_line_difference(old, new, ""))
    return Outcome("DIFFERENT", f"bytes differ ({len(old)} -> {len(new)} bytes)")


COMPARERS = {
    ".csv": compare_tables, ".parquet": compare_tables, ".json": compare_json,
    ".png": compare_png, ".mp4": compare_video, ".yaml": compare_yaml, ".yml": compare_yaml,
    ".html": compare_html, ".htm": compare_html,
}


def compare_file_with(comparer: Callable, old_path: Path, new_path: Path,
                      norm: Normaliser) -> Outcome:
    if not new_path.exists():
        return Outcome("DIFFERENT", "only in the reference")
    try:
        return comparer(old_path, new_path, norm)
    except Exception as e:  # noqa: BLE001 - an unreadable file is a difference, not a crash
        return Outcome("DIFFERENT", f"cannot be compared ({type(e).__name__}: {e})")


def compare_file(old_path: Path, new_path: Path, norm: Normaliser) -> Outcome:
    if old_path.name == CONSOLE_FILE:
        comparer = compare_console
    elif old_path.name == STEPS_FILE:
        comparer = compare_steps
    else:
        comparer = COMPARERS.get(old_path.suffix.lower(), compare_bytes)
    return compare_file_with(comparer, old_path, new_path, norm)


def files_below(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def one_sided_allowed(relative: str) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in ALLOWED_ONE_SIDED_FILES)


def compare_folders(old_root: Path, new_root: Path, scenario: str,
                    norm: Normaliser) -> list[tuple[str, Outcome]]:
    """(path relative to outputs/, outcome) for every file of one scenario."""
    old_files = files_below(old_root / scenario)
    new_files = files_below(new_root / scenario)
    results = []
    for name in sorted(old_files | new_files):
        relative = f"{scenario}/{name}"
        if name not in new_files or name not in old_files:
            side = "reference" if name in old_files else "new run"
            status = "WARNING" if one_sided_allowed(relative) else "DIFFERENT"
            results.append((relative, Outcome(status, f"only in the {side}")))
        else:
            results.append((relative, compare_file(old_root / scenario / name,
                                                   new_root / scenario / name, norm)))
    return results


# ------------------------------------------------------------ checking the generator
def compare_truth(video: Video, refdir: Path, regen: Path, norm: Normaliser) -> list:
    """The regenerated video's frames and truth against the recorded inputs."""
    name = f"{video.folder}/{video.name}.mp4"
    results = [(f"generator/{name} (decoded frames)",
                compare_video(refdir / "inputs" / name, regen / name))]
    for suffix, comparer in (("_truth.parquet", compare_tables), ("_config.json", compare_json),
                             ("_frames.json", compare_json), ("_background.png", compare_png)):
        name = f"truth/{video.name}{suffix}"
        results.append((f"generator/{name}",
                        compare_file_with(comparer, refdir / "inputs" / name, regen / name, norm)))
    return results


def compare_generator(refdir: Path, regen: Path, norm: Normaliser) -> list:
    """Render the inputs again with the current generator and compare them."""
    try:
        generate_inputs(regen)
    except RuntimeError as e:
        return [("generator", Outcome("DIFFERENT", str(e)))]
    results = []
    for video in VIDEOS:
        results.extend(compare_truth(video, refdir, regen, norm))
    results.append(("generator/configs/two_chambers_door_moved_bins.yaml",
                    compare_file_with(compare_json,
                                      refdir / "inputs/configs/two_chambers_door_moved_bins.yaml",
                                      regen / "configs/two_chambers_door_moved_bins.yaml", norm)))
    return results


def compare_sample(refdir: Path) -> list:
    bundled = REPO / "sample_videos" / "cpp_sample.mp4"
    if not bundled.exists():
        return [("sample_videos/cpp_sample.mp4", Outcome("WARNING", "not in this repository"))]
    recorded = (refdir / "inputs" / "sample" / "cpp_sample.mp4").read_bytes()
    same = recorded == bundled.read_bytes()
    return [("sample_videos/cpp_sample.mp4 (bytes vs the recorded copy)",
             SAME if same else Outcome("DIFFERENT", "the bundled sample video changed"))]


# ------------------------------------------------------------------------ environment
LIBRARIES = ("cpp-tracker", "numpy", "pandas", "pyarrow", "opencv-python-headless", "av",
             "matplotlib", "shapely", "pillow", "pyyaml")


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def environment() -> dict:
    return {"commit": git_commit(), "python": platform.python_version(),
            "libraries": library_versions()}


def warn_about_environment(recorded: dict) -> None:
    now = environment()
    for name, version in recorded.get("libraries", {}).items():
        if now["libraries"].get(name) != version:
            print(f"note: {name} {version} when recorded, {now['libraries'].get(name)} now")
    if recorded.get("python") != now["python"]:
        print(f"note: Python {recorded.get('python')} when recorded, {now['python']} now")


# ---------------------------------------------------------------------------- commands
def choose(names: list[str] | None) -> list[Scenario]:
    every = scenarios()
    if not names:
        return every
    unknown = set(names) - {s.name for s in every}
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return [s for s in every if s.name in names]


def say_which_package() -> None:
    spec = importlib.util.find_spec("cpp_tracker")
    where = spec.origin if spec else "not installed"
    print(f"running {sys.executable} -m cpp_tracker, the package at {where}", flush=True)


def record(refdir: Path, force: bool) -> int:
    refdir = refdir.resolve()
    say_which_package()
    if refdir.exists() and any(refdir.iterdir()):
        if not force:
            sys.exit(f"{refdir} is not empty; add --force to record again")
        for name in ("inputs", "outputs", "reference.json"):
            target = refdir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    t0 = time.perf_counter()
    write_inputs(refdir / "inputs")
    print(f"inputs written in {time.perf_counter() - t0:.1f} s", flush=True)
    chosen = choose(None)
    problems = run_all(chosen, refdir, refdir, check_premises=True)
    write_json(refdir / "reference.json", {
        "recorded_root": str(refdir), **environment(),
        "scenarios": {s.name: [" ".join(st.args) for st in s.steps] for s in chosen},
    })
    failed = [name for name, found in problems.items() if found]
    print(f"recorded {len(chosen)} scenarios into {refdir} in "
          f"{time.perf_counter() - t0:.1f} s; {len(failed)} with problems")
    return 1 if failed else 0


def print_outcomes(results: list[tuple[str, Outcome]]) -> tuple[int, int]:
    for name, outcome in results:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(f"{outcome.status:<9} {name}{detail}")
    different = sum(o.status == "DIFFERENT" for _, o in results)
    warnings = sum(o.status == "WARNING" for _, o in results)
    return different, warnings


def check(refdir: Path, names: list[str] | None, keep: bool) -> int:
    refdir = refdir.resolve()
    reference = json.loads((refdir / "reference.json").read_text(encoding="utf-8"))
    say_which_package()
    warn_about_environment(reference)
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="cpp_reference_check_")).resolve()
    try:
        copy_inputs(refdir / "inputs", root / "inputs")
        chosen = choose(names)
        run_all(chosen, root, refdir, check_premises=False)
        norm = Normaliser([str(root), str(refdir), reference["recorded_root"]])
        results = []
        for scenario in chosen:
            results += compare_folders(refdir / "outputs", root / "outputs", scenario.name,
                                       norm)
        if not names:
            results += compare_generator(refdir, root / "regenerated", norm)
            results += compare_sample(refdir)
    finally:
        if keep:
            print(f"kept the new run in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    different, warnings = print_outcomes(results)
    print(f"{len(results)} compared: {len(results) - different - warnings} same, "
          f"{different} different, {warnings} warning(s) ({time.perf_counter() - t0:.1f} s)")
    return 1 if different else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record", help="make the inputs and record the outputs into REFDIR")
    p.add_argument("refdir", type=Path)
    p.add_argument("--force", action="store_true", help="replace an earlier recording")
    p = sub.add_parser("generate", help="render the generated inputs into FOLDER, pinned to "
                       "one CPU (record and check run this in a child process)")
    p.add_argument("folder", type=Path)
    p = sub.add_parser("check", help="run the same scenarios now and compare with REFDIR")
    p.add_argument("refdir", type=Path)
    p.add_argument("--scenario", action="append", help="only this scenario (repeatable; "
                   "skips the generator check)")
    p.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.refdir, args.force)
    if args.command == "generate":
        pin_to_one_cpu()
        write_generated_inputs(args.folder)
        return 0
    return check(args.refdir, args.scenario, args.keep)


if __name__ == "__main__":
    sys.exit(main())
