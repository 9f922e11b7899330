"""What a run will cost, before it runs: requests and tokens per task from its samples, times a price table.

Tokens are estimated, not counted: a prompt is its characters / 4 plus a few tokens of chat framing. Per
sample of a bank or behavior question (sample metadata `question_type`):

* the path is the one the solver will take (`ElicitSettings.choose_path`, from the method, protocol, provider
  and question): local models (`hf/`, `vllm/`) score listed answers exactly, one prompt read and nothing
  generated; multiple choice and 0-100 ratings are otherwise read from logprobs in one request (1 and 2
  output tokens), unless `method=sampling`, the paper protocol samples the rating, or the provider returns
  no logprobs;
* one-word answers on APIs with logprobs take the first-token path: one logprob read, then at most `n`
  draws for the ambiguous mass (none when under 1% is ambiguous), estimated at that upper bound;
* otherwise `n` answers are sampled (`-T samples`, or the paper protocol's counts) of at most the question's
  token budget: one request with `n` choices where the provider takes `n` (its input billed once), else `n`
  requests; judged free-form answers add one judge call per answer.

Tasks whose samples carry no question type (games, code) are estimated at one request per sample and epoch
with the task's `max_tokens` (512 if unset), and marked rough: helper models they call are not counted.
Prices come from `datasets/prices.yaml` (versioned; first matching pattern wins); a model with no price is
reported as unknown, never as free.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selfaware.solvers.answer_distribution import DEFAULT_MAX_TOKENS, validate_settings

CHARS_PER_TOKEN = 4
FRAMING_TOKENS = 8  # chat-format overhead per request
JUDGE_PROMPT_TOKENS = 150  # the judge's instructions around the answer
JUDGE_OUTPUT_TOKENS = 5
GENERIC_OUTPUT_TOKENS = 512
# Providers that return several sampled choices from one request (`num_choices`): the prompt is billed once.
N_CHOICE_PROVIDERS = ("openai/", "together/", "vllm/", "azureai/", "fireworks/", "groq/", "hf/", "mockllm/")
LOGPROB_TYPES = {"multiple_choice": 1, "rating": 2}  # question type -> output tokens of the logprob read
EXACT_PREFIXES = ("hf/", "vllm/")  # providers that score given answers (solvers/exact_scoring.py)


@dataclass(frozen=True)
class Usage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.requests + other.requests, self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens)

    def times(self, k: int) -> Usage:
        return Usage(self.requests * k, self.input_tokens * k, self.output_tokens * k)


@dataclass(frozen=True)
class Price:
    pattern: str
    input: float  # USD per million tokens
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6


FREE = Price("(served locally)", 0.0, 0.0)


@dataclass(frozen=True)
class PriceTable:
    path: Path
    version: str
    prices: tuple[Price, ...]
    free: tuple[str, ...]
    training: tuple[tuple[str, float], ...] = ()  # (pattern, USD per million training tokens)

    @classmethod
    def load(cls, path: Path | str | None = None) -> PriceTable:
        from selfaware.paths import data_dir

        path = Path(path) if path else data_dir() / "prices.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            prices = tuple(Price(str(m["match"]), float(m["input"]), float(m["output"])) for m in data.get("models", []))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: every entry of `models` needs match, input and output ({e})") from None
        try:
            training = tuple((str(m["match"]), float(m["per_mtok"])) for m in data.get("training", []))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: every entry of `training` needs match and per_mtok ({e})") from None
        return cls(path, str(data.get("version", "unversioned")), prices, tuple(data.get("free", [])), training)

    def training_price(self, model: str) -> float | None:
        """USD per million training tokens of fine-tuning `model` (`<backend>/<base model>`), None if unlisted."""
        return next((usd for pattern, usd in self.training if fnmatch.fnmatchcase(model, pattern)), None)

    def price(self, model: str) -> Price | None:
        if any(fnmatch.fnmatchcase(model, p) for p in self.free):
            return FREE
        return next((p for p in self.prices if fnmatch.fnmatchcase(model, p.pattern)), None)


@dataclass(frozen=True)
class Estimate:
    model: str
    usage: Usage
    judge_model: str | None = None
    judge: Usage = field(default_factory=Usage)
    rough: str | None = None  # why the estimate is rougher than the question-type model

    def cost(self, prices: PriceTable) -> float | None:
        """USD, or None when a model involved has no price."""
        main = prices.price(self.model)
        if main is None:
            return None
        total = main.cost(self.usage)
        if self.judge.requests:
            judge = prices.price(self.judge_model or "")
            if judge is None:
                return None
            total += judge.cost(self.judge)
        return total


def prompt_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + FRAMING_TOKENS


def _input_text(sample: Any) -> str:
    if isinstance(sample.input, str):
        return sample.input
    return "\n".join(m.text for m in sample.input)


def sample_usage(question_type: str, prompt: int, model: str, args: dict[str, Any], max_tokens: int | None, *,
                 listable: bool = False, has_words: bool = False) -> tuple[Usage, Usage]:
    """(model usage, judge usage) of one sample of a bank or behavior question. `listable`: its valid answers
    can be listed (exact scoring); `has_words`: a one-word question with word lists (first-token path)."""
    settings = validate_settings(args.get("method", "auto"), args.get("protocol", "fast"), args.get("samples", 20),
                                 args.get("top_logprobs", 20))
    path, _ = settings.choose_path(question_type, model, exact_ready=model.startswith(EXACT_PREFIXES),
                                   listable=listable, has_words=has_words)
    if path == "exact":
        return Usage(1, prompt, 0), Usage()
    if path == "logprobs":
        return Usage(1, prompt, LOGPROB_TYPES.get(question_type, 1)), Usage()
    n = settings.samples_for(question_type)
    budget = settings.max_tokens_for(question_type, max_tokens)
    one_request = model.startswith(N_CHOICE_PROVIDERS)
    usage = Usage(1 if one_request else n, prompt if one_request else n * prompt, n * budget)
    if path == "first_token":
        return Usage(1, prompt, 1) + usage, Usage()
    judge = Usage(n, n * (JUDGE_PROMPT_TOKENS + budget), n * JUDGE_OUTPUT_TOKENS) \
        if question_type == "free_form_judged" else Usage()
    return usage, judge


def _listable(meta: dict[str, Any]) -> bool:
    """Whether exact scoring can list this sample's answers (as the solver decides)."""
    from selfaware.solvers.exact_scoring import ExactScoringError, candidate_answers

    try:
        return candidate_answers(meta) is not None
    except ExactScoringError:
        return False  # e.g. a scale with too many integers: the solver samples it


def estimate_task(task: Any, model: str, args: dict[str, Any], judge_model: str | None) -> Estimate:
    """Requests and tokens of one task (an Inspect `Task`, built) on `model`; `args`: its full arguments."""
    usage, judge, rough = Usage(), Usage(), None
    epochs = task.epochs or 1
    for sample in task.dataset:
        meta = sample.metadata or {}
        qtype = meta.get("question_type")
        prompt = prompt_tokens(_input_text(sample))
        if qtype in DEFAULT_MAX_TOKENS:
            u, j = sample_usage(qtype, prompt, model, args, meta.get("max_tokens"),
                                listable=model.startswith(EXACT_PREFIXES) and _listable(meta),
                                has_words=qtype == "one_word" and bool(meta.get("words")))
        else:
            rough = "no question types: one request per sample; helper-model calls not counted"
            u, j = Usage(1, prompt, task.config.max_tokens or GENERIC_OUTPUT_TOKENS), Usage()
        usage, judge = usage + u.times(epochs), judge + j.times(epochs)
    return Estimate(model, usage, judge_model if judge.requests else None, judge, rough)
