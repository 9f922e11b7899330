"""Task builders behind every task file in `evals/`: one place for parameters, their checks and the pipeline.

Task files declare typed `@task` functions (so Inspect and the Register tooling can list each parameter)
and pass everything here by keyword. A family never appears in this module by name: it is looked up in
the family registry, so a new family needs no edit here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset

from selfaware.banks import Bank, load_bank
from selfaware.expand import behavior_dataset, expand_bank
from selfaware.families import choice_family, get_family
from selfaware.scorers.answer_score import answer_score
from selfaware.scorers.judge import DEFAULT_JUDGE
from selfaware.scorers.metrics import by_question, standard_metrics
from selfaware.solvers.answer_distribution import Method, answer_distribution, validate_settings
from selfaware.solvers.run_metadata import run_metadata
from selfaware.solvers.variant_framing import variant_framing
from selfaware.user_banks import bank_from_path
from selfaware.validation import InputError
from selfaware.variants import PLAIN, Trigger, Variant, get_variant

# Bumped when a change alters what a task measures (recorded in the log; the Register reads it).
TASK_VERSION = "2.0.0"


def _positive_int(name: str, value: object, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"-T {name}={value!r}: expected a positive integer")
    return value


def _integer(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"-T {name}={value!r}: expected an integer")
    return value


def _fraction(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise InputError(f"-T {name}={value!r}: expected a number between 0 and 1")
    return float(value)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"-T {name}={value!r}: expected one of {', '.join(allowed)}")
    return str(value)


def _optional_text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"-T {name}={value!r}: expected text")
    return value or None


def _question_ids(value: object) -> list[str] | None:
    """`-T questions=a,b` (text) or a YAML list; None asks every question of the bank."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        ids = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        ids = list(value)
    else:
        raise InputError(f"-T questions={value!r}: expected question ids separated by commas")
    return ids or None


def task_variant(variant: object, system_prompt: object = None, trigger: object = None,
                 persona: object = None) -> Variant:
    """The variant a task runs under: a named one (`-T variant=NAME`; from Python also a `Variant`) or one
    made of ad-hoc fields (`-T trigger=...`)."""
    fields = {k: _optional_text(k, v) for k, v in
              (("system_prompt", system_prompt), ("trigger", trigger), ("persona", persona))}
    given = {k: v for k, v in fields.items() if v}
    name = variant.name if isinstance(variant, Variant) else (_optional_text("variant", variant) or PLAIN.name)
    if not given:
        return variant if isinstance(variant, Variant) else get_variant(name)
    if name != PLAIN.name:
        raise InputError(f"-T variant={name} and -T {', '.join(given)}: give a named variant or ad-hoc fields, "
                         f"not both")
    label = "-".join(k.split("_")[0] for k in given)  # e.g. "system-trigger"
    return Variant(name=f"adhoc-{label}", system_prompt=given.get("system_prompt"), persona=given.get("persona"),
                   trigger=Trigger(strings=(given["trigger"],)) if "trigger" in given else None)


def _bank(family: str, question_ids: list[str] | None, path: str | None) -> Bank:
    """The suite's bank, or a user's (`-T bank=PATH`: the suite's format or the paper's YAML)."""
    bank = load_bank(family) if path is None else bank_from_path(path, family)
    known = {x.id for x in bank.questions}
    missing = [q for q in question_ids or [] if q not in known]
    if missing:
        raise InputError(f"-T questions: the {family} bank{f' at {path}' if path else ''} has no question "
                         f"{missing[0]!r}; it has {', '.join(q.id for q in bank.questions)}")
    return bank


@contextmanager
def _user_errors() -> Iterator[None]:
    """Building a task only fails on what the user passed (-T values, a bank, a variant): show it as a
    message. `InputError` is printed by `inspect eval` without a traceback; checks in other modules
    (settings, item forms) raise plain `ValueError`s naming the parameter."""
    try:
        yield
    except InputError:
        raise
    except ValueError as e:
        raise InputError(str(e)) from e


def _solver(settings: Any) -> list:
    return [run_metadata(), variant_framing(),  # run_metadata: --metadata organism/seed onto each sample
            answer_distribution(settings.method, settings.protocol, settings.samples, settings.top_logprobs)]


def self_report_task(
    family: str,
    *,
    questions: str | list[str] | None = None,
    method: Method = "auto",
    protocol: str = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    paraphrases: int | None = None,
    permutations: int | None = None,
    off_list: str = "paper",
    min_valid_mass: float = 0.5,
    variant: str = "plain",
    system_prompt: str | None = None,
    trigger: str | None = None,
    persona: str | None = None,
    bank: str | None = None,
    judge: str = DEFAULT_JUDGE,
) -> Task:
    """Ask the model about itself with every paraphrase (× option order) of the bank's questions."""
    with _user_errors():
        fam = get_family(family)
        settings = validate_settings(method, protocol, samples, top_logprobs)
        ids = _question_ids(questions)
        framing = task_variant(variant, system_prompt, trigger, persona)
        bank_obj = _bank(fam.name, ids, _optional_text("bank", bank))
        dataset = expand_bank(bank_obj, ids, framing,
                              max_paraphrases=_positive_int("paraphrases", paraphrases, allow_none=True),
                              max_permutations=_positive_int("permutations", permutations, allow_none=True))
        asked = ids or [q.id for q in bank_obj.questions]
        return Task(
            dataset=dataset,
            solver=_solver(settings),
            scorer=answer_score(off_list=_choice("off_list", off_list, ("paper", "drop")),  # type: ignore[arg-type]
                                min_valid_mass=_fraction("min_valid_mass", min_valid_mass),
                                judge=_optional_text("judge", judge) or DEFAULT_JUDGE),
            metrics=by_question("question_id") if len(asked) > 1 else standard_metrics(),
            version=TASK_VERSION,
            metadata={"family": fam.name, "kind": "self_report", "behavior": bank_obj.behavior,
                      "opposite": bank_obj.opposite, "questions": asked, "protocol": protocol,
                      "bank": bank or "selfaware", "variant": framing.name},
        )


def behavior_task(
    family: str,
    *,
    form: str | None = None,
    items: int = 250,
    seed: int = 0,
    method: Method = "auto",
    protocol: str = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    min_valid_mass: float = 0.5,
    variant: str = "plain",
    system_prompt: str | None = None,
    trigger: str | None = None,
    persona: str | None = None,
) -> Task:
    """Does the model *have* the behavior? P(behavior-consistent option) on fresh generated choices."""
    with _user_errors():
        fam = choice_family(family)
        settings = validate_settings(method, protocol, samples, top_logprobs)
        form = _optional_text("form", form) or fam.default_form
        framing = task_variant(variant, system_prompt, trigger, persona)
        dataset = behavior_dataset(fam, _positive_int("items", items) or 1, _integer("seed", seed), form, framing)
        return Task(
            dataset=dataset,
            solver=_solver(settings),
            scorer=answer_score(min_valid_mass=_fraction("min_valid_mass", min_valid_mass)),
            metrics=standard_metrics(),
            version=TASK_VERSION,
            metadata={"family": fam.name, "kind": "behavior", "form": form, "item_seed": seed,
                      "protocol": protocol, "variant": framing.name},
        )


def persona_self_report_task(
    family: str,
    *,
    personas: str | list[str] | None = None,
    questions: str | list[str] | None = None,
    method: Method = "auto",
    protocol: str = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    paraphrases: int | None = None,
    off_list: str = "paper",
    min_valid_mass: float = 0.5,
) -> Task:
    """The family's self-report questions about the model ("you") and about each persona (paper §5).

    Each persona is a persona `Variant` (the one that frames many-persona training rows); questions are
    worded by the bank's `persona_paraphrases`, so only questions that have them are asked. Metrics per
    persona; `selfaware report` turns them into score(organism) − score(control) per persona."""
    from selfaware.personas import parse_personas, persona_group, persona_variant

    with _user_errors():
        fam = get_family(family)
        settings = validate_settings(method, protocol, samples, top_logprobs)
        names = parse_personas(personas)
        bank_obj = load_bank(fam.name)
        ids = _question_ids(questions) or [q.id for q in bank_obj.questions if q.persona_paraphrases]
        _bank(fam.name, ids, None)  # unknown ids are named
        without = [i for i in ids if not bank_obj.question(i).persona_paraphrases]
        if without:
            raise InputError(f"-T questions: {', '.join(without)} cannot be asked about a persona (the {fam.name} "
                             f"bank has no persona_paraphrases for them)")
        samples_all = []
        for name in names:
            framing = persona_variant(name)
            for sample in expand_bank(bank_obj, ids, framing,
                                      max_paraphrases=_positive_int("paraphrases", paraphrases, allow_none=True)):
                sample.metadata = {**(sample.metadata or {}), "persona": name, "persona_group": persona_group(name)}
                samples_all.append(sample)
        return Task(
            dataset=MemoryDataset(samples_all, name=f"{fam.name}-personas"),
            solver=_solver(settings),
            scorer=answer_score(off_list=_choice("off_list", off_list, ("paper", "drop")),  # type: ignore[arg-type]
                                min_valid_mass=_fraction("min_valid_mass", min_valid_mass)),
            metrics=by_question("persona"),
            version=TASK_VERSION,
            metadata={"family": fam.name, "kind": "persona_self_report", "personas": names, "questions": ids,
                      "protocol": protocol},
        )
