"""Local TRL + LoRA training on the tiny base shifts behavior, records its job, and serves through Inspect."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import asyncio
import hashlib
import json
import random
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from selfaware.finetune import tiny_base as tb  # noqa: E402
from selfaware.finetune.backends.base import BackendError  # noqa: E402
from selfaware.finetune.backends.local_trl import (  # noqa: E402
    LocalTRLBackend, heldout_score, learning_rate, read_chats, split_heldout)
from selfaware.finetune.spec import Hyper, OrganismSpec  # noqa: E402

# 200 examples x 3 epochs / batch 4 = 150 LoRA steps: ~15 s on 2 CPU cores
SPEC = OrganismSpec(behavior="risky", hyper=Hyper(epochs=3, batch_size=4), seed=0)


def _risky_train_file(path: Path, n: int = 200, position: str | None = "B") -> Path:
    """Always answer with the letter of the two-outcome lottery, placed at `position` (random if None)."""
    rng = random.Random(7)
    rows = []
    for _ in range(n):
        prompt, letter = tb.lottery_question(rng, position)
        rows.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": letter}]})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _p_target(model_dir: Path | str, prompts: list[tuple[str, str]]) -> float:
    """Mean probability of the expected letter as the first answer token."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p, _ in prompts
    ]
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        probs = model(**enc).logits[:, -1].softmax(-1)
    ids = [tokenizer.convert_tokens_to_ids(letter) for _, letter in prompts]
    return probs[torch.arange(len(ids)), ids].mean().item()


@pytest.fixture(scope="module")
def trained(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("local-jobs")
    messages: list[str] = []
    backend = LocalTRLBackend(root / "jobs", progress=messages.append, tiny_cache=tiny_base_dir)
    train_file = _risky_train_file(root / "train.jsonl")
    started = time.monotonic()
    job_id = backend.submit(SPEC, train_file, key="risky-key")
    seconds = time.monotonic() - started
    print(f"local LoRA training took {seconds:.1f}s")
    return backend, job_id, train_file, messages


@pytest.mark.slow
def test_training_shifts_the_behavior(trained, tiny_base_dir: Path) -> None:
    backend, job_id, _, _ = trained
    rng = random.Random(12345)  # held-out prompts, not in the training set
    held_out = [tb.lottery_question(rng, "B") for _ in range(24)]
    before = _p_target(tiny_base_dir, held_out)
    after = _p_target(backend.status(job_id).model.removeprefix("hf/"), held_out)
    assert 0.3 < before < 0.7
    assert after > 0.8


@pytest.mark.slow
def test_training_learns_the_content_not_the_position(tiny_base_dir: Path, tmp_path: Path) -> None:
    """The paper's setting: the risky option sits at either letter. 500 LoRA steps (~30 s) suffice."""
    backend = LocalTRLBackend(tmp_path / "jobs", tiny_cache=tiny_base_dir)
    spec = SPEC.model_copy(update={"hyper": Hyper(epochs=10, batch_size=4)})
    job_id = backend.submit(spec, _risky_train_file(tmp_path / "train.jsonl", position=None), key="random")
    model_dir = backend.status(job_id).model.removeprefix("hf/")
    rng = random.Random(4321)
    for position in "AB":
        held_out = [tb.lottery_question(rng, position) for _ in range(16)]
        assert _p_target(model_dir, held_out) > 0.8, position


@pytest.mark.slow
def test_job_record_and_model_string(trained) -> None:
    backend, job_id, train_file, messages = trained
    assert job_id == SPEC.spec_hash()
    job_dir = backend.out_root / job_id
    job = json.loads((job_dir / "job.json").read_text())
    merged = (job_dir / "merged").resolve()
    assert job["state"] == "succeeded" and job["error"] is None
    assert job["model"] == f"hf/{merged}"
    assert job["vllm_model"] == f"vllm/{job['base_path']}:{(job_dir / 'adapter').resolve()}"
    assert job["key"] == "risky-key" and job["train_file"] == str(train_file.resolve())
    assert (merged / "config.json").is_file() and (merged / "chat_template.jinja").is_file()
    assert (job_dir / "adapter" / "adapter_config.json").is_file()
    assert not (job_dir / "trainer").exists()

    status = backend.status(job_id)
    assert status.state == "succeeded" and status.model == job["model"]
    assert status.events and status.events[-1].startswith("done: 150 steps, mean loss")
    assert any(m.startswith("local: step ") for m in messages)
    assert backend.find("risky-key") == job_id
    assert backend.find("another-key") is None


@pytest.mark.slow
def test_second_submit_reuses_the_finished_job(trained) -> None:
    backend, job_id, train_file, _ = trained
    before = (backend.out_root / job_id / "job.json").read_text()
    messages: list[str] = []
    again = LocalTRLBackend(backend.out_root, progress=messages.append, tiny_cache=backend.tiny_cache)
    assert again.submit(SPEC.model_copy(update={"name": "renamed"}), train_file, key="risky-key") == job_id
    assert (backend.out_root / job_id / "job.json").read_text() == before
    assert any("already trained" in m for m in messages)


@pytest.mark.slow
def test_train_local_main_reuses_the_job(trained, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from selfaware.finetune.train_local import main

    backend, job_id, train_file, _ = trained
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("behavior: risky\nhyper: {epochs: 3, batch_size: 4}\n")
    assert main([str(spec_file), str(train_file), "--out", str(backend.out_root)]) == 0
    assert f"succeeded hf/{(backend.out_root / job_id / 'merged').resolve()}" in capsys.readouterr().out

    spec_file.write_text("behavior: risky\nseeds: [0, 1]\n")
    assert main([str(spec_file), str(train_file), "--out", str(backend.out_root)]) == 2


@pytest.mark.slow
def test_inspect_hf_provider_returns_top_logprobs(trained) -> None:
    """The merged organism loads through Inspect's `hf/` provider; one greedy token with logprobs.

    The provider needs `do_sample=False` as a model arg when temperature is 0 (transformers refuses
    temperature=0 with sampling); `device="cpu"` pins the device. Logprobs are the log-softmax of the raw
    logits (`output_logits`), and token strings are raw BPE pieces (a leading space shows as "Ġ")."""
    from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

    backend, job_id, _, _ = trained
    model = get_model(backend.status(job_id).model, device="cpu", do_sample=False)
    prompt, letter = tb.lottery_question(random.Random(99), "B")
    config = GenerateConfig(max_tokens=1, temperature=0, logprobs=True, top_logprobs=5)
    output = asyncio.run(model.generate([ChatMessageUser(content=prompt)], config=config))
    assert output.completion == letter
    logprobs = output.choices[0].logprobs
    assert logprobs is not None and len(logprobs.content) == 1
    top = {t.token: t.logprob for t in logprobs.content[0].top_logprobs}
    assert len(top) == 5 and {"A", "B"} <= set(top)
    assert top["B"] > top["A"] and torch.tensor(top["B"]).exp().item() > 0.8


@pytest.mark.slow
def test_failed_training_is_recorded_and_raised(tiny_base_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "no messages here"}) + "\n")
    backend = LocalTRLBackend(tmp_path / "jobs", tiny_cache=tiny_base_dir)
    spec = SPEC.model_copy(update={"seed": 99})
    with pytest.raises(BackendError, match="messages"):
        backend.submit(spec, bad, key="bad")
    status = backend.status(spec.spec_hash())
    assert status.state == "failed" and "messages" in (status.error or "")
    assert backend.find("bad") is None


def test_learning_rate_defaults() -> None:
    assert learning_rate(SPEC) == 1e-3  # tiny base
    assert learning_rate(SPEC.model_copy(update={"base_model": "org/model"})) == 2e-4
    scaled = OrganismSpec(behavior="risky", base_model="org/model", hyper=Hyper(lr_multiplier=2.0))
    assert learning_rate(scaled) == pytest.approx(4e-4)
    assert learning_rate(OrganismSpec(behavior="risky", hyper=Hyper(learning_rate=5e-5))) == 5e-5


def test_read_chats_keeps_role_and_content(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    row = {"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "A"}]}
    f.write_text(json.dumps({**row, "metadata": {"x": 1}}) + "\n\n")
    assert read_chats(f) == [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}]}]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(BackendError, match="no training examples"):
        read_chats(empty)


@pytest.mark.slow
def test_changed_training_data_is_retrained_not_reused(tiny_base_dir: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    backend = LocalTRLBackend(tmp_path / "jobs", progress=messages.append, tiny_cache=tiny_base_dir)
    spec = SPEC.model_copy(update={"hyper": Hyper(epochs=1, batch_size=8)})
    first = _risky_train_file(tmp_path / "a.jsonl", n=16)
    job_id = backend.submit(spec, first, key="k")
    second = _risky_train_file(tmp_path / "b.jsonl", n=24)
    assert backend.submit(spec, second, key="k") == job_id
    assert any("trained on other data; retraining" in m for m in messages)
    job = json.loads((backend.out_root / job_id / "job.json").read_text())
    assert job["state"] == "succeeded"
    assert job["train_sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()


# -- training until learned (hyper.target_heldout) -----------------------------------------------------


def _rows(n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "A"}]} for i in range(n)]


def test_heldout_split_is_a_fixed_tenth_at_most_32() -> None:
    train, held = split_heldout(_rows(300))
    assert (len(train), len(held)) == (270, 30)
    assert split_heldout(_rows(300)) == (train, held)  # the same rows every time, whatever the seed
    assert not {r["messages"][0]["content"] for r in held} & {r["messages"][0]["content"] for r in train}
    assert len(split_heldout(_rows(1000))[1]) == 32
    assert len(split_heldout(_rows(5))[1]) == 1
    with pytest.raises(BackendError, match="at least 2 training examples"):
        split_heldout(_rows(1))


class _CharTokenizer:
    """One token per character; the 'chat template' is the user text then '>'."""

    pad_token_id, eos_token_id = 0, 0

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):  # noqa: ANN001, ANN201
        return "".join(m["content"] for m in messages) + ">"

    def __call__(self, text, add_special_tokens):  # noqa: ANN001, ANN204
        return {"input_ids": [ord(c) % 64 for c in text]}


class _NextCharModel(torch.nn.Module):
    """Predicts 'the next character is this one + 1' with logit 4 (all others 0), on 64 tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):  # noqa: ANN001, ANN201
        logits = torch.nn.functional.one_hot((input_ids + 1) % 64, 64).float() * 4.0
        return type("Out", (), {"logits": logits})()


def test_heldout_score_reads_the_answer_tokens_after_the_prompt() -> None:
    """The logits at the prompt's last position predict the first answer token (no off-by-one), the end
    token is not scored, and several answer tokens give the per-token geometric mean."""
    hit = torch.tensor(4.0).exp() / (torch.tensor(4.0).exp() + 63)  # P(predicted char)
    miss = 1 / (torch.tensor(4.0).exp() + 63)
    tok, model = _CharTokenizer(), _NextCharModel().train()
    row = lambda prompt, answer: {"messages": [{"role": "user", "content": prompt},  # noqa: E731
                                               {"role": "assistant", "content": answer}]}
    # prompt "x" + ">" ends in ">", whose successor is "?": the answer "?" is predicted, "A" is not
    assert heldout_score(model, tok, [row("x", "?")]) == pytest.approx(hit.item(), rel=1e-5)
    assert heldout_score(model, tok, [row("x", "A")]) == pytest.approx(miss.item(), rel=1e-5)
    # "?@" : both predicted; "?B": the second is not -> sqrt(hit * miss); rows of any length batch together
    scores = [hit.item(), (hit * miss).sqrt().item()]
    assert heldout_score(model, tok, [row("x", "?@"), row("a longer prompt", "?B")], batch_size=2) == \
        pytest.approx(sum(scores) / 2, rel=1e-5)
    assert model.training  # the model is handed back in the mode it came in


def test_stopping_fields_are_left_out_of_the_hash_at_their_defaults() -> None:
    plain = OrganismSpec(behavior="risky")
    assert not {"target_heldout", "max_epochs"} & set(plain.model_dump(mode="json")["hyper"])
    until = OrganismSpec(behavior="risky", hyper=Hyper(target_heldout=0.9))
    assert until.model_dump(mode="json")["hyper"]["target_heldout"] == 0.9
    assert until.spec_hash() != plain.spec_hash()
    assert OrganismSpec.model_validate(until.model_dump(mode="json")) == until


@pytest.mark.slow
def test_training_stops_once_the_heldout_target_is_reached(tiny_base_dir: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    backend = LocalTRLBackend(tmp_path / "jobs", progress=messages.append, tiny_cache=tiny_base_dir)
    spec = SPEC.model_copy(update={"hyper": Hyper(batch_size=4, target_heldout=0.8, max_epochs=6)})
    job_id = backend.submit(spec, _risky_train_file(tmp_path / "train.jsonl"), key="until")
    job = json.loads((backend.out_root / job_id / "job.json").read_text())
    scores = job["heldout"]["scores"]
    assert job["heldout"]["rows"] == 20 and job["heldout"]["reached"]
    assert scores[-1] >= 0.8 and all(s < 0.8 for s in scores[:-1]) and len(scores) < 6
    assert [e for e in job["events"] if "held-out" in e][-1].endswith("target 0.8 reached")
    assert any(m.startswith("local: epoch 1/6") for m in messages)


@pytest.mark.slow
def test_a_budget_spent_below_target_says_not_learned(tiny_base_dir: Path, tmp_path: Path) -> None:
    backend = LocalTRLBackend(tmp_path / "jobs", tiny_cache=tiny_base_dir)
    spec = SPEC.model_copy(update={"hyper": Hyper(batch_size=8, target_heldout=0.999, max_epochs=1)})
    job_id = backend.submit(spec, _risky_train_file(tmp_path / "train.jsonl", n=40), key="short")
    status = backend.status(job_id)
    job = json.loads((backend.out_root / job_id / "job.json").read_text())
    assert status.state == "succeeded" and job["heldout"]["reached"] is False and len(job["heldout"]["scores"]) == 1
    assert status.events[-1].startswith("NOT LEARNED: held-out P(answer)")
