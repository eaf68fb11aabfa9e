"""The README's worked example of ``cpp-tracker experiment``, from generated videos.

Two groups of six animals, a pre-test and a post-test each (60 s, 320x240, 30 fps):

- ``WT`` (conditioned): at post-test each mouse sleeps in one place for 45 % of the session,
  and the scenes are chosen (by seed, from their exact ground truth) so that the place is
  the paired chamber: the group truly prefers the paired chamber after conditioning;
- ``KO``: no sleep bout, scenes whose true paired share lies between 35 and 65 % at post-test:
  no preference.

Every pre-test is a scene whose true paired share lies between 35 and 65 %. The chamber
named ``paired`` in each generated config is the paired chamber. The videos are tracked
with ``cpp-tracker track``, then ``cpp-tracker experiment`` writes the answer; the true
paired shares are printed next to the tracked ones.

    PYTHONPATH=. python examples/experiment_example.py /tmp/cpp_example [--copy-figure docs/]

takes about 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from cpp_tracker.cli import main as cli
from cpp_tracker.synthetic import SceneSpec, generate_video, make_scene

GROUPS = {"WT": True, "KO": False}  # group -> prefers the paired chamber at post-test
N_PER_GROUP = 6
DURATION_S = 60.0


def paired_share(spec: SceneSpec) -> float:
    """The true percent of the two chambers' time spent in the paired one."""
    times = make_scene(spec).chamber_times().iloc[0]  # a chamber never visited has no column
    paired, unpaired = times.get("paired", 0.0), times.get("unpaired", 0.0)
    return 100.0 * paired / (paired + unpaired)


def find_scene(seed: int, prefers: bool) -> tuple[SceneSpec, float]:
    """The first scene from ``seed`` on whose true paired share fits: >= 70 % with a sleep
    bout of 45 % of the session (``prefers``), else between 35 and 65 % without one."""
    while True:
        spec = SceneSpec(duration_s=DURATION_S, seed=seed,
                         sleep_fraction=0.45 if prefers else 0.0)
        share = paired_share(spec)
        if (share >= 70.0) if prefers else (35.0 <= share <= 65.0):
            return spec, share
        seed += 1


def make_videos(root: Path) -> tuple[Path, list[tuple[str, str, str, float]]]:
    """Generate the 24 videos and their configs; returns the design file and, per
    session, (animal, group, phase, true paired share)."""
    rows, truth = ["animal_id,group,phase,paired_chamber,video"], []
    seed = 1000
    for group, prefers in GROUPS.items():
        for i in range(1, N_PER_GROUP + 1):
            animal = f"{group}{i:02d}"
            for phase, want in (("pre-test", False), ("post-test", prefers)):
                spec, share = find_scene(seed, want)
                seed = spec.seed + 1
                stem = f"{animal}_{phase.split('-')[0]}"
                video = root / "videos" / f"{stem}.mp4"
                if not video.exists():
                    generate_video(video, spec)
                config = root / "videos" / f"{stem}.yaml"
                config.write_text(yaml.safe_dump(make_scene(spec).config, sort_keys=False))
                rows.append(f"{animal},{group},{phase},paired,{stem}")
                truth.append((animal, group, phase, share))
    design = root / "design.csv"
    design.write_text("\n".join(rows) + "\n")
    return design, truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="working folder")
    parser.add_argument("--copy-figure", type=Path, help="copy figure.png there as "
                        "experiment_example.png")
    args = parser.parse_args()
    design, truth = make_videos(args.root)
    results = args.root / "results"
    for video in sorted((args.root / "videos").glob("*.mp4")):
        if not (results / video.stem / "run.json").exists():
            code = cli(["track", str(video), "--config", str(video.with_suffix(".yaml")),
                        "--out", str(results), "--no-progress", "--no-plots",
                        "--workers", "1"])
            if code:
                return code
    code = cli(["experiment", str(results), "--design", str(design), "--out",
                str(args.root / "experiment")])
    print("\ntrue paired share (% of the two chambers' time):")
    for animal, group, phase, share in truth:
        print(f"  {animal} {group} {phase}: {share:.1f}")
    if args.copy_figure and code == 0:
        shutil.copy(args.root / "experiment" / "figure.png",
                    args.copy_figure / "experiment_example.png")
    return code


if __name__ == "__main__":
    sys.exit(main())
