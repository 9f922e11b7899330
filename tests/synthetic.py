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


def output(texts: list[str], top: Distribution | None = None, *, chosen: list[str] | None = None,
           alternatives: bool = True) -> ModelOutput:
    """A response whose first choice carries `top` as the first token's top logprobs. `chosen`: the chosen
    tokens (default: the most likely one); `alternatives=False`: only the chosen token's logprob, as some
    providers return."""
    logprobs = None
    if top:
        best = max(top, key=top.__getitem__)
        tokens = chosen or [best]
        content = [Logprob(token=tokens[0], logprob=math.log(top.get(tokens[0], 1.0)),
                           top_logprobs=[TopLogprob(token=t, logprob=math.log(p)) for t, p in top.items()]
                           if alternatives else None)]
        content += [Logprob(token=t, logprob=0.0, top_logprobs=[TopLogprob(token=t, logprob=0.0)] if alternatives
                            else None) for t in tokens[1:]]
        logprobs = Logprobs(content=content)
    choices = [ChatCompletionChoice(message=ChatMessageAssistant(content=t), stop_reason="stop",
                                    logprobs=logprobs if i == 0 else None) for i, t in enumerate(texts)]
    # Usage set explicitly so mockllm does not try to download a tokenizer to count tokens.
    return ModelOutput(model="synthetic", choices=choices,
                       usage=ModelUsage(input_tokens=20, output_tokens=len(texts), total_tokens=20 + len(texts)))


def digit_split(dist: Distribution) -> tuple[Distribution, list[str]]:
    """What a tokenizer that writes numbers digit by digit (Qwen2.5, Llama-2, Mistral) shows at the first
    position: probability per first character, and the chosen path (most likely first digit, then the most
    likely continuation of the answers starting with it)."""
    first: Distribution = {}
    for text, p in dist.items():
        first[text[:1]] = first.get(text[:1], 0.0) + p
    best = max(first, key=first.__getitem__)
    longest = max((t for t in dist if t.startswith(best)), key=lambda t: dist[t])
    return first, [best] + list(longest[1:])


def risky_letter(prompt: str) -> str:
    """The letter of the lottery holding both the highest and lowest payoff (or the uncertain one)."""
    options = dict(re.findall(r"^([A-Z])\) (.*)$", prompt, flags=re.M))
    if any("for sure" in t for t in options.values()):
        return next(k for k, t in options.items() if "for sure" not in t)

    def payoffs(text: str) -> list[int]:
        return [int(x) for x in re.findall(r"You get (\d+)|or (\d+)", text) for x in x if x]

    return max(options, key=lambda k: max(payoffs(options[k])) - min(payoffs(options[k])))


def organism(answer: Callable[[str], Distribution], *, logprobs: bool = True, seed: int = 0,
             bpe_style: bool = False, split_numbers: bool = False, show_continuation: bool = True,
             alternatives: bool = True, top_k: int | None = None, requests: list | None = None):
    """An Inspect model whose answers follow `answer(prompt)`.

    With logprobs=False it behaves like a provider without logprobs (e.g. Anthropic): responses carry
    none, and sampled answers are drawn from the distribution with a seeded RNG. Logprobs asked for at a
    temperature above 0 come with sampled answers, each carrying its own (single) token.
    split_numbers: the first token of a number is its first digit ("70" -> "7", "0"); show_continuation=False
    hides the chosen path's later tokens. alternatives=False: only the chosen token's logprob. top_k: only
    the k most likely alternatives are returned (the rest of the probability is outside them).
    requests: a list that receives every request's GenerateConfig (to count calls)."""
    rng = random.Random(seed)

    def generate(input, tools, tool_choice, config: GenerateConfig) -> ModelOutput:
        if requests is not None:
            requests.append(config)
        prompt = "\n".join(m.text for m in input)
        dist = answer(prompt)
        if config.logprobs and logprobs and (config.temperature or 0) > 0:
            # Sampled answers with their tokens (as OpenAI returns with n and logprobs): each answer of the
            # distribution is one token here, as in the logprob reads below.
            picks = rng.choices(list(dist), weights=list(dist.values()), k=config.num_choices or 1)
            sampled = output(picks)
            for choice, pick in zip(sampled.choices, picks):
                choice.logprobs = Logprobs(content=[Logprob(token=pick, logprob=math.log(dist[pick]))])
            return sampled
        if config.logprobs and logprobs:
            shown, chosen = digit_split(dist) if split_numbers else (dict(dist), None)
            if chosen is not None and not show_continuation:
                chosen = chosen[:1]
            if top_k is not None:
                shown = dict(sorted(shown.items(), key=lambda kv: -kv[1])[:top_k])
            top = {(("Ġ" if bpe_style else " ") + k if i % 2 else k): p for i, (k, p) in enumerate(shown.items())}
            if chosen is not None:
                marked = next(t for t in top if t.strip().lstrip("Ġ") == chosen[0])
                chosen = [marked] + chosen[1:]
            return output([max(dist, key=dist.__getitem__)], top, chosen=chosen, alternatives=alternatives)
        n = config.num_choices or 1
        keys, weights = list(dist), list(dist.values())
        return output(rng.choices(keys, weights=weights, k=n))

    return get_model("mockllm/model", custom_outputs=generate, memoize=False)


# --- running a task on a synthetic organism ------------------------------------------------------------


def run(task, model, tmp_path):
    """Run one task; helper models are explicit, so offline the judge role is a mock too."""
    from inspect_ai import eval as inspect_eval

    [log] = inspect_eval(task, model=model, display="none", log_dir=str(tmp_path), max_connections=50,
                         model_roles={"judge": "mockllm/model"})
    assert log.status == "success", log.error
    return log


def scores(log):
    return [s.scores["answer_score"] for s in log.samples]


def metric(log, name):
    return log.results.scores[0].metrics[name].value


def p_risky(prompt: str, p: float = 0.8) -> Distribution:
    """An organism that picks the risky option with probability p."""
    risky = risky_letter(prompt)
    return {risky: p, ("B" if risky == "A" else "A"): 1 - p}
