"""`selfaware serve`: one vLLM server for a base model and every LoRA organism of the registry trained on it.

Evaluating organisms × seeds × controls one model at a time means loading the base again for each; vLLM
instead serves the base once with many LoRA adapters and picks the adapter per request. This module reads
the registry, keeps the organisms that have a PEFT adapter on disk (local-backend organisms; hosted ones are
listed as skipped, with the string that evaluates them), and starts

    vllm serve <base> --host 127.0.0.1 --port 8000 --enable-lora --max-lora-rank R --max-loras N \\
        --lora-modules <adapter>=<adapter> ...

Each adapter is registered under its own absolute path, which is the name Inspect's `vllm/` provider asks
the server for: with `VLLM_BASE_URL` pointing at this server, the organism's model string
`vllm/<base>:<adapter>` (the registry's own) is answered by this server, and `inspect eval-set` over all
the organisms uses it for every model. `VLLM_API_KEY`, if set, is read by both vLLM and Inspect (it is never
printed). Runtime adapter loading is switched on, so organisms trained later load on demand.

`--dry-run` prints the command and the model strings and needs neither vLLM nor a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The LoRA ranks vLLM accepts for --max-lora-rank (vllm.config.lora.MaxLoRARanks).
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
DEFAULT_PORT = 8000
HEALTH_TIMEOUT = 900.0  # loading a large base can take minutes


class ServeError(RuntimeError):
    """Nothing to serve, or vLLM cannot run here; the message says what to do."""


@dataclass(frozen=True)
class Adapter:
    """One organism's LoRA adapter and the base it was trained on."""

    hash: str
    label: str
    path: Path
    rank: int
    base: str  # as vLLM loads it: the adapter's base_model_name_or_path (a hub id or a folder)
    spec_base: str  # as the spec names it (e.g. "tiny" for the embedded base)

    @property
    def model(self) -> str:
        return f"vllm/{self.base}:{self.path}"


def _adapter_folders(rec: Any) -> list[Path]:
    """Where a record's adapter may be: its vllm/ model string, then its checkpoints."""
    found = []
    if rec.model and rec.model.startswith("vllm/") and ":" in rec.model:
        found.append(Path(rec.model.split(":", 1)[1]))
    found += [Path(c) for c in rec.checkpoints if not str(c).startswith(("tinker://", "ft:"))]
    return found


def adapter_of(rec: Any) -> Adapter | str:
    """The record's adapter, or why it cannot be served by vLLM."""
    if rec.state != "succeeded":
        return f"{rec.state}, not trained"
    for folder in _adapter_folders(rec):
        config = folder / "adapter_config.json"
        if config.is_file():
            cfg = json.loads(config.read_text(encoding="utf-8"))
            base = cfg.get("base_model_name_or_path")
            if not base:
                return f"{config} names no base_model_name_or_path"
            return Adapter(rec.hash, rec.label, folder.resolve(), int(cfg.get("r", 8)), str(base),
                           str(rec.spec.get("base_model", "")))
    if rec.backend != "local":
        return f"{rec.backend} organism: evaluate it as {rec.model}"
    return "no adapter folder on disk (adapter_config.json not found)"


def vllm_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds `rank`."""
    for allowed in VLLM_RANKS:
        if allowed >= rank:
            return allowed
    raise ServeError(f"LoRA rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_RANKS[-1]})")


@dataclass(frozen=True)
class ServePlan:
    base: str
    adapters: list[Adapter]
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_loras: int | None = None  # adapters resident on the GPU at once (default: all of them)
    extra_args: tuple[str, ...] = ()
    skipped: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = ["vllm", "serve", self.base, "--host", self.host, "--port", str(self.port)]
        if self.adapters:
            cmd += ["--enable-lora", "--max-lora-rank", str(vllm_rank(max(a.rank for a in self.adapters))),
                    "--max-loras", str(self.max_loras or len(self.adapters)),
                    "--lora-modules", *[f"{a.path}={a.path}" for a in self.adapters]]
        return cmd + list(self.extra_args)

    def models(self) -> list[tuple[str, str]]:
        """(label, Inspect model string): the base first, then every organism."""
        return [("base", f"vllm/{self.base}")] + [(f"{a.label} ({a.hash})", a.model) for a in self.adapters]

    def describe(self) -> str:
        lines = ["vLLM command:", f"  {shlex.join(self.command())}", "",
                 "Inspect model strings (with the environment variable below, all use this one server):",
                 f"  export VLLM_BASE_URL={self.url}"]
        lines += [f"  {model}    # {label}" for label, model in self.models()]
        models = ",".join(model for _, model in self.models())
        lines += ["", "every organism and the base in one run:",
                  f"  inspect eval-set evals/<family>.py --model {shlex.quote(models)} --log-dir logs/<run>"]
        if self.skipped:
            lines += ["", "not served here:"] + [f"  {s}" for s in self.skipped]
        return "\n".join(lines)


def plan_from_records(records: Sequence[Any], *, base_model: str | None = None, organisms: Sequence[str] = (),
                      host: str = "127.0.0.1", port: int = DEFAULT_PORT, max_loras: int | None = None,
                      extra_args: Sequence[str] = ()) -> ServePlan:
    """The server for `base_model` (a hub id, a folder, or the spec's name such as "tiny"; may be omitted
    when the selected organisms share one base) and its organisms, or the `organisms` named (spec hash,
    hash prefix or label)."""
    wanted = list(organisms)
    chosen = [r for r in records if not wanted or any(r.hash.startswith(w) or r.label == w for w in wanted)]
    unmatched = [w for w in wanted if not any(r.hash.startswith(w) or r.label == w for r in records)]
    if unmatched:
        raise ServeError(f"no organism {', '.join(unmatched)} in the registry (names are spec hashes or labels; "
                         f"`selfaware organisms list` shows them)")
    adapters, skipped = [], []
    for rec in chosen:
        got = adapter_of(rec)
        if isinstance(got, Adapter):
            adapters.append(got)
        else:
            skipped.append(f"{rec.label} ({rec.hash}): {got}")
    if base_model is not None:
        off_base = [a for a in adapters if base_model not in (a.base, a.spec_base)]
        skipped += [f"{a.label} ({a.hash}): trained on {a.base}" for a in off_base]
        adapters = [a for a in adapters if a not in off_base]
    bases = sorted({a.base for a in adapters})
    if not adapters:
        where = f" for base model {base_model}" if base_model else ""
        detail = "".join(f"\n  {s}" for s in skipped)
        raise ServeError(f"no LoRA organism to serve{where} in the registry{detail}")
    if len(bases) > 1:
        counts = ", ".join(f"{b} ({sum(a.base == b for a in adapters)} organisms)" for b in bases)
        raise ServeError(f"the organisms were trained on several base models; one server serves one base: "
                         f"choose with --base-model: {counts}")
    adapters.sort(key=lambda a: (a.label, a.hash))
    return ServePlan(bases[0], adapters, host, port, max_loras, tuple(extra_args), skipped)


# -- running ------------------------------------------------------------------------------------------------


def check_prerequisites() -> None:
    """vLLM installed and a GPU visible, or a clear error (vLLM serves on GPUs)."""
    if importlib.util.find_spec("vllm") is None or shutil.which("vllm") is None:
        raise ServeError("vLLM is not installed here: pip install 'selfaware[vllm]' on a Linux machine with an "
                         "NVIDIA GPU (`selfaware serve --dry-run` prints the command without it)")
    if not gpu_visible():
        raise ServeError("no GPU is visible (torch.cuda.is_available() is False): vLLM serves LoRA organisms on "
                         "GPUs; run `selfaware serve` on a GPU machine, or evaluate small organisms with hf/")


def gpu_visible() -> bool:
    try:
        import torch
    except ImportError:
        return shutil.which("nvidia-smi") is not None
    return bool(torch.cuda.is_available())


def wait_healthy(root: str, alive: Callable[[], bool], *, timeout: float = HEALTH_TIMEOUT, poll: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> float:
    """Poll `<root>/health` until it answers 200 (returns the seconds it took); a server that exits or stays
    unhealthy past `timeout` is an error."""
    start = time.monotonic()
    while True:
        if not alive():
            raise ServeError("vLLM exited before it was ready (its output is above)")
        try:
            with urllib.request.urlopen(f"{root}/health", timeout=10) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or loading: 503 until the model is in memory
        if time.monotonic() - start + poll > timeout:
            raise ServeError(f"vLLM did not become healthy at {root}/health within {timeout:g}s")
        sleep(poll)


def serve(plan: ServePlan, *, timeout: float = HEALTH_TIMEOUT, say: Callable[[str], None] = print) -> int:
    """Start vLLM, wait for health, print the model strings, then serve until vLLM exits or Ctrl-C."""
    check_prerequisites()
    say(f"starting: {shlex.join(plan.command())}")
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}  # organisms trained later load on demand
    proc = subprocess.Popen(plan.command(), env=env)
    try:
        took = wait_healthy(plan.url.removesuffix("/v1"), lambda: proc.poll() is None, timeout=timeout)
        say(f"vLLM is ready at {plan.url} after {took:.0f}s\n\n{plan.describe()}\n\nserving; Ctrl-C stops the server")
        return proc.wait()
    except KeyboardInterrupt:
        say("stopping vLLM")
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
