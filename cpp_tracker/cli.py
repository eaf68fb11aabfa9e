"""The ``cpp-tracker`` command: the only place that prints, exits or sets up logging.

Exit status: 0 success, 1 some input failed (an unreadable video, ...), 2 usage or
configuration error. User mistakes give one plain message on stderr, no traceback (add
``--debug`` to see one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from . import __version__
from .errors import ConfigError, CppTrackerError

__all__ = ["main", "build_parser"]

_EPILOG = """\
typical use:
  cpp-tracker check-config box.yaml --video night1.mp4
  cpp-tracker preview night1.mp4 --config box.yaml --out preview.png
  cpp-tracker track night1.mp4 --config box.yaml --out results/

exit status: 0 success, 1 an input failed, 2 usage or configuration error
"""


def _print_summary(summary, stream=sys.stdout) -> None:
    """Time in each chamber, one block per arena."""
    for arena, rows in summary.groupby("arena", sort=False):
        first = rows.iloc[0]
        animal = f" (animal {first['animal_id']})" if isinstance(first["animal_id"], str) else ""
        print(
            f"  {arena}{animal}: {first['duration_s']:.1f} s recorded, "
            f"{first['observed_s']:.1f} s with a known chamber",
            file=stream,
        )
        for _, r in rows.iterrows():
            if r["chamber"] == "unknown":
                print(
                    f"    {'unknown':<14} {r['time_s']:10.1f} s  ({r['percent']:5.1f} % of the "
                    "recording)",
                    file=stream,
                )
            else:
                lat = "-" if r["latency_s"] != r["latency_s"] else f"{r['latency_s']:.1f} s"
                print(
                    f"    {r['chamber']:<14} {r['time_s']:10.1f} s  {r['percent']:5.1f} %   "
                    f"entries {int(r['entries']):4d}   first entry {lat}",
                    file=stream,
                )


# ---------------------------------------------------------------------------------- track
def _add_track(sub) -> None:
    p = sub.add_parser(
        "track",
        help="track one video and write its time-in-chamber results",
        description=(
            "Track the mouse in one video and write OUT/<video stem>/: track.parquet (one "
            "row per frame), occupancy.csv (seconds in each chamber, per second), "
            "summary.csv (time, percent, entries, latency, bouts, distance per chamber), "
            "background.png and run.json (video identity, config and its hash, version, "
            "frames used and lost, warnings)."
        ),
    )
    p.add_argument("video", help="the video file")
    p.add_argument("--config", required=True, help="the YAML config (arenas, doors, chambers)")
    p.add_argument("--out", required=True, help="output folder; results go to OUT/<video stem>/")
    p.add_argument(
        "--stride",
        type=int,
        default=1,
        help="analyse every Nth frame only, for a quick look (default 1). Every frame is "
        "still decoded, so on H.264 this saves tracking time, not decoding time; results are "
        "less exact",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_track)


def _cmd_track(args) -> int:
    from .config import load_config
    from .pipeline import track_video

    if args.stride < 1:
        raise ConfigError("--stride", "must be a whole number of at least 1")
    config = load_config(args.config)
    result = track_video(
        args.video, config, args.out, stride=args.stride, progress=not args.no_progress
    )
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{args.video}: results in {result.result_dir}")
    _print_summary(result.summary)
    return 0


# --------------------------------------------------------------------------- check-config
def _add_check_config(sub) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a config and describe what it defines",
        description="Validate a config (against a video's frame size when --video is given) "
        "and print the arenas, chambers and doors it defines.",
    )
    p.add_argument("config", help="the YAML config")
    p.add_argument("--video", help="check the coordinates against this video's frame size")
    p.set_defaults(handler=_cmd_check_config)


def _describe_config(config) -> list[str]:
    """What a valid config defines, a line per arena, chamber, door and mask.

    Areas and lengths are in px, and in cm where the arena has a scale; for a template in
    cm they are measured on the drawing itself (exact), not with the mean px/cm.
    """
    import numpy as np
    import shapely
    from shapely.geometry import Polygon

    from .geometry import build_layout

    lines = []
    for arena in config.arenas:
        layout = build_layout(arena, config.chambers.hysteresis_px)
        scale = arena.px_per_cm
        t = arena.template
        if t is not None:
            inverse = np.linalg.inv(t.homography())

            def to_cm(geom, inverse=inverse, factor=t.cm_per_unit):
                def f(xy):
                    hom = np.c_[xy, np.ones(len(xy))] @ inverse.T
                    return hom[:, :2] / hom[:, 2:3] * factor

                return shapely.transform(geom, f)
        elif scale:

            def to_cm(geom, scale=scale):
                return shapely.transform(geom, lambda xy: xy / scale)
        else:
            to_cm = None

        def area(geom, to_cm=to_cm) -> str:
            text = f"{geom.area:9.0f} px²"
            return text + (f" {to_cm(geom).area:8.0f} cm²" if to_cm else " " * 13)

        def length(geom, to_cm=to_cm) -> str:
            text = f"{geom.length:9.1f} px"
            return text + (f" {to_cm(geom).length:8.1f} cm" if to_cm else "")

        animal = f" (animal {arena.animal_id})" if arena.animal_id else ""
        if t is not None:
            how = (f"{scale:.3g} px/cm on average, from a template in {t.units} fitted by "
                   "corners_px")
        elif arena.scale is not None and arena.scale.points is not None:
            how = f"{scale:.3g} px/cm, from scale.points {arena.scale.distance_cm:g} cm apart"
        elif scale:
            how = f"{scale:.3g} px/cm"
        else:
            how = "no scale: distances in px only (add px_per_cm, scale or units: cm)"
        lines.append(f"  arena {arena.name}{animal}: {len(arena.chambers)} chamber(s), "
                     f"{len(arena.doors)} door(s), {len(arena.masks)} mask(s); {how}")
        total = layout.polygon.area
        lines.append(f"    {'outline':<22}{area(layout.polygon)}")
        for name, piece in zip(layout.chamber_names, layout.pieces):
            lines.append(f"    chamber {name:<14}{area(piece)}  "
                         f"{100 * piece.area / total:5.1f} % of the arena")
        for door, seg in zip(arena.doors, layout.door_segments):
            lines.append(f"    door {door.name:<17}{length(seg)} long")
        for j, mask in enumerate(arena.masks):
            hidden = Polygon(mask).intersection(layout.polygon)
            lines.append(f"    mask {j:<17}{area(hidden)}  "
                         f"{100 * hidden.area / total:5.1f} % of the arena hidden")
    h = config.chambers.hysteresis_px
    lines.append(f"  chambers change {h:g} px past a door line (chambers.hysteresis_px)")
    return [line.rstrip() for line in lines]


def _cmd_check_config(args) -> int:
    from .config import check_against_frame, config_hash, load_config

    config = load_config(args.config)
    if args.video:
        from .video import probe_video

        info = probe_video(args.video)
        check_against_frame(config, info.width, info.height, video=args.video)
        print(f"{args.config}: valid for {args.video} ({info.width}x{info.height} px)")
    else:
        print(f"{args.config}: valid (add --video VIDEO to check it against the frame size)")
    print(f"  config hash {config_hash(config)}")
    for line in _describe_config(config):
        print(line)
    return 0


# -------------------------------------------------------------------------------- preview
def _add_preview(sub) -> None:
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
    from .config import check_against_frame, load_config
    from .preview import preview_video
    from .video import probe_video

    if args.samples is not None and args.samples < 1:
        raise ConfigError("--samples", "must be a whole number of at least 1")
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError("--out", f"'{args.out}' should be a .png file, e.g. preview.png")
    config = load_config(args.config)
    info = probe_video(args.video)
    misfit = None
    try:
        check_against_frame(config, info.width, info.height, video=args.video)
    except ConfigError as e:
        misfit = e
    path, (width, height) = preview_video(args.video, config, args.out, samples=args.samples)
    print(f"{path}: preview of {args.config} on {args.video} ({width}x{height} px)")
    if misfit is not None:
        print(f"error: {misfit}", file=sys.stderr)
        return misfit.exit_code
    return 0


# ------------------------------------------------------------------------------ the parser
#: Subcommands, in the order ``--help`` lists them. Each adds its parser and sets a handler.
SUBCOMMANDS: list[Callable] = [_add_track, _add_check_config, _add_preview]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cpp-tracker",
        description="Time-in-chamber results from overhead videos of a mouse in a "
        "Conditioned Place Preference box.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cpp-tracker {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CppTrackerError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: say so plainly, traceback on --debug
        if args.debug:
            raise
        print(
            f"error: unexpected failure ({type(e).__name__}: {e}); rerun with --debug and "
            "report the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

