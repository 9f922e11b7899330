"""Free-form answers classified by a judge model (an Inspect model role, never the model under test)."""

from __future__ import annotations

import asyncio

from inspect_ai.model import GenerateConfig, Model, get_model

# The paper judged answer languages with GPT-4o. Override with `--model-role judge=<model>`.
DEFAULT_JUDGE = "openai/gpt-4o-2024-08-06"
JUDGE_ROLE = "judge"


def judge_model(model_under_test: str) -> Model:
    """The judge role's model. Offline mock runs get a mock judge (explicitly, so that
    `inspect eval ... --model mockllm/model` needs no API key); everything else defaults to GPT-4o."""
    default = "mockllm/model" if model_under_test.startswith("mockllm/") else DEFAULT_JUDGE
    return get_model(role=JUDGE_ROLE, default=default)


async def judge_answers(answers: list[str], prompt: str, judge: Model) -> list[str]:
    """One verdict per answer, at temperature 0."""
    config = GenerateConfig(temperature=0.0, max_tokens=5)
    outputs = await asyncio.gather(
        *(judge.generate(prompt.replace("{answer}", a), config=config) for a in answers)
    )
    return [o.completion for o in outputs]
