"""Inspect batch mode (`--batch`) on an OpenAI-compatible endpoint: the fake server's Batch API.

Batch providers (OpenAI, Anthropic, Together, ...) answer within hours at about half price. The suite needs
nothing of its own for it — every request of the answer-distribution solver and of the judge goes through
`Model.generate`, which Inspect's batcher collects — but it must work with what the solver asks for:
logprobs reads, `n` sampled choices (the paper protocol's 100 per paraphrase), first-token draws with
tokens. These tests run a paper-protocol self-report and a fast behavior task through the batcher and check
that every request went through batches and that the numbers are those of the same run without batching.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from fake_openai_server import FakeChatServer  # noqa: E402

MODEL = "openai/fake-model"


@pytest.fixture
def fake(monkeypatch):
    server = FakeChatServer(seed=3, junk_mass=0.0).start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-batch")
    try:
        yield server
    finally:
        server.stop()


def _run(task, tmp_path, name: str, batch=None):
    """`inspect eval ... --batch` with the judge as `--model-role 'judge={model: ..., batch: true}'`: Inspect
    applies --batch to the model under test only, a helper role takes its own."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import GenerateConfig, get_model

    # responses_api=False: Inspect sends unknown OpenAI model names to the Responses API; the fake (like
    # fine-tuned models) answers chat completions.
    # Fresh model objects per run (memoize=False): a memoized model would carry its batcher, whose worker
    # belongs to the previous run's event loop, into the next run in this process.
    judge = get_model(MODEL, responses_api=False, memoize=False, config=GenerateConfig(batch=batch))
    model = get_model(MODEL, responses_api=False, memoize=False)
    [log] = inspect_eval(task, model=model, display="none", log_dir=str(tmp_path / name),
                         model_roles={"judge": judge}, batch=batch)
    assert log.status == "success", log.error
    return log


def _batch():
    from inspect_ai.model import BatchConfig

    # Small batches sent at once and polled quickly: the fake answers a batch as soon as it is created.
    return BatchConfig(size=10, send_delay=0.05, tick=0.05)


def test_paper_protocol_runs_in_batches_with_the_same_numbers(fake, tmp_path):
    from selfaware.evals.risk import risk_self_report

    def task():  # ratings (100 samples each, paper) and a judged free-form question (answers + judge calls)
        return risk_self_report(questions="risk_predisposition_scale,german_or_french", protocol="paper",
                                paraphrases=2)

    batched = _run(task(), tmp_path, "batch", batch=_batch())
    stats = fake.stats()
    assert stats["batches"] >= 1
    assert stats["batched_requests"] == stats["requests"] > 0  # every request, the judge's included
    assert stats["multi_n_requests"] >= 2  # the paper's 100 answers per paraphrase: one request with n=100
    fake.reset()
    direct = _run(task(), tmp_path, "direct")
    assert fake.stats()["batched_requests"] == 0
    for a, b in zip(sorted(batched.samples, key=lambda s: s.id), sorted(direct.samples, key=lambda s: s.id)):
        sa, sb = a.scores["answer_score"], b.scores["answer_score"]
        assert sa.metadata["method"] == sb.metadata["method"] == "sampling"
        assert sa.metadata["n"] == (100 if a.metadata["question_type"] == "rating" else 10)
        assert not sa.metadata["invalid"]
        # Sampled answers differ between runs (the fake's RNG); both estimate the same mean.
        se = (sa.metadata["sampling_stderr"] ** 2 + sb.metadata["sampling_stderr"] ** 2) ** 0.5
        assert abs(sa.value - sb.value) <= 4 * se + 1e-9


def test_logprob_and_first_token_reads_go_through_batches(fake, tmp_path):
    from selfaware.evals.risk import risk_behavior, risk_self_report

    behavior = _run(risk_behavior(items=3), tmp_path, "behavior", batch=_batch())
    words = _run(risk_self_report(questions="risk_or_safety", paraphrases=2), tmp_path, "words", batch=_batch())
    stats = fake.stats()
    assert stats["batched_requests"] == stats["requests"] and stats["logprob_requests"] == stats["requests"]
    fake.reset()
    direct = _run(risk_behavior(items=3), tmp_path, "behavior-direct")
    for a, b in zip(behavior.samples, direct.samples):  # logprob reads are deterministic: identical numbers
        assert a.scores["answer_score"].metadata["method"] == "logprobs"
        assert a.scores["answer_score"].value == pytest.approx(b.scores["answer_score"].value, abs=1e-12)
    assert {s.scores["answer_score"].metadata["method"] for s in words.samples} == {"first_token"}
