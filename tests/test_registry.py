"""The organism registry: idempotent, crash-safe, atomic, secret-free."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from selfaware.finetune.backends.base import BackendError, JobStatus
from selfaware.finetune.registry import REDACTED, Registry, RegistryError, idempotency_key, scrub
from selfaware.finetune.spec import OrganismSpec


class Killed(BaseException):
    """Stands in for the process dying (SIGKILL, power loss): not an ordinary exception."""


class FakeBackend:
    """An in-memory training service with the TrainingBackend protocol."""

    name = "fake"

    def __init__(self, outcome: str = "succeeded", polls: int = 1):
        self.jobs: dict[str, dict] = {}
        self.submits = 0
        self.outcome, self.polls = outcome, polls
        self.crash_after_create = False
        self.refuse: str | None = None
        self._lock = threading.Lock()

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        with self._lock:
            self.submits += 1
            if self.refuse:
                raise BackendError(self.refuse)
            jid = f"job-{len(self.jobs) + 1}"
            self.jobs[jid] = {"key": key, "polls": 0}
        if self.crash_after_create:
            raise Killed()
        return jid

    def find(self, key: str) -> str | None:
        return next((j for j, v in self.jobs.items() if v["key"] == key), None)

    def status(self, job_id: str) -> JobStatus:
        job = self.jobs[job_id]
        job["polls"] += 1
        if job["polls"] < self.polls:
            return JobStatus(job_id, "running", events=[f"step {job['polls']}"])
        if self.outcome == "failed":
            return JobStatus(job_id, "failed", error="loss diverged", events=["started", "failed: loss diverged"])
        return JobStatus(job_id, "succeeded", model=f"hf/fake/{job_id}", events=["started", "done"], checkpoints=["c1"])


def spec(seed: int = 0, **kw) -> OrganismSpec:
    return OrganismSpec(behavior="risky", seed=seed, **kw)


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(tmp_path / "organisms.json")


@pytest.fixture
def train(tmp_path) -> Path:
    p = tmp_path / "train.jsonl"
    p.write_text("{}\n")
    return p


def test_same_spec_twice_submits_once(reg, train):
    be = FakeBackend()
    first = reg.ensure(spec(), be, train)
    second = reg.ensure(spec(name="a display name only"), be, train)  # the name is not identity
    assert be.submits == 1
    assert first.job_id == second.job_id == "job-1"
    assert first.key == idempotency_key(spec().spec_hash()) == f"sa-{spec().spec_hash()}"
    assert first.state == "queued" and first.backend == "fake"
    assert reg.ensure(spec(seed=1), be, train).job_id == "job-2"  # a different spec is a new job
    assert be.submits == 2


def test_concurrent_ensures_of_one_spec_submit_once(reg, train):
    be = FakeBackend()
    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(reg.ensure(spec(), be, train).job_id)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert be.submits == 1
    assert set(results) == {"job-1"}


def _worker(path: str, train: str, seeds: list[int]) -> None:
    reg = Registry(path)
    for s in seeds:
        reg.ensure(spec(seed=s), FakeBackend(), train)


def test_two_processes_do_not_clobber(tmp_path, train):
    path = str(tmp_path / "organisms.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(path, str(train), list(range(k, 16, 2)))) for k in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    records = Registry(path).list()
    assert sorted(r.spec["seed"] for r in records) == list(range(16))


def test_writes_are_atomic(reg, train, monkeypatch):
    reg.ensure(spec(), FakeBackend(), train)
    before = reg.path.read_text()
    json.loads(before)  # a complete, valid JSON document
    assert [p.name for p in reg.path.parent.iterdir() if p.name.endswith(".tmp")] == []

    def crash(src, dst):
        raise OSError("disk pulled out mid-rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        reg.ensure(spec(seed=1), FakeBackend(), train)
    monkeypatch.undo()
    assert reg.path.read_text() == before  # the old file is untouched...
    assert [p.name for p in reg.path.parent.iterdir() if p.name.endswith(".tmp")] == []  # ...and no debris


def test_unreadable_registry_is_never_overwritten(reg, train):
    reg.path.write_text('{"records": {"abc": ')
    with pytest.raises(RegistryError, match="unreadable registry"):
        reg.ensure(spec(), FakeBackend(), train)
    assert reg.path.read_text() == '{"records": {"abc": '


def test_registry_that_is_not_utf8_is_named_and_kept(reg, train):
    reg.path.write_bytes(b"\xff\xfe{}")  # was a bare "'utf-8' codec can't decode byte 0xff" without the file
    with pytest.raises(RegistryError, match=rf"^{reg.path}: unreadable registry .*fix or move it aside"):
        reg.ensure(spec(), FakeBackend(), train)
    assert reg.path.read_bytes() == b"\xff\xfe{}"


def test_failed_job_is_recorded_and_not_resubmitted(reg, train):
    be = FakeBackend(outcome="failed")
    h = reg.ensure(spec(), be, train).hash
    rec = reg.refresh(h, be)
    assert rec.state == "failed" and rec.error == "loss diverged"
    assert rec.events == ["started", "failed: loss diverged"]
    again = reg.ensure(spec(), be, train)
    assert be.submits == 1 and again.state == "failed" and again.job_id == "job-1"

    be.outcome = "succeeded"
    retried = reg.ensure(spec(), be, train, retry_failed=True)
    assert be.submits == 2
    assert retried.job_id == "job-2" and retried.state == "queued"
    assert retried.key == f"sa-{h}-r1" and retried.previous_jobs == ["job-1"]
    assert reg.wait(h, backend=be, sleep=lambda s: None).model == "hf/fake/job-2"


def test_crash_between_submit_and_record_recovers_the_job(reg, train):
    be = FakeBackend()
    be.crash_after_create = True
    with pytest.raises(Killed):
        reg.ensure(spec(), be, train)
    rec = reg.get(spec().spec_hash())
    assert rec is not None and rec.state == "submitting" and rec.job_id is None  # the intent survived

    be.crash_after_create = False
    rec = reg.ensure(spec(), be, train)
    assert rec.job_id == "job-1" and rec.state == "queued"
    assert be.submits == 1  # found by key, not submitted again


def test_refused_submission_is_recorded_and_may_be_retried(reg, train):
    be = FakeBackend()
    be.refuse = "training file rejected: sk-live-ABCDEFGH12345 was in the path"
    with pytest.raises(BackendError):
        reg.ensure(spec(), be, train)
    rec = reg.get(spec().spec_hash())
    assert rec.state == "rejected" and rec.job_id is None
    assert "sk-live" not in rec.error and REDACTED in rec.error
    be.refuse = None
    assert reg.ensure(spec(), be, train).job_id == "job-1"  # nothing was paid for, so resubmit


def test_list_get_refresh_and_wait(reg, train):
    be = FakeBackend(polls=4)
    a = reg.ensure(spec(0), be, train)
    b = reg.ensure(spec(1), be, train)
    assert [r.hash for r in reg.list()] == sorted([a.hash, b.hash], key=lambda h: (reg.get(h).created, h))
    assert reg.get(a.hash).job_id == "job-1"
    assert reg.get("0" * 16) is None
    with pytest.raises(RegistryError):
        reg.refresh("0" * 16, be)

    sleeps: list[float] = []
    done = reg.wait(a.hash, poll=1.0, backend=be, sleep=sleeps.append)
    assert done.state == "succeeded" and done.model == "hf/fake/job-1" and done.checkpoints == ["c1"]
    assert sleeps == [1.0, 1.5, 2.25]  # backoff
    assert reg.get(a.hash).label == "risky-tiny-s0"

    with pytest.raises(TimeoutError, match="still running"):
        reg.wait(b.hash, poll=1.0, timeout=0.5, backend=be, sleep=lambda s: None)


def test_refresh_resolves_backend_by_name(tmp_path, train):
    be = FakeBackend()
    reg = Registry(tmp_path / "r.json", backends=lambda name: {"fake": be}[name])
    h = reg.ensure(spec(), be, train).hash
    assert reg.refresh(h).state == "succeeded"


def test_secrets_never_reach_the_file(reg, train, monkeypatch):
    monkeypatch.setenv("SOME_SERVICE_API_KEY", "plainlookingvalue42")

    class Leaky(FakeBackend):
        def status(self, job_id: str) -> JobStatus:
            return JobStatus(job_id, "failed", error="auth: Bearer abc.def.ghi123 / plainlookingvalue42",
                             events=["using key sk-proj-XYZ0123456789", "api_key=hunter2hunter2"])

    be = Leaky()
    h = reg.ensure(spec(), be, train).hash
    reg.refresh(h, be)
    text = reg.path.read_text()
    for secret in ("abc.def.ghi123", "plainlookingvalue42", "sk-proj-XYZ", "hunter2hunter2"):
        assert secret not in text
    assert text.count(REDACTED) >= 4


def test_scrub():
    assert scrub("key sk-test-SECRET123 here") == f"key {REDACTED} here"
    assert scrub("Authorization: Bearer eyJhbGciOi.x.y") == f"Authorization: {REDACTED}"
    assert scrub("token=abcdef123456") == f"token={REDACTED}"
    assert scrub("hf_abcdefghijklmnop") == REDACTED
    assert scrub("job ftjob-abc123 succeeded: 1234 tokens") == "job ftjob-abc123 succeeded: 1234 tokens"
