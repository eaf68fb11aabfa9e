"""The batch console's lines."""

from __future__ import annotations

from cpp_tracker.cli.track import _failure


def test_a_failed_video_is_named_once_even_when_the_error_gives_its_absolute_path():
    row = {"video": "my recordings/notes.mp4", "status": "failed",
           "error": "/tmp/walk/my recordings/notes.mp4: cannot be opened as a video"}
    assert _failure(row) == "/tmp/walk/my recordings/notes.mp4: cannot be opened as a video"
    row = {"video": "a.mp4", "status": "failed", "error": "ran out of memory; run fewer"}
    assert _failure(row) == "a.mp4: ran out of memory; run fewer"
