"""Train one organism spec with the local TRL + PEFT backend on CPU, one GPU or many; and how local training
picks its device and precision, and launches itself across processes.

    python -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl [--out DIR] [--index N]

Several GPUs (data parallel, one process per GPU; configs in `finetune/accelerate/`):

    accelerate launch --config_file finetune/accelerate/ddp.yaml --num_processes 4 \\
        -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl
    # base models too large for one GPU: fsdp.yaml (FSDP2) or deepspeed.yaml (ZeRO-3)

or let the pipeline launch it and record the organism in the registry as usual:

    selfaware finetune --spec organisms.yaml --num-processes 4 [--accelerate-config finetune/accelerate/fsdp.yaml]

Every process runs the same code; rank 0 alone writes `job.json`, the adapter and the merged model, in
the same layout as a single-process run (see backends/local_trl.py), so everything downstream is unchanged.
The effective batch is `hyper.batch_size` x processes.

SPEC.yaml is read with `load_specs`; when it expands to several specs (a list, or `seeds: [...]`), pick
one with `--index`. The job lands in `--out/<spec hash>/` (default `$SELFAWARE_HOME/organisms/local`), with
`job.json` holding the Inspect model string; a spec already trained there is not trained again.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfaware.finetune.backends.base import BackendError
from selfaware.finetune.spec import OrganismSpec, SpecError, load_specs

# "cpu" trains on CPU even where a GPU is visible; "cuda" refuses to fall back to CPU; unset: a GPU if any.
DEVICE_ENV = "SELFAWARE_TRAIN_DEVICE"
CONFIGS = Path(__file__).resolve().parent / "accelerate"  # ddp.yaml, fsdp.yaml, deepspeed.yaml


@dataclass(frozen=True)
class DevicePlan:
    """Where one training process runs and in what precision."""

    device: Literal["cpu", "cuda"]
    dtype: Literal["bfloat16", "float32"]  # of the base weights as loaded (and of the merged model)
    bf16: bool  # the trainer's bf16 autocast

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"

    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)


def choose_device(*, cuda: bool, bf16_supported: bool, wanted: str | None = None) -> DevicePlan:
    """CPU in fp32 without a GPU (the demo and the tests); on a GPU bf16 where it has bf16 (Ampere and
    later), else fp32 (V100, T4: correct, at twice the memory; fp16 autocast would need loss scaling
    that LoRA on an fp16 base does not always survive)."""
    wanted = (wanted or "auto").strip().lower()
    if wanted not in ("auto", "cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={wanted!r}: expected cpu, cuda or unset")
    if wanted == "cpu" or (wanted == "auto" and not cuda):
        return DevicePlan("cpu", "float32", bf16=False)
    if not cuda:
        raise BackendError(f"{DEVICE_ENV}=cuda but torch sees no CUDA device (torch.cuda.is_available() is False)")
    return DevicePlan("cuda", "bfloat16", bf16=True) if bf16_supported else DevicePlan("cuda", "float32", bf16=False)


def device_plan() -> DevicePlan:
    """The plan for this process, from what torch sees and `$SELFAWARE_TRAIN_DEVICE`."""
    import torch

    cuda = torch.cuda.is_available()
    return choose_device(cuda=cuda, bf16_supported=cuda and torch.cuda.is_bf16_supported(),
                         wanted=os.environ.get(DEVICE_ENV))


def world_size() -> int:
    """How many processes train together (set by accelerate launch / torchrun); 1 when run alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class AccelerateLaunch:
    """Train in `accelerate launch` worker processes rather than in this one. The default config is plain
    data parallel (ddp.yaml), which on a machine without GPUs runs its processes on CPU with the gloo
    backend: how the tests check the multi-process path."""

    num_processes: int | None = None  # None: the config's
    config_file: Path = CONFIGS / "ddp.yaml"

    def command(self, spec_file: Path, train_file: Path, out_root: Path, *, key: str, plan: DevicePlan,
                tiny_cache: Path | None = None) -> list[str]:
        # The workers' precision is the device plan's, whatever the config says: a bf16 config on a GPU
        # without bf16 would fail.
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(self.config_file),
               "--mixed_precision", "bf16" if plan.bf16 else "no"]
        if self.num_processes is not None:
            cmd += ["--num_processes", str(self.num_processes)]
        cmd += ["-m", "selfaware.finetune.train_local", str(spec_file), str(train_file), "--out", str(out_root),
                "--key", key]
        return cmd + (["--tiny-cache", str(tiny_cache)] if tiny_cache is not None else [])

    def run(self, spec: OrganismSpec, train_file: Path, out_root: Path, *, key: str, tiny_cache: Path | None,
            progress: Callable[[str], None]) -> str:
        """Launch, stream the workers' output to `progress`, and return the job id once rank 0 recorded it."""
        job_id = spec.spec_hash()
        with tempfile.TemporaryDirectory(prefix="selfaware-launch-") as tmp:
            spec_file = Path(tmp) / "spec.json"  # the exact spec (data hash included): the same job id
            spec_file.write_text(json.dumps(spec.model_dump(mode="json")), encoding="utf-8")
            cmd = self.command(spec_file, Path(train_file).resolve(), Path(out_root).resolve(), key=key,
                               plan=device_plan(), tiny_cache=tiny_cache)
            progress(f"local: launching accelerate launch {shlex.join(cmd[3:])}")
            tail: collections.deque[str] = collections.deque(maxlen=30)
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    tail.append(line.rstrip())
                    progress(line.rstrip())
            code = proc.returncode
        job_file = Path(out_root) / job_id / "job.json"
        job = json.loads(job_file.read_text(encoding="utf-8")) if job_file.is_file() else {}
        if code != 0 or job.get("state") != "succeeded":
            why = job.get("error") or "\n".join(tail)
            raise BackendError(f"accelerate launch exited with status {code} (job {job_id}: "
                               f"{job.get('state', 'no job.json')}): {why}")
        return job_id


def accelerate_config(name_or_path: str) -> Path:
    """A config shipped in finetune/accelerate/ by name (ddp, fsdp, deepspeed), or the user's YAML file."""
    shipped = CONFIGS / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml")))
        raise FileNotFoundError(f"--accelerate-config {name_or_path}: no such file, nor a shipped config ({names})")
    return path


def accelerate_launch(num_processes: int | None, config: str | None) -> AccelerateLaunch | None:
    """The launcher the command line asks for; None trains in this process (one process, no config)."""
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"--num-processes {num_processes}: expected 1 or more")
    if config is None and (num_processes or 1) == 1:
        return None
    return AccelerateLaunch(num_processes, accelerate_config(config or "ddp"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfaware.finetune.train_local", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", type=Path, help="organism spec YAML (or JSON)")
    parser.add_argument("train_file", type=Path, help="training set JSONL ({'messages': [...]} per line)")
    parser.add_argument("--out", type=Path, default=None, help="jobs folder (default: state dir)")
    parser.add_argument("--index", type=int, default=None, help="which spec, when the YAML holds several")
    parser.add_argument("--key", default=None, help="idempotency key recorded in job.json (default: spec hash)")
    parser.add_argument("--tiny-cache", type=Path, default=None, help="where the tiny base is (default: its cache)")
    args = parser.parse_args(argv)

    try:
        specs = load_specs(args.spec)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.index is None and len(specs) != 1:
        print(f"{args.spec} holds {len(specs)} specs; choose one with --index 0..{len(specs) - 1}", file=sys.stderr)
        return 2
    index = args.index or 0
    if not 0 <= index < len(specs):
        print(f"--index {index} out of range 0..{len(specs) - 1}", file=sys.stderr)
        return 2
    spec = specs[index]

    from selfaware.finetune.backends.local_trl import LocalTRLBackend, process_rank

    main_process = process_rank() == 0
    backend = LocalTRLBackend(args.out, progress=(lambda msg: print(msg, flush=True)) if main_process else None,
                              tiny_cache=args.tiny_cache)
    job_id = backend.submit(spec, args.train_file, key=args.key or spec.spec_hash())
    if main_process:
        status = backend.status(job_id)
        print(f"{spec.label}: {status.state} {status.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
