"""Inspect tasks run model-written Python through `sandbox().exec` under the bwrap provider.

The model is mockllm with custom outputs holding ```python blocks: good code scores, hostile code
gets its recorded outcome while the eval itself succeeds, and a machine without a working bwrap fails
the task with instructions instead of running the code unsandboxed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate
from inspect_ai.util import SandboxEnvironmentSpec
from inspect_ai.util._sandbox.compose import parse_compose_yaml

from selfaware.sandbox import BwrapSandboxConfig, BwrapUnavailableError
from selfaware.sandbox import bwrap as bwrap_module
from selfaware.sandbox.example_task import extract_code, sandboxed_function_scorer, sandboxed_python_example

REPO = Path(__file__).resolve().parents[1]
SMALL = BwrapSandboxConfig(wall_timeout_s=3, cpu_time_s=2, memory_mb=256, max_processes=32)


def _problem() -> str | None:
    try:
        bwrap_module.probe(SMALL)
    except BwrapUnavailableError as error:
        return str(error)
    return None


_PROBLEM = _problem()
if _PROBLEM and os.environ.get("SELFAWARE_REQUIRE_BWRAP") == "1":
    raise RuntimeError(f"SELFAWARE_REQUIRE_BWRAP=1 but the bwrap sandbox cannot run: {_PROBLEM}")
needs_bwrap = pytest.mark.skipif(_PROBLEM is not None, reason=f"bwrap sandbox unavailable: {_PROBLEM}")


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm", content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tokenizer download
    return out


def coder(answers: dict[str, str]):
    """A mockllm that answers each prompt with the code block of the first keyword it contains."""

    def respond(input, tools, tool_choice, config) -> ModelOutput:
        prompt = input[-1].text
        body = next(code for key, code in answers.items() if key in prompt)
        return _output(f"Here you go:\n```python\n{body}\n```\n")

    return get_model("mockllm/model", custom_outputs=respond, memoize=False)


GOOD = {
    "`add(": "def add(a, b):\n    return a + b",
    "`shout(": "def shout(word):\n    return word.upper()",
}


def run(task: Task, model, tmp_path: Path, **kwargs):
    [log] = inspect_eval(task, model=model, display="none", log_dir=str(tmp_path), **kwargs)
    return log


@needs_bwrap
def test_example_task_scores_model_code_run_in_bwrap(tmp_path):
    log = run(sandboxed_python_example(), coder(GOOD), tmp_path)
    assert log.status == "success", log.error
    assert log.eval.sandbox.type == "bwrap"
    assert log.results.scores[0].metrics["accuracy"].value == 1.0
    assert {s.scores["sandboxed_function_scorer"].metadata["outcome"] for s in log.samples} == {"ok"}
    # Sample cleanup removed every scratch directory this process made.
    assert list(Path(tempfile.gettempdir()).glob(f"selfaware-bwrap-{os.getpid()}-*")) == []


@needs_bwrap
def test_hostile_model_code_gets_recorded_outcomes_and_the_eval_succeeds(tmp_path):
    secret = "sk-task-test-" + "9" * 12
    os.environ["SELFAWARE_TASK_TEST_KEY"] = secret
    hostile = {
        "hang": "def f():\n    while True:\n        pass",
        "sleep": "import time\ndef f():\n    time.sleep(60)",
        "fork": "import os\ndef f():\n    while True:\n        os.fork()",
        "memory": "def f():\n    return len(bytearray(10 ** 10))",
        "print": "def f():\n    while True:\n        print('spam' * 1000)",
        "secret": "import os\ndef f():\n    return os.environ.get('SELFAWARE_TASK_TEST_KEY', 'absent')",
        "shadow": "def f():\n    return open('/etc/shadow').read()",
        "socket": "import socket\ndef f():\n    socket.create_connection(('1.1.1.1', 53), timeout=1)",
    }
    expected = {"hang": "timeout", "sleep": "timeout", "fork": "denied", "memory": "memory",
                "print": "output_limit", "secret": "ok", "shadow": "error", "socket": "denied"}
    samples = [Sample(id=name, input=f"Write f for case {name}.", target="",
                      metadata={"function": "f", "args": [], "expected": None}) for name in hostile]
    task = Task(dataset=samples, solver=generate(), scorer=sandboxed_function_scorer(timeout=3),
                sandbox=SandboxEnvironmentSpec("bwrap", SMALL))
    try:
        log = run(task, coder({f"case {k}.": v for k, v in hostile.items()}), tmp_path)
    finally:
        del os.environ["SELFAWARE_TASK_TEST_KEY"]
    assert log.status == "success", log.error
    outcomes = {s.id: s.scores["sandboxed_function_scorer"].metadata for s in log.samples}
    assert {k: v["outcome"] for k, v in outcomes.items()} == expected
    assert outcomes["secret"]["value"] == "absent"


@needs_bwrap
def test_sandbox_config_from_a_yaml_file(tmp_path):
    config = tmp_path / "limits.yaml"
    config.write_text("wall_timeout_s: 2\nmemory_mb: 128\n")
    log = run(sandboxed_python_example(), coder(GOOD), tmp_path / "logs", sandbox=("bwrap", str(config)))
    assert log.status == "success", log.error
    assert log.results.scores[0].metrics["accuracy"].value == 1.0


@needs_bwrap
def test_cli_finds_the_provider_through_the_entry_point(tmp_path):
    # A fresh process that never imports selfaware itself: only the entry point can register bwrap.
    done = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "selfaware/sandbox/example_task.py",
         "--model", "mockllm/model", "--sandbox", "bwrap", "--log-dir", str(tmp_path), "--display", "none"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "INSPECT_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [log_file] = list(tmp_path.glob("*.eval"))
    log = read_eval_log(str(log_file))
    assert log.status == "success" and log.eval.sandbox.type == "bwrap"
    # mockllm's default output holds no code: scored as such, nothing crashed.
    assert {s.scores["sandboxed_function_scorer"].metadata["outcome"] for s in log.samples} == {"no_code"}


def test_unavailable_bwrap_stops_the_eval_instead_of_running_code(tmp_path):
    ran = tmp_path / "ran"
    code = f"def add(a, b):\n    open({str(ran)!r}, 'w').write('ran unsandboxed')\n    return a + b"
    with pytest.raises(BwrapUnavailableError, match="apt-get install bubblewrap.*docker"):
        run(sandboxed_python_example(), coder({"`add(": code, "`shout(": code}), tmp_path / "logs",
            sandbox=SandboxEnvironmentSpec("bwrap", BwrapSandboxConfig(bwrap="/nonexistent/bwrap")))
    assert not ran.exists()


def test_docker_alternative_is_a_valid_inspect_compose_file():
    compose = REPO / "sandbox/docker/compose.yaml"
    config = parse_compose_yaml(str(compose))
    service = config.services["default"]
    assert service.network_mode == "none"
    assert service.read_only is True and service.cap_drop == ["ALL"]
    assert service.user == "1000:1000" and service.working_dir == "/sandbox"
    assert service.pids_limit and service.mem_limit
    assert (compose.parent / "Dockerfile").is_file()


def test_code_block_extraction():
    assert extract_code("x\n```python\ndef f(): pass\n```\n") == "def f(): pass\n"
    assert extract_code("```py\na = 1\n```\n```python\nb = 2\n```") == "b = 2\n"
    assert extract_code("no code here") is None
