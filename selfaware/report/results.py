"""From a directory of Inspect logs to tidy per-sample rows and per-organism summaries.

Reading goes through `inspect_ai.analysis.samples_df` with explicit columns, so the frame depends only on
what the suite writes into logs: eval metadata (`organism`, `seed` from `--metadata`; `family`, `kind`,
`protocol` from the task), sample metadata (`family`, `question_id`, `title`, `variant_name`) and the
`answer_score` score (value, `invalid`, `method`).

Aggregation follows the paper: a *seed* is one fine-tuned model (one `(model, seed)` pair); an
*organism* is a group of seeds; its number is the mean of the seed means, with a 95% interval over seeds.

The interval is a Student-t interval over the seed means (`ci_method="t"`, default): mean ± t(0.975, k-1)
· sd / sqrt(k), which covers 95% for k >= 2 seeds. The paper's percentile bootstrap over seed means is
available (`ci_method="bootstrap"`) but covers far less than its label with few seeds (about 50% with 2,
82% with 5, 90% with 10), because resampling k values can never reach beyond them. Intervals are clipped
to the score range [0, 1]. One seed gives no interval, and the summary says so in `ci_note` instead of
leaving a silently empty cell; `ci_method` names the method on every organism row.

A run's (model row's) standard error is clustered by the sample metadata `cluster` — option orders of one
item or paraphrase are one unit of evidence — exactly as the task's `valid_stderr` metric computes it.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from inspect_ai.analysis import EvalColumn, SampleColumn, samples_df
from inspect_ai.log import EvalSampleSummary

from selfaware.validation import InputError, load_yaml_text, read_user_text

SCORER = "answer_score"
BEHAVIOR_QUESTION = "behavior"  # question_id of behavior-task samples (selfaware.expand.behavior_dataset)
SINGLE_SEED_NOTE = "1 seed: no CI"
CI_LEVEL = 0.95
CI_METHODS = {"t": "t interval over seed means", "bootstrap": "percentile bootstrap over seed means"}

TIDY_COLUMNS = ["log", "task", "family", "kind", "question_id", "title", "variant", "persona", "protocol",
                "model", "organism", "seed", "method", "value", "invalid", "invalid_answer_share", "error",
                "sample_id", "cluster", "epoch"]


# Scorers whose scores have answer_score's shape (value; `invalid`, `method` in the metadata): the
# vulnerable-code behavior task's `code_security` (its value is the judge's verdict).
SCORERS = (SCORER, "code_security")


def _answer_score(s: EvalSampleSummary) -> Any:
    scores = s.scores or {}
    return next((scores[name] for name in SCORERS if name in scores), None)


def _value(s: EvalSampleSummary) -> float | None:
    score = _answer_score(s)
    if score is None or isinstance(score.value, str) or score.value is None:
        return None  # NOANSWER ("N") and missing scores are not numbers
    return float(score.value)  # type: ignore[arg-type]


def _invalid(s: EvalSampleSummary) -> bool | None:
    score = _answer_score(s)
    if score is None:
        return None  # errored sample: no answer to judge (reported as `error`, not as invalid)
    return bool((score.metadata or {}).get("invalid")) or _value(s) is None


def _method(s: EvalSampleSummary) -> str | None:
    score = _answer_score(s)
    return (score.metadata or {}).get("method") if score is not None else None


def _invalid_answer_share(s: EvalSampleSummary) -> float | None:
    """The invalid share of a sample's answers (score metadata); logs from before it existed: 1 or 0."""
    score = _answer_score(s)
    if score is None:
        return None
    share = (score.metadata or {}).get("invalid_answer_share")
    if share is None:
        return 1.0 if _invalid(s) else 0.0
    return float(share)


def _task(path: Any) -> Any:
    return path.split("/", 1)[-1] if isinstance(path, str) else path  # drop the "selfaware/" namespace


def _str_or_none(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


# Explicit columns: only what the report needs, read from sample summaries (fast; no full samples).
COLUMNS = [
    EvalColumn("log", path=lambda log: log.location, required=True),
    EvalColumn("task", path="eval.task", value=_task, required=True),
    EvalColumn("model", path="eval.model", required=True),
    EvalColumn("organism", path="eval.metadata.organism"),
    EvalColumn("eval_seed", path="eval.metadata.seed", value=_str_or_none),
    EvalColumn("eval_family", path="eval.metadata.family"),
    EvalColumn("kind", path="eval.metadata.kind"),
    EvalColumn("protocol", path="eval.metadata.protocol"),
    EvalColumn("status", path="status"),
    EvalColumn("created", path="eval.created"),
    EvalColumn("task_args", path=lambda log: json.dumps(log.eval.task_args or {}, sort_keys=True, default=str)),
    SampleColumn("sample", path="id", required=True, type=str),
    SampleColumn("epoch", path="epoch", required=True),
    SampleColumn("family", path="metadata.family"),
    SampleColumn("question_id", path="metadata.question_id"),
    SampleColumn("title", path="metadata.title"),
    SampleColumn("variant", path="metadata.variant_name"),
    SampleColumn("persona", path="metadata.persona"),
    SampleColumn("value", path=_value, type=float),
    SampleColumn("invalid", path=_invalid),
    SampleColumn("invalid_answer_share", path=_invalid_answer_share, type=float),
    SampleColumn("cluster", path="metadata.cluster"),
    SampleColumn("method", path=_method),
    SampleColumn("error", path="error"),
]


def load_scores(log_dir: str | Path) -> pd.DataFrame:
    """One row per scored sample (and epoch) in every `.eval` log under `log_dir`.

    Columns: log, task, family, kind, question_id, title, variant, protocol, model, organism, seed,
    method, value (float; NaN when invalid or errored), invalid (bool), invalid_answer_share (float),
    error (bool), sample_id, cluster (the independent unit; the sample id for logs without one), epoch.
    Samples from tasks that are not part of the suite (no `question_id`) are left out.
    """
    log_dir = Path(log_dir)
    if not log_dir.exists():
        raise FileNotFoundError(f"{log_dir}: no such log directory")
    if not any(log_dir.rglob("*.eval")) and not any(log_dir.rglob("*.json")):
        return pd.DataFrame(columns=TIDY_COLUMNS)
    try:
        raw = samples_df(str(log_dir), columns=COLUMNS, quiet=True)
    except ValueError as e:
        raise InputError(_unreadable_logs(log_dir, e)) from None
    if raw.empty or "question_id" not in raw.columns:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    # Arrow-backed columns infer their type from the data (an all-missing column comes back as
    # string): convert to plain Python objects with None for missing, then type what needs it.
    raw = raw.astype(object)
    raw = raw.where(raw.notna(), None)
    raw = raw[raw["question_id"].notna()]
    raw = newest_runs(raw)
    df = pd.DataFrame({
        "log": raw["log"],
        "task": raw["task"],
        "family": raw["family"].where(raw["family"].notna(), raw["eval_family"]),
        "kind": raw["kind"],
        "question_id": raw["question_id"],
        "title": raw["title"].where(raw["title"].notna(), raw["question_id"]),
        "variant": raw["variant"].map(lambda v: "plain" if v is None else v),
        "persona": raw["persona"] if "persona" in raw else None,
        "protocol": raw["protocol"].map(lambda v: "fast" if v is None else v),
        "model": raw["model"],
        "organism": raw["organism"],
        "seed": raw["eval_seed"],
        "method": raw["method"],
        "value": pd.to_numeric(raw["value"], errors="coerce").astype(float),
        "invalid": raw["invalid"].map(lambda v: str(v).lower() == "true"),
        "invalid_answer_share": pd.to_numeric(raw["invalid_answer_share"], errors="coerce").astype(float),
        "error": raw["error"].map(lambda v: bool(v)),
        "sample_id": raw["sample"],
        "cluster": [c if c is not None else f"sample:{sid}"
                    for c, sid in zip(raw["cluster"] if "cluster" in raw else [None] * len(raw), raw["sample"])],
        "epoch": raw["epoch"].astype(int),
    })
    return df.reset_index(drop=True)


RUN_KEY = ["task", "task_args", "model", "organism", "eval_seed"]  # one measurement of one model


def newest_runs(raw: pd.DataFrame) -> pd.DataFrame:
    """Keep one log per run: when a folder holds several logs of the same task, arguments, model, organism
    and seed (a rerun, an `eval_set` retry), the newest successful one counts and the others are named in a
    warning. Pooling them would count samples twice; with no successful log, the newest one is kept."""
    logs = raw[RUN_KEY + ["log", "status", "created"]].drop_duplicates("log")
    keep: list[str] = []
    for key, group in logs.groupby(RUN_KEY, dropna=False, sort=False):
        ok = group[group["status"] == "success"]
        pool = (ok if len(ok) else group).copy()
        # `created` can tie within its precision; the file's modification time breaks the tie.
        pool["mtime"] = [Path(str(p).removeprefix("file://")).stat().st_mtime if Path(str(p).removeprefix("file://")).exists()
                         else 0.0 for p in pool["log"]]
        chosen = pool.sort_values(["created", "mtime"]).iloc[-1]
        keep.append(chosen["log"])
        dropped = sorted(set(group["log"]) - {chosen["log"]})
        if dropped:
            warnings.warn(f"{len(group)} logs of {key[0]} on {key[2]}: using the newest "
                          f"{'successful ' if len(ok) else ''}one, {Path(str(chosen['log'])).name}; left out: "
                          f"{', '.join(Path(str(d)).name for d in dropped)}", stacklevel=2)
    return raw[raw["log"].isin(keep)]


def seed_order(value: object) -> tuple[int, float, str]:
    """Seeds sort as numbers where they are numbers (2 before 10), and as text after them."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, math.inf, text)


def _unreadable_logs(log_dir: Path, err: Exception) -> str:
    """Which log files Inspect could not read (named, rather than its bare 'EOCD not found')."""
    from inspect_ai.log import read_eval_log

    bad = []
    for log in sorted(log_dir.rglob("*.eval")):
        try:
            read_eval_log(str(log), header_only=True)
        except Exception as e:  # noqa: BLE001 (any failure to read is what the user must hear about)
            bad.append(f"{log}: not a readable Inspect log ({e})")
    if not bad:
        return f"{log_dir}: reading the logs failed: {err}"
    return "\n".join(bad) + f"\nmove {'it' if len(bad) == 1 else 'them'} out of {log_dir} (or delete) and rerun"


def organisms_from_file(path: str | Path) -> dict[str, list[str]]:
    """Read `{organism: [model, ...]}` from YAML (a single model string is accepted too)."""
    data = load_yaml_text(read_user_text(path), path)
    if data is None:
        raise InputError(f"{path}: the file is empty; expected a mapping organism -> list of model strings")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping organism -> list of model strings")
    out: dict[str, list[str]] = {}
    for name, models in data.items():
        models = [models] if isinstance(models, str) else models
        if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
            raise ValueError(f"{path}: organism {name!r}: expected a non-empty list of model strings")
        out[str(name)] = list(models)
    _model_to_organism(out)  # validates: no model in two organisms
    return out


def _model_to_organism(organisms: dict[str, list[str]]) -> dict[str, str]:
    owner: dict[str, str] = {}
    for name, models in organisms.items():
        for m in models:
            if m in owner and owner[m] != name:
                raise ValueError(f"model {m!r} is listed under two organisms: {owner[m]!r} and {name!r}")
            owner[m] = name
    return owner


def assign_organisms(df: pd.DataFrame, organisms: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Fill `organism`: the mapping wins (it is the reader's current intent), then eval metadata, and a
    model declared nowhere is its own one-seed organism (so a base model still appears in figures)."""
    df = df.copy()
    owner = _model_to_organism(organisms or {})
    unused = set(owner) - set(df["model"])
    if unused:
        warnings.warn(f"organism mapping lists models with no logs: {sorted(unused)}", stacklevel=2)
    mapped = df["model"].map(owner)
    df["organism"] = [m if isinstance(m, str) else (o if o is not None else model)
                      for m, o, model in zip(mapped, df["organism"], df["model"])]
    return df


KEYS = ["family", "question_id", "variant", "protocol"]  # one question as measured in one way


def _join(values: pd.Series) -> str:
    return ",".join(sorted({str(v) for v in values if v is not None and str(v) != ""}))


def _question_order(family: str, question_ids: list[str]) -> dict[str, int]:
    """Behavior first, then the bank's order; questions the bank does not know go last."""
    from selfaware.banks import BankError, load_bank

    try:
        bank_ids = [q.id for q in load_bank(family).questions]
    except BankError:  # a family without a bank (or a bank renamed since the logs were written)
        bank_ids = []
    order = {BEHAVIOR_QUESTION: 0, **{q: i + 1 for i, q in enumerate(bank_ids)}}
    rest = sorted(q for q in question_ids if q not in order)
    order.update({q: len(bank_ids) + 1 + i for i, q in enumerate(rest)})
    return order


def clustered_stderr(values: np.ndarray, clusters: list[Any]) -> float:
    """Cluster-robust standard error of the mean (as Inspect's `stderr(cluster=...)`):
    sqrt(G / (G - 1) * sum_g (sum_{i in g} (x_i - mean))^2) / N; NaN with fewer than two clusters.
    With equal cluster sizes it equals the standard error over cluster means."""
    groups: dict[Any, list[float]] = {}
    for v, c in zip(values, clusters):
        groups.setdefault(c, []).append(float(v))
    g = len(groups)
    if g < 2:
        return math.nan
    mean = float(np.mean(values))
    total = sum(sum(x - mean for x in xs) ** 2 for xs in groups.values())
    return math.sqrt(total * g / (g - 1)) / len(values)


def _sample_stats(g: pd.DataFrame) -> dict[str, Any]:
    answered = g[~g["error"]]
    valid = answered[~answered["invalid"]]
    n = len(valid)
    return {
        "mean": float(valid["value"].mean()) if n else math.nan,
        "stderr": clustered_stderr(valid["value"].to_numpy(dtype=float), list(valid["cluster"])),
        "n": n,
        "n_units": int(valid["cluster"].nunique()),
        "n_samples": len(answered),
        "invalid_sample_rate": float(answered["invalid"].mean()) if len(answered) else math.nan,
        "invalid_answer_rate": float(answered["invalid_answer_share"].mean()) if len(answered) else math.nan,
        "n_error": int(g["error"].sum()),
        "methods": _join(answered["method"]),
        "kind": _join(g["kind"]),
        "title": g["title"].iloc[0],
        "tasks": _join(g["task"]),
    }


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile for integer degrees of freedom, exact to bisection precision.

    Uses the closed form of P(|T| < t) for integer df (Abramowitz & Stegun 26.7.3/26.7.4), so no SciPy."""
    if not 0.5 <= p < 1 or df < 1:
        raise ValueError(f"t_quantile: need 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")

    def central(t: float) -> float:  # P(|T| < t)
        theta = math.atan(t / math.sqrt(df))
        c2, sin, cos = math.cos(theta) ** 2, math.sin(theta), math.cos(theta)
        if df % 2:  # odd
            term, acc = cos, (cos if df > 1 else 0.0)
            for k in range(3, df, 2):
                term *= c2 * (k - 1) / k
                acc += term
            return 2 / math.pi * (theta + sin * acc)
        term, acc = 1.0, 1.0
        for k in range(2, df, 2):
            term *= c2 * (k - 1) / k
            acc += term
        return sin * acc

    target = 2 * p - 1
    lo, hi = 0.0, 1.0
    while central(hi) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if central(mid) < target else (lo, mid)
    return (lo + hi) / 2


def t_interval(means: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of k seed means: mean ± t(1 - alpha/2, k - 1) · sd / sqrt(k).
    Exact coverage when seed means are normal; NaN with fewer than two seeds."""
    k = len(means)
    if k < 2:
        return math.nan, math.nan
    half = t_quantile(0.5 + level / 2, k - 1) * float(np.std(means, ddof=1)) / math.sqrt(k)
    mean = float(np.mean(means))
    return mean - half, mean + half


def bootstrap_ci(means: np.ndarray, n_boot: int, rng: np.random.Generator,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling seed means with replacement (the paper's
    method; it undercovers with few seeds, see the module docstring)."""
    if len(means) < 2:
        return math.nan, math.nan
    boots = means[rng.integers(0, len(means), size=(n_boot, len(means)))].mean(axis=1)
    lo, hi = np.percentile(boots, [50 - 50 * level, 50 + 50 * level])
    return float(lo), float(hi)


def seed_interval(means: np.ndarray, method: str, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    """The interval over seed means by `method` ("t" or "bootstrap"), clipped to the score range [0, 1]."""
    if method == "t":
        lo, hi = t_interval(means)
    elif method == "bootstrap":
        lo, hi = bootstrap_ci(means, n_boot, rng)
    else:
        raise ValueError(f"ci_method={method!r}: expected one of {sorted(CI_METHODS)}")
    if math.isnan(lo):
        return lo, hi
    return max(lo, 0.0), min(hi, 1.0)


def ci_label(method: str, level: float = CI_LEVEL) -> str:
    """How the interval was made, for tables and figures: "95% t interval over seed means"."""
    return f"{level:.0%} {CI_METHODS[method]}"


def summarize(df: pd.DataFrame, organisms: dict[str, list[str]] | None = None, n_boot: int = 2000,
              seed: int = 0, ci_method: str = "t") -> pd.DataFrame:
    """Model rows (`level="model"`: one per question × model × declared organism/seed, mean over valid
    samples, clustered SE) followed by organism rows (`level="organism"`: mean over seeds, a 95% interval
    over seeds by `ci_method` ("t", default, or the paper's "bootstrap" with `n_boot` resamples),
    `n_seeds`; `ci_note` says when there is no interval, `ci_method` names it)."""
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method={ci_method!r}: expected one of {sorted(CI_METHODS)}")
    if df.empty:
        return pd.DataFrame()
    df = assign_organisms(df, organisms)
    df["seed_key"] = df["seed"].map(lambda s: "" if s is None else str(s))
    model_keys = KEYS + ["organism", "model", "seed_key"]
    model_rows = []
    for key, g in df.groupby(model_keys, sort=False, dropna=False):
        row = dict(zip(model_keys, key))
        row["seed"] = g["seed"].iloc[0]
        model_rows.append({"level": "model", **row, **_sample_stats(g)})
    models = pd.DataFrame(model_rows)

    org_rows = []
    for key, g in models.groupby(KEYS + ["organism"], sort=False, dropna=False):
        seeds = g[g["n"] > 0]  # a seed with no valid answer has no mean to average
        means = seeds["mean"].to_numpy(dtype=float)
        # Per-group RNG so a group's CI does not change when unrelated logs are added.
        rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        lo, hi = seed_interval(means, ci_method, n_boot, rng)
        n_samples = int(g["n_samples"].sum())
        n_invalid = float((g["invalid_sample_rate"].fillna(0) * g["n_samples"]).sum())
        invalid_answers = float((g["invalid_answer_rate"].fillna(0) * g["n_samples"]).sum())
        org_rows.append({
            "level": "organism", **dict(zip(KEYS + ["organism"], key)),
            "model": _join(g["model"]), "seed": _join(seeds["seed"]) or None,
            "mean": float(means.mean()) if len(means) else math.nan,
            "stderr": math.nan, "ci_low": lo, "ci_high": hi, "n_seeds": len(means),
            "ci_method": ci_label(ci_method) if len(means) > 1 else "",
            "ci_note": SINGLE_SEED_NOTE if len(means) == 1 else ("no valid seed" if not len(means) else ""),
            "n": int(g["n"].sum()), "n_units": int(g["n_units"].sum()), "n_samples": n_samples,
            "invalid_sample_rate": n_invalid / n_samples if n_samples else math.nan,
            "invalid_answer_rate": invalid_answers / n_samples if n_samples else math.nan,
            "n_error": int(g["n_error"].sum()), "methods": _join(",".join(g["methods"]).split(",")),
            "kind": _join(g["kind"]), "title": g["title"].iloc[0], "tasks": _join(",".join(g["tasks"]).split(",")),
        })
    out = pd.concat([models.drop(columns="seed_key"), pd.DataFrame(org_rows)], ignore_index=True)
    out["order"] = [_question_order(f, list(out.loc[out["family"] == f, "question_id"]))[q]
                    for f, q in zip(out["family"], out["question_id"])]
    out["n_seeds"] = out["n_seeds"].astype("Int64")
    out["ci_note"] = out["ci_note"].fillna("")
    out["ci_method"] = out["ci_method"].fillna("")
    out = out.sort_values(["level", "family", "order", "variant", "protocol", "organism", "model", "seed"],
                          key=lambda s: s if s.name == "order" else s.map(seed_order if s.name == "seed" else str),
                          kind="stable")
    columns = ["level", "family", "kind", "question_id", "title", "order", "variant", "protocol", "organism",
               "model", "seed", "n_seeds", "mean", "ci_low", "ci_high", "ci_method", "ci_note", "stderr", "n",
               "n_units", "n_samples", "invalid_sample_rate", "invalid_answer_rate", "n_error", "methods", "tasks"]
    # "model" sorts before "organism": per-run rows first, then the figure's rows.
    return out[columns].reset_index(drop=True)
