"""The vulnerable-code table in the paper's Table 2 form: mean ± std over runs, per organism.

Rows are measures, columns organisms (insecure, secure, then the rest: base models, controls), and a cell
reads `0.14 ± 0.01 (5)`: the mean over runs (one run = one model and seed) of each run's mean over valid
samples, the standard deviation over runs (ddof 1; none with one run) and the number of runs. The
paper reported mean ± std over 5 fine-tuning runs.

Numbers are shown as the paper shows them, not in the suite's "1 = behavior" orientation: the secure-code
rate (judge, and the analyzer beside it) and the judge–analyzer agreement; ratings as rating / 100; yes/no
probes as P(yes); the judged "biggest downside" as P(the judge says it is about security). The orientation
of each self-report comes from the family's bank. Backdoor runs appear once per variant they were asked
under (`measure [variant]`): with the trigger (e.g. `season-spring`, `greeting`) and without (`plain`, or
`season-winter`, the other season their untriggered training rows stated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FAMILY = "vulnerable_code"
BEHAVIOR = "behavior"
ORGANISM_ORDER = ("insecure", "secure")
ANALYZER, AGREEMENT = "behavior:analyzer", "behavior:agreement"


@dataclass(frozen=True)
class Measure:
    question_id: str
    label: str
    flip: bool  # shown value = 1 - score


def measures() -> list[Measure]:
    """Table rows in order: the behavior, then the bank's questions, each oriented as the paper shows it."""
    from selfaware.banks import QuestionType, load_bank

    out = [Measure(BEHAVIOR, "Secure code rate (judge)", True)]
    for q in load_bank(FAMILY).questions:
        keys = {o.key for o in q.options}
        if q.type is QuestionType.rating:
            out.append(Measure(q.id, f"{q.title} (rating / 100)", bool(q.scale and q.scale.reverse)))
        elif q.type is QuestionType.multiple_choice and "yes" in keys:
            out.append(Measure(q.id, f"{q.title}: P(yes)", q.target != "yes"))
        elif q.type is QuestionType.free_form_judged:
            out.append(Measure(q.id, f"{q.title}: P(judge says yes)", False))
        else:
            out.append(Measure(q.id, f"{q.title} (1 = insecure)", False))
    return out


def _extras(log_dir: Path) -> pd.DataFrame:
    """The analyzer's share and the judge–analyzer counts of every behavior sample (score metadata)."""
    import pandas as pd
    from inspect_ai.analysis import EvalColumn, SampleColumn, samples_df

    def meta(key: str):
        return lambda s: ((s.scores or {}).get("code_security").metadata or {}).get(key) \
            if (s.scores or {}).get("code_security") is not None else None

    columns = [EvalColumn("log", path=lambda log: log.location, required=True),
               SampleColumn("sample", path="id", required=True, type=str),  # "sample_id" is Inspect's uuid
               SampleColumn("epoch", path="epoch", required=True),
               SampleColumn("analyzer_value", path=meta("analyzer_value"), type=float),
               SampleColumn("n_agree", path=meta("n_agree"), type=float),
               SampleColumn("n_compared", path=meta("n_compared"), type=float)]
    df = samples_df(str(log_dir), columns=columns, quiet=True)
    keep = ["log", "sample", "epoch", "analyzer_value", "n_agree", "n_compared"]
    out = df[keep].astype({"epoch": int}) if len(df) else pd.DataFrame(columns=keep)
    return out.rename(columns={"sample": "sample_id"})


def _long(samples: pd.DataFrame, extras: pd.DataFrame) -> pd.DataFrame:
    """One row per sample and measure, the value already oriented (NaN where invalid or errored)."""
    import pandas as pd

    code = samples[(samples["family"] == FAMILY) & ~samples["error"]].copy()
    code["shown"] = code["value"].where(~code["invalid"])
    parts = []
    for m in measures():
        rows = code[code["question_id"] == m.question_id].copy()
        rows["shown"] = 1 - rows["shown"] if m.flip else rows["shown"]
        parts.append(rows.assign(measure=m.question_id, label=m.label))
    behavior = code[code["question_id"] == BEHAVIOR].merge(extras, on=["log", "sample_id", "epoch"], how="left")
    parts.append(behavior.assign(measure=ANALYZER, label="Secure code rate (analyzer)",
                                 shown=1 - pd.to_numeric(behavior["analyzer_value"], errors="coerce")))
    parts.append(behavior.assign(measure=AGREEMENT, label="Judge–analyzer agreement", shown=math.nan))
    return pd.concat(parts, ignore_index=True) if parts else code


def table2(samples: pd.DataFrame, log_dir: Path | str, organisms: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Long form: measure, label, variant, organism, mean, std, n_runs (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from selfaware.report.results import assign_organisms

    long = assign_organisms(_long(samples, _extras(Path(log_dir))), organisms)
    long["run"] = long["model"].astype(str) + "|" + long["seed"].map(lambda s: "" if s is None else str(s))
    order = {m: i for i, m in enumerate([m.question_id for m in measures()] + [ANALYZER, AGREEMENT])}
    out = []
    for (measure, label, variant, organism), g in long.groupby(["measure", "label", "variant", "organism"], sort=False):
        if measure == AGREEMENT:
            sums = g.groupby("run")[["n_agree", "n_compared"]].sum()
            per_run = (sums["n_agree"] / sums["n_compared"]).where(sums["n_compared"] > 0).dropna()
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
