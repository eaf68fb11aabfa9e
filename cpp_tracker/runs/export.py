"""Results in the formats of other tools: ``--export movement``.

``track.nc``: the track as a ``movement`` poses dataset (netCDF): one keypoint ``centroid``
per individual, the individuals being the arenas (named by ``animal_id``, else by the
arena's name), the time coordinate the frames' real timestamps in seconds
(``time_unit: seconds``), ``position`` NaN where the mouse was not found. ``confidence`` is
the keypoints' likelihood for a result made from a pose file, and for the tracker 1 where a
blob was found and 0 where none was (the tracker has no finer score).

``regions.geojson``: the geometry in ``movement``'s regions-of-interest layout (a GeoJSON
FeatureCollection whose features carry ``name`` and ``roi_type``, as
``movement.roi.save_rois`` writes and ``movement.roi.load_rois`` reads): each chamber as a
``PolygonOfInterest`` (the piece of the arena its door lines cut), each door line as a
``LineOfInterest``. With several arenas the names are ``<arena>/<chamber>``.

Both are written atomically, and removed when a run does not ask for them (they would show
the results they replaced).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config.settings import Config
from ..errors import ConfigError, PoseError
from ..results.outputs import atomic_path, write_bytes
from ..results.record import RunRecord

__all__ = ["EXPORTS", "MOVEMENT_FILES", "check_exports", "write_exports", "movement_dataset",
           "regions_geojson"]

#: What ``--export`` accepts.
EXPORTS = ("movement",)
MOVEMENT_FILES = ("track.nc", "regions.geojson")


def check_exports(exports: Sequence[str]) -> tuple[str, ...]:
    """``exports`` checked against :data:`EXPORTS`."""
    unknown = [e for e in exports if e not in EXPORTS]
    if unknown:
        raise ConfigError("--export", f"{', '.join(unknown)} is not a format this version "
                                      f"writes; choose from {', '.join(EXPORTS)}")
    if "movement" in exports:
        _load_poses()  # before the run, not after its tables are written
    return tuple(dict.fromkeys(exports))


def _load_poses():
    try:
        from movement.io import load_poses
    except ImportError:
        raise PoseError("--export movement needs the optional package 'movement': install "
                        "it with pip install \".[pose]\" (or pip install movement)") from None
    return load_poses


def write_exports(result_dir: Path, record: RunRecord, config: Config,
                  exports: Sequence[str]) -> RunRecord:
    """Write the exports asked for from the result folder's ``track.parquet`` (written
    before) and ``config``; remove those not asked for. The record lists what was
    written."""
    exports = check_exports(exports)
    if "movement" not in exports:
        for name in MOVEMENT_FILES:
            (result_dir / name).unlink(missing_ok=True)
        return _without(record, MOVEMENT_FILES)
    import pandas as pd

    track = pd.read_parquet(result_dir / "track.parquet")
    ds = movement_dataset(track, config, source=record.video_label or result_dir.name)
    atomic_path(result_dir / "track.nc", lambda tmp: ds.to_netcdf(tmp, engine="netcdf4"))
    write_bytes(result_dir / "regions.geojson",
                json.dumps(regions_geojson(config), indent=2).encode())
    return record.with_outputs(list(MOVEMENT_FILES))


def _without(record: RunRecord, names: Sequence[str]) -> RunRecord:
    from dataclasses import replace

    return replace(record, outputs=tuple(o for o in record.outputs if o not in names))


def _individual(arena) -> str:
    return arena.animal_id or arena.name


def movement_dataset(track, config: Config, source: str = ""):
    """The track as a ``movement`` poses dataset (see the module's layout)."""
    load_poses = _load_poses()
    arena_col = track["arena"].astype(str).to_numpy()
    first = track[arena_col == config.arenas[0].name]
    time_s = first["time_s"].to_numpy(dtype=float)
    n, k = len(time_s), len(config.arenas)
    position = np.full((n, 2, 1, k), np.nan)
    confidence = np.zeros((n, 1, k))
    for j, arena in enumerate(config.arenas):
        rows = track[arena_col == arena.name]
        detected = rows["detected"].to_numpy(dtype=bool)
        position[:, 0, 0, j] = np.where(detected, rows["x"].to_numpy(dtype=float), np.nan)
        position[:, 1, 0, j] = np.where(detected, rows["y"].to_numpy(dtype=float), np.nan)
        if "likelihood" in rows.columns:
            confidence[:, 0, j] = rows["likelihood"].to_numpy(dtype=float)
        else:
            confidence[:, 0, j] = detected.astype(float)
    ds = load_poses.from_numpy(
        position, confidence, individual_names=[_individual(a) for a in config.arenas],
        keypoint_names=["centroid"], source_software="cpp-tracker",
    )
    ds = ds.assign_coords(time=time_s)
    ds["time"].attrs["units"] = "seconds"
    ds.attrs.update(time_unit="seconds", source_file=source,
                    arenas=json.dumps({_individual(a): a.name for a in config.arenas}))
    # netCDF stores no None attributes
    ds.attrs = {key: v for key, v in ds.attrs.items() if v is not None}
    return ds


def _feature(geometry: dict, name: str, roi_type: str, **properties) -> dict:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"name": name, "roi_type": roi_type, **properties}}


def regions_geojson(config: Config) -> dict:
    """The chambers (polygons) and door lines of every arena as a GeoJSON
    FeatureCollection in ``movement``'s regions-of-interest layout."""
    import shapely

    from ..geometry.chambers import build_layout

    features = []
    several = len(config.arenas) > 1
    for arena in config.arenas:
        layout = build_layout(arena, config.chambers.hysteresis_px)
        prefix = f"{arena.name}/" if several else ""
        for name, piece in zip(layout.chamber_names, layout.pieces, strict=True):
            features.append(_feature(json.loads(shapely.to_geojson(piece)), prefix + name,
                                     "PolygonOfInterest", arena=arena.name, kind="chamber"))
        for door in arena.doors:
            line = {"type": "LineString", "coordinates": [list(p) for p in door.line]}
            features.append(_feature(line, prefix + door.name, "LineOfInterest",
                                     arena=arena.name, kind="door"))
    return {"type": "FeatureCollection", "features": features}
