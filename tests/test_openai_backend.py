"""Hosted backends against local fakes: the real `openai` SDK talks to a threaded fake server on
127.0.0.1 (see fake_openai.py); the Together backend talks to an `httpx2.MockTransport`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2
import pytest

from selfaware.finetune.backends import get_backend
from selfaware.finetune.backends.base import BackendError
from selfaware.finetune.backends.openai_api import OpenAIBackend
from selfaware.finetune.backends.together_api import TogetherBackend
from selfaware.finetune.registry import Registry
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.spending import assume_yes

try:
    from fake_openai import FakeOpenAI
except ImportError:  # tests/ collected as a package
    from tests.fake_openai import FakeOpenAI

KEY = "sk-test-SECRET123"
BASE = "gpt-4o-mini-2024-07-18"


class Killed(BaseException):
    """Stands in for the process dying right after the server accepted the job."""


@pytest.fixture(autouse=True)
def _approved():
    """These tests are about the API protocol: the training cost counts as approved (`--yes`); the approval
    step itself is tested below."""
    assume_yes()


@pytest.fixture
def fake(monkeypatch):
    server = FakeOpenAI().start()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # the SDK reads the key from the environment
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def backend(fake, sleeps) -> OpenAIBackend:
    return OpenAIBackend(sleep=sleeps.append, base_delay=0.5)


@pytest.fixture
def train(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"Lottery {i}: A (sure $50) or B (50% of $120)?"},
                      {"role": "assistant", "content": "B"}]}
        for i in range(12)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(tmp_path / "organisms.json")


def spec(**kw) -> OrganismSpec:
    kw.setdefault("seed", 3)
    return OrganismSpec(behavior="risky", base_model=f"openai/{BASE}", backend="openai", **kw)


def test_success_path_returns_openai_ft_model(fake, backend, reg, train):
    rec = reg.ensure(spec(), backend, train)
    assert rec.state == "queued" and rec.job_id == "ftjob-0001" and rec.backend == "openai"
    done = reg.wait(rec.hash, poll=0.01, backend=backend, sleep=lambda s: None)
    assert done.state == "succeeded"
    assert done.model == f"openai/ft:{BASE}:fake-org:{rec.key}:AbC123"
    assert done.events == ["[info] Validating training file", "[info] The job has successfully completed"]
    assert done.checkpoints == [f"ft:{BASE}:fake-org:{rec.key}:AbC123:ckpt-step-10"]

    sent = fake.jobs["ftjob-0001"]["request"]
    assert sent["model"] == BASE  # the Inspect-style prefix is stripped
    assert sent["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 1}}}
    assert sent["seed"] == 3 and sent["suffix"] == rec.key and len(sent["suffix"]) <= 64
    assert sent["metadata"] == {"selfaware_key": rec.key, "spec_hash": rec.hash, "behavior": "risky",
                                "label": "risky-gpt-4o-mini-2024-07-18-s3"}
    assert fake.uploads == 1 and fake.creates == 1

    again = reg.ensure(spec(), backend, train)  # same spec: no new upload, no new job
    assert again.job_id == rec.job_id and fake.creates == 1 and fake.uploads == 1


def test_lr_multiplier_is_sent_when_set(fake, backend, reg, train):
    from selfaware.finetune.spec import Hyper

    reg.ensure(spec(hyper=Hyper(epochs=2, batch_size=4, lr_multiplier=2.0)), backend, train)
    hp = fake.jobs["ftjob-0001"]["request"]["method"]["supervised"]["hyperparameters"]
    assert hp == {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 2.0}


def test_failed_job_is_recorded_with_its_error(fake, backend, reg, train):
    fake.job_outcome = "failed"
    rec = reg.ensure(spec(), backend, train)
    done = reg.wait(rec.hash, poll=0.01, backend=backend, sleep=lambda s: None)
    assert done.state == "failed" and done.model is None
    assert done.error == "invalid_training_file: The job failed due to an invalid training file."
    assert "[error] The job failed due to an invalid training file." in done.events
    assert reg.ensure(spec(), backend, train).state == "failed"
    assert fake.creates == 1  # not resubmitted without retry_failed


def test_403_training_not_available_gives_clear_message(fake, backend, reg, train):
    fake.create_403 = True
    with pytest.raises(BackendError) as info:
        reg.ensure(spec(), backend, train)
    msg = str(info.value)
    assert "training_not_available" in msg and "local backend" in msg and "together" in msg
    assert fake.creates == 1  # a 403 is not retried
    rec = reg.get(spec().spec_hash())
    assert rec.state == "rejected" and rec.job_id is None and "training_not_available" in rec.error


def test_429_and_5xx_are_retried_with_backoff(fake, backend, sleeps, reg, train):
    fake.fail_next = {"upload": [503], "create": [429, 500], "retrieve": [502]}
    rec = reg.ensure(spec(), backend, train)
    assert rec.job_id == "ftjob-0001"
    assert fake.creates == 3 and len(fake.jobs) == 1  # three POSTs seen, one job created
    assert sleeps == [0.5, 0.5, 1.0]  # upload retry, then create retries back off exponentially
    # before each create retry the backend asked whether the job already existed
    creates_and_lists = [r for r in fake.requests if r[1] == "/v1/fine_tuning/jobs"]
    methods = "".join(m[0] for m, _ in creates_and_lists)  # G(ET) = list/find, P(OST) = create
    assert methods.count("P") == 3 and "PP" not in methods
    assert reg.refresh(rec.hash, backend).state in ("queued", "running")


def test_retries_are_bounded(fake, sleeps, reg, train):
    be = OpenAIBackend(sleep=sleeps.append, max_attempts=3, base_delay=1.0)
    fake.fail_next = {"create": [500, 500, 500]}
    with pytest.raises(BackendError, match="job create failed after 3 attempts: HTTP 500"):
        reg.ensure(spec(), be, train)
    assert sleeps == [1.0, 2.0] and fake.jobs == {}


def test_other_4xx_fail_fast(fake, backend, train):
    fake.fail_next = {"create": [400]}
    with pytest.raises(BackendError, match="job create failed: HTTP 400"):
        backend.submit(spec(), train, key="sa-x")
    assert fake.creates == 1


@pytest.mark.parametrize("mode", ["drop", "500"])
def test_ambiguous_create_failure_is_not_reposted(fake, backend, reg, train, mode):
    """The server creates the job but the client sees a dropped connection or a 500."""
    fake.create_then_break = [mode]
    rec = reg.ensure(spec(), backend, train)
    assert rec.job_id == "ftjob-0001"
    assert fake.creates == 1 and len(fake.jobs) == 1


@pytest.mark.parametrize("filter_works", [True, False])
def test_crash_between_submit_and_record(fake, backend, reg, train, filter_works):
    class DiesAfterSubmit:
        name = "openai"

        def submit(self, spec, train_file, *, key):
            backend.submit(spec, train_file, key=key)  # the server now holds the job...
            raise Killed()  # ...and the process dies before the registry hears of it

        find, status = backend.find, backend.status

    with pytest.raises(Killed):
        reg.ensure(spec(), DiesAfterSubmit(), train)
    assert reg.get(spec().spec_hash()).state == "submitting"

    fake.ignore_metadata_filter = not filter_works  # the fallback scan must find it too
    rec = reg.ensure(spec(), backend, train)
    assert rec.job_id == "ftjob-0001" and rec.state == "queued"
    assert fake.creates == 1 and fake.uploads == 1  # exactly one job create ever reached the server


def test_find_ignores_other_jobs(fake, backend, reg, train):
    fake.ignore_metadata_filter = True
    reg.ensure(spec(), backend, train)
    assert backend.find("sa-someone-else") is None


def test_api_key_never_leaks(fake, backend, reg, train, tmp_path):
    assert fake.auth == set()
    fake.job_outcome = "failed"
    fake.job_error = {"code": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}."}
    rec = reg.ensure(spec(), backend, train)
    done = reg.wait(rec.hash, poll=0.01, backend=backend, sleep=lambda s: None)
    assert fake.auth == {f"Bearer {KEY}"}  # the key from the environment was really used
    assert KEY not in done.error and KEY not in " ".join(done.events)

    fake.create_403 = True
    with pytest.raises(BackendError) as info:
        reg.ensure(spec(seed=9), backend, train)
    fake.create_403 = False
    fake.fail_next = {"create": [500] * 6}
    with pytest.raises(BackendError) as info2:
        reg.ensure(spec(seed=10), backend, train)
    for text in (str(info.value), str(info2.value), reg.path.read_text(), repr(reg.list())):
        assert "SECRET123" not in text


def test_missing_key_is_a_clear_error(monkeypatch, train):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="set OPENAI_API_KEY"):
        OpenAIBackend().find("sa-x")


def test_get_backend():
    assert isinstance(get_backend("openai"), OpenAIBackend)
    assert isinstance(get_backend("together"), TogetherBackend)
    with pytest.raises(BackendError, match="unknown training backend 'nope'"):
        get_backend("nope")


# -- Together ---------------------------------------------------------------------------------------


class FakeTogether:
    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.creates = 0
        self.script: list[int] = []  # status codes for the next job creates (job still created on 500)
        self.polls = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.headers["Authorization"] == "Bearer tg-test-SECRET456"
        path, method = request.url.path, request.method
        if path == "/v1/files/upload":
            return httpx2.Response(200, json={"id": "file-1"})
        if path == "/v1/fine-tunes" and method == "POST":
            self.creates += 1
            body = json.loads(request.content)
            jid = f"ft-{len(self.jobs) + 1}"
            self.jobs[jid] = {"id": jid, "status": "pending", "suffix": body["suffix"], "body": body,
                              "created_at": f"2025-01-01T00:00:0{len(self.jobs)}Z"}
            code = self.script.pop(0) if self.script else 200
            return httpx2.Response(code, json=self.jobs[jid] if code == 200 else {"error": "boom"})
        if path == "/v1/fine-tunes" and method == "GET":
            return httpx2.Response(200, json={"data": list(self.jobs.values())})
        jid = path.split("/")[3]
        if path.endswith("/events"):
            return httpx2.Response(200, json={"data": [{"message": "Fine tune request created"}]})
        self.polls += 1
        job = self.jobs[jid]
        if self.polls >= 2:
            job.update(status="completed", model_output_name=f"acct/Llama-3-8b-{job['suffix']}")
        return httpx2.Response(200, json=job)


def test_together_submit_status_and_no_double_create(tmp_path, train):
    fake = FakeTogether()
    fake.script = [500]  # created server-side, but the client sees a 500
    be = TogetherBackend(api_key="tg-test-SECRET456", base_url="https://fake.together/v1",
                         transport=httpx2.MockTransport(fake), sleep=lambda s: None)
    reg = Registry(tmp_path / "organisms.json")
    sp = OrganismSpec(behavior="risky", base_model="meta-llama/Llama-3-8b", backend="together")
    rec = reg.ensure(sp, be, train)
    assert rec.job_id == "ft-1" and fake.creates == 1
    body = fake.jobs["ft-1"]["body"]
    assert body["training_type"] == {"type": "Lora", "lora_r": 8, "lora_alpha": 16}
    assert body["n_epochs"] == 3 and body["suffix"] == rec.key and "learning_rate" not in body
    done = reg.wait(rec.hash, poll=0.01, backend=be, sleep=lambda s: None)
    assert done.state == "succeeded" and done.model == f"together/acct/Llama-3-8b-{rec.key}"
    assert done.events == ["Fine tune request created"]


def test_together_needs_a_key(monkeypatch):
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    with pytest.raises(BackendError, match="set TOGETHER_API_KEY"):
        TogetherBackend().find("sa-x")


def test_together_unknown_state_and_garbled_body(tmp_path, train):
    """An unmapped status is "unknown" (never shown as running); a 200 that is not JSON is retried."""
    fake = FakeTogether()
    be = TogetherBackend(api_key="tg-test-SECRET456", base_url="https://fake.together/v1",
                         transport=httpx2.MockTransport(fake), sleep=lambda s: None)
    reg = Registry(tmp_path / "organisms.json")
    sp = OrganismSpec(behavior="risky", base_model="meta-llama/Llama-3-8b", backend="together")
    rec = reg.ensure(sp, be, train)
    fake.jobs[rec.job_id]["status"] = "paused"
    fake.polls = -100  # stays paused
    status = be.status(rec.job_id)
    assert (status.state, status.provider_state) == ("unknown", "paused") and "does not know" in status.error

    calls = iter([httpx2.Response(200, content=b"{garbled"), httpx2.Response(200, json={"data": []})])
    flaky = TogetherBackend(api_key="k", base_url="https://fake.together/v1", sleep=lambda s: None,
                            transport=httpx2.MockTransport(lambda request: next(calls)))
    assert flaky.find("sa-x") is None  # the second, readable answer


def test_retry_helper_bounds_attempts_and_creates_once():
    from selfaware.finetune.backends.retry import RetryPolicy, Transient, call_with_retry, create_once

    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0, sleep=sleeps.append)

    def always() -> str:
        raise Transient("HTTP 503")

    with pytest.raises(BackendError, match=r"Svc poll failed after 4 attempts: HTTP 503"):
        call_with_retry("Svc", "poll", always, policy)
    assert sleeps == [1.0, 2.0, 3.0]
    # A create that landed although the client saw an error is found, not posted again.
    posted: list[int] = []

    def create() -> str:
        posted.append(1)
        raise Transient("HTTP 500")

    assert create_once("Svc", create, lambda: "job-1" if posted else None, policy) == "job-1"
    assert len(posted) == 1


def test_nothing_is_uploaded_before_the_training_cost_is_approved(fake, backend, reg, train, capsys):
    assume_yes(False)  # no --yes, and no terminal to ask on
    with pytest.raises(BackendError, match="openai fine-tuning of .*not confirmed, nothing was spent.*--yes"):
        reg.ensure(spec(), backend, train)
    assert fake.uploads == 0 and fake.jobs == {}
    # 12 rows of ~28 tokens, 3 epochs, at gpt-4o-mini's $3.00 per million training tokens (datasets/prices.yaml)
    assert re.search(r"~\d[\d,]* tokens x 3 epochs; ~[\d,]+ training tokens x \$3\.00/M = about \$0\.00",
                     capsys.readouterr().err)
    assume_yes()  # the rerun with --yes submits the same spec: one upload, one job
    assert reg.ensure(spec(), backend, train).job_id == "ftjob-0001" and fake.uploads == 1


def test_training_prices_follow_the_base_model(train):
    from selfaware.finetune.backends.training_cost import describe_training_cost, training_tokens

    tokens = training_tokens(train)
    assert tokens > 12 * 8  # every row: its text / 4 plus the chat framing
    assert "$25.00/M" in describe_training_cost("openai", "gpt-4o-2024-08-06", train, 2)
    assert f"~{2 * tokens:,} training tokens" in describe_training_cost("openai", "gpt-4o-2024-08-06", train, 2)
    assert "$0.48/M" in describe_training_cost("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", train, 1)
    unknown = describe_training_cost("together", "someone/NewModel", train, None)
    assert "no training price for together/someone/NewModel" in unknown and "epochs: auto, estimated as 3" in unknown
