"""Result folders made by hand, without a video: a track table built from a list of
(chamber, seconds) segments, analysed and written as ``track`` writes it.

Used by the reprocess, results and design tests. The box is 200 x 100 px with the door at
x = 100 (two chambers) or doors at x = 70 and x = 130 (three chambers); the mouse sits at
the middle of each chamber for the segment's duration.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from cpp_tracker.config.settings import config_hash, config_to_dict, parse_config
from cpp_tracker.results.outputs import write_parquet
from cpp_tracker.results.record import RunRecord, write_run_record
from cpp_tracker.runs.pipeline import analyse_track, write_analysis

TWO_CHAMBERS = {
    "arenas": [
        {
            "name": "box",
            "polygon": [[0, 0], [200, 0], [200, 100], [0, 100]],
            "doors": [{"name": "door", "line": [[100, 0], [100, 100]]}],
            "chambers": [
                {"name": "left", "point": [50, 50]},
                {"name": "right", "point": [150, 50]},
            ],
            "px_per_cm": 2.0,
        }
    ]
}

THREE_CHAMBERS = {
    "arenas": [
        {
            "name": "box",
            "polygon": [[0, 0], [200, 0], [200, 100], [0, 100]],
            "doors": [
                {"name": "d1", "line": [[70, 0], [70, 100]]},
                {"name": "d2", "line": [[130, 0], [130, 100]]},
            ],
            "chambers": [
                {"name": "left", "point": [35, 50]},
                {"name": "centre", "point": [100, 50]},
                {"name": "right", "point": [165, 50]},
            ],
        }
    ]
}

CENTRES = {
    "left": (35.0, 50.0),
    "centre": (100.0, 50.0),
    "right": (165.0, 50.0),
    None: (np.nan, np.nan),
}


def config_with(base: dict, **changes) -> dict:
    """A deep copy of ``base`` with top-level sections replaced or added."""
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def segments_track(segments, fps: float = 10.0, arena: str = "box") -> pd.DataFrame:
    """Track table: ``segments`` = [(where, seconds), ...], ``where`` a chamber name, an
    ``(x, y)`` position, or None for frames without a detection."""
    xs, ys = [], []
    for where, seconds in segments:
        n = int(round(seconds * fps))
        x, y = where if isinstance(where, tuple) else CENTRES[where]
        xs += [x] * n
        ys += [y] * n
    n = len(xs)
    x = np.array(xs)
    return pd.DataFrame(
        {
            "frame": np.arange(n, dtype=np.int64),
            "time_s": np.arange(n) / fps,
            "arena": arena,
            "x": x,
            "y": np.array(ys),
            "area_px": np.where(np.isfinite(x), 40.0, np.nan),
            "detected": np.isfinite(x),
            "n_blobs": np.isfinite(x).astype(np.int16),
        }
    )


def write_result(
    folder: Path,
    segments,
    *,
    config: dict | None = None,
    metadata: dict | None = None,
    fps: float = 10.0,
    video: str | None = None,
) -> Path:
    """Write a complete result folder (track.parquet, occupancy, summary, run.json)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = parse_config(copy.deepcopy(config or TWO_CHAMBERS), source="handmade.yaml")
    track = segments_track(segments, fps)
    video = video or f"/videos/{folder.name}.mp4"
    analysis = analyse_track(track, cfg, video_label=video, nominal_interval_s=1 / fps)
    track["chamber"] = analysis.chamber.astype(str)
    if analysis.position is not None:
        track["position_chamber"] = analysis.position.astype(str)
    write_parquet(folder / "track.parquet", track)
    written = write_analysis(folder, analysis)
    run_info = {
        "tool": "cpp-tracker",
        "command": "track",
        "finished": "2024-01-01T00:00:00+00:00",
        "video": {
            "path": video,
            "absolute_path": video,
            "width": 200,
            "height": 100,
            "nominal_fps": fps,
            "nominal_duration_s": len(track) / fps,
        },
        "config": {"source": cfg.source, "hash": config_hash(cfg), "resolved": config_to_dict(cfg)},
        "time_base": {
            "timestamp_source": "container",
            "timestamps_repaired": 0,
            "stride": 1,
            "gaps": [],
        },
        "arenas": analysis.arena_stats,
        "warnings": analysis.warnings,
        "analysis_warnings": analysis.warnings,
        "outputs": ["track.parquet", *written, "run.json"],
        "track": {
            "made_by": "track",
            "finished": "2024-01-01T00:00:00+00:00",
            "config_hash": config_hash(cfg),
            "frames": len(track),
        },
    }
    if metadata is not None:
        run_info["metadata"] = metadata
    # only the blocks a summary needs; the record gives the others their empty values
    write_run_record(folder, RunRecord.from_dict(run_info).with_history_after(None))
    return folder


# --------------------------------------------------------------------------------------
# a CPP experiment of four animals with known preference scores

# animal -> phase -> segments; every session lasts 100 s (post-test of m01: 110 s, of which
# 10 s without a detection)
SESSIONS = {
    "m01": {
        "pre-test": [("left", 20), ("right", 30), ("left", 20), ("right", 30)],
        "conditioning": [("left", 100)],
        "post-test": [(None, 10), ("left", 50), ("right", 30), ("left", 20)],
    },
    "m02": {
        "pre-test": [("left", 50), ("right", 50)],
        "conditioning": [("right", 100)],
        "post-test": [("right", 80), ("left", 20)],
    },
    "m03": {
        "pre-test": [("left", 75), ("right", 25)],
        "conditioning": [("left", 100)],
        "post-test": [("left", 70), ("right", 30)],
    },
    "m04": {  # no manifest metadata: found by the design's video column
        "pre-test": [("left", 45), ("right", 55)],
        "conditioning": [("left", 60), ("right", 10), ("left", 30)],  # doors closed: 2 crossings
        "post-test": [("left", 50), ("right", 50)],
    },
}
PAIRED = {"m01": "left", "m02": "right", "m03": "left", "m04": "right"}
GROUP = {"m01": "drug", "m02": "drug", "m03": "saline", "m04": "saline"}
#                 pre pref, post pref, pre share, post share  (paired - unpaired s; paired %)
EXPECTED = {
    "m01": (-20.0, 40.0, 40.0, 70.0),
    "m02": (0.0, 60.0, 50.0, 80.0),
    "m03": (50.0, 40.0, 75.0, 70.0),
    "m04": (10.0, 0.0, 55.0, 50.0),
}
SHORT = {"pre-test": "pre", "conditioning": "c1", "post-test": "post"}


def make_experiment(root):
    """Result folders of the four animals, and the design CSV."""
    lines = ["animal_id,group,phase,session,paired_chamber,doors_closed,video,sex"]
    for animal, phases in SESSIONS.items():
        for phase, segments in phases.items():
            name = f"{animal}_{SHORT[phase]}"
            # a batch manifest's session names one recording: unique per animal and day
            session = f"{animal}_C1" if phase == "conditioning" else ""
            if animal == "m04":
                write_result(root / "batch" / name, segments)
                video = name
            else:
                metadata = {"animal_id": animal, "phase": phase, "cohort": "A"}
                if session:
                    metadata["session"] = session
                write_result(root / "batch" / name, segments, metadata=metadata)
                video = ""
            closed = "yes" if phase == "conditioning" else "no"
            paired = PAIRED[animal] if phase == "pre-test" else ""  # given once is enough
            lines.append(
                f"{animal},{GROUP[animal]},{phase},{session},{paired},{closed},"
                f"{video},{'f' if animal in ('m01', 'm03') else 'm'}"
            )
    design = root / "design.csv"
    design.write_text("\n".join(lines) + "\n")
    return root / "batch", design
