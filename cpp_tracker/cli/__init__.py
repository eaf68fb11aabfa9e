"""The command line: parsing and formatting, the only place that prints or exits.

``app`` builds the parser and runs a command (errors -> exit status, ``--debug``); the
commands live by group: ``setup`` (init, draw, check-config, preview), ``track`` (track,
batch) and ``results`` (reprocess, summarize, plot, review, overlay, agreement, report).
"""

from .app import build_parser, main

__all__ = ["main", "build_parser"]
