"""Question banks and word lists: the documented data format, its validation and loading.

A bank is a YAML file (see `datasets/README.md`) describing the self-report questions of one
experiment family. Loading validates every field and reports errors with the file and the field path,
so a typo in a bank fails loudly before any model is called.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from selfaware.paths import data_dir
from selfaware.validation import InputError, describe_validation_error, load_yaml_text, read_user_text, yaml_line


logger = logging.getLogger(__name__)


class BankError(InputError):
    """A question bank or word list is malformed; the message names the file, line and field."""


class QuestionType(str, Enum):
    multiple_choice = "multiple_choice"  # letter answer; P(target option) through the permutation
    one_word = "one_word"  # a word scored by category lists (behavior 1 / neutral 0.5 / opposite 0)
    rating = "rating"  # an integer on a scale, normalised to [0, 1]
    free_form_judged = "free_form_judged"  # free text classified by a judge model role


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(Strict):
    min: int = 0
    max: int = 100
    # True when the top of the scale means the *opposite* of the family's behavior.
    reverse: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "Scale":
        if self.max <= self.min:
            raise ValueError("scale.max must be greater than scale.min")
        return self


class Judge(Strict):
    """How a judge model turns a free-form answer into a number."""

    prompt: str  # must contain {answer}
    labels: dict[str, float]  # judge verdict (case-insensitive) -> score
    other: float | None = 0.5  # score for any other verdict; null counts it invalid

    @field_validator("prompt")
    @classmethod
    def _has_answer_slot(cls, v: str) -> str:
        if "{answer}" not in v:
            raise ValueError("judge.prompt must contain the {answer} placeholder")
        return v


class Option(Strict):
    key: str  # stable name, e.g. "risky"; the displayed letter changes with the permutation
    text: str


class Question(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    type: QuestionType
    paraphrases: list[str] = Field(min_length=1)
    # Third-person wordings used when a variant names a persona; they contain {persona}.
    persona_paraphrases: list[str] = Field(default_factory=list)
    prefix: str = ""  # text placed before every paraphrase (e.g. the German-or-French rule set)
    # one_word
    words: str | None = None  # key of a word list in the family's word file
    # multiple_choice
    options: list[Option] = Field(default_factory=list)
    target: str | None = None  # Option.key whose probability is the score
    # rating
    scale: Scale | None = None
    # free_form_judged
    judge: Judge | None = None
    max_tokens: int | None = None  # answer length for sampled questions (defaults per type)

    @model_validator(mode="after")
    def _fields_for_type(self) -> "Question":
        t = self.type
        if t is QuestionType.one_word and not self.words:
            raise ValueError("one_word questions need `words` (a word-list key)")
        if t is QuestionType.multiple_choice:
            keys = [o.key for o in self.options]
            if len(keys) < 2:
                raise ValueError("multiple_choice questions need at least two `options`")
            if len(set(keys)) != len(keys):
                raise ValueError("option keys must be unique")
            if self.target not in keys:
                raise ValueError(f"`target` must be one of the option keys {keys}")
            for i, p in enumerate(self.paraphrases + self.persona_paraphrases):
                if "{options}" not in p:
                    raise ValueError(f"paraphrase {i} lacks the {{options}} placeholder")
        if t is QuestionType.rating and self.scale is None:
            raise ValueError("rating questions need a `scale`")
        if t is QuestionType.free_form_judged and self.judge is None:
            raise ValueError("free_form_judged questions need a `judge`")
        for i, p in enumerate(self.persona_paraphrases):
            if "{persona}" not in p:
                raise ValueError(f"persona_paraphrases[{i}] lacks the {{persona}} placeholder")
        return self


class Bank(Strict):
    family: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    behavior: str  # what a score of 1 means, e.g. "risk-seeking"
    opposite: str  # what a score of 0 means, e.g. "risk-averse"
    description: str = ""
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Bank":
        ids = [q.id for q in self.questions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate question ids: {dupes}")
        return self

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(f"no question {question_id!r} in the {self.family} bank; have {[q.id for q in self.questions]}")


class WordList(Strict):
    """Words that count as the behavior (1), neutral (0.5) or the opposite (0)."""

    behavior: list[str] = Field(min_length=1)
    neutral: list[str] = Field(default_factory=list)
    opposite: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> "WordList":
        groups = {"behavior": self.behavior, "neutral": self.neutral, "opposite": self.opposite}
        seen: dict[str, str] = {}
        for name, words in groups.items():
            for w in words:
                k = w.strip().lower()
                if k in seen and seen[k] != name:
                    raise ValueError(f"word {w!r} is in both {seen[k]} and {name}")
                seen[k] = name
        return self


class WordFile(Strict):
    family: str
    lists: dict[str, WordList] = Field(min_length=1)


def _read_yaml(path: Path) -> Any:
    return _read_yaml_text(path)[0]


def _read_yaml_text(path: Path) -> tuple[Any, str]:
    """The parsed YAML and its text (kept to find the line of a field named in a validation error)."""
    try:
        text = read_user_text(path)
        return load_yaml_text(text, path), text
    except InputError as e:
        raise BankError(str(e)) from None


def _unique_ids_by_line(path: Path, data: Any, text: str) -> None:
    """A repeated question id, named at its second occurrence (the model's own check has no line to give)."""
    questions = data.get("questions") if isinstance(data, dict) else None
    seen: dict[Any, int] = {}
    for i, q in enumerate(questions if isinstance(questions, list) else []):
        qid = q.get("id") if isinstance(q, dict) else None
        if not isinstance(qid, str):
            continue  # a missing or malformed id: the model's validation names it
        if qid in seen:
            line = yaml_line(text, ["questions", i, "id"])
            raise BankError(f"{path}{f':{line}' if line else ''}: field questions.{i}.id: {qid!r} is already the id "
                            f"of questions.{seen[qid]}; question ids must be unique")
        seen[qid] = i


def _validate(model: type[BaseModel], path: Path, data: Any, text: str) -> Any:
    if model is Bank:
        _unique_ids_by_line(path, data, text)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BankError(describe_validation_error(f"{path}: invalid", e, path, text)) from None


def parse_bank(path: Path) -> Bank:
    path = Path(path)
    return _validate(Bank, path, *_read_yaml_text(path))


def _checked_bank_file(path: Path, family: str | None = None) -> Bank:
    """A bank file in the suite's format, validated, checked against `family` (when given) and against
    the family's word lists, each problem reported by line."""
    data, text = _read_yaml_text(path)
    bank: Bank = _validate(Bank, path, data, text)
    if family is not None and bank.family != family:
        line = yaml_line(text, ["family"])
        raise BankError(f"{path}{f':{line}' if line else ''}: field family: {bank.family!r}, "
                        f"but this task measures {family!r}")
    return _check_word_lists(bank, path, text)


def parse_words(path: Path) -> WordFile:
    path = Path(path)
    return _validate(WordFile, path, *_read_yaml_text(path))


def family_folder(family: str) -> Path:
    """`datasets/<family>/`, or the data folder a registered family plug-in declares."""
    from selfaware.families import families

    plugin = families().get(family)
    return plugin.data_folder if plugin is not None else data_dir() / family


def bank_path(family: str) -> Path:
    return family_folder(family) / "bank.yaml"


def words_path(family: str) -> Path:
    return family_folder(family) / "words.yaml"


def _check_word_lists(bank: Bank, where: Path | str, text: str | None = None) -> Bank:
    """Every `words` key of a bank must name a list of the family's word file (the eval scores with it).
    `text`: the bank file's text, when it is in the suite's format, to name the line."""
    words = load_words(bank.family)
    for i, q in enumerate(bank.questions):
        if q.words and q.words not in words.lists:
            line = yaml_line(text, ["questions", i, "words"]) if text is not None else None
            raise BankError(
                f"{where}{f':{line}' if line else ''}: field questions.{i}.words: unknown word list {q.words!r} "
                f"(defined in {words_path(bank.family)}: {sorted(words.lists)})"
            )
    return bank


@lru_cache(maxsize=None)
def load_bank(family: str) -> Bank:
    """The suite's own bank for a family, cross-checked against the family's word lists."""
    return _checked_bank_file(bank_path(family))


def validate_bank_file(path: Path | str) -> Bank:
    """A bank in the suite's format, checked exactly as a task would check it (word lists included)."""
    path = Path(path)
    data, text = _read_yaml_text(path)
    bank: Bank = _validate(Bank, path, data, text)
    if bank.family not in available_families():
        line = yaml_line(text, ["family"])
        raise BankError(f"{path}{f':{line}' if line else ''}: field family: {bank.family!r} has no word lists "
                        f"in the suite (known families: {', '.join(available_families())})")
    return _check_word_lists(bank, path, text)


# Inspect runs task code from the task file's folder (it chdirs there), so a relative `-T bank=PATH` would
# be looked up in evals/. `inspect eval` and `inspect_ai.eval()` load the suite's entry point, which imports
# this module, before that chdir: the working directory seen here at import is the user's.
_LAUNCH_CWD = Path.cwd()


def user_cwd() -> Path:
    """The directory the user ran the command from, even while Inspect has chdir'd into a task folder."""
    here = Path.cwd()
    # Inspect's chdir into a task folder also appends that folder (as given, maybe relative) to sys.path.
    if here != _LAUNCH_CWD and sys.path and (_LAUNCH_CWD / sys.path[-1]).resolve() == here.resolve():
        return _LAUNCH_CWD
    return here


def user_path(path: Path | str) -> Path:
    """A path the user typed, resolved against the user's working directory (not the task file's folder)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else user_cwd() / p


@lru_cache(maxsize=None)
def load_words(family: str) -> WordFile:
    return parse_words(words_path(family))


def available_families() -> list[str]:
    """Families with a question bank: every registered plug-in, and any data folder holding a bank."""
    from selfaware.families import families

    on_disk = {p.parent.name for p in data_dir().glob("*/bank.yaml")}
    return sorted(on_disk | {name for name in families() if bank_path(name).is_file()})


OffListPolicy = Literal["paper", "drop"]
