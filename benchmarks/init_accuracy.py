"""How close `init`'s proposal comes to the truth over many generated boxes.

For every combination of floor, wall, chamber count and door angle, and several seeds, the
generator's empty-box image (with noise like a median of 120 frames) goes through
``propose_geometry`` (image only: no mouse positions, the harder case) and the largest
corner error (px), the largest door-line error (Hausdorff distance inside the true outline,
px) and whether the right number of doors was found are recorded. Prints one line per
scene family and the overall figures.

    python benchmarks/init_accuracy.py [--seeds 5] [--width 320 --height 240]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from shapely.geometry import LineString, Polygon

from cpp_tracker.setup.propose import propose_geometry
from cpp_tracker.synthetic import ArenaSpec, SceneSpec, make_scene


def errors(proposal, config) -> tuple[float, float, bool]:
    corner, door, count_ok = 0.0, 0.0, True
    for arena, true in zip(proposal.arenas, config["arenas"], strict=True):
        for t in true["polygon"]:
            corner = max(corner, min(float(np.hypot(p[0] - t[0], p[1] - t[1]))
                                     for p in arena.polygon))
        poly = Polygon(true["polygon"])
        count_ok &= len(arena.doors) == len(true["doors"])
        for td in true["doors"]:
            line = poly.intersection(LineString(td["line"]))
            best = min((line.hausdorff_distance(poly.intersection(LineString(d.line)))
                        for d in arena.doors), default=float("inf"))
            door = max(door, best)
    return corner, door, count_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    rows = []
    t0 = time.perf_counter()
    for floor, wall, n_ch, angle in itertools.product(
            ("light", "grey", "dark"), ("dark", "light"), (2, 3), (0.0, 15.0)):
        worst = (0.0, 0.0)
        ok = 0
        for seed in range(args.seeds):
            truth = make_scene(SceneSpec(
                width=args.width, height=args.height, duration_s=2.0, seed=seed, floor=floor,
                wall=wall, mouse="light" if floor == "dark" else "dark",
                arenas=(ArenaSpec(n_chambers=n_ch, door_angle_deg=angle),)))
            rng = np.random.default_rng(seed)
            image = np.clip(truth.background + rng.normal(0, 1.0, truth.background.shape),
                            0, 255).astype(np.uint8)
            corner, door, count_ok = errors(propose_geometry(image), truth.config)
            worst = (max(worst[0], corner), max(worst[1], door))
            ok += count_ok
        rows.append((floor, wall, n_ch, angle, worst, ok))
        print(f"floor {floor:<5} wall {wall:<5} {n_ch} chambers, doors at {angle:4.1f} deg: "
              f"corners <= {worst[0]:.2f} px, doors <= {worst[1]:.2f} px, right door count "
              f"{ok}/{args.seeds}")
    n = len(rows) * args.seeds
    print(f"\n{n} scenes in {time.perf_counter() - t0:.0f} s: corners <= "
          f"{max(r[4][0] for r in rows):.2f} px, door lines <= {max(r[4][1] for r in rows):.2f}"
          f" px, right door count in {sum(r[5] for r in rows)}/{n}")


if __name__ == "__main__":
    main()
