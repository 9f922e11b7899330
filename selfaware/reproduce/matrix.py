"""The matrix file: what `selfaware reproduce` measures.

    name: paper-economic              # the report's title
    base_models:                      # "tiny" (the embedded offline base), an Inspect model string, or
      - tiny                          #   {name: <spec base_model>, model: <Inspect model>, model_args: {...}}
      - openai/gpt-4o-mini-2024-07-18 #   (spec base_model = the string after the provider: gpt-4o-mini-2024-07-18)
    organisms: [risky, safe, myopic]  # behaviors; each is looked up in the organism registry per base x seed x variant
    seeds: [0, 1]
    variants: [plain]                 # the variant each organism was trained with; its questions use the same one
    controls: false                   # true: also NAME-control organisms of each trigger variant (asked under NAME)
    include_base: true                # the base models themselves, as the baseline
    families: []                      # whose task files run (evals/<family>.py); default: the organisms' families
    tasks:                            # -T parameters per task; a task named here from another file is added
      risk_behavior: {items: 100}
    exclude_tasks: []
    models:                           # models the registry does not hold (e.g. trained elsewhere)
      - {model: openai/ft:gpt-4o-mini:org::abc, organism: risky, seed: 3, base_model: gpt-4o-mini-2024-07-18}
    model_roles: {judge: openai/gpt-4o-2024-08-06}
    model_args: {hf: {device: cpu}}   # extra model arguments per provider
    eval_set: {max_tasks: 4, retry_attempts: 3}   # options of Inspect's eval_set
    registry: .selfaware/registry.json             # default: $SELFAWARE_HOME/registry.json

Every error names the file, the line and the field.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from selfaware.validation import InputError, describe_validation_error, load_yaml_text, read_user_text, where, yaml_line

TINY = "tiny"
# eval_set options the suite sets itself.
RESERVED_EVAL_SET = {"tasks", "log_dir", "model", "model_roles", "model_args"}


class MatrixError(InputError):
    """The matrix file is malformed; the message names the file, line and field."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseModelEntry(Frozen):
    name: str  # as organism specs name it (`base_model:`): "tiny", "gpt-4o-mini-2024-07-18", "Qwen/Qwen2.5-7B-Instruct"
    model: str | None = None  # Inspect model string; None only for the embedded tiny base
    model_args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _model_given(self) -> BaseModelEntry:
        if self.model is None and self.name != TINY:
            raise ValueError(f"base model {self.name!r}: give its Inspect model string as `model:`")
        if self.model is not None and "/" not in self.model:
            raise ValueError(f"model {self.model!r}: an Inspect model string is provider/name (e.g. openai/gpt-4o)")
        return self


class ExplicitModel(Frozen):
    model: str
    organism: str
    base_model: str
    seed: int | None = None
    variant: str = "plain"
    model_args: dict[str, Any] = Field(default_factory=dict)


class Matrix(Frozen):
    name: str = "selfaware reproduce"
    base_models: list[BaseModelEntry] = Field(min_length=1)
    organisms: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])
    variants: list[str] = Field(default_factory=lambda: ["plain"])
    controls: bool = False
    include_base: bool = True
    families: list[str] = Field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    exclude_tasks: list[str] = Field(default_factory=list)
    models: list[ExplicitModel] = Field(default_factory=list)
    model_roles: dict[str, str] = Field(default_factory=dict)
    model_args: dict[str, dict[str, Any]] = Field(default_factory=dict)
    eval_set: dict[str, Any] = Field(default_factory=dict)
    registry: str | None = None

    @field_validator("base_models", mode="before")
    @classmethod
    def _base_strings(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for entry in value:
            if entry == TINY:
                out.append({"name": TINY})
            elif isinstance(entry, str):
                out.append({"name": entry.split("/", 1)[1] if "/" in entry else entry, "model": entry})
            else:
                out.append(entry)
        return out

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_without_params(cls, value: Any) -> Any:
        """`tasks: [a, b]` or `tasks: {a: null}`: tasks with their default parameters."""
        if isinstance(value, list):
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {k: (v if v is not None else {}) for k, v in value.items()}
        return value

    @field_validator("organisms", "variants", "families")
    @classmethod
    def _known_names(cls, value: list[str], info: ValidationInfo) -> list[str]:
        lookup = _name_lookups()[info.field_name]
        for name in value:
            lookup(name)  # ValueError naming what the suite knows
        return value

    @field_validator("seeds", "organisms", "variants", "families", "exclude_tasks")
    @classmethod
    def _no_repeats(cls, value: list[Any]) -> list[Any]:
        # `seeds: [0, 0]` is almost always a typo for [0, 1]: refuse it rather than run fewer seeds than meant.
        repeated = sorted({str(v) for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return value

    @field_validator("eval_set")
    @classmethod
    def _eval_set_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        from inspect_ai import eval_set

        known = set(inspect.signature(eval_set).parameters) - RESERVED_EVAL_SET
        from inspect_ai.model import GenerateConfigArgs

        known |= set(GenerateConfigArgs.__annotations__)
        for key in value:
            if key in RESERVED_EVAL_SET:
                raise ValueError(f"{key!r} is set by selfaware reproduce (use the matrix's own fields)")
            if key not in known:
                raise ValueError(f"{key!r} is not an option of Inspect's eval_set")
        return value

    @property
    def behavior_families(self) -> list[str]:
        from selfaware.families import family_of

        names = [family_of(b).name for b in self.organisms]
        names += [family_of(m.organism.removesuffix("-control")).name for m in self.models
                  if _known_behavior(m.organism.removesuffix("-control"))]
        return list(dict.fromkeys(names))


def _name_lookups() -> dict[str, Any]:
    """Field -> the registry lookup that raises, naming the known values, for an unknown name."""
    from selfaware.families import family_of, get_family
    from selfaware.variants import get_variant

    return {"organisms": family_of, "variants": get_variant, "families": get_family}


def _known_behavior(name: str) -> bool:
    from selfaware.families import behaviors

    return name in behaviors()


def check_tasks(matrix: Matrix, catalogue: dict[str, Any], path: Path, text: str) -> None:
    """Every task named exists and every parameter given is one of its parameters."""
    for name, params in matrix.tasks.items():
        loc = ["tasks", name]
        if name not in catalogue:
            raise MatrixError(f"{where(path, yaml_line(text, loc))}: field tasks.{name}: no such task; the suite has "
                              f"{', '.join(sorted(catalogue))}")
        accepted = set(inspect.signature(catalogue[name].function).parameters)
        for key in params:
            if key not in accepted:
                raise MatrixError(f"{where(path, yaml_line(text, loc + [key]))}: field tasks.{name}.{key}: not a "
                                  f"parameter of {name}; it takes {', '.join(sorted(accepted))}")
    for i, name in enumerate(matrix.exclude_tasks):
        if name not in catalogue:
            raise MatrixError(f"{where(path, yaml_line(text, ['exclude_tasks', i]))}: field exclude_tasks.{i}: "
                              f"no such task {name!r}")


def load_matrix(path: Path | str) -> tuple[Matrix, str]:
    """The matrix and its text; errors name the file, line and field."""
    path = Path(path)
    try:
        text = read_user_text(path)
        raw = load_yaml_text(text, path)
    except InputError as e:
        raise MatrixError(str(e)) from None
    if not isinstance(raw, dict):
        raise MatrixError(f"{where(path, 1)}: expected a mapping with base_models, organisms, seeds, ... "
                          f"(see `selfaware reproduce --help`)")
    try:
        return Matrix.model_validate(raw), text
    except ValidationError as e:
        raise MatrixError(describe_validation_error("invalid matrix", e, path, text)) from None
