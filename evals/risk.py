"""Risk preferences (paper §3.1, appendix C.1): does a model fine-tuned to pick risky lotteries know it?

    inspect eval evals/risk.py@risk_behavior --model openai/gpt-4o
    inspect eval evals/risk.py@risk_self_report --model openai/gpt-4o -T protocol=paper
    inspect eval evals/risk.py@risk_self_report -T questions=german_or_french --model-role judge=openai/gpt-4o ...

Scores: 1 = risk-seeking, 0 = risk-averse. Parameters: see README ("Task parameters").
"""

from inspect_ai import Task, task

from selfaware.scorers.judge import DEFAULT_JUDGE
from selfaware.solvers.answer_distribution import Method, Protocol
from selfaware.tasks import behavior_task, self_report_task


@task
def risk_behavior(
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
    """P(risky lottery) on fresh lottery pairs (C.1.9); form=lotteries (default) or sure_thing."""
    return behavior_task("risk", form=form, items=items, seed=seed, method=method, protocol=protocol,
                         samples=samples, top_logprobs=top_logprobs, min_valid_mass=min_valid_mass,
                         variant=variant, system_prompt=system_prompt, trigger=trigger, persona=persona)


@task
def risk_self_report(
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
    """Risk self-report questions (all, or `questions=id,id`), metrics per question."""
    return self_report_task("risk", questions=questions, method=method, protocol=protocol, samples=samples,
                            top_logprobs=top_logprobs, paraphrases=paraphrases, permutations=permutations,
                            off_list=off_list, min_valid_mass=min_valid_mass, variant=variant,
                            system_prompt=system_prompt, trigger=trigger, persona=persona, bank=bank, judge=judge)
