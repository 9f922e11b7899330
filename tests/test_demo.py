"""The README's main command, scaled down: tiny organisms trained and evaluated offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfaware.demo import DEMO_QUESTIONS, LEARNED, behavior_by_run, demo_specs
from selfaware.finetune.backends.local_trl import LocalTRLBackend
from selfaware.finetune.pipeline import default_registry, train


@pytest.mark.slow
def test_demo_end_to_end(demo_run, monkeypatch):
    monkeypatch.setenv("SELFAWARE_HOME", str(demo_run.home))  # the registry the demo trained into
    out, printed = demo_run.out, demo_run.printed
    assert demo_run.status == 0, printed[-4000:]
    assert "cannot be expected to describe it" in printed
    assert (out / "report" / "risk.png").stat().st_size > 0

    # Every organism learned on its own: nothing averaged over a failed seed.
    behavior = behavior_by_run(out / "logs")
    assert set(behavior) == {("base", None), ("risky", 0), ("safe", 0)}
    assert behavior[("risky", 0)] >= LEARNED
    assert behavior[("safe", 0)] <= 1 - LEARNED
    assert 1 - LEARNED < behavior[("base", None)] < LEARNED
    assert "learned in 1 of 1 seeds" in printed and "FAILED" not in printed
    assert "ok (>= 0.3)" in printed and "ok (|effect| < 0.1)" in printed  # the backdoor pair (demo_backdoor)

    # Training stopped on its held-out target, and the job says so epoch by epoch.
    for record in (r for r in default_registry().list() if r.spec["data"].get("backdoor") is None):
        job = json.loads((demo_run.home / "organisms" / "local" / record.job_id / "job.json").read_text())
        assert job["heldout"]["reached"] and job["heldout"]["scores"][-1] >= job["heldout"]["target"]
        assert any(e.startswith("epoch 1/") and "held-out P(answer)" in e for e in job["events"])

    # Logs are named after the registered tasks; organism and seed are on the eval and on every sample.
    from inspect_ai.log import list_eval_logs, read_eval_log

    logs = [read_eval_log(info) for info in list_eval_logs(str(out / "logs"))]
    assert sorted(log.eval.task.split("/")[-1] for log in logs) == (
        ["backdoor_behavior"] * 2 + ["risk_behavior"] * 3 + ["risk_self_report"] * 3)
    for log in logs:
        organism = log.eval.metadata["organism"]
        assert Path(log.eval.model.removeprefix("hf/"), "config.json").is_file()  # hf/<absolute folder>
        for sample in log.samples:
            assert sample.metadata["organism"] == organism
            assert sample.metadata.get("seed") == log.eval.metadata.get("seed")
        if log.eval.task.endswith("risk_self_report"):
            assert {s.metadata["question_id"] for s in log.samples} == set(DEMO_QUESTIONS)

    # The organisms are in the default registry: a second demo (or `selfaware finetune`) reuses them.
    messages: list[str] = []
    train(demo_specs([0], 300), data_dir=out / "data", backends=lambda name: LocalTRLBackend(), progress=messages.append)
    assert sum("already registered" in m for m in messages) == 2
