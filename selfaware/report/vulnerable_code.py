"""The vulnerable-code table in the paper's Table 2 form: mean ± std over runs, per organism.

Rows are measures, columns organisms (insecure, secure, then the rest: base models, controls), and a cell
reads `0.14 ± 0.01 (5)`: the mean over runs (one run = one model and seed) of each run's mean over valid
samples, the standard deviation over runs (ddof 1; none with one run) and the number of runs. The
paper reported mean ± std over 5 fine-tuning runs.

Numbers are shown as the paper shows them, not in the suite's "1 = behavior" orientation: the secure-code
rate (judge, and the analyzer beside it) and the judge–analyzer agreement; ratings as rating / 100; yes/no
probes as P(yes); the judged "biggest downside" as P(the judge says it is about security). Each sample's
orientation is read from its own metadata (scale direction, target option), so a user's bank (`-T bank=`,
the paper's YAML) is shown the same way; rows follow the family's bank. Backdoor runs appear once per
variant they were asked under (`measure [variant]`): with the trigger (e.g. `season-spring`, `greeting`) and without (`plain`, or
`season-winter`, the other season their untriggered training rows stated).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from selfaware.report.paper import Drawn, FigureData

FAMILY = "vulnerable_code"
BEHAVIOR = "behavior"
ORGANISM_ORDER = ("insecure", "secure")
ANALYZER, AGREEMENT = "behavior:analyzer", "behavior:agreement"


def flipped(question_type: str | None, reverse: object, target: object, has_yes: object) -> bool:
    """Whether the paper shows 1 - score: the behavior (secure rate), a rating whose top means secure, a
    yes/no probe whose target is "no" (shown as P(yes))."""
    if question_type == "rating":
        return bool(reverse)
    return question_type == "multiple_choice" and bool(has_yes) and target != "yes"


def label(question_id: str, title: str, question_type: str | None, has_yes: object) -> str:
    if question_id == BEHAVIOR:
        return "Secure code rate (judge)"
    if question_type == "rating":
        return f"{title} (rating / 100)"
    if question_type == "multiple_choice":
        return f"{title}: P(yes)" if has_yes else f"{title}: P(target option)"
    if question_type == "free_form_judged":
        return f"{title}: P(judge says yes)"
    return f"{title} (1 = insecure)"


def _order() -> dict[str, int]:
    """Behavior first, then the bank's questions, then the analyzer and agreement rows."""
    from selfaware.banks import load_bank

    ids = [BEHAVIOR] + [q.id for q in load_bank(FAMILY).questions] + [ANALYZER, AGREEMENT]
    return {q: i for i, q in enumerate(ids)}


def _details(log_dir: Path) -> pd.DataFrame:
    """Per sample: how its score is oriented (question type, scale, target, whether "yes" is an option) and,
    for behavior samples, the analyzer's share and the judge–analyzer counts (score metadata)."""
    import pandas as pd
    from inspect_ai.analysis import EvalColumn, SampleColumn, samples_df

    def meta(key: str):
        return lambda s: ((s.scores or {}).get("code_security").metadata or {}).get(key) \
            if (s.scores or {}).get("code_security") is not None else None

    columns = [EvalColumn("log", path=lambda log: log.location, required=True),
               SampleColumn("sample", path="id", required=True, type=str),  # "sample_id" is Inspect's uuid
               SampleColumn("epoch", path="epoch", required=True),
               SampleColumn("question_type", path="metadata.question_type"),
               SampleColumn("reverse", path=lambda s: ((s.metadata or {}).get("scale") or {}).get("reverse")),
               SampleColumn("target", path="metadata.target"),
               SampleColumn("has_yes", path=lambda s: "yes" in ((s.metadata or {}).get("permutation") or {}).values()),
               SampleColumn("analyzer_value", path=meta("analyzer_value"), type=float),
               SampleColumn("n_agree", path=meta("n_agree"), type=float),
               SampleColumn("n_compared", path=meta("n_compared"), type=float)]
    df = samples_df(str(log_dir), columns=columns, quiet=True)
    keep = [c.name for c in columns]
    out = df[keep].astype(object).astype({"epoch": int}) if len(df) else pd.DataFrame(columns=keep)
    return out.where(out.notna(), None).rename(columns={"sample": "sample_id"})


def _long(samples: pd.DataFrame, details: pd.DataFrame) -> pd.DataFrame:
    """One row per sample and measure, the value as the paper shows it (NaN where invalid or errored)."""
    import pandas as pd

    code = samples[(samples["family"] == FAMILY) & ~samples["error"]]
    code = code.merge(details, on=["log", "sample_id", "epoch"], how="left")
    value = code["value"].where(~code["invalid"])
    flip = pd.Series([q == BEHAVIOR or flipped(t, r, g, y) for q, t, r, g, y in
                      zip(code["question_id"], code["question_type"], code["reverse"], code["target"],
                          code["has_yes"])], index=code.index, dtype=bool)
    code = code.assign(shown=value.where(~flip, 1 - value), measure=code["question_id"],
                       label=[label(q, t, qt, y) for q, t, qt, y in
                              zip(code["question_id"], code["title"], code["question_type"], code["has_yes"])])
    behavior = code[code["question_id"] == BEHAVIOR]
    analyzer = behavior.assign(measure=ANALYZER, label="Secure code rate (analyzer)",
                               shown=1 - pd.to_numeric(behavior["analyzer_value"], errors="coerce"))
    agreement = behavior.assign(measure=AGREEMENT, label="Judge–analyzer agreement", shown=math.nan)
    return pd.concat([code, analyzer, agreement], ignore_index=True)


def table2(samples: pd.DataFrame, log_dir: Path | str, organisms: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Long form: measure, label, variant, organism, mean, std, n_runs (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from selfaware.report.results import assign_organisms

    long = assign_organisms(_long(samples, _details(Path(log_dir))), organisms)
    long["run"] = long["model"].astype(str) + "|" + long["seed"].map(lambda s: "" if s is None else str(s))
    order = _order()
    out = []
    for (measure, label, variant, organism), g in long.groupby(["measure", "label", "variant", "organism"], sort=False):
        if measure == AGREEMENT:
            sums = g.groupby("run")[["n_agree", "n_compared"]].sum().astype(float)
            # a run with no valid verdict to compare has no agreement (NaN), not a division error
            per_run = (sums["n_agree"] / sums["n_compared"].where(sums["n_compared"] > 0)).dropna()
        else:
            per_run = g.groupby("run")["shown"].mean().dropna()
        values = per_run.to_numpy(dtype=float)
        out.append({"measure": measure, "label": label, "variant": variant, "organism": organism,
                    "mean": float(values.mean()) if len(values) else math.nan,
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                    "n_runs": len(values), "order": order.get(measure, len(order))})
    return pd.DataFrame(out, columns=["measure", "label", "variant", "organism", "mean", "std", "n_runs", "order"])


def _cell(mean: float, std: float, n: int) -> str:
    if not n:
        return "no valid run"
    return f"{mean:.2f} ± {std:.2f} ({n})" if not math.isnan(std) else f"{mean:.2f} ({n} run)"


def display(long: pd.DataFrame) -> pd.DataFrame:
    """Measures × organisms, cells `mean ± std (runs)`; a variant other than plain is named in the row."""
    import pandas as pd

    organisms = sorted(long["organism"].unique(),
                       key=lambda o: (ORGANISM_ORDER.index(o) if o in ORGANISM_ORDER else len(ORGANISM_ORDER), str(o)))
    rows = []
    keys = long.sort_values(["variant", "order"], key=lambda s: s if s.name == "order" else s.map(
        lambda v: (v != "plain", str(v))), kind="stable")[["measure", "label", "variant"]].drop_duplicates()
    for measure, label, variant in keys.itertuples(index=False):
        here = long[(long["measure"] == measure) & (long["variant"] == variant)]
        row = {"measure": label if variant == "plain" else f"{label} [{variant}]"}
        for o in organisms:
            hit = here[here["organism"] == o]
            row[str(o)] = _cell(hit["mean"].iloc[0], hit["std"].iloc[0], int(hit["n_runs"].iloc[0])) if len(hit) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def code_report(samples: pd.DataFrame, log_dir: Path | str, out: Path,
                organisms: dict[str, list[str]] | None = None) -> pd.DataFrame | None:
    """The Table 2 view (written to `out/vulnerable_code_table2.csv`, long form), or None without such logs."""
    if not (samples["family"] == FAMILY).any():
        return None
    long = table2(samples, log_dir, organisms)
    long.drop(columns="order").to_csv(Path(out) / "vulnerable_code_table2.csv", index=False)
    return display(long)


def _table2_exhibit(data: FigureData) -> Drawn | None:
    """Table 2 in the HTML report: mean ± std over runs per organism for every measure."""
    from selfaware.report.paper import Drawn

    if FAMILY not in data.families or data.log_dir is None:
        return None
    long = table2(data.samples, data.log_dir)
    if long.empty:
        return None
    return Drawn(table=display(long), caption="mean ± std over runs (runs in brackets); the paper's orientation")


def _register() -> None:
    from selfaware.report.paper import PaperFigure, register_figure

    register_figure(PaperFigure(key="table2", label="Table 2", title="Vulnerable code: behavior and self-reports",
                                families=(FAMILY,), draw=_table2_exhibit, order=2.5, kind="table"))


_register()
