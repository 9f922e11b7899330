"""The contract every training backend fulfils, local or hosted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from selfaware.finetune.spec import OrganismSpec

# "unknown": the service reported a state this suite has no mapping for (e.g. "paused"); it is shown as
# such, with the service's own word in `JobStatus.provider_state`, and a bounded wait reports it.
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "unknown"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
UNKNOWN: JobState = "unknown"


def map_state(states: dict[str, JobState], provider_state: str) -> JobState:
    """The suite's state for a service's; never a guess (an unmapped state is "unknown", not "running")."""
    return states.get(provider_state, UNKNOWN)


@dataclass
class JobStatus:
    job_id: str
    state: JobState
    model: str | None = None  # the Inspect model string once succeeded (hf/..., openai/ft:...)
    error: str | None = None
    events: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    provider_state: str | None = None  # the service's own word for the state, e.g. "validating_files"


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
