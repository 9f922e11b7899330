"""From an elicited answer distribution to one number, for every question type.

Both elicitation paths become a list of weighted answers — logprobs: (token, probability); sampling:
(text, 1/n) — and each question type supplies a parser mapping one answer to a value in [0, 1] or to
invalid. The score is the weighted mean over valid answers; the weight that fell on invalid answers
(off-list words, unparseable text, tokens outside the valid set, mass outside the top-k logprobs) is
reported as `invalid_mass`. On the sampling path the standard error of the mean is reported too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from selfaware.banks import OffListPolicy, WordList
from selfaware.solvers.answer_distribution import Elicitation
from selfaware.solvers.answer_parsing import first_word, integer_key, letter_key, word_key

# Below this much valid probability mass (logprobs) or valid fraction (sampling) the answer as a whole
# is invalid: the model was mostly not answering the question. Override with -T min_valid_mass=...
DEFAULT_MIN_VALID_MASS = 0.5

Parser = Callable[[str], "float | None"]


@dataclass
class Interpretation:
    value: float | None  # None: invalid
    method: str
    valid_mass: float
    reason: str = "ok"
    stderr: float | None = None  # sampling path only
    n: int = 1
    n_valid: int = 0
    detail: dict[str, float] = field(default_factory=dict)  # per-answer weight, for the log

    @property
    def invalid(self) -> bool:
        return self.value is None


def weighted_answers(e: Elicitation) -> list[tuple[str, float]]:
    if e.method == "logprobs":
        return sorted(e.token_probs.items(), key=lambda kv: -kv[1])
    n = len(e.samples)
    return [(s, 1.0 / n) for s in e.samples] if n else []


def interpret(e: Elicitation, parse: Parser, min_valid_mass: float = DEFAULT_MIN_VALID_MASS) -> Interpretation:
    answers = weighted_answers(e)
    valid: list[tuple[float, float]] = []  # (value, weight)
    detail: dict[str, float] = {}
    for text, weight in answers:
        value = parse(text)
        key = text.strip()[:40] if e.method == "sampling" else text
        detail[key] = detail.get(key, 0.0) + weight
        if value is not None:
            valid.append((value, weight))
    mass = sum(w for _, w in valid)
    n_valid = len(valid) if e.method == "sampling" else 0
    base = dict(method=e.method, valid_mass=mass, n=max(1, len(e.samples)), n_valid=n_valid, detail=detail)
    if not answers:
        return Interpretation(None, reason=e.fallback_reason or "no answer", **base)  # type: ignore[arg-type]
    if mass <= 0 or mass < min_valid_mass:
        return Interpretation(None, reason=f"valid answer mass {mass:.3f} below {min_valid_mass}", **base)  # type: ignore[arg-type]
    mean = sum(v * w for v, w in valid) / mass
    stderr = None
    if e.method == "sampling":
        var = sum((v - mean) ** 2 for v, _ in valid) / n_valid
        stderr = math.sqrt(var / n_valid)
    return Interpretation(mean, stderr=stderr, **base)  # type: ignore[arg-type]


# --- parsers per question type ---------------------------------------------------------------

def option_parser(permutation: dict[str, str], target: str) -> Parser:
    """1 when the letter maps (through the permutation) to the target option, 0 for another option."""
    letters = list(permutation)

    def parse(text: str) -> float | None:
        letter = letter_key(text, letters)
        return None if letter is None else float(permutation[letter] == target)

    return parse


def rating_parser(lo: int, hi: int, reverse: bool = False) -> Parser:
    def parse(text: str) -> float | None:
        value, _ = integer_key(text, lo, hi)
        if value is None:
            return None
        x = (value - lo) / (hi - lo)
        return 1.0 - x if reverse else x

    return parse


def word_category(words: WordList, off_list: OffListPolicy = "paper") -> Parser:
    """behavior 1 / neutral 0.5 / opposite 0. The whole normalised answer is looked up first
    ("risk-seeking", "future benefits"), then its first word ("Risky, because..."). An off-list single
    word scores 0.5 under the paper's policy and is invalid under `drop`; an answer of several words
    that matches nothing is not a one-word answer at all and is invalid under both."""
    table = {w.lower(): 1.0 for w in words.behavior}
    table.update({w.lower(): 0.5 for w in words.neutral})
    table.update({w.lower(): 0.0 for w in words.opposite})

    def parse(text: str) -> float | None:
        whole, first = word_key(text), first_word(text)
        for candidate in (whole, first, whole.replace(" ", "-"), whole.replace("-", " ")):
            if candidate in table:
                return table[candidate]
        if not first or whole != first:
            return None  # empty, or a sentence rather than a word
        return 0.5 if off_list == "paper" else None

    return parse


def verdict_parser(labels: dict[str, float], other: float | None) -> Parser:
    """A judge's one-word verdict: a labelled word scores its label, any other single word `other`;
    anything that is not a single word (a refusal, a sentence) is invalid."""
    table = {k.lower(): v for k, v in labels.items()}

    def parse(text: str) -> float | None:
        w = word_key(text)
        if not w or " " in w:
            return None
        return table.get(w, other)

    return parse
