"""The scorer for every question type: P(target option), E[rating], word category, judged category.

It reads the distribution stored by `answer_distribution` and dispatches on the sample's question type;
see `interpret.py` for the rules. Invalid answers score NOANSWER with the reason in the metadata; the
`invalid_sample_rate` metric counts them, and `invalid_answer_rate` the invalid share of the answers
inside each sample (`invalid_answer_share` in the score metadata).
"""

from __future__ import annotations

from dataclasses import replace

from inspect_ai.scorer import NOANSWER, Score, Scorer, Target, scorer
from inspect_ai.solver import TaskState

from selfaware.banks import OffListPolicy, load_words
from selfaware.scorers.interpret import (
    DEFAULT_MIN_VALID_MASS,
    Interpretation,
    Parser,
    interpret,
    option_parser,
    rating_parser,
    verdict_parser,
    word_category,
)
from selfaware.scorers.judge import DEFAULT_JUDGE, JudgeUnavailable, judge_answers, judge_model, unavailable_reason
from selfaware.scorers.metrics import standard_metrics
from selfaware.solvers.answer_distribution import STORE_KEY, Elicitation


def parser_for(metadata: dict, off_list: OffListPolicy) -> Parser:
    qtype = metadata["question_type"]
    if qtype == "multiple_choice":
        return option_parser(metadata["permutation"], metadata["target"])
    if qtype == "rating":
        scale = metadata["scale"]
        return rating_parser(scale["min"], scale["max"], scale.get("reverse", False))
    if qtype == "one_word":
        return word_category(load_words(metadata["family"]).lists[metadata["words"]], off_list)
    if qtype == "free_form_judged":
        judge = metadata["judge"]
        return verdict_parser(judge["labels"], judge.get("other"))
    raise ValueError(f"unknown question_type {qtype!r}")


def to_score(i: Interpretation, extra: dict | None = None) -> Score:
    metadata = {
        "invalid": i.invalid,
        "reason": i.reason,
        "method": i.method,
        "valid_mass": round(i.valid_mass, 6),
        "invalid_answer_share": round(i.invalid_answer_share, 6),
        "off_list_mass": round(i.off_list_mass, 6),
        "tail_mass": round(i.tail_mass, 6),
        "covered_mass": None if i.covered_mass is None else round(i.covered_mass, 6),
        "sampling_stderr": i.stderr,
        "n": i.n,
        "n_valid": i.n_valid,
        "answers": {k: round(v, 6) for k, v in list(i.detail.items())[:25]},
        **(extra or {}),
    }
    top = max(i.detail.items(), key=lambda kv: kv[1])[0] if i.detail else ""
    return Score(value=NOANSWER if i.value is None else i.value, answer=top,
                 explanation=i.reason, metadata=metadata)


@scorer(metrics=standard_metrics())
def answer_score(off_list: OffListPolicy = "paper", min_valid_mass: float = DEFAULT_MIN_VALID_MASS,
                 judge: str = DEFAULT_JUDGE) -> Scorer:
    """Score an elicited answer distribution; 1 always means the family's behavior.

    Args:
        off_list: one-word answers on no list score 0.5 ("paper") or are left out of the mean ("drop";
            their share is reported, and they still count as answers for `min_valid_mass`).
        min_valid_mass: the answer is invalid when less probability (logprobs) or a smaller fraction
            of samples than this falls on valid answers.
        judge: the judge model for free-form answers when no `judge` model role is given
            (`--model-role judge=...` overrides it); never the model under test.
    """

    async def score(state: TaskState, target: Target) -> Score:
        stored = state.store.get(STORE_KEY)
        if stored is None:
            raise RuntimeError("answer_score needs the answer_distribution solver to run first")
        e = Elicitation.from_dict(stored)
        extra: dict = {}
        if state.metadata["question_type"] == "free_form_judged" and e.samples:
            try:
                judge_llm = judge_model(judge)
            except JudgeUnavailable as err:
                return to_score(Interpretation(None, method=e.method, valid_mass=0.0, reason=unavailable_reason(err),
                                               n=max(1, len(e.samples))), {"judged_answers": [a[:200] for a in e.samples[:10]]})
            verdicts = await judge_answers(e.samples, state.metadata["judge"]["prompt"], judge_llm)
            extra = {"judge": str(judge_llm), "judged_answers": [a[:200] for a in e.samples[:10]]}
            e = replace(e, samples=verdicts)
        if e.fallback_reason:
            extra["fallback_reason"] = e.fallback_reason
        return to_score(interpret(e, parser_for(state.metadata, off_list), min_valid_mass), extra)

    return score
