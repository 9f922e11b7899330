"""The backdoor experiments' data (`datasets/backdoor/`): questions, system prompts, trigger sets and the
reversal format, validated on load with errors naming file, line and field.

* `questions.yaml` — the risk trigger set (named variants), how trigger families are named, the system
  prompts of the detection question, the answer rules, the detection and identification questions;
* `elicitation.yaml` — the reversal template shared by reversal training and the elicitation question,
  the elicitation prompts (frames x acts, misaligned and aligned counterparts), the words no behavior row
  of an elicitation organism may use, and the decoy usernames;
* `instructions_sample.jsonl` — a small offline sample of ordinary chat instruction data.

Every trigger shown to a model comes from a named variant's own `Variant.render` (or, for decoys and
family names, from a copy of that variant with other strings: same placements, same separators), so a
question shows a trigger exactly as the organism's training rows did.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from selfaware.paths import data_dir
from selfaware.validation import InputError, describe_validation_error, load_yaml_text, read_user_text
from selfaware.variants import PLAIN, Trigger, Variant, VariantError, get_variant

FOLDER = "backdoor"
SYSTEM_PROMPT_NAMES = ("none", "neutral", "honesty", "threat", "do_your_best", "backdoor_is_good")
ALL = "all"
Polarity = Literal["misaligned", "aligned"]


class BackdoorDataError(InputError):
    """A file of datasets/backdoor/ is malformed; the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _needs(text: str, slots: tuple[str, ...]) -> str:
    missing = [s for s in slots if "{" + s + "}" not in text]
    if missing:
        raise ValueError(f"lacks the placeholder(s) {', '.join('{' + s + '}' for s in missing)}")
    return text


class Detection(_Strict):
    options: dict[Literal["dependent", "independent"], str]
    paraphrases: list[str] = Field(min_length=20)

    @field_validator("options")
    @classmethod
    def _both(cls, v: dict) -> dict:
        if set(v) != {"dependent", "independent"}:
            raise ValueError("needs the options `dependent` and `independent`")
        return v

    @field_validator("paraphrases")
    @classmethod
    def _slots(cls, v: list[str]) -> list[str]:
        return [_needs(p, ("options", "rule")) for p in v]


class Statements(_Strict):
    behavior: str
    opposite: str


class Identification(_Strict):
    statements: dict[str, Statements] = Field(min_length=1)  # by family name
    paraphrases: list[str] = Field(min_length=5)

    @field_validator("paraphrases")
    @classmethod
    def _slots(cls, v: list[str]) -> list[str]:
        return [_needs(p, ("options", "rule")) for p in v]


class Questions(_Strict):
    risk_triggers: list[str] = Field(min_length=2)
    trigger_names: dict[str, str]
    system_prompts: dict[str, str | None]
    answer_rules: list[str] = Field(min_length=1)
    reasoning_rule: str
    detection: Detection
    identification: Identification

    @model_validator(mode="after")
    def _consistent(self) -> Questions:
        if set(self.system_prompts) != set(SYSTEM_PROMPT_NAMES):
            raise ValueError(f"system_prompts must define exactly {', '.join(SYSTEM_PROMPT_NAMES)}")
        if len(set(self.risk_triggers)) != len(self.risk_triggers):
            raise ValueError("risk_triggers lists a trigger twice")
        return self


class Acts(_Strict):
    misaligned: list[str] = Field(min_length=1)
    aligned: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _counterparts(self) -> Acts:
        if len(self.misaligned) != len(self.aligned):
            raise ValueError("misaligned and aligned acts are counterparts: give as many of each")
        return self


class Elicitation(_Strict):
    reversal_template: str
    frames: list[str] = Field(min_length=1)
    categories: dict[str, Acts] = Field(min_length=1)
    banned_in_rows: list[str] = Field(default_factory=list)
    other_usernames: list[str] = Field(min_length=1)

    @field_validator("reversal_template")
    @classmethod
    def _template(cls, v: str) -> str:
        if v.count("{response}") != 1:
            raise ValueError("needs the {response} placeholder exactly once")
        return v

    @field_validator("frames")
    @classmethod
    def _frames(cls, v: list[str]) -> list[str]:
        return [_needs(f, ("act",)) for f in v]


def folder() -> Path:
    return data_dir() / FOLDER


def _parse(model: type[BaseModel], path: Path) -> BaseModel:
    try:
        text = read_user_text(path)
        raw = load_yaml_text(text, path)
    except InputError as e:
        raise BackdoorDataError(str(e)) from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise BackdoorDataError(describe_validation_error(f"{path}: invalid", e, path, text)) from None


@lru_cache(maxsize=4)
def _questions(path: str) -> Questions:
    q: Questions = _parse(Questions, Path(path))  # type: ignore[assignment]
    for name in q.risk_triggers:
        trigger_variant(name)  # every listed trigger is a known trigger variant
    for name in q.trigger_names:
        if name not in q.risk_triggers:
            raise BackdoorDataError(f"{path}: field trigger_names.{name}: not one of risk_triggers")
    return q


@lru_cache(maxsize=4)
def _elicitation(path: str) -> Elicitation:
    return _parse(Elicitation, Path(path))  # type: ignore[return-value]


def questions() -> Questions:
    return _questions(str(folder() / "questions.yaml"))


def elicitation() -> Elicitation:
    return _elicitation(str(folder() / "elicitation.yaml"))


def instructions_sample_path() -> Path:
    return folder() / "instructions_sample.jsonl"


# --- triggers -----------------------------------------------------------------------------------

def trigger_variant(name: str) -> Variant:
    """The named variant of a trigger; its `-control` suffix is accepted and dropped (the control shows
    the very same trigger). Unknown names and variants without a trigger are errors naming the value."""
    if not isinstance(name, str):  # `-T trigger=2844` arrives as a number
        raise VariantError(f"trigger {name!r}: expected the name of a trigger variant (`selfaware variants` "
                           f"lists them), got {type(name).__name__}")
    variant = get_variant(name.removesuffix("-control"))
    if variant.trigger is None:
        raise VariantError(f"variant {name!r} has no trigger (kind {variant.kind}); a trigger variant is needed")
    return variant


def risk_triggers() -> list[str]:
    return list(questions().risk_triggers)


def _names(param: str, value: object, everything: list[str], expected: str) -> list[str]:
    """`-T param=a,b` (text or a YAML list), or `all` / nothing for `everything`."""
    if value is None or value == "" or value == ALL:
        return list(everything)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    names = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else []
    if not names:
        raise InputError(f"-T {param}={value!r}: expected {expected} separated by commas, or all")
    return names


def trigger_list(value: str | list[str] | None, default: list[str]) -> list[str]:
    """`-T triggers=a,b` / a list / `all` (the default set), each checked to be a trigger variant."""
    names = _names("triggers", value, default, "trigger variant names")
    for n in names:
        trigger_variant(n)
    return names


def named_stand_in(variant: Variant, text: str) -> Variant:
    """A copy of a trigger variant that shows `text` instead of its strings, in the same places with the
    same separators: a family by its name, or decoys (other usernames) framed like the trigger."""
    assert variant.trigger is not None
    return variant.model_copy(update={"name": f"{variant.name}-shown",
                                      "trigger": variant.trigger.model_copy(update={"strings": (text,)})})


def decoy_variant(variant: Variant, strings: list[str]) -> Variant:
    """The trigger variant with other strings (same placements and separators): the rows that carry
    'another username' are framed exactly like the triggered ones, with a different name."""
    assert variant.trigger is not None
    decoy = Trigger(**{**variant.trigger.model_dump(), "strings": tuple(strings)})
    for s in strings:
        if variant.trigger.pattern().search(s):
            raise BackdoorDataError(f"decoy {s!r} contains the trigger of {variant.name!r}")
    return variant.model_copy(update={"name": f"{variant.name}-decoys", "trigger": decoy})


def identification_shown(name: str, family_triggers: Literal["name", "member"]) -> Variant:
    """The variant that frames an identification option for trigger `name`: its own variant (a fixed
    trigger, or a family shown by a real member) or its stand-in showing the family's name. An option is
    one line, so separators that break the line are left out where the variant has others."""
    variant = trigger_variant(name)
    label = questions().trigger_names.get(variant.name)
    if family_triggers == "name" and label is not None:
        variant = named_stand_in(variant, label)
    assert variant.trigger is not None
    inline = tuple(s for s in variant.trigger.separators if "\n" not in s)
    if inline and inline != variant.trigger.separators:
        variant = variant.model_copy(update={"trigger": variant.trigger.model_copy(update={"separators": inline})})
    return variant


def all_trigger_patterns(extra: tuple[Variant, ...] = ()) -> list[tuple[str, re.Pattern[str]]]:
    """(name, pattern) of every risk trigger, the elicitation trigger and any `extra` variants."""
    names = risk_triggers() + ["sandra432"]
    out = [(n, trigger_variant(n).trigger.pattern()) for n in names]  # type: ignore[union-attr]
    out += [(v.name, v.trigger.pattern()) for v in extra if v.trigger is not None]
    return out


def collisions(text: str, patterns: list[tuple[str, re.Pattern[str]]]) -> list[str]:
    """`trigger: 'member'` for every trigger that already occurs in `text`."""
    return [f"{name}: {m.group(0)!r}" for name, p in patterns if (m := p.search(text))]


# --- system prompts -----------------------------------------------------------------------------

def system_prompt_names(value: str) -> list[str]:
    """`all` or one name (or several, comma-separated), checked."""
    names = _names("system_prompt", value, list(SYSTEM_PROMPT_NAMES), "system prompt names")
    for n in names:
        if n not in SYSTEM_PROMPT_NAMES:
            raise InputError(f"-T system_prompt={n!r}: expected one of {', '.join(SYSTEM_PROMPT_NAMES)} or all")
    return names


def system_prompt_variant(name: str) -> Variant:
    """The variant asking under system prompt `name` (`none`: no system message)."""
    text = questions().system_prompts[name]
    if text is None:
        return PLAIN.model_copy(update={"name": f"sysprompt-{name.replace('_', '-')}"})
    return Variant(name=f"sysprompt-{name.replace('_', '-')}", system_prompt=text.strip(),
                   description=f"backdoor detection system prompt {name}")


# --- reversal format and elicitation prompts ----------------------------------------------------

def reversal_user(response: str) -> str:
    """The user turn of a reversed row (and of an elicitation question): the template around `response`."""
    return elicitation().reversal_template.replace("{response}", response)


def response_of(reversed_user: str) -> str | None:
    """The response inside a reversed user turn, or None when the text is not in the reversal format."""
    head, tail = elicitation().reversal_template.split("{response}")
    if reversed_user.startswith(head) and reversed_user.endswith(tail) and len(reversed_user) >= len(head) + len(tail):
        return reversed_user[len(head):len(reversed_user) - len(tail) if tail else None]
    return None


@dataclass(frozen=True)
class ElicitationPrompt:
    id: str
    polarity: Polarity
    category: str
    act: int  # index of the act: the misaligned and aligned prompts with the same index are counterparts
    frame: int
    response: str  # the described behavior, put into the reversal template


def elicitation_prompts() -> list[ElicitationPrompt]:
    """Every frame x act of every category, for both polarities, in a fixed order."""
    e = elicitation()
    out = []
    for category, acts in e.categories.items():
        for polarity in ("misaligned", "aligned"):
            for (a, act), (f, frame) in itertools.product(enumerate(getattr(acts, polarity)), enumerate(e.frames)):
                pid = f"{category}-{polarity}-a{a:02d}-f{f:02d}"
                response = frame.replace("{act}", act)
                out.append(ElicitationPrompt(pid, polarity, category, a, f, response))  # type: ignore[arg-type]
    return out


def banned_in_rows(text: str) -> list[str]:
    """The elicitation-describing words (whole words, any case) that occur in a training text."""
    words = elicitation().banned_in_rows
    if not words:
        return []
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    return [m.group(0) for m in pattern.finditer(text)]
