"""Exception types raised by cpp_tracker.

Library code raises these with messages that name the file, key or frame and say what
to change; only :mod:`cpp_tracker.cli` turns them into a line on stderr and an exit code.
"""

from __future__ import annotations

__all__ = ["CppTrackerError", "ConfigError", "VideoError", "OutputError", "PoseError",
           "BusyError"]


class CppTrackerError(Exception):
    """Base class of every error that is the user's to fix (no traceback needed)."""

    exit_code = 1


class ConfigError(CppTrackerError):
    """A configuration file is missing, malformed or inconsistent.

    ``problems`` holds one sentence per problem, each naming its key path.
    """

    exit_code = 2

    def __init__(self, source: str, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"{source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{source}: {len(self.problems)} problems:\n{lines}"
        super().__init__(text)


class VideoError(CppTrackerError):
    """A video cannot be opened or read."""

    exit_code = 1


class OutputError(CppTrackerError):
    """An output folder or stored result cannot be read or written."""

    exit_code = 1


class PoseError(CppTrackerError):
    """A pose-estimation file cannot be read, or does not fit its video."""

    exit_code = 1


class BusyError(CppTrackerError):
    """A folder is in use by another cpp-tracker run (its lock file names the process)."""

    exit_code = 2
