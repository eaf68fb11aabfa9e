"""The experiment's figure: ``figure.png`` (300 dpi) and ``figure.svg``.

Panel A: per group, each included animal's pre-test -> post-test line of the measure the
score is made of (percent of the observed time in the paired chamber for the default score),
and the group's mean with its 95 % t interval. Panel B: the score per group, every animal a
point, the mean with its 95 % t interval, and the score's null value as a dashed line. The
groups are coloured with the Okabe-Ito set (:data:`GROUP_COLOURS`),
which stays distinguishable with the common colour blindnesses; every group's n is under its
name. Animals kept with a flagged session (``--include-flagged``) are drawn hollow, with a
dashed line. 180 x 80 mm (a two-column figure), 8 pt text.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..results.outputs import atomic_path
from ..visual.palette import OKABE_ITO
from .scores import SCORES

__all__ = ["FIGURE_SIZE_MM", "FIGURE_DPI", "GROUP_COLOURS", "draw_experiment_figure"]

FIGURE_SIZE_MM = (180.0, 80.0)
#: Group colours: the Okabe-Ito set, the pair with the most contrast on white first (blue,
#: vermillion), yellow left out (too light for text).
GROUP_COLOURS = tuple(OKABE_ITO[i].hex for i in (3, 4, 2, 5, 0, 1))
FIGURE_DPI = 300
_MM = 1 / 25.4
_LABELS = {
    "paired_percent": "time in paired chamber (% of observed)",
    "paired_s": "time in paired chamber (s)",
    "preference_s": "paired − unpaired (s)",
    "paired_share_percent": "paired share of conditioning chambers (%)",
}


def _mean_ci(values) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.nan, np.nan, np.nan
    if len(v) < 2:
        return float(v[0]), np.nan, np.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _jitter(n: int) -> np.ndarray:
    """Deterministic spread of n points around 0 (the same figure on every run)."""
    return np.linspace(-0.12, 0.12, n) if n > 1 else np.zeros(n)


def draw_experiment_figure(scores: pd.DataFrame, score: str, groups: list[str],
                           out_dir: str | Path) -> tuple[Path, Path]:
    """Draw the figure of the included animals of ``scores``; returns the PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = SCORES[score]
    measure = spec.measure or "paired_percent"
    used = scores[scores["included"]]
    colours = {g: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, g in enumerate(groups)}
    with plt.rc_context({"font.size": 8, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.fonttype": "none"}):
        fig, (ax_a, ax_b) = plt.subplots(
            1, 2, figsize=(FIGURE_SIZE_MM[0] * _MM, FIGURE_SIZE_MM[1] * _MM), dpi=100,
            gridspec_kw={"width_ratios": [1.6, 1]}, constrained_layout=True)
        _phase_panel(ax_a, used, measure, groups, colours)
        _score_panel(ax_b, used, spec, groups, colours)
        n_out = int((~scores["included"]).sum())
        if n_out:
            fig.text(0.01, 0.005, f"{n_out} animal(s) excluded (see scores.csv)", fontsize=6,
                     color="0.35")
        out_dir = Path(out_dir)
        paths = []
        for suffix in ("png", "svg"):
            path = out_dir / f"figure.{suffix}"
            atomic_path(path, lambda tmp, s=suffix: fig.savefig(tmp, format=s, dpi=FIGURE_DPI))
            paths.append(path)
        plt.close(fig)
    return paths[0], paths[1]


def _group_label(group: str, n: int) -> str:
    return f"{group or 'all'}\nn = {n}"


def _phase_panel(ax, used: pd.DataFrame, measure: str, groups: list[str], colours) -> None:
    ticks, labels = [], []
    for k, group in enumerate(groups):
        rows = used[used["group"] == group]
        x0 = 3.0 * k
        for _, r in rows.iterrows():
            style = "--" if r["flagged"] else "-"
            ax.plot([x0, x0 + 1], [r[f"pre_{measure}"], r[f"post_{measure}"]], style,
                    color=colours[group], alpha=0.45, lw=0.8, marker="o", ms=2.5,
                    mfc="white" if r["flagged"] else colours[group])
        for dx, phase in ((0.0, "pre"), (1.0, "post")):
            mean, low, high = _mean_ci(rows[f"{phase}_{measure}"])
            ax.errorbar(x0 + dx + (-0.18 if dx == 0 else 0.18), mean,
                        yerr=[[mean - low], [high - mean]] if np.isfinite(low) else None,
                        fmt="s", color="black", mfc=colours[group], ms=5, capsize=2, lw=1)
        ticks += [x0, x0 + 1]
        labels += ["pre", "post"]
        ax.text(x0 + 0.5, -0.13, f"{group or 'all'} (n = {len(rows)})", ha="center",
                va="top", transform=ax.get_xaxis_transform(), color=colours[group],
                fontweight="bold")
    ax.set_xticks(ticks, labels)
    ax.set_xlim(-0.6, 3.0 * len(groups) - 1.4)
    ax.set_ylabel(_LABELS.get(measure, measure))
    ax.set_title("A  pre-test → post-test (mean, 95 % CI)", loc="left", fontsize=8)


def _score_panel(ax, used: pd.DataFrame, spec, groups: list[str], colours) -> None:
    for k, group in enumerate(groups):
        rows = used[used["group"] == group]
        values = rows[spec.name].to_numpy(dtype=float)
        flagged = rows["flagged"].to_numpy(dtype=bool)
        x = k + _jitter(len(values))
        ax.scatter(x[~flagged], values[~flagged], s=14, color=colours[group], zorder=3,
                   edgecolor="black", linewidth=0.4)
        if flagged.any():
            ax.scatter(x[flagged], values[flagged], s=14, facecolor="white", zorder=3,
                       edgecolor=colours[group], linewidth=1, label="flagged, kept")
        mean, low, high = _mean_ci(values)
        ax.errorbar(k + 0.3, mean, yerr=[[mean - low], [high - mean]] if np.isfinite(low)
                    else None, fmt="s", color="black", mfc=colours[group], ms=5, capsize=2,
                    lw=1)
    ax.axhline(spec.null, color="0.5", lw=0.8, ls="--", zorder=1)
    ax.set_xticks(range(len(groups)), [_group_label(g, int((used["group"] == g).sum()))
                                       for g in groups])
    for tick, group in zip(ax.get_xticklabels(), groups, strict=True):
        tick.set_color(colours[group])
        tick.set_fontweight("bold")
    ax.set_xlim(-0.6, len(groups) - 0.3)
    # the score in words (the column name is in stats.csv and methods.md)
    unit = f" ({spec.unit})" if spec.unit else ""
    ax.set_ylabel(textwrap.fill(f"{spec.definition}{unit}", 42), fontsize=7)
    ax.set_title("B  score per animal (mean, 95 % CI)", loc="left", fontsize=8)
    if used["flagged"].any():
        ax.legend(frameon=False, fontsize=6)
