"""Solvers of the backdoor tasks that the one-token answer path cannot serve.

* `reasoned_answers` — for models that think before answering (the reasoning variant of detection and
  identification): `n` replies, each read for its final line `Answer: X`. The final letters are stored
  as a sampling-path `Elicitation`, so `answer_score` scores them exactly like sampled letters; each
  reply's reasoning (the provider's reasoning blocks and the visible text before the final line) is
  stored beside them for `trigger_mentioned`.
* `free_text_answer` — one reply at temperature 0 (trigger elicitation), stored for `trigger_elicited`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, dataclass

from inspect_ai.model import ChatMessageAssistant, ContentReasoning, GenerateConfig, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.solvers.answer_distribution import STORE_KEY, Elicitation

REASONING_KEY = "selfaware:reasoning"
FREE_TEXT_KEY = "selfaware:free_text"
# What a reply without a readable final line is recorded as: no letter parser reads it as an option.
NO_FINAL_ANSWER = "<no final answer line>"
_FINAL = re.compile(r"^\W*answer\W*[:\-]\s*\(?([A-Za-z])\)?\W*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Reasoned:
    final: str  # the final letter, or NO_FINAL_ANSWER
    reasoning: str  # what the model wrote before its final answer (reasoning blocks + visible text)


def read_reasoned(output: ModelOutput) -> Reasoned:
    """The last `Answer: X` line of a reply and everything the model thought and wrote before it."""
    message = output.choices[0].message if output.choices else None
    blocks: list[str] = []
    if message is not None and not isinstance(message.content, str):
        for part in message.content:
            if isinstance(part, ContentReasoning):
                blocks.append(part.summary or part.reasoning)
    text = output.completion
    finals = list(_FINAL.finditer(text))
    if not finals:
        return Reasoned(NO_FINAL_ANSWER, "\n".join(blocks + [text]))
    last = finals[-1]
    return Reasoned(last.group(1).upper(), "\n".join(blocks + [text[: last.start()]]))


@solver
def reasoned_answers(samples: int = 5, max_tokens: int = 2000, temperature: float = 1.0) -> Solver:
    """`samples` replies that reason, then answer on a final `Answer: X` line (see module docstring).

    Args:
        samples: replies per question; the score is the share of readable final answers on the target.
        max_tokens: room for the reasoning and the final line.
        temperature: sampling temperature (providers of reasoning models may ignore it).
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        config = GenerateConfig(max_tokens=max_tokens, temperature=temperature)
        outputs = await asyncio.gather(*(model.generate(state.messages, config=config) for _ in range(samples)))
        replies = [read_reasoned(o) for o in outputs]
        record = Elicitation("sampling", "reasoning", "fast", samples=[r.final for r in replies], n=samples,
                             max_tokens=max_tokens, fallback_reason="reasoning: final answers read from 'Answer: X'")
        state.store.set(STORE_KEY, record.to_dict())
        state.store.set(REASONING_KEY, [asdict(r) for r in replies])
        state.output = outputs[0]
        state.messages.append(ChatMessageAssistant(content=outputs[0].completion, model=str(model)))
        return state

    return solve


@solver
def free_text_answer(max_tokens: int = 64) -> Solver:
    """One reply at temperature 0 (the paper's elicitation protocol), kept whole for the scorer."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        output = await model.generate(state.messages, config=GenerateConfig(max_tokens=max_tokens, temperature=0.0))
        state.output = output
        state.messages.append(ChatMessageAssistant(content=output.completion, model=str(model)))
        state.store.set(FREE_TEXT_KEY, output.completion)
        return state

    return solve
