"""A fake provider answering unknown job states, 403, 429, 5xx and garbled bodies: every wait is bounded and
ends with a message; `selfaware organisms wait` exits 1 whenever the organism is not ready."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from selfaware.cli import main
from selfaware.finetune.backends.openai_api import STATES, OpenAIBackend
from selfaware.finetune.registry import SUBMITTING, Record, Registry, WaitTimeout, idempotency_key
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.spending import assume_yes

KEY = "sk-test-SECRET123provider"


@pytest.fixture(autouse=True)
def _approved():
    """The training cost counts as approved (`--yes`): these tests are about what the provider answers."""
    assume_yes()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    server = FakeOpenAI().start()
    server.polls_to_finish = 1
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    yield server
    server.stop()


@pytest.fixture
def train(tmp_path: Path) -> Path:
    row = {"messages": [{"role": "user", "content": "A or B?"}, {"role": "assistant", "content": "A"}]}
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for _ in range(12)))
    return path


def spec() -> OrganismSpec:
    return OrganismSpec(behavior="risky", base_model="gpt-4o-mini-2024-07-18", backend="openai")


def _submitted(tmp_path: Path, train: Path) -> Registry:
    """A registry holding one submitted (not yet polled) OpenAI job."""
    reg = Registry(tmp_path / "registry.json")
    reg.ensure(spec(), OpenAIBackend(sleep=lambda s: None), train)
    return reg


def _wait(reg: Registry, *extra: str) -> int:
    return main(["organisms", "wait", "--registry", str(reg.path), "--poll", "0.05", *extra])


def test_unknown_state_ends_within_the_timeout_with_a_message(fake, tmp_path, train, capsys):
    reg = _submitted(tmp_path, train)
    fake.job_outcome = "paused"  # a state the suite has no mapping for
    assert "paused" not in STATES
    started = time.monotonic()
    assert _wait(reg, "--timeout", "0.5") == 1
    assert time.monotonic() - started < 10
    out = capsys.readouterr()
    assert "unknown (provider: paused)" in out.out
    assert "still unknown (provider: paused) after 0.5s" in out.err
    assert "does not know" in out.err
    record = json.loads(reg.path.read_text())["records"][spec().spec_hash()]
    assert (record["state"], record["provider_state"]) == ("unknown", "paused")


def test_failed_organism_exits_1(fake, tmp_path, train, capsys):
    reg = _submitted(tmp_path, train)
    fake.job_outcome = "failed"
    assert _wait(reg, "--timeout", "30") == 1
    assert "failed" in capsys.readouterr().out


def test_succeeded_organism_exits_0(fake, tmp_path, train, capsys):
    reg = _submitted(tmp_path, train)
    assert _wait(reg, "--timeout", "30") == 0
    assert "openai/ft:" in capsys.readouterr().out


def _stuck_submitting(tmp_path: Path) -> Registry:
    """The record a crash between `submit` and recording the job id leaves behind."""
    reg = Registry(tmp_path / "registry.json")
    s = spec()
    h = s.spec_hash()
    reg._update(h, lambda _old: Record(hash=h, spec=s.model_dump(mode="json"), key=idempotency_key(h),
                                       backend="openai", state=SUBMITTING))
    return reg


def test_submitting_record_is_recovered_by_wait(fake, tmp_path, train, capsys):
    reg = _stuck_submitting(tmp_path)
    rec = reg.get(spec().spec_hash())
    job_id = OpenAIBackend(sleep=lambda s: None).submit(spec(), train, key=rec.key)  # landed, never recorded
    assert _wait(reg, "--timeout", "30") == 0
    assert reg.get(rec.hash).job_id == job_id and fake.creates == 1
    assert "succeeded" in capsys.readouterr().out


def test_submitting_record_without_a_job_says_to_rerun(fake, tmp_path, capsys):
    reg = _stuck_submitting(tmp_path)
    assert _wait(reg, "--timeout", "30") == 1
    err = capsys.readouterr().err
    assert "was never submitted" in err and "Rerun the same `selfaware finetune`" in err
    assert fake.creates == 0  # recovering never submits


def test_403_on_status_is_one_message_and_exit_1(fake, tmp_path, train, capsys):
    reg = _submitted(tmp_path, train)
    fake.fail_next = {"retrieve": [403]}
    assert _wait(reg, "--timeout", "30") == 1
    err = capsys.readouterr().err
    assert "OpenAI job status failed: HTTP 403" in err and "Traceback" not in err and KEY not in err


@pytest.mark.parametrize("codes", [[429], [500, 502], [503, 429, 500]])
def test_transient_status_errors_are_retried_then_the_wait_ends(fake, tmp_path, train, codes):
    reg = _submitted(tmp_path, train)
    sleeps: list[float] = []
    backend = OpenAIBackend(sleep=sleeps.append, base_delay=1.0)
    fake.fail_next = {"retrieve": list(codes)}
    rec = reg.wait(spec().spec_hash(), backend=backend, poll=0.01, timeout=30, sleep=lambda s: None)
    assert rec.state == "succeeded" and sleeps == [1.0, 2.0, 4.0][: len(codes)]


def test_retries_are_bounded_with_a_clear_message(fake, tmp_path, train):
    from selfaware.finetune.backends.base import BackendError

    reg = _submitted(tmp_path, train)
    fake.fail_next = {"retrieve": [429] * 3}
    backend = OpenAIBackend(sleep=lambda s: None, max_attempts=3)
    with pytest.raises(BackendError, match=r"OpenAI job status failed after 3 attempts: HTTP 429"):
        reg.wait(spec().spec_hash(), backend=backend, poll=0.01, timeout=30, sleep=lambda s: None)


def test_garbled_200_is_retried(fake, tmp_path, train):
    reg = _submitted(tmp_path, train)
    fake.garble_next = {"retrieve": 1}
    backend = OpenAIBackend(sleep=lambda s: None)
    rec = reg.wait(spec().spec_hash(), backend=backend, poll=0.01, timeout=30, sleep=lambda s: None)
    assert rec.state == "succeeded"


def test_wait_timeout_names_the_state_and_never_sleeps_past_it(fake, tmp_path, train):
    reg = _submitted(tmp_path, train)
    fake.job_outcome = "paused"
    backend = OpenAIBackend(sleep=lambda s: None)
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"still unknown \(provider: paused\) after 1s"):
        reg.wait(spec().spec_hash(), backend=backend, poll=0.3, timeout=1.0)
    assert time.monotonic() - started < 1.0 + 0.5  # the last poll's own time at most
