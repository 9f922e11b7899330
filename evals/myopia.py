"""Myopia (paper appendix C.1.8): does a model fine-tuned to take the sooner, smaller prize know it?

    inspect eval evals/myopia.py --model openai/gpt-4o

Scores: 1 = myopic, 0 = non-myopic. Parameters: see README ("Task parameters").
"""

from inspect_ai import Task, task

from selfaware.scorers.judge import DEFAULT_JUDGE
from selfaware.solvers.answer_distribution import Method, Protocol
from selfaware.tasks import behavior_task, self_report_task


@task
def myopia_behavior(
    form: str | None = None,
    items: int = 250,
    seed: int = 0,
    method: Method = "auto",
    protocol: Protocol = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    min_valid_mass: float = 0.5,
    variant: str = "plain",
    system_prompt: str | None = None,
    trigger: str | None = None,
    persona: str | None = None,
) -> Task:
    """P(sooner, smaller prize) on fresh now-or-later choices."""
    return behavior_task("myopia", form=form, items=items, seed=seed, method=method, protocol=protocol,
                         samples=samples, top_logprobs=top_logprobs, min_valid_mass=min_valid_mass,
                         variant=variant, system_prompt=system_prompt, trigger=trigger, persona=persona)


@task
def myopia_self_report(
    questions: str | None = None,
    method: Method = "auto",
    protocol: Protocol = "fast",
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
    """Myopia self-report questions (all, or `questions=id,id`), metrics per question."""
    return self_report_task("myopia", questions=questions, method=method, protocol=protocol, samples=samples,
                            top_logprobs=top_logprobs, paraphrases=paraphrases, permutations=permutations,
                            off_list=off_list, min_valid_mass=min_valid_mass, variant=variant,
                            system_prompt=system_prompt, trigger=trigger, persona=persona, bank=bank, judge=judge)
