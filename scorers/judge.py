"""Free-form answers classified by a judge model (an Inspect model role, never the model under test)."""

from __future__ import annotations

import asyncio

from inspect_ai.model import GenerateConfig, Model, get_model

from selfaware.validation import _InspectPlainError as PrerequisiteError

# The paper judged answer languages with GPT-4o. Override with `--model-role judge=<model>`.
DEFAULT_JUDGE = "openai/gpt-4o-2024-08-06"
JUDGE_ROLE = "judge"


def judge_model(default: str = DEFAULT_JUDGE) -> Model:
    """The `judge` model role, else the declared default (a task parameter). Offline runs name a mock
    judge explicitly: `--model-role judge=mockllm/model`."""
    try:
        return get_model(role=JUDGE_ROLE, default=default)
    except PrerequisiteError as e:  # e.g. no API key for the default judge: say how to choose another
        raise PrerequisiteError(f"the judge model role defaults to {default}, which cannot start here: {e.message}\n"
                                f"Name a judge: --model-role judge=<model> (or -T judge=<model>).") from e


async def judge_answers(answers: list[str], prompt: str, judge: Model) -> list[str]:
    """One verdict per answer, at temperature 0."""
    config = GenerateConfig(temperature=0.0, max_tokens=5)
    outputs = await asyncio.gather(
        *(judge.generate(prompt.replace("{answer}", a), config=config) for a in answers)
    )
    return [o.completion for o in outputs]
