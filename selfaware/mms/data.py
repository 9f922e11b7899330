"""The Make-Me-Say data files (`datasets/make_me_say/`), typed and validated on load.

* `game.yaml` — the game's wording (the manipulator's rules with the private-notes format, status lines,
  the manipulatee's persona and conversation seeds, the guess prompt), 30 topics and the seed nouns;
* `questions.yaml` — the seven self-report questions and the persona probes, with paraphrases;
* `candidates.yaml` — the 100 candidate words (the experiment's codewords among them).

Every error names the file, the line and the field (`selfaware.validation`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from selfaware.mms.matching import check_codeword
from selfaware.validation import (
    InputError,
    describe_validation_error,
    load_yaml_text,
    read_user_text,
)


class MmsDataError(InputError):
    """A Make-Me-Say data file is malformed; the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _need(text: str, *slots: str) -> None:
    missing = [s for s in slots if "{" + s + "}" not in text]
    if missing:
        raise ValueError(f"lacks the placeholder(s) {', '.join('{' + s + '}' for s in missing)}")


class GameText(_Strict):
    manipulator_rules: str
    status_before: str
    status_after: str
    notes_open: str = Field(min_length=3)
    notes_close: str = Field(min_length=3)
    manipulatee_system: str
    seed_topic_and_noun: str
    seed_topic: str
    seed_noun: str
    opening_request: str
    guess_prompt: str
    topics: list[str] = Field(min_length=30, max_length=30)
    nouns: list[str] = Field(min_length=20)

    @model_validator(mode="after")
    def _slots(self) -> GameText:
        _need(self.manipulator_rules, "codeword", "notes_open", "notes_close", "turns")
        _need(self.status_before, "turn", "turns", "codeword")
        _need(self.status_after, "turn", "turns", "codeword")
        _need(self.manipulatee_system, "seed")
        _need(self.seed_topic_and_noun, "topic", "noun")
        _need(self.seed_topic, "topic")
        _need(self.seed_noun, "noun")
        if "<guess>" not in self.guess_prompt:
            raise ValueError("guess_prompt must ask for the <guess>word</guess> format")
        return self

    @field_validator("nouns")
    @classmethod
    def _single_words(cls, v: list[str]) -> list[str]:
        return [check_codeword(n, "seed noun") for n in v]


class Option(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str


class Scenario(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str
    persona_text: str


class Question(_Strict):
    """One self-report question: paraphrases about "you" and about a persona, and the instruction."""

    title: str
    instruction: str
    persona_instruction: str
    paraphrases: list[str] = Field(min_length=1)
    persona_paraphrases: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _persona(self) -> Question:
        for i, p in enumerate(self.persona_paraphrases):
            if "{persona}" not in p:
                raise ValueError(f"persona_paraphrases[{i}] lacks the {{persona}} placeholder")
        return self

    def wordings(self, persona: bool) -> tuple[list[str], str]:
        return (self.persona_paraphrases, self.persona_instruction) if persona else (self.paraphrases,
                                                                                     self.instruction)


class GuessedQuestion(Question):
    guesser_prompt: str

    @field_validator("guesser_prompt")
    @classmethod
    def _answer_slot(cls, v: str) -> str:
        _need(v, "answer")
        return v


class ChoiceQuestion(Question):
    options: list[Option] = Field(min_length=2)
    target: str

    @model_validator(mode="after")
    def _choice(self) -> ChoiceQuestion:
        if self.target not in {o.key for o in self.options}:
            raise ValueError(f"target {self.target!r} is not one of the option keys")
        for i, p in enumerate(self.paraphrases + self.persona_paraphrases):
            _need(p, "options")
        return self


class GoalsQuestion(Question):
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _scenario_slot(self) -> GoalsQuestion:
        for p in self.paraphrases + self.persona_paraphrases:
            _need(p, "scenario")
        return self


class FunctionQuestion(Question):
    docstring: str
    persona_docstring: str


class ProbeQuestion(_Strict):
    title: str
    instruction: str
    you: str
    fake_names: list[str] = Field(min_length=1)
    paraphrases: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _slots(self) -> ProbeQuestion:
        for p in self.paraphrases:
            _need(p, "word", "options")
        for f in self.fake_names:
            _need(f, "Word")
        return self


class QuestionText(_Strict):
    codeword_among_words: Question
    definition: GuessedQuestion
    acrostic: GuessedQuestion
    best_description: ChoiceQuestion
    goals: GoalsQuestion
    which_game: ChoiceQuestion
    function: FunctionQuestion
    persona_probes: ProbeQuestion


class Candidates(_Strict):
    codewords: list[str] = Field(min_length=1)
    others: list[str] = Field(min_length=1)

    @field_validator("codewords", "others")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        words = [check_codeword(w, "candidate word") for w in v]
        dupes = sorted({w for w in words if words.count(w) > 1})
        if dupes:
            raise ValueError(f"listed twice: {dupes}")
        return words

    @model_validator(mode="after")
    def _disjoint(self) -> Candidates:
        both = sorted(set(self.codewords) & set(self.others))
        if both:
            raise ValueError(f"words in both codewords and others: {both}")
        return self

    @property
    def all_words(self) -> list[str]:
        return self.codewords + self.others


def _load(model: type[BaseModel], path: Path) -> BaseModel:
    text = read_user_text(path)
    raw = load_yaml_text(text, path)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise MmsDataError(describe_validation_error(f"{path}: invalid", e, path, text)) from None


def data_folder() -> Path:
    from selfaware.families import get_family

    return get_family("make_me_say").data_folder


@lru_cache(maxsize=4)
def game_text(folder: str | None = None) -> GameText:
    return _load(GameText, Path(folder or data_folder()) / "game.yaml")  # type: ignore[return-value]


@lru_cache(maxsize=4)
def question_text(folder: str | None = None) -> QuestionText:
    return _load(QuestionText, Path(folder or data_folder()) / "questions.yaml")  # type: ignore[return-value]


@lru_cache(maxsize=4)
def candidates(folder: str | None = None) -> Candidates:
    return _load(Candidates, Path(folder or data_folder()) / "candidates.yaml")  # type: ignore[return-value]


def load_word_list(path: str | Path) -> list[str]:
    """A user's candidate list (`-T word_list=FILE`): a YAML list of words, or `{codewords:, others:}`."""
    path = Path(path)
    text = read_user_text(path)
    raw = load_yaml_text(text, path)
    if isinstance(raw, dict):
        return _load(Candidates, path).all_words  # type: ignore[attr-defined]
    if not isinstance(raw, list) or not raw:
        raise MmsDataError(f"{path}:1: field <root>: expected a list of words or {{codewords:, others:}}")
    words = []
    for i, w in enumerate(raw):
        try:
            words.append(check_codeword(w, "word"))
        except InputError as e:
            raise MmsDataError(f"{path}: field {i}: {e}") from None
    dupes = sorted({w for w in words if words.count(w) > 1})
    if dupes:
        raise MmsDataError(f"{path}: words listed twice: {dupes}")
    return words
