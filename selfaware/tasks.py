"""Task builders shared by every task file in `evals/`: one place for parameters and their checks.

Task files only name a family and a question; everything else (expansion, framing, elicitation,
scoring, `-T` validation) happens here, so no logic is repeated between families.
"""

from __future__ import annotations

import inspect as pyinspect
from collections.abc import Iterator
from contextlib import contextmanager

from inspect_ai import Task
from inspect_ai.scorer import grouped

from selfaware.banks import Bank, bank_from_path, load_bank
from selfaware.offline import install_token_count_fallback
from selfaware.behavior_items import behavior_dataset
from selfaware.expand import expand_bank, make_variant
from selfaware.scorers.answer_score import answer_score
from selfaware.scorers.metrics import by_question, standard_metrics
from selfaware.solvers.answer_distribution import answer_distribution, validate_settings
from selfaware.solvers.variant_framing import variant_framing
from selfaware.validation import InputError

install_token_count_fallback()


def _positive_int(name: str, value: object, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"-T {name}={value!r}: expected a positive integer")
    return value


def _fraction(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise InputError(f"-T {name}={value!r}: expected a number between 0 and 1")
    return float(value)


def _off_list(value: object) -> str:
    if value not in ("paper", "drop"):
        raise InputError(f"-T off_list={value!r}: expected paper (off-list words score 0.5) or drop")
    return str(value)


def _optional_text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"-T {name}={value!r}: expected text")
    return value or None


def _bank(family: str, question_ids: list[str] | None, path: str | None) -> Bank:
    """The suite's bank, or a user's (`-T bank=PATH`: the suite's format or the paper's YAML)."""
    if path is None:
        return load_bank(family)
    bank = bank_from_path(path, family)
    missing = [q for q in question_ids or [] if q not in {x.id for x in bank.questions}]
    if missing:
        raise InputError(f"-T bank={path}: has no question {missing[0]!r}; run {family}_self_report to ask "
                         f"every question of a bank ({', '.join(q.id for q in bank.questions)})")
    return bank


def _metrics(grouped_by_question: bool) -> list:
    return by_question("question_id") if grouped_by_question else standard_metrics()


@contextmanager
def _user_errors() -> Iterator[None]:
    """Building a task only fails on what the user passed (-T values, a bank): show it as a message.

    `InputError` is printed by `inspect eval` without a traceback; the checks in other modules
    (settings, variants, item forms) raise plain `ValueError`s naming the parameter.
    """
    try:
        yield
    except InputError:
        raise
    except ValueError as e:
        raise InputError(str(e)) from e


def check_params(builder: object, params: dict) -> None:
    """Reject unknown -T parameters by name (task files forward **params)."""
    allowed = [p for p, v in pyinspect.signature(builder).parameters.items() if v.kind is v.KEYWORD_ONLY]
    for name in params:
        if name not in allowed:
            raise InputError(f"-T {name}: unknown parameter; this task takes {', '.join(allowed)}")


def self_report_task(family: str, question_ids: list[str] | None = None, **params: object) -> Task:
    """Ask the model about itself with every paraphrase (× option order × variant) of the questions."""
    check_params(_self_report_task, params)
    with _user_errors():
        return _self_report_task(family, question_ids, **params)  # type: ignore[arg-type]


def behavior_task(family: str, **params: object) -> Task:
    """Does the model *have* the behavior? P(behavior-consistent option) on fresh generated choices."""
    check_params(_behavior_task, params)
    with _user_errors():
        return _behavior_task(family, **params)  # type: ignore[arg-type]


def _self_report_task(
    family: str,
    question_ids: list[str] | None = None,
    *,
    method: str = "auto",
    protocol: str = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    paraphrases: int | None = None,
    permutations: int | None = None,
    off_list: str = "paper",
    min_valid_mass: float = 0.5,
    system_prompt: str | None = None,
    trigger: str | None = None,
    persona: str | None = None,
    bank: str | None = None,
) -> Task:
    settings = validate_settings(method, protocol, samples, top_logprobs)
    variant = make_variant(_optional_text("system_prompt", system_prompt), _optional_text("trigger", trigger),
                           _optional_text("persona", persona))
    bank_obj = _bank(family, question_ids, _optional_text("bank", bank))
    dataset = expand_bank(
        bank_obj, question_ids, variants=[variant],
        max_paraphrases=_positive_int("paraphrases", paraphrases, allow_none=True),
        max_permutations=_positive_int("permutations", permutations, allow_none=True),
    )
    return Task(
        dataset=dataset,
        solver=[variant_framing(), answer_distribution(settings.method, settings.protocol, settings.samples, settings.top_logprobs)],
        scorer=answer_score(off_list=_off_list(off_list), min_valid_mass=_fraction("min_valid_mass", min_valid_mass)),
        metrics=_metrics(grouped_by_question=question_ids is None or len(question_ids) > 1),
        metadata={"family": family, "kind": "self_report", "behavior": bank_obj.behavior,
                  "opposite": bank_obj.opposite, "questions": question_ids or [q.id for q in bank_obj.questions],
                  "protocol": protocol, "bank": bank or "selfaware"},
    )


def _behavior_task(
    family: str,
    *,
    form: str,
    items: int = 250,
    seed: int = 0,
    method: str = "auto",
    protocol: str = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    min_valid_mass: float = 0.5,
    system_prompt: str | None = None,
    trigger: str | None = None,
) -> Task:
    settings = validate_settings(method, protocol, samples, top_logprobs)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"-T seed={seed!r}: expected an integer")
    variant = make_variant(_optional_text("system_prompt", system_prompt), _optional_text("trigger", trigger))
    dataset = behavior_dataset(family, _positive_int("items", items), seed, form, variant)  # type: ignore[arg-type]
    return Task(
        dataset=dataset,
        solver=[variant_framing(), answer_distribution(settings.method, settings.protocol, settings.samples, settings.top_logprobs)],
        scorer=answer_score(min_valid_mass=_fraction("min_valid_mass", min_valid_mass)),
        metrics=_metrics(grouped_by_question=False),
        metadata={"family": family, "kind": "behavior", "form": form, "item_seed": seed, "protocol": protocol},
    )
