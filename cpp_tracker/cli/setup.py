"""Commands that help write a config: ``init``, ``draw``, ``check-config``, ``preview``.

Each checks its arguments, calls one function of :mod:`cpp_tracker.setup`
(:func:`~cpp_tracker.setup.init.propose_config_from_video` and its writer,
:func:`~cpp_tracker.setup.draw_page.draw_page_for_video`,
:func:`~cpp_tracker.setup.config_check.check_config_file`,
:func:`~cpp_tracker.setup.config_check.preview_config_file`) and prints what came of it.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..errors import ConfigError

__all__ = ["add_init", "add_draw", "add_check_config", "add_preview"]


# ----------------------------------------------------------------------------------- init
def add_init(sub) -> None:
    p = sub.add_parser(
        "init",
        help="propose a config from a video: box outline, door lines, chamber points",
        description=(
            "Build the empty-box image of VIDEO and propose the geometry from it: the box "
            "outline (the floor's edge inside the walls), the door lines (the dividing walls "
            "with their openings) and one point per chamber, named chamber_1, chamber_2, ... "
            "Writes a commented config (OUT) and a picture of what was found "
            "(OUT without .yaml + _preview.png), and prints how sure it is of each element. "
            "Where nothing convincing is found it says so and writes a template to edit. "
            "Check the picture, rename the chambers, then track."
        ),
    )
    p.add_argument("video", help="a video of the box (any session recorded with this camera)")
    p.add_argument("--out", required=True, help="the config file to write, e.g. box.yaml")
    p.add_argument("--chambers", type=int, choices=(2, 3),
                   help="chambers per box, when known (default: as many as are found)")
    p.add_argument("--arenas", type=int, default=1, metavar="N",
                   help="boxes in the view (default 1)")
    p.add_argument("--samples", type=int, default=120, metavar="N",
                   help="frames sampled across the video for the empty-box image and the "
                   "mouse's positions (default 120)")
    p.add_argument("--preview", help="where to write the picture (default: next to --out)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(handler=_cmd_init)


def _cmd_init(args) -> int:
    from ..setup.init import preview_path_for, propose_config_from_video, write_proposed_config

    out = Path(args.out)
    if args.arenas < 1 or args.arenas > 16:
        raise ConfigError("--arenas", "must be a whole number from 1 to 16")
    if args.samples < 10:
        raise ConfigError("--samples", "must be at least 10")
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(str(out), "the config file must end in .yaml or .yml")
    if out.exists() and not args.force:
        raise ConfigError(str(out), "already exists; choose another --out, or add --force to "
                          "overwrite it")
    preview = Path(args.preview) if args.preview else preview_path_for(out)
    proposed = propose_config_from_video(args.video, out, preview=preview,
                                         chambers=args.chambers, arenas=args.arenas,
                                         samples=args.samples)
    write_proposed_config(proposed, out, preview)
    print(f"{args.video}: wrote {out} and {preview} ({proposed.width}x{proposed.height} px, "
          f"{proposed.frames_sampled} frames sampled)")
    _print_findings(proposed.proposal)
    _print_init_next_steps(proposed.proposal, args.video, out)
    return 0


def _print_findings(proposal) -> None:
    """How sure init is of each element, the chamber points, its notes."""
    print("  how sure (0-1):")
    for f in proposal.findings:
        print(f"    {f.element:<16} {f.level:<6} {f.confidence:4.2f}  {f.evidence}")
    for arena in proposal.arenas:
        points = ", ".join(f"{name} [{p[0]:g}, {p[1]:g}]" for name, p in arena.chambers)
        print(f"    {arena.name} chambers: {points}")
    for note in proposal.notes:
        print(f"  note: {note}")


def _print_init_next_steps(proposal, video: str, out: Path) -> None:
    """What is missing from the proposal, and the commands to run next."""
    if not proposal.outline_found:
        print("  OUTLINE NOT FOUND for some box: its polygon is a template rectangle; "
              f"replace it in {out} (or click it: cpp-tracker draw)")
    if not proposal.doors_found:
        print("  no doors found: the config has one chamber per box; if the box has doors, "
              f"add them in {out} (a commented template is in it) or click them with "
              f"cpp-tracker draw {_q(video)} --config {_q(out)} --out draw.html")
    print("next: look at the picture, rename the chambers in the config, then")
    print(f"  cpp-tracker check-config {_q(out)} --video {_q(video)}")
    print(f"  cpp-tracker track {_q(video)} --config {_q(out)} --out results/")


def _q(path) -> str:
    """A path as a shell word: a suggested command must work when pasted, spaces and all."""
    return shlex.quote(str(path))


# ----------------------------------------------------------------------------------- draw
def add_draw(sub) -> None:
    p = sub.add_parser(
        "draw",
        help="write a page to click the geometry on the video's empty-box image",
        description=(
            "Write one HTML file (no server, no internet needed) showing the empty-box image "
            "of VIDEO. Open it in a browser, click the arena corners, the two ends of each "
            "door line and a point in each chamber, name the chambers, add masks; the "
            "chambers are coloured as you click, and the page copies or downloads the YAML "
            "config. With --config the page starts from that config's geometry."
        ),
    )
    p.add_argument("video", help="a video of the box")
    p.add_argument("--config", help="start from this config (e.g. one written by init)")
    p.add_argument("--out", required=True, help="the HTML file to write, e.g. draw.html")
    p.add_argument("--samples", type=int, default=40, metavar="N",
                   help="frames sampled for the empty-box image (default: the config's "
                   "background.samples, else 40)")
    p.set_defaults(handler=_cmd_draw)


def _cmd_draw(args) -> int:
    from ..results.outputs import write_bytes
    from ..setup.draw_page import DRAW_SAMPLES, draw_page_for_video

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(str(out), "the page must end in .html")
    if args.samples < 3:
        raise ConfigError("--samples", "must be at least 3")
    # the default (40) gives way to the config's background.samples
    samples = None if args.samples == DRAW_SAMPLES else args.samples
    page = draw_page_for_video(args.video, config_path=args.config or None, samples=samples)
    write_bytes(out, page.html.encode("utf-8"))
    print(f"{args.video}: wrote {out} ({page.width}x{page.height} px); open it in a browser")
    if page.problems:
        print(f"  {args.config} has problems to fix on the page:")
        for p in page.problems:
            print(f"    - {p}")
    print("  click the arena corners, the ends of each door line and a point in each chamber;")
    print("  name the chambers, then 'download YAML' and check it:")
    print(f"  cpp-tracker check-config CONFIG.yaml --video {_q(args.video)}")
    return 0


# --------------------------------------------------------------------------- check-config
def add_check_config(sub) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a config and describe what it defines",
        description="Validate a config (against a video's frame size when --video is given) "
        "and print the arenas, chambers and doors it defines.",
    )
    p.add_argument("config", help="the YAML config")
    p.add_argument("--video", help="check the coordinates against this video's frame size")
    p.set_defaults(handler=_cmd_check_config)


def _cmd_check_config(args) -> int:
    from ..setup.config_check import check_config_file

    checked = check_config_file(args.config, args.video)
    if checked.frame_size is not None:
        width, height = checked.frame_size
        print(f"{args.config}: valid for {args.video} ({width}x{height} px)")
    else:
        print(f"{args.config}: valid (add --video VIDEO to check it against the frame size)")
    print(f"  config hash {checked.config_hash}")
    for line in _describe_config(checked.config, checked.measures):
        print(line)
    return 0


def _describe_config(config, measures) -> list[str]:
    """What a valid config defines, a line per arena, chamber, door and mask, with the
    areas and lengths of :func:`~cpp_tracker.geometry.measures.measure_arena`."""
    lines = []
    for arena, m in zip(config.arenas, measures, strict=True):
        animal = f" (animal {arena.animal_id})" if arena.animal_id else ""
        lines.append(f"  arena {arena.name}{animal}: {len(arena.chambers)} chamber(s), "
                     f"{len(arena.doors)} door(s), {len(arena.masks)} mask(s); "
                     f"{_scale_text(arena)}")
        lines.append(f"    {'outline':<22}{_area(m.outline)}")
        for c in m.chambers:
            lines.append(f"    chamber {c.name:<14}{_area(c)}  "
                         f"{c.percent_of_arena:5.1f} % of the arena")
        for d in m.doors:
            lines.append(f"    door {d.name:<17}{_length(d)} long")
        for k in m.masks:
            lines.append(f"    mask {k.name:<17}{_area(k)}  "
                         f"{k.percent_of_arena:5.1f} % of the arena hidden")
    c = config.chambers
    if c.rule == "body_fraction":
        lines.append(f"  chambers by body fraction: entered with {100 * c.enter_fraction:g} % "
                     f"of the mouse inside, left below {100 * c.exit_fraction:g} % "
                     "(chambers.rule)")
    else:
        lines.append(f"  chambers change {c.hysteresis_px:g} px past a door line "
                     "(chambers.hysteresis_px)")
    return [line.rstrip() for line in lines]


def _scale_text(arena) -> str:
    """Where the arena's px/cm comes from."""
    scale, t = arena.px_per_cm, arena.template
    if t is not None:
        return (f"{scale:.3g} px/cm on average, from a template in {t.units} fitted by "
                "corners_px")
    if arena.scale is not None and arena.scale.points is not None:
        return f"{scale:.3g} px/cm, from scale.points {arena.scale.distance_cm:g} cm apart"
    if scale:
        return f"{scale:.3g} px/cm"
    return "no scale: distances in px only (add px_per_cm, scale or units: cm)"


def _area(m) -> str:
    """'  12345 px²     678 cm²', with blanks for the cm² without a scale."""
    text = f"{m.px2:9.0f} px²"
    return text + (f" {m.cm2:8.0f} cm²" if m.cm2 is not None else " " * 13)


def _length(m) -> str:
    text = f"{m.px:9.1f} px"
    return text + (f" {m.cm:8.1f} cm" if m.cm is not None else "")


# -------------------------------------------------------------------------------- preview
def add_preview(sub) -> None:
    p = sub.add_parser(
        "preview",
        help="draw a config on a video's background image, to check it by eye",
        description=(
            "Draw on the video's background image (the empty box, as 'track' computes it) "
            "each arena outline, the door lines with their hysteresis bands, the chambers "
            "(tinted and named, with their configured points), the masks (hatched) and a "
            "scale bar where the arena has a scale. The PNG has the video's size. If the "
            "config does not fit the video's frame, the picture is still written (to show "
            "where it misses) and the problems are listed, with exit status 2."
        ),
    )
    p.add_argument("video", help="the video file")
    p.add_argument("--config", required=True, help="the YAML config to draw")
    p.add_argument("--out", required=True, help="the PNG file to write, e.g. preview.png")
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="frames sampled for the background (default: the config's background.samples)",
    )
    p.set_defaults(handler=_cmd_preview)


def _cmd_preview(args) -> int:
    from ..setup.config_check import preview_config_file

    if args.samples is not None and args.samples < 1:
        raise ConfigError("--samples", "must be a whole number of at least 1")
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError("--out", f"'{args.out}' should be a .png file, e.g. preview.png")
    preview = preview_config_file(args.video, args.config, args.out, samples=args.samples)
    print(f"{preview.path}: preview of {args.config} on {args.video} "
          f"({preview.width}x{preview.height} px)")
    if preview.misfit is not None:
        print(f"error: {preview.misfit}", file=sys.stderr)
        return preview.misfit.exit_code
    return 0
