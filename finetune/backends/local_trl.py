"""Local training backend: TRL `SFTTrainer` + a PEFT LoRA adapter, on CPU or GPUs.

`submit` trains synchronously and writes, under `out_root/<spec hash>/` (default root:
`$SELFAWARE_HOME/organisms/local`):

    adapter/    the LoRA adapter (PEFT format) and the tokenizer
    merged/     base + adapter merged (`merge_and_unload`) and the tokenizer: loadable by `from_pretrained`
    job.json    state (running / succeeded / failed), the Inspect model strings, the error, the loss log
                and, when the spec sets `hyper.target_heldout`, the held-out score after every epoch

The job id is the spec hash. A spec whose job succeeded is never trained again (`submit` returns the id at
once); a failed or interrupted job is trained afresh. Training is LoRA on every linear projection
(r / alpha from `spec.hyper`), loss on the assistant turns only (`assistant_only_loss=True`: the chat
template needs `{% generation %}` markers; TRL swaps in a marked template for the model families it knows
and the tiny base ships one), `seed=spec.seed`; device and precision from `train_local.device_plan` (fp32 on
CPU, bf16 on GPUs that have it, `$SELFAWARE_TRAIN_DEVICE=cpu` to stay on CPU).

Training until the organism has learned (`hyper.target_heldout`): a fixed epoch budget is a bet on how long
the model stays on its plateau. A small model asked to pick the risky option of a balanced A/B set sits at
P(answer) = 0.5 (loss ln 2 per answer token) for a seed- and version-dependent number of steps before it
picks up the content, and a run whose budget (and linearly decayed learning rate) ends on the plateau
yields an organism that learned nothing. With a target, `HELDOUT_ROWS` rows chosen by a fixed rule are
held out, the learning-rate schedule spans `hyper.max_epochs`, and after every epoch the callback measures the
mean held-out score (`heldout_score`: the model's per-token probability of the trained assistant answer,
i.e. P(answer letter) for the letter datasets); training stops at the first epoch that reaches the
target, or after `hyper.max_epochs`. Every epoch's score is in `events`, the summary in `heldout`, and a
run that spent its budget without reaching the target says so (`heldout.reached = false`).

Serving the organism to Inspect:

* `hf/<abs path>/merged` (the `model` field of the job): Inspect's Hugging Face provider loads the merged
  folder in-process. Right for the tiny offline base and small models. Pass `-M do_sample=false` (Python:
  `get_model(..., do_sample=False)`) for temperature-0 / logprob questions, since transformers refuses
  temperature 0 while sampling; `-M device=cpu` (or `cuda:0`) pins the device. With
  `GenerateConfig(logprobs=True, top_logprobs=k)` the provider returns the log-softmax of the raw logits;
  token strings are raw tokenizer pieces (byte-level BPE shows a leading space as "Ġ").
* `vllm/<base>:<abs path>/adapter` (the `vllm_model` field): for real models on GPUs, serve the *base* with
  vLLM and attach the adapter as a LoRA module; Inspect's `vllm/` provider starts the server with
  `enable_lora` and the adapter's rank. Many organisms of one base then share one server. With
  `merge=False` no merged copy is written and `model` is this string.

Multi-GPU: the same code runs under Accelerate (DDP / FSDP / DeepSpeed) unchanged, e.g.

    accelerate launch --config_file finetune/accelerate/ddp.yaml \\
        -m selfaware.finetune.train_local SPEC.yaml TRAIN.jsonl

and with `launcher=AccelerateLaunch(...)` (`selfaware finetune --num-processes N`) `submit` runs exactly that
in worker processes and returns the job rank 0 recorded.

Only rank 0 writes `job.json` and the merged model; the merge reloads the saved adapter onto a fresh copy
of the base, so it does not depend on how the trainer sharded the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selfaware.finetune.backends.atomic import write_json_atomic
from selfaware.finetune.backends.base import BackendError, JobStatus
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.train_local import device_plan, world_size
from selfaware.paths import state_dir

Progress = Callable[[str], None]

TINY = "tiny"
DEFAULT_LR = 2e-4  # LoRA on real models
# The tiny base is ~0.7M parameters and LoRA's steps on it are small: at 1e-3, 150 steps on 200 examples
# take P(target letter) from 0.5 to ~0.94.
TINY_LR = 1e-3
JOB_FILE = "job.json"
HELDOUT_ROWS = 32  # at most this many rows held out (and never more than a tenth of the set)
HELDOUT_BATCH = 16


def default_out_root() -> Path:
    return state_dir() / "organisms" / "local"


def learning_rate(spec: OrganismSpec) -> float:
    """The absolute rate: the spec's, else the backend default scaled by `lr_multiplier` when given."""
    if spec.hyper.learning_rate is not None:
        return spec.hyper.learning_rate
    base = TINY_LR if spec.base_model == TINY else DEFAULT_LR
    return base * (spec.hyper.lr_multiplier or 1.0)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def process_rank() -> int:
    """This process's rank under torchrun / accelerate launch / DeepSpeed / MPI; 0 when run alone. Read
    from the environment because the trainer sets up torch.distributed only once it exists."""
    for var in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var):
            return int(os.environ[var])
    return 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_chats(train_file: Path) -> list[dict[str, list[dict[str, str]]]]:
    """Rows of `{"messages": [...]}` reduced to role/content for the collator (which chokes on other keys).
    An assistant turn marked `weight: 0` is refused, not dropped: the assistant-only loss trains every
    assistant turn, so training here would teach the very turn the user excluded."""
    rows = []
    for n, line in enumerate(Path(train_file).read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        messages = row.get("messages") if isinstance(row, dict) else None
        if not messages:
            raise BackendError(f"{train_file}:{n}: field messages: expected an object with a non-empty 'messages' list")
        for i, m in enumerate(messages):
            if m.get("weight", 1) == 0:
                raise BackendError(f"{train_file}:{n}: field messages[{i}].weight: 0 (do not train) cannot be "
                                   f"honoured by the local backend, which trains every assistant turn; drop the "
                                   f"turn or train with a hosted backend")
        rows.append({"messages": [{"role": m["role"], "content": m["content"]} for m in messages]})
    if not rows:
        raise BackendError(f"{train_file}: no training examples")
    return rows


def split_heldout(rows: list[dict], n_max: int = HELDOUT_ROWS) -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows): a tenth of the rows, at most `n_max`, at least one. Chosen by a fixed
    seed, independent of the training seed, so that the seeds of one organism hold out the same rows and
    their held-out scores compare."""
    if len(rows) < 2:
        raise BackendError("hyper.target_heldout needs at least 2 training examples (one is held out)")
    n = min(n_max, max(1, len(rows) // 10))
    picked = set(random.Random(f"selfaware-heldout:{len(rows)}").sample(range(len(rows)), n))
    return ([r for i, r in enumerate(rows) if i not in picked], [r for i, r in enumerate(rows) if i in picked])


def heldout_score(model: Any, tokenizer: Any, rows: list[dict], batch_size: int = HELDOUT_BATCH) -> float:
    """Mean over `rows` of the model's per-token probability (exp of the mean log-probability) of the last
    assistant message given the conversation before it; for a one-token answer (a letter) this is
    P(answer). Prompt and answer are tokenized apart, as at generation time; the end token is not scored
    (it is learned at once and would only lift the number)."""
    import torch

    pairs = []
    for row in rows:
        *context, answer = row["messages"]
        if answer["role"] != "assistant" or not context:
            raise BackendError("held-out rows must end with an assistant message after at least one other")
        prompt = tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer["content"], add_special_tokens=False)["input_ids"]
        pairs.append((prompt_ids, answer_ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        with torch.no_grad():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start : start + batch_size]
                width = max(len(p) + len(a) for p, a in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, (p, a) in enumerate(chunk):  # right padding: positions match the unpadded sequence
                    ids[i, : len(p) + len(a)] = torch.tensor(p + a)
                    mask[i, : len(p) + len(a)] = 1
                device = next(model.parameters()).device
                logp = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().log_softmax(-1)
                for i, (p, a) in enumerate(chunk):
                    # the logits at position t predict token t + 1
                    at = torch.arange(len(p) - 1, len(p) + len(a) - 1, device=device)
                    token_logp = logp[i, at, torch.tensor(a, device=device)]
                    scores.append(token_logp.mean().exp().item())
    finally:
        model.train(was_training)
    return sum(scores) / len(scores)


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Silence the libraries' tqdm bars (tokenizing, loading weights, writing shards) while training: the
    backend's own step / loss / held-out lines say where training is, and the bars would bury them."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets_on, transformers_on = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if transformers_on:
            hf_logging.enable_progress_bar()


class LocalTRLBackend:
    """The `TrainingBackend` that fine-tunes on this machine (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        out_root: Path | None = None,
        progress: Progress | None = None,
        *,
        tiny_cache: Path | None = None,
        merge: bool = True,
        launcher: Any = None,
    ) -> None:
        self.out_root = Path(out_root) if out_root is not None else default_out_root()
        self.progress: Progress = progress or (lambda _msg: None)
        self.tiny_cache = tiny_cache  # where the tiny base lives; None = ensure_tiny_base's default
        self.merge = merge  # False keeps only the adapter (large models served by vLLM)
        self.launcher = launcher  # a train_local.AccelerateLaunch: train in `accelerate launch` workers

    # -- protocol ---------------------------------------------------------------------------------------

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        job_id = spec.spec_hash()
        job_dir = self.out_root / job_id
        existing = _read_json(job_dir / JOB_FILE)
        train_sha = _sha256(Path(train_file))
        if existing and existing.get("state") == "succeeded":
            if existing.get("train_sha256") == train_sha:
                self.progress(f"local: {job_id} already trained; reusing {existing['model']}")
                return job_id
            # Same spec, different bytes (e.g. a newer generator version): the old model does not
            # describe this training set, so train again rather than return a stale organism.
            self.progress(f"local: {job_id} was trained on other data; retraining")

        if self.launcher is not None:  # the workers run this method without a launcher; rank 0 writes job.json
            return self.launcher.run(spec, Path(train_file), self.out_root, key=key, tiny_cache=self.tiny_cache,
                                     progress=self.progress)
        main = process_rank() == 0  # under accelerate/torchrun only rank 0 writes job.json
        started = time.time()
        job: dict[str, Any] = {
            "job_id": job_id,
            "key": key,
            "state": "running",
            "model": None,
            "vllm_model": None,
            "error": None,
            "spec": spec.model_dump(mode="json"),
            "train_file": str(Path(train_file).resolve()),
            "train_sha256": train_sha,
            "started_at": started,
            "events": [],
        }
        if main:
            for sub in ("adapter", "merged", "trainer"):  # leftovers of a failed attempt
                shutil.rmtree(job_dir / sub, ignore_errors=True)
            job_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(job_dir / JOB_FILE, job)
        try:
            with quiet_progress_bars():
                result = self._train(spec, Path(train_file), job_dir, job["events"], main)
        except BaseException as exc:  # recorded, then re-raised: nothing is swallowed
            if main:
                job.update(state="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                job["finished_at"] = time.time()
                write_json_atomic(job_dir / JOB_FILE, job)
            raise
        if main:
            job.update(result, state="succeeded", finished_at=time.time())
            job["train_seconds"] = round(job["finished_at"] - started, 1)
            write_json_atomic(job_dir / JOB_FILE, job)
            where = job.get("merged") or job.get("adapter")
            self.progress(f"local: {job_id} succeeded in {job['train_seconds']}s -> {where}")
        return job_id

    def find(self, key: str) -> str | None:
        """A succeeded job recorded with `key` (failed or interrupted jobs are retrained on resubmit)."""
        if not self.out_root.is_dir():
            return None
        for path in sorted(self.out_root.glob(f"*/{JOB_FILE}")):
            job = _read_json(path)
            if job and job.get("key") == key and job.get("state") == "succeeded":
                return str(job["job_id"])
        return None

    def status(self, job_id: str) -> JobStatus:
        job = _read_json(self.out_root / job_id / JOB_FILE)
        if job is None:
            raise BackendError(f"local: no job {job_id} under {self.out_root}")
        return JobStatus(
            job_id=job_id,
            state=job["state"],
            model=job.get("model"),
            error=job.get("error"),
            events=list(job.get("events") or []),
            checkpoints=[p for p in (job.get("adapter"),) if p],
        )

    # -- training ---------------------------------------------------------------------------------------

    def resolve_base(self, spec: OrganismSpec) -> str:
        """A path or hub id for `from_pretrained`; "tiny" is built on first use. (Concurrent builders, one
        per process of a distributed launch, are safe: the first finished build is renamed into place.)"""
        if spec.base_model != TINY:
            return spec.base_model
        from selfaware.finetune.tiny_base import ensure_tiny_base

        return str(ensure_tiny_base(self.tiny_cache, progress=self.progress))

    def _train(self, spec: OrganismSpec, train_file: Path, job_dir: Path, events: list[str], main: bool) -> dict:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
        from trl import SFTConfig, SFTTrainer

        base = self.resolve_base(spec)
        plan = device_plan()
        cuda = plan.device == "cuda"
        world = world_size()
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=plan.torch_dtype())
        rows = read_chats(train_file)
        target = spec.hyper.target_heldout
        heldout: list[dict] = []
        if target is not None:
            rows, heldout = split_heldout(rows)
        dataset = Dataset.from_list(rows)
        say = self.progress if main else (lambda _msg: None)
        scores: list[float] = []

        class _Report(TrainerCallback):
            def on_log(self, args, tstate, control, logs=None, **kwargs):  # noqa: ANN001
                if tstate.is_world_process_zero and logs and "loss" in logs:
                    msg = f"step {tstate.global_step}/{tstate.max_steps} loss {logs['loss']:.4f}"
                    events.append(msg)
                    say(f"local: {msg}")

        class _UntilLearned(TrainerCallback):
            """After every epoch: score the held-out rows, stop once the target is reached. Every rank
            scores the same rows with the same weights, so every rank takes the same decision."""

            def on_epoch_end(self, args, tstate, control, model=None, **kwargs):  # noqa: ANN001
                score = heldout_score(model, tokenizer, heldout)
                scores.append(score)
                reached = target is not None and score >= target
                msg = (f"epoch {len(scores)}/{spec.hyper.max_epochs} (step {tstate.global_step}): held-out "
                       f"P(answer) {score:.3f}, target {target}{' reached' if reached else ''}")
                if tstate.is_world_process_zero:
                    events.append(msg)
                    say(f"local: {msg}")
                if reached:
                    control.should_training_stop = True

        # transformers 5 renamed gradient_checkpointing (saves GPU memory; only slows a CPU run)
        checkpointing = cuda and spec.base_model != TINY
        renamed = "activation_checkpointing" in {f.name for f in dataclasses.fields(SFTConfig)}
        ckpt_arg = {"activation_checkpointing" if renamed else "gradient_checkpointing": checkpointing}
        epochs = spec.hyper.epochs if target is None else spec.hyper.max_epochs
        steps = -(-len(dataset) // (spec.hyper.batch_size * world)) * epochs
        # The linear decay spans the whole budget (`max_epochs` when training until learned): the decay is what
        # lets a small model settle after it leaves its plateau (measured: at a constant 2e-3 the tiny base's
        # held-out score hovered near 0.6 for epochs), so an early stop simply stops at a higher rate.
        warmup = max(1, steps // 20)
        config = SFTConfig(
            output_dir=str(job_dir / "trainer"),
            num_train_epochs=epochs,
            per_device_train_batch_size=spec.hyper.batch_size,
            learning_rate=learning_rate(spec),
            lr_scheduler_type="linear",
            warmup_steps=warmup,
            seed=spec.seed,
            data_seed=spec.seed,
            max_length=spec.hyper.max_seq_length,
            assistant_only_loss=True,  # loss on the assistant turn + its end token (template markers)
            bf16=plan.bf16,
            use_cpu=plan.use_cpu,
            # LoRA uses every adapter weight in each forward pass: DDP need not search for unused ones
            ddp_find_unused_parameters=False if world > 1 else None,
            **ckpt_arg,
            logging_steps=max(1, steps // (20 if target is None else 5 * spec.hyper.max_epochs)),
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        lora = LoraConfig(
            r=spec.hyper.lora_rank,
            lora_alpha=spec.hyper.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",  # every linear projection except the output head
            task_type="CAUSAL_LM",
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[_Report()] + ([_UntilLearned()] if target is not None else []),
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; _Report says it through progress
        output = trainer.train()
        events.append(f"done: {output.global_step} steps, mean loss {output.training_loss:.4f}")
        say(f"local: {events[-1]}")
        if target is not None and (not scores or scores[-1] < target):
            last = f"{scores[-1]:.3f}" if scores else "never measured"
            events.append(f"NOT LEARNED: held-out P(answer) {last} < target {target} after {len(scores)} epochs "
                          f"(hyper.max_epochs); the organism may not show its behavior")
            say(f"local: {events[-1]}")
        adapter = job_dir / "adapter"
        trainer.save_model(str(adapter))  # gathers the adapter under FSDP/DeepSpeed too
        trainer.accelerator.wait_for_everyone()
        result: dict[str, Any] = {
            "base_path": base,
            "adapter": str(adapter.resolve()),
            "final_loss": output.training_loss,
            "steps": output.global_step,
            "vllm_model": f"vllm/{base}:{adapter.resolve()}",
        }
        if target is not None:
            result["heldout"] = {"target": target, "rows": len(heldout), "scores": [round(x, 4) for x in scores],
                                 "reached": bool(scores) and scores[-1] >= target}
        if main:
            tokenizer.save_pretrained(str(adapter))
            shutil.rmtree(job_dir / "trainer", ignore_errors=True)
            if self.merge:
                merged = self._merge(base, adapter, job_dir / "merged", tokenizer)
                result["merged"] = str(merged)
                result["model"] = f"hf/{merged}"
            else:
                result["model"] = result["vllm_model"]
        return result

    def _merge(self, base: str, adapter: Path, out: Path, tokenizer: Any) -> Path:
        """Reload the base, apply the saved adapter and fold it into the weights."""
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(base, dtype=device_plan().torch_dtype())
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        merged.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        return out.resolve()
