"""``cpp-tracker summarize``: the experiment's table from many result folders, written as CSV.

Without a design: every result folder's summary, one row per animal and session
(:func:`~cpp_tracker.experiment.collect.results_wide`) or, long, per animal, session and
chamber. With a design: the CPP measures, one row per animal
(:func:`~cpp_tracker.experiment.design.design_wide`) or, long, per animal and session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..results.outputs import write_csv
from .collect import collect_results, results_wide
from .design import (
    SIDE_BIAS_PERCENT,
    design_groups,
    design_long,
    design_sessions,
    design_wide,
    load_design,
)

__all__ = ["ExperimentTable", "summarize_results"]


@dataclass(frozen=True)
class ExperimentTable:
    """The table written by :func:`summarize_results`: ``path``, the ``table`` itself,
    ``n_results`` (result folders and arenas it was made from), ``warnings`` (doubtful
    input, unmatched design rows, ...) and, with a design, the side-bias threshold used
    (``side_bias_percent``, else ``None``) and the per-group means of the change scores with
    the animals left out of them (``groups``, see
    :func:`~cpp_tracker.experiment.design.design_groups`). ``needing_review``: the result
    folders (and arenas) whose QC asks for review, with why."""

    path: Path
    table: pd.DataFrame
    n_results: int
    warnings: tuple[str, ...]
    side_bias_percent: float | None
    groups: pd.DataFrame | None = None
    needing_review: tuple[tuple[str, str, str], ...] = ()


def summarize_results(
    outdirs: list[str | Path],
    out: str | Path,
    *,
    design: str | Path | None = None,
    long: bool = False,
    side_bias_percent: float | None = None,
    include_flagged: bool = False,
) -> ExperimentTable:
    """Collect every result folder at or below ``outdirs`` into one table and write it to
    ``out`` (CSV, atomically).

    ``design``: a design CSV (:func:`~cpp_tracker.experiment.design.load_design`); the
    table is then the CPP measures per animal, or per animal and session with ``long``.
    ``side_bias_percent`` (only with a design, 50 to 100; default
    :data:`~cpp_tracker.experiment.design.SIDE_BIAS_PERCENT`) is the pre-test share of the
    two conditioning chambers' time above which side bias is flagged. Sessions whose QC
    asks for review are marked (``usable``, ``doubts``) and left out of the change scores
    and the group means, unless ``include_flagged``.

    Raises :class:`~cpp_tracker.errors.OutputError` when no result can be read and
    :class:`~cpp_tracker.errors.ConfigError` for a bad design or threshold (checked after
    the results are collected).
    """
    results, metadata_columns, warnings = collect_results(outdirs)
    n_results = results[["result", "arena"]].drop_duplicates().shape[0]
    threshold, groups = None, None
    if design:
        threshold = SIDE_BIAS_PERCENT if side_bias_percent is None else side_bias_percent
        if not 50 <= threshold <= 100:
            raise ConfigError(
                "--side-bias-percent", f"must be between 50 and 100, got {threshold:g}"
            )
        sessions, more = design_sessions(
            load_design(design),
            results,
            design_source=str(design),
            side_bias_percent=threshold,
            metadata_columns=metadata_columns,
        )
        warnings.extend(more)
        wide = design_wide(sessions, include_flagged=include_flagged)
        groups = design_groups(wide)
        table = design_long(sessions) if long else wide
    else:
        if side_bias_percent is not None:
            raise ConfigError("--side-bias-percent", "applies only with --design")
        table = results if long else results_wide(results, metadata_columns)
    path = Path(out)
    write_csv(path, table)
    flagged = results[~results["usable"].astype(bool)].drop_duplicates(["result", "arena"])
    return ExperimentTable(
        path=path, table=table, n_results=n_results, warnings=tuple(warnings),
        side_bias_percent=threshold, groups=groups,
        needing_review=tuple(zip(flagged["result"], flagged["arena"].astype(str),
                                 flagged["doubts"], strict=True)),
    )
