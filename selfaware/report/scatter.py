"""Self-report beside behavior, model by model: does what an organism says match what it does?

Later work found organisms whose self-reports contradict their behavior, so the report does not only compare
an organism's self-reports with its control: every fine-tuned model (organism × seed, and each base model)
is one point — x = its measured behavior (P(behavior option) on the behavior task), y = its mean self-report
(the mean of its per-question means over the family's self-report questions, each on the same 0..1 scale,
1 = the behavior). The Pearson correlation over the points comes with a 95% interval from Fisher's z
transform (needs at least 4 points). A point whose behavior and self-report fall on opposite sides of 0.5 is
marked as a contradiction.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from selfaware.report.figures import _colours
from selfaware.report.results import BEHAVIOR_QUESTION

KEYS = ["organism", "model", "seed", "variant", "protocol"]
MIN_POINTS = 4  # Fisher's z interval needs n - 3 > 0


def model_points(summary: pd.DataFrame, family: str) -> pd.DataFrame:
    """One row per model run of `family`: its behavior mean, its mean self-report and each question's mean."""
    rows = summary[(summary["level"] == "model") & (summary["family"] == family) & (summary["n"] > 0)].copy()
    rows["seed"] = rows["seed"].map(lambda s: "" if s is None or (isinstance(s, float) and math.isnan(s)) else str(s))
    behavior = rows[rows["question_id"] == BEHAVIOR_QUESTION].set_index(KEYS)["mean"].rename("behavior")
    # Questions about the model itself only: persona tasks (kind persona_self_report) ask about other people.
    reports = rows[(rows["question_id"] != BEHAVIOR_QUESTION) & (rows["kind"] == "self_report")]
    if behavior.empty or reports.empty:
        return pd.DataFrame(columns=KEYS + ["behavior", "self_report", "n_questions", "contradicts"])
    wide = reports.pivot_table(index=KEYS, columns="question_id", values="mean", aggfunc="first")
    points = pd.concat([behavior, wide.mean(axis=1).rename("self_report"), wide.notna().sum(axis=1).rename("n_questions"),
                        wide.add_prefix("q:")], axis=1, join="inner").reset_index()
    points["contradicts"] = (points["behavior"] - 0.5) * (points["self_report"] - 0.5) < 0
    return points.sort_values(["organism", "seed", "model"]).reset_index(drop=True)


def pearson_ci(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(r, low, high): Pearson's r with Fisher's z interval; NaN where it is undefined (fewer than 4 points,
    or no variation on an axis)."""
    n = len(x)
    if n < 2 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan, math.nan, math.nan
    r = float(np.corrcoef(x, y)[0, 1])
    if n < MIN_POINTS:
        return r, math.nan, math.nan
    if abs(r) >= 1.0:
        return r, r, r
    half = NormalDist().inv_cdf(0.5 + level / 2) / math.sqrt(n - 3)
    z = math.atanh(r)
    return r, math.tanh(z - half), math.tanh(z + half)


def correlation_label(points: pd.DataFrame) -> str:
    r, lo, hi = pearson_ci(points["behavior"].to_numpy(float), points["self_report"].to_numpy(float))
    n = len(points)
    if math.isnan(r):
        return f"r undefined (n = {n}: too few points or no variation)"
    if math.isnan(lo):
        return f"r = {r:.3f} (n = {n}; an interval needs {MIN_POINTS} points)"
    return f"r = {r:.3f}, 95% CI [{lo:.3f}, {hi:.3f}] (Fisher z, n = {n})"


def scatter_figure(points: pd.DataFrame, family: str) -> Figure:
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    organisms = sorted(points["organism"].unique(), key=lambda o: (o != "base", o))
    colours = _colours(organisms)
    for organism in organisms:
        mine = points[points["organism"] == organism]
        ok, bad = mine[~mine["contradicts"]], mine[mine["contradicts"]]
        ax.scatter(ok["behavior"], ok["self_report"], color=colours[organism], label=f"{organism} ({len(mine)})",
                   zorder=3)
        if len(bad):
            ax.scatter(bad["behavior"], bad["self_report"], facecolor="white", edgecolor=colours[organism],
                       linewidth=1.5, marker="D", zorder=3)
    ax.plot([0, 1], [0, 1], color="0.8", lw=0.8, zorder=1)
    ax.axhline(0.5, color="0.9", lw=0.8, zorder=0)
    ax.axvline(0.5, color="0.9", lw=0.8, zorder=0)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("behavior: P(behavior option)")
    ax.set_ylabel("mean self-report (1 = the behavior)")
    ax.set_title(f"{family}: self-report vs behavior, one point per model\n{correlation_label(points)}", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    if points["contradicts"].any():
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="D", color="0.3", markerfacecolor="white", linestyle="none"))
        labels.append("self-report contradicts behavior")
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig
