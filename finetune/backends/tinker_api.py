"""Tinker (Thinking Machines) LoRA fine-tuning through its Python SDK (`pip install 'selfaware[tinker]'`).

Tinker is not a job queue: it runs forward/backward passes and optimizer steps on its GPUs, and the training
loop runs here. So, like the local backend, `submit` trains to the end before it returns; the pipeline then
reads the finished state at once.

Why the SDK rather than HTTP: the training surface (sessions, heartbeats, futures polled until the GPUs
finish, chunked requests) is the SDK's job and not a documented HTTP API; the SDK is what Tinker supports.
The backend calls only a small public part of it (listed in `tests/fake_tinker.py`, which fakes exactly
that part so that tests need neither the SDK nor a network; a conformance test compares the fake's
signatures with the real SDK's when it is installed).

Never paying twice. Every run carries `user_metadata = {"selfaware_key": key}` (the registry's idempotency
key). After every epoch the state (weights and optimizer) is saved as the training checkpoint
`selfaware-e<epoch>`; the finished organism is the sampler checkpoint `selfaware-final`. Then:

* `find(key)`: the newest run with that key and a `selfaware-final` checkpoint;
* `submit` returns such a run at once (nothing trained); finding instead an interrupted run of the same key,
  it resumes from its newest epoch checkpoint (a new Tinker run with the same key; no finished epoch is
  trained, or paid, twice); otherwise it creates a run. An extra empty run (a create retried after an
  ambiguous failure) costs nothing: Tinker bills tokens processed.
* Read-only calls and run creation are retried (`retry.py`); a training step or a save is never repeated
  blindly (a repeated forward_backward would add its gradients twice): it fails with a message saying
  that a rerun resumes from the last epoch.

Cost first: the rows are tokenized with the base model's tokenizer, and the training tokens
(tokens per epoch x epochs left) times the price per million training tokens are shown before anything
is created; `confirm` decides (the CLI asks, `--yes` skips). Prices: `PRICES_USD_PER_MTOK`, or
`$TINKER_TRAIN_USD_PER_MTOK` for other models or newer prices.

Hyper-parameters: `epochs`, `batch_size`, `learning_rate` (absolute; default `DEFAULT_LR` x
`lr_multiplier`), linear decay to zero, `lora_rank`, `seed` (LoRA init and data order) and
`max_seq_length` (longer rows are truncated). LoRA alpha is fixed by Tinker and not sent;
`target_heldout` is local-only and refused. Loss: cross-entropy on the assistant turns (their end-of-turn
token included), rendered with the base model's own chat template so that the organism is asked
questions in the format it was trained on; a `weight: 0` assistant turn is not trained.

The model string is `tinker/<tinker://…/sampler_weights/selfaware-final>`: the suite's `tinker/` Inspect
provider (`selfaware/providers/tinker.py`) sends it to Tinker's OpenAI-compatible endpoint.

Secrets: the SDK reads `TINKER_API_KEY` itself; this module never handles it, and every text it keeps
or raises passes `_scrub` (the suite's scrubber plus Tinker's `tml-` key shape).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from selfaware.finetune.backends.base import UNKNOWN, BackendError, JobStatus
from selfaware.finetune.backends.retry import (
    RetryPolicy,
    Transient,
    call_with_retry,
    is_transient_status,
)
from selfaware.finetune.registry import REDACTED, scrub
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.spending import approved
from selfaware.finetune.validate import validate_chat_jsonl

T = TypeVar("T")

DEFAULT_LR = 1e-4  # Tinker's documented starting point for LoRA; scaled by hyper.lr_multiplier
KEY_FIELD = "selfaware_key"
FINAL = "selfaware-final"
EPOCH_PREFIX = "selfaware-e"
# USD per million training tokens (every token sent to forward_backward). Source:
# https://thinkingmachines.ai/tinker/ (models and pricing), as of PRICES_AS_OF.
PRICES_USD_PER_MTOK: dict[str, float] = {
    "Qwen/Qwen3-4B-Instruct-2507": 0.22,
    "Qwen/Qwen3-8B": 0.40,
}
PRICES_AS_OF = "2026-01-05"
PRICE_ENV = "TINKER_TRAIN_USD_PER_MTOK"
MAX_LISTED_RUNS = 10_000  # `find` pages through at most this many runs
_TML_KEY = re.compile(r"\btml-[A-Za-z0-9_\-]{6,}")


def _scrub(text: str) -> str:
    return scrub(_TML_KEY.sub(REDACTED, text))


def load_sdk() -> Any:
    try:
        import tinker
    except ImportError:
        raise BackendError("the Tinker backend needs the tinker SDK: pip install 'selfaware[tinker]'") from None
    return tinker


def base_model_id(spec: OrganismSpec) -> str:
    """Tinker's id of the base (an HF repo id such as Qwen/Qwen3-8B); `tinker/` prefixes are accepted."""
    return spec.base_model.removeprefix("tinker/")


# -- cost ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostEstimate:
    base_model: str
    examples: int
    tokens_per_epoch: int
    epochs: int  # the epochs still to train (fewer than the spec's when resuming)
    usd_per_mtok: float | None

    @property
    def tokens(self) -> int:
        return self.tokens_per_epoch * self.epochs

    @property
    def usd(self) -> float | None:
        return None if self.usd_per_mtok is None else self.tokens * self.usd_per_mtok / 1e6

    def describe(self) -> str:
        work = (f"Tinker LoRA training of {self.base_model}: {self.examples} examples, "
                f"{self.tokens_per_epoch:,} tokens per epoch x {self.epochs} epochs = {self.tokens:,} training tokens")
        if self.usd is None:
            return (f"{work}; price unknown for this model (set {PRICE_ENV} to the USD per million training "
                    f"tokens shown in the Tinker console)")
        cost = f"about ${self.usd:.2f}" if self.usd >= 0.01 else "less than $0.01"
        return f"{work} x ${self.usd_per_mtok:g}/M = {cost}"


def price_per_mtok(base_model: str) -> float | None:
    override = os.environ.get(PRICE_ENV)
    if override:
        try:
            return float(override)
        except ValueError:
            raise BackendError(f"{PRICE_ENV}={override!r} is not a number of USD per million tokens") from None
    return PRICES_USD_PER_MTOK.get(base_model)


Confirm = Callable[[CostEstimate], bool]


def ask_on_terminal(estimate: CostEstimate) -> bool:
    """Show the estimate; approved by `--yes` or by a person at the terminal, refused with nobody to ask (the
    caller says how to approve)."""
    return approved(estimate.describe(), "Start this Tinker training?")


# -- rows to tokens --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One training row as tokens, with the loss weight of every token (0 outside trained assistant turns)."""

    tokens: list[int]
    weights: list[float]

    def datum(self, sdk: Any) -> Any:
        """Next-token prediction: the input is every token but the last, each target the token after."""
        return sdk.Datum(model_input=sdk.ModelInput.from_ints(self.tokens[:-1]),
                         loss_fn_inputs={"target_tokens": self.tokens[1:], "weights": self.weights[1:]})


def _template(tokenizer: Any, messages: list[dict], tools: Any, *, prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=prompt)


def render_example(tokenizer: Any, row: dict, where: str, max_tokens: int) -> Example:
    """Tokenize a chat row with the base model's chat template; weight 1 on every assistant turn (its
    end-of-turn marker included) unless the turn says `weight: 0`.

    Turn boundaries come from rendering growing prefixes of the conversation: the text of the first i
    messages plus the assistant header must start the text of the first i + 1, or the template rewrites
    earlier turns (some reasoning templates drop old thoughts) and the row cannot be split honestly."""
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    tools = row.get("tools")
    full = _template(tokenizer, messages, tools, prompt=False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(row["messages"]):
        if m["role"] != "assistant" or m.get("weight", 1) == 0:
            continue
        if not isinstance(m["content"], str):
            raise BackendError(f"{where}: field messages[{i}].content: the Tinker backend trains text answers only")
        start = len(_template(tokenizer, messages[:i], tools, prompt=True))
        upto = _template(tokenizer, messages[: i + 1], tools, prompt=False)
        if not full.startswith(upto) or start > len(upto):
            raise BackendError(f"{where}: the chat template of this base model rewrites earlier turns, so "
                               f"assistant turn messages[{i}] cannot be located in the rendered row")
        spans.append((start, len(upto)))
    if not spans:
        raise BackendError(f"{where}: no assistant turn to train (every one has weight 0)")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    tokens, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    # a token is trained when its characters overlap a trained span
    weights = [1.0 if any(s < b and a < e for s, e in spans) else 0.0 for a, b in offsets]
    tokens, weights = tokens[:max_tokens], weights[:max_tokens]
    if sum(weights[1:]) == 0:
        raise BackendError(f"{where}: no assistant token left within hyper.max_seq_length={max_tokens} tokens")
    return Example(tokens, weights)


def read_rows(train_file: Path) -> Iterator[tuple[str, dict]]:
    """(`file:line`, row) for every row of a validated chat JSONL file."""
    for n, line in enumerate(Path(train_file).read_text(encoding="utf-8").split("\n"), 1):
        if line.strip():
            yield f"{train_file}:{n}", json.loads(line)


def batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Row indices of one epoch in batches: a fixed shuffle per (seed, epoch), so a resumed run sees the data
    in the order an uninterrupted one would."""
    order = list(range(n))
    random.Random(f"selfaware-tinker:{seed}:{epoch}").shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


# -- runs and checkpoints ---------------------------------------------------------------------------------


def _checkpoint_name(checkpoint: Any) -> str:
    return str(checkpoint.tinker_path).rstrip("/").rsplit("/", 1)[-1]


def _epoch_of(checkpoint: Any) -> int | None:
    name = _checkpoint_name(checkpoint)
    if checkpoint.checkpoint_type != "training" or not name.startswith(EPOCH_PREFIX):
        return None
    digits = name.removeprefix(EPOCH_PREFIX)
    return int(digits) if digits.isdigit() else None


@dataclass
class RunView:
    """One Tinker training run of ours and its checkpoints."""

    run: Any
    checkpoints: list[Any]

    @property
    def run_id(self) -> str:
        return str(self.run.training_run_id)

    @property
    def final(self) -> Any | None:
        done = [c for c in self.checkpoints if c.checkpoint_type == "sampler" and _checkpoint_name(c) == FINAL]
        return max(done, key=lambda c: c.time) if done else None

    @property
    def last_epoch(self) -> tuple[int, Any] | None:
        saved = [(e, c) for c in self.checkpoints if (e := _epoch_of(c)) is not None]
        return max(saved, key=lambda ec: (ec[0], ec[1].time)) if saved else None


class TinkerBackend:
    name = "tinker"

    def __init__(
        self,
        *,
        sdk: Any = None,
        tokenizer_loader: Callable[[str], Any] | None = None,
        confirm: Confirm = ask_on_terminal,
        progress: Callable[[str], None] | None = None,
        timeout: float = 1800.0,
        max_attempts: int = 6,
        base_delay: float = 2.0,
        max_delay: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        min_examples: int = 10,
        log_every: int | None = None,
    ):
        self._sdk = sdk
        self._load_tokenizer = tokenizer_loader or _hf_tokenizer
        self.confirm = confirm
        self.progress = progress or (lambda _msg: None)
        self.timeout = timeout  # the bound on every wait for one Tinker future
        self.policy = RetryPolicy(max_attempts, base_delay, max_delay, sleep)
        self.min_examples = min_examples
        self.log_every = log_every

    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            self._sdk = load_sdk()
        return self._sdk

    # -- calls ------------------------------------------------------------------------------------------

    def _translated(self, what: str, fn: Callable[[], T]) -> T:
        """The SDK's errors as the retry loop's: transient ones `Transient`, the rest a `BackendError`."""
        sdk = self.sdk
        try:
            return fn()
        except sdk.APIStatusError as e:
            detail = _scrub(f"HTTP {e.status_code}: {e}")
            if not is_transient_status(e.status_code):
                raise BackendError(f"Tinker {what} failed: {detail}") from None
            raise Transient(detail) from None
        except sdk.APIConnectionError as e:  # timeouts included: the request may have landed
            raise Transient(_scrub(f"{type(e).__name__}: {e}")) from None
        except sdk.RequestFailedError as e:
            detail = _scrub(f"{type(e).__name__}: {e}")
            if str(getattr(e, "category", "")).lower().endswith("user"):
                raise BackendError(f"Tinker {what} failed: {detail}") from None
            raise Transient(detail) from None
        except TimeoutError:
            raise Transient(f"no answer within {self.timeout:g}s") from None
        except sdk.TinkerError as e:
            raise BackendError(_scrub(f"Tinker {what} failed: {type(e).__name__}: {e}")) from None

    def _retried(self, what: str, fn: Callable[[], T]) -> T:
        """Read-only calls and run creation: safe to repeat."""
        return call_with_retry("Tinker", what, lambda: self._translated(what, fn), self.policy)

    def _once(self, what: str, fn: Callable[[], T], resume_hint: str) -> T:
        """Training steps and saves: repeating one blindly could apply a step twice."""
        try:
            return self._translated(what, fn)
        except Transient as e:
            raise BackendError(f"Tinker {what} failed: {e}; {resume_hint}") from None

    def _rest(self) -> Any:
        return self._retried("client setup", lambda: self.sdk.RestClient())

    # -- protocol ---------------------------------------------------------------------------------------

    def find(self, key: str) -> str | None:
        done = [v for v in self._views(key) if v.final is not None]
        return max(done, key=lambda v: v.final.time).run_id if done else None

    def status(self, job_id: str) -> JobStatus:
        rest = self._rest()
        run = self._retried("run status", lambda: rest.get_training_run(job_id).result(timeout=self.timeout))
        view = RunView(run, self._checkpoints(rest, job_id))
        paths = [str(c.tinker_path) for c in sorted(view.checkpoints, key=lambda c: c.time)]
        final = view.final
        if final is not None:
            meta = final.user_metadata or {}
            events = [_scrub(f"{k}: {v}") for k, v in sorted(meta.items()) if k != KEY_FIELD]
            return JobStatus(job_id=job_id, state="succeeded", model=f"tinker/{final.tinker_path}",
                             events=events, checkpoints=paths, provider_state="final checkpoint saved")
        if getattr(run, "corrupted", False):
            return JobStatus(job_id=job_id, state="failed", error="Tinker reports this training run corrupted",
                             checkpoints=paths, provider_state="corrupted")
        return JobStatus(
            job_id=job_id, state=UNKNOWN, checkpoints=paths, provider_state=f"no {FINAL} checkpoint",
            error=(f"Tinker run {job_id} has no {FINAL} sampler checkpoint, although selfaware records only runs "
                   f"that saved one (without an expiry): was it deleted? See the run in the Tinker console"),
        )

    def submit(self, spec: OrganismSpec, train_file: Path, *, key: str) -> str:
        if spec.hyper.target_heldout is not None:
            raise BackendError("hyper.target_heldout (train until learned) is local-only; give hyper.epochs for Tinker")
        validate_chat_jsonl(train_file, min_examples=self.min_examples)  # before anything is created
        views = self._views(key)
        done = [v for v in views if v.final is not None]
        if done:
            run_id = max(done, key=lambda v: v.final.time).run_id
            self.progress(f"tinker: {key} already trained as run {run_id}; not training again")
            return run_id
        base = base_model_id(spec)
        tokenizer = self._tokenizer(base)
        examples = [render_example(tokenizer, row, where, spec.hyper.max_seq_length) for where, row in read_rows(train_file)]
        saved = [(e, c) for v in views if (ec := v.last_epoch) is not None for e, c in [ec]]
        start_epoch, resume = max(saved, key=lambda ec: (ec[0], ec[1].time)) if saved else (0, None)
        start_epoch = min(start_epoch, spec.hyper.epochs)
        estimate = CostEstimate(base, len(examples), sum(len(x.tokens) - 1 for x in examples),
                                spec.hyper.epochs - start_epoch, price_per_mtok(base))
        if estimate.epochs and not self.confirm(estimate):
            raise BackendError(f"Tinker training not started ({estimate.describe()}); approve it at the prompt, "
                               f"or pass --yes (Python: TinkerBackend(confirm=lambda estimate: True))")
        return self._train(spec, key, examples, start_epoch, resume)

    # -- internals --------------------------------------------------------------------------------------

    def _tokenizer(self, base: str) -> Any:
        try:
            return self._load_tokenizer(base)
        except Exception as e:  # noqa: BLE001 (hub, auth, unknown repo: all end here with the reason)
            raise BackendError(_scrub(f"cannot load the tokenizer of {base} to render the training rows "
                                      f"({type(e).__name__}: {e}); gated models need HF_TOKEN")) from None

    def _checkpoints(self, rest: Any, run_id: str) -> list[Any]:
        listed = self._retried("checkpoint list", lambda: rest.list_checkpoints(run_id).result(timeout=self.timeout))
        return list(listed.checkpoints)

    def _views(self, key: str) -> list[RunView]:
        """Every run of ours carrying `key`, with its checkpoints."""
        rest = self._rest()
        runs: list[Any] = []
        offset = 0
        while offset < MAX_LISTED_RUNS:
            page = self._retried("run list", lambda at=offset: rest.list_training_runs(limit=100, offset=at)
                                 .result(timeout=self.timeout))
            batch = list(page.training_runs)
            runs += [r for r in batch if (r.user_metadata or {}).get(KEY_FIELD) == key]
            offset += len(batch)
            if not batch or offset >= page.cursor.total_count:
                break
        return [RunView(r, self._checkpoints(rest, str(r.training_run_id))) for r in runs]

    def _train(self, spec: OrganismSpec, key: str, examples: list[Example], start_epoch: int, resume: Any) -> str:
        """One Tinker session: the run is trained, then the session is closed with how it ended (the SDK's own
        context manager would wait for that without a bound)."""
        meta = {KEY_FIELD: key, "spec_hash": spec.spec_hash(), "behavior": spec.behavior}
        service = self.sdk.ServiceClient(user_metadata=meta, display_name=spec.label[:200])
        ended = "interrupted"
        try:
            run_id = self._train_run(service, spec, meta, examples, start_epoch, resume)
            ended = "success"
        except Exception:
            ended = "errored"
            raise
        finally:
            try:
                self._translated("session close", lambda: service.close(ended).result(timeout=self.timeout))
            except (BackendError, Transient) as e:  # the run and its checkpoints are saved either way
                self.progress(f"tinker: could not close the session ({e})")
        return run_id

    def _train_run(self, service: Any, spec: OrganismSpec, meta: dict[str, str], examples: list[Example],
                   start_epoch: int, resume: Any) -> str:
        sdk, hyper, t = self.sdk, spec.hyper, self.timeout
        per_epoch = math.ceil(len(examples) / hyper.batch_size)
        total = per_epoch * hyper.epochs
        lr = hyper.learning_rate or DEFAULT_LR * (hyper.lr_multiplier or 1.0)
        every = self.log_every or max(1, total // 20)
        datums = [x.datum(sdk) for x in examples]
        if resume is None:
            client = self._retried("run create", lambda: service.create_lora_training_client(
                base_model=base_model_id(spec), rank=hyper.lora_rank, seed=spec.seed, user_metadata=meta,
            ).result(timeout=t))
        else:
            self.progress(f"tinker: resuming {meta[KEY_FIELD]} after epoch {start_epoch} from {resume.tinker_path}")
            client = self._retried("run resume", lambda: service.create_training_client_from_state_with_optimizer(
                str(resume.tinker_path), user_metadata=meta).result(timeout=t))
        run_id = str(client.model_id)
        hint = (f"run {run_id} keeps its finished epochs; rerun the same `selfaware finetune` to resume from "
                f"the last one")
        self.progress(f"tinker: run {run_id}: {total - start_epoch * per_epoch} steps left of {total}")
        step, loss = start_epoch * per_epoch, float("nan")
        for epoch in range(start_epoch + 1, hyper.epochs + 1):
            for batch in batches(len(datums), hyper.batch_size, spec.seed, epoch):
                rate = lr * (1 - step / total)
                sent = [datums[i] for i in batch]
                out = self._once(f"training step {step + 1}", lambda sent=sent, rate=rate: self._step(client, sent, rate),
                                 hint)
                trained = sum(sum(examples[i].weights[1:]) for i in batch)
                loss = float(out.metrics.get("loss:sum", float("nan"))) / max(trained, 1.0)
                step += 1
                if step % every == 0 or step == total:
                    self.progress(f"tinker: step {step}/{total} loss {loss:.4f}")
            saved = self._once("checkpoint save", lambda epoch=epoch: client.save_state(
                f"{EPOCH_PREFIX}{epoch:04d}", user_metadata={**meta, "epoch": str(epoch)}).result(timeout=t), hint)
            self.progress(f"tinker: epoch {epoch}/{hyper.epochs} saved as {saved.path}")
        summary = {**meta, "steps": str(total), "epochs": str(hyper.epochs), "last_step_loss": f"{loss:.4f}",
                   "learning_rate": f"{lr:g}", "lora_rank": str(hyper.lora_rank)}
        final = self._once("final save", lambda: client.save_weights_for_sampler(FINAL, user_metadata=summary)
                           .result(timeout=t), hint)
        self.progress(f"tinker: run {run_id} finished -> tinker/{final.path}")
        return run_id

    def _step(self, client: Any, batch: list[Any], rate: float) -> Any:
        # Both requests are sent before either is awaited, so Tinker runs them back to back.
        fwd_bwd = client.forward_backward(batch, "cross_entropy")
        optim = client.optim_step(self.sdk.AdamParams(learning_rate=rate))
        out = fwd_bwd.result(timeout=self.timeout)
        optim.result(timeout=self.timeout)
        return out


def _hf_tokenizer(base: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base)
