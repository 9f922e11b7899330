"""OpenAI fine-tuning through the official SDK.

Two rules shape this module:

* **Validate before upload.** The file is checked locally (`validate_chat_jsonl`) so a bad file costs
  nothing and every problem is reported at once.
* **Never pay twice.** Every job carries `metadata.selfaware_key` (and the key as its `suffix`). The SDK's
  own retries are switched off (`max_retries=0`) because it would blindly re-POST a job create after a
  timeout or a 5xx, and the server may have created the job already. The shared loop (`retry.py`)
  retries 429/5xx and connection errors with exponential backoff, and before re-trying a *create* it
  asks `find(key)`.

Hyper-parameters: OpenAI takes `n_epochs`, `batch_size` and a `learning_rate_multiplier`
(`spec.hyper.lr_multiplier`); an absolute `spec.hyper.learning_rate` is meant for local training and is
not sent. LoRA rank/alpha do not apply.

The API key is read by the SDK from `OPENAI_API_KEY`; it never enters a message we build, and every
error or event text passes through `scrub()` anyway.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import openai

from selfaware.finetune.backends.base import UNKNOWN, BackendError, JobState, JobStatus, map_state
from selfaware.finetune.backends.retry import RetryPolicy, Transient, call_with_retry, create_once, is_transient_status
from selfaware.finetune.backends.training_cost import approve_training
from selfaware.redact import scrub
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.validate import validate_chat_jsonl

T = TypeVar("T")

STATES: dict[str, JobState] = {
    "validating_files": "queued",
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}
MAX_SUFFIX = 64
TRAINING_NOT_AVAILABLE = (
    "OpenAI refused to start a fine-tuning job (403 training_not_available): this organization cannot "
    "create new fine-tuning jobs (OpenAI is winding down self-serve fine-tuning). Train the organism "
    "with the local backend (backend: local, TRL + PEFT) or an open-model service (backend: together)."
)


def suffix_for(key: str) -> str:
    """OpenAI suffixes are at most 64 characters of letters, digits, '-' and '_'."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)[:MAX_SUFFIX]


def _base_model(name: str) -> str:
    # Accept Inspect-style "openai/gpt-4o-mini-2024-07-18" as well as the bare OpenAI name.
    return name.removeprefix("openai/")


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        client: openai.OpenAI | None = None,
        *,
        max_attempts: int = 6,
        base_delay: float = 2.0,
        max_delay: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        min_examples: int = 10,
    ):
        self._given = client
        self._client: openai.OpenAI | None = None
        self.policy = RetryPolicy(max_attempts, base_delay, max_delay, sleep)
        self.min_examples = min_examples

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            try:
                base = self._given or openai.OpenAI()
            except openai.OpenAIError:
                raise BackendError(
                    "no OpenAI credentials: set OPENAI_API_KEY (and OPENAI_BASE_URL for a proxy)"
                ) from None
            self._client = base.with_options(max_retries=0)  # we own retries; see module docstring
        return self._client

    # -- retries ---------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], *, before_retry: Callable[[], T | None] | None = None) -> T:
        """Run `fn` under the shared retry policy, translating the SDK's errors."""
        return call_with_retry("OpenAI", what, lambda: _translated(what, fn), self.policy,
                               before_retry=before_retry)

    # -- protocol --------------------------------------------------------------------------------

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        validate_chat_jsonl(train_file, min_examples=self.min_examples)  # before any upload
        existing = self.find(key)
        if existing is not None:
            return existing
        approve_training(self.name, _base_model(spec.base_model), train_file, spec.hyper.epochs, spec.label)

        def upload() -> Any:
            # Re-uploading after an ambiguous failure only duplicates a file, never a paid job.
            with open(train_file, "rb") as fh:
                return self.client.files.create(file=fh, purpose="fine-tune")

        file_id = self._call("file upload", upload).id
        hyper = {
            "n_epochs": spec.hyper.epochs,
            "batch_size": spec.hyper.batch_size,
            "learning_rate_multiplier": spec.hyper.lr_multiplier,
        }
        params: dict[str, Any] = {
            "model": _base_model(spec.base_model),
            "training_file": file_id,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": {k: v for k, v in hyper.items() if v is not None}},
            },
            "seed": spec.seed,
            "suffix": suffix_for(key),
            "metadata": {
                "selfaware_key": key,
                "spec_hash": spec.spec_hash(),
                "behavior": spec.behavior,
                "label": spec.label[:512],
            },
        }

        def create() -> str:
            return _translated("job create", lambda: self.client.fine_tuning.jobs.create(**params).id)

        return create_once("OpenAI", create, lambda: self.find(key), self.policy)

    def find(self, key: str) -> str | None:
        """The newest job carrying `key`: first by the metadata filter, then by scanning recent jobs
        (for proxies or API versions that ignore the filter) on metadata or suffix."""

        def matches(job: Any) -> bool:
            meta = job.metadata or {}
            suffix = (getattr(job, "model_extra", None) or {}).get("user_provided_suffix")
            model = job.fine_tuned_model or ""
            return meta.get("selfaware_key") == key or suffix == suffix_for(key) or f":{suffix_for(key)}:" in model

        def search(**kw: Any) -> str | None:
            page = self._call("job list", lambda: self.client.fine_tuning.jobs.list(limit=100, **kw))
            hits = [j for j in page.data if matches(j)]
            return max(hits, key=lambda j: j.created_at).id if hits else None

        return search(metadata={"selfaware_key": key}) or search()

    def status(self, job_id: str) -> JobStatus:
        jobs = self.client.fine_tuning.jobs
        job = self._call("job status", lambda: jobs.retrieve(job_id))
        state = map_state(STATES, job.status)
        events = self._call("job events", lambda: jobs.list_events(job_id, limit=100)).data
        checkpoints = self._call("job checkpoints", lambda: jobs.checkpoints.list(job_id, limit=100)).data
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = scrub(f"{job.error.code}: {job.error.message}")
        elif state == "failed":
            error = "failed without an error message"
        elif state == UNKNOWN:
            error = f"OpenAI reports state {job.status!r}, which selfaware does not know"
        model = f"openai/{job.fine_tuned_model}" if state == "succeeded" and job.fine_tuned_model else None
        return JobStatus(
            job_id=job.id,
            state=state,
            model=model,
            error=error,
            # The API lists newest first; keep the log in time order.
            events=[scrub(f"[{e.level}] {e.message}") for e in sorted(events, key=lambda e: e.created_at)],
            checkpoints=[c.fine_tuned_model_checkpoint for c in checkpoints],
            provider_state=job.status,
        )


def _translated(what: str, fn: Callable[[], T]) -> T:
    """The SDK's errors as the retry loop's: transient ones retried, the rest a `BackendError` at once."""
    try:
        return fn()
    except openai.APIStatusError as e:
        if e.status_code == 403 and e.code == "training_not_available":
            raise BackendError(TRAINING_NOT_AVAILABLE) from None
        detail = scrub(f"HTTP {e.status_code} {e.code or ''}: {_message(e)}".replace(" :", ":"))
        if not is_transient_status(e.status_code):
            raise BackendError(f"OpenAI {what} failed: {detail}") from None
        raise Transient(detail) from None
    except openai.APIConnectionError as e:  # includes timeouts: the request may have landed
        raise Transient(scrub(f"{type(e).__name__}: {e}")) from None
    except (openai.APIResponseValidationError, json.JSONDecodeError) as e:  # a garbled 200: worth another try
        raise Transient(scrub(f"unreadable response: {type(e).__name__}: {e}")) from None


def _message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return e.message
