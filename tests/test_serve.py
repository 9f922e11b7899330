"""`selfaware serve`: the vLLM command and model strings from the registry (dry run), the clear refusals
where vLLM or a GPU is missing, and the health wait; vLLM itself is never needed."""

from __future__ import annotations

import json
import shlex
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from selfaware.finetune.backends.base import JobStatus
from selfaware.finetune.registry import Registry
from selfaware.finetune.spec import Hyper, OrganismSpec

from selfaware import serve as serve_mod
from selfaware.cli import main
from selfaware.loopback import LoopbackServer
from selfaware.serve import (
    ServeError,
    ServePlan,
    plan_from_records,
    vllm_rank,
    wait_healthy,
)

BASE = "Qwen/Qwen2.5-7B-Instruct"


class Done:
    """A backend whose jobs are already finished with the given status."""

    def __init__(self, name: str, status: JobStatus):
        self.name, self._status = name, status

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        return self._status.job_id

    def find(self, key: str) -> str | None:
        return None

    def status(self, job_id: str) -> JobStatus:
        return self._status


def _adapter(folder: Path, base: str, rank: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": rank}))
    return folder.resolve()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """Three organisms of BASE (two local adapters, ranks 8 and 16; one hosted), a failed one, and one of
    another base."""
    reg = Registry(tmp_path / "registry.json")
    train = tmp_path / "train.jsonl"
    train.write_text("")

    def add(behavior: str, seed: int, backend: str, status: JobStatus, base_model: str = BASE) -> None:
        spec = OrganismSpec(behavior=behavior, base_model=base_model, seed=seed, backend=backend,
                            hyper=Hyper(lora_rank=8))
        done = Done(backend, status)
        rec = reg.ensure(spec, done, train)
        reg.refresh(rec.hash, done)

    a1 = _adapter(tmp_path / "jobs/a1/adapter", BASE, 8)
    a2 = _adapter(tmp_path / "jobs/a2/adapter", BASE, 16)
    other = _adapter(tmp_path / "jobs/o/adapter", "meta-llama/Llama-3.1-8B-Instruct", 8)
    add("risky", 0, "local", JobStatus("a1", "succeeded", model=f"hf/{a1.parent}/merged", checkpoints=[str(a1)]))
    add("safe", 0, "local", JobStatus("a2", "succeeded", model=f"vllm/{BASE}:{a2}", checkpoints=[str(a2)]))
    add("risky", 1, "local", JobStatus("a3", "failed", error="boom"))
    add("myopic", 0, "openai", JobStatus("ft1", "succeeded", model="openai/ft:gpt-4o:org:sa-1:x"))
    add("risky", 2, "local", JobStatus("o1", "succeeded", model="hf/x", checkpoints=[str(other)]),
        base_model="meta-llama/Llama-3.1-8B-Instruct")
    return reg


def test_dry_run_prints_the_command_with_the_registry_adapters(registry, tmp_path, capsys):
    code = main(["serve", "--dry-run", "--registry", str(registry.path), "--base-model", BASE,
                 "--vllm-args=--tensor-parallel-size 2"])
    out = capsys.readouterr().out
    assert code == 0
    a1, a2 = (tmp_path / "jobs/a1/adapter").resolve(), (tmp_path / "jobs/a2/adapter").resolve()
    command = next(line.strip() for line in out.splitlines() if line.strip().startswith("vllm serve"))
    assert shlex.split(command) == [
        "vllm", "serve", BASE, "--host", "127.0.0.1", "--port", "8000", "--enable-lora", "--max-lora-rank", "16",
        "--max-loras", "2", "--lora-modules", f"{a1}={a1}", f"{a2}={a2}", "--tensor-parallel-size", "2"]
    assert "export VLLM_BASE_URL=http://127.0.0.1:8000/v1" in out
    assert f"vllm/{BASE}    # base" in out
    assert f"vllm/{BASE}:{a1}    # risky-Qwen2.5-7B-Instruct-s0" in out
    assert f"vllm/{BASE}:{a2}    # safe-Qwen2.5-7B-Instruct-s0" in out
    assert f"inspect eval-set evals/<family>.py --model vllm/{BASE},vllm/{BASE}:{a1},vllm/{BASE}:{a2}" in out
    # what is not served says why
    assert "failed, not trained" in out and "openai organism: evaluate it as openai/ft:gpt-4o" in out
    assert "trained on meta-llama/Llama-3.1-8B-Instruct" in out


def test_the_model_strings_are_the_registry_and_inspect_ones(registry, tmp_path):
    """The served name of each adapter is its path: what Inspect's vllm/ provider asks an external server for."""
    from inspect_ai.model._providers._vllm_lora import parse_vllm_model

    plan = plan_from_records(registry.list(), base_model=BASE)
    a2 = next(a for a in plan.adapters if a.label.startswith("safe"))
    assert a2.model == registry.get(a2.hash).model  # the local backend's own vllm/ string
    for adapter in plan.adapters:
        base, lora = parse_vllm_model(adapter.model.removeprefix("vllm/"))
        assert base == plan.base and f"{lora.name}={adapter.path}" in plan.command()


def test_a_named_subset_and_one_base_without_naming_it(registry, capsys):
    safe = next(r for r in registry.list() if r.label.startswith("safe"))
    assert main(["serve", "--dry-run", "--registry", str(registry.path), "--organism", safe.hash[:6]]) == 0
    out = capsys.readouterr().out
    assert "--max-loras 1 --lora-modules" in out and "risky-Qwen2.5-7B-Instruct-s0" not in out

    assert main(["serve", "--dry-run", "--registry", str(registry.path), "--organism", "nope"]) == 2
    assert "no organism nope in the registry" in capsys.readouterr().err


def test_several_bases_must_be_chosen_between(registry, capsys):
    assert main(["serve", "--dry-run", "--registry", str(registry.path)]) == 2
    err = capsys.readouterr().err
    assert "one server serves one base: choose with --base-model" in err
    assert f"{BASE} (2 organisms)" in err and "meta-llama/Llama-3.1-8B-Instruct (1 organisms)" in err


def test_nothing_to_serve_is_an_error(tmp_path, capsys):
    assert main(["serve", "--dry-run", "--registry", str(tmp_path / "empty.json")]) == 2
    assert "no LoRA organism to serve" in capsys.readouterr().err


def test_vllm_ranks():
    assert [vllm_rank(r) for r in (1, 2, 8, 9, 64, 300)] == [1, 8, 8, 16, 64, 320]
    with pytest.raises(ServeError, match="above vLLM's largest"):
        vllm_rank(1024)


def test_without_vllm_or_a_gpu_serving_fails_clearly(registry, monkeypatch, capsys):
    args = ["serve", "--registry", str(registry.path), "--base-model", BASE]
    monkeypatch.setattr(serve_mod.importlib.util, "find_spec", lambda name: None)
    assert main(args) == 2
    assert "vLLM is not installed here: pip install 'selfaware[vllm]'" in capsys.readouterr().err

    monkeypatch.setattr(serve_mod.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(serve_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(serve_mod, "gpu_visible", lambda: False)
    assert main(args) == 2
    assert "no GPU is visible" in capsys.readouterr().err


def _health(answers: list[int]) -> LoopbackServer:
    class Health(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            code = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(code if self.path == "/health" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return LoopbackServer(Health).start()


def test_wait_healthy_polls_until_ready():
    server = _health([503, 503, 200])
    try:
        polls: list[float] = []
        wait_healthy(server.url, lambda: True, timeout=5, poll=0.01, sleep=polls.append)
        assert len(polls) == 2
        with pytest.raises(ServeError, match="exited before it was ready"):
            wait_healthy(server.url, lambda: False, timeout=5, poll=0.01)
    finally:
        server.stop()
    never = _health([503])
    try:
        with pytest.raises(ServeError, match=r"did not become healthy .* within 0.05s"):
            wait_healthy(never.url, lambda: True, timeout=0.05, poll=0.01)
    finally:
        never.stop()


def test_serve_starts_waits_prints_and_stops(registry, monkeypatch):
    """The run path with a stand-in for `vllm serve`: a process that answers /health, then exits."""
    plan = plan_from_records(registry.list(), base_model=BASE, port=_free_port())
    script = ("import http.server, sys\n"
              "class H(http.server.BaseHTTPRequestHandler):\n"
              "    def log_message(self, *a): pass\n"
              "    def do_GET(self):\n"
              "        self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()\n"
              f"http.server.HTTPServer(('127.0.0.1', {plan.port}), H).handle_request()\n")
    monkeypatch.setattr(ServePlan, "command", lambda self: [sys.executable, "-c", script])
    monkeypatch.setattr(serve_mod, "check_prerequisites", lambda: None)
    said: list[str] = []
    assert serve_mod.serve(plan, timeout=60, say=said.append) == 0
    ready = next(s for s in said if s.startswith("vLLM is ready"))
    assert f"export VLLM_BASE_URL=http://127.0.0.1:{plan.port}/v1" in ready
    assert all(a.model in ready for a in plan.adapters)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_stays_fast_and_says_how_to_train_on_several_gpus(capsys):
    import subprocess

    mods = subprocess.run([sys.executable, "-X", "importtime", "-m", "selfaware.cli", "--help"],
                          capture_output=True, text=True, check=True).stderr
    assert "vllm" not in mods and "torch" not in mods.split() and "selfaware.serve" not in mods
    with pytest.raises(SystemExit):
        main(["finetune", "--backend", "local", "--help"])
    out = capsys.readouterr().out
    assert "selfaware finetune --spec organisms.yaml --num-processes 4" in out
    assert "accelerate launch --config_file finetune/accelerate/ddp.yaml --num_processes 4" in out
    assert "tinker" in out and "--yes" in out
