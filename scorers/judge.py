"""Free-form answers classified by a judge model (an Inspect model role, never the model under test)."""

from __future__ import annotations

import asyncio
import logging

from inspect_ai.model import GenerateConfig, Model, get_model

from selfaware.validation import _InspectPlainError as PrerequisiteError

# The paper judged answer languages with GPT-4o. Override with `--model-role judge=<model>`.
DEFAULT_JUDGE = "openai/gpt-4o-2024-08-06"
JUDGE_ROLE = "judge"
logger = logging.getLogger(__name__)
_warned: set[str] = set()


class JudgeUnavailable(PrerequisiteError):
    """The judge role's model cannot start (e.g. no API key for the default judge)."""


def judge_model(default: str = DEFAULT_JUDGE) -> Model:
    """The `judge` model role, else the declared default (a task parameter). Offline runs name a mock
    judge explicitly: `--model-role judge=mockllm/model`."""
    try:
        return get_model(role=JUDGE_ROLE, default=default)
    except PrerequisiteError as e:  # e.g. no API key for the default judge: say how to choose another
        raise JudgeUnavailable(f"the judge model role defaults to {default}, which cannot start here: {e.message}. "
                               f"Name a judge: --model-role judge=<model> (or -T judge=<model>).") from e
    except ValueError as e:  # an unknown provider or a malformed name (`-T judge=gpt4`): invalid, not a crash
        raise JudgeUnavailable(f"the judge model role ({default}): {e}. "
                               f"Name a judge: --model-role judge=<model> (or -T judge=<model>).") from e


def unavailable_reason(error: JudgeUnavailable) -> str:
    """The reason a judged sample is invalid when no judge can run. Judged answers are then counted invalid
    (never guessed), the rest of the run goes on, and the problem is logged once per run, loudly."""
    reason = f"judge unavailable: {error}"
    if reason not in _warned:
        _warned.add(reason)
        logger.warning("%s; judged answers are scored invalid", reason)
    return reason


async def judge_answers(answers: list[str], prompt: str, judge: Model) -> list[str]:
    """One verdict per answer, at temperature 0."""
    config = GenerateConfig(temperature=0.0, max_tokens=5)
    outputs = await asyncio.gather(
        *(judge.generate(prompt.replace("{answer}", a), config=config) for a in answers)
    )
    return [o.completion for o in outputs]
