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


def _cmd_check_config(args) -> int:
    from .config import check_against_frame, config_hash, load_config
    from .geometry import build_layout

    config = load_config(args.config)
    if args.video:
        from .video import probe_video

        info = probe_video(args.video)
        check_against_frame(config, info.width, info.height, video=args.video)
        print(f"{args.config}: valid for {args.video} ({info.width}x{info.height} px)")
    else:
        print(f"{args.config}: valid")
    print(f"  config hash {config_hash(config)}")
    for arena in config.arenas:
        layout = build_layout(arena, config.chambers.hysteresis_px)
        scale = f", {arena.px_per_cm:.3g} px/cm" if arena.px_per_cm else ""
        animal = f", animal {arena.animal_id}" if arena.animal_id else ""
        print(
            f"  arena {arena.name}{animal}: {layout.polygon.area:.0f} px^2{scale}, "
            f"{len(arena.doors)} door(s), {len(arena.masks)} mask(s)"
        )
        for name, piece in zip(layout.chamber_names, layout.pieces, strict=True):
            share = 100 * piece.area / layout.polygon.area
            print(f"    chamber {name:<14} {piece.area:9.0f} px^2 ({share:4.1f} % of the arena)")
        for door, seg in zip(arena.doors, layout.door_segments, strict=True):
            print(f"    door {door.name:<17} {seg.length:7.1f} px long")
    return 0


# ------------------------------------------------------------------------------ the parser
#: Subcommands, in the order ``--help`` lists them. Each adds its parser and sets a handler.
SUBCOMMANDS: list[Callable] = [_add_track, _add_check_config]


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

