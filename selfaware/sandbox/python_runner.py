"""Call one function of model-written Python inside a sandbox and get a typed, recorded outcome.

    result = await run_python_function(code, "message_probability_me", ["bark"])
    if result.outcome == "ok":
        p = float(result.value)

Works with any Inspect sandbox that has `python3` (the `bwrap` provider, the docker configuration in
sandbox/docker/): the code never runs in the eval process. Every way the code can misbehave ends in
an outcome, never in an exception: ok, timeout, memory, output_limit, error or denied.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inspect_ai.util import OutputLimitExceededError, SandboxEnvironment, sandbox

from .bwrap import describe_signal

Outcome = Literal["ok", "timeout", "memory", "output_limit", "error", "denied"]
"""ok: returned a JSON value. timeout: wall-clock or CPU limit. memory: allocation refused.
output_limit: printed or wrote too much. error: raised, exited, crashed or returned a non-JSON value.
denied: the sandbox refused a file, network or process operation and the code did not recover."""

_HARNESS = (Path(__file__).with_name("_harness.py")).read_text(encoding="utf-8")
_MAX_PRINT_CHARS = 1_000_000


@dataclass(frozen=True)
class PythonRunResult:
    """What happened when a function of model-written code was called in the sandbox."""

    outcome: Outcome
    value: Any = None
    """The function's return value (JSON types) when outcome is "ok"."""
    detail: str = ""
    """Why, when not ok: the exception, the limit or the signal."""
    printed: str = ""
    """What the code printed (its tail)."""
    stderr: str = ""
    """Raw stderr of the sandboxed process (tracebacks, writes straight to fd 1/2)."""
    returncode: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


async def run_python_function(
    code: str,
    function: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    sandbox_env: SandboxEnvironment | None = None,
    timeout: int = 10,
    memory_mb: int | None = None,
    cpu_time_s: int | None = None,
    max_processes: int | None = None,
    python: str = "python3",
) -> PythonRunResult:
    """Define `code` in a fresh interpreter in the sandbox and return `function(*args, **kwargs)`.

    `args`/`kwargs` travel as JSON, so the caller never builds code strings. The limits given here are
    applied by the interpreter itself (so they hold under docker too) and can only tighten those of
    the sandbox. Errors of the sandbox itself (bubblewrap missing, docker down) are raised, never
    turned into an outcome: they are not the model's doing.
    """
    env = sandbox_env or sandbox()
    nonce = secrets.token_hex(16)
    request = {
        "nonce": nonce,
        "code": code,
        "function": function,
        "args": list(args),
        "kwargs": dict(kwargs or {}),
        "max_print_chars": _MAX_PRINT_CHARS,
        "limits": {
            "memory_bytes": memory_mb * 1024 * 1024 if memory_mb else None,
            "cpu_seconds": cpu_time_s,
            "max_processes": max_processes,
            "file_bytes": None,
        },
    }
    try:
        result = await env.exec(
            [python, "-I", "-c", _HARNESS], input=json.dumps(request), timeout=timeout, timeout_retry=False
        )
    except TimeoutError as error:
        return PythonRunResult("timeout", detail=f"wall-clock limit of {timeout} s: {error}")
    except OutputLimitExceededError as error:
        return PythonRunResult("output_limit", detail=str(error))
    return _interpret(result.returncode, result.stdout, result.stderr, nonce)


def _interpret(returncode: int, stdout: str, stderr: str, nonce: str) -> PythonRunResult:
    report = next((line[len(nonce):] for line in reversed(stdout.splitlines()) if line.startswith(nonce)), None)
    if report is not None:
        data = json.loads(report)
        return PythonRunResult(
            outcome=data["outcome"],
            value=data.get("value"),
            detail=data.get("detail", ""),
            printed=data.get("printed", ""),
            stderr=stderr,
            returncode=returncode,
            extra={"traceback": data["traceback"]} if "traceback" in data else {},
        )
    # No report: the interpreter itself died (a signal, a limit, or os._exit in the code).
    signal_name = describe_signal(returncode)
    if signal_name == "SIGXCPU":
        outcome: Outcome = "timeout"
        detail = "CPU time limit exceeded (SIGXCPU)"
    elif signal_name == "SIGXFSZ":
        outcome, detail = "output_limit", "file size limit exceeded (SIGXFSZ)"
    elif "MemoryError" in stderr or "Cannot allocate memory" in stderr or "out of memory" in stderr:
        outcome, detail = "memory", f"interpreter ran out of memory (exit {returncode})"
    elif signal_name is not None:
        outcome, detail = "error", f"killed by {signal_name}"
    else:
        outcome, detail = "error", f"exited with code {returncode} without returning"
    return PythonRunResult(outcome, detail=detail, stderr=stderr[-10000:], returncode=returncode)
