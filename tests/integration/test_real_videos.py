"""The two real recordings in ../shared/real_videos/ run end to end (issue 4).

They come without labels, so the checks are of plausibility: the run succeeds, the mouse is
found in more than 90 % of the frames, every centroid lies inside the arena, and the times
add up. The configs (arena outline and a virtual door line) are in tests/data/. Set
``CPP_TRACKER_REAL_VIDEOS`` to the folder to run them from a checkout that does not sit
beside ``shared/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from cpp_tracker.cli import main
from cpp_tracker.config.settings import load_config
from tests.conftest import REAL_VIDEOS

FOLDER = Path(os.environ.get("CPP_TRACKER_REAL_VIDEOS", REAL_VIDEOS))
DATA = Path(__file__).resolve().parents[1] / "data"

CASES = ["openfield_black_mouse", "bottom_view_white_on_black"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_real_recording_end_to_end(name, tmp_path, capsys):
    video = FOLDER / f"{name}.mp4"
    if not video.exists():
        pytest.skip(f"{video} is absent (the real recordings live in ../shared/real_videos/)")
    config_path = DATA / f"{name}.yaml"
    code = main(["track", str(video), "--config", str(config_path), "--out", str(tmp_path),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    result = tmp_path / name
    track = pd.read_parquet(result / "track.parquet")
    summary = pd.read_csv(result / "summary.csv")
    run = json.loads((result / "run.json").read_text())

    assert track["detected"].mean() > 0.90
    arena = load_config(config_path).arenas[0]
    polygon = shapely.Polygon(arena.polygon).buffer(1.0)
    found = track[track["detected"]]
    inside = shapely.contains_xy(polygon, found["x"].to_numpy(), found["y"].to_numpy())
    assert inside.all()
    # the times add up to the recording, and both halves were visited
    times = summary.set_index("chamber")["time_s"]
    duration = float(summary["duration_s"].iloc[0])
    assert times.sum() == pytest.approx(duration, rel=1e-6)
    assert times["left"] > 0 and times["right"] > 0
    assert run["time_base"]["read_fraction_of_nominal"] == pytest.approx(1.0, abs=0.02)
    assert run["time_base"]["gaps"] == []
    qc = run["qc"]["field"]
    assert qc["scale_source"] == "typical blob area"
    assert np.isfinite(qc["typical_area_px"])
    assert isinstance(qc["needs_review"], bool)
