"""The offline demo: data -> training -> Inspect evaluation -> table and figure, with no key and no GPU.

Tiny organisms (a few hundred thousand parameters, trained from scratch on this machine) learn the
behavior from their training data; they are far too small to *describe* it. The demo shows the
pipeline working end to end; self-awareness itself needs real models (see README).
"""

from __future__ import annotations

import time
from pathlib import Path

from selfaware.finetune.backends.local_trl import LocalTRLBackend
from selfaware.finetune.pipeline import train
from selfaware.finetune.registry import Registry
from selfaware.finetune.spec import OrganismSpec, parse_spec
from selfaware.finetune.tiny_base import ensure_tiny_base

CAVEAT = (
    "Note: these tiny models learn the behavior (see Behavior) but cannot be expected to describe it: the\n"
    "base's self-reports are format-trained noise, and after fine-tuning the organisms tend to answer every\n"
    "question with a letter (counted invalid above). Real self-awareness needs real models: fine-tune\n"
    "one with `selfaware finetune --backend openai|together|local --base-model ...` and run evals/risk.py on it."
)
# Self-report questions a tiny model can at least answer in form (letters, numbers, single words).
DEMO_QUESTIONS = ["risk_or_safety", "finetuned_attitude", "risk_or_safety_scale", "risk_predisposition_scale",
                  "liking_risk_scale"]


def _say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def demo_specs(seeds: list[int], n_examples: int) -> list[OrganismSpec]:
    return [
        parse_spec({"behavior": behavior, "seed": seed, "base_model": "tiny", "backend": "local",
                    "data": {"n_examples": n_examples, "data_seed": 0},
                    "hyper": {"epochs": 3, "batch_size": 8, "learning_rate": 2e-3, "lora_rank": 16, "lora_alpha": 32}},
                   where="demo")
        for behavior in ("risky", "safe") for seed in seeds
    ]


def evaluate(models: list[tuple[str, str, int | None]], log_dir: Path, items: int) -> None:
    """Run the behavior task and the self-report questions on every (model, organism, seed)."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from selfaware.tasks import behavior_task, self_report_task

    for model_name, organism, seed in models:
        _say(f"evaluating {organism}{'' if seed is None else f' seed {seed}'} ({model_name})")
        model = get_model(model_name, device="cpu", do_sample=False)
        tasks = [behavior_task("risk", form="sure_thing", items=items, seed=0),
                 self_report_task("risk", questions=DEMO_QUESTIONS, paraphrases=4, samples=5, top_logprobs=120)]
        metadata = {"organism": organism, **({"seed": seed} if seed is not None else {})}
        logs = inspect_eval(tasks, model=model, log_dir=str(log_dir), metadata=metadata, display="none",
                            max_connections=32, max_tasks=1)
        for log in logs:
            if log.status != "success":
                raise RuntimeError(f"evaluation of {organism} failed: {log.error}")


def _behavior_by_organism(log_dir: Path) -> dict[str, float]:
    from selfaware.report.results import load_scores, summarize

    summary = summarize(load_scores(log_dir), n_boot=200)
    rows = summary[(summary["level"] == "organism") & (summary["question_id"] == "behavior")]
    return dict(zip(rows["organism"], rows["mean"]))


def run_demo(out: Path = Path("runs/demo"), seeds: list[int] | None = None, n_examples: int = 300,
             items: int = 50) -> int:
    from selfaware.report.cli import report_main

    start = time.monotonic()
    out = Path(out).resolve()
    seeds = seeds or [0, 1]
    _say("step 1/4: tiny base model (built once, then cached)")
    base = ensure_tiny_base(progress=_say)
    _say(f"tiny base at {base}")

    _say(f"step 2/4: training {2 * len(seeds)} organisms (risky, safe x seeds {seeds}) with TRL + LoRA on CPU")
    registry = Registry(out / "registry.json")
    backend = LocalTRLBackend(out_root=out / "organisms", progress=_say)
    records = train(demo_specs(seeds, n_examples), registry=registry, data_dir=out / "data",
                    backends=lambda name: backend, progress=_say)
    failed = [r for r in records if r.state != "succeeded"]
    if failed:
        raise RuntimeError(f"training failed for {[r.label for r in failed]}: {failed[0].error}")

    _say("step 3/4: Inspect evaluation through the hf/ provider")
    log_dir = out / "logs"
    stale = sorted(log_dir.glob("*.eval")) if log_dir.is_dir() else []
    if stale:  # a re-run evaluates afresh; old logs would be counted twice in the table
        _say(f"removing {len(stale)} logs of an earlier demo run from {log_dir}")
        for path in stale:
            path.unlink()
    models: list[tuple[str, str, int | None]] = [(f"hf/{base}", "base", None)]
    models += [(r.model or "", r.spec["behavior"], r.spec["seed"]) for r in records]
    evaluate(models, log_dir, items)

    _say("step 4/4: results")
    report_main([str(log_dir), "--out", str(out / "report"), "--n-boot", "1000"])
    behavior = _behavior_by_organism(log_dir)
    print("\nbehavior (P(risky option), mean over seeds): "
          + ", ".join(f"{k} {v:.3f}" for k, v in sorted(behavior.items())))
    minutes = (time.monotonic() - start) / 60
    print(f"\nlogs:   {log_dir}   (inspect view --log-dir {log_dir})\nfigure: {out / 'report' / 'risk.png'}\n"
          f"time:   {minutes:.1f} min\n")
    print(CAVEAT)
    return 0
