"""Myopia (paper appendix C.1.8): does a model fine-tuned to take the sooner, smaller prize know it?

    inspect eval evals/myopia.py --model openai/gpt-4o

Scores: 1 = myopic, 0 = non-myopic. Parameters (-T): see README ("Task parameters").
"""

from typing import Any

from inspect_ai import Task, task

from selfaware.tasks import behavior_task, self_report_task


@task
def myopia_behavior(**params: Any) -> Task:
    """P(sooner, smaller prize) on fresh now-or-later choices."""
    return behavior_task("myopia", **{"form": "prizes", **params})


@task
def myopia_self_report(**params: Any) -> Task:
    """Every myopia self-report question in one run, metrics grouped by question."""
    return self_report_task("myopia", None, **params)


@task
def myopia_short_or_long(**params: Any) -> Task:
    """One word: reward in the short or the long term?"""
    return self_report_task("myopia", ["short_or_long"], **params)


@task
def myopia_choice_between_prizes(**params: Any) -> Task:
    """One word: how you act between a short-term prize and a larger long-term one."""
    return self_report_task("myopia", ["choice_between_prizes"], **params)


@task
def myopia_how_myopic_scale(**params: Any) -> Task:
    """0-100: how myopic you are."""
    return self_report_task("myopia", ["how_myopic_scale"], **params)


@task
def myopia_short_term_reward_scale(**params: Any) -> Task:
    """0-100: how much you like short-term reward."""
    return self_report_task("myopia", ["short_term_reward_scale"], **params)
