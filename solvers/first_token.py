"""The first-token path for one-word answers on APIs with logprobs (`method=first_token`).

Sampling a one-word answer 100 times to learn its category is mostly wasted: one logprob call already shows
the probability of every likely first token, and most first tokens settle the answer ("Cautious", "bold",
"safety"). Only where a first token could begin words of different scores ("risk" begins "risky" and
"risk-averse"), is not a listed word at all ("I", "As"), or lies outside the returned alternatives, does the
answer need sampling. So:

1. one call, temperature 0, `max_tokens=2`, the top logprobs: P(first token) for each alternative;
2. a first token is *identified* when it is a listed word and every listed word it begins has the same score
   (and the chosen reply does not continue it into a longer word); its probability is exact;
3. everything else (ambiguous tokens, junk, the mass outside the alternatives) is resolved by sampling:
   `samples` answers are drawn with their tokens, and those whose first token is not identified estimate the
   score of the ambiguous mass, each standing for P(ambiguous) / (their number). The sampling standard error
   of that part, scaled by P(ambiguous), is reported. No draw is made when less than `MIN_AMBIGUOUS_MASS`
   is ambiguous; ambiguous mass that no draw landed on is reported as uncovered, never guessed.

The score is therefore exact for the identified mass and a Monte-Carlo estimate only for the rest: at the
same number of draws its standard error is about sqrt(P(ambiguous)) times that of plain sampling.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from inspect_ai.model import GenerateConfig, Model, ModelOutput

from selfaware.banks import WordList
from selfaware.solvers.answer_parsing import normalize_token, word_key

# Below this ambiguous first-token mass no answers are drawn (it is reported as uncovered instead).
MIN_AMBIGUOUS_MASS = 0.01
# Two tokens: the second shows whether the chosen first token continues into a longer word.
FIRST_TOKEN_MAX_TOKENS = 2
_MARKERS = ("Ġ", "▁", "Ċ", "ĉ")


def word_scores(words: WordList) -> dict[str, float]:
    """Listed word (lower case) -> its score: behavior 1, neutral 0.5, opposite 0."""
    table = {w.lower(): 1.0 for w in words.behavior}
    table.update({w.lower(): 0.5 for w in words.neutral})
    table.update({w.lower(): 0.0 for w in words.opposite})
    return table


def identified_score(token_key: str, table: dict[str, float]) -> float | None:
    """The score a normalised first token settles, or None when the answer it begins is ambiguous."""
    key = word_key(token_key)
    if not key or key not in table:
        return None
    value = table[key]
    if any(word.startswith(key) and score != value for word, score in table.items()):
        return None
    return value


def continues_word(second: str) -> bool:
    """A next token that glues onto the previous one ("risk" + "y"): no space marker, a letter or digit."""
    return bool(second) and second[0] not in _MARKERS and not second[0].isspace() and second[0].isalnum()


@dataclass
class FirstTokenSplit:
    identified: dict[str, float] = field(default_factory=dict)  # normalised first token -> probability
    ambiguous_mass: float = 1.0  # everything not identified, the mass outside the alternatives included


def split_first_tokens(probs: dict[str, float], chosen: tuple[str, ...], table: dict[str, float]) -> FirstTokenSplit:
    """Which first tokens settle the answer. `probs`: normalised first token -> probability (top-k)."""
    demoted = normalize_token(chosen[0]) if len(chosen) > 1 and continues_word(chosen[1]) else None
    identified = {k: p for k, p in probs.items() if k != demoted and identified_score(k, table) is not None}
    return FirstTokenSplit(identified, max(0.0, 1.0 - sum(identified.values())))


@dataclass
class Draws:
    """Sampled answers with the normalised first token each began with (None: the provider did not say)."""

    texts: list[str]
    first_tokens: list[str | None]
    requests: int = 0

    @property
    def tokens_known(self) -> bool:
        return all(t is not None for t in self.first_tokens)


def _first_of(output: ModelOutput, i: int) -> str | None:
    logprobs = output.choices[i].logprobs
    return normalize_token(logprobs.content[0].token) if logprobs is not None and logprobs.content else None


async def draw_with_tokens(model: Model, messages: list, n: int, max_tokens: int, temperature: float) -> Draws:
    """n answers, each with its first token (asked as `logprobs`; one request with n choices where the
    provider supports it, topped up with single calls)."""
    config = GenerateConfig(temperature=temperature, max_tokens=max_tokens, num_choices=n, logprobs=True)
    first = await model.generate(messages, config=config)
    outputs = [(first, i) for i in range(min(n, len(first.choices)))]
    single = GenerateConfig(temperature=temperature, max_tokens=max_tokens, logprobs=True)
    more = await asyncio.gather(*(model.generate(messages, config=single) for _ in range(n - len(outputs))))
    outputs += [(o, 0) for o in more if o.choices]
    return Draws([o.choices[i].message.text for o, i in outputs], [_first_of(o, i) for o, i in outputs],
                 1 + len(more))


def ambiguous_answers(draws: Draws, split: FirstTokenSplit) -> list[str]:
    """The drawn answers whose first token is not identified: a sample of the ambiguous mass."""
    return [text for text, tok in zip(draws.texts, draws.first_tokens) if tok not in split.identified]
