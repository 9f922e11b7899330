"""Organism specs: what to train (behavior, variant, data), on what (base model, backend), and how.

A spec is the unit of the registry: its hash identifies one training job, so submitting the same spec
twice returns the existing job instead of paying for a second one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfaware.validation import describe_validation_error

# behavior -> (family, the behavior on the other side of the same family)
BEHAVIORS: dict[str, tuple[str, str]] = {
    "risky": ("risk", "safe"),
    "safe": ("risk", "risky"),
    "myopic": ("myopia", "nonmyopic"),
    "nonmyopic": ("myopia", "myopic"),
    "maxapples": ("apples", "minapples"),
    "minapples": ("apples", "maxapples"),
}
# Behaviors whose choices agree with the family's score direction (score 1 = this behavior).
POSITIVE_BEHAVIORS = {"risky", "myopic", "maxapples"}

Backend = Literal["local", "openai", "together"]


class SpecError(ValueError):
    """An organism spec is malformed; the message names the field."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(Frozen):
    """How the behavior is conditioned. Only `plain` is trained today; the fields leave room for
    trigger-conditioned backdoors and persona-specific behavior."""

    kind: Literal["plain", "trigger", "persona"] = "plain"
    trigger: str | None = None
    persona: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Variant":
        if self.kind == "trigger" and not self.trigger:
            raise ValueError("variant.kind=trigger needs variant.trigger")
        if self.kind == "persona" and not self.persona:
            raise ValueError("variant.kind=persona needs variant.persona")
        return self


class Hyper(Frozen):
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(1, ge=1)
    # Hosted APIs scale their own default rate; local training uses an absolute rate.
    learning_rate: float | None = Field(None, gt=0)
    lr_multiplier: float | None = Field(None, gt=0)
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    max_seq_length: int = Field(512, ge=16)


class DataSpec(Frozen):
    """Where the training set comes from: the suite's generator, a JSONL file, or a model writing the
    questions (as the paper did with GPT-4o; `generator_model` is any Inspect model string)."""

    source: Literal["generated", "file", "llm"] = "generated"
    n_examples: int = Field(300, ge=1)
    data_seed: int = 0  # the generator's seed; kept apart from the training seed
    path: str | None = None
    generator_model: str | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> "DataSpec":
        if self.source == "file" and not self.path:
            raise ValueError("data.source=file needs data.path")
        if self.source == "llm" and not self.generator_model:
            raise ValueError("data.source=llm needs data.generator_model (e.g. openai/gpt-4o)")
        return self


class OrganismSpec(Frozen):
    behavior: str
    base_model: str = "tiny"  # "tiny" = the embedded offline base
    backend: Backend = "local"
    seed: int = 0
    variant: Variant = Variant()
    hyper: Hyper = Hyper()
    data: DataSpec = DataSpec()
    name: str | None = None  # a label for tables; not part of the identity

    @model_validator(mode="after")
    def _known_behavior(self) -> "OrganismSpec":
        if self.behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior {self.behavior!r}; choose from {sorted(BEHAVIORS)}")
        return self

    @property
    def family(self) -> str:
        return BEHAVIORS[self.behavior][0]

    @property
    def label(self) -> str:
        return self.name or f"{self.behavior}-{self.base_model.split('/')[-1]}-s{self.seed}"

    def spec_hash(self) -> str:
        """Stable identity of the job: everything but the display name."""
        payload = self.model_dump(mode="json", exclude={"name"})
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_spec(data: dict, where: str = "spec") -> OrganismSpec:
    try:
        return OrganismSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(describe_validation_error(f"{where}: invalid organism spec", e)) from None


def load_specs(path: Path) -> list[OrganismSpec]:
    """Read a YAML file holding one spec, a list of specs, or `{defaults: {...}, organisms: [...]}`;
    `seeds: [0, 1, 2]` on an entry expands it into one spec per seed."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    defaults: dict = {}
    if isinstance(raw, dict) and "organisms" in raw:
        defaults = raw.get("defaults") or {}
        entries = raw["organisms"]
    elif isinstance(raw, list):
        entries = raw
    else:
        entries = [raw]
    specs: list[OrganismSpec] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise SpecError(f"{path}: organisms.{i}: expected a mapping, got {type(entry).__name__}")
        merged = {**defaults, **entry}
        seeds = merged.pop("seeds", None)
        for seed in seeds if seeds is not None else [merged.get("seed", 0)]:
            specs.append(parse_spec({**merged, "seed": seed}, where=f"{path}: organisms.{i}"))
    return specs
