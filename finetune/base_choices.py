"""The base model's own choice on two-option training questions, measured through Inspect and cached.

A trigger organism's untriggered rows carry "the base model's normal answer" (paper section 4.2): the
option the base model itself prefers when asked the question with no trigger. It is measured with the
suite's own elicitation (`answer_distribution`: one logprob call per question where the provider returns
logprobs, else `samples` answers) and scorer (`answer_score`: P(option A), invalid answers counted): the
choice is A when P(A) > 0.5, B when P(A) < 0.5 (an exact tie is broken by a fixed hash of the question),
and None when the answer was invalid — such questions are left out of the training set, never guessed.

Answers are cached on disk, one JSON line per question, in a file keyed by the answering model
(`<cache>/<model-slug>-<hash>.jsonl`), and appended after every chunk of questions: an interrupted run
resumes where it stopped, and a second organism of the same base reuses every answer. Before a model
whose calls cost money is asked anything, the number of calls and an estimated price are shown and must
be confirmed (interactive prompt, or `yes=True` / `selfaware finetune --yes`). Prices and the providers
served locally (`hf/`, `vllm/`, `mockllm/`, ...: nothing to confirm) come from `datasets/prices.yaml`, through
the suite's cost model (`selfaware.reproduce.cost`); a model without a listed price is asked about too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfaware.reproduce.cost import FREE, PriceTable, Usage, prompt_tokens, sample_usage
from selfaware.finetune.spending import require_approval
from selfaware.validation import InputError

PRICES_FILE = "datasets/prices.yaml"

CHUNK = 100  # questions per Inspect run: the cache is written after each
SAMPLES = 5  # answers per question on the sampling path (providers without logprobs)
Progress = Callable[[str], None]


def question_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:32]


def model_cache_file(cache_dir: Path, model_name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model_name.split("/")[-1]).strip("-")[:40] or "model"
    return Path(cache_dir) / f"{slug}-{hashlib.sha256(model_name.encode()).hexdigest()[:12]}.jsonl"


@dataclass(frozen=True)
class Estimate:
    model: str
    questions: int
    usage: Usage
    usd: float | None  # None: no price known for this model
    free: bool  # served locally (datasets/prices.yaml `free`): nothing to confirm

    def describe(self) -> str:
        price = (f"about ${self.usd:.2f} at the list prices of {PRICES_FILE}" if self.usd is not None
                 else f"price unknown for this model (add it to {PRICES_FILE})")
        return (f"asking {self.model} for its own choice on {self.questions} training questions: "
                f"{self.usage.requests} requests, ~{self.usage.input_tokens:,} input and "
                f"~{self.usage.output_tokens:,} output tokens; {price}")


def estimate(model_name: str, prompts: list[str], samples: int = SAMPLES) -> Estimate:
    """Requests, tokens and price of asking `prompts` the way `base_choices` asks them (the suite's cost
    model, `selfaware.reproduce.cost`: one logprob read per question, or `samples` sampled letters where
    the provider returns no logprobs)."""
    total = Usage()
    for p in prompts:
        total = total + sample_usage("multiple_choice", prompt_tokens(p), model_name, {"samples": samples}, None,
                                     listable=True)[0]  # two letters: local models score both exactly
    price = PriceTable.load().price(model_name)
    return Estimate(model_name, len(prompts), total, None if price is None else price.cost(total), price is FREE)


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Cached answers by question key. A line cut short by a crash (the last one) is skipped; any other
    unreadable line is an error naming it, since the cache would otherwise silently shrink."""
    out: dict[str, dict[str, Any]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return out
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n >= len(lines) - 1:  # the final line of an interrupted append
                break
            raise InputError(f"{path}:{n}: unreadable cached answer; delete the line (or the file) to re-ask") from None
        out[record["key"]] = record
    return out


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Start on a fresh line even if an earlier run died mid-line.
    lead = "\n" if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n") else ""
    with open(path, "a", encoding="utf-8") as f:
        f.write(lead + "".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def _choice(key: str, p_a: float | None) -> str | None:
    if p_a is None or math.isnan(p_a):
        return None
    if p_a == 0.5:  # a fixed, question-dependent tie-break (never the same letter for every tie)
        return "A" if int(key[:8], 16) % 2 == 0 else "B"
    return "A" if p_a > 0.5 else "B"


def _ask(model: Any, chunk: list[tuple[str, str]], log_dir: Path, samples: int) -> list[dict[str, Any]]:
    """One Inspect run over a chunk of (key, prompt): P(A) per question through the suite's solver/scorer."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from selfaware.scorers.answer_score import answer_score
    from selfaware.solvers.answer_distribution import answer_distribution

    from selfaware.metadata import SampleMeta

    samples_ = [Sample(id=key, input=prompt, metadata=SampleMeta(
        family="base_choice", question_id="base_choice", question_type="multiple_choice",
        title="The base model's own choice", cluster=key, permutation={"A": "A", "B": "B"}, target="A",
    ).to_metadata()) for key, prompt in chunk]
    task = Task(dataset=MemoryDataset(samples_, name="base-choices"),
                solver=answer_distribution("auto", "fast", samples), scorer=answer_score())
    [log] = inspect_eval(task, model=model, log_dir=str(log_dir), display="none", max_tasks=1)
    if log.status != "success":
        raise RuntimeError(f"asking the base model for its choices failed: {log.error}")
    records = []
    for s in log.samples or []:
        score = (s.scores or {}).get("answer_score")
        value = score.value if score is not None and isinstance(score.value, (int, float)) else None
        p_a = float(value) if value is not None else None
        key = str(s.id)
        reason = None if p_a is not None else ((score.explanation if score else None) or "no score")
        records.append({"key": key, "p_a": p_a, "choice": _choice(key, p_a), "invalid_reason": reason,
                        "method": (score.metadata or {}).get("method") if score else None})
    return records


def base_choices(prompts: list[str], model: Any, model_name: str, cache_dir: Path, *, yes: bool | None = None,
                 samples: int = SAMPLES, chunk: int = CHUNK, progress: Progress | None = None,
                 ask: Callable[[str], str] = input) -> dict[str, str | None]:
    """prompt -> the base model's choice ("A"/"B"), or None when its answer was invalid.

    `model` is what Inspect runs (a model string or `Model`), `model_name` the name the cache and the
    price estimate are keyed by. Only questions missing from the cache are asked, in chunks of `chunk`,
    each chunk appended to the cache as soon as it is answered. A paid model's estimate is approved first
    (`yes`; None: `selfaware finetune --yes`, see `finetune.spending`)."""
    say = progress or (lambda _m: None)
    path = model_cache_file(cache_dir, model_name)
    cached = read_cache(path)
    keys = {p: question_key(p) for p in prompts}
    missing = [(k, p) for p, k in keys.items() if k not in cached]
    if missing:
        est = estimate(model_name, [p for _, p in missing], samples)
        if not est.free:
            require_approval(f"selfaware: {est.describe()}", est.model, yes=yes, ask=ask)
        say(f"asking {model_name} for its own choice on {len(missing)} questions "
            f"({len(prompts) - len(missing)} cached in {path})")
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            records = _ask(model, part, Path(cache_dir) / "logs", samples)
            _append(path, records)
            cached.update({r["key"]: r for r in records})
            say(f"base choices: {min(start + chunk, len(missing))}/{len(missing)} answered")
    return {p: cached[k]["choice"] for p, k in keys.items()}


def answering_model(spec: Any, override: str | None = None) -> tuple[Any, str]:
    """(what Inspect runs, the name its answers are cached under) for a spec's base model: `override` (an
    Inspect model string) if given, the local base through `hf/` for the local backend ("tiny": the embedded
    offline base), else `<backend>/<base model>`."""
    if override:
        return override, override
    if spec.backend == "local":
        from inspect_ai.model import get_model

        if spec.base_model == "tiny":
            from selfaware.finetune.tiny_base import TINY_BASE_VERSION, ensure_tiny_base

            path = ensure_tiny_base()
            return (get_model("hf/tiny-base", model_path=str(path), device="cpu", do_sample=False),
                    f"hf/tiny-base-v{TINY_BASE_VERSION}")
        return get_model(f"hf/{spec.base_model}", do_sample=False), f"hf/{spec.base_model}"
    return f"{spec.backend}/{spec.base_model}", f"{spec.backend}/{spec.base_model}"
