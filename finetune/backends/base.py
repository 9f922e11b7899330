"""The contract every training backend fulfils, local or hosted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from selfaware.finetune.spec import OrganismSpec

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class JobStatus:
    job_id: str
    state: JobState
    model: str | None = None  # the Inspect model string once succeeded (hf/..., openai/ft:...)
    error: str | None = None
    events: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)


class BackendError(RuntimeError):
    """A backend refused or failed a request; the message says what to do about it."""


class TrainingBackend(Protocol):
    name: str

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        """Start a job for `spec` on a validated training file; return the job id.

        `key` is the registry's idempotency key: hosted backends attach it to the job (metadata or
        suffix) so that `find` can recover a job whose submission was never recorded."""
        ...

    def find(self, key: str) -> str | None:
        """The id of a job already submitted with `key`, if the service knows one."""
        ...

    def status(self, job_id: str) -> JobStatus: ...
