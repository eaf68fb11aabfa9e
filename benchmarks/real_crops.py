"""Where the centroid sits on the real mice: a sheet of enlarged crops to check by eye.

Tracks each real recording in ../shared/real_videos/ with its config from tests/data/, takes
``--n`` frames spread evenly over the frames the mouse was found in, crops a square of two
body lengths around the centroid, enlarges it and draws the centroid (orange cross). For the
bottom-view video the DeepLabCut file's keypoints are drawn too: the four paws (blue dots),
their mean (blue cross, about the body's middle seen from below) and the tail root (blue
ring). Writes one PNG per video and prints, per video, how far the centroid lies from the
paws' mean along the body (toward the tail root) in body lengths.

    python benchmarks/real_crops.py --out /tmp/crops [--n 36]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from cpp_tracker import load_config, track_video

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "real_videos"
VIDEOS = ("openfield_black_mouse", "bottom_view_white_on_black")
PAWS = ("Forehand-Left", "Forehand-Right", "Hindhand-Left", "Hindhand-Right")
ORANGE, BLUE = (0, 159, 230), (178, 114, 0)  # Okabe-Ito, BGR


def tracked(name: str, work: Path) -> pd.DataFrame:
    video = REAL / f"{name}.mp4"
    track_video(video, load_config(ROOT / "tests" / "data" / f"{name}.yaml"), work,
                progress=False, plots=False, resume=False)
    return pd.read_parquet(work / name / "track.parquet")


def keypoints(name: str) -> pd.DataFrame | None:
    path = REAL / f"{name}.dlc.csv"
    if not path.exists():
        return None
    dlc = pd.read_csv(path, header=[0, 1, 2])
    dlc.columns = [f"{part}_{coord}" for _, part, coord in dlc.columns]
    return dlc


def frames_at(video: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out, i, todo = {}, 0, set(wanted)
    while todo:
        ok, frame = cap.read()
        if not ok:
            break
        if i in todo:
            out[i] = frame
            todo.discard(i)
        i += 1
    cap.release()
    return out


def crop(frame: np.ndarray, x: float, y: float, half: int, zoom: int):
    """The enlarged square around (x, y) and a function from frame to crop coordinates."""
    h, w = frame.shape[:2]
    x0 = int(np.clip(round(x) - half, 0, max(0, w - 2 * half)))
    y0 = int(np.clip(round(y) - half, 0, max(0, h - 2 * half)))
    part = frame[y0:y0 + 2 * half, x0:x0 + 2 * half]
    big = cv2.resize(part, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)

    def at(px: float, py: float) -> tuple[int, int]:
        return int(round((px - x0 + 0.5) * zoom)), int(round((py - y0 + 0.5) * zoom))
    return big, at


def tile(frame, row, dlc, i: int, half: int, zoom: int) -> np.ndarray:
    big, at = crop(frame, row["x"], row["y"], half, zoom)
    if dlc is not None and i < len(dlc):
        k = dlc.iloc[i]
        paws = [(k[f"{p}_x"], k[f"{p}_y"]) for p in PAWS]
        for p in paws:
            cv2.circle(big, at(*p), 4, BLUE, -1, cv2.LINE_AA)
        cv2.drawMarker(big, at(*np.mean(paws, axis=0)), BLUE, cv2.MARKER_CROSS, 22, 2)
        cv2.circle(big, at(k["Tailroot_x"], k["Tailroot_y"]), 7, BLUE, 2, cv2.LINE_AA)
    cv2.drawMarker(big, at(row["x"], row["y"]), ORANGE, cv2.MARKER_CROSS, 26, 3)
    cv2.putText(big, f"frame {i}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, ORANGE, 2)
    return big


def sheet(tiles: list[np.ndarray], cols: int = 6) -> np.ndarray:
    size = max(t.shape[0] for t in tiles)
    tiles = [cv2.resize(t, (size, size)) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)]
    return np.vstack(rows)


def toward_tail_bl(track: pd.DataFrame, dlc: pd.DataFrame) -> float:
    """Median of the centroid's offset from the paws' mean along paws -> tail root, in body
    lengths (nose to tail root)."""
    n = min(len(track), len(dlc))
    t, k = track.iloc[:n], dlc.iloc[:n]
    good = np.all([k[f"{p}_likelihood"] > 0.9 for p in (*PAWS, "Tailroot", "Nose")], axis=0)
    good &= t["detected"].to_numpy(bool)
    cx = np.mean([k[f"{p}_x"] for p in PAWS], axis=0)
    cy = np.mean([k[f"{p}_y"] for p in PAWS], axis=0)
    ax, ay = k["Tailroot_x"] - cx, k["Tailroot_y"] - cy
    along = ((t["x"].to_numpy() - cx) * ax + (t["y"].to_numpy() - cy) * ay) / np.hypot(ax, ay)
    length = np.hypot(k["Nose_x"] - k["Tailroot_x"], k["Nose_y"] - k["Tailroot_y"])
    return float(np.median((along / length)[good]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNG sheets")
    ap.add_argument("--n", type=int, default=36, help="frames per video (default 36)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in VIDEOS:
        if not (REAL / f"{name}.mp4").exists():
            print(f"{name}: absent from {REAL}, skipped")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            track = tracked(name, Path(tmp))
        found = track[track["detected"]]
        picks = found.iloc[np.linspace(0, len(found) - 1, args.n).astype(int)]
        frames = frames_at(REAL / f"{name}.mp4", picks["frame"].astype(int).tolist())
        body = 2.0 * np.sqrt(np.median(found["area_px"]))  # about one body length
        half = int(np.ceil(body))
        zoom = max(1, 240 // half)
        dlc = keypoints(name)
        tiles = [tile(frames[int(r["frame"])], r, dlc, int(r["frame"]), half, zoom)
                 for _, r in picks.iterrows() if int(r["frame"]) in frames]
        path = args.out / f"{name}_centroids.png"
        cv2.imwrite(str(path), sheet(tiles))
        extra = "" if dlc is None else (
            f"; centroid vs paws' mean along the body: {toward_tail_bl(track, dlc):+.3f} BL "
            "(+ = toward the tail root)")
        print(f"{name}: {len(tiles)} crops -> {path}{extra}")


if __name__ == "__main__":
    main()
