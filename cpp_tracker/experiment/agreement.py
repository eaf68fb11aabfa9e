"""Check the tool's chambers against a person: a blind contact sheet, then agreement figures.

:func:`write_agreement_sheet` draws seconds from one or many result folders, and for each
the frame in the middle of that second: first the borderline seconds (the mouse within
:data:`NEAR_DOOR_BODY_LENGTHS` body lengths of a door line, or a second the result flags),
then random ones (seeded). It writes

- ``agreement_sheet_NN.png``: numbered thumbnails of the frames with the arena outline,
  the door lines and the chamber names (drawn as the overlays draw them, each name in its
  chamber's colour from :mod:`cpp_tracker.visual.palette`), but **not** the tool's answer
  nor its centroid, so that the person judges the frame, not the tool; each says why it
  was picked;
- ``agreement_sheet.csv``: one row per thumbnail for the person to fill in
  (``human_chamber``: a chamber name, or ``unknown`` when the mouse cannot be seen), with
  ``picked_because`` (``near door``, ``flagged``, both, or ``random``: never the tool's
  chamber);
- ``agreement_key.csv``: the tool's chamber for each thumbnail, why it was picked and the
  detail (distance to the door in body lengths, the flag's reasons), kept apart (do not
  open it before the sheet is filled in).

:func:`compare_sheet` reads both and reports percent agreement, Cohen's kappa and the
disagreements. Kappa is the agreement beyond chance:
``kappa = (p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of rows that agree and ``p_e``
the agreement expected by chance, ``sum_k p_tool(k) * p_human(k)`` over the categories.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, OutputError
from ..results.outputs import write_bytes, write_csv
from ..results.stored import StoredResult, flagged_seconds, resolve_video

__all__ = [
    "SHEET_COLUMNS",
    "KEY_COLUMNS",
    "Agreement",
    "BODY_LENGTH_PER_ROOT_AREA",
    "NEAR_DOOR_BODY_LENGTHS",
    "draw_samples",
    "write_agreement_sheet",
    "cohens_kappa",
    "compare_sheet",
    "ArenaAgreement",
    "ResultsAgreement",
    "compare_results",
]

SHEET_COLUMNS = ["sample", "sheet", "video", "arena", "time_s", "picked_because", "choices",
                 "human_chamber", "note"]
KEY_COLUMNS = ["sample", "sheet", "video", "result_dir", "arena", "time_s", "frame",
               "tool_chamber", "picked_because", "detail"]
_PER_PAGE = 20
_COLUMNS = 4


#: A mouse's body length (nose to tail base) from the area of its blob (the tail is opened
#: away): an ellipse 2.5 times as long as wide has the area pi / 4 * L * L / 2.5, so
#: L = sqrt(10 / pi * area), about 1.8 * sqrt(area).
BODY_LENGTH_PER_ROOT_AREA = 1.8
#: A second is "near door" when, in the frame shown, the centroid is at most this many body
#: lengths from a door line: the mouse's head or tail can reach into the doorway, the calls
#: a person most often sees differently. (A CPP chamber is only three or four body lengths
#: wide: at 2 body lengths most of the seconds of a generated 60-s video were "near door",
#: 38 of 60; at 1, 25.)
NEAR_DOOR_BODY_LENGTHS = 1.0

#: ``picked_because`` values: why a second is on the sheet.
NEAR_DOOR = "near door"
FLAGGED = "flagged"
RANDOM = "random"

_SECOND_COLUMNS = ["result", "video", "arena", "second", "time_s", "frame", "tool_chamber",
                   "near_door", "flagged", "detail"]


def _door_distance(x: np.ndarray, y: np.ndarray, layout) -> np.ndarray:
    """Distance (px) of each point to the nearest door line of ``layout`` (clipped to the
    arena, as the sheet draws them); inf without doors, NaN where the point is NaN."""
    best = np.full(len(x), np.inf)
    p = np.stack([x, y], axis=1)
    for seg in layout.door_segments:
        for part in getattr(seg, "geoms", [seg]):
            coords = np.asarray(part.coords, dtype=float)
            for a, b in zip(coords[:-1], coords[1:], strict=True):
                d = b - a
                u = np.clip(((p - a) @ d) / max(float(d @ d), 1e-12), 0.0, 1.0)
                best = np.minimum(best, np.hypot(*(p - a - u[:, None] * d).T))
    best[~(np.isfinite(x) & np.isfinite(y))] = np.nan
    return best


def _body_length(areas: np.ndarray, recorded: float | None) -> float | None:
    """Body length (px) from the median blob area of the track, else from the mouse's area
    ``track`` recorded for the arena; None when neither is known."""
    areas = areas[np.isfinite(areas) & (areas > 0)]
    area = float(np.median(areas)) if len(areas) else recorded
    if area is None or not math.isfinite(area) or area <= 0:
        return None
    return BODY_LENGTH_PER_ROOT_AREA * math.sqrt(area)


def _seconds_of(result: StoredResult, i: int, near_lengths: float) -> pd.DataFrame:
    """Every whole second of every arena of one result, with the track row nearest its
    middle (the frame a person will see), and whether it is near a door or flagged."""
    from ..visual.review import overlay_geometry

    seconds = int(math.floor(result.duration_s or 0.0))
    if seconds == 0:
        return pd.DataFrame(columns=_SECOND_COLUMNS)
    track = result.track(
        ["frame", "time_s", "arena", "x", "y", "area_px", "detected", "chamber"]
    )
    flags = flagged_seconds(result)
    geo = overlay_geometry(result.config)
    parts = []
    for arena, layout in zip(result.config.arenas, geo.layouts, strict=True):
        sub = track[track["arena"].astype(str) == arena.name].sort_values(
            "time_s", kind="stable"
        )
        if len(sub) == 0:
            continue
        times = sub["time_s"].to_numpy(dtype=float)
        middle = np.arange(seconds) + 0.5
        j = np.clip(np.searchsorted(times, middle), 1, len(times) - 1) if len(times) > 1 \
            else np.zeros(seconds, dtype=np.int64)
        if len(times) > 1:
            j = np.where(np.abs(times[j - 1] - middle) <= np.abs(times[j] - middle), j - 1, j)
        rows = sub.iloc[j]
        detected = rows["detected"].to_numpy(dtype=bool)
        x = np.where(detected, rows["x"].to_numpy(dtype=float), np.nan)
        y = np.where(detected, rows["y"].to_numpy(dtype=float), np.nan)
        rec = result.record.detection_for(arena.name)
        length = _body_length(
            sub.loc[sub["detected"].astype(bool), "area_px"].to_numpy(dtype=float),
            None if rec is None else rec.mouse_area_px,
        )
        dist = _door_distance(x, y, layout)
        lengths = dist / length if length else np.full(seconds, np.nan)
        near = np.nan_to_num(lengths, nan=np.inf) <= near_lengths
        mine = flags[flags["arena"].astype(str) == arena.name]
        reasons = mine.groupby("second")["reason"].agg(lambda r: ", ".join(sorted(set(r))))
        second = np.arange(seconds)
        flagged = np.isin(second, reasons.index.to_numpy(dtype=np.int64))
        detail = []
        for s, is_near, is_flagged, bl, d in zip(second, near, flagged, lengths, dist,
                                                  strict=True):
            words = []
            if is_near:
                words.append(f"centroid {bl:.2f} body lengths ({d:.0f} px) from a door line")
            if is_flagged:
                words.append(f"flagged: {reasons[s]}")
            detail.append("; ".join(words))
        parts.append(pd.DataFrame({
            "result": i,
            "video": result.video_label,
            "arena": arena.name,
            "second": second,
            "time_s": rows["time_s"].to_numpy(dtype=float),
            "frame": rows["frame"].to_numpy(dtype=np.int64),
            "tool_chamber": rows["chamber"].astype(str).to_numpy(),
            "near_door": near,
            "flagged": flagged,
            "detail": detail,
        }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=_SECOND_COLUMNS
    )


def _borderline_first(near: np.ndarray, flagged: np.ndarray, n: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` seconds: borderline ones first (near a door and flagged, taken in
    turn so that neither kind crowds out the other, each in random order), then random
    others; all distinct."""
    queues = [list(rng.permutation(np.flatnonzero(near))),
              list(rng.permutation(np.flatnonzero(flagged)))]
    chosen: list[int] = []
    taken: set[int] = set()
    turn = 0
    while len(chosen) < n and any(queues):
        queue = queues[turn % 2]
        turn += 1
        while queue:
            k = int(queue.pop(0))
            if k not in taken:
                chosen.append(k)
                taken.add(k)
                break
    rest = np.flatnonzero(~(near | flagged))
    fill = rng.choice(rest, size=min(n - len(chosen), len(rest)), replace=False)
    return np.array(chosen + [int(k) for k in fill], dtype=np.int64)


def draw_samples(
    results: list[StoredResult], n: int, seed: int = 0, *,
    near_door_lengths: float = NEAR_DOOR_BODY_LENGTHS,
) -> pd.DataFrame:
    """``n`` (video, arena, second) draws without replacement, each with the track row
    nearest the middle of that second: the borderline seconds first, then random ones.

    Borderline: the mouse (the centroid of the frame shown) within ``near_door_lengths``
    body lengths of a door line (body length from the median blob area of the arena's
    track, see :data:`BODY_LENGTH_PER_ROOT_AREA`, so it scales with the mouse), or a second
    the result flags (:func:`cpp_tracker.results.stored.flagged_seconds`). When there are
    more than ``n``, near-door and flagged seconds are taken in turn, each kind in random
    order; when fewer, every one is drawn and the rest are random seconds (every other
    second of every arena equally likely). ``seed`` makes the draw repeatable.

    Columns: ``result, video, arena, second, time_s, frame, tool_chamber, picked_because``
    (``near door``, ``flagged``, ``near door, flagged`` or ``random``), ``detail`` (the
    distance to the door in body lengths, the flag's reasons); ``result`` is the index into
    ``results``. The rows are in random order (neighbours on the sheet are not neighbours
    in time, nor of one kind).
    """
    if n < 1:
        raise ConfigError("--sample", f"must be at least 1, got {n}")
    tables = [_seconds_of(result, i, near_door_lengths) for i, result in enumerate(results)]
    population = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(
        len(t) for t in tables
    ) else pd.DataFrame(columns=_SECOND_COLUMNS)
    if len(population) == 0:
        raise OutputError("the results hold no whole second of video to sample")
    n = min(n, len(population))
    rng = np.random.default_rng(seed)
    near = population["near_door"].to_numpy(dtype=bool)
    flagged = population["flagged"].to_numpy(dtype=bool)
    picks = _borderline_first(near, flagged, n, rng)
    table = population.iloc[picks].reset_index(drop=True)
    because = []
    for is_near, is_flagged in zip(table["near_door"], table["flagged"], strict=True):
        words = [w for w, on in ((NEAR_DOOR, is_near), (FLAGGED, is_flagged)) if on]
        because.append(", ".join(words) or RANDOM)
    table["picked_because"] = because
    table = table[["result", "video", "arena", "second", "time_s", "frame", "tool_chamber",
                   "picked_because", "detail"]]
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
    """Draw ``n`` seconds (:func:`draw_samples`: borderline ones first) and write the
    contact sheet(s), the sheet CSV and the key CSV.

    ``video`` overrides the stored video path (one result only). Returns the paths written
    and how many samples were picked for what: ``{"pages": [...], "sheet": path, "key":
    path, "sheet_id": id, "picked_because": {reason: count}}``.
    """
    from ..results.outputs import make_output_folder

    if video is not None and len(results) != 1:
        raise ConfigError("--video", "can only be given for a single result folder")
    out_dir = make_output_folder(out_dir, "the agreement sheet")
    samples = draw_samples(results, n, seed)
    sheet_id = _sheet_id(samples, seed)
    samples.insert(0, "sample", np.arange(1, len(samples) + 1))
    videos = {i: resolve_video(results[i], video) for i in samples["result"].unique()}
    pages = [
        write_bytes(out_dir / f"agreement_sheet_{p:02d}.png",
                    _contact_page(samples.iloc[start : start + _PER_PAGE], results, videos,
                                  f"Agreement sheet {sheet_id}, page {p}"))
        for p, start in enumerate(range(0, len(samples), _PER_PAGE), start=1)
    ]
    sheet_path = write_csv(out_dir / "agreement_sheet.csv", _sheet_table(samples, results,
                                                                          sheet_id))
    key_path = write_csv(out_dir / "agreement_key.csv", _key_table(samples, results, sheet_id))
    return {"pages": pages, "sheet": sheet_path, "key": key_path, "sheet_id": sheet_id,
            "picked_because": samples["picked_because"].value_counts().to_dict()}


def _contact_page(page: pd.DataFrame, results: list[StoredResult], videos: dict,
                  title: str) -> bytes:
    """One PNG page of numbered thumbnails (no tool answer on it: the sheet is blind)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows = int(math.ceil(len(page) / _COLUMNS))
    fig = Figure(figsize=(4 * _COLUMNS, 3.4 * n_rows + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    fig.suptitle(
        f"{title}: for each number, write the chamber the mouse is in (or 'unknown') in "
        "agreement_sheet.csv", fontsize=12,
    )
    for k, row in enumerate(page.itertuples(index=False)):
        result = results[row.result]
        ax = fig.add_subplot(n_rows, _COLUMNS, k + 1)
        ax.imshow(_thumbnail(result, row.arena, row.time_s, videos[row.result]))
        label = f"#{row.sample}"
        if len(results) > 1 or len(result.config.arenas) > 1:
            label += f"  {result.name} / {row.arena}"
        ax.set_title(label, fontsize=13, fontweight="bold", loc="left")
        ax.set_title(row.picked_because, fontsize=10, loc="right", color="0.35")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _sheet_table(samples: pd.DataFrame, results: list[StoredResult], sheet_id: str):
    """What the rater fills in: the chambers to choose from, never the tool's answer."""
    choices = [
        " / ".join([*results[r.result].config.arena(r.arena).chamber_names, "unknown"])
        for r in samples.itertuples(index=False)
    ]
    return pd.DataFrame(
        {
            "sample": samples["sample"],
            "sheet": sheet_id,
            "video": samples["video"],
            "arena": samples["arena"],
            "time_s": samples["time_s"].round(3),
            "picked_because": samples["picked_because"],
            "choices": choices,
            "human_chamber": "",
            "note": "",
        }
    )[SHEET_COLUMNS]


def _key_table(samples: pd.DataFrame, results: list[StoredResult], sheet_id: str):
    """The tool's answers, kept apart from the sheet."""
    return pd.DataFrame(
        {
            "sample": samples["sample"],
            "sheet": sheet_id,
            "video": samples["video"],
            "result_dir": [str(results[i].result_dir) for i in samples["result"]],
            "arena": samples["arena"],
            "time_s": samples["time_s"].round(3),
            "frame": samples["frame"],
            "tool_chamber": samples["tool_chamber"],
            "picked_because": samples["picked_because"],
            "detail": samples["detail"],
        }
    )[KEY_COLUMNS]


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


# ----------------------------------------------------------------- two results of one video
@dataclass(frozen=True)
class ArenaAgreement:
    """Two results of one video compared frame by frame in one arena.

    ``percent`` and ``kappa`` are over the frames where both know the chamber; the seconds
    (each frame lasting until the next timestamp, as in the summary) split the rest:
    ``differ_s`` both know it and disagree, ``unknown_a_s`` / ``unknown_b_s`` only one of
    them does not know it, ``unknown_both_s`` neither does.
    """

    arena: str
    frames: int
    frames_both_known: int
    percent: float
    kappa: float
    duration_s: float
    agree_s: float
    differ_s: float
    unknown_a_s: float
    unknown_b_s: float
    unknown_both_s: float
    confusion: pd.DataFrame  # rows: A's chamber, columns: B's (with 'unknown')
    stretches: pd.DataFrame  # start_s, end_s, a_chamber, b_chamber where they differ
    review_a: str = ""  # A's QC reasons when it needs review ('' when it passed)
    review_b: str = ""


@dataclass(frozen=True)
class ResultsAgreement:
    """:func:`compare_results`: per arena, and how the two were found to be of one video."""

    result_a: Path
    result_b: Path
    same_video: str  # e.g. 'same video fingerprint', 'same frame count (749 frames)'
    column: str  # the track column compared
    arenas: tuple[ArenaAgreement, ...]


def _same_video(a: StoredResult, b: StoredResult) -> str:
    """How ``a`` and ``b`` are known to be of one video; an error when they are not."""
    fa, fb = a.record.video.fingerprint, b.record.video.fingerprint
    if fa and fb:
        if fa != fb:
            raise OutputError(
                f"{a.result_dir} and {b.result_dir} are results of different videos (their "
                f"run.json fingerprints differ: {a.record.video.shown_path} and "
                f"{b.record.video.shown_path}); compare two results of the same video"
            )
        return "same video fingerprint"
    na, nb = a.record.time_base.frames_tracked, b.record.time_base.frames_tracked
    if na is None or nb is None or na != nb:
        raise OutputError(
            f"{a.result_dir} has {na} frames and {b.result_dir} has {nb}: they are not "
            "results of the same video; compare two results of the same video"
        )
    return f"same frame count ({na} frames; one result names no video file)"


def _chamber_column(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """``position_chamber`` (what the times count) where both have it, else ``chamber``."""
    return "position_chamber" if {"position_chamber"} <= set(a.columns) & set(b.columns) \
        else "chamber"


def _differing_stretches(time_s: np.ndarray, durations: np.ndarray, ca: np.ndarray,
                         cb: np.ndarray) -> pd.DataFrame:
    """The runs of consecutive frames where the two chambers differ."""
    differ = ca != cb
    rows = []
    start = None
    for i in range(len(differ) + 1):
        run_ends = i == len(differ) or not differ[i] or (
            start is not None and (ca[i], cb[i]) != (ca[start], cb[start]))
        if start is not None and run_ends:
            rows.append({"start_s": round(float(time_s[start]), 3),
                         "end_s": round(float(time_s[i - 1] + durations[i - 1]), 3),
                         "a_chamber": ca[start], "b_chamber": cb[start]})
            start = None
        if i < len(differ) and differ[i] and start is None:
            start = i
    return pd.DataFrame(rows, columns=["start_s", "end_s", "a_chamber", "b_chamber"])


def _compare_arena(arena: str, ta: pd.DataFrame, tb: pd.DataFrame, column: str,
                   gap_factor: float) -> ArenaAgreement:
    from ..analysis.occupancy import frame_durations

    time_s = ta["time_s"].to_numpy(dtype=float)
    durations = frame_durations(time_s, gap_factor).durations_s
    ca = ta[column].astype(str).to_numpy(dtype=object)
    cb = tb[column].astype(str).to_numpy(dtype=object)
    ua, ub = ca == "unknown", cb == "unknown"
    both = ~ua & ~ub
    same = both & (ca == cb)
    categories = sorted((set(ca) | set(cb)) - {"unknown"}) + ["unknown"]
    confusion = pd.crosstab(pd.Categorical(ca, categories), pd.Categorical(cb, categories),
                            rownames=["A"], colnames=["B"], dropna=False)
    n_both = int(both.sum())
    return ArenaAgreement(
        arena=arena, frames=len(ca), frames_both_known=n_both,
        percent=100.0 * float(same.sum()) / n_both if n_both else math.nan,
        kappa=cohens_kappa(ca[both], cb[both]) if n_both else math.nan,
        duration_s=float(durations.sum()),
        agree_s=float(durations[same].sum()),
        differ_s=float(durations[both & ~same].sum()),
        unknown_a_s=float(durations[ua & ~ub].sum()),
        unknown_b_s=float(durations[ub & ~ua].sum()),
        unknown_both_s=float(durations[ua & ub].sum()),
        confusion=confusion,
        stretches=_differing_stretches(time_s, durations, ca, cb),
    )


def _arena_rows(result: StoredResult, track: pd.DataFrame, arena: str) -> pd.DataFrame:
    rows = track[track["arena"].astype(str) == arena].sort_values("frame", kind="stable")
    if not len(rows):
        raise OutputError(f"{result.result_dir}: has no rows for arena {arena}")
    return rows.reset_index(drop=True)


def _review(result, arena: str) -> str:
    """The arena's QC reasons when its result needs review, else ''."""
    qc = result.record.qc.get(arena)
    if qc is None or not qc.needs_review:
        return ""
    return "; ".join(qc.review_reasons) or "QC"


def compare_results(result_a: str | Path, result_b: str | Path) -> ResultsAgreement:
    """Compare, frame by frame and per arena, the chambers of two result folders of the
    same video (e.g. ``track`` and ``pose`` runs), in the column the times count
    (``position_chamber``; ``chamber`` for results of older versions).

    Refused with one sentence when they are not of one video (fingerprints in run.json, or
    without one, the frame count), have other arenas, or other frames.
    """
    from ..results.stored import load_result

    a, b = load_result(result_a), load_result(result_b)
    how = _same_video(a, b)
    names_a = [x.name for x in a.config.arenas]
    names_b = [x.name for x in b.config.arenas]
    if names_a != names_b:
        raise OutputError(f"{a.result_dir} has the arenas {', '.join(names_a)} and "
                          f"{b.result_dir} has {', '.join(names_b)}; compare results made "
                          "with the same arenas")
    ta, tb = a.track(), b.track()
    column = _chamber_column(ta, tb)
    arenas = []
    for name in names_a:
        ra, rb = _arena_rows(a, ta, name), _arena_rows(b, tb, name)
        if not np.array_equal(ra["frame"].to_numpy(), rb["frame"].to_numpy()):
            raise OutputError(
                f"{a.result_dir} and {b.result_dir} analysed other frames of the video "
                f"(arena {name}: {len(ra)} and {len(rb)} frames; a stride or a time window?); "
                "compare results of the same frames"
            )
        compared = _compare_arena(name, ra, rb, column, a.config.video.gap_factor)
        arenas.append(replace(compared, review_a=_review(a, name), review_b=_review(b, name)))
    return ResultsAgreement(Path(result_a), Path(result_b), how, column, tuple(arenas))
