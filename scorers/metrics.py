"""Metrics that keep invalid answers visible instead of folding them into the mean."""

from __future__ import annotations

import math

from inspect_ai.scorer import NOANSWER, Metric, SampleScore, metric


def is_invalid(s: SampleScore) -> bool:
    return s.score.value == NOANSWER or bool((s.score.metadata or {}).get("invalid"))


def _valid_values(scores: list[SampleScore]) -> list[float]:
    return [float(s.score.value) for s in scores if not is_invalid(s)]  # type: ignore[arg-type]


@metric
def valid_mean() -> Metric:
    """Mean score over samples with a valid answer (NaN when none is valid)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _valid_values(scores)
        return sum(values) / len(values) if values else float("nan")

    return compute


@metric
def valid_stderr() -> Metric:
    """Standard error of `valid_mean` across samples (paraphrases x permutations x items)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _valid_values(scores)
        n = len(values)
        if n < 2:
            return float("nan")
        mean = sum(values) / n
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)

    return compute


@metric
def invalid_rate() -> Metric:
    """Fraction of samples whose answer could not be scored (unparseable, off-scale, off-list under
    the drop policy, or too little probability on valid answers)."""

    def compute(scores: list[SampleScore]) -> float:
        return sum(is_invalid(s) for s in scores) / len(scores) if scores else float("nan")

    return compute
