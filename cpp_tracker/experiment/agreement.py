"""Check the tool's chambers against a person: a blind contact sheet, then agreement figures.

:func:`write_agreement_sheet` draws seconds at random (seeded) from one or many result
folders, and for each the frame in the middle of that second. It writes

- ``agreement_sheet_NN.png``: numbered thumbnails of the frames with the arena outline,
  the door lines and the chamber names, but **not** the tool's answer nor its centroid, so
  that the person judges the frame, not the tool;
- ``agreement_sheet.csv``: one row per thumbnail for the person to fill in
  (``human_chamber``: a chamber name, or ``unknown`` when the mouse cannot be seen);
- ``agreement_key.csv``: the tool's chamber for each thumbnail, kept apart (do not open it
  before the sheet is filled in).

:func:`compare_sheet` reads both and reports percent agreement, Cohen's kappa and the
disagreements. Kappa is the agreement beyond chance:
``kappa = (p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of rows that agree and ``p_e``
the agreement expected by chance, ``sum_k p_tool(k) * p_human(k)`` over the categories.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, OutputError
from ..results.outputs import write_bytes, write_csv
from ..results.stored import StoredResult, resolve_video

__all__ = [
    "SHEET_COLUMNS",
    "KEY_COLUMNS",
    "Agreement",
    "draw_samples",
    "write_agreement_sheet",
    "cohens_kappa",
    "compare_sheet",
]

SHEET_COLUMNS = ["sample", "sheet", "video", "arena", "time_s", "choices", "human_chamber", "note"]
KEY_COLUMNS = ["sample", "sheet", "video", "result_dir", "arena", "time_s", "frame",
               "tool_chamber"]
_PER_PAGE = 20
_COLUMNS = 4


def draw_samples(results: list[StoredResult], n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` random (video, arena, second) draws without replacement, each with the track
    row nearest the middle of that second.

    Columns: ``result, video, arena, second, time_s, frame, tool_chamber`` (``result`` is
    the index into ``results``). Every second of every arena is equally likely.
    """
    if n < 1:
        raise ConfigError("--sample", f"must be at least 1, got {n}")
    population = []
    for i, result in enumerate(results):
        duration = result.duration_s or 0.0
        seconds = int(math.floor(duration))
        for arena in result.config.arenas:
            population.append((i, arena.name, seconds))
    total = sum(p[2] for p in population)
    if total == 0:
        raise OutputError("the results hold no whole second of video to sample")
    n = min(n, total)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(total, size=n, replace=False))
    bounds = np.cumsum([0] + [p[2] for p in population])
    rows = []
    tracks: dict[int, pd.DataFrame] = {}
    for pick in picks:
        j = int(np.searchsorted(bounds, pick, side="right") - 1)
        i, arena, _ = population[j]
        second = int(pick - bounds[j])
        if i not in tracks:
            tracks[i] = results[i].track(["frame", "time_s", "arena", "chamber"])
        track = tracks[i]
        sub = track[track["arena"].astype(str) == arena]
        times = sub["time_s"].to_numpy(dtype=float)
        k = int(np.argmin(np.abs(times - (second + 0.5))))
        row = sub.iloc[k]
        rows.append(
            (i, results[i].video_label, arena, second, float(row["time_s"]), int(row["frame"]),
             str(row["chamber"]))
        )
    table = pd.DataFrame(
        rows, columns=["result", "video", "arena", "second", "time_s", "frame", "tool_chamber"]
    )
    # shuffle the order of the thumbnails so neighbours on the sheet are not neighbours in time
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def _thumbnail(result: StoredResult, arena_name: str, time_s: float, video: Path) -> np.ndarray:
    """The frame at ``time_s`` cropped to one arena, with its geometry drawn (RGB)."""
    import cv2

    from ..visual.review import draw_geometry_overlay, iter_frames, overlay_geometry

    half = 0.5 * result.frame_interval_s
    frame = next(iter(iter_frames(video, max(0.0, time_s - half), time_s + half)), None)
    if frame is None:
        raise OutputError(f"{video}: no frame at {time_s:.3f} s; is this the tracked video?")
    bgr = frame[1]
    arena = result.config.arena(arena_name)
    xs = [p[0] for p in arena.polygon]
    ys = [p[1] for p in arena.polygon]
    margin = 0.05 * max(max(xs) - min(xs), max(ys) - min(ys))
    scale = float(max(1, math.ceil(400 / max(1.0, max(xs) - min(xs)))))
    h, w = bgr.shape[:2]
    img = cv2.resize(bgr, (w * int(scale), h * int(scale)), interpolation=cv2.INTER_LINEAR)
    # geometry blended at 60 %, so that a label never hides the mouse
    drawn = img.copy()
    draw_geometry_overlay(drawn, overlay_geometry(result.config), scale)
    img = cv2.addWeighted(drawn, 0.6, img, 0.4, 0)
    x0 = int(max(0, (min(xs) - margin) * scale))
    x1 = int(min(w * scale, (max(xs) + margin) * scale))
    y0 = int(max(0, (min(ys) - margin) * scale))
    y1 = int(min(h * scale, (max(ys) + margin) * scale))
    return cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)


def _sheet_id(samples: pd.DataFrame, seed: int) -> str:
    text = f"{seed}|" + "|".join(
        f"{v}:{a}:{t:.3f}"
        for v, a, t in zip(samples["video"], samples["arena"], samples["time_s"], strict=True)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def write_agreement_sheet(
    results: list[StoredResult],
    out_dir: str | Path,
    n: int,
    *,
    seed: int = 0,
    video: str | Path | None = None,
) -> dict:
    """Draw ``n`` seconds and write the contact sheet(s), the sheet CSV and the key CSV.

    ``video`` overrides the stored video path (one result only). Returns the paths written:
    ``{"pages": [...], "sheet": path, "key": path}``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if video is not None and len(results) != 1:
        raise ConfigError("--video", "can only be given for a single result folder")
    samples = draw_samples(results, n, seed)
    sheet_id = _sheet_id(samples, seed)
    samples.insert(0, "sample", np.arange(1, len(samples) + 1))
    videos = {i: resolve_video(results[i], video) for i in samples["result"].unique()}
    out_dir = Path(out_dir)
    pages = []
    for p, start in enumerate(range(0, len(samples), _PER_PAGE), start=1):
        page = samples.iloc[start : start + _PER_PAGE]
        n_rows = int(math.ceil(len(page) / _COLUMNS))
        fig = Figure(figsize=(4 * _COLUMNS, 3.4 * n_rows + 0.8), dpi=100)
        FigureCanvasAgg(fig)
        fig.suptitle(
            f"Agreement sheet {sheet_id}, page {p}: for each number, write the chamber the "
            "mouse is in (or 'unknown') in agreement_sheet.csv", fontsize=12,
        )
        for k, row in enumerate(page.itertuples(index=False)):
            result = results[row.result]
            ax = fig.add_subplot(n_rows, _COLUMNS, k + 1)
            ax.imshow(_thumbnail(result, row.arena, row.time_s, videos[row.result]))
            label = f"#{row.sample}"
            if len(results) > 1 or len(result.config.arenas) > 1:
                label += f"  {result.name} / {row.arena}"
            ax.set_title(label, fontsize=13, fontweight="bold", loc="left")
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout(rect=(0, 0, 1, 0.96))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        pages.append(write_bytes(out_dir / f"agreement_sheet_{p:02d}.png", buffer.getvalue()))
    choices = []
    for row in samples.itertuples(index=False):
        names = results[row.result].config.arena(row.arena).chamber_names
        choices.append(" / ".join([*names, "unknown"]))
    sheet = pd.DataFrame(
        {
            "sample": samples["sample"],
            "sheet": sheet_id,
            "video": samples["video"],
            "arena": samples["arena"],
            "time_s": samples["time_s"].round(3),
            "choices": choices,
            "human_chamber": "",
            "note": "",
        }
    )[SHEET_COLUMNS]
    key = pd.DataFrame(
        {
            "sample": samples["sample"],
            "sheet": sheet_id,
            "video": samples["video"],
            "result_dir": [str(results[i].result_dir) for i in samples["result"]],
            "arena": samples["arena"],
            "time_s": samples["time_s"].round(3),
            "frame": samples["frame"],
            "tool_chamber": samples["tool_chamber"],
        }
    )[KEY_COLUMNS]
    sheet_path = write_csv(out_dir / "agreement_sheet.csv", sheet)
    key_path = write_csv(out_dir / "agreement_key.csv", key)
    return {"pages": pages, "sheet": sheet_path, "key": key_path, "sheet_id": sheet_id}


# --------------------------------------------------------------------------- agreement
def cohens_kappa(tool: list[str] | np.ndarray, human: list[str] | np.ndarray) -> float:
    """Cohen's kappa of two label sequences of equal length; NaN when chance agreement is
    total (both raters used one and the same category throughout)."""
    tool = np.asarray(tool, dtype=object)
    human = np.asarray(human, dtype=object)
    if len(tool) != len(human) or len(tool) == 0:
        raise ValueError("cohens_kappa needs two non-empty sequences of equal length")
    categories = sorted(set(tool) | set(human))
    p_o = float(np.mean(tool == human))
    p_e = sum(float(np.mean(tool == c)) * float(np.mean(human == c)) for c in categories)
    if math.isclose(p_e, 1.0):
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class Agreement:
    """The comparison of a filled-in sheet with its key."""

    n: int  # rows compared
    n_agree: int
    n_blank: int  # rows left blank (not compared)
    percent: float
    kappa: float
    confusion: pd.DataFrame  # rows: tool's chamber, columns: person's chamber
    disagreements: pd.DataFrame  # sample, video, arena, time_s, tool_chamber, human_chamber


def _read(path: Path, what: str, needed: list[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise OutputError(f"{path}: {what} not found; check the path") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise OutputError(f"{path}: cannot be read as a CSV {what} ({e})") from None
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise OutputError(
            f"{path}: is not a{'n' if what[0] in 'aeiou' else ''} {what}: column(s) "
            f"{', '.join(missing)} missing"
        )
    return table


def compare_sheet(sheet_path: str | Path, key_path: str | Path | None = None) -> Agreement:
    """Compare a filled-in ``agreement_sheet.csv`` with its key (by default
    ``agreement_key.csv`` beside it).

    Rows with an empty ``human_chamber`` are skipped (counted in ``n_blank``). A value that
    is not one of the row's choices is an error naming the sample, as is a key from another
    sheet. Names are compared without regard to case or surrounding spaces.
    """
    sheet_path = Path(sheet_path)
    key_path = Path(key_path) if key_path is not None else sheet_path.with_name(
        "agreement_key.csv"
    )
    sheet = _read(sheet_path, "agreement sheet", ["sample", "sheet", "choices", "human_chamber"])
    key = _read(key_path, "agreement key", ["sample", "sheet", "tool_chamber"])
    if set(sheet["sheet"]) != set(key["sheet"]):
        raise OutputError(
            f"{key_path}: belongs to sheet {', '.join(sorted(set(key['sheet'])))}, not to "
            f"{sheet_path.name}'s sheet {', '.join(sorted(set(sheet['sheet'])))}; give the "
            "key written together with this sheet (--key)"
        )
    merged = sheet.merge(key[["sample", "tool_chamber"]], on="sample", how="left")
    problems = []
    if merged["tool_chamber"].isna().any():
        missing = ", ".join(merged.loc[merged["tool_chamber"].isna(), "sample"])
        problems.append(f"sample(s) {missing} are not in the key {key_path}")
    human = merged["human_chamber"].astype(str).str.strip()
    blank = human == ""
    canonical = []
    for row, value, is_blank in zip(merged.itertuples(index=False), human, blank, strict=True):
        if is_blank:
            canonical.append("")
            continue
        choices = [c.strip() for c in str(row.choices).split("/")]
        match = [c for c in choices if c.lower() == value.lower()]
        if not match:
            problems.append(
                f"sample {row.sample}: human_chamber '{value}' is not one of "
                f"{', '.join(choices)}"
            )
            canonical.append("")
        else:
            canonical.append(match[0])
    if problems:
        raise ConfigError(str(sheet_path), problems)
    merged["human_chamber"] = canonical
    filled = merged[~blank.to_numpy()]
    if len(filled) == 0:
        raise OutputError(
            f"{sheet_path}: no row has a human_chamber yet; fill in the column (the chamber "
            "the mouse is in, or 'unknown') for each numbered thumbnail"
        )
    tool = filled["tool_chamber"].to_numpy(dtype=object)
    person = filled["human_chamber"].to_numpy(dtype=object)
    agree = tool == person
    categories = sorted(set(tool) | set(person))
    confusion = pd.crosstab(
        pd.Categorical(tool, categories), pd.Categorical(person, categories),
        rownames=["tool"], colnames=["person"], dropna=False,
    )
    cols = [c for c in ["sample", "video", "arena", "time_s", "tool_chamber", "human_chamber",
                        "note"] if c in filled.columns]
    return Agreement(
        n=int(len(filled)),
        n_agree=int(agree.sum()),
        n_blank=int(blank.sum()),
        percent=100.0 * float(agree.mean()),
        kappa=cohens_kappa(tool, person),
        confusion=confusion,
        disagreements=filled.loc[~agree, cols].reset_index(drop=True),
    )
