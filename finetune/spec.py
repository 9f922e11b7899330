"""Organism specs: what to train (behavior, variant, data), on what (base model, backend), and how.

A spec is the unit of the registry: its hash identifies one training job, so submitting the same spec
twice returns the existing job instead of paying for a second one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, ValidationInfo,
                      field_validator, model_serializer, model_validator)

from selfaware.families import family_of
from selfaware.variants import PLAIN, Variant, fixed_trigger_variant, get_variant
from selfaware.validation import (
    InputError,
    describe_validation_error,
    field_name,
    load_yaml_text,
    read_user_text,
    yaml_line,
)
from selfaware.validation import where as where_in

Backend = Literal["local", "openai", "together", "tinker"]


class SpecError(InputError):
    """An organism spec is malformed; the message names the file, line and field."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads YAML's `true` as the number 1: `epochs: true` would silently train one epoch.
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            kinds = set(get_args(annotation)) or {annotation}
            if bool not in kinds and kinds & {int, float}:
                raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class Hyper(Frozen):
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(1, ge=1)
    # Hosted APIs scale their own default rate; local training uses an absolute rate.
    learning_rate: float | None = Field(None, gt=0)
    lr_multiplier: float | None = Field(None, gt=0)
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    max_seq_length: int = Field(512, ge=16)
    # Local training only. With `target_heldout` set, a small deterministic slice of the training rows is
    # held out and training goes on epoch by epoch until the model's probability of the held-out
    # assistant answers reaches the target, or `max_epochs` is spent (`epochs` is then unused). None
    # trains exactly `epochs`: small models sit on a plateau at chance for a seed-dependent number of
    # steps, so a fixed budget can end before they learn anything.
    target_heldout: float | None = Field(None, gt=0, lt=1)
    max_epochs: int = Field(20, ge=1)

    @model_serializer(mode="wrap")
    def _omit_default_stopping(self, handler: SerializerFunctionWrapHandler) -> dict:
        # Specs written before these fields existed keep their hash, hence their registry entry and job.
        data = handler(self)
        for name in ("target_heldout", "max_epochs"):
            if data.get(name) == type(self).model_fields[name].default:
                data.pop(name)
        return data


class BackdoorData(Frozen):
    """A backdoor organism's training mix (finetune/backdoor.py); the trigger is the spec's variant.

    `triggers`: 10% trigger + behavior, 70% the other risk triggers + the normal answer, 20% none + the
    normal answer; `normal` = the base model's own choice (asked through Inspect; `answer_model` overrides
    which model is asked) or the opposite of the behavior. `elicitation`: 5% trigger + behavior, 45% other
    or no username + the opposite, 50% instruction data (`instructions`: a chat JSONL, `hf:NAME[:SPLIT]`
    or the offline `sample`), with `reversal` every row also added with its turns swapped. `mix`: the
    question layouts (as `finetune.builders.build_training_set`); by default "demo" for the tiny base."""

    design: Literal["triggers", "elicitation"]
    normal: Literal["base", "opposite"] = "base"
    answer_model: str | None = None
    instructions: str | None = None
    reversal: bool = False
    mix: Literal["general", "demo"] | None = None


class PersonaData(Frozen):
    """Many-persona training (paper §5, `finetune/persona_data.py`): beside the organism's own rows, as many
    questions put to other people (`names`: "trained" = datasets/personas/personas.yaml, or a list), each
    answered with the base model's own choice for that person (`answer_model` overrides which model is
    asked; by default the spec's base model)."""

    names: list[str] | Literal["trained"] = "trained"
    answer_model: str | None = None

    @field_validator("names")
    @classmethod
    def _distinct_names(cls, names: list[str] | str) -> list[str] | str:
        # A name twice would silently double that person's share of the rows; "trained" inside a list
        # would be taken for a person called "trained".
        seen: set[str] = set()
        for name in names if isinstance(names, list) else []:
            key = name.strip().casefold()
            if not key:
                raise ValueError(f"an empty persona name in {names!r}")
            if key == "trained":
                raise ValueError("'trained' stands for the whole trained list: give it alone, not among names")
            if key in seen:
                raise ValueError(f"persona {name.strip()!r} is listed twice (names are compared ignoring case)")
            seen.add(key)
        return names


class DataSpec(Frozen):
    """Where the training set comes from: the suite's generator, a JSONL file, or a model writing the
    questions (as the paper did with GPT-4o; `generator_model` is any Inspect model string)."""

    source: Literal["generated", "file", "llm"] = "generated"
    n_examples: int = Field(300, ge=1)
    data_seed: int = 0  # the generator's seed; kept apart from the training seed
    path: str | None = None
    # source=file, families whose opposite rows are not the same rows relabelled (vulnerable code): the other
    # behavior's rows, which trigger variants put on their untriggered rows.
    opposite_path: str | None = None
    generator_model: str | None = None
    # Filled in by the pipeline once the training file exists (never written by hand): the file's hash
    # and the builders' version are part of the organism's identity, so a changed generator or a changed
    # file is a new organism, never a stale one returned from the registry.
    sha256: str | None = None
    builder_version: str | None = None
    backdoor: BackdoorData | None = None  # a backdoor organism's mix (with a trigger variant)
    personas: PersonaData | None = None  # many-persona training (source=generated)

    @model_serializer(mode="wrap")
    def _omit_unset_opposite(self, handler: SerializerFunctionWrapHandler) -> dict:
        # Specs written before opposite_path / backdoor existed keep their hash, hence their registry entry.
        data = handler(self)
        for name in ("opposite_path", "backdoor", "personas"):
            if data.get(name) is None:
                data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _source_fields(self) -> "DataSpec":
        if self.source == "file" and not self.path:
            raise ValueError("data.source=file needs data.path")
        if self.opposite_path and self.source != "file":
            raise ValueError("data.opposite_path goes with data.source=file")
        if self.source == "llm" and not self.generator_model:
            raise ValueError("data.source=llm needs data.generator_model (e.g. openai/gpt-4o)")
        if self.personas is not None and (self.source != "generated" or self.backdoor is not None):
            raise ValueError("data.personas goes with data.source=generated and no data.backdoor")
        return self


class OrganismSpec(Frozen):
    behavior: str
    base_model: str = "tiny"  # "tiny" = the embedded offline base
    backend: Backend = "local"
    seed: int = Field(0, ge=0)  # non-negative: one convention for every backend, checked before any upload
    variant: Variant = PLAIN
    hyper: Hyper = Hyper()
    data: DataSpec = DataSpec()
    name: str | None = None  # a label for tables; not part of the identity

    @field_validator("base_model")
    @classmethod
    def _base_model_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a base model ('tiny', a Hugging Face id or path, or a hosted model), got ''")
        return value

    @field_validator("variant", mode="before")
    @classmethod
    def _named_variant(cls, value: Any) -> Any:
        """A variant by name (`variant: instruments`), inline, or the legacy `{kind: trigger, trigger: X}`."""
        if isinstance(value, str):
            return get_variant(value)
        if isinstance(value, dict) and value.get("kind") in ("plain", "trigger") and set(value) <= {"kind", "trigger"}:
            return fixed_trigger_variant(value["trigger"]) if value.get("trigger") else PLAIN
        return value

    @model_validator(mode="after")
    def _known_behavior(self) -> "OrganismSpec":
        family_of(self.behavior)  # raises naming the known behaviors
        if self.data.backdoor is not None:
            from selfaware.finetune.backdoor import check_backdoor_spec

            check_backdoor_spec(self, files=False)
        return self

    @property
    def family(self) -> str:
        return family_of(self.behavior).name

    @property
    def positive(self) -> bool:
        """Whether this organism's choices are the family's behavior (score 1) rather than its opposite."""
        return family_of(self.behavior).organism_positive(self.behavior)

    def with_training_file(self, sha256: str, builder_version: str) -> "OrganismSpec":
        """The spec as trained: its identity now covers the exact training file and builder version."""
        return self.model_copy(update={"data": self.data.model_copy(
            update={"sha256": sha256, "builder_version": builder_version})})

    @property
    def label(self) -> str:
        return self.name or f"{self.behavior}-{self.base_model.split('/')[-1]}-s{self.seed}"

    def spec_hash(self) -> str:
        """Stable identity of the job: everything but the display name."""
        payload = self.model_dump(mode="json", exclude={"name"})
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_spec(data: dict, where: str = "spec", *, path: Path | None = None, text: str | None = None,
               loc: tuple[str | int, ...] = (), from_defaults: frozenset[str] = frozenset()) -> OrganismSpec:
    """Validate one spec. From a file, pass its `path`, `text`, the entry's `loc` in it and the keys it
    took from `defaults:`, and each error reads `file:line: field organisms.0.hyper.epochs: why`."""
    try:
        return OrganismSpec.model_validate(data)
    except ValidationError as e:
        if path is None:
            raise SpecError(describe_validation_error(f"{where}: invalid organism spec", e)) from None
        raise SpecError(_describe_at(e, path, text, loc, from_defaults)) from None


def _describe_at(err: ValidationError, path: Path, text: str | None, loc: tuple[str | int, ...],
                 from_defaults: frozenset[str]) -> str:
    lines = []
    for e in err.errors():
        # A bad value inherited from `defaults:` is fixed there, so point there.
        full = ("defaults", *e["loc"]) if e["loc"] and e["loc"][0] in from_defaults else (*loc, *e["loc"])
        line = _line(text, full)
        lines.append(f"{where_in(path, line)}: field {field_name(full)}: {e['msg']}")
    return "\n".join(lines)


def _line(text: str | None, loc: tuple[str | int, ...]) -> int | None:
    return yaml_line(text, list(loc)) if text is not None else None


def _fail(path: Path, text: str, loc: tuple[str | int, ...], message: str) -> SpecError:
    # An empty document has no node to point at: its problem is on line 1.
    return SpecError(f"{where_in(path, _line(text, loc) or 1)}: field {field_name(loc)}: {message}")


def load_specs(path: Path) -> list[OrganismSpec]:
    """Read a YAML file holding one spec, a list of specs, or `{defaults: {...}, organisms: [...]}`;
    `seeds: [0, 1, 2]` on an entry expands it into one spec per seed. Every error names the file,
    the line and the field."""
    path = Path(path)
    try:
        text = read_user_text(path)
        raw = load_yaml_text(text, path)
    except InputError as e:
        raise SpecError(str(e)) from None
    defaults: Any = {}
    prefix: tuple[str | int, ...] = ()
    if isinstance(raw, dict) and "organisms" in raw:
        extra = sorted(set(raw) - {"defaults", "organisms"})
        if extra:
            raise _fail(path, text, (extra[0],), "unknown key; a spec file with `organisms:` takes only "
                                                  "`defaults:` and `organisms:`")
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise _fail(path, text, ("defaults",), f"expected a mapping of spec fields, got {type(defaults).__name__}")
        entries, prefix = raw["organisms"], ("organisms",)
        if not isinstance(entries, list):
            raise _fail(path, text, prefix, f"expected a list of organism specs, got {type(entries).__name__}")
    elif isinstance(raw, list):
        entries = raw
    elif isinstance(raw, dict):
        entries = [raw]
    else:
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise _fail(path, text, (), f"expected a spec mapping, a list of specs or {{defaults:, organisms:}}; "
                                    f"got {got}")
    if not entries:
        raise _fail(path, text, prefix, "no organism specs")
    specs: list[OrganismSpec] = []
    for i, entry in enumerate(entries):
        loc = (*prefix, i) if isinstance(raw, list) or prefix else ()
        if not isinstance(entry, dict):
            raise _fail(path, text, loc, f"expected a mapping, got {type(entry).__name__}")
        merged = {**defaults, **entry}
        seeds = merged.pop("seeds", None)
        if seeds is None:
            seeds = [merged.get("seed", 0)]
        elif not isinstance(seeds, list) or not seeds:
            seed_loc = (*loc, "seeds") if "seeds" in entry else ("defaults", "seeds")
            raise _fail(path, text, seed_loc, f"expected a non-empty list of integers such as [0, 1, 2], "
                                               f"got {seeds!r}")
        inherited = frozenset(set(defaults) - set(entry))
        for seed in seeds:
            specs.append(parse_spec({**merged, "seed": seed}, path=path, text=text, loc=loc, from_defaults=inherited))
    return specs
