"""The experiment figure: its size, the n per group, flagged animals marked."""

from __future__ import annotations

import cv2

from cpp_tracker.experiment.figure import GROUP_COLOURS, draw_experiment_figure
from cpp_tracker.experiment.scores import Criteria, animal_scores
from tests.unit.experiment.test_scores import sessions_table


def _scores(include_flagged: bool):
    rows = []
    for animal, group, post, usable in (("a", "WT", 70, True), ("b", "WT", 80, True),
                                        ("c", "WT", 75, False), ("d", "KO", 50, True),
                                        ("e", "KO", 45, True)):
        rows += [(animal, group, "pre", 50.0, 50.0, 0.0, True, ""),
                 (animal, group, "post", float(post), 100.0 - post, 0.0, usable, "gaps")]
    return animal_scores(sessions_table(rows), Criteria(), include_flagged=include_flagged)


def test_figure_is_180_by_80_mm_at_300_dpi_with_n_per_group(tmp_path):
    png, svg = draw_experiment_figure(_scores(False), "change_paired_percent", ["WT", "KO"],
                                      tmp_path)
    image = cv2.imread(str(png))
    height, width = image.shape[:2]  # matplotlib rounds the pixel size down
    assert abs(height - 80 / 25.4 * 300) < 1 and abs(width - 180 / 25.4 * 300) < 1
    text = svg.read_text()
    assert "WT (n = 2)" in text and "KO (n = 2)" in text  # c is excluded
    assert "1 animal(s) excluded" in text
    assert GROUP_COLOURS[0].lower() in text.lower()
    assert "flagged, kept" not in text


def test_flagged_animals_kept_are_drawn_apart(tmp_path):
    _, svg = draw_experiment_figure(_scores(True), "change_paired_percent", ["WT", "KO"],
                                    tmp_path)
    text = svg.read_text()
    assert "WT (n = 3)" in text and "flagged, kept" in text
