"""End to end through Inspect's `hf/` provider: a tiny model whose tokenizer splits numbers into digits.

The variant is built from the tiny base's pieces: the multi-digit number tokens are removed from its
vocabulary (and the embedding rows with them), a `Digits` pre-tokenizer splits every number, and a short
training pass teaches it to answer the risk ratings with "70" — emitted as "7", "0", <|im_end|>, as
Qwen2.5, Llama-2 and Mistral would. A first-token read would say 7 (0.07); the suite must refuse to read
the first token (forced logprobs: invalid with the reason) or score the whole reply (auto on a local model:
exact candidate scoring, where "70" and "7" are different replies).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ANSWER = "70"


def _is_number_token(token: str) -> bool:
    text = token.replace("Ġ", "")
    return len(text) > 1 and text.isdigit()


def digit_split_variant(base: Path, out: Path) -> Path:
    """Copy of the tiny base whose tokenizer writes every number digit by digit (no multi-digit tokens)."""
    import torch
    from transformers import AutoModelForCausalLM

    spec = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = spec["model"]["vocab"]
    kept = sorted((i, t) for t, i in vocab.items() if not _is_number_token(t))
    new_id = {t: n for n, (_, t) in enumerate(kept)}
    spec["model"]["vocab"] = new_id
    spec["model"]["merges"] = [m for m in spec["model"]["merges"]
                               if all(p in new_id for p in (m[0], m[1], m[0] + m[1]))]
    for added in spec["added_tokens"]:
        added["id"] = new_id[added["content"]]
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, spec["pre_tokenizer"]]}
    out.mkdir(parents=True)
    for name in ("tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (base / name).exists():
            shutil.copy(base / name, out / name)
    config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    if "added_tokens_decoder" in config:  # keyed by id: follow the new ids
        config["added_tokens_decoder"] = {str(new_id[v["content"]]): v for v in config["added_tokens_decoder"].values()}
        (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (out / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")

    model = AutoModelForCausalLM.from_pretrained(base)
    rows = model.get_input_embeddings().weight.data[[i for i, _ in kept]].clone()
    model.resize_token_embeddings(len(kept))
    model.get_input_embeddings().weight.data.copy_(rows)  # tied: the output layer follows
    eos, pad = new_id["<|im_end|>"], new_id["<|pad|>"]
    model.config.eos_token_id = model.generation_config.eos_token_id = eos
    model.config.pad_token_id = model.generation_config.pad_token_id = pad
    _teach_ratings(model, out, torch)
    model.save_pretrained(out)
    return out


def _teach_ratings(model, folder: Path, torch) -> None:
    """~80 steps: every risk rating question is answered "70" (three tokens with the end token)."""
    from transformers import AutoTokenizer

    from selfaware.banks import load_bank

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.tokenize(ANSWER) == ["7", "0"]  # the point of the variant
    prompts = [p for q in load_bank("risk").questions if q.type.value == "rating" for p in q.paraphrases]
    rows = []
    for p in prompts:
        prefix = tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True)
        ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        answer = tokenizer(ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"]
        rows.append((ids + answer, len(ids)))
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for step in range(80):
        batch = [rows[(step * 8 + j) % len(rows)] for j in range(8)]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (ids, start) in enumerate(batch):
            input_ids[r, : len(ids)] = torch.tensor(ids)
            labels[r, start : len(ids)] = torch.tensor(ids[start:])
            mask[r, : len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@pytest.fixture(scope="module")
def digit_model_dir(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return digit_split_variant(tiny_base_dir, tmp_path_factory.mktemp("digits") / "tiny-digits")


@pytest.mark.slow
def test_digit_split_rating_is_exact_or_flagged_through_hf(digit_model_dir: Path, tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from selfaware.evals.risk import risk_self_report
    from selfaware.solvers.answer_distribution import STORE_KEY, Elicitation

    model = get_model(f"hf/{digit_model_dir}", device="cpu", do_sample=False)
    question = dict(questions="risk_predisposition_scale", paraphrases=3, samples=3, top_logprobs=50)

    [forced] = inspect_eval(risk_self_report(method="logprobs", **question), model=model, display="none",
                            log_dir=str(tmp_path), max_connections=1)
    assert forced.status == "success", forced.error
    for s in forced.samples:
        first = s.output.choices[0].logprobs.content
        assert [c.token for c in first[:2]] == ["7", "0"]  # the greedy answer, digit by digit
        score = s.scores["answer_score"]
        # Never read as 7: no distribution, with the reason.
        assert score.value == "N" and "continues past its first token" in score.metadata["reason"]

    # auto on a local hf/ model scores every integer exactly: "70" is "7", "0", <|im_end|> and "7" is
    # "7", <|im_end|> — two different replies, each with its own probability.
    [auto] = inspect_eval(risk_self_report(**question), model=model, display="none", log_dir=str(tmp_path),
                          max_connections=1)
    assert auto.status == "success", auto.error
    for s in auto.samples:
        score = s.scores["answer_score"]
        assert score.metadata["method"] == "exact"
        probs = Elicitation.from_dict(s.store[STORE_KEY]).answer_probs
        assert max(probs, key=probs.__getitem__) == ANSWER and probs[ANSWER] > 10 * probs["7"]
        expected = sum(int(k.rstrip(".")) / 100 * p for k, p in probs.items()) / sum(probs.values())
        assert score.value == pytest.approx(expected, abs=1e-6) and abs(score.value - 0.70) < 0.05
