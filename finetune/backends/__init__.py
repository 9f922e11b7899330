"""Training backends: local (TRL + PEFT), hosted fine-tuning services and Tinker.

`get_backend(name)` imports lazily so that using one backend never requires another's dependencies
(the local one needs torch; the hosted ones only need `openai` / `httpx2`; Tinker its SDK).
"""

from __future__ import annotations

from selfaware.finetune.backends.base import TERMINAL, BackendError, JobState, JobStatus, TrainingBackend

__all__ = ["TERMINAL", "BackendError", "JobState", "JobStatus", "TrainingBackend", "get_backend", "BACKENDS",
           "SYNCHRONOUS"]

BACKENDS = ("local", "openai", "together", "tinker")
# Backends whose `submit` trains to the end (the training loop runs in this process): their state is final
# as soon as `submit` returns, so the pipeline reads it at once instead of leaving the record `queued`.
SYNCHRONOUS = frozenset({"local", "tinker"})


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
    if name == "tinker":
        from selfaware.finetune.backends.tinker_api import TinkerBackend

        return TinkerBackend()
    raise BackendError(f"unknown training backend {name!r}; choose from {list(BACKENDS)}")
