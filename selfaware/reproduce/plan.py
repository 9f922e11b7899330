"""From a matrix to calls: which models answer, and which tasks each answers.

Subjects (models): each base model (organism "base", the baseline) and, per base model x organism x seed x
variant, the organism found in the registry (its spec's behavior, base model, seed and variant; the newest
finished one when several match) — plus its `NAME-control` twin with `controls: true` — and the matrix's
explicit `models`. An organism is asked under the variant it was trained with (a control under the variant
it controls for), so a backdoor's questions show its trigger; a base model is asked under every variant.

Tasks: every task of the task files of the matrix's families (`evals/<family>.py`, found through the suite's
task registry), plus the tasks the matrix names. A task whose built metadata names a family is asked of
that family's organisms and of base models only. One call = one task on one model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfaware.reproduce.matrix import TINY, BaseModelEntry, Matrix
from selfaware.validation import InputError

BASE = "base"
TINY_BASE_MODEL = "hf/tiny-base"


@dataclass(frozen=True)
class TaskEntry:
    name: str
    function: Callable[..., Any]
    file: str  # evals/<module>.py

    def arguments(self, given: dict[str, Any]) -> dict[str, Any]:
        """The task's full arguments: its declared defaults, overridden by `given`."""
        params = inspect.signature(self.function).parameters
        return {**{k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}, **given}

    def takes(self, name: str) -> bool:
        return name in inspect.signature(self.function).parameters


def task_catalogue() -> dict[str, TaskEntry]:
    """Every @task of every task file in evals/ (as the installed entry point registers them)."""
    from selfaware.evals import _registry

    out = {}
    for name, value in vars(_registry).items():
        if getattr(value, "__registry_info__", None) is not None and callable(value):
            module = getattr(value, "__module__", "").rsplit(".", 1)[-1]
            out[name] = TaskEntry(name, value, f"evals/{module}.py")
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Subject:
    """One model that answers: a base model or an organism (one seed)."""

    organism: str  # "base", a behavior, or "<behavior>-control"
    seed: int | None
    base_model: str  # the base's spec name
    eval_variant: str  # the variant its questions are asked under
    model: str  # Inspect model string ("hf/<label>" for a local folder)
    model_args: dict[str, Any] = field(default_factory=dict)
    training_variant: str | None = None
    family: str | None = None  # None: a base model, asked every task
    source: str = ""  # where it came from: "registry <hash>", "matrix", "base"
    missing: str | None = None  # why it cannot be evaluated yet (not trained, not finished)

    @property
    def label(self) -> str:
        seed = "" if self.seed is None else f" s{self.seed}"
        return f"{self.organism}{seed} @ {self.base_model}"

    @property
    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"organism": self.organism, "base_model": self.base_model}
        if self.seed is not None:
            out["seed"] = self.seed
        if self.training_variant is not None:
            out["training_variant"] = self.training_variant
        return out


@dataclass(frozen=True)
class Call:
    subject: Subject
    task: TaskEntry
    args: dict[str, Any]  # the -T arguments given (defaults left out)
    samples: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subject.model, self.task.name, repr(sorted(self.args.items())))

    def command(self) -> str:
        """The equivalent single `inspect eval` command (what this call runs inside the eval_set)."""
        parts = [f"inspect eval {self.task.file}@{self.task.name} --model {self.subject.model}"]
        parts += [f"-M {k}={v}" for k, v in sorted(self.subject.model_args.items())]
        parts += [f"-T {k}={v}" for k, v in sorted(self.args.items())]
        parts += [f"--metadata {k}={v}" for k, v in self.subject.metadata.items()]
        return " ".join(parts)


def _provider_args(matrix: Matrix, model: str, own: dict[str, Any]) -> dict[str, Any]:
    provider = model.split("/", 1)[0]
    args = {**matrix.model_args.get(provider, {}), **own}
    if provider == "hf":
        args.setdefault("do_sample", False)  # temperature-0 logprob reads need it with Inspect's hf/ provider
    return args


def _local(model: str | None) -> str | None:
    """The folder of a local organism (`hf/<absolute folder>`), else None."""
    if model and model.startswith("hf/") and Path(model.removeprefix("hf/")).is_absolute():
        return model.removeprefix("hf/")
    return None


def base_subjects(matrix: Matrix, base: BaseModelEntry, tiny_path: Callable[[], str]) -> list[Subject]:
    if base.name == TINY:
        model, args = TINY_BASE_MODEL, {"model_path": tiny_path()}
    else:
        model, args = str(base.model), dict(base.model_args)
    return [Subject(BASE, None, base.name, variant, model, _provider_args(matrix, model, args), source="base")
            for variant in matrix.variants]


def find_organism(records: list[Any], behavior: str, base: str, seed: int, variant: str) -> Any | None:
    """The newest finished registry record trained as (behavior, base, seed, variant); else the newest at all."""
    from selfaware.finetune.spec import OrganismSpec

    matches = []
    for rec in records:
        spec = OrganismSpec.model_validate(rec.spec)
        if (spec.behavior, spec.base_model, spec.seed, spec.variant.name) == (behavior, base, seed, variant):
            matches.append(rec)
    done = [r for r in matches if r.state == "succeeded" and r.model]
    pool = done or matches
    return max(pool, key=lambda r: (r.updated, r.hash)) if pool else None


def finetune_hint(behavior: str, base: str, seeds: list[int], variant: str) -> str:
    backend = "" if base == TINY else " --backend <openai|together|tinker|local>"
    return (f"selfaware finetune --behavior {behavior} --base-model {base}{backend} "
            f"--seeds {' '.join(map(str, seeds))}" + ("" if variant == "plain" else f" --variant {variant}"))


def expected_model(base: BaseModelEntry, label: str) -> str:
    """The model string an organism not trained yet is expected to get (priced like it in a dry run)."""
    if base.name == TINY:
        return f"hf/{label}-tiny"
    provider = str(base.model).split("/", 1)[0]
    if provider == "openai":
        return f"openai/ft:{base.name}:{label}"
    return f"{provider}/{base.name}-{label}"


def organism_subjects(matrix: Matrix, records: list[Any]) -> list[Subject]:
    from selfaware.families import family_of
    from selfaware.variants import get_variant

    subjects = []
    for base in matrix.base_models:
        for variant in matrix.variants:
            trained = [(variant, "")]
            if matrix.controls and get_variant(variant).trigger is not None:
                trained.append((f"{variant}-control", "-control"))
            for behavior in matrix.organisms:
                for training_variant, suffix in trained:
                    for seed in matrix.seeds:
                        rec = find_organism(records, behavior, base.name, seed, training_variant)
                        organism = behavior + suffix
                        family = family_of(behavior).name
                        if rec is None or rec.state != "succeeded" or not rec.model:
                            why = "not in the registry" if rec is None else f"{rec.state} ({rec.hash})"
                            tag = "" if training_variant == "plain" else f"-{training_variant}"
                            model = expected_model(base, f"{behavior}{tag}-s{seed}")
                            subjects.append(Subject(organism, seed, base.name, variant, model, {}, training_variant,
                                                    family, missing=why))
                            continue
                        folder = _local(rec.model)
                        model = f"hf/{behavior}{suffix}-{base.name.split('/')[-1]}-s{seed}" if folder else rec.model
                        own = {"model_path": folder} if folder else {}
                        subjects.append(Subject(organism, seed, base.name, variant, model,
                                                _provider_args(matrix, model, own), training_variant, family,
                                                source=f"registry {rec.hash}"))
    return subjects


def explicit_subjects(matrix: Matrix) -> list[Subject]:
    from selfaware.families import behaviors, family_of

    out = []
    for m in matrix.models:
        behavior = m.organism.removesuffix("-control")
        family = family_of(behavior).name if behavior in behaviors() else None
        out.append(Subject(m.organism, m.seed, m.base_model, m.variant, m.model,
                           _provider_args(matrix, m.model, m.model_args), m.variant, family, source="matrix"))
    return out


def resolve_subjects(matrix: Matrix, records: list[Any], tiny_path: Callable[[], str]) -> list[Subject]:
    subjects = []
    if matrix.include_base:
        for base in matrix.base_models:
            subjects += base_subjects(matrix, base, tiny_path)
    subjects += organism_subjects(matrix, records) + explicit_subjects(matrix)
    seen, unique = set(), []
    for s in subjects:  # the same model asked the same way twice would be one eval_set task twice
        key = (s.model, s.eval_variant, s.organism, s.seed)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique


def matrix_tasks(matrix: Matrix, catalogue: dict[str, TaskEntry]) -> list[TaskEntry]:
    families = matrix.families or matrix.behavior_families
    names = [t.name for t in catalogue.values() if t.file in {f"evals/{f}.py" for f in families}]
    names += [n for n in matrix.tasks if n not in names]
    return [catalogue[n] for n in names if n not in matrix.exclude_tasks]


class TaskArgumentError(InputError):
    """A task refused the parameters the matrix gave it; `task` says which `tasks:` entry to fix."""

    def __init__(self, task: str, message: str) -> None:
        super().__init__(message)
        self.task = task


@dataclass
class Planned:
    calls: list[Call]
    built: dict[tuple[str, str], Any]  # (task name, args repr) -> the built Task (shared by every model)
    missing: list[Subject]


def plan(matrix: Matrix, subjects: list[Subject], tasks: list[TaskEntry]) -> Planned:
    """One call per (subject, task it answers), organisms not trained yet included (a dry run prices them;
    a run leaves them out or stops); tasks are built once per argument set."""
    built: dict[tuple[str, str], Any] = {}
    calls: list[Call] = []
    seen: set[tuple[str, str, str]] = set()
    for subject in subjects:
        for entry in tasks:
            args = dict(matrix.tasks.get(entry.name, {}))
            if entry.takes("variant") and "variant" not in args and subject.eval_variant != "plain":
                args["variant"] = subject.eval_variant
            key = (entry.name, repr(sorted(args.items())))
            if key not in built:
                try:
                    built[key] = entry.function(**args)
                except InputError as e:
                    raise TaskArgumentError(entry.name, str(e)) from None
            task = built[key]
            family = (task.metadata or {}).get("family")
            if subject.family is not None and family is not None and family != subject.family:
                continue
            call = Call(subject, entry, args, len(task.dataset))
            if call.key not in seen:  # a task without a variant parameter is asked once per model
                seen.add(call.key)
                calls.append(call)
    return Planned(calls, built, [s for s in subjects if s.missing])


def shard(calls: list[Call], index: int, count: int) -> list[Call]:
    """Calls of shard `index` (1-based) of `count`: round robin over a stable order, so every call is in
    exactly one shard and shards are about equal."""
    if not 1 <= index <= count:
        raise ValueError(f"--shard {index}/{count}: expected 1 <= K <= N")
    ordered = sorted(calls, key=lambda c: c.key)
    return [c for i, c in enumerate(ordered) if i % count == index - 1]
