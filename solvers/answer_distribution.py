"""Eliciting an answer *distribution* rather than a single answer.

Two paths, chosen per sample and recorded in the log so every number says how it was produced:

* **logprobs** — one call with `max_tokens=1`, temperature 0 and the top-k logprobs; the distribution
  over normalised first tokens is stored. Exact and cheap where the provider returns logprobs and every
  valid answer is a single token (option letters, integers 0-100 on common tokenizers).
* **sampling** — `n` answers at temperature 1. Used for answers that span several tokens (words, free
  text), for providers without logprobs (Anthropic, reasoning models), and for the paper's protocol.

The solver only *elicits*; scorers interpret the stored distribution (valid keys, renormalisation,
invalid rates). That keeps one place for each concern and lets a log be re-scored offline.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from inspect_ai.model import ChatMessageAssistant, GenerateConfig, Model, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.solvers.answer_parsing import normalize_token

Method = Literal["auto", "logprobs", "sampling"]
Protocol = Literal["fast", "paper"]
STORE_KEY = "selfaware:answer"

# Answer lengths when sampling, by question type (a bank question may override with max_tokens).
DEFAULT_MAX_TOKENS = {"multiple_choice": 2, "rating": 4, "one_word": 6, "free_form_judged": 200}
# Question types whose valid answers are single tokens, so logprobs can be read exactly.
SINGLE_TOKEN_TYPES = {"multiple_choice", "rating"}
# Providers / model families known to return no logprobs: skip the wasted call and sample directly.
NO_LOGPROB_PREFIXES = ("anthropic/", "bedrock/anthropic", "vertex/claude", "openai/o1", "openai/o3",
                       "openai/o4", "openai/gpt-5", "google/gemini-2.5")


@dataclass
class Elicitation:
    """What the model said, as stored in the sample's store under STORE_KEY."""

    method: Literal["logprobs", "sampling"]
    requested: str  # the method asked for ("auto", "logprobs", "sampling")
    protocol: str
    token_probs: dict[str, float] = field(default_factory=dict)  # logprobs: normalised token -> prob
    samples: list[str] = field(default_factory=list)  # sampling: raw answer texts
    n: int = 1
    max_tokens: int = 1
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Elicitation":
        return cls(**d)


@dataclass(frozen=True)
class ElicitSettings:
    method: Method = "auto"
    protocol: Protocol = "fast"
    samples: int = 20  # n for the sampling path in the fast protocol
    top_logprobs: int = 20
    temperature: float = 1.0

    def samples_for(self, question_type: str) -> int:
        if self.protocol == "paper":
            # Paper: 100 samples per paraphrase; the free-form German/French task used 100 per model
            # over its ten rewordings, i.e. 10 per paraphrase.
            return 10 if question_type == "free_form_judged" else 100
        return self.samples

    def max_tokens_for(self, question_type: str, override: int | None) -> int:
        if self.protocol == "paper" and question_type in ("one_word", "rating", "multiple_choice"):
            return 4  # the paper samples up to 4 tokens for short answers
        return override or DEFAULT_MAX_TOKENS[question_type]

    def wants_logprobs(self, question_type: str, model_name: str) -> tuple[bool, str | None]:
        if self.method == "sampling":
            return False, None
        if self.method == "logprobs":
            return True, None
        if question_type not in SINGLE_TOKEN_TYPES:
            return False, f"{question_type} answers span several tokens"
        if self.protocol == "paper" and question_type != "multiple_choice":
            return False, "paper protocol samples ratings"
        if model_name.startswith(NO_LOGPROB_PREFIXES):
            return False, f"{model_name} returns no logprobs"
        return True, None


def validate_settings(method: str, protocol: str, samples: int, top_logprobs: int = 20) -> ElicitSettings:
    """Check task parameters with errors that name the parameter (used by every task)."""
    if method not in ("auto", "logprobs", "sampling"):
        raise ValueError(f"-T method={method!r}: expected one of auto, logprobs, sampling")
    if protocol not in ("fast", "paper"):
        raise ValueError(f"-T protocol={protocol!r}: expected fast or paper")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"-T samples={samples!r}: expected a positive integer")
    if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool) or top_logprobs < 1:
        raise ValueError(f"-T top_logprobs={top_logprobs!r}: expected a positive integer")
    return ElicitSettings(method=method, protocol=protocol, samples=samples,  # type: ignore[arg-type]
                          top_logprobs=top_logprobs)


def token_distribution(output: ModelOutput) -> dict[str, float] | None:
    """Normalised first-token distribution from top logprobs, or None when absent."""
    if not output.choices or output.choices[0].logprobs is None:
        return None
    content = output.choices[0].logprobs.content
    if not content:
        return None
    first = content[0]
    tops = first.top_logprobs or [first]  # some providers return only the chosen token
    probs: dict[str, float] = {}
    for t in tops:
        key = normalize_token(t.token)
        probs[key] = probs.get(key, 0.0) + math.exp(t.logprob)
    return probs


async def sample_answers(model: Model, messages: list, n: int, max_tokens: int, temperature: float) -> list[str]:
    """n sampled completions. Asks for `num_choices=n` (one request where the provider supports it)
    and tops up with single calls where it returned fewer."""
    config = GenerateConfig(temperature=temperature, max_tokens=max_tokens, num_choices=n)
    first = await model.generate(messages, config=config)
    texts = [c.message.text for c in first.choices][:n]
    missing = n - len(texts)
    if missing > 0:
        single = GenerateConfig(temperature=temperature, max_tokens=max_tokens)
        more = await asyncio.gather(*(model.generate(messages, config=single) for _ in range(missing)))
        texts += [o.completion for o in more]
    return texts


@solver
def answer_distribution(method: Method = "auto", protocol: Protocol = "fast", samples: int = 20,
                        top_logprobs: int = 20) -> Solver:
    """Elicit the answer distribution for a question (see module docstring).

    Args:
        method: "auto" picks logprobs for single-token answers on providers that return them and falls
            back to sampling when a response carries no logprobs; "logprobs" or "sampling" force a path.
        protocol: "fast" (default) or "paper" (the paper's sampling counts: 100 per paraphrase, 4 tokens).
        samples: answers drawn per sample on the sampling path in the fast protocol.
        top_logprobs: alternatives per token on the logprob path (OpenAI allows at most 20; local
            `hf/` models take more, which matters when a rating spreads over many integers).
    """
    settings = validate_settings(method, protocol, samples, top_logprobs)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        qtype = state.metadata["question_type"]
        model = get_model()
        use_logprobs, reason = settings.wants_logprobs(qtype, str(model))
        record: Elicitation | None = None
        if use_logprobs:
            config = GenerateConfig(max_tokens=1, temperature=0.0, logprobs=True,
                                    top_logprobs=settings.top_logprobs)
            output = await model.generate(state.messages, config=config)
            probs = token_distribution(output)
            state.output = output
            if probs is not None:
                record = Elicitation("logprobs", settings.method, settings.protocol, token_probs=probs)
            elif settings.method == "logprobs":
                # Forced logprobs but none came back: record an empty distribution (scored invalid).
                record = Elicitation("logprobs", settings.method, settings.protocol,
                                     fallback_reason="provider returned no logprobs")
            else:
                reason = "provider returned no logprobs"
        if record is None:
            n = settings.samples_for(qtype)
            max_tokens = settings.max_tokens_for(qtype, state.metadata.get("max_tokens"))
            texts = await sample_answers(model, state.messages, n, max_tokens, settings.temperature)
            record = Elicitation("sampling", settings.method, settings.protocol, samples=texts, n=n,
                                 max_tokens=max_tokens, fallback_reason=reason)
            state.output = ModelOutput.from_content(str(model), texts[0] if texts else "")
        state.messages.append(ChatMessageAssistant(content=state.output.completion, model=str(model)))
        state.store.set(STORE_KEY, record.to_dict())
        return state

    return solve
