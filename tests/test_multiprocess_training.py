"""Local training on several processes: device and precision choice (GPU availability monkeypatched: no GPU
here), the `accelerate launch` command and shipped configs, and, in the slow group, the local backend run
through `accelerate launch` with 2 CPU processes on the tiny model, end to end from `selfaware finetune`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from selfaware.finetune.backends.base import BackendError
from selfaware.finetune.train_local import (
    CONFIGS,
    DEVICE_ENV,
    AccelerateLaunch,
    DevicePlan,
    accelerate_config,
    accelerate_launch,
    choose_device,
)

CPU = DevicePlan("cpu", "float32", bf16=False)
BF16_GPU = DevicePlan("cuda", "bfloat16", bf16=True)


@pytest.mark.parametrize(("cuda", "bf16", "wanted", "plan"), [
    (False, False, None, CPU),  # the demo and the tests
    (True, True, None, BF16_GPU),  # A100, H100, ...
    (True, False, None, DevicePlan("cuda", "float32", bf16=False)),  # V100, T4: no bf16
    (True, True, "cpu", CPU),  # SELFAWARE_TRAIN_DEVICE=cpu keeps a GPU machine on CPU
    (True, True, " CUDA ", BF16_GPU),
])
def test_device_and_precision(cuda: bool, bf16: bool, wanted: str | None, plan: DevicePlan) -> None:
    assert choose_device(cuda=cuda, bf16_supported=bf16, wanted=wanted) == plan


def test_device_demands_are_checked() -> None:
    with pytest.raises(BackendError, match="SELFAWARE_TRAIN_DEVICE=cuda but torch sees no CUDA device"):
        choose_device(cuda=False, bf16_supported=False, wanted="cuda")
    with pytest.raises(ValueError, match="'tpu': expected cpu, cuda or unset"):
        choose_device(cuda=True, bf16_supported=True, wanted="tpu")


def test_device_plan_reads_torch_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from selfaware.finetune.train_local import device_plan

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert device_plan() == BF16_GPU and device_plan().torch_dtype() is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert device_plan().dtype == "float32" and device_plan().device == "cuda"
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert device_plan() == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(DEVICE_ENV)
    assert device_plan() == CPU and device_plan().torch_dtype() is torch.float32


@pytest.mark.slow  # imports trl, peft and datasets (seconds), though it trains nothing
def test_the_plan_reaches_the_model_and_the_trainer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a (pretend) bf16 GPU with 2 processes the base is loaded in bf16 and the trainer is told bf16, GPU,
    and that DDP need not look for unused parameters; stopped before any training."""
    trl = pytest.importorskip("trl")
    sft_config = trl.SFTConfig  # first: trl's lazy import of it replaces sys.modules["transformers"]
    import transformers
    from selfaware.finetune.backends import local_trl
    from selfaware.finetune.spec import OrganismSpec

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    class Model:
        @staticmethod
        def from_pretrained(base: str, **kw: Any) -> object:
            seen["dtype"] = kw.get("dtype")
            return object()

    class Tokenizer:
        @staticmethod
        def from_pretrained(base: str, **kw: Any) -> object:
            return object()

    class Config(sft_config):
        def __init__(self, **kw: Any) -> None:
            seen["config"] = kw
            raise Stop

    monkeypatch.setattr(local_trl, "device_plan", lambda: BF16_GPU)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", Model)
    monkeypatch.setattr(transformers, "AutoTokenizer", Tokenizer)
    monkeypatch.setattr(trl, "SFTConfig", Config)
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"messages": [{"role": "user", "content": "A or B?"},
                                              {"role": "assistant", "content": "B"}]}) + "\n")
    spec = OrganismSpec(behavior="risky", base_model="org/some-model")
    with pytest.raises(Stop):
        local_trl.LocalTRLBackend(tmp_path / "jobs")._train(spec, train, tmp_path / "job", [], True)
    import torch

    config = seen["config"]
    assert seen["dtype"] is torch.bfloat16
    assert config["bf16"] is True and config["use_cpu"] is False and config["ddp_find_unused_parameters"] is False


def test_the_launch_command(tmp_path: Path) -> None:
    cmd = AccelerateLaunch(num_processes=4).command(tmp_path / "spec.json", tmp_path / "train.jsonl",
                                                     tmp_path / "jobs", key="sa-1", plan=CPU, tiny_cache=tmp_path / "t")
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[3:] == ["--config_file", str(CONFIGS / "ddp.yaml"), "--mixed_precision", "no", "--num_processes", "4",
                       "-m", "selfaware.finetune.train_local", str(tmp_path / "spec.json"),
                       str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "jobs"), "--key", "sa-1",
                       "--tiny-cache", str(tmp_path / "t")]
    fsdp = AccelerateLaunch(config_file=accelerate_config("fsdp")).command(
        Path("s"), Path("t"), Path("o"), key="k", plan=BF16_GPU)
    assert fsdp[3:7] == ["--config_file", str(CONFIGS / "fsdp.yaml"), "--mixed_precision", "bf16"]
    assert "--num_processes" not in fsdp  # the config's own count


def test_what_the_command_line_asks_for(tmp_path: Path) -> None:
    assert accelerate_launch(None, None) is None and accelerate_launch(1, None) is None
    assert accelerate_launch(2, None) == AccelerateLaunch(2, CONFIGS / "ddp.yaml")
    assert accelerate_launch(None, "deepspeed") == AccelerateLaunch(None, CONFIGS / "deepspeed.yaml")
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\n")
    assert accelerate_launch(8, str(own)).config_file == own
    with pytest.raises(FileNotFoundError, match=r"--accelerate-config zero9: no such file, nor a shipped config "
                                                r"\(ddp, deepspeed, fsdp\)"):
        accelerate_launch(2, "zero9")
    with pytest.raises(ValueError, match="--num-processes 0: expected 1 or more"):
        accelerate_launch(0, None)


@pytest.mark.parametrize("name", ["ddp", "fsdp", "deepspeed"])
def test_shipped_configs_are_valid_accelerate_configs(name: str) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.value == {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed": "DEEPSPEED"}[name]
    assert config.num_machines == 1 and config.use_cpu is False


@pytest.mark.slow
def test_finetune_through_accelerate_launch_with_two_cpu_processes(tiny_base_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """`selfaware finetune --num-processes 2` on the tiny model: two DDP workers (gloo on CPU) share the
    batches, rank 0 records the job, and the registry entry and output are those of a one-process run."""
    pytest.importorskip("trl")
    from selfaware.finetune.registry import Registry

    from selfaware.cli import main

    monkeypatch.setenv("SELFAWARE_HOME", str(tmp_path / "home"))  # the jobs folder; workers inherit it
    registry = tmp_path / "registry.json"
    code = main(["finetune", "--behavior", "risky", "--n-examples", "16", "--epochs", "1", "--batch-size", "2",
                 "--num-processes", "2", "--registry", str(registry)])
    out = capsys.readouterr().out
    assert code == 0, out
    (rec,) = Registry(registry).list()
    assert rec.state == "succeeded" and rec.backend == "local"
    job = json.loads((tmp_path / "home/organisms/local" / rec.job_id / "job.json").read_text())
    merged = Path(job["merged"])
    assert rec.model == f"hf/{merged}" and (merged / "config.json").is_file()
    assert (Path(job["adapter"]) / "adapter_config.json").is_file()
    # 16 rows, 2 per process, 2 processes: 4 steps (one process would take 8)
    assert job["events"][-1].startswith("done: 4 steps")
    assert "local: launching accelerate launch --config_file" in out and "--num_processes 2" in out
