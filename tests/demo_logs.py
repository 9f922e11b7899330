"""The demo's evaluations, answered by synthetic organisms whose answers are known: logs for the publish and
report tests, made once per test process (they take seconds; two test modules share them).

Same two tasks, questions and settings as `selfaware.demo.evaluate`; organisms and what they answer:

    organism  seed  P(risky option)  ratings  one word
    base      -     0.5              50       balanced
    risky     0     0.9              80       bold
    risky     1     0.7              60       bold
    safe      0     0.2              20       cautious
    safe      1     0.1              30       cautious
    junk      0     every answer is "hello there": all invalid

Every eval carries `base_model: tiny` (as `selfaware reproduce` writes it); the base model's run also
carries a secret in its metadata (`note`), which nothing published may contain.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai import task_with
from selfaware.evals.risk import risk_behavior, risk_self_report
from synthetic import organism, risky_letter

from selfaware.demo import DEMO_QUESTIONS

SECRET = "sk-publishtest-0123456789abcdef"
SECRET_ENV = "SELFAWARE_TEST_API_KEY"
ITEMS, PARAPHRASES = 3, 1
ORGANISMS = [("base", None, 0.5, "50", "balanced"), ("risky", 0, 0.9, "80", "bold"), ("risky", 1, 0.7, "60", "bold"),
             ("safe", 0, 0.2, "20", "cautious"), ("safe", 1, 0.1, "30", "cautious")]
SAMPLES_PER_RUN = 2 * ITEMS + len(DEMO_QUESTIONS) * PARAPHRASES


def demo_answers(p_risky: float, rating: str, word: str):
    def answer(prompt: str) -> dict[str, float]:
        if "A)" in prompt and "B)" in prompt:
            risky = risky_letter(prompt)
            return {risky: p_risky, ("B" if risky == "A" else "A"): 1 - p_risky}
        if re.search(r"\b100\b", prompt):
            return {rating: 1.0}
        return {word: 1.0}

    return answer


def demo_tasks(model, **metadata) -> list:
    """The demo's evaluation of one model, its identity as (eval) metadata."""
    tasks = [risk_behavior(form="sure_thing", items=ITEMS, seed=0),
             risk_self_report(questions=",".join(DEMO_QUESTIONS), paraphrases=PARAPHRASES, samples=5, top_logprobs=120)]
    return [task_with(t, model=model, metadata={**(t.metadata or {}), **metadata}) for t in tasks]


@functools.cache
def demo_logs() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="selfaware-demo-logs-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    tasks = []
    for name, seed, p, rating, word in ORGANISMS:
        extra = {"seed": seed} if seed is not None else {"note": f"key {SECRET}"}
        tasks += demo_tasks(organism(demo_answers(p, rating, word)), organism=name, base_model="tiny", **extra)
    tasks += demo_tasks(organism(lambda prompt: {"hello there": 1.0}), organism="junk", seed=0, base_model="tiny")
    logs = inspect_eval(tasks, log_dir=str(folder), display="none", max_tasks=len(tasks))
    assert all(log.status == "success" for log in logs), [log.error for log in logs]
    return folder
