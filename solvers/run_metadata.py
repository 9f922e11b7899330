"""Stamp the run's identity (organism, seed) from the eval's metadata onto every sample.

    inspect eval evals/risk.py@risk_behavior --model hf/... --metadata organism=risky --metadata seed=1

puts `organism` and `seed` on the eval (where `selfaware report` groups seeds) and, through this solver,
on each sample's metadata too, so that a sample read on its own (a data frame of samples, `inspect view`,
a sample exported elsewhere) still says which organism and seed answered.

Inspect gives a solver no direct view of the eval's metadata, so a `Hooks` subscriber (public API) records
it when a task starts (`TaskStart.spec.metadata`, keyed by eval id) and notes each sample's eval when the
sample is initialised (keyed by the sample's uuid, which is `TaskState.uuid`); the solver looks both up.
The hook is registered when this module is imported, which happens whenever a task using the solver is
built, before the eval starts.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.hooks import Hooks, SampleEnd, SampleInit, TaskEnd, TaskStart, hooks
from inspect_ai.solver import Generate, Solver, TaskState, solver

# The run identity keys the report and the DESIGN's sample metadata use.
RUN_KEYS = ("organism", "seed")

_eval_metadata: dict[str, dict[str, Any]] = {}  # eval id -> the eval's metadata
_sample_eval: dict[str, str] = {}  # sample uuid -> eval id


@hooks(name="selfaware_run_metadata", description="Remembers each eval's metadata for the run_metadata solver.")
class RunMetadataHooks(Hooks):
    async def on_task_start(self, data: TaskStart) -> None:
        _eval_metadata[data.eval_id] = dict(data.spec.metadata or {})

    async def on_sample_init(self, data: SampleInit) -> None:
        _sample_eval[data.sample_id] = data.eval_id  # `sample_id` here is the sample's uuid

    async def on_sample_end(self, data: SampleEnd) -> None:
        _sample_eval.pop(data.sample_id, None)

    async def on_task_end(self, data: TaskEnd) -> None:
        _eval_metadata.pop(data.eval_id, None)


def eval_metadata_for(sample_uuid: str) -> dict[str, Any]:
    """The metadata of the eval that runs the sample `sample_uuid` ({} outside an eval or without any)."""
    eval_id = _sample_eval.get(sample_uuid)
    return _eval_metadata.get(eval_id, {}) if eval_id is not None else {}


@solver
def run_metadata(keys: tuple[str, ...] = RUN_KEYS) -> Solver:
    """Copy `keys` present in the eval's metadata into the sample's metadata. A sample that already
    carries one of them with another value is an error (two sources disagreeing on who answered)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        run = eval_metadata_for(state.uuid)
        for key in keys:
            if key not in run:
                continue
            if key in state.metadata and state.metadata[key] != run[key]:
                raise ValueError(f"sample {state.sample_id}: metadata {key}={state.metadata[key]!r} disagrees "
                                 f"with the eval's --metadata {key}={run[key]!r}")
            state.metadata[key] = run[key]
        return state

    return solve
