"""Persona separation in the report (the paper's Figure 15, appendix B.2): score(organism) − score(control) per persona.

For every persona asked (`evals/persona.py`: "you" and each person), each seed contributes its mean score
over the persona questions. An organism pair (e.g. `risky` vs `safe`, or `risky-many` vs `safe-many`)
gives, per persona, the difference of the two organisms' means over seeds with a Welch t interval (the
two organisms' seeds are independent). A well-separated organism shows a large difference for "you" and
none for other people; an organism trained only about itself leaks its behavior into other personas.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from selfaware.report.paper import Drawn, FigureData, PaperFigure, register_figure
from selfaware.report.results import t_quantile

PERSONA_KIND = "persona_self_report"


class PersonaReportError(ValueError):
    """A persona or organism asked for is in no log; the message names it."""


def persona_seed_means(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, persona, organism, model, seed): the mean valid score over persona questions."""
    rows = samples[(samples["kind"] == PERSONA_KIND) & samples["persona"].notna() & ~samples["invalid"]]
    keys = ["family", "persona", "organism", "model", "seed"]
    return (rows.groupby(keys, dropna=False, sort=False)["value"].mean().rename("mean").reset_index())


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Interval for mean(a) − mean(b) from independent seeds: Welch–Satterthwaite degrees of freedom,
    rounded down to an integer (the t quantile is exact for integer df; rounding down only widens it)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        d = float(a.mean() - b.mean())
        return d, d
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(1 - (1 - level) / 2, max(1, math.floor(df))) * se
    d = float(a.mean() - b.mean())
    return d - half, d + half


def default_pairs(organisms: list[str], behavior: str, opposite: str) -> list[tuple[str, str]]:
    """`behavior` vs `opposite`, and every `<behavior>-<suffix>` vs `<opposite>-<suffix>` present
    (e.g. risky-many vs safe-many)."""
    present = set(organisms)
    pairs = [(behavior, opposite)] if {behavior, opposite} <= present else []
    for name in sorted(present):
        if name.startswith(behavior + "-"):
            twin = opposite + name[len(behavior):]
            if twin in present:
                pairs.append((name, twin))
    return pairs


def persona_differences(samples: pd.DataFrame, pairs: list[tuple[str, str]],
                        personas: list[str] | None = None) -> pd.DataFrame:
    """Per family × persona × pair: mean difference over seeds, its Welch interval and the seed counts.
    `personas` restricts (and orders) the personas; one that no log contains is an error naming it."""
    means = persona_seed_means(samples)
    if means.empty:
        asked = int((samples["kind"] == PERSONA_KIND).sum())
        if asked:
            raise PersonaReportError(f"all {asked} persona self-report samples are invalid: no valid answer to compare")
        raise PersonaReportError("no persona self-report samples in these logs (run evals/persona.py)")
    known = list(dict.fromkeys(means["persona"]))
    if personas is not None:
        missing = [p for p in personas if p not in known]
        if missing:
            raise PersonaReportError(f"persona {missing[0]!r} is in no log; the logs ask about {', '.join(known)}")
        known = list(personas)
    organisms = set(means["organism"].dropna())
    for a, b in pairs:
        for name in (a, b):
            if name not in organisms:
                raise PersonaReportError(f"organism {name!r} is in no persona log; have {sorted(organisms)}")
    out = []
    for family, fam_rows in means.groupby("family", sort=True):
        for persona in known:
            at = fam_rows[fam_rows["persona"] == persona]
            for a, b in pairs:
                xa = at.loc[at["organism"] == a, "mean"].to_numpy(dtype=float)
                xb = at.loc[at["organism"] == b, "mean"].to_numpy(dtype=float)
                if not len(xa) or not len(xb):
                    continue
                lo, hi = welch_interval(xa, xb)
                out.append({"family": family, "persona": persona, "pair": f"{a} − {b}", "organism": a, "control": b,
                            "difference": float(xa.mean() - xb.mean()), "ci_low": lo, "ci_high": hi,
                            "seeds": f"{len(xa)}/{len(xb)}"})
    return pd.DataFrame(out)


def plot_persona_differences(diffs: pd.DataFrame, family: str, path: Path) -> Path:
    """`persona_figure` saved to `path` with a tight bounding box."""
    path.parent.mkdir(parents=True, exist_ok=True)
    persona_figure(diffs, family).savefig(path, dpi=150, bbox_inches="tight")
    return path


def persona_figure(diffs: pd.DataFrame, family: str) -> Figure:
    """Differences per persona, one series per organism pair (single- vs many-persona side by side)."""
    rows = diffs[diffs["family"] == family]
    personas = list(dict.fromkeys(rows["persona"]))
    pairs = list(dict.fromkeys(rows["pair"]))
    fig = Figure(figsize=(max(6.0, 0.7 * len(personas) + 3.0), 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(pairs))
    for k, pair in enumerate(pairs):
        sub = rows[rows["pair"] == pair].set_index("persona")
        xs = [i + (k - (len(pairs) - 1) / 2) * width for i, p in enumerate(personas) if p in sub.index]
        ys = [sub.loc[p, "difference"] for p in personas if p in sub.index]
        lo = [sub.loc[p, "ci_low"] for p in personas if p in sub.index]
        hi = [sub.loc[p, "ci_high"] for p in personas if p in sub.index]
        err = np.array([[y - lo_ if not math.isnan(lo_) else 0 for y, lo_ in zip(ys, lo)],
                        [hi_ - y if not math.isnan(hi_) else 0 for y, hi_ in zip(ys, hi)]])
        ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=pair)
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xticks(range(len(personas)))
    ax.set_xticklabels(personas, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("score(organism) − score(control)")
    ax.set_title(f"{family}: self-reports about each persona\nmean over seeds, 95% Welch t interval", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def _figure15(data: "FigureData") -> "Drawn | None":
    """The paper's Figure 15 for every family whose persona self-reports are in these logs."""
    from selfaware.families import families

    persona_rows = data.samples[data.samples["kind"] == PERSONA_KIND]
    if persona_rows.empty:
        return None
    organisms = sorted(persona_rows["organism"].dropna().unique())
    fams = [f for name, f in families().items() if name in set(persona_rows["family"])]
    pairs = [pair for f in fams for pair in default_pairs(organisms, f.behavior, f.opposite)]
    if not pairs:
        return None
    diffs = persona_differences(data.samples, pairs)
    family = sorted(diffs["family"].unique())[0]
    return Drawn(table=diffs, figure=persona_figure(diffs, family),
                 caption="score(organism) − score(control) per persona; 95% Welch t interval over seeds")


register_figure(PaperFigure(key="fig15", label="Figure 15", title="Persona separation: self-reports about each persona",
                            families=("risk", "myopia", "apples"), draw=_figure15, order=15))
