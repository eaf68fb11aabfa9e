"""``trial: {start: auto}`` end to end: a generated session that starts with the experimenter
(a gloved hand puts the mouse in, the doors are lifted) tracked by the command line.

The scene's seed (301) is one of the held-out seeds of benchmarks/trial_start.py: the
detection was not tuned on it.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from cpp_tracker.cli import main
from cpp_tracker.synthetic import ArenaSpec
from cpp_tracker.visual.plots import draw_qc_figure

TOLERANCE_S = 1.0  # the detected start against the truth
SHARE = 0.005  # chamber times against the truth, of the counted time


def run_cli(args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def session(video_factory):
    return video_factory("trial_session", duration_s=30.0, seed=301, experimenter=True,
                         lid_gain=0.9, arenas=(ArenaSpec(n_chambers=3),))


def _config(tmp_path, truth, **top):
    path = tmp_path / "box.yaml"
    path.write_text(yaml.safe_dump({**truth.config, **top}, sort_keys=False))
    return path


def _chamber_errors(result, truth_times) -> list[float]:
    summary = pd.read_csv(result / "summary.csv").set_index("chamber")
    counted = float(truth_times.sum())
    return [abs(float(summary.loc[c, "time_s"]) - float(v)) / counted
            for c, v in truth_times.items()]


def test_auto_finds_the_start_counts_from_it_and_never_tracks_the_hand(session, tmp_path):
    video, truth, _ = session
    config = _config(tmp_path, truth, trial={"start": "auto"})
    code, _, err = run_cli(["track", video, "--config", config, "--out", tmp_path / "out",
                            "--no-progress", "--workers", "2"])
    assert code == 0, err
    result = tmp_path / "out" / video.stem
    run = json.loads((result / "run.json").read_text())
    trial = run["trial"]
    assert trial["requested"] == "auto" and trial["source"] == "trial.start" and trial["found"]
    assert abs(trial["start_s"] - truth.trial_start_s) <= TOLERANCE_S
    assert abs(trial["start_s"] - truth.trial_start_s) <= 0.2  # as measured: about 0.05 s
    assert "a door last closed at" in trial["reason"]
    assert run["window"]["start_s"] == trial["start_s"]
    assert run["parallel"]["one_pass_reason"] == "a time window is tracked in one pass"
    # counted from the start: the chamber times of the truth from its start
    assert max(_chamber_errors(result, truth.chamber_times().iloc[0])) <= SHARE
    # the track begins at the start and every position is the mouse's, never the hand's
    track = pd.read_parquet(result / "track.parquet")
    assert track["time_s"].min() == pytest.approx(0.0, abs=0.05)
    true = truth.track.set_index(truth.track["time_s"].round(3))
    at = (track["time_s"] + trial["start_s"]).round(3)
    found = track["detected"].to_numpy()
    dx = track["x"].to_numpy() - true.loc[at, "x"].to_numpy()
    dy = track["y"].to_numpy() - true.loc[at, "y"].to_numpy()
    body = 0.09 * (truth.config["arenas"][0]["polygon"][1][0]
                   - truth.config["arenas"][0]["polygon"][0][0])
    assert found.mean() > 0.98
    assert np.nanmax(np.hypot(dx, dy)[found]) < 0.5 * body
    # the empty box is clean (sampled from the trial, without the hand): no spot of it
    # differs from the true empty box by more than compression does (a hand would, over
    # several mouse areas)
    background = np.asarray(Image.open(result / "background.png").convert("L"), float)
    off = np.abs(background - truth.background) > 30
    assert np.count_nonzero(off) < 50, np.count_nonzero(off)
    assert (result / "qc.png").exists()
    figure, _ = draw_qc_figure(result)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    mark = f"| time 0 = trial start {trial['start_s']:.1f} s (auto): {trial['reason']}"
    assert mark in texts


def test_a_start_in_seconds_and_the_default(session, tmp_path):
    video, truth, plain_config = session
    config = _config(tmp_path, truth, trial={"start": 12.5})
    assert run_cli(["track", video, "--config", config, "--out", tmp_path / "fixed",
                    "--no-progress"])[0] == 0
    run = json.loads((tmp_path / "fixed" / video.stem / "run.json").read_text())
    assert run["trial"] == {"requested": 12.5, "source": "trial.start", "start_s": 12.5,
                            "found": True, "reason": "given: trial.start 12.5 s"}
    assert run["window"]["start_s"] == 12.5
    track = truth.track[truth.track["time_s"] >= 12.5 - 1e-9]
    truth_times = track.groupby("chamber").size() / truth.spec.fps
    assert max(_chamber_errors(tmp_path / "fixed" / video.stem, truth_times)) <= SHARE
    # the default: the whole video, no trial block, as before
    assert run_cli(["track", video, "--config", plain_config, "--out", tmp_path / "plain",
                    "--no-progress"])[0] == 0
    plain = json.loads((tmp_path / "plain" / video.stem / "run.json").read_text())
    assert "trial" not in plain and plain["window"]["start_s"] is None


def test_bad_trial_start_is_one_sentence_naming_the_key(session, tmp_path):
    video, truth, _ = session
    config = _config(tmp_path, truth, trial={"start": "when the doors open"})
    code, out, err = run_cli(["track", video, "--config", config, "--out", tmp_path / "o",
                              "--no-progress"])
    assert code == 2
    assert "trial.start: expected 'auto' or a number of seconds" in err
    assert "Traceback" not in err


def test_manifest_start_s_auto(session, tmp_path):
    video, truth, plain_config = session
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"video,start_s\n{video},auto\n")
    args = ["batch", manifest, "--config", plain_config, "--out", tmp_path / "b",
            "--no-progress", "--workers", "1"]
    code, _, err = run_cli(args)
    assert code == 0, err
    run = json.loads((tmp_path / "b" / video.stem / "run.json").read_text())
    assert run["trial"]["source"] == "start_s" and run["trial"]["found"]
    assert abs(run["trial"]["start_s"] - truth.trial_start_s) <= 0.2
    assert run["run_key"]["start_s"] == "auto"
    # a rerun finds the result up to date (the key holds 'auto', not the found second)
    assert run_cli(args)[0] == 0
    status = pd.read_csv(tmp_path / "b" / "batch_status.csv", dtype=str)
    assert status["status"].tolist() == ["skipped"]  # up to date


def test_reprocess_keeps_the_stored_start_and_a_changed_start_needs_a_new_track(
        session, tmp_path):
    video, truth, _ = session
    config = _config(tmp_path, truth, trial={"start": "auto"})
    assert run_cli(["track", video, "--config", config, "--out", tmp_path / "r",
                    "--no-progress"])[0] == 0
    result = tmp_path / "r" / video.stem
    before = json.loads((result / "run.json").read_text())
    # a setting the stored track allows: the start and the window stay
    raw = yaml.safe_load(config.read_text())
    raw["chambers"] = {"hysteresis_px": 8}
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_cli(["reprocess", result, "--config", moved])[0] == 0
    after = json.loads((result / "run.json").read_text())
    assert after["command"] == "reprocess"
    assert after["trial"] == before["trial"] and after["window"] == before["window"]
    # another start cannot come from the stored track
    raw["trial"] = {"start": 3}
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, _, err = run_cli(["reprocess", result, "--config", other])
    assert code == 2 and "trial.start" in err and "--retrack" in err


def test_a_start_not_found_counts_from_the_video_start_and_says_so(session, tmp_path):
    video, truth, _ = session
    config = _config(tmp_path, truth, trial={"start": "auto", "search_s": 4})
    code, said, err = run_cli(["track", video, "--config", config, "--out", tmp_path / "nf",
                               "--no-progress"])
    assert code == 0, err
    run = json.loads((tmp_path / "nf" / video.stem / "run.json").read_text())
    assert run["trial"]["found"] is False and run["trial"]["start_s"] == 0.0
    assert run["window"]["start_s"] is None
    warning = next(w for w in run["warnings"] if "no trial start found" in w)
    assert warning.startswith(f"{video}: no trial start found in the first 4 s:")
    assert warning.endswith("counted from the start of the video instead: check the video, "
                            "or give trial.start in seconds")
    figure, _ = draw_qc_figure(tmp_path / "nf" / video.stem)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert "| time 0 = trial start not found: counted from the video's start" in texts
    # doubt travels: the QC verdict carries it, so summary.csv, the console, the
    # experiment's table (usable = False) and a reprocess from the stored track all show it
    result = tmp_path / "nf" / video.stem
    doubt = "trial start not found (trial.start: auto)"
    assert all(doubt in "; ".join(q["review_reasons"]) and q["needs_review"]
               for q in run["qc"].values())
    assert pd.read_csv(result / "summary.csv")["needs_review"].all()
    assert "NEEDS REVIEW" in said and doubt in said
    code, out, err = run_cli(["summarize", tmp_path / "nf", "--out", tmp_path / "t.csv"])
    assert code == 0, err
    table = pd.read_csv(tmp_path / "t.csv")
    assert (~table["usable"]).all() and table["doubts"].str.contains(doubt, regex=False).all()
    raw = yaml.safe_load(config.read_text())
    raw["chambers"] = {"hysteresis_px": 8}
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_cli(["reprocess", result, "--config", moved])[0] == 0
    again = json.loads((result / "run.json").read_text())
    assert all(doubt in "; ".join(q["review_reasons"]) for q in again["qc"].values())
