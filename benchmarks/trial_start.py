"""How close ``trial: {start: auto}`` finds the trial's start, and the chamber times counted
from it (issue: trial start).

Each seed renders a session that starts as a real one does (``SceneSpec(experimenter=True)``:
the box empty with its doors closed, a gloved hand putting the mouse in, the lid closing,
the doors lifted), varied by the seed: two or three chambers, a dark mouse on a light floor
or a light mouse on a grey or dark one, a lid that dims or brightens the picture, and in
one seed of three the doors lifted early (so that the hand leaving decides the start).
Each video is tracked with ``track_video`` and ``trial.start: auto``; the figures are the
detected start minus the truth (the moment the last hand has left and the doors are open)
and the largest error of a chamber's time against the truth counted from the true start,
in % of the counted time.

The detection was tuned on seeds 0-4. Seeds 100-109 were held out until their first run,
where 103 and 105 (a light mouse on a dark floor) started too early: the plates were as
dark as the floor in the generator, and the tracker's threshold, raised to the light
mouse's contrast, hid the plates. After fixing both (plates visible; a noise-based
threshold) they are no longer unseen: seeds 300-309 are the fresh held-out set.

Measured (40 s sessions, 320x240, 30 fps, H.264 crf 23), |detected - true start|:
tuning 0-4 max 0.02 s; 100-109 (seen once, see above) max 0.04 s; fresh held-out 300-309
max 0.03 s (median 0.015 s); every start found; chamber times within 0.19 % of the truth
counted from the true start (0.125 % on 300-309).

    python benchmarks/trial_start.py                   # tuning 0-4, held out 100-109, 300-309
    python benchmarks/trial_start.py --seeds 100 101   # some seeds
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cpp_tracker import load_config, track_video
from cpp_tracker.synthetic import ArenaSpec, SceneSpec, generate_video

TUNING = list(range(5))
HELD_OUT = list(range(100, 110)) + list(range(300, 310))


def scene_for(seed: int, duration_s: float = 40.0) -> SceneSpec:
    """The session of ``seed`` (its variations drawn from the seed itself)."""
    rng = np.random.default_rng([seed, 2026])
    mouse = "dark" if rng.random() < 0.6 else "light"
    floor = "light" if mouse == "dark" else str(rng.choice(["grey", "dark"]))
    return SceneSpec(
        duration_s=duration_s, seed=seed, mouse=mouse, floor=floor,
        arenas=(ArenaSpec(n_chambers=int(rng.choice([2, 3]))),),
        experimenter=True, lid_gain=float(rng.choice([0.8, 0.9, 1.0, 1.15])),
        doors_open_s=1.0 if seed % 3 == 2 else None,
    )


def run_seed(seed: int, work: Path) -> dict:
    spec = scene_for(seed)
    video = work / f"trial_{seed}.mp4"
    truth = generate_video(video, spec)
    raw = dict(truth.config, trial={"start": "auto"})
    cfg_path = work / f"trial_{seed}.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    t0 = time.perf_counter()
    result = track_video(video, load_config(cfg_path), work / "out", progress=False,
                         plots=False, resume=False)
    elapsed = time.perf_counter() - t0
    trial = result.record.trial
    true_times = truth.chamber_times().iloc[0]
    counted = float(true_times.sum())
    summary = result.summary.set_index("chamber")
    worst = max(abs(float(summary.loc[c, "time_s"]) - float(v)) for c, v in true_times.items())
    return {
        "seed": seed,
        "set": "tuning" if seed in TUNING else "held-out",
        "chambers": spec.arenas[0].n_chambers,
        "mouse/floor": f"{spec.mouse}/{spec.floor}",
        "doors early": spec.doors_open_s is not None,
        "truth_s": round(float(truth.trial_start_s), 2),
        "found_s": trial.start_s if trial.found else None,
        "error_s": round(float(trial.start_s) - float(truth.trial_start_s), 2)
        if trial.found else None,
        "chamber_err_%": round(100 * worst / counted, 3),
        "run_s": round(elapsed, 1),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="*", default=TUNING + HELD_OUT)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_seed(s, Path(tmp)) for s in args.seeds]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False))
    for name, part in table.groupby("set", sort=False):
        err = part["error_s"].dropna().abs()
        print(f"{name}: {len(part)} seeds, found {len(err)}, |start error| median "
              f"{err.median():.2f} s, max {err.max():.2f} s; chamber time error max "
              f"{part['chamber_err_%'].max():.3f} %")


if __name__ == "__main__":
    main()
