"""The ``cpp-tracker`` command: its parser, and :func:`main`, which runs one command and
turns its errors into an exit status. The commands are in ``setup``, ``track`` and
``results`` (this folder); the only place that prints, exits or sets up logging.

Exit status: 0 success, 1 some input failed (an unreadable video, ...), 2 usage or
configuration error. User mistakes give one plain message on stderr, no traceback (add
``--debug`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from .. import __version__
from ..errors import CppTrackerError
from .results import (
    add_agreement,
    add_experiment,
    add_overlay,
    add_plot,
    add_report,
    add_reprocess,
    add_review,
    add_summarize,
)
from .setup import add_check_config, add_draw, add_init, add_preview
from .track import add_batch, add_pose, add_track

__all__ = ["main", "build_parser"]

_EPILOG = """\
typical use:
  cpp-tracker init night1.mp4 --out box.yaml   (or: cpp-tracker draw night1.mp4 --out d.html)
  cpp-tracker check-config box.yaml --video night1.mp4
  cpp-tracker preview night1.mp4 --config box.yaml --out preview.png
  cpp-tracker track night1.mp4 --config box.yaml --out results/
  cpp-tracker batch recordings/ manifest.csv --config box.yaml --out results/
  cpp-tracker pose night1DLC.h5 --config box.yaml --video night1.mp4 --out pose_results/
  cpp-tracker reprocess results/ --config box_door_moved.yaml --keep-previous
  cpp-tracker summarize results/ --design design.csv --out cpp_results.csv
  cpp-tracker experiment results/ --design design.csv --out experiment/

exit status: 0 success, 1 an input failed, 2 usage or configuration error
"""


# ------------------------------------------------------------------------------ the parser
#: Subcommands, in the order ``--help`` lists them. Each adds its parser and sets a handler.
SUBCOMMANDS: list[Callable] = [
    add_init,
    add_draw,
    add_track,
    add_batch,
    add_pose,
    add_check_config,
    add_preview,
    add_reprocess,
    add_summarize,
    add_experiment,
    add_plot,
    add_review,
    add_overlay,
    add_agreement,
    add_report,
]


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


def _one_blas_thread() -> None:
    """Keep NumPy's BLAS to one thread (unless the user chose otherwise).

    Nothing this tool computes with BLAS is large enough to gain from threads (a few
    least-squares fits and 2x2 matrices), but OpenBLAS's idle threads spin after each call:
    measured 0.3-0.45 CPU-seconds per `track` run, taken from decoding and tracking. Set
    before NumPy is first imported (the commands import it lazily), and inherited by the
    worker processes.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    _one_blas_thread()
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
    except BrokenPipeError:
        # output piped into a command that stopped reading (| head): not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except KeyboardInterrupt as e:
        print("interrupted; rerun the same command to continue", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)  # 130 for Ctrl-C, 143 for SIGTERM
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

