"""A zoo of generated CPP scenes, split into a tuning set and a held-out set.

The tracker's rules are tuned on scenes drawn by :func:`tuning_scenes`; figures for the
README are reported on :func:`held_out_scenes`, which differ in two ways: other seeds, and
combinations of features that never occur while tuning (:data:`HELD_OUT_PAIRS`; e.g. a
light mouse in a 1080p view). Every draw is a plain :class:`SceneSpec`, so the same seed
always gives the same video.

The dimensions follow ../shared/DOMAIN.md: frame sizes from a 320x240 overview to 1080p,
one to four boxes, two or three chambers, black or white mice of several sizes, tails up to
a sixth of the body width at the base, soft shadows, floors, lighting drift and steps,
things that are not the mouse (a blinking light, a cable, droppings), 15-30 fps, H.264 or
MPEG-4 part 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .boxes import _KIND_LEVEL
from .scenes import _FLOOR_LEVEL, _MOUSE_LEVEL, ArenaSpec, SceneSpec, body_length_px

__all__ = [
    "DIMENSIONS",
    "HELD_OUT_PAIRS",
    "HELD_OUT_FIRST_SEED",
    "ZooScene",
    "draw_scene",
    "held_out_scenes",
    "tuning_scenes",
]

#: Seeds below this are for tuning, from it on held out: the two sets never share a seed.
HELD_OUT_FIRST_SEED = 10_000

#: Shortest and longest body length (px) a drawn scene may show: a real camera shows a
#: mouse about 40 to 250 px long (DOMAIN.md); a little beyond either end is kept.
BODY_LENGTH_RANGE_PX = (32.0, 300.0)

#: name -> the values a draw picks from (uniformly).
DIMENSIONS: dict[str, tuple] = {
    "size": ((320, 240), (640, 480), (1280, 720), (1920, 1080)),
    "boxes": (1, 1, 2, 4),
    "chambers": (2, 3),
    "door_angle": (0.0, 0.0, 10.0, -20.0),
    "mouse": ("dark", "light"),
    "floor": ("light", "grey", "dark"),
    "wall": ("dark", "light"),
    "floor_texture": (True, False),
    "mouse_size": (1.0, 1.4, 1.8),
    "tail": (None, 1 / 10, 1 / 8, 1 / 6),
    "shadow": (0.0, 10.0, 20.0),
    "noise": (2.0, 3.0, 5.0),
    "light": ("steady", "drift", "step"),
    "distractor": (None, None, "blink", "cable"),
    "boli": (0, 3),
    "fps": (15.0, 25.0, 30.0),
    "codec": ("h264", "h264", "h264", "mp4v"),
    # the recording starts before the trial: a gloved hand puts the mouse in, the doors
    # are lifted (``experimenter``); the tracker is then run with ``trial.start: auto``
    "start": ("trial", "trial", "experimenter"),
    # the box's design (cpp_tracker.synthetic.boxes): see BOX_DESIGNS
    "box": ("classic", "classic", "step chips|paper", "step light|dark", "step grid|holes",
            "thin chips|paper", "guillotine black|white"),
    # bedding over the floor, and the mouse kicking it around (patches that change and stay)
    "bedding": ("none", "none", "chips", "paper", "chips+kicks", "paper+kicks"),
    # an infrared night picture: the mouse 13 grey levels from the floor, noise, the corners
    # 40 % darker, the lamp flickering 2 %
    "picture": ("day", "day", "day", "ir"),
}

#: box design -> SceneSpec options, for two chambers and for three (middle floor plain)
BOX_DESIGNS: dict[str, dict] = {
    "classic": {},
    "step chips|paper": {"partition": "floor_step", "chamber_floors": ("chips", "paper")},
    "step light|dark": {"partition": "floor_step", "chamber_floors": ("light", "dark")},
    "step grid|holes": {"partition": "floor_step", "chamber_floors": ("grid", "holes")},
    "thin chips|paper": {"partition": "thin", "chamber_floors": ("chips", "paper")},
    # a commercial drug-CPP box: black and white chambers, guillotine doors, inner walls
    # seen in perspective by a camera a little off-centre
    "guillotine black|white": {"guillotine": True, "chamber_floors": ("grid", "holes"),
                               "chamber_walls": ("dark", "light"), "wall_face": 0.03,
                               "camera_offset": 0.3},
}

#: Pairs of (dimension, value) that only held-out scenes combine. A tuning draw holding
#: both of any pair is drawn again; a held-out draw is given one pair on purpose.
HELD_OUT_PAIRS: tuple[tuple[tuple[str, object], tuple[str, object]], ...] = (
    (("size", (1920, 1080)), ("mouse", "light")),
    (("floor", "dark"), ("shadow", 20.0)),
    (("chambers", 3), ("door_angle", -20.0)),
    (("boxes", 4), ("tail", 1 / 6)),
    (("distractor", "cable"), ("mouse", "light")),
    (("codec", "mp4v"), ("noise", 5.0)),
    (("light", "step"), ("floor", "grey")),
    (("start", "experimenter"), ("boxes", 2)),
    (("box", "step light|dark"), ("chambers", 3)),
    (("box", "guillotine black|white"), ("mouse", "light")),
    (("picture", "ir"), ("bedding", "chips+kicks")),
)


@dataclass(frozen=True)
class ZooScene:
    """One drawn scene: ``choices`` (dimension -> value) and the spec they make."""

    seed: int
    held_out: bool
    choices: dict
    spec: SceneSpec

    @property
    def label(self) -> str:
        """A short description for a table row."""
        c = self.choices
        w, h = c["size"]
        tail = "thin" if c["tail"] is None else f"1/{round(1 / c['tail'])}"
        words = [f"{w}x{h}", f"{c['boxes']}box", f"{c['chambers']}ch",
                 f"{c['mouse']} x{c['mouse_size']:g} on {c['floor']}", f"tail {tail}",
                 f"shadow {c['shadow']:g}", c["light"], c["codec"]]
        words += [c["distractor"]] if c["distractor"] else []
        words += ["boli"] if c["boli"] else []
        words += ["hand+doors"] if c["start"] == "experimenter" else []
        words += [] if c["box"] == "classic" else [c["box"]]
        words += [] if c["bedding"] == "none" else [c["bedding"]]
        words += ["IR"] if c["picture"] == "ir" else []
        return " ".join(words)


def _has_pair(choices: dict, pair) -> bool:
    return all(choices[name] == value for name, value in pair)


def _pick(rng: np.random.Generator) -> dict:
    return {name: values[int(rng.integers(len(values)))] for name, values in DIMENSIONS.items()}


def _box_options(design: str, n_chambers: int) -> dict:
    options = dict(BOX_DESIGNS[design])
    for key in ("chamber_floors", "chamber_walls"):
        if key in options and n_chambers == 3:
            first, last = options[key]
            options[key] = (first, "plain" if key == "chamber_floors" else first, last)
    return options


def _bedding_options(bedding: str, picture: str) -> dict:
    kind, _, kicks = bedding.partition("+")
    options = {} if kind == "none" else {"bedding": kind, "kicks": 4 if kicks else 0}
    if picture == "ir":
        options.update(ir_contrast=13.0, vignetting=0.4, flicker=0.02, noise_sigma=5.0)
    return options


def _shadow_depth(choices: dict) -> float:
    """The shadow's depth in grey levels: ``shadow`` is its depth on the light floor (195);
    a shadow takes a share of the light a floor reflects, so on a darker floor it is that
    much shallower (20 on the light floor, 5.6 on the dark one: an absolute 20 there would
    be as dark as a black mouse)."""
    return round(choices["shadow"] * _FLOOR_LEVEL[choices["floor"]] / _FLOOR_LEVEL["light"], 1)


def _spec_of(choices: dict, seed: int, duration_s: float) -> SceneSpec:
    w, h = choices["size"]
    light = {"steady": {}, "drift": {"light_drift": -0.25},
             "step": {"light_steps": ((0.6 * duration_s, 0.8),)}}[choices["light"]]
    boxes = tuple(
        ArenaSpec(n_chambers=choices["chambers"], door_angle_deg=choices["door_angle"])
        for _ in range(choices["boxes"]))
    night = _bedding_options(choices["bedding"], choices["picture"])
    return SceneSpec(
        width=w, height=h, fps=choices["fps"], duration_s=duration_s, seed=seed, arenas=boxes,
        noise_sigma=night.pop("noise_sigma", choices["noise"]),
        mouse=choices["mouse"], floor=choices["floor"], wall=choices["wall"],
        floor_texture=choices["floor_texture"],
        distractor=choices["distractor"], boli=choices["boli"], codec=choices["codec"],
        tail_base_frac=choices["tail"], shadow_depth=_shadow_depth(choices),
        mouse_size=choices["mouse_size"], experimenter=choices["start"] == "experimenter",
        **light, **_box_options(choices["box"], choices["chambers"]),
        **night)


def _fits(spec: SceneSpec) -> bool:
    """A scene the generator can draw whose mouse is as large as real cameras show it."""
    try:
        lengths = body_length_px(spec)
    except ValueError:  # the generator's own limits (box too small for the mouse, ...)
        return False
    low, high = BODY_LENGTH_RANGE_PX
    return all(low <= length <= high for length in lengths)


def _low_contrast(spec: SceneSpec) -> bool:
    """A mouse within 20 grey levels of some chamber's floor (before texture and noise):
    invisible there in the generator's palette. A black mouse on dark bedding is about 25
    levels from it and is kept, as in a real lab."""
    mouse = _MOUSE_LEVEL[spec.mouse][0]
    floor = _FLOOR_LEVEL[spec.floor]
    kinds = spec.chamber_floors or ("plain",)
    if spec.ir_contrast and set(kinds) & {"light", "dark"}:
        return True  # at night a light and a dark floor are pressed toward the mouse's grey
    return any(abs(mouse - min(235.0, floor * _KIND_LEVEL[k])) < 20 for k in kinds)


def draw_scene(seed: int, *, duration_s: float = 30.0) -> ZooScene:
    """The zoo's scene for ``seed``: held out when ``seed >= HELD_OUT_FIRST_SEED``."""
    held_out = seed >= HELD_OUT_FIRST_SEED
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2016]))
    while True:
        choices = _pick(rng)
        if held_out:
            pair = HELD_OUT_PAIRS[int(rng.integers(len(HELD_OUT_PAIRS)))]
            choices.update(dict(pair))
        elif any(_has_pair(choices, pair) for pair in HELD_OUT_PAIRS):
            continue
        try:
            spec = _spec_of(choices, seed, duration_s)
        except ValueError:  # options the generator cannot combine (e.g. IR needs contrast)
            continue
        if _fits(spec) and not _low_contrast(spec):
            return ZooScene(seed, held_out, choices, spec)


def _scenes(first: int, n: int, duration_s: float) -> Iterator[ZooScene]:
    for seed in range(first, first + n):
        yield draw_scene(seed, duration_s=duration_s)


def tuning_scenes(n: int, *, duration_s: float = 30.0) -> list[ZooScene]:
    """The first ``n`` tuning scenes (seeds 0, 1, ...)."""
    if n > HELD_OUT_FIRST_SEED:
        raise ValueError(f"at most {HELD_OUT_FIRST_SEED} tuning scenes")
    return list(_scenes(0, n, duration_s))


def held_out_scenes(n: int, *, duration_s: float = 30.0, skip: int = 0) -> list[ZooScene]:
    """``n`` held-out scenes, seeds from :data:`HELD_OUT_FIRST_SEED` + ``skip`` (skip the
    ones already looked at, for figures on scenes nobody has seen)."""
    return list(_scenes(HELD_OUT_FIRST_SEED + skip, n, duration_s))
