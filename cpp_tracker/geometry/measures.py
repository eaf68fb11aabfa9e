"""The sizes of an arena's parts: areas and lengths in px, and in cm where there is a scale.

``cpp-tracker check-config`` prints them. For an arena drawn in cm or mm (a template fitted
by its corners) the cm figures are measured on the drawing itself, mapped back through the
perspective transform: exact, not the pixel figures divided by the mean px/cm. An arena with
a plain ``px_per_cm`` is measured in px and divided by it.

The arena is read by shape (:class:`MeasurableArena`; ``config.ArenaConfig`` fits): geometry
imports nothing from the config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import shapely
from shapely.geometry import Polygon

from .chambers import ArenaDrawing, build_layout

__all__ = [
    "AreaMeasure",
    "LengthMeasure",
    "ArenaMeasures",
    "MeasurableArena",
    "measure_arena",
    "measure_arenas",
]


class _FittedTemplate(Protocol):
    @property
    def cm_per_unit(self) -> float: ...
    def homography(self) -> np.ndarray: ...


class MeasurableArena(ArenaDrawing, Protocol):
    """An arena with its scale: ``px_per_cm`` (``None`` without one) and, when it was drawn
    in other units, the ``template`` with its ``homography()`` (units -> px) and
    ``cm_per_unit`` (:class:`cpp_tracker.config.settings.ArenaConfig`)."""

    @property
    def px_per_cm(self) -> float | None: ...
    @property
    def template(self) -> _FittedTemplate | None: ...  # type: ignore[override]


@dataclass(frozen=True)
class AreaMeasure:
    """The area of one part: px², cm² (``None`` without a scale) and, for chambers and
    masks, the share of the arena's floor it covers (%)."""

    name: str
    px2: float
    cm2: float | None
    percent_of_arena: float | None = None


@dataclass(frozen=True)
class LengthMeasure:
    """The length of a door line inside the arena: px, and cm (``None`` without a scale)."""

    name: str
    px: float
    cm: float | None


@dataclass(frozen=True)
class ArenaMeasures:
    """One arena's outline, chambers (config order), door lines and masks (the part of each
    mask inside the arena, named by its index)."""

    arena: str
    has_cm: bool
    outline: AreaMeasure
    chambers: tuple[AreaMeasure, ...]
    doors: tuple[LengthMeasure, ...]
    masks: tuple[AreaMeasure, ...]


_ToCm = Callable[[shapely.Geometry], shapely.Geometry]


def _to_cm(arena: MeasurableArena) -> _ToCm | None:
    """Maps a geometry in px to cm: through the template's inverse homography, by the plain
    scale, or ``None`` when the arena has no scale."""
    template = arena.template
    if template is not None:
        inverse = np.linalg.inv(template.homography())
        factor = template.cm_per_unit

        def unmap(xy: np.ndarray) -> np.ndarray:
            hom = np.c_[xy, np.ones(len(xy))] @ inverse.T
            return hom[:, :2] / hom[:, 2:3] * factor

        return lambda geom: shapely.transform(geom, unmap)
    scale = arena.px_per_cm
    if scale:
        return lambda geom: shapely.transform(geom, lambda xy: xy / scale)
    return None


def measure_arena(arena: MeasurableArena) -> ArenaMeasures:
    """Areas and lengths of a valid arena's parts (it must have passed
    :func:`~cpp_tracker.geometry.chambers.geometry_problems`), in px and, where the arena
    has a scale, in cm.

    Percentages are of the outline's area in px (the same share in cm for a plain scale;
    for a template, the share of the picture).
    """
    layout = build_layout(arena, 0.0)  # the pieces do not depend on the hysteresis
    to_cm = _to_cm(arena)
    total = layout.polygon.area

    def area(name: str, geom, share: bool = False) -> AreaMeasure:
        return AreaMeasure(name, geom.area, to_cm(geom).area if to_cm else None,
                           100 * geom.area / total if share else None)

    def length(name: str, geom) -> LengthMeasure:
        return LengthMeasure(name, geom.length, to_cm(geom).length if to_cm else None)

    return ArenaMeasures(
        arena=arena.name,
        has_cm=to_cm is not None,
        outline=area("outline", layout.polygon),
        chambers=tuple(area(name, piece, share=True)
                       for name, piece in zip(layout.chamber_names, layout.pieces, strict=True)),
        doors=tuple(length(door.name, seg)
                    for door, seg in zip(arena.doors, layout.door_segments, strict=True)),
        masks=tuple(area(str(j), Polygon(mask).intersection(layout.polygon), share=True)
                    for j, mask in enumerate(arena.masks)),
    )


def measure_arenas(arenas: Sequence[MeasurableArena]) -> tuple[ArenaMeasures, ...]:
    """:func:`measure_arena` of each arena, in order."""
    return tuple(measure_arena(a) for a in arenas)
