"""Eliciting an answer *distribution* rather than a single answer.

Four paths, chosen per sample and recorded in the log (`method`) so every number says how it was produced:

* **exact** — local open models (`hf/`) and vLLM servers (`vllm/`): the probability of every listed
  candidate answer (option letters, every integer of the scale, every word of the family's lists) from one
  forward pass per candidate set, multi-token answers and the end of the reply included
  (`exact_scoring.py`); the probability no candidate covers is reported as `other`.
* **logprobs** — one call at temperature 0 with the top-k logprobs; the distribution over normalised
  first tokens is stored. Exact where the provider returns alternatives and every valid answer is a
  single token (option letters; integers on tokenizers that write each in-scale number as one token).
* **first_token** — one-word answers on APIs with logprobs: first tokens that settle the word's category
  count exactly, only the ambiguous rest is sampled (`first_token.py`).
* **sampling** — `n` answers at temperature 1. Used for free text, for providers without logprobs
  (Anthropic, reasoning models), and for the paper's protocol.

`method=auto` takes exact where the model can score given answers and the answers can be listed, the
first-token path for one-word answers on other providers, logprobs for letters and ratings, sampling for
the rest; `protocol=paper` keeps the paper's own sampling counts. Every record carries `covered_mass`, the
probability its answers account for (exact: the candidates; logprobs: the returned alternatives;
first_token: the identified tokens plus the sampled ambiguous mass; sampling: 1).

The logprob read is refused — `auto` then samples, forced `logprobs` records the reason and scores
invalid — whenever the first token cannot be the whole distribution:

* the response carries no logprobs, or only the chosen token's (no alternatives: its probability is not
  a distribution);
* more than `MAX_TAIL_MASS` of the probability lies outside the returned alternatives (renormalising
  over the visible ones would bias the answer towards the mode);
* a rating's first token may be the start of a longer number: tokenizers that split numbers into digits
  (Qwen2/2.5, Llama-2, Mistral) emit "70" as "7", "0". Detected when the chosen answer continues with a
  digit, or when mass sits on digits that begin in-scale numbers and no alternative is a multi-digit
  number (evidence that the tokenizer has such tokens).

What a model showed (no logprobs, digit-split numbers) is remembered per model for the task run, so a
model without logprobs is probed once, not on every sample.

The solver only *elicits*; scorers interpret the stored distribution (valid keys, renormalisation,
invalid rates). That keeps one place for each concern and lets a log be re-scored offline.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio
from inspect_ai.model import ChatMessageAssistant, GenerateConfig, Model, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.banks import load_words
from selfaware.solvers.answer_parsing import normalize_token
from selfaware.solvers.exact_scoring import (
    ExactScoringError,
    candidate_answers,
    candidate_scorer,
    exact_unavailable,
)
from selfaware.solvers.first_token import (
    FIRST_TOKEN_MAX_TOKENS,
    MIN_AMBIGUOUS_MASS,
    ambiguous_answers,
    draw_with_tokens,
    split_first_tokens,
    word_scores,
)

Method = Literal["auto", "logprobs", "sampling", "exact", "first_token"]
METHODS: tuple[str, ...] = ("auto", "logprobs", "sampling", "exact", "first_token")
Path = Literal["logprobs", "sampling", "exact", "first_token"]
Protocol = Literal["fast", "paper"]
STORE_KEY = "selfaware:answer"

# Answer lengths when sampling, by question type (a bank question may override with max_tokens).
DEFAULT_MAX_TOKENS = {"multiple_choice": 2, "rating": 4, "one_word": 6, "free_form_judged": 200}
# Question types whose valid answers can be single tokens, so logprobs can be read exactly.
SINGLE_TOKEN_TYPES = {"multiple_choice", "rating"}
# Providers / model families known to return no logprobs: skip the wasted call and sample directly.
NO_LOGPROB_PREFIXES = ("anthropic/", "bedrock/anthropic", "vertex/claude", "openai/o1", "openai/o3",
                       "openai/o4", "openai/gpt-5", "google/gemini-2.5")
# More probability than this outside the returned top-k alternatives and the first-token read is refused:
# renormalising over what is visible would silently favour the mode.
MAX_TAIL_MASS = 0.05
# Up to this much first-token mass may sit on digits that could begin a longer number before the rating
# read is refused (rounding noise on multi-digit tokenizers; a digit-split tokenizer puts most mass there).
MAX_PREFIX_MASS = 0.01
# Rating reads ask for two tokens: the second shows whether the chosen number continues ("7" then "0").
RATING_LOGPROB_TOKENS = 2


@dataclass
class Elicitation:
    """What the model said, as stored in the sample's store under STORE_KEY."""

    method: Path
    requested: str  # the method asked for ("auto", "logprobs", "sampling", "exact", "first_token")
    protocol: str
    token_probs: dict[str, float] = field(default_factory=dict)  # logprobs: normalised token -> prob
    samples: list[str] = field(default_factory=list)  # sampling: raw answer texts
    n: int = 1
    max_tokens: int = 1
    fallback_reason: str | None = None  # why this path (sampling) or why no distribution (logprobs)
    tail_mass: float = 0.0  # logprobs: probability outside the returned alternatives
    # exact: candidate text -> P(reply is that text); first_token: identified first token -> probability
    answer_probs: dict[str, float] = field(default_factory=dict)
    sample_mass: float = 1.0  # the probability `samples` stand for (first_token: the ambiguous mass)
    covered_mass: float | None = None  # probability the recorded answers account for (None: older logs)
    cost: dict[str, Any] = field(default_factory=dict)  # exact: backend, prompt / scored tokens, passes

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

    def choose_path(self, question_type: str, model_name: str, *, exact_ready: bool, listable: bool,
                    has_words: bool) -> tuple[Path, str | None]:
        """The path for one sample, and why it is not a cheaper or more exact one where that matters.

        exact_ready: the model can score given answers (hf/, vllm/); listable: the valid answers of this
        question can be listed; has_words: a one-word question with word lists."""
        method, qtype = self.method, question_type
        if method in ("sampling", "logprobs"):
            return method, None
        if method == "exact":
            return ("exact", None) if listable else ("sampling", f"{qtype} answers cannot be listed for exact scoring")
        if method == "first_token":
            if qtype == "one_word" and has_words:
                return "first_token", None
            if qtype in SINGLE_TOKEN_TYPES:
                return "logprobs", None  # letters and ratings: the first token is the answer
            return "sampling", f"{qtype} answers have no first-token reading"
        if self.protocol == "fast" and exact_ready and listable:
            return "exact", None
        if qtype == "one_word" and has_words and self.protocol == "fast" and not model_name.startswith(NO_LOGPROB_PREFIXES):
            return "first_token", None
        if qtype not in SINGLE_TOKEN_TYPES:
            return "sampling", f"{qtype} answers span several tokens"
        if self.protocol == "paper" and qtype != "multiple_choice":
            return "sampling", "paper protocol samples ratings"
        if model_name.startswith(NO_LOGPROB_PREFIXES):
            return "sampling", f"{model_name} returns no logprobs"
        return "logprobs", None


def validate_settings(method: str, protocol: str, samples: int, top_logprobs: int = 20) -> ElicitSettings:
    """Check task parameters with errors that name the parameter (used by every task)."""
    if method not in METHODS:
        raise ValueError(f"-T method={method!r}: expected one of {', '.join(METHODS)}")
    if protocol not in ("fast", "paper"):
        raise ValueError(f"-T protocol={protocol!r}: expected fast or paper")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"-T samples={samples!r}: expected a positive integer")
    if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool) or top_logprobs < 1:
        raise ValueError(f"-T top_logprobs={top_logprobs!r}: expected a positive integer")
    return ElicitSettings(method=method, protocol=protocol, samples=samples,  # type: ignore[arg-type]
                          top_logprobs=top_logprobs)


# --- reading the first token -------------------------------------------------------------------

@dataclass(frozen=True)
class FirstToken:
    """The first generated position of a logprob response."""

    probs: dict[str, float] | None  # normalised token -> probability; None when unusable
    problem: str | None = None  # why `probs` is None
    no_logprobs: bool = False  # the provider gave no logprobs / no alternatives at all (a model trait)
    tail_mass: float = 0.0
    chosen: tuple[str, ...] = ()  # the chosen tokens (raw), first few positions


def read_first_token(output: ModelOutput) -> FirstToken:
    """The first-token distribution of a response, or why there is none."""
    if not output.choices or output.choices[0].logprobs is None or not output.choices[0].logprobs.content:
        return FirstToken(None, "provider returned no logprobs", no_logprobs=True)
    content = output.choices[0].logprobs.content
    first = content[0]
    if not first.top_logprobs:
        # Only the chosen token's logprob: one number, not a distribution over answers.
        return FirstToken(None, "provider returned only the chosen token's logprob (no alternatives)",
                          no_logprobs=True)
    probs: dict[str, float] = {}
    for t in first.top_logprobs:
        key = normalize_token(t.token)
        probs[key] = probs.get(key, 0.0) + math.exp(t.logprob)
    tail = max(0.0, 1.0 - sum(probs.values()))
    return FirstToken(probs, tail_mass=tail, chosen=tuple(c.token for c in content[:RATING_LOGPROB_TOKENS]))


def number_prefixes(lo: int, hi: int) -> set[str]:
    """Digit strings that are a proper prefix of some integer in [lo, hi] ("7" for 70 on 0..100)."""
    out: set[str] = set()
    for n in range(max(lo, 0), hi + 1):
        text = str(n)
        out.update(text[:i] for i in range(1, len(text)))
    return out


def _is_number(key: str) -> bool:
    return key.isdigit()


def _continues_number(chosen: tuple[str, ...]) -> bool:
    """The chosen answer is a number whose next token is another digit: "7", "0" (no space between)."""
    if len(chosen) < 2:
        return False
    first, second = normalize_token(chosen[0]), chosen[1]
    return _is_number(first) and second[:1].isdigit()


def multi_digit_evidence(probs: dict[str, float]) -> bool:
    """An alternative that is a number of two or more digits shows the tokenizer writes such numbers as
    one token, so a single digit there stands for itself (canonical BPE would have merged "70")."""
    return any(_is_number(k) and len(k) > 1 for k in probs)


def rating_problem(read: FirstToken, lo: int, hi: int, multi_digit_known: bool) -> str | None:
    """Why the first-token distribution cannot represent the integer scale lo..hi, or None if it can."""
    assert read.probs is not None
    if _continues_number(read.chosen):
        shown = "".join(normalize_token(c) if i == 0 else c for i, c in enumerate(read.chosen))
        return (f"the chosen rating continues past its first token ({' + '.join(map(repr, read.chosen))} = "
                f"{shown!r}): numbers are split into several tokens, so the first token cannot represent "
                f"the {lo}..{hi} scale")
    prefixes = number_prefixes(lo, hi)
    prefix_mass = sum(p for k, p in read.probs.items() if k in prefixes)
    if prefix_mass > MAX_PREFIX_MASS and not (multi_digit_known or multi_digit_evidence(read.probs)):
        return (f"{prefix_mass:.3f} of the first-token probability is on digits that may begin a longer "
                f"number and no alternative is a multi-digit number: the tokenizer may split numbers into "
                f"digits, so the first token cannot represent the {lo}..{hi} scale")
    return None


def logprob_problem(read: FirstToken, question_type: str, scale: dict | None,
                    traits: "ModelTraits") -> str | None:
    """Why this logprob response cannot be taken as the answer distribution, or None."""
    if read.probs is None:
        return read.problem
    if read.tail_mass > MAX_TAIL_MASS:
        return (f"the top alternatives cover only {1 - read.tail_mass:.3f} of the probability "
                f"(more than {MAX_TAIL_MASS} outside them); raise top_logprobs")
    if question_type == "rating" and scale is not None:
        return rating_problem(read, int(scale["min"]), int(scale["max"]), traits.multi_digit_tokens)
    return None


# --- what a model showed, remembered for the task run ----------------------------------------

@dataclass
class ModelTraits:
    """Learned from a model's responses, so that it is probed once rather than on every sample."""

    no_logprobs: str | None = None  # reason, once a response came back without usable logprobs
    split_numbers: str | None = None  # reason, once a rating could not be read from its first token
    multi_digit_tokens: bool = False  # an alternative showed a multi-digit number token
    probed: bool = False  # a logprob response has been seen
    lock: anyio.Lock | None = None  # serialises the first probe

    def learn(self, read: FirstToken, problem: str | None, question_type: str) -> None:
        self.probed = True
        if read.no_logprobs:
            self.no_logprobs = read.problem
            return
        if read.probs is not None and multi_digit_evidence(read.probs):
            self.multi_digit_tokens = True
        if question_type == "rating" and problem is not None and read.tail_mass <= MAX_TAIL_MASS \
                and not self.multi_digit_tokens:
            self.split_numbers = problem

    def skip_reason(self, question_type: str) -> str | None:
        """Why a logprob call would be wasted on this model, from what it showed before."""
        if self.no_logprobs:
            return f"{self.no_logprobs} (learned from an earlier sample)"
        if question_type == "rating" and self.split_numbers:
            return f"{self.split_numbers} (learned from an earlier sample)"
        return None


class TraitMemo:
    """ModelTraits per model object (weak keys: a finished eval's model does not leak into the next)."""

    def __init__(self) -> None:
        self._traits: weakref.WeakKeyDictionary[Model, ModelTraits] = weakref.WeakKeyDictionary()

    def get(self, model: Model) -> ModelTraits:
        traits = self._traits.get(model)
        if traits is None:
            traits = self._traits[model] = ModelTraits()
        if traits.lock is None:
            traits.lock = anyio.Lock()
        return traits


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
        method: "auto" takes exact candidate scoring on hf/ and vllm/ models, the first-token path for
            one-word answers and logprobs for single-token answers on providers that return them, and
            samples when a response cannot be read as a distribution (no logprobs, no alternatives, too
            much mass outside them, a rating split over several tokens); "exact", "first_token" and
            "logprobs" force that path (unreadable responses are then recorded with the reason and score
            invalid; "exact" on a provider that cannot score given answers is an error); "sampling" always
            samples.
        protocol: "fast" (default) or "paper" (the paper's sampling counts: 100 per paraphrase, 4 tokens).
        samples: answers drawn per sample on the sampling path in the fast protocol (first_token: at most
            this many, to resolve the ambiguous mass).
        top_logprobs: alternatives per token on the logprob and first-token paths (OpenAI allows at most
            20; local `hf/` models take more, which matters when a rating spreads over many integers).
    """
    settings = validate_settings(method, protocol, samples, top_logprobs)
    memo = TraitMemo()

    async def logprob_read(model: Model, state: TaskState, qtype: str, traits: ModelTraits,
                           path: Path) -> tuple[FirstToken, str | None]:
        max_tokens = RATING_LOGPROB_TOKENS if qtype == "rating" else FIRST_TOKEN_MAX_TOKENS if path == "first_token" else 1
        config = GenerateConfig(max_tokens=max_tokens, temperature=0.0, logprobs=True,
                                top_logprobs=settings.top_logprobs)
        output = await model.generate(state.messages, config=config)
        state.output = output
        read = read_first_token(output)
        # The first-token path samples whatever the alternatives miss: only a missing distribution is a problem.
        problem = read.problem if path == "first_token" else logprob_problem(read, qtype, state.metadata.get("scale"), traits)
        traits.learn(read, problem, qtype)
        return read, problem

    async def probe(model: Model, state: TaskState, qtype: str, path: Path) -> tuple[FirstToken, str | None] | str:
        """A logprob read, or the reason (learned from an earlier sample) why one would be wasted. The
        first read of a model runs alone, so the samples queued behind it learn from it."""
        traits = memo.get(model)
        skip = traits.skip_reason(qtype) if settings.method == "auto" else None
        if skip is not None:
            return skip
        if not traits.probed:
            assert traits.lock is not None
            async with traits.lock:
                if not traits.probed:
                    return await logprob_read(model, state, qtype, traits, path)
            skip = traits.skip_reason(qtype) if settings.method == "auto" else None
            if skip is not None:
                return skip
        return await logprob_read(model, state, qtype, traits, path)

    def new(path: Path, **fields: Any) -> Elicitation:
        return Elicitation(path, settings.method, settings.protocol, **fields)

    async def read_logprobs(model: Model, state: TaskState, qtype: str) -> Elicitation | str:
        outcome = await probe(model, state, qtype, "logprobs")
        if isinstance(outcome, str):
            return outcome
        read, problem = outcome
        if problem is None:
            assert read.probs is not None
            return new("logprobs", token_probs=read.probs, tail_mass=read.tail_mass, covered_mass=1 - read.tail_mass)
        if settings.method == "logprobs":
            # Forced logprobs that cannot be read: no distribution, with the reason (scored invalid).
            return new("logprobs", fallback_reason=problem, tail_mass=read.tail_mass, covered_mass=0.0)
        return problem

    async def read_first_tokens(model: Model, state: TaskState) -> Elicitation | str:
        outcome = await probe(model, state, "one_word", "first_token")
        if isinstance(outcome, str):
            return outcome
        read, problem = outcome
        if problem is not None:
            if settings.method == "first_token":
                return new("first_token", fallback_reason=problem, covered_mass=0.0)
            return problem
        assert read.probs is not None
        words = load_words(state.metadata["family"]).lists[state.metadata["words"]]
        split = split_first_tokens(read.probs, read.chosen, word_scores(words))
        fields: dict[str, Any] = {"answer_probs": split.identified, "tail_mass": read.tail_mass, "n": 0,
                                  "sample_mass": split.ambiguous_mass, "covered_mass": 1 - split.ambiguous_mass}
        if split.ambiguous_mass > MIN_AMBIGUOUS_MASS:
            n = settings.samples_for("one_word")
            max_tokens = settings.max_tokens_for("one_word", state.metadata.get("max_tokens"))
            draws = await draw_with_tokens(model, state.messages, n, max_tokens, settings.temperature)
            if not draws.tokens_known:
                return new("sampling", samples=draws.texts, n=n, max_tokens=max_tokens,
                           fallback_reason="the provider returned sampled answers without their tokens, so the "
                                           "ambiguous first-token mass could not be isolated", covered_mass=1.0)
            ambiguous = ambiguous_answers(draws, split)
            fields.update(samples=ambiguous, n=n, max_tokens=max_tokens)
            if ambiguous:
                fields["covered_mass"] = 1.0
        return new("first_token", **fields)

    async def read_exact(model: Model, state: TaskState, answers: list[str]) -> Elicitation:
        scorer = candidate_scorer(model)
        if scorer is None:
            raise ExactScoringError(exact_unavailable(model))
        read = await scorer.score(state.messages, answers)
        return new("exact", answer_probs=read.probs, covered_mass=read.covered_mass,
                   cost={"backend": read.backend, "prompt_tokens": read.prompt_tokens,
                         "scored_tokens": read.scored_tokens, "candidates": len(answers),
                         "passes": read.passes, "requests": read.requests})

    async def sample(model: Model, state: TaskState, qtype: str, reason: str | None) -> Elicitation:
        n = settings.samples_for(qtype)
        max_tokens = settings.max_tokens_for(qtype, state.metadata.get("max_tokens"))
        texts = await sample_answers(model, state.messages, n, max_tokens, settings.temperature)
        state.output = ModelOutput.from_content(str(model), texts[0] if texts else "")
        return new("sampling", samples=texts, n=n, max_tokens=max_tokens, fallback_reason=reason, covered_mass=1.0)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        qtype = state.metadata["question_type"]
        model = get_model()
        answers = candidate_answers(state.metadata)
        path, reason = settings.choose_path(
            qtype, str(model), exact_ready=candidate_scorer(model) is not None, listable=answers is not None,
            has_words=qtype == "one_word" and bool(state.metadata.get("words")))
        record: Elicitation | str | None = reason
        if path == "exact":
            assert answers is not None
            record = await read_exact(model, state, answers)
            state.output = ModelOutput.from_content(str(model), max(record.answer_probs, key=record.answer_probs.get))
        elif path == "first_token":
            record = await read_first_tokens(model, state)
        elif path == "logprobs":
            record = await read_logprobs(model, state, qtype)
        if not isinstance(record, Elicitation):
            record = await sample(model, state, qtype, record)
        state.messages.append(ChatMessageAssistant(content=state.output.completion, model=str(model)))
        state.store.set(STORE_KEY, record.to_dict())
        return state

    return solve
