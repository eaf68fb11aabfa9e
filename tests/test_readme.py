"""The README's examples are what the tool prints (so that they stay true)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _example_blocks(text: str) -> list[tuple[str, list[str]]]:
    """``$ cpp-tracker ...`` lines in fenced blocks, with the output lines below them."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return [(b[0][2:], b[1:]) for b in blocks
            if b and b[0].startswith("$ cpp-tracker check-config sample_videos/")]


def test_the_check_config_example_is_what_check_config_prints():
    examples = _example_blocks((REPO / "README.md").read_text())
    assert examples, "README lost its check-config example on the sample video"
    for command, shown in examples:
        args = command.split()[1:]
        done = subprocess.run([sys.executable, "-m", "cpp_tracker", *args], cwd=REPO,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == shown, f"README shows an old output of {command}"
