"""A tiny Inspect task whose score comes from running model-written Python in the sandbox.

    inspect eval selfaware/sandbox/example_task.py --model mockllm/model             # bwrap
    inspect eval selfaware/sandbox/example_task.py --model mockllm/model \\
        --sandbox docker:sandbox/docker/compose.yaml                                  # docker

The model is asked for a function; the scorer extracts the last ```python block, calls the function
inside whatever sandbox the task runs under, and records the outcome (ok, timeout, memory, ...) in
the score metadata. It is the pattern the make-me-say and vulnerable-code experiments build on.
"""

from __future__ import annotations

import re
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState, generate

from selfaware.sandbox.python_runner import run_python_function  # absolute: inspect loads this file by path

_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)

PROMPT = (
    "Write a Python function `{function}({params})` that {spec}. "
    "Answer with a single ```python code block."
)

CASES: list[dict[str, Any]] = [
    {"function": "add", "params": "a, b", "spec": "returns a + b", "args": [2, 3], "expected": 5},
    {"function": "shout", "params": "word", "spec": "returns the word in upper case", "args": ["bark"],
     "expected": "BARK"},
]


def extract_code(text: str) -> str | None:
    """The last fenced Python block of a completion, or None."""
    blocks = _CODE_BLOCK.findall(text)
    return blocks[-1] if blocks else None


@scorer(metrics=[accuracy()])
def sandboxed_function_scorer(timeout: int = 10):
    """CORRECT when the model's function, run in the sandbox, returns the target value."""

    async def score(state: TaskState, target: Target) -> Score:
        code = extract_code(state.output.completion)
        if code is None:
            return Score(value=INCORRECT, explanation="no python code block",
                         metadata={"outcome": "no_code"})
        meta = state.metadata
        result = await run_python_function(code, meta["function"], meta["args"], timeout=timeout)
        correct = result.ok and result.value == meta["expected"]
        return Score(
            value=CORRECT if correct else INCORRECT,
            answer=repr(result.value),
            explanation=result.detail or None,
            metadata={"outcome": result.outcome, "value": result.value, "detail": result.detail},
        )

    return score


@task
def sandboxed_python_example(sandbox: str = "bwrap") -> Task:
    """Ask for small functions and check them in the sandbox (`-T sandbox=docker` or `--sandbox`)."""
    samples = [
        Sample(
            id=case["function"],
            input=PROMPT.format(**case),
            target=repr(case["expected"]),
            metadata={"function": case["function"], "args": case["args"], "expected": case["expected"]},
        )
        for case in CASES
    ]
    return Task(dataset=samples, solver=generate(), scorer=sandboxed_function_scorer(), sandbox=sandbox)
