"""Seeded CPP scenes and videos with exact ground truth (never used at run time)."""

from .scenes import (
    ArenaSpec,
    GroundTruth,
    SceneSpec,
    chamber_of,
    damage_bytes,
    generate_video,
    iter_frames,
    main,
    make_scene,
    scaled,
    body_length_px,
    truncate_file,
)

__all__ = [
    "ArenaSpec",
    "SceneSpec",
    "GroundTruth",
    "make_scene",
    "generate_video",
    "iter_frames",
    "truncate_file",
    "damage_bytes",
    "chamber_of",
    "scaled",
    "body_length_px",
    "main",
]
