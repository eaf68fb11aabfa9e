"""The names ``cpp-tracker experiment`` offers on its command line, without the modules'
imports (scipy, pandas), so that building the parser stays quick: the scores
(:data:`cpp_tracker.experiment.scores.SCORES` defines them, in this order) and the
``--test`` choices (:mod:`cpp_tracker.experiment.stats`)."""

from __future__ import annotations

__all__ = ["SCORE_NAMES", "TESTS", "DEFAULT_SCORE"]

SCORE_NAMES = (
    "change_paired_percent",
    "change_paired_s",
    "change_preference_s",
    "change_paired_share_percent",
    "post_preference_s",
    "post_paired_share_percent",
    "ratio_post_pre",
)
DEFAULT_SCORE = SCORE_NAMES[0]
TESTS = ("auto", "parametric", "nonparametric")
