"""YAML configuration -> frozen dataclasses, with validation that reports every problem.

Coordinates are pixels of the video frame: ``x`` is the column, ``y`` the row, origin at the
top-left corner, as in OpenCV.

A configuration file looks like this (only ``arenas`` is required)::

    arenas:
      - name: box1
        animal_id: m01            # optional, carried into summary.csv
        polygon: [[20, 20], [300, 20], [300, 220], [20, 220]]
        doors:
          - name: door1
            line: [[160, 20], [160, 220]]
        chambers:
          - name: paired
            point: [90, 120]
          - name: unpaired
            point: [230, 120]
        masks: []                 # polygons inside the arena to ignore
        px_per_cm: 5.0            # or scale: {points: [[x, y], [x, y]], distance_cm: 10}
    background: {samples: 40}
    detection: {animal: auto, threshold: auto, min_area_px: auto, opening_px: 5}
    chambers: {hysteresis_px: 6}
    video: {gap_factor: 2.5}

Every key but ``arenas`` has a default; :func:`load_config` fills them in, so the resolved
configuration written to ``run.json`` shows every value that was used.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = [
    "Point",
    "Door",
    "Chamber",
    "Scale",
    "ArenaConfig",
    "BackgroundSettings",
    "DetectionSettings",
    "ChamberSettings",
    "VideoSettings",
    "TimeWindow",
    "SummarySettings",
    "Config",
    "RESERVED_NAMES",
    "DETECTION_KEYS",
    "load_config",
    "parse_config",
    "config_to_dict",
    "config_hash",
    "check_against_frame",
]

Point = tuple[float, float]

#: Chamber names that the tool uses itself and that a config may not take.
RESERVED_NAMES = frozenset({"unknown"})

#: Top-level sections whose values change what is detected in the frames (changing them
#: needs a new tracking run; everything else can be recomputed from a stored track).
DETECTION_KEYS = ("background", "detection", "arenas[].polygon", "arenas[].masks")


@dataclass(frozen=True)
class Door:
    """A door line from wall to wall; it is clipped to the arena polygon."""

    name: str
    line: tuple[Point, Point]


@dataclass(frozen=True)
class Chamber:
    """A named piece of the arena, identified by a point inside it."""

    name: str
    point: Point


@dataclass(frozen=True)
class Scale:
    """Pixels per centimetre, given directly or from two points a known distance apart."""

    px_per_cm: float
    points: tuple[Point, Point] | None = None
    distance_cm: float | None = None


@dataclass(frozen=True)
class ArenaConfig:
    """One CPP box: its floor outline, door lines, chambers, masks and scale."""

    name: str
    polygon: tuple[Point, ...]
    doors: tuple[Door, ...]
    chambers: tuple[Chamber, ...]
    masks: tuple[tuple[Point, ...], ...] = ()
    animal_id: str | None = None
    scale: Scale | None = None

    @property
    def chamber_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.chambers)

    @property
    def px_per_cm(self) -> float | None:
        return None if self.scale is None else self.scale.px_per_cm


@dataclass(frozen=True)
class BackgroundSettings:
    """How the empty-box image is estimated.

    ``samples`` frames are taken at even spacing across the whole video and the per-pixel
    median is the background.
    """

    samples: int = 40


@dataclass(frozen=True)
class DetectionSettings:
    """How the mouse is found in the difference to the background.

    ``animal``: ``dark`` (dark mouse on a lighter floor), ``light`` (light mouse on a darker
    floor) or ``auto`` (absolute difference, either way). ``threshold``: grey levels, or
    ``None`` for automatic (from the noise of the difference images). ``min_area_px`` /
    ``max_area_px``: blob size limits, ``None`` for automatic (0.05 % and 25 % of the arena
    area). ``opening_px``: diameter of the morphological opening that removes the tail and
    noise. ``blur_px``: Gaussian blur diameter applied before differencing (0 = off).
    """

    animal: str = "auto"
    threshold: float | None = None
    min_area_px: float | None = None
    max_area_px: float | None = None
    opening_px: int = 5
    blur_px: int = 3


@dataclass(frozen=True)
class ChamberSettings:
    """Chamber assignment: the chamber changes only once the centroid is farther than
    ``hysteresis_px`` past a door line, so a mouse sitting in a doorway does not flicker."""

    hysteresis_px: float = 6.0


@dataclass(frozen=True)
class VideoSettings:
    """Time base: an interval longer than ``gap_factor`` times the median frame interval is a
    gap (dropped or lost frames); its time beyond one median interval counts as unknown."""

    gap_factor: float = 2.5
    checkpoint_s: float = 300.0


@dataclass(frozen=True)
class TimeWindow:
    """A named stretch of video time, ``[start_s, end_s)``; ``end_s`` None = to the end."""

    name: str
    start_s: float
    end_s: float | None = None


@dataclass(frozen=True)
class SummarySettings:
    """Settings of the time-in-chamber summary.

    ``min_step_px``: a movement of the centroid counts towards the distance travelled only
    once it reaches this many pixels from the last counted position (resting jitter is
    ignored). ``bin_s``: optional length of consecutive time bins for ``summary_bins.csv``.
    ``windows``: optional named time windows (e.g. ``habituation: [0, 300]``) summarised in
    ``summary_bins.csv`` too; they may overlap and need not cover the whole recording.
    """

    min_step_px: float = 2.0
    bin_s: float | None = None
    windows: tuple[TimeWindow, ...] = ()


@dataclass(frozen=True)
class Config:
    """A whole, validated configuration."""

    arenas: tuple[ArenaConfig, ...]
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    chambers: ChamberSettings = field(default_factory=ChamberSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    summary: SummarySettings = field(default_factory=SummarySettings)
    source: str = "<config>"

    def arena(self, name: str) -> ArenaConfig:
        for a in self.arenas:
            if a.name == name:
                return a
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# parsing and validation


class _Problems:
    """Collects problems with their key paths so that all are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _point(v: Any, path: str, problems: _Problems) -> Point | None:
    if (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(_is_number(c) for c in v)
    ):
        return (float(v[0]), float(v[1]))
    problems.add(path, f"expected a point [x, y] of two numbers, got {v!r}")
    return None


def _points(v: Any, path: str, problems: _Problems, min_points: int) -> tuple[Point, ...] | None:
    if not isinstance(v, (list, tuple)):
        problems.add(path, f"expected a list of points [[x, y], ...], got {v!r}")
        return None
    pts = [_point(p, f"{path}[{i}]", problems) for i, p in enumerate(v)]
    if any(p is None for p in pts):
        return None
    if len(pts) < min_points:
        problems.add(path, f"needs at least {min_points} points, got {len(pts)}")
        return None
    return tuple(pts)  # type: ignore[arg-type]


def _name(v: Any, path: str, problems: _Problems) -> str | None:
    if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip():
        return str(v).strip()
    problems.add(path, f"expected a non-empty name, got {v!r}")
    return None


def _mapping(v: Any, path: str, problems: _Problems, allowed: dict[str, str]) -> dict:
    """Check that ``v`` is a mapping with only ``allowed`` keys; return it (or {})."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        problems.add(path, f"expected a mapping of keys, got {type(v).__name__} {v!r}")
        return {}
    for key in v:
        if key not in allowed:
            close = _closest(str(key), allowed)
            hint = f"; did you mean '{close}'?" if close else ""
            where = f"{path}.{key}" if path else str(key)
            problems.add(where, f"unknown key{hint} (allowed: {', '.join(allowed)})")
    return v


def _closest(key: str, allowed: dict[str, str] | list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return match[0] if match else None


def _number(
    v: Any,
    path: str,
    problems: _Problems,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_auto: bool = False,
    integer: bool = False,
) -> float | None:
    if allow_auto and (v is None or v == "auto"):
        return None
    if not _is_number(v) or (integer and float(v) != int(v)):
        kind = "a whole number" if integer else "a number"
        auto = " or 'auto'" if allow_auto else ""
        problems.add(path, f"expected {kind}{auto}, got {v!r}")
        return None
    if minimum is not None and v < minimum:
        problems.add(path, f"must be at least {minimum}, got {v!r}")
        return None
    if maximum is not None and v > maximum:
        problems.add(path, f"must be at most {maximum}, got {v!r}")
        return None
    return int(v) if integer else float(v)


_TOP_KEYS = {
    "arenas": "list of arenas",
    "background": "background estimation",
    "detection": "mouse detection",
    "chambers": "chamber assignment",
    "video": "time base",
    "summary": "summary settings",
}
_ARENA_KEYS = {
    "name": "",
    "animal_id": "",
    "polygon": "",
    "doors": "",
    "chambers": "",
    "masks": "",
    "px_per_cm": "",
    "scale": "",
}


def _parse_scale(raw: dict, path: str, problems: _Problems) -> Scale | None:
    if "px_per_cm" in raw and "scale" in raw:
        problems.add(f"{path}.scale", "give either px_per_cm or scale, not both")
        return None
    if raw.get("px_per_cm") is not None:
        v = _number(raw["px_per_cm"], f"{path}.px_per_cm", problems)
        if v is not None and v <= 0:
            problems.add(f"{path}.px_per_cm", f"must be positive, got {v}")
            return None
        return None if v is None else Scale(px_per_cm=v)
    if raw.get("scale") is not None:
        s = _mapping(raw["scale"], f"{path}.scale", problems, {"points": "", "distance_cm": ""})
        pts = _points(s.get("points"), f"{path}.scale.points", problems, 2)
        dist = _number(s.get("distance_cm"), f"{path}.scale.distance_cm", problems, minimum=0)
        if pts is None or dist is None:
            return None
        if len(pts) != 2:
            problems.add(f"{path}.scale.points", f"needs exactly 2 points, got {len(pts)}")
            return None
        d_px = math.dist(pts[0], pts[1])
        if d_px == 0 or dist == 0:
            problems.add(f"{path}.scale", "the two points and distance_cm must be non-zero")
            return None
        return Scale(px_per_cm=d_px / dist, points=(pts[0], pts[1]), distance_cm=dist)
    return None


def _parse_arena(raw: Any, path: str, problems: _Problems) -> ArenaConfig | None:
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping with name, polygon, doors, chambers; got {raw!r}")
        return None
    _mapping(raw, path, problems, _ARENA_KEYS)
    n_before = len(problems.items)
    for key in ("name", "polygon", "chambers"):
        if key not in raw:
            problems.add(f"{path}.{key}", "is required")
    name = _name(raw.get("name"), f"{path}.name", problems) if "name" in raw else None
    polygon = (
        _points(raw.get("polygon"), f"{path}.polygon", problems, 3) if "polygon" in raw else None
    )
    animal_id = None
    if raw.get("animal_id") is not None:
        animal_id = _name(raw["animal_id"], f"{path}.animal_id", problems)

    doors: list[Door] = []
    raw_doors = raw.get("doors", []) or []
    if not isinstance(raw_doors, list):
        problems.add(f"{path}.doors", f"expected a list of doors, got {raw_doors!r}")
        raw_doors = []
    for j, d in enumerate(raw_doors):
        dpath = f"{path}.doors[{j}]"
        d = _mapping(d, dpath, problems, {"name": "", "line": ""})
        if "line" not in d:
            problems.add(f"{dpath}.line", "is required: [[x1, y1], [x2, y2]]")
            continue
        dname = _name(d.get("name", f"door{j + 1}"), f"{dpath}.name", problems)
        line = _points(d.get("line"), f"{dpath}.line", problems, 2)
        if line is not None and len(line) != 2:
            problems.add(f"{dpath}.line", f"needs exactly 2 points, got {len(line)}")
            line = None
        if line is not None and math.dist(line[0], line[1]) == 0:
            problems.add(f"{dpath}.line", "its two end points are the same point")
            line = None
        if dname is not None and line is not None:
            doors.append(Door(dname, (line[0], line[1])))

    chambers: list[Chamber] = []
    raw_ch = raw.get("chambers", []) or []
    if not isinstance(raw_ch, list):
        problems.add(f"{path}.chambers", f"expected a list of chambers, got {raw_ch!r}")
        raw_ch = []
    for j, c in enumerate(raw_ch):
        cpath = f"{path}.chambers[{j}]"
        c = _mapping(c, cpath, problems, {"name": "", "point": ""})
        for key in ("name", "point"):
            if key not in c:
                problems.add(f"{cpath}.{key}", "is required")
        if "name" not in c or "point" not in c:
            continue
        cname = _name(c.get("name"), f"{cpath}.name", problems)
        point = _point(c.get("point"), f"{cpath}.point", problems)
        if cname is not None and cname.lower() in RESERVED_NAMES:
            problems.add(f"{cpath}.name", f"'{cname}' is reserved by the tool; choose another")
            cname = None
        if cname is not None and point is not None:
            chambers.append(Chamber(cname, point))
    if "chambers" in raw and not raw_ch:
        problems.add(f"{path}.chambers", "needs at least one chamber")

    masks: list[tuple[Point, ...]] = []
    raw_masks = raw.get("masks", []) or []
    if not isinstance(raw_masks, list):
        problems.add(f"{path}.masks", f"expected a list of polygons, got {raw_masks!r}")
        raw_masks = []
    for j, m in enumerate(raw_masks):
        pts = _points(m, f"{path}.masks[{j}]", problems, 3)
        if pts is not None:
            masks.append(pts)

    scale = _parse_scale(raw, path, problems)

    for what, items in (("door", doors), ("chamber", chambers)):
        seen: set[str] = set()
        for k, item in enumerate(items):
            if item.name in seen:
                key = "doors" if what == "door" else "chambers"
                problems.add(f"{path}.{key}[{k}].name", f"duplicate {what} name '{item.name}'")
            seen.add(item.name)

    if len(problems.items) > n_before or name is None or polygon is None:
        return None
    return ArenaConfig(
        name=name,
        polygon=polygon,
        doors=tuple(doors),
        chambers=tuple(chambers),
        masks=tuple(masks),
        animal_id=animal_id,
        scale=scale,
    )


def _parse_settings(raw: dict, problems: _Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}

    b = _mapping(raw.get("background"), "background", problems, {"samples": ""})
    out["background"] = BackgroundSettings(
        samples=_number(b.get("samples", 40), "background.samples", problems, minimum=3,
                        maximum=1000, integer=True) or 40,
    )

    d = _mapping(
        raw.get("detection"),
        "detection",
        problems,
        {"animal": "", "threshold": "", "min_area_px": "", "max_area_px": "", "opening_px": "",
         "blur_px": ""},
    )
    animal = d.get("animal", "auto")
    if animal not in ("auto", "dark", "light"):
        problems.add("detection.animal", f"expected auto, dark or light, got {animal!r}")
        animal = "auto"
    opening = _number(d.get("opening_px", 5), "detection.opening_px", problems, minimum=0,
                      maximum=51, integer=True)
    blur = _number(d.get("blur_px", 3), "detection.blur_px", problems, minimum=0, maximum=51,
                   integer=True)
    out["detection"] = DetectionSettings(
        animal=animal,
        threshold=_number(d.get("threshold"), "detection.threshold", problems, minimum=1,
                          maximum=254, allow_auto=True),
        min_area_px=_number(d.get("min_area_px"), "detection.min_area_px", problems, minimum=1,
                            allow_auto=True),
        max_area_px=_number(d.get("max_area_px"), "detection.max_area_px", problems, minimum=1,
                            allow_auto=True),
        opening_px=5 if opening is None else int(opening),
        blur_px=3 if blur is None else int(blur),
    )
    det = out["detection"]
    if det.min_area_px and det.max_area_px and det.min_area_px >= det.max_area_px:
        problems.add("detection.max_area_px", "must be larger than detection.min_area_px")

    c = _mapping(raw.get("chambers"), "chambers", problems, {"hysteresis_px": ""})
    hyst = _number(c.get("hysteresis_px", 6.0), "chambers.hysteresis_px", problems, minimum=0)
    out["chambers"] = ChamberSettings(hysteresis_px=6.0 if hyst is None else hyst)

    v = _mapping(raw.get("video"), "video", problems, {"gap_factor": "", "checkpoint_s": ""})
    gap = _number(v.get("gap_factor", 2.5), "video.gap_factor", problems, minimum=1.1)
    ckpt = _number(v.get("checkpoint_s", 300.0), "video.checkpoint_s", problems, minimum=1)
    out["video"] = VideoSettings(gap_factor=gap or 2.5, checkpoint_s=ckpt or 300.0)

    s = _mapping(
        raw.get("summary"), "summary", problems, {"min_step_px": "", "bin_s": "", "windows": ""}
    )
    step = _number(s.get("min_step_px", 2.0), "summary.min_step_px", problems, minimum=0)
    bin_s = None
    if s.get("bin_s") is not None:
        bin_s = _number(s["bin_s"], "summary.bin_s", problems, minimum=1)
    out["summary"] = SummarySettings(
        min_step_px=2.0 if step is None else step,
        bin_s=bin_s,
        windows=_parse_windows(s.get("windows"), "summary.windows", problems),
    )
    return out


def _parse_windows(raw: Any, path: str, problems: _Problems) -> tuple[TimeWindow, ...]:
    """``{name: [start_s, end_s], ...}``; ``end_s`` may be ``null`` or ``end`` (to the end)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.add(
            path,
            f"expected a mapping of named windows such as {{habituation: [0, 300], "
            f"test: [300, 1200]}}, got {raw!r}",
        )
        return ()
    windows = []
    for key, value in raw.items():
        wpath = f"{path}.{key}"
        name = _name(key, wpath, problems)
        if name is not None and name.lower() in RESERVED_NAMES:
            problems.add(wpath, f"'{name}' is reserved by the tool; choose another name")
            name = None
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            problems.add(
                wpath,
                f"expected [start_s, end_s] (seconds from the start of the video; end_s may "
                f"be 'end'), got {value!r}",
            )
            continue
        start = _number(value[0], f"{wpath}[0]", problems, minimum=0)
        end = None
        if value[1] is not None and value[1] != "end":
            end = _number(value[1], f"{wpath}[1]", problems, minimum=0)
            if end is None:
                continue
            if start is not None and end <= start:
                problems.add(wpath, f"ends ({end:g} s) before it starts ({start:g} s)")
                continue
        if name is not None and start is not None:
            windows.append(TimeWindow(name, start, end))
    return tuple(windows)


def parse_config(raw: Any, source: str = "<config>") -> Config:
    """Validate a configuration mapping (as loaded from YAML) and return a :class:`Config`.

    Every problem found is collected; a :class:`~cpp_tracker.errors.ConfigError` lists them
    all, each with its key path (``arenas[0].doors[1].line``).
    """
    problems = _Problems()
    if not isinstance(raw, dict):
        raise ConfigError(source, "the file must be a YAML mapping with an 'arenas' list")
    _mapping(raw, "", problems, _TOP_KEYS)
    raw_arenas = raw.get("arenas")
    arenas: list[ArenaConfig] = []
    if not isinstance(raw_arenas, list) or not raw_arenas:
        problems.add("arenas", "is required: a list with at least one arena")
        raw_arenas = []
    for i, a in enumerate(raw_arenas):
        arena = _parse_arena(a, f"arenas[{i}]", problems)
        if arena is not None:
            arenas.append(arena)
    names = [a.name for a in arenas]
    for i, n in enumerate(names):
        if n in names[:i]:
            problems.add(f"arenas[{i}].name", f"duplicate arena name '{n}'")
    settings = _parse_settings(raw, problems)

    config = Config(arenas=tuple(arenas), source=source, **settings)
    if not problems.items:
        # Geometry (simple polygons, doors crossing, one point per piece, overlaps) needs
        # well-formed values, so it is checked only when the structure is sound.
        from .geometry import geometry_problems

        for path, message in geometry_problems(config):
            problems.add(path, message)
    if problems.items:
        raise ConfigError(source, problems.items)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found; check the path given to --config") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot be read ({e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(
            str(path), f"is not valid YAML ({where}{problem}); check indentation and brackets"
        ) from None
    return parse_config(raw, source=str(path))


# --------------------------------------------------------------------------------------
# serialisation


def config_to_dict(config: Config) -> dict[str, Any]:
    """The resolved configuration as plain data (every default filled in), YAML-ready."""
    arenas = []
    for a in config.arenas:
        d: dict[str, Any] = {"name": a.name}
        if a.animal_id is not None:
            d["animal_id"] = a.animal_id
        d["polygon"] = [list(p) for p in a.polygon]
        d["doors"] = [{"name": door.name, "line": [list(p) for p in door.line]} for door in a.doors]
        d["chambers"] = [{"name": c.name, "point": list(c.point)} for c in a.chambers]
        d["masks"] = [[list(p) for p in m] for m in a.masks]
        if a.scale is not None:
            if a.scale.points is not None:
                d["scale"] = {
                    "points": [list(p) for p in a.scale.points],
                    "distance_cm": a.scale.distance_cm,
                }
            else:
                d["px_per_cm"] = a.scale.px_per_cm
        arenas.append(d)
    out: dict[str, Any] = {"arenas": arenas}
    for key in ("background", "detection", "chambers", "video", "summary"):
        out[key] = asdict(getattr(config, key))
    out["summary"]["windows"] = {
        w.name: [w.start_s, "end" if w.end_s is None else w.end_s]
        for w in config.summary.windows
    }
    # 'auto' reads better than null for automatic values
    for k, v in out["detection"].items():
        if v is None:
            out["detection"][k] = "auto"
    return copy.deepcopy(out)


def config_hash(config: Config) -> str:
    """A short, stable hash of the resolved configuration (sha256 of canonical JSON)."""
    text = json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_against_frame(config: Config, width: int, height: int, video: str = "") -> None:
    """Raise :class:`ConfigError` naming every coordinate that lies outside the video frame."""
    problems = _Problems()

    def check(p: Point, path: str) -> None:
        x, y = p
        if not (0 <= x <= width and 0 <= y <= height):
            problems.add(
                path,
                f"point [{x:g}, {y:g}] lies outside the video frame "
                f"(0..{width} x 0..{height} px{' of ' + video if video else ''})",
            )

    for i, a in enumerate(config.arenas):
        for k, p in enumerate(a.polygon):
            check(p, f"arenas[{i}].polygon[{k}]")
        for j, c in enumerate(a.chambers):
            check(c.point, f"arenas[{i}].chambers[{j}].point")
        for j, m in enumerate(a.masks):
            for k, p in enumerate(m):
                check(p, f"arenas[{i}].masks[{j}][{k}]")
    if problems.items:
        raise ConfigError(config.source, problems.items)
