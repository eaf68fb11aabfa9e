"""experiment.summarize.summarize_results: the experiment's table, written as CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from cpp_tracker.errors import ConfigError, OutputError
from cpp_tracker.experiment.summarize import summarize_results
from tests.handmade_results import EXPECTED, make_experiment


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return make_experiment(tmp_path_factory.mktemp("experiment"))


def test_with_a_design_one_row_per_animal(experiment, tmp_path):
    batch, design = experiment
    written = summarize_results([batch], tmp_path / "cpp.csv", design=design)
    assert written.path == tmp_path / "cpp.csv"
    assert written.n_results == 12 and written.side_bias_percent == 65.0
    table = written.table.set_index("animal_id")
    assert list(table.index) == sorted(EXPECTED)
    for animal, (pre, post, _, _) in EXPECTED.items():
        assert table.loc[animal, "change_preference_s"] == pytest.approx(post - pre)
    assert pd.read_csv(written.path).shape == written.table.shape
    long = summarize_results([batch], tmp_path / "long.csv", design=design, long=True,
                             side_bias_percent=80)
    assert len(long.table) == 12 and long.side_bias_percent == 80


def test_without_a_design_one_row_per_session_or_chamber(experiment, tmp_path):
    batch, _ = experiment
    wide = summarize_results([batch], tmp_path / "all.csv")
    assert len(wide.table) == 12 and wide.side_bias_percent is None
    assert {"left_time_s", "right_percent", "phase", "session"} <= set(wide.table.columns)
    long = summarize_results([batch], tmp_path / "long.csv", long=True)
    assert len(long.table) == 36 and set(long.table["chamber"]) == {"left", "right", "unknown"}


def test_bad_thresholds_are_refused_after_the_results_are_read(experiment, tmp_path):
    batch, design = experiment
    out = tmp_path / "r.csv"
    with pytest.raises(ConfigError, match="must be between 50 and 100, got 40"):
        summarize_results([batch], out, design=design, side_bias_percent=40)
    with pytest.raises(ConfigError, match="applies only with --design"):
        summarize_results([batch], out, side_bias_percent=70)
    with pytest.raises(OutputError, match="no such folder"):  # the results first
        summarize_results([tmp_path / "nothing"], out, side_bias_percent=70)
    assert not out.exists()
