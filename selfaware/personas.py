"""Persona separation (paper §5): asking a model about other people as well as about itself.

The persona lists live in `datasets/personas/personas.yaml` (`trained`: the people many-persona organisms
are trained on; `unseen`: asked about at evaluation only). A persona is always rendered by a persona
`Variant` — in training rows (`persona_frame`) and in questions (the bank's `persona_paraphrases`) — so
the name an organism was trained on is the name its questions show.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfaware.paths import data_dir
from selfaware.validation import InputError, describe_validation_error, load_yaml_text, read_user_text
from selfaware.variants import PLAIN, Variant

SELF = "you"  # the persona name that stands for the model itself (the plain variant)


class PersonaError(InputError):
    """An unknown, empty or clashing persona; the message names it."""


class PersonaLists(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trained: list[str] = Field(min_length=1)
    unseen: list[str] = Field(min_length=1)

    @property
    def all(self) -> list[str]:
        return self.trained + self.unseen


def personas_path() -> Path:
    return data_dir() / "personas" / "personas.yaml"


@lru_cache(maxsize=2)
def _load(path: str) -> PersonaLists:
    text = read_user_text(Path(path))
    try:
        return PersonaLists.model_validate(load_yaml_text(text, Path(path)))
    except ValidationError as e:
        raise PersonaError(describe_validation_error(f"{path}: invalid", e, Path(path), text)) from None


def persona_lists() -> PersonaLists:
    return _load(str(personas_path()))


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "persona"


def persona_variant(name: str) -> Variant:
    """The variant that puts a question or a training row to `name` ("you": the plain variant)."""
    name = name.strip()
    if not name:
        raise PersonaError("a persona name must not be empty")
    if name.lower() == SELF:
        return PLAIN
    return Variant(name=f"persona-{slug(name)}", persona=name,
                   description=f"Questions and rows put to {name} instead of the model itself.")


def parse_personas(value: str | list[str] | None) -> list[str]:
    """`-T personas=`: None = every listed persona (trained and unseen); `trained`, `unseen`; or names
    separated by commas. "you" (the model itself) is always asked first."""
    lists = persona_lists()
    if value is None or value == "" or value == "all":
        names = lists.all
    elif value in ("trained", "unseen"):
        names = getattr(lists, str(value))
    elif isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise PersonaError(f"-T personas={value!r}: expected all, trained, unseen or names separated by commas")
    seen: set[str] = set()
    out = [SELF]
    for name in names:
        key = name.strip().lower()
        if not key:
            raise PersonaError(f"-T personas={value!r}: an empty persona name")
        if key in seen or key == SELF:
            continue
        seen.add(key)
        out.append(name.strip())
    return out


def persona_group(name: str) -> str:
    """Which list a persona comes from: "self", "trained", "unseen" or "other" (named by the user)."""
    if name.lower() == SELF:
        return "self"
    lists = persona_lists()
    for group in ("trained", "unseen"):
        if name.lower() in (p.lower() for p in getattr(lists, group)):
            return group
    return "other"
