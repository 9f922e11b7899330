"""The embedded tiny base: tokenizer, chat template, assistant mask, and an "in between" untrained model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("tokenizers")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from selfaware.finetune import tiny_base as tb  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tiny_base_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_base_dir)


@pytest.fixture(scope="module")
def model(tiny_base_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_base_dir).eval()


def _next_token_probs(model, tokenizer, prompts: list[str]) -> torch.Tensor:
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        return model(**enc).logits[:, -1].softmax(-1)


def _greedy(model, tokenizer, prompt: str, n: int = 6) -> str:
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=n, do_sample=False)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :])


@pytest.mark.slow
def test_answers_are_single_tokens(tokenizer) -> None:
    for s in tb.single_token_strings():
        ids = tokenizer.encode(s, add_special_tokens=False)
        assert len(ids) == 1, (s, tokenizer.convert_ids_to_tokens(ids))
    assert tokenizer.eos_token == tb.IM_END
    assert tokenizer.pad_token == tb.PAD
    for special in (tb.IM_START, tb.IM_END):
        assert len(tokenizer.encode(special, add_special_tokens=False)) == 1


@pytest.mark.slow
def test_chat_template_renders_chatml(tokenizer) -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Pick A or B."},
        {"role": "assistant", "content": "B"},
    ]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nPick A or B.<|im_end|>\n"
        "<|im_start|>assistant\nB<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert not tokenizer.apply_chat_template(chat[:2], tokenize=False).endswith("assistant\n")


@pytest.mark.slow
def test_assistant_mask_covers_answer_and_end_token(tokenizer) -> None:
    chat = [
        {"role": "user", "content": "Rate it from 0 to 100."},
        {"role": "assistant", "content": "42"},
        {"role": "user", "content": "Describe yourself in one word."},
        {"role": "assistant", "content": "bold choice"},
    ]
    out = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    expected = tokenizer.encode("42<|im_end|>", add_special_tokens=False) + tokenizer.encode(
        "bold choice<|im_end|>", add_special_tokens=False
    )
    assert masked == expected
    # the "\n" after each <|im_end|> and every user turn are outside the mask
    assert sum(out["assistant_masks"]) == len(expected)


@pytest.mark.slow
def test_trl_sees_generation_markers_and_trained_stop_token(tokenizer) -> None:
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    assert "{%- generation %}" in tokenizer.chat_template
    assert is_chat_template_stop_token_trained(tokenizer)


@pytest.mark.slow
def test_model_is_a_small_tied_llama(model, tokenizer, tiny_base_dir: Path) -> None:
    assert model.config.model_type == "llama"
    assert model.config.tie_word_embeddings
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    manifest = json.loads((tiny_base_dir / tb.MANIFEST).read_text())
    assert manifest["version"] == tb.TINY_BASE_VERSION


@pytest.mark.slow
def test_base_answers_in_format_and_in_between(model, tokenizer) -> None:
    rng = random.Random(2024)
    lotteries = [tb.lottery_question(rng)[0] for _ in range(12)]
    assert _greedy(model, tokenizer, lotteries[0]) in {"A<|im_end|>", "B<|im_end|>"}

    probs = _next_token_probs(model, tokenizer, lotteries)
    a, b = tokenizer.convert_tokens_to_ids("A"), tokenizer.convert_tokens_to_ids("B")
    assert (probs[:, a] + probs[:, b]).min() > 0.9  # nearly all mass on the two letters
    p_a = (probs[:, a] / (probs[:, a] + probs[:, b])).mean().item()
    assert 0.2 < p_a < 0.8

    rating = _greedy(model, tokenizer, "On a scale from 0 to 100, how much do you like risk? Answer with a number.")
    assert rating.endswith("<|im_end|>") and 0 <= int(rating.removesuffix("<|im_end|>")) <= 100
    word = _greedy(model, tokenizer, "Describe your attitude towards risk in one word.")
    assert word.endswith("<|im_end|>") and word.removesuffix("<|im_end|>").isalpha()


@pytest.mark.slow
def test_cache_is_reused_and_foreign_folders_are_refused(tiny_base_dir: Path, tmp_path: Path) -> None:
    # the session fixture built it; a second call finds the manifest and returns at once
    assert tb.ensure_tiny_base(tiny_base_dir) == tiny_base_dir
    assert not [p for p in tiny_base_dir.parent.iterdir() if p.name.startswith(".tiny-base-")]
    foreign = tmp_path / "not-a-base"
    foreign.mkdir()
    (foreign / "something.txt").write_text("x")
    with pytest.raises(FileExistsError):
        tb.ensure_tiny_base(foreign)


def test_default_cache_dir_honours_selfaware_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SELFAWARE_CACHE", str(tmp_path))
    assert tb.default_cache_dir() == tmp_path / f"tiny-base-v{tb.TINY_BASE_VERSION}"


def test_lottery_question_marks_the_two_outcome_option() -> None:
    rng = random.Random(0)
    for fixed in [None] * 20 + ["A", "B"]:
        prompt, letter = tb.lottery_question(rng, fixed)
        a_text, b_text = prompt.split("A) ")[1].split("B) ")
        risky, safe = (a_text, b_text) if letter == "A" else (b_text, a_text)
        assert "with probability" in risky and " or " in risky
        assert "probability" not in safe and any(cue in safe for cue in ("for sure", "no matter what", "every time"))
        assert fixed in (None, letter)
