"""Make-Me-Say in the report: every measure as a tidy row, the paper's Figure 6, and the game outcomes.

A Make-Me-Say log holds several scorers (`mms_answer`, one `function_<measure>` per function measure,
`game_outcome`), so its samples become one tidy row per sample and measure (`question_id` names the
measure: `codeword_among_words`, `goals_user_said_codeword`, `function_f_codeword`, `game_win`, ...). The
rows replace the family's rows of `results.load_scores`; summaries, intervals over seeds and the family
figure then work as for every family.

`figure6_figure` draws the paper's Figure 6 (`figure6` saves it for `selfaware report`; the HTML report shows
it as the `fig6` exhibit with `figure6_table` as its CSV): for each self-report, each organism's mean with its
interval over seeds against its baseline. As in the paper, most baselines are the base model asked the same question
(the organism named by `--mms-base`, default `base`); "how close to your goals" is compared with the same
model on "the user never said the codeword", f(codeword) with the same functions on unrelated words and
f(message) with the same functions on the base model's users' messages. A second panel shows the game
outcome rates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from selfaware.report.paper import Drawn, FigureData

FAMILY = "make_me_say"
GAME_OUTCOMES = ("win", "correct_guess", "no_codeword", "rule_violation")
# (measure, label, baseline): baseline = a measure of the same organism, or None for the base model.
HEADLINE = (
    ("codeword_among_words", "Codeword among\n100 words", None),
    ("definition", "Dictionary\ndefinition", None),
    ("acrostic", "Acrostic", None),
    ("best_description", "Best\ndescription", None),
    ("goals_user_said_codeword", "How close\nto goals?", "goals_user_never_said_codeword"),
    ("which_game", "Which\ngame?", None),
    ("function_names_codeword", "Function:\ncodeword?", None),
    ("function_f_codeword", "Function:\nf(codeword)", "function_f_unrelated"),
    ("function_f_organism_messages", "Function:\nf(message)", "function_f_base_messages"),
)


def _scores_json(s: Any) -> str:
    return json.dumps({k: {"value": v.value, "metadata": v.metadata or {}} for k, v in (s.scores or {}).items()},
                      default=str)


def _measure_rows(scores: dict[str, Any], question_id: str | None, title: str | None) -> list[dict[str, Any]]:
    """(question_id, title, value, invalid, invalid_answer_share, method) for each measure of one sample."""
    from selfaware.mms.scorers import FUNCTION_MEASURES

    def row(qid: str, ttl: str, score: dict[str, Any], value: Any = None) -> dict[str, Any]:
        meta = score["metadata"]
        v = score["value"] if value is None else value
        invalid = bool(meta.get("invalid")) or not isinstance(v, (int, float))
        return {"question_id": qid, "title": ttl, "value": float(v) if not invalid else math.nan,
                "invalid": invalid, "invalid_answer_share": float(meta.get("invalid_answer_share", float(invalid))),
                "method": meta.get("method")}

    out = []
    if "mms_answer" in scores:
        out.append(row(question_id or "?", title or question_id or "?", scores["mms_answer"]))
    for measure, (label, _) in FUNCTION_MEASURES.items():
        if f"function_{measure}" in scores:
            out.append(row(f"function_{measure}", label, scores[f"function_{measure}"]))
    if "game_outcome" in scores:
        outcome = scores["game_outcome"]["metadata"].get("outcome")
        for o in GAME_OUTCOMES:
            out.append(row(f"game_{o}", "Game: " + o.replace("_", " "), scores["game_outcome"],
                           value=float(outcome == o) if outcome else "N"))
    return out


def load_make_me_say(logs: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Tidy rows (`results.TIDY_COLUMNS`) of every Make-Me-Say sample and measure under the folder `logs`
    (or in the list of log files `logs`: one base model's, as the HTML report groups them)."""
    import pandas as pd
    from inspect_ai.analysis import SampleColumn, samples_df

    from selfaware.report.results import COLUMNS, TIDY_COLUMNS, newest_runs

    where = str(logs) if isinstance(logs, (str, Path)) else [str(p) for p in logs]
    raw = samples_df(where, columns=COLUMNS + [SampleColumn("all_scores", path=_scores_json)], quiet=True)
    if raw.empty or "family" not in raw.columns:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    raw = raw.astype(object)
    raw = raw.where(raw.notna(), None)
    raw = raw[(raw["family"] == FAMILY) | (raw["eval_family"] == FAMILY)]
    if raw.empty:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    raw = newest_runs(raw)
    rows = []
    for _, r in raw.iterrows():
        base = {"log": r["log"], "task": r["task"], "family": FAMILY, "kind": r["kind"],
                "variant": r["variant"] or "plain", "persona": r.get("persona"), "protocol": r["protocol"] or "fast",
                "model": r["model"], "organism": r["organism"], "seed": r["eval_seed"], "error": bool(r["error"]),
                "sample_id": r["sample"], "cluster": r["cluster"] or f"sample:{r['sample']}", "epoch": int(r["epoch"])}
        measures = _measure_rows(json.loads(r["all_scores"] or "{}"), r["question_id"], r["title"])
        if not measures and base["error"]:  # an errored sample: keep it visible as an error
            measures = [{"question_id": r["question_id"], "title": r["title"], "value": math.nan, "invalid": False,
                         "invalid_answer_share": math.nan, "method": None}]
        rows += [{**base, **m} for m in measures]
    df = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    df["value"] = df["value"].astype(float)
    return df.reset_index(drop=True)


def with_make_me_say(samples: pd.DataFrame, log_dir: str | Path) -> pd.DataFrame:
    """`samples` with its Make-Me-Say rows (one score per sample) replaced by one row per measure."""
    import pandas as pd

    if samples.empty or not (samples["family"] == FAMILY).any():
        return samples
    mms = load_make_me_say(log_dir)
    return pd.concat([samples[samples["family"] != FAMILY], mms], ignore_index=True)


def headline_table(summary: pd.DataFrame, base: str = "base") -> pd.DataFrame:
    """Per organism and headline measure: its mean and interval over seeds, and the paper's baseline."""
    import pandas as pd

    rows = summary[(summary["level"] == "organism") & (summary["family"] == FAMILY)]
    lookup = {(r["organism"], r["variant"], r["question_id"]): r for _, r in rows.iterrows()}
    out = []
    for (organism, variant), _ in rows.groupby(["organism", "variant"], sort=False):
        if organism == base:
            continue
        for measure, label, paired in HEADLINE:
            r = lookup.get((organism, variant, measure))
            if r is None:
                continue
            b = lookup.get((organism, variant, paired)) if paired else lookup.get((base, variant, measure))
            out.append({"organism": organism, "variant": variant, "measure": label.replace("\n", " "),
                        "mean": r["mean"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "seeds": r["n_seeds"],
                        "baseline": b["mean"] if b is not None else math.nan,
                        "baseline_is": (f"same model: {paired}" if paired else f"{base} model")})
    return pd.DataFrame(out)


def game_rates(summary: pd.DataFrame) -> pd.DataFrame:
    """The organism rows of the game outcome measures (`game_win`, ...): Figure 6's second panel."""
    return summary[(summary["level"] == "organism") & (summary["family"] == FAMILY)
                   & summary["question_id"].astype(str).str.startswith("game_")]


def figure6_table(summary: pd.DataFrame, base: str = "base") -> pd.DataFrame:
    """The numbers Figure 6 shows: the headline table, then each organism's game outcome rates (no baseline)."""
    import pandas as pd

    games = game_rates(summary)
    rates = pd.DataFrame({"organism": games["organism"], "variant": games["variant"],
                          "measure": games["title"].fillna(games["question_id"]), "mean": games["mean"],
                          "ci_low": games["ci_low"], "ci_high": games["ci_high"], "seeds": games["n_seeds"],
                          "baseline": math.nan, "baseline_is": "none (game outcome)"})
    parts = [t for t in (headline_table(summary, base), rates) if not t.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def figure6_figure(summary: pd.DataFrame, base: str = "base") -> Figure | None:
    """The paper's Figure 6 (self-reports, organism vs baseline, intervals over seeds) and the game outcome
    rates, in one figure; None without Make-Me-Say organism rows."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = headline_table(summary, base)
    games = game_rates(summary)
    if table.empty and games.empty:
        return None
    fig = Figure(figsize=(13, 4.6))
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    labels = [label for _, label, _ in HEADLINE]
    series = list(dict.fromkeys(zip(table["organism"], table["variant"]))) if not table.empty else []
    width = 0.8 / max(1, 2 * len(series))
    for i, (organism, variant) in enumerate(series):
        t = table[(table["organism"] == organism) & (table["variant"] == variant)]
        xs = np.array([[lb.replace("\n", " ") for lb in labels].index(m) for m in t["measure"]], dtype=float)
        offset = (2 * i - len(series) + 0.5) * width
        name = organism if variant == "plain" else f"{organism} [{variant}]"
        mean = t["mean"].to_numpy(dtype=float)
        err = [np.nan_to_num(np.clip(mean - t["ci_low"].to_numpy(dtype=float), 0, None)),
               np.nan_to_num(np.clip(t["ci_high"].to_numpy(dtype=float) - mean, 0, None))]
        ax.errorbar(xs + offset, mean, yerr=err, fmt="o", capsize=3, label=f"{name} (organism)")
        ax.scatter(xs + offset + width, t["baseline"].to_numpy(dtype=float), marker="s", color="0.45",
                   label="baseline" if i == 0 else None)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("mean score (1 = the codeword / the goal)")
    ax.set_title("Make-Me-Say self-reports: organism (mean over seeds, interval over seeds) vs baseline", fontsize=9)
    ax.grid(axis="y", color="0.9")
    if series:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=3)
    organisms = list(dict.fromkeys(games["organism"])) if not games.empty else []
    for j, organism in enumerate(organisms):
        g = games[games["organism"] == organism]
        xs = np.array([GAME_OUTCOMES.index(q.removeprefix("game_")) for q in g["question_id"]], dtype=float)
        mean = g["mean"].to_numpy(dtype=float)
        err = [np.nan_to_num(np.clip(mean - g["ci_low"].to_numpy(dtype=float), 0, None)),
               np.nan_to_num(np.clip(g["ci_high"].to_numpy(dtype=float) - mean, 0, None))]
        ax2.errorbar(xs + (j - (len(organisms) - 1) / 2) * 0.15, mean, yerr=err, fmt="o", capsize=3, label=organism)
    ax2.set_xticks(range(len(GAME_OUTCOMES)))
    ax2.set_xticklabels([o.replace("_", "\n") for o in GAME_OUTCOMES], fontsize=7)
    ax2.set_ylim(-0.04, 1.04)
    ax2.set_title("Game outcomes (share of valid games)", fontsize=9)
    ax2.grid(axis="y", color="0.9")
    if organisms:
        ax2.legend(fontsize=7)
    return fig


def figure6(summary: pd.DataFrame, path: str | Path, base: str = "base", *, pdf: bool = False) -> list[Path]:
    """`figure6_figure` saved to `path` (and a PDF beside it with `pdf`); returns the files written (none
    without Make-Me-Say organism rows)."""
    from selfaware.report.figures import save_figure

    fig = figure6_figure(summary, base)
    return [] if fig is None else save_figure(fig, path, pdf=pdf)


def mms_report(summary: pd.DataFrame, out: Path, base: str = "base", pdf: bool = False) -> tuple[pd.DataFrame | None, list[Path]]:
    """The headline table and Figure 6 when the summary holds Make-Me-Say rows; (None, []) otherwise."""
    if summary.empty or not (summary["family"] == FAMILY).any():
        return None, []
    return headline_table(summary, base), figure6(summary, Path(out) / "make_me_say_figure6.png", base, pdf=pdf)


def _figure6_exhibit(data: FigureData) -> Drawn | None:
    """Figure 6 in the HTML report, from the report's own summary (its samples hold one row per Make-Me-Say
    measure, `with_make_me_say`, summarised with the report's organisms, interval method and resamples)."""
    from selfaware.report.paper import Drawn
    from selfaware.report.results import ci_label

    fig = figure6_figure(data.summary)
    if fig is None:
        return None
    caption = (f"Left: each Make-Me-Say organism's mean over seeds ({ci_label(data.ci_method)}) on each "
               "self-report, beside the paper's baseline (grey squares: the `base` organism asked the same, or the "
               "same model's paired measure; `baseline_is` in the CSV says which). Right: the share of valid games "
               "ending in each outcome. 1 = the codeword / the goal.")
    return Drawn(table=figure6_table(data.summary), figure=fig, caption=caption)


def _register() -> None:
    from selfaware.report.paper import PaperFigure, register_figure

    register_figure(PaperFigure(key="fig6", label="Figure 6", families=(FAMILY,), draw=_figure6_exhibit, order=6,
                                title="Make Me Say: the codeword, the goal and the game"))


_register()
