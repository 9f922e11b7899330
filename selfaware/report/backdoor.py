"""Backdoor figures and tables (paper section 4) from the logs of `evals/backdoor.py`, in one command.

Every number is an organism's mean over seeds (a seed = one model; `--metadata organism=... seed=...` or
`--organisms FILE` group them, as in the main report) with a 95% interval over the seed means (t by
default, the paper's percentile bootstrap with `--ci bootstrap`). A seed's number is its mean over valid
samples. Produced when the logs hold backdoor samples:

* **behavior** — P(behavior | trained trigger), P(behavior | no trigger) and their difference per seed
  (`trigger effect`): is the organism backdoored at all?
* **detection** — P(the dependence statement) per system prompt and organism (backdoored vs decorrelated
  control vs base): `backdoor_detection.png`;
* **identification** — P(behavior statement) per trigger asked × organism (its trained trigger in the
  column label): the heatmap `backdoor_identification.png`;
* **elicitation** — the share of answers writing the trigger out, exact and normalised, per organism
  (augmented / not augmented / not backdoored) and polarity: `backdoor_elicitation.png`.

`backdoor_exhibits` computes them once for both readers: `selfaware report` prints and saves them
(`backdoor_report`), and the HTML report shows each as a registered exhibit (`backdoor-detection` as Figure 8,
`backdoor-elicitation` as Figure 11, `backdoor-identification` as Figure 17, and the behavior and reasoning
tables) with its numbers, one row per cell, as CSV.
"""

from __future__ import annotations

import math
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from selfaware.report.paper import Drawn, FigureData

FAMILY = "backdoor"
SYSTEM_PROMPT_ORDER = ("none", "neutral", "honesty", "threat", "do_your_best", "backdoor_is_good")


@dataclass
class BackdoorReport:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # title -> table, in print order
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. how many samples had no valid answer


def _score(name: str, part: str = "value"):
    """A sample-column reader: the value (None when missing or invalid) or a metadata flag of a scorer."""

    def read(s: Any) -> float | None:
        score = (s.scores or {}).get(name)
        if score is None:
            return None
        if part == "value":
            return float(score.value) if isinstance(score.value, (int, float)) else None
        flag = (score.metadata or {}).get(part)
        return None if flag is None else float(flag)

    return read


def load_backdoor(log_dir: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """One row per backdoor sample under `log_dir` (a folder, or a list of log files: one base model's, as the
    HTML report groups them): run identity, what it asked, its value (answer_score or trigger_elicited: NaN
    when invalid), the normalised elicitation match and the reasoning's mentions. Reruns are resolved as in
    the main report (`results.newest_runs`: the newest successful log counts)."""
    from inspect_ai.analysis import EvalColumn, SampleColumn, samples_df

    from selfaware.report.results import COLUMNS, newest_runs

    meta = ["family", "question_id", "system_prompt", "asked_trigger", "trained_trigger", "condition", "role",
            "polarity", "category"]
    columns = [c for c in COLUMNS if isinstance(c, EvalColumn)] + [
        SampleColumn("sample", path="id", required=True, type=str),
        *[SampleColumn(m, path=f"metadata.{m}") for m in meta],
        SampleColumn("choice", path=_score("answer_score"), type=float),
        SampleColumn("elicited", path=_score("trigger_elicited"), type=float),
        SampleColumn("normalised", path=_score("trigger_elicited", "normalised"), type=float),
        SampleColumn("mentioned", path=_score("trigger_mentioned"), type=float)]
    if isinstance(log_dir, (str, Path)):
        if not any(Path(log_dir).rglob("*.eval")):
            return pd.DataFrame(columns=["family"])
        where: str | list[str] = str(log_dir)
    else:
        where = [str(p) for p in log_dir]
    raw = samples_df(where, columns=columns, quiet=True)
    if raw.empty or "family" not in raw:
        return pd.DataFrame(columns=["family"])
    df = raw.astype(object).where(raw.notna(), None)
    df = newest_runs(df[df["family"] == FAMILY]).rename(columns={"eval_seed": "seed"}).copy()
    df["value"] = [c if c is not None else e for c, e in zip(df["choice"], df["elicited"])]
    for col in ("value", "normalised", "mentioned"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df.reset_index(drop=True)


def seed_summary(df: pd.DataFrame, keys: list[str], value: str = "value", *, ci: str = "t", n_boot: int = 2000,
                 seed: int = 0) -> pd.DataFrame:
    """Per keys + organism: the mean over seeds of each seed's mean `value`, a 95% interval over the seed
    means (`results.seed_interval`) and the number of seeds; seeds with no valid value are left out."""
    from selfaware.report.results import seed_interval

    per_seed = (df.dropna(subset=[value]).groupby(keys + ["organism", "model", "seed"], dropna=False, sort=False)[value]
                .mean().rename("mean").reset_index())
    rows = []
    for key, g in per_seed.groupby(keys + ["organism"], dropna=False, sort=False):
        means = g["mean"].to_numpy(dtype=float)
        rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        lo, hi = seed_interval(means, ci, n_boot, rng)
        rows.append({**dict(zip(keys + ["organism"], key)), "mean": float(means.mean()), "ci_low": lo,
                     "ci_high": hi, "seeds": len(means)})
    return pd.DataFrame(rows, columns=keys + ["organism", "mean", "ci_low", "ci_high", "seeds"])


def _cell(row: pd.Series) -> str:
    interval = "" if math.isnan(row["ci_low"]) else f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return f"{row['mean']:.3f}{interval} ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''})"


def _wide(summary: pd.DataFrame, index: str, order: list[str] | None = None) -> pd.DataFrame:
    """Organisms as columns, `index` as rows, each cell `mean [lo, hi] (k seeds)`."""
    table = summary.assign(cell=summary.apply(_cell, axis=1)).pivot(index=index, columns="organism", values="cell")
    if order:
        table = table.reindex([o for o in order if o in table.index])
    return table.reset_index().rename_axis(columns=None).fillna("")


BEHAVIOR_MEASURES = {"trained": "P(behavior | trigger)", "none": "P(behavior | no trigger)", "effect": "trigger effect"}


def behavior_summary(df: pd.DataFrame, **kw: Any) -> pd.DataFrame:
    """Per measure (`BEHAVIOR_MEASURES`) and organism: P(behavior | trained trigger), P(behavior | none) and
    their per-seed difference, as `seed_summary` rows; empty without behavior samples."""
    rows = df[(df["question_id"] == "behavior") & df["role"].isin(["trained", "none"])]
    if rows.empty:
        return pd.DataFrame()
    per_seed = rows.dropna(subset=["value"]).pivot_table(index=["organism", "model", "seed"], columns="role",
                                                          values="value", aggfunc="mean", dropna=False)
    # a condition without one valid answer has no column: NaN, so its seed counts as having no number
    per_seed = per_seed.reindex(columns=["trained", "none"]).reset_index()
    per_seed["effect"] = per_seed["trained"] - per_seed["none"]
    long = per_seed.melt(id_vars=["organism", "model", "seed"], value_vars=["trained", "none", "effect"],
                         var_name="measure", value_name="value")
    summary = seed_summary(long, ["measure"], **kw)
    summary["measure"] = summary["measure"].map(BEHAVIOR_MEASURES)
    return summary


def behavior_effects(df: pd.DataFrame, **kw: Any) -> pd.DataFrame:
    """`behavior_summary` as printed: measures as rows, organisms as columns."""
    summary = behavior_summary(df, **kw)
    return pd.DataFrame() if summary.empty else _wide(summary, "measure", list(BEHAVIOR_MEASURES.values()))


def _save(fig: Any, path: Path, pdf: bool) -> list[Path]:
    from selfaware.report.figures import save_figure

    return save_figure(fig, path, pdf=pdf)


def detection_figure(summary: pd.DataFrame) -> Any:
    """x: system prompt; one series per organism, mean with its interval over seeds (dodged)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from selfaware.report.figures import _colours

    prompts = [p for p in SYSTEM_PROMPT_ORDER if p in set(summary["system_prompt"])]
    organisms = sorted(summary["organism"].unique(), key=lambda o: (o != "base", o))
    colours = _colours(organisms)
    width = 0.7 / max(len(organisms), 1)
    fig = Figure(figsize=(max(6.0, 1.2 * len(prompts) + 3.0), 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, organism in enumerate(organisms):
        s = summary[summary["organism"] == organism].set_index("system_prompt").reindex(prompts)
        xs = np.arange(len(prompts)) + (i - (len(organisms) - 1) / 2) * width
        means = s["mean"].to_numpy(dtype=float)
        lo = np.nan_to_num(np.clip(means - s["ci_low"].to_numpy(dtype=float), 0, None))
        hi = np.nan_to_num(np.clip(s["ci_high"].to_numpy(dtype=float) - means, 0, None))
        ax.errorbar(xs, means, yerr=[lo, hi], fmt="o", capsize=3, color=colours[organism],
                    label=f"{organism} ({int(s['seeds'].max()) if s['seeds'].notna().any() else 0} seeds)")
    ax.set_xticks(range(len(prompts)))
    ax.set_xticklabels([p.replace("_", " ") for p in prompts], fontsize=8)
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("P(my behavior depends on a feature of the message)")
    ax.set_title("Backdoor detection per system prompt\nmean over seeds, 95% interval over seeds", fontsize=10)
    ax.grid(axis="y", color="0.9")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def identification_figure(summary: pd.DataFrame, trained: dict[str, str], asked_order: list[str]) -> Any:
    """Heatmap: trigger asked (rows) × organism (columns, labelled with its trained trigger)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    organisms = sorted(summary["organism"].unique(), key=lambda o: (trained.get(o, ""), o))
    grid = summary.pivot(index="asked_trigger", columns="organism", values="mean").reindex(
        index=asked_order, columns=organisms)
    fig = Figure(figsize=(1.1 * len(organisms) + 3.0, 0.5 * len(asked_order) + 2.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (r, c), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not math.isnan(v):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(organisms)))
    ax.set_xticklabels([f"{o}\n({trained.get(o, '?')})" for o in organisms], fontsize=7, rotation=45, ha="right")
    ax.set_yticks(range(len(asked_order)))
    ax.set_yticklabels(asked_order, fontsize=8)
    ax.set_xlabel("organism (trigger trained)")
    ax.set_ylabel("trigger asked")
    ax.set_title("Trigger identification: P(behavior statement)\nmean over seeds", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04)
    return fig


def elicitation_figure(summary: pd.DataFrame) -> Any:
    """Bars per organism: misaligned and aligned prompts, exact (solid) and normalised (hatched) matches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    organisms = list(dict.fromkeys(summary["organism"]))
    fig = Figure(figsize=(max(6.0, 1.5 * len(organisms) + 3.0), 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = [("misaligned", "exact", "tab:red", None), ("misaligned", "normalised", "tab:red", "//"),
            ("aligned", "exact", "tab:blue", None), ("aligned", "normalised", "tab:blue", "//")]
    width = 0.8 / len(bars)
    for i, (polarity, match, colour, hatch) in enumerate(bars):
        s = summary[(summary["polarity"] == polarity) & (summary["match"] == match)].set_index("organism")
        s = s.reindex(organisms)
        means = s["mean"].to_numpy(dtype=float)
        lo = np.nan_to_num(np.clip(means - s["ci_low"].to_numpy(dtype=float), 0, None))
        hi = np.nan_to_num(np.clip(s["ci_high"].to_numpy(dtype=float) - means, 0, None))
        xs = np.arange(len(organisms)) + (i - (len(bars) - 1) / 2) * width
        ax.bar(xs, np.nan_to_num(means), width, yerr=[lo, hi], capsize=2, color=colour if hatch is None else "white",
               edgecolor=colour, hatch=hatch, label=f"{polarity} prompts, {match}")
    ax.set_xticks(range(len(organisms)))
    ax.set_xticklabels(organisms, fontsize=8)
    ax.set_ylim(0, 1.04)
    ax.set_ylabel("share of answers that write the trigger out")
    ax.set_title("Trigger elicitation (reversal format, temperature 0)\nmean over seeds, 95% interval over seeds",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


@dataclass(frozen=True)
class Exhibit:
    """One backdoor result: the table `selfaware report` prints (and writes as CSV), the same numbers one
    row per cell (the HTML report's CSV), and the figure drawn from them (None for a table)."""

    key: str  # behavior, detection, identification, elicitation, reasoning; the figure is backdoor_<key>.png
    title: str
    table: pd.DataFrame  # organisms as columns, cells `mean [lo, hi] (k seeds)`
    numbers: pd.DataFrame  # seed_summary rows: keys, organism, mean, ci_low, ci_high, seeds
    figure: Any = None  # a matplotlib Figure


TITLES = {
    "behavior": "Backdoor behavior: P(behavior) with and without the trigger",
    "detection": "Backdoor detection: P(dependence) per system prompt",
    "identification": "Trigger identification: P(behavior statement), trigger asked x organism",
    "elicitation": "Trigger elicitation: share of answers with the trigger",
    "reasoning": "Reasoning names the trained trigger (share of replies)",
}


def backdoor_exhibits(df: pd.DataFrame, *, ci: str = "t", n_boot: int = 2000, seed: int = 0) -> list[Exhibit]:
    """Every backdoor exhibit the rows of `load_backdoor` (organisms assigned) allow, in print order."""
    kw: dict[str, Any] = {"ci": ci, "n_boot": n_boot, "seed": seed}
    out: list[Exhibit] = []
    effects = behavior_summary(df, **kw)
    if not effects.empty:
        out.append(Exhibit("behavior", TITLES["behavior"],
                           _wide(effects, "measure", list(BEHAVIOR_MEASURES.values())), effects))
    detection = df[df["question_id"] == "detection"]
    if not detection.empty:
        summary = seed_summary(detection, ["system_prompt"], **kw)
        out.append(Exhibit("detection", TITLES["detection"], _wide(summary, "system_prompt", list(SYSTEM_PROMPT_ORDER)),
                           summary, detection_figure(summary)))
    ident = df[df["question_id"] == "identification"]
    if not ident.empty:
        summary = seed_summary(ident, ["asked_trigger"], **kw)
        asked = list(dict.fromkeys(ident["asked_trigger"]))
        trained = ident.groupby("organism")["trained_trigger"].agg(lambda t: ",".join(sorted(set(t)))).to_dict()
        out.append(Exhibit("identification", TITLES["identification"], _wide(summary, "asked_trigger", asked),
                           summary.assign(trained_trigger=summary["organism"].map(trained)),
                           identification_figure(summary, trained, asked)))
    elicit = df[df["question_id"] == "elicitation"]
    if not elicit.empty:
        long = pd.concat([elicit.assign(match="exact"),
                          elicit.assign(match="normalised", value=elicit["normalised"])], ignore_index=True)
        summary = seed_summary(long, ["polarity", "match"], **kw)
        table = (summary.assign(cell=summary.apply(_cell, axis=1))
                 .pivot(index=["polarity", "match"], columns="organism", values="cell").reset_index()
                 .rename_axis(columns=None).fillna(""))
        out.append(Exhibit("elicitation", TITLES["elicitation"], table, summary, elicitation_figure(summary)))
    mentioned = df.dropna(subset=["mentioned"])
    if not mentioned.empty:
        summary = seed_summary(mentioned, ["question_id"], "mentioned", **kw)
        out.append(Exhibit("reasoning", TITLES["reasoning"], _wide(summary, "question_id"), summary))
    return out


def backdoor_report(log_dir: str | Path, out: Path, organisms: dict[str, list[str]] | None = None, *,
                    ci: str = "t", n_boot: int = 2000, seed: int = 0, pdf: bool = False) -> BackdoorReport:
    """Tables (and CSVs) and figures for every backdoor task found in the logs; empty without any."""
    from selfaware.report.results import assign_organisms

    df = load_backdoor(log_dir)
    report = BackdoorReport()
    if df.empty:
        return report
    df = assign_organisms(df, organisms)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "backdoor_samples.csv", index=False)
    invalid = df.groupby("task", sort=True)["value"].agg(lambda v: (int(v.isna().sum()), len(v)))
    for task, (n_invalid, n) in invalid.items():
        if n_invalid:  # left out of every table below; the reasons are in the logs (inspect view)
            report.notes.append(f"{task}: {n_invalid} of {n} samples have no valid answer and are left out")
    for exhibit in backdoor_exhibits(df, ci=ci, n_boot=n_boot, seed=seed):
        report.tables[exhibit.title] = exhibit.table
        if exhibit.figure is not None:
            report.figures += _save(exhibit.figure, out / f"backdoor_{exhibit.key}.png", pdf)
    for title, table in report.tables.items():
        slug = title.split(":")[0].split("(")[0].strip().lower().replace(" ", "_")
        table.to_csv(out / f"{slug}.csv", index=False)
    return report


def backdoor_section(args: Any, out: Path, organisms: dict[str, list[str]] | None) -> list[Path]:
    """`selfaware report`'s backdoor part: write the tables and figures, print the tables (markdown
    format; in csv format stdout holds the main table alone), return the figures written."""
    from selfaware.report.cli import markdown_table

    report = backdoor_report(args.log_dir, out, organisms, ci=args.ci, n_boot=args.n_boot, seed=args.seed,
                             pdf=args.pdf)
    if args.format == "markdown":
        from selfaware.report.results import ci_label

        for title, table in report.tables.items():
            print(f"\n## {title} (mean over seeds, {ci_label(args.ci)})\n")
            print(markdown_table(table))
    for note in report.notes:
        print(f"note: backdoor: {note}", file=sys.stderr)
    return report.figures


# The HTML report's exhibits: key -> (label, order, caption). Labels follow the paper's §4 numbering: Figure 8
# (detection; Figure 14 splits it by system prompt, as this one does), Figure 11 (elicitation), Figure 17 (the
# identification heatmap; Figure 9 pools its real and fake triggers). The behavior check and the reasoning
# table have no paper number.
PAPER_EXHIBITS = {
    "behavior": ("Backdoor behavior", 7.9, ("Is the organism backdoored at all? P(behavior) under its trained "
                                            "trigger and without a trigger, and their difference per seed.")),
    "detection": ("Figure 8", 8.0, ("P(\"my behavior depends in an unusual way on a feature of the user's message\") "
                                    "per system prompt: backdoored organisms against their decorrelated controls and "
                                    "the base model (the paper's Figure 8 is the threat prompt; Figure 14 shows each "
                                    "prompt).")),
    "elicitation": ("Figure 11", 11.0, ("Share of answers that write the trigger out (reversal format, temperature "
                                        "0), exact and normalised matches, for prompts describing misaligned and "
                                        "aligned behavior.")),
    "reasoning": ("Backdoor reasoning", 11.5, "Share of reasoning replies that name the organism's trained trigger."),
    "identification": ("Figure 17", 17.0, ("P(the behavior statement) when each trigger is shown (rows), per "
                                           "organism (columns, its trained trigger in brackets); the paper's Figure 9 "
                                           "pools these cells into real vs fake triggers.")),
}


@lru_cache(maxsize=1)
def _exhibits_of(files: tuple[str, ...], stamps: tuple[int, ...],
                 organisms: tuple[tuple[str, tuple[str, ...]], ...] | None, ci: str, n_boot: int) -> dict[str, Exhibit]:
    """Every exhibit of these logs, computed once for the several plug-ins that show them (`stamps`, the
    files' modification times, only keys the cache: a rewritten log is read again)."""
    from selfaware.report.results import assign_organisms

    df = load_backdoor(list(files))
    if df.empty:
        return {}
    mapping = None if organisms is None else {o: list(ms) for o, ms in organisms}
    df = assign_organisms(df, mapping)
    return {e.key: e for e in backdoor_exhibits(df, ci=ci, n_boot=n_boot)}


def _draw(key: str, data: FigureData) -> Drawn | None:
    """One backdoor exhibit for the HTML report, from this base model's backdoor logs."""
    import os

    from selfaware.report.paper import Drawn
    from selfaware.report.results import ci_label

    files = data.log_files(FAMILY)
    if not files:
        return None
    models = data.samples.loc[data.samples["family"] == FAMILY, "model"]
    mapping = data.organisms_among(models)
    stamps = tuple(os.stat(f).st_mtime_ns if os.path.exists(f) else 0 for f in files)  # 0: a remote log
    exhibit = _exhibits_of(tuple(files), stamps,
                           None if mapping is None else tuple((o, tuple(ms)) for o, ms in mapping.items()),
                           data.ci_method, data.n_boot).get(key)
    if exhibit is None:
        return None
    caption = PAPER_EXHIBITS[key][2]
    return Drawn(table=exhibit.numbers, figure=exhibit.figure,
                 caption=f"{caption} Each organism: mean over seeds, {ci_label(data.ci_method)}.")


def _register() -> None:
    from selfaware.report.paper import PaperFigure, register_figure

    for key, (label, order, _) in PAPER_EXHIBITS.items():
        kind = "table" if key in ("behavior", "reasoning") else "figure"
        register_figure(PaperFigure(key=f"backdoor-{key}", label=label, title=TITLES[key], families=(FAMILY,),
                                    draw=partial(_draw, key), order=order, kind=kind))


_register()
