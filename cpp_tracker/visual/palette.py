"""One colour per chamber name, the same in every picture the tool draws.

The preview, ``init``'s picture, ``qc.png``, the review clips and overlays, the agreement
sheet, the batch report and the drawing page all colour a chamber with
:func:`chamber_colours`: the k-th chamber name of the config (arenas in order, each name
counted the first time it appears) gets the k-th colour of :data:`OKABE_ITO`, cycling after
the seventh, and ``unknown`` (no chamber) is grey. The colours follow the config alone, not
the video or the track, so every video of a batch run with one config shows ``paired`` in
the same colour, and a name shared by several arenas has one colour in all of them.

The colours are Masataka Okabe and Kei Ito's Color Universal Design set, which stays
distinguishable with the common forms of colour blindness; its black is left out, because
the pictures draw door lines, flags and text backgrounds in black. Yellow comes last: the
preview outlines arenas in yellow.

Each :class:`Colour` gives the forms the drawing libraries take: ``hex`` (matplotlib,
HTML), ``rgb`` (0-255), ``bgr`` (OpenCV) and ``rgb01`` (0-1 floats).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.settings import Config

__all__ = [
    "OKABE_ITO",
    "UNKNOWN_CHAMBER",
    "UNKNOWN_COLOUR",
    "Colour",
    "chamber_colours",
    "chamber_order",
    "page_palette",
]


@dataclass(frozen=True)
class Colour:
    """A colour, ``#RRGGBB``, and its name."""

    hex: str
    name: str = ""

    def __post_init__(self) -> None:
        text = self.hex
        if len(text) != 7 or text[0] != "#" or any(c not in "0123456789abcdefABCDEF"
                                                    for c in text[1:]):
            raise ValueError(f"a colour is written #RRGGBB, got {text!r}")

    @property
    def rgb(self) -> tuple[int, int, int]:
        """(red, green, blue), 0-255."""
        return tuple(int(self.hex[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    @property
    def bgr(self) -> tuple[int, int, int]:
        """(blue, green, red), 0-255: OpenCV's order."""
        r, g, b = self.rgb
        return (b, g, r)

    @property
    def rgb01(self) -> tuple[float, float, float]:
        """(red, green, blue), 0-1: matplotlib's floats."""
        r, g, b = self.rgb
        return (r / 255, g / 255, b / 255)


#: The chamber colours, in the order chambers get them (Okabe-Ito without black).
OKABE_ITO: tuple[Colour, ...] = (
    Colour("#E69F00", "orange"),
    Colour("#56B4E9", "sky blue"),
    Colour("#009E73", "bluish green"),
    Colour("#0072B2", "blue"),
    Colour("#D55E00", "vermillion"),
    Colour("#CC79A7", "reddish purple"),
    Colour("#F0E442", "yellow"),
)
#: The name of the time in no chamber, and its colour.
UNKNOWN_CHAMBER = "unknown"
UNKNOWN_COLOUR = Colour("#BBBBBB", "grey")


def chamber_order(chambers: Config | Iterable[str]) -> list[str]:
    """The chamber names of a config (arenas in order, each name once, where it first
    appears), or of a list of names in the order given; ``unknown`` is left out."""
    arenas = getattr(chambers, "arenas", None)
    if arenas is not None:
        names: Iterable[str] = (n for arena in arenas for n in arena.chamber_names)
    else:
        names = chambers  # type: ignore[assignment]
    order: list[str] = []
    for name in names:
        if name != UNKNOWN_CHAMBER and name not in order:
            order.append(str(name))
    return order


def chamber_colours(chambers: Config | Iterable[str]) -> dict[str, Colour]:
    """``{name: colour}`` for every chamber name of ``chambers`` (a config, or names in the
    config's order), plus ``unknown`` in grey.

    The k-th name of :func:`chamber_order` gets ``OKABE_ITO[k % 7]``: the same config gives
    the same colours in every picture of every video.
    """
    out = {name: OKABE_ITO[k % len(OKABE_ITO)] for k, name in enumerate(chamber_order(chambers))}
    out[UNKNOWN_CHAMBER] = UNKNOWN_COLOUR
    return out


def page_palette() -> dict[str, list]:
    """The palette as the drawing page's script takes it: ``{"chambers": [[r, g, b], ...],
    "unknown": [r, g, b]}`` (the page colours chamber names in the order they appear, as
    :func:`chamber_colours` does)."""
    return {"chambers": [list(c.rgb) for c in OKABE_ITO], "unknown": list(UNKNOWN_COLOUR.rgb)}
