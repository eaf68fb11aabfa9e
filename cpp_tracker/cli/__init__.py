"""The command line: parsing and formatting, the only place that prints or exits."""

from .commands import build_parser, main

__all__ = ["main", "build_parser"]
