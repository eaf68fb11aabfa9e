"""`chambers.rule: body_fraction` on generated videos, against the exact body shares.

The generator knows the mouse's body and head outline in every frame
(:func:`cpp_tracker.synthetic.scenes.body_shares`: the share of it in each chamber, on a 4x
supersampled mask). The tracker's shares come from the thresholded blob, whose outline is
the blurred edge: they lie within :data:`SHARE_TOL` of the truth. The rule applied to the
true shares is the true chamber; the tracked chamber may differ from it only where a true
share lies within :data:`SHARE_TOL` of a threshold (the crossing is then dated a frame or
two apart), in at most :data:`NEAR_FRAMES` frames around such a frame.
"""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cpp_tracker.cli import main
from cpp_tracker.geometry.chambers import assign_by_body_fraction
from cpp_tracker.synthetic.scenes import ArenaSpec, body_shares
from tests.conftest import write_config

ENTER, EXIT = 0.7, 0.3
SHARE_TOL = 0.04
NEAR_FRAMES = 3


def _track(video, config, out) -> None:
    args = ["track", str(video), "--config", str(config), "--out", str(out), "--no-progress"]
    assert main(args) == 0


def _body_config(config: dict) -> dict:
    new = copy.deepcopy(config)
    new["chambers"] = {"rule": "body_fraction", "enter_fraction": ENTER,
                       "exit_fraction": EXIT}
    return new


@pytest.fixture(scope="module", params=[2, 3], ids=["two_chambers", "three_chambers"])
def runs(request, video_factory, tmp_path_factory):
    """One video tracked with each rule. Seed 10: the mouse crosses the door several times
    and stops in the doorway for 2 s; in the three-chamber box (seed 12) it lies across a
    door line in 147 frames."""
    n = request.param
    video, truth, config_path = video_factory(
        f"entry_rule_{n}", duration_s=30.0 if n == 2 else 20.0, seed=10 if n == 2 else 12,
        arenas=(ArenaSpec(n_chambers=n),))
    root = tmp_path_factory.mktemp(f"entry_rule_{n}")
    body_config = write_config(root / "body.yaml", _body_config(truth.config))
    _track(video, config_path, root / "point")
    _track(video, body_config, root / "body")
    return video, truth, config_path, body_config, root


def _folder(root, rule):
    (folder,) = [p for p in (root / rule).iterdir() if p.is_dir()]
    return folder


def test_shares_and_chambers_follow_the_true_body(runs):
    video, truth, _, _, root = runs
    track = pd.read_parquet(_folder(root, "body") / "track.parquet")
    names = [c["name"] for c in truth.config["arenas"][0]["chambers"]]
    cols = [f"share_{j}" for j in range(len(names))]
    true = body_shares(truth.spec)[cols].to_numpy()
    det = track["detected"].to_numpy()
    assert det.mean() > 0.98
    tracked = track[cols].to_numpy()
    assert np.abs(tracked[det] - true[det]).max() < SHARE_TOL
    mixed = (true[det] > 0.05).sum(axis=1) > 1
    assert mixed.sum() >= 30  # the mouse lay across a door line in enough frames

    codes, _ = assign_by_body_fraction(true, det, ENTER, EXIT)
    expected = np.array([*names, "unknown"], dtype=object)[codes]
    wrong = np.flatnonzero(track["chamber"].to_numpy(dtype=object) != expected)
    near = np.flatnonzero((np.abs(true - ENTER) < SHARE_TOL).any(axis=1)
                          | (np.abs(true - EXIT) < SHARE_TOL).any(axis=1))
    for i in wrong:
        assert len(near) and np.abs(near - i).min() <= NEAR_FRAMES, (i, true[i], tracked[i])
    assert len(wrong) <= 0.01 * len(track)
    # time follows the rule's chamber as visits do
    assert (track["position_chamber"] == track["chamber"]).all()


def test_a_mouse_stopping_in_the_doorway_stays_in_its_chamber(runs):
    video, truth, _, _, root = runs
    if len(truth.config["arenas"][0]["chambers"]) != 2:
        pytest.skip("the doorway stop is in the two-chamber scene")
    body = pd.read_parquet(_folder(root, "body") / "track.parquet")
    point = pd.read_parquet(_folder(root, "point") / "track.parquet")
    half = body_shares(truth.spec)["share_0"].between(0.35, 0.65).to_numpy()
    # the longest stretch with the mouse half across the door (2 s in this scene)
    edges = np.flatnonzero(np.diff(np.r_[0, half.astype(int), 0]))
    start, stop = max(zip(edges[::2], edges[1::2], strict=True), key=lambda r: r[1] - r[0])
    assert stop - start >= 45
    before = body["chamber"].iloc[start - 1]
    assert (body["chamber"].iloc[start:stop] == before).all()
    # the centroid rule gives part of it to the other side (otherwise this proves nothing)
    assert (point["position_chamber"].iloc[start:stop] != before).any()


def test_body_fraction_keeps_the_chamber_the_mouse_came_from(runs):
    """Against the point rule (time by the centroid's piece), every frame counted
    differently is one where the body rule still holds the chamber the centroid had just
    left: crossings count later and a head poke that never takes 70 % of the body across
    counts nothing. So entries are never more, and the times differ by at most the time
    the mouse lay across a door line."""
    video, truth, _, _, root = runs
    body_dir, point_dir = _folder(root, "body"), _folder(root, "point")
    body = pd.read_parquet(body_dir / "track.parquet")["chamber"].to_numpy(dtype=object)
    point = pd.read_parquet(point_dir / "track.parquet")["position_chamber"].to_numpy(
        dtype=object)
    differ = body != point
    assert differ.sum() >= 5
    edges = np.flatnonzero(np.diff(np.r_[0, differ.astype(int), 0]))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        assert start > 0 and set(body[start:stop]) == {point[start - 1]}, (start, stop)
    s_body = pd.read_csv(body_dir / "summary.csv").set_index("chamber")
    s_point = pd.read_csv(point_dir / "summary.csv").set_index("chamber")
    names = [c["name"] for c in truth.config["arenas"][0]["chambers"]]
    true = body_shares(truth.spec)[[f"share_{j}" for j in range(len(names))]].to_numpy()
    across_s = ((true > 0.05).sum(axis=1) > 1).sum() / truth.spec.fps
    assert (s_body.loc[names, "entries"] <= s_point.loc[names, "entries"]).all()
    diff_s = (s_body.loc[names, "time_s"] - s_point.loc[names, "time_s"]).abs()
    assert diff_s.max() > 0 and diff_s.sum() <= 2 * across_s + 0.1


def test_reprocess_switches_rules_from_the_stored_track(runs, tmp_path, capsys):
    video, truth, config_path, body_config, root = runs
    folder = tmp_path / "session"
    shutil.copytree(_folder(root, "point"), folder)
    assert main(["reprocess", str(folder), "--config", str(body_config)]) == 0
    fresh = _folder(root, "body")
    for name in ("summary.csv", "occupancy.csv"):
        assert (folder / name).read_bytes() == (fresh / name).read_bytes(), name
    run = json.loads((folder / "run.json").read_text())
    assert run["config"]["entry_rule"] == {"rule": "body_fraction", "enter_fraction": ENTER,
                                           "exit_fraction": EXIT}
    point_run = json.loads((_folder(root, "point") / "run.json").read_text())
    assert point_run["config"]["entry_rule"]["rule"] == "point"
    # and back: the point rule's results again, byte for byte
    assert main(["reprocess", str(folder), "--config", str(config_path)]) == 0
    for name in ("summary.csv", "occupancy.csv"):
        assert (folder / name).read_bytes() == (_folder(root, "point") / name).read_bytes()


def test_a_track_without_shares_must_be_tracked_again(runs, tmp_path, capsys):
    video, truth, _, body_config, root = runs
    if len(truth.config["arenas"][0]["chambers"]) != 2:
        pytest.skip("one layout is enough")
    folder = tmp_path / "old"
    shutil.copytree(_folder(root, "point"), folder)
    table = pq.read_table(folder / "track.parquet")
    old = table.drop_columns([c for c in table.column_names if c.startswith("share_")])
    pq.write_table(old.replace_schema_metadata({}), folder / "track.parquet")
    capsys.readouterr()
    assert main(["reprocess", str(folder), "--config", str(body_config)]) == 2
    err = capsys.readouterr().err
    assert "track.parquet holds no chamber shares" in err
    assert "the video must be tracked again" in err and "--retrack" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1

    # door lines moved since tracking: the stored shares are for the old ones
    moved = _body_config(truth.config)
    for door in moved["arenas"][0]["doors"]:
        door["line"] = [[x + 4, y] for x, y in door["line"]]
    moved_path = write_config(tmp_path / "moved.yaml", moved)
    folder2 = tmp_path / "moved"
    shutil.copytree(_folder(root, "body"), folder2)
    assert main(["reprocess", str(folder2), "--config", str(moved_path)]) == 2
    assert "cut by other door lines" in capsys.readouterr().err
    # --retrack tracks the video again with the new lines
    assert main(["reprocess", str(folder2), "--config", str(moved_path), "--retrack",
                 "--no-progress"]) == 0
    track = pd.read_parquet(folder2 / "track.parquet")
    assert track["chamber"].ne("unknown").mean() > 0.98 and "share_0" in track
    meta = pq.read_schema(folder2 / "track.parquet").metadata
    assert b"cpp_tracker.shares_pieces" in meta


def test_the_rule_is_said_wherever_the_numbers_go(runs):
    video, truth, _, _, root = runs
    body = pd.read_csv(_folder(root, "body") / "summary.csv")
    assert set(body["entry_rule"]) == {f"body_fraction {ENTER:g}/{EXIT:g}"}
    assert "entry_rule" not in pd.read_csv(_folder(root, "point") / "summary.csv")
    from cpp_tracker.experiment.collect import collect_results

    table, _, warnings = collect_results([root / "point", root / "body"])
    assert set(table["entry_rule"]) == {"point", "body_fraction 0.7/0.3"}
    assert any("decide the chamber by different rules" in w and "not comparable" in w
               for w in warnings), warnings
    table, _, warnings = collect_results([root / "body"])
    assert not any("different rules" in w for w in warnings)
