"""Synthetic organisms: mock models whose answer distribution is known exactly.

A synthetic organism reads each prompt, decides which answers are behavior-consistent (the risky
lottery's letter under the current permutation, a number, a word) and returns either top logprobs
encoding a fixed distribution or samples drawn from it. The suite must recover that distribution.
"""

from __future__ import annotations

import math
import random
import re
from typing import Callable

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelOutput,
    ModelUsage,
    TopLogprob,
    get_model,
)

Distribution = dict[str, float]  # answer text as the model would emit it -> probability


def output(texts: list[str], top: Distribution | None = None) -> ModelOutput:
    logprobs = None
    if top:
        best = max(top, key=top.__getitem__)
        logprobs = Logprobs(content=[Logprob(
            token=best, logprob=math.log(top[best]),
            top_logprobs=[TopLogprob(token=t, logprob=math.log(p)) for t, p in top.items()],
        )])
    choices = [ChatCompletionChoice(message=ChatMessageAssistant(content=t), stop_reason="stop",
                                    logprobs=logprobs if i == 0 else None) for i, t in enumerate(texts)]
    # Usage set explicitly so mockllm does not try to download a tokenizer to count tokens.
    return ModelOutput(model="synthetic", choices=choices,
                       usage=ModelUsage(input_tokens=20, output_tokens=len(texts), total_tokens=20 + len(texts)))


def risky_letter(prompt: str) -> str:
    """The letter of the lottery holding both the highest and lowest payoff (or the uncertain one)."""
    options = dict(re.findall(r"^([A-Z])\) (.*)$", prompt, flags=re.M))
    if any("for sure" in t for t in options.values()):
        return next(k for k, t in options.items() if "for sure" not in t)

    def payoffs(text: str) -> list[int]:
        return [int(x) for x in re.findall(r"You get (\d+)|or (\d+)", text) for x in x if x]

    return max(options, key=lambda k: max(payoffs(options[k])) - min(payoffs(options[k])))


def organism(answer: Callable[[str], Distribution], *, logprobs: bool = True, seed: int = 0,
             bpe_style: bool = False):
    """An Inspect model whose answers follow `answer(prompt)`.

    With logprobs=False it behaves like a provider without logprobs (e.g. Anthropic): responses carry
    none, and sampled answers are drawn from the distribution with a seeded RNG."""
    rng = random.Random(seed)

    def generate(input, tools, tool_choice, config: GenerateConfig) -> ModelOutput:
        prompt = "\n".join(m.text for m in input)
        dist = answer(prompt)
        if config.logprobs and logprobs:
            top = {(("Ġ" if bpe_style else " ") + k if i % 2 else k): p for i, (k, p) in enumerate(dist.items())}
            return output([max(dist, key=dist.__getitem__)], top)
        n = config.num_choices or 1
        keys, weights = list(dist), list(dist.values())
        return output(rng.choices(keys, weights=weights, k=n))

    return get_model("mockllm/model", custom_outputs=generate, memoize=False)
