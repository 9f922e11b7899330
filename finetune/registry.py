"""The organism registry: spec hash -> training job -> state -> Inspect model string.

A single JSON file, because a researcher should be able to read it, diff it and commit it. It exists so
that training is idempotent and resumable:

* the same spec submitted twice returns the recorded job instead of paying for a second one;
* the intent to submit is recorded *before* the backend is called, with a deterministic idempotency key
  (`sa-<spec hash>`) that the backend attaches to the job; if the process dies between the service
  creating the job and the registry recording its id, the next `ensure` asks `backend.find(key)`
  instead of submitting again;
* a failed job stays failed (with its error) until the caller explicitly asks `retry_failed=True`.

Writes go to a temporary file in the same directory, are fsynced and then `os.replace`d over the
registry, so a crash never leaves half a file. Read-modify-write cycles hold an exclusive `fcntl`
lock on `<registry>.lock`; submissions of one spec additionally hold `<registry>.locks/<hash>.lock`
for the duration of the submit, so two processes ensuring the same spec cannot both submit, while
different specs still proceed in parallel. (`fcntl` makes this POSIX-only, like the rest of training.)

No secrets are ever written: every string of a record passes through `scrub()` before it is stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from selfaware.finetune.backends.atomic import write_json_atomic
from selfaware.finetune.backends.base import TERMINAL, UNKNOWN, BackendError, TrainingBackend
from selfaware.finetune.spec import OrganismSpec
from selfaware.redact import REDACTED, scrub, scrub_deep  # noqa: F401  (REDACTED, scrub: re-exported)

FORMAT_VERSION = 1
MAX_EVENTS = 200  # keep the file readable; the service keeps the full log
# Registry-only states around the backend's JobState:
#   submitting: intent recorded, job id not (yet) known;
#   rejected:   the backend refused the submission before any job existed (bad file, no access):
#               nothing was paid for, so the next ensure may submit again.
SUBMITTING, REJECTED = "submitting", "rejected"

def idempotency_key(spec_hash: str, attempt: int = 0) -> str:
    """`sa-<hash>` for the first submission, `sa-<hash>-r<n>` for explicit retries of a failed job
    (a retry needs a new key, or `find` would return the failed job again)."""
    return f"sa-{spec_hash}" if attempt == 0 else f"sa-{spec_hash}-r{attempt}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Record:
    hash: str
    spec: dict[str, Any]
    key: str
    backend: str
    state: str = SUBMITTING
    job_id: str | None = None
    model: str | None = None
    error: str | None = None
    events: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    attempt: int = 0
    previous_jobs: list[str] = field(default_factory=list)  # failed jobs replaced by retry_failed
    provider_state: str | None = None  # the service's own word for `state` (shown when it is "unknown")
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)

    @property
    def label(self) -> str:
        return OrganismSpec.model_validate(self.spec).label

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class RegistryError(RuntimeError):
    """The registry file is unreadable, or a request names a spec it does not hold."""


class WaitTimeout(TimeoutError):
    """A bounded wait ended before the job did; `record` is the last state seen."""

    def __init__(self, record: Record, timeout: float):
        self.record = record
        state = describe_state(record)
        hint = (" (a state selfaware does not know: check the job on the service's dashboard)"
                if record.state == UNKNOWN else "")
        super().__init__(f"{record.label} ({record.hash}, job {record.job_id}) still {state} after "
                         f"{timeout:g}s{hint}")


def describe_state(record: Record) -> str:
    """The state, with the service's own word when it differs (e.g. `unknown (provider: paused)`)."""
    if record.provider_state and record.provider_state != record.state:
        return f"{record.state} (provider: {record.provider_state})"
    return record.state


BackendResolver = Callable[[str], TrainingBackend]


def _default_resolver(name: str) -> TrainingBackend:
    from selfaware.finetune.backends import get_backend

    return get_backend(name)


class Registry:
    def __init__(self, path: Path | str, *, backends: BackendResolver | None = None):
        self.path = Path(path)
        self._resolve = backends or _default_resolver

    # -- storage ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _flock(self, lock_path: Path) -> Iterator[None]:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _file_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._flock(self.path.with_name(self.path.name + ".lock"))

    def _spec_lock(self, spec_hash: str) -> contextlib.AbstractContextManager[None]:
        return self._flock(self.path.with_name(self.path.name + ".locks") / f"{spec_hash}.lock")

    def _load(self) -> dict[str, Record]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (UnicodeDecodeError, IsADirectoryError) as e:  # never overwritten either (see below)
            raise RegistryError(f"{self.path}: unreadable registry ({e}); fix or move it aside") from None
        try:
            data = json.loads(text)
            return {h: Record.from_dict(r) for h, r in data.get("records", {}).items()}
        except (json.JSONDecodeError, AttributeError, TypeError) as e:
            # Never overwrite a file we cannot read: it may hold the only copy of paid-for job ids.
            raise RegistryError(f"{self.path}: unreadable registry ({e}); fix or move it aside") from None

    def _save(self, records: dict[str, Record]) -> None:
        payload = {
            "version": FORMAT_VERSION,
            "records": {h: scrub_deep(r.to_dict()) for h, r in sorted(records.items())},
        }
        write_json_atomic(self.path, payload, sort_keys=True)

    def _update(self, spec_hash: str, change: Callable[[Record | None], Record]) -> Record:
        """Read-modify-write one record under the file lock."""
        with self._file_lock():
            records = self._load()
            rec = change(records.get(spec_hash))
            rec.updated = _now()
            records[spec_hash] = rec
            self._save(records)
            return Record.from_dict(scrub_deep(rec.to_dict()))

    # -- queries ---------------------------------------------------------------------------------

    def get(self, spec_hash: str) -> Record | None:
        with self._file_lock():
            return self._load().get(spec_hash)

    def list(self) -> list[Record]:
        with self._file_lock():
            return sorted(self._load().values(), key=lambda r: (r.created, r.hash))

    # -- submission ------------------------------------------------------------------------------

    def ensure(
        self, spec: OrganismSpec, backend: TrainingBackend, train_file: Path | str, *, retry_failed: bool = False
    ) -> Record:
        """Return the job for `spec`, submitting it only if no job exists for its hash yet."""
        h = spec.spec_hash()
        with self._spec_lock(h):
            rec = self.get(h)
            if rec is not None and rec.job_id is not None:
                if rec.state in ("failed", "cancelled") and retry_failed:
                    return self._submit(spec, backend, train_file, attempt=rec.attempt + 1, replaced=rec)
                return rec  # running, done, or failed-and-not-retried: never pay twice
            if rec is not None:
                # Intent recorded but no job id: a crash (or refusal) between submit and record.
                # The service may hold the job already; ask before submitting again.
                found = backend.find(rec.key)
                if found is not None:
                    return self._update(h, lambda r: _with(r, job_id=found, state="queued", error=None))
                return self._submit(spec, backend, train_file, attempt=rec.attempt, replaced=None)
            return self._submit(spec, backend, train_file, attempt=0, replaced=None)

    def _submit(
        self,
        spec: OrganismSpec,
        backend: TrainingBackend,
        train_file: Path | str,
        *,
        attempt: int,
        replaced: Record | None,
    ) -> Record:
        h = spec.spec_hash()
        key = idempotency_key(h, attempt)

        def intent(old: Record | None) -> Record:
            previous = list(old.previous_jobs) if old else []
            if replaced is not None and replaced.job_id:
                previous.append(replaced.job_id)
            return Record(
                hash=h,
                spec=spec.model_dump(mode="json"),
                key=key,
                backend=backend.name,
                attempt=attempt,
                previous_jobs=previous,
                created=old.created if old else _now(),
            )

        self._update(h, intent)  # the intent is durable before the service hears of it
        try:
            job_id = backend.submit(spec, Path(train_file), key=key)
        except (BackendError, ValueError) as e:
            # A definite refusal (bad file, no access, bad parameters): no job exists. Record why and
            # let the caller see it. Other exceptions are ambiguous and leave the intent in place.
            reason = scrub(str(e))
            self._update(h, lambda r: _with(r, state=REJECTED, error=reason))
            raise
        return self._update(h, lambda r: _with(r, job_id=job_id, state="queued", error=None))

    # -- progress --------------------------------------------------------------------------------

    def refresh(self, spec_hash: str, backend: TrainingBackend | None = None) -> Record:
        """Poll the backend once and record state, model, error, events and checkpoints."""
        rec = self.get(spec_hash)
        if rec is None:
            raise RegistryError(f"no organism with spec hash {spec_hash} in {self.path}")
        if rec.job_id is None or rec.done:
            return rec
        status = (backend or self._resolve(rec.backend)).status(rec.job_id)

        def apply(r: Record | None) -> Record:
            assert r is not None
            return _with(
                r,
                state=status.state,
                model=status.model,
                error=scrub(status.error) if status.error else None,
                events=[scrub(e) for e in status.events][-MAX_EVENTS:],
                checkpoints=list(status.checkpoints),
                provider_state=status.provider_state,
            )

        return self._update(spec_hash, apply)

    def recover(self, spec_hash: str, backend: TrainingBackend | None = None) -> Record:
        """A record left `submitting` (a crash between submit and record) gets its job id back when the
        service holds a job with the record's key; otherwise it is returned unchanged, still without a job:
        the submission never landed and a rerun of `selfaware finetune` with the same spec submits it."""
        rec = self.get(spec_hash)
        if rec is None:
            raise RegistryError(f"no organism with spec hash {spec_hash} in {self.path}")
        if rec.job_id is not None or rec.state != SUBMITTING:
            return rec
        backend = backend or self._resolve(rec.backend)
        with self._spec_lock(spec_hash):  # a submission in flight in another process finishes first
            rec = self.get(spec_hash)
            assert rec is not None
            if rec.job_id is not None or rec.state != SUBMITTING:
                return rec
            found = backend.find(rec.key)
            if found is None:
                return rec
            return self._update(spec_hash, lambda r: _with(r, job_id=found, state="queued", error=None))

    def wait(
        self,
        spec_hash: str,
        *,
        poll: float = 30.0,
        max_poll: float = 600.0,
        timeout: float | None = None,
        backend: TrainingBackend | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[Record], None] | None = None,
    ) -> Record:
        """Refresh until the job is terminal; the poll interval grows 1.5x per round up to `max_poll`.

        A `submitting` record is first recovered (`recover`); a record with no job to wait for (rejected,
        or never submitted) is returned as it is. `progress` hears every change of state. Raises
        `WaitTimeout` (naming the last state, the service's word included) rather than sleep past
        `timeout` seconds; an "unknown" state is polled like any other until then."""
        rec = self.recover(spec_hash, backend)
        if rec.job_id is None:
            return rec
        start = time.monotonic()
        interval = poll
        seen: tuple[str, str | None] | None = None
        while True:
            rec = self.refresh(spec_hash, backend)
            if progress is not None and (rec.state, rec.provider_state) != seen:
                progress(rec)
            seen = (rec.state, rec.provider_state)
            if rec.done:
                return rec
            if timeout is not None and time.monotonic() - start + interval > timeout:
                raise WaitTimeout(rec, timeout)
            sleep(interval)
            interval = min(interval * 1.5, max_poll)


def _with(rec: Record | None, **changes: Any) -> Record:
    assert rec is not None, "record vanished while locked"
    data = rec.to_dict()
    data.update(changes)
    return Record.from_dict(data)
