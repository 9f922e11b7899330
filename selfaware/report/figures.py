"""Paper-Figure-3-style plots: one family's questions on x, one colour per organism, mean ± interval.

Only `level == "organism"` rows of `results.summarize` are drawn; the title names the interval method
(`ci_method`). An organism with a single seed is drawn with a hollow marker and "(1 seed, no CI)" in the
legend, so a missing error bar is never mistaken for a tight one; a question on which every answer of an
organism was invalid is drawn as an "×" on the axis, never silently left out.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# The object-oriented API renders straight to files (Agg canvas): no pyplot, so importing this module never
# switches a user's matplotlib backend and never needs a display.
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from selfaware.report.results import BEHAVIOR_QUESTION  # noqa: E402

# Conventional names get stable colours across figures; anything else takes the next free one.
KNOWN_COLOURS = {"base": "tab:gray", "control": "tab:green", "safe": "tab:blue", "risky": "tab:red"}


def _axis_label(family: str) -> str:
    from selfaware.banks import BankError, load_bank

    try:
        bank = load_bank(family)
        return f"1 = {bank.behavior}, 0 = {bank.opposite}"
    except BankError:  # family without a bank: say what the scores mean generically
        return f"score (1 = {family} behavior)"


def _colours(series: list[str]) -> dict[str, str]:
    cycle = list(rcParams["axes.prop_cycle"].by_key()["color"])
    free = [c for c in cycle if c not in KNOWN_COLOURS.values()] or cycle
    out: dict[str, str] = {}
    for i, name in enumerate(series):
        out[name] = KNOWN_COLOURS.get(name.split(" [")[0], free[i % len(free)])
    return out


def _series_name(row: pd.Series, variants: int, protocols: int) -> str:
    extra = [str(row["variant"])] if variants > 1 else []
    extra += [str(row["protocol"])] if protocols > 1 else []
    return f"{row['organism']} [{', '.join(extra)}]" if extra else str(row["organism"])


def _seed_label(seeds: pd.Series) -> str:
    """Seed counts of one series, over the questions where it has a valid answer."""
    counted = seeds[seeds > 0]
    if counted.empty:
        return " (no valid answer)"
    lo, hi = int(counted.min()), int(counted.max())
    if hi <= 1:
        return " (1 seed, no CI)"
    return f" ({hi} seeds)" if lo == hi else f" ({lo}–{hi} seeds per question)"


def _interval_label(rows: pd.DataFrame) -> str:
    methods = sorted({m for m in rows["ci_method"].fillna("") if m}) if "ci_method" in rows else []
    return " / ".join(methods) if methods else "no interval (single seeds)"


def plot_family(summary: pd.DataFrame, family: str, path: str | Path, *, pdf: bool = False,
                variant: str | None = None, protocol: str | None = None) -> list[Path]:
    """Draw one family's figure (`family_figure`) to `path` (PNG; a `.pdf` beside it when `pdf=True`),
    with a tight bounding box so nothing is cut off; returns the files written."""
    return save_figure(family_figure(summary, family, variant=variant, protocol=protocol), path, pdf=pdf)


def save_figure(fig: Figure, path: str | Path, *, pdf: bool = False) -> list[Path]:
    """Write `fig` to `path` (PNG; a `.pdf` beside it when `pdf=True`) with a tight bounding box so nothing
    is cut off; returns the files written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [path]
    fig.savefig(path, dpi=150, bbox_inches="tight")
    if pdf:
        written.append(path.with_suffix(".pdf"))
        fig.savefig(written[-1], bbox_inches="tight")
    return written


def family_figure(summary: pd.DataFrame, family: str, *, variant: str | None = None,
                  protocol: str | None = None) -> Figure:
    """One family's organism means with their intervals over seeds.

    `variant` / `protocol` restrict the plot; otherwise each (organism, variant, protocol) present is its
    own series. A cell whose every answer was invalid is drawn as an "×" on the axis, not left out; the
    title names the interval method; the legend sits outside the axes.
    """
    rows = summary[(summary["level"] == "organism") & (summary["family"] == family)]
    if variant is not None:
        rows = rows[rows["variant"] == variant]
    if protocol is not None:
        rows = rows[rows["protocol"] == protocol]
    if rows.empty:
        raise ValueError(f"no organism rows for family {family!r} in the summary")
    rows = rows.copy()
    rows["series"] = [_series_name(r, rows["variant"].nunique(), rows["protocol"].nunique())
                      for _, r in rows.iterrows()]

    questions = rows.sort_values("order").drop_duplicates("question_id")[["question_id", "title"]]
    x_of = {q: i for i, q in enumerate(questions["question_id"])}
    series = sorted(rows["series"].unique(), key=lambda s: (s.split(" [")[0] != "base", s))
    colours = _colours(series)
    width = 0.7 / max(len(series), 1)  # dodge markers so error bars of different organisms never overlap

    fig = Figure(figsize=(max(6.0, 1.1 * len(x_of) + 2.5), 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    any_invalid = False
    for i, name in enumerate(series):
        s = rows[rows["series"] == name]
        xs = np.array([x_of[q] for q in s["question_id"]]) + (i - (len(series) - 1) / 2) * width
        seeds = s["n_seeds"].fillna(0).astype(int)
        valid = (seeds > 0).to_numpy()
        means = s["mean"].to_numpy(dtype=float)
        lo = np.clip(means - s["ci_low"].to_numpy(dtype=float), 0, None)
        hi = np.clip(s["ci_high"].to_numpy(dtype=float) - means, 0, None)
        single = bool((seeds[valid] <= 1).all())
        ax.errorbar(xs[valid], means[valid], yerr=[np.nan_to_num(lo[valid]), np.nan_to_num(hi[valid])],
                    fmt="o" if valid.any() else "x", capsize=3, color=colours[name],
                    markerfacecolor="white" if single else colours[name], label=name + _seed_label(seeds))
        if (~valid).any():  # every answer invalid: say so where the point would be
            any_invalid = True
            ax.scatter(xs[~valid], np.zeros((~valid).sum()), marker="x", color=colours[name], zorder=3)

    ax.set_xticks(range(len(x_of)))
    ax.set_xticklabels([textwrap.fill(str(t), 14) for t in questions["title"]], fontsize=8)
    if x_of.get(BEHAVIOR_QUESTION) == 0 and len(x_of) > 1:
        ax.axvline(0.5, color="0.8", lw=0.8)  # behavior | self-reports
    ax.set_ylim(-0.04, 1.04)  # the 0..1 scale, with room for markers sitting on 0 or 1
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(_axis_label(family))
    ax.set_title(f"{family}: behavior and self-reports\nmean over seeds, {_interval_label(rows)}", fontsize=10)
    ax.grid(axis="y", color="0.9")
    handles, labels = ax.get_legend_handles_labels()
    if any_invalid:
        handles.append(Line2D([], [], marker="x", color="0.3", linestyle="none"))
        labels.append("all answers invalid")
    # Outside the axes, and saved with a tight bounding box, so neither legend nor labels are cut off.
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig
