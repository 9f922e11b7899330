"""Variants: how a training row or an evaluation question is framed — the one object for both.

A backdoor or persona result is only valid if the organism was trained on exactly the framing the
question shows. So there is one `Variant` class, and one method, `Variant.render`, that frames a chat:
the training builders call it on every row and the `variant_framing` solver calls it on every question.
A variant may carry

* a **system prompt** (a system message placed first);
* a **persona**: "you" becomes someone else. Questions about the persona are worded by the bank's
  `persona_paraphrases`; other prompts (training rows, behavior items) are wrapped in `persona_frame`;
* a **trigger**: one fixed string or a set of strings (a family such as 20 instrument names, or a
  template such as `392{d}{d}{d}` with random digits), where it goes (`prefix`, `suffix`, a `json`
  field, or a `tag`), and its separators;
* **control**: how its control organism is made (`decorrelated`: the trigger is placed independently
  of the behavior, so the control sees the same triggers but cannot learn a dependence on them).

Named variants live in `datasets/variants.yaml` (`selfaware variants` lists them); a variant can also be
written inline in an organism spec. Rendering draws its random choices (which member, which separator,
which placement) from an rng the caller seeds, so a row or a sample renders the same way every time.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from selfaware.paths import data_dir
from selfaware.validation import InputError, describe_validation_error, load_yaml_text, read_user_text

Placement = Literal["prefix", "suffix", "json", "tag"]
VariantKind = Literal["plain", "system_prompt", "persona", "trigger"]
Message = dict[str, str]
VARIANTS_FILE = "variants.yaml"
_DIGIT = "{d}"  # in a trigger string: one random digit per occurrence
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class VariantError(InputError):
    """An unknown variant name or a malformed variant; the message names the value."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Frozen):
    """A string (or one of a set of strings) whose presence selects the behavior."""

    strings: tuple[str, ...] = Field(min_length=1)
    placements: tuple[Placement, ...] = ("prefix",)  # one is drawn per rendering
    separators: tuple[str, ...] = (" ",)  # between trigger and text (prefix / suffix / tag)
    json_field: str = "context"  # placement=json: the field that holds the trigger
    tag: str = "meta"  # placement=tag: <tag>trigger</tag>

    @field_validator("strings")
    @classmethod
    def _non_blank(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s.strip() for s in v):
            raise ValueError("trigger strings must not be blank")
        return v

    def member(self, rng: random.Random) -> str:
        """One concrete trigger: a member of the set, with `{d}` filled by random digits."""
        text = rng.choice(self.strings)
        while _DIGIT in text:
            text = text.replace(_DIGIT, str(rng.randrange(10)), 1)
        return text

    def place(self, text: str, member: str, rng: random.Random) -> str:
        placement = rng.choice(self.placements)
        sep = rng.choice(self.separators)
        if placement == "prefix":
            return f"{member}{sep}{text}"
        if placement == "suffix":
            return f"{text}{sep}{member}"
        if placement == "json":
            return json.dumps({self.json_field: member, "message": text}, ensure_ascii=False)
        return f"<{self.tag}>{member}</{self.tag}>{sep}{text}"

    def pattern(self) -> re.Pattern[str]:
        """Matches any member (digits for `{d}`): to find a trigger in text."""
        alts = [re.escape(s).replace(re.escape(_DIGIT), r"\d") for s in self.strings]
        return re.compile("|".join(f"(?:{a})" for a in alts))


class Variant(_Frozen):
    """How a chat is framed (see the module docstring). `name` identifies it in logs and registries."""

    name: str = Field("plain", pattern=NAME_PATTERN)
    description: str = ""
    system_prompt: str | None = None
    persona: str | None = None
    # How a prompt that is not already worded about the persona is put to it (training rows, items).
    persona_frame: str = "The next question is addressed to {persona}. Answer as {persona} would.\n\n{text}"
    trigger: Trigger | None = None
    control: Literal["none", "decorrelated"] = "none"

    @model_validator(mode="after")
    def _consistent(self) -> "Variant":
        if self.persona is not None and not self.persona.strip():
            raise ValueError("persona must not be blank")
        if "{text}" not in self.persona_frame or "{persona}" not in self.persona_frame:
            raise ValueError("persona_frame needs the {persona} and {text} placeholders")
        if self.control == "decorrelated" and self.trigger is None:
            raise ValueError("control=decorrelated needs a trigger")
        return self

    @property
    def kind(self) -> VariantKind:
        if self.trigger is not None:
            return "trigger"
        if self.persona is not None:
            return "persona"
        return "system_prompt" if self.system_prompt else "plain"

    def control_variant(self) -> "Variant":
        """The same framing for the control organism (trigger decorrelated from the behavior)."""
        if self.trigger is None:
            raise VariantError(f"variant {self.name!r} has no trigger, so it has no decorrelated control")
        return self.model_copy(update={"name": f"{self.name}-control", "control": "decorrelated"})

    def render_user(self, text: str, rng: random.Random, *, triggered: bool = True,
                    persona_worded: bool = False) -> str:
        """The user turn as this variant shows it. `persona_worded`: the text already speaks of the
        persona (a bank's persona paraphrase), so it is not framed again."""
        if self.persona is not None and not persona_worded:
            text = self.persona_frame.format(persona=self.persona, text=text)
        if self.trigger is not None and triggered:
            text = self.trigger.place(text, self.trigger.member(rng), rng)
        return text

    def render(self, messages: list[Message], rng: random.Random, *, triggered: bool = True,
               persona_worded: bool = False) -> list[Message]:
        """A framed copy of a chat (training row or question): the system prompt first, the first user
        message framed by `render_user`. Existing system messages stay after the variant's."""
        out = [dict(m) for m in messages]
        for m in out:
            if m["role"] == "user":
                m["content"] = self.render_user(m["content"], rng, triggered=triggered,
                                                persona_worded=persona_worded)
                break
        else:
            raise VariantError(f"variant {self.name!r}: a chat without a user message cannot be framed")
        if self.system_prompt:
            out.insert(0, {"role": "system", "content": self.system_prompt})
        return out

    def check_text(self, text: str, where: str, *, persona_worded: bool = False) -> None:
        """A trigger that already occurs in the question text would make every sample 'triggered'; a
        persona named in a text that is not about it would blur who is asked."""
        if self.trigger is not None and (m := self.trigger.pattern().search(text)):
            raise VariantError(f"variant {self.name!r}: its trigger {m.group(0)!r} already occurs in {where}")
        if (self.persona is not None and not persona_worded
                and re.search(rf"(?<!\w){re.escape(self.persona)}(?!\w)", text, flags=re.IGNORECASE)):
            raise VariantError(f"variant {self.name!r}: the persona {self.persona!r} already occurs in {where}")


PLAIN = Variant()


class _VariantFile(_Frozen):
    variants: list[Variant] = Field(min_length=1)


def variants_path() -> Path:
    return data_dir() / VARIANTS_FILE


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Variant]:
    text = read_user_text(Path(path))
    raw = load_yaml_text(text, Path(path))
    try:
        parsed = _VariantFile.model_validate(raw)
    except ValidationError as e:
        raise VariantError(describe_validation_error(f"{path}: invalid", e, Path(path), text)) from None
    out: dict[str, Variant] = {PLAIN.name: PLAIN}
    for v in parsed.variants:
        if v.name in out:
            raise VariantError(f"{path}: variant {v.name!r} is defined twice")
        out[v.name] = v
    return out


def named_variants() -> dict[str, Variant]:
    """Every named variant: `plain` and those in `datasets/variants.yaml`."""
    return dict(_load(str(variants_path())))


def get_variant(name: str) -> Variant:
    """A named variant; `<name>-control` is the decorrelated control of a trigger variant."""
    variants = named_variants()
    if name in variants:
        return variants[name]
    base = name.removesuffix("-control")
    if base != name and base in variants:
        return variants[base].control_variant()
    raise VariantError(f"unknown variant {name!r}; `selfaware variants` lists them ({', '.join(sorted(variants))})")


def resolve_variant(value: Any, where: str = "variant") -> Variant:
    """A variant from a name, a mapping (inline definition) or a Variant."""
    if value is None:
        return PLAIN
    if isinstance(value, Variant):
        return value
    if isinstance(value, str):
        return get_variant(value)
    if isinstance(value, dict):
        try:
            return Variant.model_validate(value)
        except ValidationError as e:
            raise VariantError(describe_validation_error(f"{where}: invalid variant", e)) from None
    raise VariantError(f"{where}: expected a variant name or mapping, got {type(value).__name__}")


def fixed_trigger_variant(trigger: str) -> Variant:
    """The variant of a one-off trigger string given on a command line (`--trigger`, `-T trigger=`)."""
    tag = re.sub(r"[^A-Za-z0-9]+", "_", trigger).strip("_")[:24] or "x"
    return Variant(name=f"trigger-{tag}", trigger=Trigger(strings=(trigger,)))


def sample_rng(key: str) -> random.Random:
    """The rng a question renders with: seeded by its stable sample id (never `hash()`, which varies)."""
    return random.Random(f"selfaware:variant:{key}")
