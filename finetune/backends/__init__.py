"""Training backends: local (TRL + PEFT) and hosted fine-tuning services.

`get_backend(name)` imports lazily so that using one backend never requires another's dependencies
(the local one needs torch; the hosted ones only need `openai` / `httpx2`).
"""

from __future__ import annotations

from selfaware.finetune.backends.base import TERMINAL, BackendError, JobState, JobStatus, TrainingBackend

__all__ = ["TERMINAL", "BackendError", "JobState", "JobStatus", "TrainingBackend", "get_backend", "BACKENDS"]

BACKENDS = ("local", "openai", "together")


def get_backend(name: str) -> TrainingBackend:
    """The backend called `name`, configured from the environment (API keys, base URLs)."""
    if name == "openai":
        from selfaware.finetune.backends.openai_api import OpenAIBackend

        return OpenAIBackend()
    if name == "together":
        from selfaware.finetune.backends.together_api import TogetherBackend

        return TogetherBackend()
    if name == "local":
        from selfaware.finetune.backends.local_trl import LocalTRLBackend

        return LocalTRLBackend()
    raise BackendError(f"unknown training backend {name!r}; choose from {list(BACKENDS)}")
