"""What a hosted fine-tuning job will cost, shown and approved before anything is uploaded.

Providers bill the tokens of the training file once per epoch. Tokens are estimated as the suite's cost
model does (`selfaware.reproduce.cost.prompt_tokens`: characters / 4 plus chat framing, per example) and
priced from the `training` section of `datasets/prices.yaml` (USD per million training tokens, matched
against `<backend>/<base model>`). A base model without a listed price is shown as unknown and still asked
about. Approval goes through `finetune.spending` (`--yes`, or `y` at a terminal).
"""

from __future__ import annotations

import json
from pathlib import Path

from selfaware.finetune.backends.base import BackendError
from selfaware.finetune.spending import require_approval
from selfaware.reproduce.cost import PriceTable, prompt_tokens

# What the providers pick for `n_epochs: auto` on a few hundred examples; an estimate, said as such.
AUTO_EPOCHS = 3


def training_tokens(train_file: Path) -> int:
    """Estimated tokens of one pass over a chat JSONL training file (already validated)."""
    total = 0
    with open(train_file, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                messages = json.loads(line)["messages"]
                total += prompt_tokens("\n".join(str(m.get("content") or "") for m in messages))
    return total


def describe_training_cost(backend: str, base_model: str, train_file: Path, epochs: int | None) -> str:
    table = PriceTable.load()
    tokens = training_tokens(train_file)
    passes = epochs or AUTO_EPOCHS
    model = f"{backend}/{base_model.removeprefix(backend + '/')}"
    usd = table.training_price(model)
    price = (f"~{tokens * passes:,} training tokens x ${usd:.2f}/M = about ${tokens * passes * usd / 1e6:.2f} "
             f"({table.path.name}, {table.version})" if usd is not None
             else f"~{tokens * passes:,} training tokens; no training price for {model} in {table.path}")
    auto = "" if epochs else f" (epochs: auto, estimated as {AUTO_EPOCHS})"
    return (f"selfaware: fine-tuning {base_model} on {backend}: {Path(train_file).name}, ~{tokens:,} tokens x "
            f"{passes} epochs{auto}; {price}")


def approve_training(backend: str, base_model: str, train_file: Path, epochs: int | None, label: str) -> None:
    """Show the estimate; go on only when approved, else BackendError (nothing uploaded, no job)."""
    require_approval(describe_training_cost(backend, base_model, train_file, epochs),
                     f"{backend} fine-tuning of {label}", error=BackendError)
