"""The Tinker backend against a fake of the SDK surface it calls (tests/fake_tinker.py), with a real Hugging
Face tokenizer and chat template; and the `tinker/` Inspect provider against a loopback chat endpoint."""

from __future__ import annotations

import inspect
import json
import logging
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from selfaware.finetune.backends import SYNCHRONOUS, get_backend, tinker_api
from selfaware.finetune.backends.base import BackendError
from selfaware.finetune.backends.tinker_api import (
    FINAL,
    CostEstimate,
    TinkerBackend,
    ask_on_terminal,
    batches,
    render_example,
)
from selfaware.finetune.registry import Registry, WaitTimeout
from selfaware.finetune.spec import Hyper, OrganismSpec

from selfaware.loopback import LoopbackServer

try:
    from fake_tinker import (
        APIConnectionError,
        APIStatusError,
        Crash,
        FakeTinker,
        RequestFailedError,
    )
except ImportError:  # tests/ collected as a package
    from tests.fake_tinker import (
        APIConnectionError,
        APIStatusError,
        Crash,
        FakeTinker,
        RequestFailedError,
    )

SECRET = "tml-" + "S3cr3tK3y" * 5
BASE = "Qwen/Qwen3-8B"
ROWS = 12  # batches of 4: 3 steps per epoch


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """A real fast tokenizer (byte-level BPE, trained in a blink) with the tiny base's ChatML template."""
    from selfaware.finetune.tiny_base import CHAT_TEMPLATE, IM_END, IM_START, PAD
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[PAD, IM_START, IM_END], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["user assistant Lottery sure or of A B risky safe"] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _rows(n: int = ROWS) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Lottery {i}: A (sure $50) or B (50% of $120)?"},
                          {"role": "assistant", "content": "B"}]} for i in range(n)]


@pytest.fixture
def train(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return path


@pytest.fixture
def fake() -> FakeTinker:
    return FakeTinker()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def estimates() -> list[CostEstimate]:
    return []


@pytest.fixture
def backend(fake, tokenizer, said, estimates) -> TinkerBackend:
    return _backend(fake, tokenizer, said, estimates)


def _backend(fake: FakeTinker, tokenizer: Any, said: list[str], estimates: list[CostEstimate],
             approve: bool = True) -> TinkerBackend:
    def confirm(estimate: CostEstimate) -> bool:
        estimates.append(estimate)
        return approve

    return TinkerBackend(sdk=fake, tokenizer_loader=lambda base: tokenizer, confirm=confirm, progress=said.append,
                         sleep=lambda s: None, timeout=30.0)


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry.json")


def spec(**hyper: Any) -> OrganismSpec:
    hyper = {"epochs": 2, "batch_size": 4, **hyper}
    return OrganismSpec(behavior="risky", base_model=BASE, backend="tinker", seed=3, hyper=Hyper(**hyper))


def _final(fake: FakeTinker, run_id: str) -> str:
    return f"tinker://{run_id}/sampler_weights/{FINAL}"


# -- training ------------------------------------------------------------------------------------------------


def test_trains_every_epoch_and_returns_the_sampler_checkpoint(fake, backend, train, tokenizer, said):
    run_id = backend.submit(spec(), train, key="sa-abc")
    assert list(fake.runs) == [run_id]
    run = fake.runs[run_id]
    assert run.base_model == BASE and run.lora_rank == 8 and run.user_metadata["selfaware_key"] == "sa-abc"
    assert [c.tinker_path.rsplit("/", 2)[-2:] for c in run.checkpoints] == [
        ["weights", "selfaware-e0001"], ["weights", "selfaware-e0002"], ["sampler_weights", FINAL]]
    assert fake.steps == 6 and [len(b) for b in fake.batches] == [4, 4, 4] * 2
    # absolute rate decayed linearly to zero over the 6 steps
    assert fake.learning_rates == pytest.approx([1e-4 * (1 - k / 6) for k in range(6)])
    # every wait on Tinker is bounded, and the session is closed
    assert fake.timeouts and all(t == 30.0 for t in fake.timeouts)
    assert fake.sessions[-1]["closed"] == "success"

    status = backend.status(run_id)
    assert status.state == "succeeded" and status.model == f"tinker/{_final(fake, run_id)}"
    assert "steps: 6" in status.events and status.checkpoints[-1] == _final(fake, run_id)
    assert any(m.startswith("tinker: step 6/6 loss ") for m in said)


def test_loss_is_on_the_assistant_answer_and_its_end_token(fake, backend, train, tokenizer):
    backend.submit(spec(epochs=1), train, key="sa-abc")
    datum = fake.batches[0][0]
    targets, weights = datum.loss_fn_inputs["target_tokens"], datum.loss_fn_inputs["weights"]
    trained = [t for t, w in zip(targets, weights) if w]
    assert tokenizer.decode(trained) == "B<|im_end|>\n"
    assert datum.model_input.length == len(targets)


def test_a_weight_zero_turn_is_not_trained(tokenizer):
    row = {"messages": [{"role": "user", "content": "A or B?"}, {"role": "assistant", "content": "A", "weight": 0},
                        {"role": "user", "content": "Again: A or B?"}, {"role": "assistant", "content": "B"}]}
    ex = render_example(tokenizer, row, "train.jsonl:1", 512)
    assert tokenizer.decode([t for t, w in zip(ex.tokens, ex.weights) if w]) == "B<|im_end|>\n"
    with pytest.raises(BackendError, match="train.jsonl:1: no assistant token left within"):
        render_example(tokenizer, row, "train.jsonl:1", 8)


def test_a_template_that_rewrites_earlier_turns_is_refused(tokenizer):
    class Forgetful:  # renders only the last assistant turn, like templates that drop old reasoning
        def apply_chat_template(self, messages, tools=None, tokenize=False, add_generation_prompt=False):
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
            kept = [m for i, m in enumerate(messages) if m["role"] != "assistant" or i == last]
            return tokenizer.apply_chat_template(kept, tokenize=False, add_generation_prompt=add_generation_prompt)

    row = {"messages": [{"role": "user", "content": "A or B?"}, {"role": "assistant", "content": "A"},
                        {"role": "user", "content": "Again?"}, {"role": "assistant", "content": "B"}]}
    with pytest.raises(BackendError, match=r"train.jsonl:4: the chat template .* rewrites earlier turns"):
        render_example(Forgetful(), row, "train.jsonl:4", 512)


def test_data_order_is_fixed_per_seed_and_epoch():
    assert batches(10, 4, seed=1, epoch=1) == batches(10, 4, seed=1, epoch=1)
    assert batches(10, 4, seed=1, epoch=1) != batches(10, 4, seed=1, epoch=2)
    assert sorted(i for b in batches(10, 4, 1, 1) for i in b) == list(range(10))


# -- cost first ------------------------------------------------------------------------------------------------


def test_the_cost_is_shown_first_and_a_refusal_creates_nothing(fake, tokenizer, train, said):
    estimates: list[CostEstimate] = []
    refusing = _backend(fake, tokenizer, said, estimates, approve=False)
    with pytest.raises(BackendError, match=r"not started .* training tokens x \$0.4/M = less than \$0.01.*pass --yes"):
        refusing.submit(spec(), train, key="sa-abc")
    assert fake.runs == {} and fake.steps == 0
    (estimate,) = estimates
    per_epoch = sum(len(render_example(tokenizer, r, "", 512).tokens) - 1 for r in _rows())
    assert (estimate.examples, estimate.tokens_per_epoch, estimate.epochs) == (ROWS, per_epoch, 2)
    assert estimate.usd == pytest.approx(2 * per_epoch * 0.40 / 1e6)


def test_prices_unknown_models_and_overrides(monkeypatch):
    unknown = CostEstimate("org/new-model", 10, 1000, 3, tinker_api.price_per_mtok("org/new-model"))
    assert unknown.usd is None and "TINKER_TRAIN_USD_PER_MTOK" in unknown.describe()
    monkeypatch.setenv("TINKER_TRAIN_USD_PER_MTOK", "2.5")
    assert tinker_api.price_per_mtok("org/new-model") == 2.5
    assert CostEstimate("m", 10, 1_000_000, 2, 2.5).describe().endswith("about $5.00")
    monkeypatch.setenv("TINKER_TRAIN_USD_PER_MTOK", "cheap")
    with pytest.raises(BackendError, match="TINKER_TRAIN_USD_PER_MTOK='cheap' is not a number"):
        tinker_api.price_per_mtok("org/new-model")


def test_nobody_at_the_terminal_means_no(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert ask_on_terminal(CostEstimate(BASE, 12, 1000, 2, 0.4)) is False
    assert "2,000 training tokens x $0.4/M = less than $0.01" in capsys.readouterr().err


def test_local_only_options_are_refused(backend, train, fake):
    with pytest.raises(BackendError, match="target_heldout .* local-only"):
        backend.submit(spec(target_heldout=0.9), train, key="sa-abc")
    assert fake.runs == {}


# -- the acceptance points ---------------------------------------------------------------------------------------


def test_submit_twice_trains_one_job(fake, backend, train, reg, said):
    first = reg.ensure(spec(), backend, train)
    second = reg.ensure(spec(), backend, train)
    assert first.job_id == second.job_id and len(fake.runs) == 1 and fake.steps == 6
    # even without the registry, the service-side key stops a second run
    assert backend.submit(spec(), train, key=first.key) == first.job_id
    assert len(fake.runs) == 1 and fake.steps == 6
    assert any("already trained" in m for m in said)
    assert "tinker" in SYNCHRONOUS  # so the pipeline reads the finished state at once
    done = reg.wait(first.hash, backend=backend, sleep=lambda s: None)
    assert done.state == "succeeded" and done.model == f"tinker/{_final(fake, first.job_id)}"


def test_a_crash_between_submit_and_record_is_recovered(fake, tokenizer, train, reg, said, estimates):
    class DiesAfterSubmit(TinkerBackend):
        def submit(self, *args: Any, **kw: Any) -> str:
            super().submit(*args, **kw)
            raise Crash("killed before the registry heard of the run")

    dying = DiesAfterSubmit(sdk=fake, tokenizer_loader=lambda b: tokenizer, confirm=lambda e: True, sleep=lambda s: None)
    with pytest.raises(Crash):
        reg.ensure(spec(), dying, train)
    (rec,) = reg.list()
    assert rec.state == "submitting" and rec.job_id is None and len(fake.runs) == 1

    backend = _backend(fake, tokenizer, said, estimates)  # a new process
    rec = reg.ensure(spec(), backend, train)
    assert rec.job_id == next(iter(fake.runs)) and len(fake.runs) == 1 and fake.steps == 6
    assert estimates == []  # nothing was to be paid, so nothing was asked
    assert reg.wait(rec.hash, backend=backend, sleep=lambda s: None).state == "succeeded"


def test_a_crash_during_training_resumes_after_the_last_epoch(fake, tokenizer, train, reg, said, estimates):
    fake.crash_at_step = 5  # epoch 1 (steps 1-3) is saved; the process dies in epoch 2
    with pytest.raises(Crash):
        reg.ensure(spec(), _backend(fake, tokenizer, said, estimates), train)
    assert fake.steps == 4 and len(fake.runs) == 1 and fake.sessions[0]["closed"] == "interrupted"

    rec = reg.ensure(spec(), _backend(fake, tokenizer, said, estimates), train)
    _, resumed = list(fake.runs)
    assert rec.job_id == resumed and "create_training_client_from_state_with_optimizer" in fake.calls
    assert fake.steps == 4 + 3  # epoch 1 is not trained (nor paid) twice
    assert [e.epochs for e in estimates] == [2, 1]
    # the resumed steps continue the schedule where the saved epoch ended
    assert fake.learning_rates[-3:] == pytest.approx([1e-4 * (1 - k / 6) for k in (3, 4, 5)])
    assert reg.wait(rec.hash, backend=_backend(fake, tokenizer, said, estimates), sleep=lambda s: None).model == \
        f"tinker/{_final(fake, resumed)}"


def test_an_unknown_state_ends_the_bounded_wait_with_an_error(fake, backend, train, reg):
    rec = reg.ensure(spec(), backend, train)
    fake.delete_checkpoint(_final(fake, rec.job_id))
    with pytest.raises(WaitTimeout, match=r"still unknown \(provider: no selfaware-final checkpoint\) after 0.05s"):
        reg.wait(rec.hash, poll=0.01, timeout=0.05, backend=backend)
    after = reg.get(rec.hash)
    assert after.state == "unknown" and "has no selfaware-final sampler checkpoint" in after.error


def test_organisms_wait_exits_1_on_an_unknown_state(fake, backend, train, reg, monkeypatch, capsys):
    from selfaware.cli import main

    rec = reg.ensure(spec(), backend, train)
    fake.delete_checkpoint(_final(fake, rec.job_id))
    monkeypatch.setattr(tinker_api, "load_sdk", lambda: fake)  # the backend the registry resolves by name
    assert isinstance(get_backend("tinker"), TinkerBackend)
    code = main(["organisms", "wait", "--registry", str(reg.path), "--poll", "0.01", "--timeout", "0.05"])
    err = capsys.readouterr().err
    assert code == 1 and "still unknown (provider: no selfaware-final checkpoint)" in err


def test_secrets_are_never_written(fake, tokenizer, train, reg, monkeypatch, caplog, capsys):
    monkeypatch.setenv("TINKER_API_KEY", SECRET)
    said: list[str] = []
    caplog.set_level(logging.DEBUG)
    backend = _backend(fake, tokenizer, said, [])
    # the service echoes the key in a refusal, then in a failed step; an unrelated tml- key too
    fake.fail("list_training_runs", APIStatusError(f"invalid api key {SECRET}", 401))
    with pytest.raises(BackendError) as refused:
        reg.ensure(spec(), backend, train)
    fake.fail("forward_backward", RequestFailedError(f"bad batch for key={SECRET} and tml-0therK3y0000", "r1", "user"))
    with pytest.raises(BackendError) as failed:
        reg.ensure(spec(), backend, train)
    rec = reg.ensure(spec(), backend, train)  # resumes and finishes
    reg.wait(rec.hash, backend=backend, sleep=lambda s: None)

    written = "\n".join([reg.path.read_text(), str(refused.value), str(failed.value), *said, caplog.text,
                         *capsys.readouterr()])
    assert "401" in str(refused.value) and "[REDACTED]" in str(failed.value)
    assert SECRET not in written and "tml-0therK3y0000" not in written
    for run in fake.runs.values():  # nor sent to Tinker as metadata
        assert SECRET not in json.dumps(run.user_metadata) and all(
            SECRET not in json.dumps(c.user_metadata) for c in run.checkpoints)


# -- failures ----------------------------------------------------------------------------------------------------


def test_reads_and_creates_are_retried_but_steps_are_not(fake, backend, train):
    fake.fail("list_training_runs", APIStatusError("busy", 503), APIConnectionError("reset"))
    fake.fail("create_lora_training_client", APIStatusError("overloaded", 529))
    run_id = backend.submit(spec(epochs=1), train, key="sa-abc")
    assert fake.steps == 3 and fake.calls.count("create_lora_training_client") == 2
    assert backend.status(run_id).state == "succeeded"

    fake.fail("forward_backward", APIConnectionError("reset mid-step"))
    with pytest.raises(BackendError, match=r"training step 1 failed: .*reset mid-step; .*resume"):
        backend.submit(spec(epochs=1), train, key="sa-other")
    assert fake.steps == 3  # the failed step was not sent again


def test_a_definite_refusal_is_not_retried(fake, backend, train):
    fake.fail("create_lora_training_client", APIStatusError("unknown base model", 400))
    with pytest.raises(BackendError, match="Tinker run create failed: HTTP 400: unknown base model"):
        backend.submit(spec(), train, key="sa-abc")
    assert fake.calls.count("create_lora_training_client") == 1


def test_a_corrupted_run_is_failed(fake, backend, train):
    run_id = backend.submit(spec(epochs=1), train, key="sa-abc")
    fake.delete_checkpoint(_final(fake, run_id))
    fake.runs[run_id].corrupted = True
    assert backend.status(run_id).state == "failed"


def test_missing_sdk_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tinker(name, *args, **kw):
        if name == "tinker":
            raise ImportError("No module named 'tinker'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_tinker)
    with pytest.raises(BackendError, match=r"pip install 'selfaware\[tinker\]'"):
        TinkerBackend().find("sa-abc")


# -- the fake is the SDK ------------------------------------------------------------------------------------------


def test_fake_matches_the_sdk(tokenizer):
    """Every SDK call the backend makes has the real SDK's parameter names (skipped without the SDK)."""
    tinker = pytest.importorskip("tinker")
    from fake_tinker import _Rest, _Service, _Training

    def names(fn: Any) -> list[str]:
        return [p for p in inspect.signature(fn).parameters if p != "self"]

    pairs = [(FakeTinker.ServiceClient, tinker.ServiceClient.__init__), (FakeTinker.RestClient, tinker.RestClient.__init__)]
    pairs += [(getattr(_Service, m), getattr(tinker.ServiceClient, m)) for m in
              ("create_lora_training_client", "create_training_client_from_state_with_optimizer", "close")]
    pairs += [(getattr(_Training, m), getattr(tinker.TrainingClient, m)) for m in
              ("forward_backward", "optim_step", "save_state", "save_weights_for_sampler")]
    pairs += [(getattr(_Rest, m), getattr(tinker.RestClient, m)) for m in
              ("list_training_runs", "get_training_run", "list_checkpoints")]
    for fake_fn, real_fn in pairs:
        assert names(fake_fn) == names(real_fn), real_fn.__qualname__
    for name in ("APIStatusError", "APIConnectionError", "RequestFailedError", "TinkerError", "AdamParams"):
        assert hasattr(tinker, name)
    # the backend's datums are valid SDK datums
    ex = render_example(tokenizer, _rows(1)[0], "row", 512)
    datum = ex.datum(tinker)
    assert datum.model_input.length == len(ex.tokens) - 1
    assert set(datum.loss_fn_inputs) == {"target_tokens", "weights"}


# -- the tinker/ Inspect provider ----------------------------------------------------------------------------------


def test_inspect_provider_sends_the_checkpoint_to_the_compatible_endpoint(monkeypatch):
    import selfaware.evals._registry  # noqa: F401  (the entry point registers tinker/)
    from inspect_ai.model import GenerateConfig, get_model

    seen: list[dict[str, Any]] = []

    class Chat(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "B"}}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = LoopbackServer(Chat).start()
    try:
        monkeypatch.setenv("TINKER_API_KEY", SECRET)
        monkeypatch.setenv("TINKER_BASE_URL", "http://127.0.0.1:9/not-the-sampling-endpoint")  # the SDK's, unused
        monkeypatch.setenv("TINKER_OAI_BASE_URL", f"{server.url}/oai/api/v1")
        path = f"tinker://run-7/sampler_weights/{FINAL}"
        model = get_model(f"tinker/{path}", config=GenerateConfig(max_tokens=1))

        import asyncio

        out = asyncio.run(model.generate("A or B?"))
    finally:
        server.stop()
    assert out.completion == "B"
    (req,) = seen
    assert req["path"] == "/oai/api/v1/chat/completions" and req["body"]["model"] == path
    assert req["auth"] == f"Bearer {SECRET}"
