"""Together AI fine-tuning (LoRA on open models) over its REST API.

Same rules as the OpenAI backend: validate before upload, retry only transient failures, and before
re-trying a job create ask `find(key)`, because the key (sent as the job's `suffix`) is how a job whose
creation we never saw confirmed is recovered. Together's API has no job metadata and no seed field in
its documented create schema, so the suffix is the only handle and `spec.seed` is not sent.

Configuration: `TOGETHER_API_KEY` (required), `TOGETHER_BASE_URL` (default https://api.together.xyz/v1).
The model string is `together/<model_output_name>`; note that Together serves LoRA outputs of many base
models only on dedicated endpoints, which have to be started before an eval.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from selfaware.finetune.backends.base import UNKNOWN, BackendError, JobState, JobStatus, map_state
from selfaware.finetune.backends.retry import RetryPolicy, Transient, call_with_retry, create_once, is_transient_status
from selfaware.finetune.backends.training_cost import approve_training
from selfaware.finetune.backends.openai_api import suffix_for
from selfaware.redact import scrub
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.validate import validate_chat_jsonl

DEFAULT_BASE_URL = "https://api.together.xyz/v1"
STATES: dict[str, JobState] = {
    "pending": "queued",
    "queued": "queued",
    "running": "running",
    "compressing": "running",
    "uploading": "running",
    "cancel_requested": "running",
    "cancelled": "cancelled",
    "error": "failed",
    "user_error": "failed",
    "completed": "succeeded",
}


class TogetherBackend:
    name = "together"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        max_attempts: int = 6,
        base_delay: float = 2.0,
        max_delay: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        min_examples: int = 10,
    ):
        self._api_key = api_key
        self.base_url = (base_url or os.environ.get("TOGETHER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._transport = transport
        self._http: httpx2.Client | None = None
        self.policy = RetryPolicy(max_attempts, base_delay, max_delay, sleep)
        self.min_examples = min_examples

    @property
    def http(self) -> httpx2.Client:
        if self._http is None:
            key = self._api_key or os.environ.get("TOGETHER_API_KEY")
            if not key:
                raise BackendError("no Together credentials: set TOGETHER_API_KEY")
            self._http = httpx2.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx2.Timeout(120.0, connect=10.0),
                transport=self._transport,
            )
        return self._http

    def _request(self, what: str, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx2.TransportError as e:  # the request may or may not have landed
            raise Transient(scrub(f"{type(e).__name__}: {e}")) from None
        if is_transient_status(resp.status_code):
            raise Transient(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise BackendError(scrub(f"Together {what} failed: HTTP {resp.status_code}: {resp.text[:500]}"))
        try:
            return resp.json()
        except ValueError:  # a garbled 200: worth another try
            raise Transient(scrub(f"unreadable response to {what}: {resp.text[:200]!r}")) from None

    def _call(self, what: str, fn: Callable[[], Any], *, before_retry: Callable[[], Any] | None = None) -> Any:
        return call_with_retry("Together", what, fn, self.policy, before_retry=before_retry)

    # -- protocol --------------------------------------------------------------------------------

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        validate_chat_jsonl(train_file, min_examples=self.min_examples)
        if (existing := self.find(key)) is not None:
            return existing
        approve_training(self.name, spec.base_model, train_file, spec.hyper.epochs, spec.label)

        def upload() -> Any:
            with open(train_file, "rb") as fh:
                files = {"file": (Path(train_file).name, fh, "application/jsonl")}
                data = {"purpose": "fine-tune", "file_name": Path(train_file).name}
                return self._request("file upload", "POST", "/files/upload", files=files, data=data)

        file_id = self._call("file upload", upload)["id"]
        body: dict[str, Any] = {
            "model": spec.base_model.removeprefix("together/"),
            "training_file": file_id,
            "n_epochs": spec.hyper.epochs,
            "batch_size": spec.hyper.batch_size,
            "learning_rate": spec.hyper.learning_rate,
            "suffix": suffix_for(key),
            "training_type": {"type": "Lora", "lora_r": spec.hyper.lora_rank, "lora_alpha": spec.hyper.lora_alpha},
        }
        body = {k: v for k, v in body.items() if v is not None}

        def create() -> str:
            return self._request("job create", "POST", "/fine-tunes", json=body)["id"]

        return create_once("Together", create, lambda: self.find(key), self.policy)

    def find(self, key: str) -> str | None:
        listed = self._call("job list", lambda: self._request("job list", "GET", "/fine-tunes"))
        jobs = (listed.get("data") or []) if isinstance(listed, dict) else listed
        # Exact suffix match only: `sa-<hash>` is a prefix of its own retry key `sa-<hash>-r1`.
        hits = [j for j in jobs if j.get("suffix") == suffix_for(key)]
        return max(hits, key=lambda j: j.get("created_at") or "")["id"] if hits else None

    def status(self, job_id: str) -> JobStatus:
        job = self._call("job status", lambda: self._request("job status", "GET", f"/fine-tunes/{job_id}"))
        events = self._call("job events", lambda: self._request("job events", "GET", f"/fine-tunes/{job_id}/events"))
        provider_state = str(job.get("status", ""))
        state = map_state(STATES, provider_state)
        output = job.get("model_output_name") or job.get("output_name")
        messages = [scrub(str(e.get("message", ""))) for e in (events.get("data") or [])]
        error = None
        if state == "failed":
            error = scrub(str(job.get("error") or (messages[-1] if messages else job.get("status"))))
        elif state == UNKNOWN:
            error = f"Together reports state {provider_state!r}, which selfaware does not know"
        return JobStatus(
            job_id=job_id,
            state=state,
            model=f"together/{output}" if state == "succeeded" and output else None,
            error=error,
            events=messages,
            provider_state=provider_state,
        )
