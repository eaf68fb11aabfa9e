"""A pose-estimation file -> the mouse's position per frame, as the tracker's track has it.

Reads DeepLabCut (``.h5``, ``.csv``; single- and multi-animal), SLEAP (``.slp``, analysis
``.h5``), LightningPose (``.csv``) and ``movement`` netCDF (``.nc``) files through
``movement``'s loaders (the optional extra ``pip install ".[pose]"``, imported only here and
only when a pose file is read). :func:`read_pose_file` gives the file's keypoints and
individuals as plain arrays; :func:`pose_positions` makes one position per frame and arena
from the config's ``pose`` section: the mean of the chosen keypoints, undetected wherever
one of them is missing or below ``pose.min_likelihood`` (never filled in).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.settings import BY_ARENA, ArenaConfig, PoseSettings
from ..errors import ConfigError, PoseError

__all__ = [
    "POSE_SUFFIXES",
    "PoseFile",
    "ArenaPositions",
    "import_movement",
    "read_pose_file",
    "pose_positions",
]

#: File endings ``cpp-tracker pose`` reads.
POSE_SUFFIXES = (".csv", ".h5", ".slp", ".nc")


@dataclass(frozen=True)
class PoseFile:
    """The keypoints of a pose file, frame by frame (row ``i`` is frame ``i``)."""

    path: str
    format: str  # e.g. 'DeepLabCut csv', 'SLEAP analysis h5', 'movement netCDF'
    position: np.ndarray  # (frames, individuals, keypoints, 2): x (column), y (row), px
    confidence: np.ndarray  # (frames, individuals, keypoints), NaN where the file has none
    keypoints: tuple[str, ...]
    individuals: tuple[str, ...]
    #: the file's own time of each frame in seconds (a netCDF file with time in seconds)
    time_s: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.position.shape[0])


@dataclass(frozen=True)
class ArenaPositions:
    """One arena's position per frame from the pose file."""

    arena: str
    individual: str
    x: np.ndarray
    y: np.ndarray
    detected: np.ndarray
    likelihood: np.ndarray  # the lowest of the chosen keypoints' (NaN: the file has none)
    outside: int = 0  # sure positions outside the arena outline, counted as undetected
    #: the chosen keypoints (frames, keypoints, 2), NaN where the frame is undetected: what
    #: ``chambers.rule: body_fraction`` counts the mouse's share in each chamber from
    points: np.ndarray | None = None


def import_movement():
    """``movement.io.load_poses``, or one sentence saying how to install it."""
    try:
        from movement.io import load_poses
    except ImportError:
        raise PoseError(
            "reading pose files needs the optional package 'movement': install it with "
            "pip install \".[pose]\" (or pip install movement)"
        ) from None
    return load_poses


def _h5_kind(path: Path) -> str:
    """'SLEAP analysis h5' or 'DeepLabCut h5' by the file's datasets."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "SLEAP analysis h5" if "tracks" in f and "node_names" in f else "DeepLabCut h5"
    except OSError as e:
        raise PoseError(f"{path}: is not an HDF5 file ({e}); give a DeepLabCut or SLEAP "
                        ".h5 file") from None


def _csv_kind(path: Path) -> str:
    """'LightningPose csv' (its scorer names a heatmap model) or 'DeepLabCut csv'."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if not first.lower().startswith("scorer"):
        raise PoseError(f"{path}: is not a DeepLabCut or LightningPose pose file (its first "
                        "row should start with 'scorer'); give the CSV the pose software wrote")
    return "LightningPose csv" if "heatmap" in first.lower() else "DeepLabCut csv"


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".slp":
        return "SLEAP slp"
    if suffix == ".nc":
        return "movement netCDF"
    if suffix == ".h5":
        return _h5_kind(path)
    if suffix == ".csv":
        return _csv_kind(path)
    raise PoseError(f"{path}: is not a pose file this version reads (endings "
                    f"{', '.join(POSE_SUFFIXES)}: DeepLabCut, SLEAP, LightningPose, movement)")


@contextmanager
def _quiet_movement():
    """``movement`` logs its loaders' errors to stderr (loguru) before raising them; the
    error this module raises says it in one sentence instead."""
    from loguru import logger

    logger.disable("movement")
    try:
        yield
    finally:
        logger.enable("movement")


def _load_dataset(path: Path, fmt: str):
    """The file as a ``movement`` poses dataset."""
    with _quiet_movement():
        return _load_with_movement(path, fmt)


def _load_with_movement(path: Path, fmt: str):
    load_poses = import_movement()
    if fmt == "movement netCDF":
        import xarray as xr
        from movement.validators.datasets import ValidPosesInputs

        # as movement's own napari loader opens a netCDF file: xarray, then its validator
        with xr.open_dataset(path) as ds:
            ds = ds.load()
        if ds.attrs.get("ds_type") != "poses":
            raise PoseError(f"{path}: is not a movement poses dataset (its ds_type is "
                            f"{ds.attrs.get('ds_type')!r}); give a netCDF file of poses")
        ValidPosesInputs.validate(ds)
        return ds
    if fmt.startswith("SLEAP"):
        return load_poses.from_sleap_file(path)
    if fmt.startswith("LightningPose"):
        return load_poses.from_lp_file(path)
    return load_poses.from_dlc_file(path)


def read_pose_file(path: str | Path) -> PoseFile:
    """The keypoints of a pose-estimation file (see the module's formats).

    Raises :class:`~cpp_tracker.errors.PoseError` with one sentence when the file is
    missing, of another kind, or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseError(f"{path}: file not found; check the path of the pose file")
    import_movement()  # with it come h5py and xarray
    fmt = _format_of(path)
    try:
        ds = _load_dataset(path, fmt)
        position = ds["position"].transpose("time", "individuals", "keypoints", "space")
        confidence = ds["confidence"].transpose("time", "individuals", "keypoints")
        keypoints = tuple(str(k) for k in ds["keypoints"].values)
        individuals = tuple(str(i) for i in ds["individuals"].values)
        pos = position.sel(space=["x", "y"]).to_numpy().astype(float)
        conf = confidence.to_numpy().astype(float)
    except PoseError:
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure is a file the user must fix
        raise PoseError(
            f"{path}: cannot be read as a {fmt} file ({type(e).__name__}: {e}); give the "
            "file the pose software wrote"
        ) from None
    seconds = None
    if fmt == "movement netCDF" and ds.attrs.get("time_unit") == "seconds":
        seconds = ds["time"].to_numpy().astype(float)
    return PoseFile(str(path), fmt, pos, conf, keypoints, individuals, seconds)


def _chosen_keypoints(pose: PoseFile, settings: PoseSettings) -> list[int]:
    there = ", ".join(pose.keypoints)
    names = settings.point
    if not names:
        if len(pose.keypoints) == 1:
            return [0]
        raise ConfigError("pose.point", f"is needed: {pose.path} has the keypoints {there}; "
                                        "name one, or a list whose mean is the mouse")
    missing = [n for n in names if n not in pose.keypoints]
    if missing:
        raise ConfigError("pose.point", f"{', '.join(missing)} is not a keypoint of "
                                        f"{pose.path}; it has {there}")
    return [pose.keypoints.index(n) for n in names]


def _individual_for(pose: PoseFile, settings: PoseSettings, arena: ArenaConfig,
                    n_arenas: int) -> int:
    there = ", ".join(pose.individuals)
    wanted = settings.individual
    if wanted == BY_ARENA:
        for name in (arena.animal_id, arena.name):
            if name in pose.individuals:
                return pose.individuals.index(name)
        raise ConfigError("pose.individual", f"{BY_ARENA}: arena {arena.name} (animal_id "
                                             f"{arena.animal_id or '-'}) matches no individual "
                                             f"of {pose.path}; it has {there}")
    if n_arenas > 1:
        raise ConfigError("pose.individual", f"the config has {n_arenas} arenas: set "
                                             f"pose.individual: {BY_ARENA} to give each arena "
                                             "the individual named as its animal_id or name")
    if wanted is None:
        if len(pose.individuals) == 1:
            return 0
        raise ConfigError("pose.individual", f"is needed: {pose.path} has the individuals "
                                             f"{there}; name one, or use {BY_ARENA}")
    if wanted not in pose.individuals:
        raise ConfigError("pose.individual", f"{wanted} is not an individual of {pose.path}; "
                                             f"it has {there}")
    return pose.individuals.index(wanted)


def _inside(arena: ArenaConfig, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each point lies in the arena's outline or on it (NaN: False)."""
    import shapely

    ok = np.isfinite(x) & np.isfinite(y)
    out = np.zeros(len(x), dtype=bool)
    out[ok] = shapely.intersects_xy(shapely.Polygon(arena.polygon), x[ok], y[ok])
    return out


def pose_positions(pose: PoseFile, settings: PoseSettings,
                   arenas: tuple[ArenaConfig, ...]) -> list[ArenaPositions]:
    """Per arena (config order), the mouse's position in every frame of ``pose``.

    The position is the mean of the ``pose.point`` keypoints; a frame is undetected (x, y
    NaN) when any of them is missing or has a likelihood below ``pose.min_likelihood``, or
    when the position lies outside the arena's outline (the tracker looks for the mouse only
    inside it: a point outside is a mislabel or another box's mouse, and would otherwise be
    counted in the nearest chamber).
    Raises :class:`~cpp_tracker.errors.ConfigError` naming the keypoints or individuals the
    file has when the config asks for others.
    """
    keys = _chosen_keypoints(pose, settings)
    out = []
    for arena in arenas:
        ind = _individual_for(pose, settings, arena, len(arenas))
        xy = pose.position[:, ind, keys, :]  # (frames, chosen, 2)
        conf = pose.confidence[:, ind, keys]
        known = np.isfinite(xy).all(axis=2)
        # a file without likelihoods (NaN confidence) trusts every point it gives
        sure = np.where(np.isfinite(conf), conf >= settings.min_likelihood, True)
        detected = (known & sure).all(axis=1)
        mean = xy.mean(axis=1)
        inside = _inside(arena, mean[:, 0], mean[:, 1])
        outside = int((detected & ~inside).sum())
        detected &= inside
        x = np.where(detected, mean[:, 0], np.nan)
        y = np.where(detected, mean[:, 1], np.nan)
        with np.errstate(all="ignore"):
            lowest = np.nanmin(np.where(np.isfinite(conf), conf, np.inf), axis=1)
        lowest[~np.isfinite(lowest)] = np.nan
        points = np.where(detected[:, None, None], xy, np.nan)
        out.append(ArenaPositions(arena.name, pose.individuals[ind], x, y, detected, lowest,
                                  outside, points))
    return out
