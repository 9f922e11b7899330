"""Metrics that keep invalid answers visible instead of folding them into the mean.

* `valid_mean` — mean score over samples with a valid answer;
* `valid_stderr` — its standard error, *clustered by the independent unit*: both option orders of one
  behavior item, or every option order of one paraphrase, are one piece of evidence (sample metadata
  `cluster`, written at expansion). Treating them as independent understates the SE (x1.4 for the two
  orders of a lottery pair, x3.3 for the 6 orders of a 3-option question). Inspect's own
  `stderr(cluster=...)` computes it;
* `invalid_sample_rate` — share of samples whose answer as a whole is invalid (scored `N`);
* `invalid_answer_rate` — share of the answers themselves that are invalid (sampled answers that do not
  parse, probability on tokens outside the valid set or outside the returned alternatives), averaged
  over samples: 19% garbage among sampled answers reads 0.19 even when every sample stays valid.

`by_question(...)` wraps them per question with readable names: `<question_id>/valid_mean`, ...; it
computes no `all` aggregate, which would pool ratings, words and judged answers into one number.
"""

from __future__ import annotations

from collections.abc import Callable

from inspect_ai.scorer import NOANSWER, Metric, SampleScore, grouped, metric, stderr

CLUSTER_KEY = "cluster"  # sample metadata: the independent unit (item; question x paraphrase x variant)


def is_invalid(s: SampleScore) -> bool:
    return s.score.value == NOANSWER or bool((s.score.metadata or {}).get("invalid"))


def _valid(scores: list[SampleScore]) -> list[SampleScore]:
    return [s for s in scores if not is_invalid(s)]


def _with_cluster(s: SampleScore, key: str) -> SampleScore:
    """A sample without a cluster key is its own unit (tasks outside the suite's expansion)."""
    metadata = dict(s.sample_metadata or {})
    if metadata.get(key) is None:
        metadata[key] = f"sample:{s.sample_id}"
    return s.model_copy(update={"sample_metadata": metadata})


def cluster_count(scores: list[SampleScore], key: str = CLUSTER_KEY) -> int:
    return len({(s.sample_metadata or {}).get(key, f"sample:{s.sample_id}") for s in scores})


@metric
def valid_mean() -> Metric:
    """Mean score over samples with a valid answer (NaN when none is valid)."""

    def compute(scores: list[SampleScore]) -> float:
        values = [float(s.score.value) for s in _valid(scores)]  # type: ignore[arg-type]
        return sum(values) / len(values) if values else float("nan")

    return compute


@metric
def valid_stderr(cluster: str | None = CLUSTER_KEY) -> Metric:
    """Standard error of `valid_mean`, clustered by the sample metadata key `cluster` (None: every sample
    is its own unit). NaN with fewer than two units."""
    inspect_stderr = stderr(cluster=cluster)

    def compute(scores: list[SampleScore]) -> float:
        valid = _valid(scores)
        if cluster is not None:
            valid = [_with_cluster(s, cluster) for s in valid]
        units = cluster_count(valid, cluster) if cluster is not None else len(valid)
        if units < 2:
            return float("nan")
        return float(inspect_stderr(valid))  # type: ignore[arg-type]

    return compute


@metric
def invalid_sample_rate() -> Metric:
    """Fraction of samples whose answer could not be scored (unparseable, off-scale, too little
    probability on valid answers, an unreadable logprob response under `method=logprobs`)."""

    def compute(scores: list[SampleScore]) -> float:
        return sum(is_invalid(s) for s in scores) / len(scores) if scores else float("nan")

    return compute


def answer_invalid_share(s: SampleScore) -> float:
    """The share of one sample's answers that were invalid (1.0 for an invalid sample without the figure)."""
    share = (s.score.metadata or {}).get("invalid_answer_share")
    if share is None:
        return 1.0 if is_invalid(s) else 0.0
    return float(share)


@metric
def invalid_answer_rate() -> Metric:
    """Mean over samples of the share of answers (sampled texts, or probability) that were invalid."""

    def compute(scores: list[SampleScore]) -> float:
        if not scores:
            return float("nan")
        return sum(answer_invalid_share(s) for s in scores) / len(scores)

    return compute


def standard_metrics() -> list[Metric]:
    return [valid_mean(), valid_stderr(), invalid_sample_rate(), invalid_answer_rate()]


METRIC_NAMES: dict[str, Callable[[], Metric]] = {
    "valid_mean": valid_mean, "valid_stderr": valid_stderr,
    "invalid_sample_rate": invalid_sample_rate, "invalid_answer_rate": invalid_answer_rate,
}


def by_question(group_key: str = "question_id") -> list[Metric]:
    """The standard metrics per question, named `<question_id>/<metric>`, with no pooled `all`."""
    return [grouped(factory(), group_key, all=False, name_template="{group_name}/" + name)
            for name, factory in METRIC_NAMES.items()]
