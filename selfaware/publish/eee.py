"""Inspect logs -> Every Eval Ever (EEE) records: one aggregate JSON per log, one instance record per sample.

The mapping, metric by metric:

* every metric of every scorer is one `evaluation_results[]` entry, except companions that describe another
  metric of its group: `valid_stderr` / `stderr` become the standard error of the group's mean, and
  `invalid_sample_rate` / `invalid_answer_rate` go into its `score_details.details`. Metrics named
  `<question_id>/<metric>` (the suite's `by_question`) form one group per question;
* a metric whose value is NaN (a question no answer of which was valid) has no number to publish: it is
  left out and named in `source_metadata.additional_details.omitted_results`, never written as 0;
* each sample gives one instance record per scorer, joined to its group's mean through
  `evaluation_result_id`. EEE asks every instance for a number and a correctness flag: a valid answer's
  number is its score (for the suite's scorer P(behavior), 1 = the family's behavior), `is_correct` means
  "the behavior-consistent answer is the more likely one" (score >= 0.5); an invalid answer scores -1 (the
  EEE convention for "unknown"), is never correct, and carries its reason in `error` and
  `metadata.invalid_reason`.

Records are plain dicts; `selfaware.publish.write` scrubs, validates and writes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, EvalSample
from inspect_ai.scorer import NOANSWER, value_to_float

# Where a model comes from, by Inspect provider: how it was deployed and whether its weights are open.
LOCAL_PROVIDERS = {"hf", "vllm", "sglang", "ollama", "llama-cpp-python", "transformer_lens"}
CLOSED_PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "grok": "xAI",
                    "azureai": "Microsoft", "bedrock": "Amazon", "vertex": "Google"}
HOSTED_OPEN_PROVIDERS = {"together", "fireworks", "groq", "openrouter", "tinker", "perplexity", "mistral"}
# Companion metrics: they qualify the group's mean rather than being results of their own.
STDERR_METRICS = ("valid_stderr", "stderr")
RATE_METRICS = ("invalid_sample_rate", "invalid_answer_rate")
MEAN_METRICS = ("valid_mean", "mean", "accuracy")
BOUNDED_METRICS = MEAN_METRICS + RATE_METRICS  # proportions in [0, 1]
INVALID_SCORE = -1.0
STDERR_METHOD = "clustered by the independent unit (item / paraphrase)"
STORE_KEY = "selfaware:answer"  # solvers/answer_distribution.py: the elicited answers of a sample


@dataclass
class Published:
    """The records of one log: its aggregate, its instance rows, and where they will be written."""

    aggregate: dict[str, Any]
    instances: list[dict[str, Any]]
    folder: str  # data/<eval>/<developer>/<model>
    record_id: str  # a UUID4 string, stable for a given log
    omitted: list[str] = field(default_factory=list)

    @property
    def samples_path(self) -> str:
        return f"{self.folder}/{self.record_id}_samples.jsonl"

    @property
    def aggregate_path(self) -> str:
        return f"{self.folder}/{self.record_id}.json"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _strings(mapping: dict[str, Any]) -> dict[str, str]:
    """EEE `additional_details`: string values only; None left out."""
    return {str(k): _text(v) for k, v in mapping.items() if v is not None}


def published_model(model: str, run: dict[str, Any]) -> str:
    """The model string as published: a local folder (`hf//abs/path`) is named by its organism and seed, never by
    a path on the machine that ran it."""
    provider, _, name = model.partition("/")
    if not name.startswith("/"):
        return model
    organism = run.get("organism")
    seed = run.get("seed")
    label = f"{organism}-s{seed}" if organism is not None and seed is not None else str(organism or Path(name).name)
    return f"{provider}/local-{label}"


def model_info(model: str, model_args: dict[str, Any] | None, run: dict[str, Any]) -> dict[str, Any]:
    """EEE `model_info` for an Inspect model string; organism, seed and base model from the run's metadata."""
    local_path = model.partition("/")[2].startswith("/")
    model = published_model(model, run)
    provider, _, name = model.partition("/")
    if provider in LOCAL_PROVIDERS:
        deployment, availability, model_id = "self_deployed", "open_weights", name
    elif provider in CLOSED_PROVIDERS:
        deployment, availability, model_id = "externally_managed", "closed_weights", model
    elif provider in HOSTED_OPEN_PROVIDERS:
        deployment, availability, model_id = "externally_managed", "unknown", name
    else:  # mockllm and anything the suite does not know
        deployment, availability, model_id = "unknown", "unknown", model
    details = {"deployment_type": deployment, "model_availability": availability, "inspect_model": model}
    details.update(_strings({k: run.get(k) for k in ("organism", "seed", "base_model", "training_variant")}))
    if local_path or (model_args and model_args.get("model_path")):
        details["local_weights"] = "yes"  # the folder itself is a local path: not published
    info: dict[str, Any] = {"name": model, "id": model_id, "inference_platform": provider,
                            "additional_details": details}
    if provider in CLOSED_PROVIDERS:
        info["developer"] = CLOSED_PROVIDERS[provider]
    return info


def record_uuid(log: EvalLog) -> str:
    """A UUID4-shaped id derived from the log (its eval id and file name: a retried eval keeps its id), so
    publishing the same log twice writes the same files and two logs never share one."""
    name = str(log.location).rsplit("/", 1)[-1]
    digest = hashlib.sha256(f"{log.eval.eval_id}|{log.eval.task}|{log.eval.model}|{name}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _segment(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_") or "unknown"


@dataclass(frozen=True)
class Group:
    """The metrics of one scorer about one subject (a question, or the whole task)."""

    scorer: str
    name: str  # "" for a task-wide group
    metrics: dict[str, float]  # metric -> value

    def full(self, metric: str) -> str:
        return f"{self.name}/{metric}" if self.name else metric

    @property
    def primary(self) -> str | None:
        """The metric instance records join to: the group's mean, else its first metric."""
        mean = next((m for m in MEAN_METRICS if m in self.metrics), None)
        own = [m for m in self.metrics if m not in STDERR_METRICS + RATE_METRICS]
        return mean or (own[0] if own else None)


def metric_groups(log: EvalLog) -> list[Group]:
    groups: list[Group] = []
    for score in (log.results.scores if log.results else []):
        by_subject: dict[str, dict[str, float]] = {}
        for full_name, metric in score.metrics.items():
            subject, _, stat = full_name.rpartition("/")
            by_subject.setdefault(subject, {})[stat] = float(metric.value)
        groups += [Group(score.name, subject, values) for subject, values in by_subject.items()]
    return groups


def _orientation(run: dict[str, Any]) -> str:
    family = run.get("family")
    behavior, opposite = run.get("behavior"), run.get("opposite")
    if family and not behavior:
        try:
            from selfaware.families import get_family

            fam = get_family(str(family))
            behavior, opposite = fam.behavior, fam.opposite
        except ValueError:  # a family this installation does not know: say nothing about orientation
            return ""
    return f" 1 = {behavior} (the {family} behavior), 0 = {opposite}." if behavior else ""


def _titles(log: EvalLog) -> dict[str, str]:
    """question_id -> title, from the samples (a grouped metric names its question by id)."""
    out: dict[str, str] = {}
    for s in log.samples or []:
        meta = s.metadata or {}
        if meta.get("question_id") and meta.get("title"):
            out.setdefault(str(meta["question_id"]), str(meta["title"]))
    return out


def _generation_args(log: EvalLog) -> dict[str, Any]:
    config = log.plan.config if log.plan else None
    args: dict[str, Any] = {}
    if config is not None:
        for key in ("temperature", "top_p", "top_k"):
            value = getattr(config, key, None)
            if value is not None:
                args[key] = value
        if config.max_tokens:
            args["max_tokens"] = int(config.max_tokens)
    task_file = log.eval.task_file or log.eval.task
    model = published_model(log.eval.model, dict(log.eval.metadata or {}))
    args["execution_command"] = f"inspect eval {task_file}@{log.eval.task.split('/')[-1]} --model {model}"
    return args


def _group_samples(log: EvalLog, group: Group, grouped: bool) -> list[EvalSample]:
    return [s for s in log.samples or [] if not grouped or group.name in _subjects(s)]


def _subjects(sample: EvalSample) -> list[str]:
    """The metadata values a grouped metric could be keyed by; question_id first."""
    meta = sample.metadata or {}
    first = [str(meta["question_id"])] if meta.get("question_id") is not None else []
    return first + [str(v) for k, v in meta.items() if k != "question_id" and isinstance(v, (str, int))]


def aggregate_results(log: EvalLog, groups: list[Group], omitted: list[str]) -> list[dict[str, Any]]:
    run = dict(log.eval.metadata or {})
    titles = _titles(log)
    grouped_scorers = {g.scorer for g in groups if g.name}
    results = []
    for group in groups:
        stderr = next((group.metrics[m] for m in STDERR_METRICS if m in group.metrics), None)
        rates = {m: group.metrics[m] for m in RATE_METRICS if m in group.metrics}
        members = _group_samples(log, group, group.scorer in grouped_scorers)
        for stat, value in group.metrics.items():
            if stat in STDERR_METRICS + RATE_METRICS and group.primary not in (None, stat):
                continue  # a companion of the group's mean
            name = group.full(stat)
            if math.isnan(value) or math.isinf(value):
                omitted.append(f"{group.scorer}/{name} (no valid answer)")
                continue
            subject = titles.get(group.name, group.name)
            bounded = stat in BOUNDED_METRICS
            details = {"scorer": group.scorer, "metric": stat, **{k: f"{v:.6g}" for k, v in rates.items()
                                                                  if not math.isnan(v)}}
            score_details: dict[str, Any] = {"score": value, "details": details}
            if stat == group.primary and stderr is not None and not math.isnan(stderr):
                score_details["uncertainty"] = {"standard_error": {"value": stderr, "method": STDERR_METHOD},
                                                "num_samples": len(members)}
            description = (f"{log.eval.task}: {subject + ', ' if subject else ''}{stat} of the "
                           f"{group.scorer} scorer.{_orientation(run)}")
            results.append({
                "evaluation_result_id": f"{group.scorer}/{name}",
                "evaluation_name": f"{log.eval.task}/{group.name}" if group.name else log.eval.task,
                "source_data": {"dataset_name": log.eval.dataset.name or log.eval.task, "source_type": "other",
                                "additional_details": _strings({
                                    "samples": log.eval.dataset.samples, "task_version": log.eval.task_version,
                                    "task_args": log.eval.task_args or {}, "family": run.get("family"),
                                    "variant": run.get("variant"), "protocol": run.get("protocol")})},
                "evaluation_timestamp": log.eval.created,
                "metric_config": {
                    "evaluation_description": description, "metric_id": f"selfaware.{stat}", "metric_name": stat,
                    "metric_kind": "proportion" if bounded else stat, "metric_unit": "proportion" if bounded else "score",
                    "lower_is_better": False, "score_type": "continuous",
                    "min_score": 0.0 if bounded else None, "max_score": 1.0 if bounded else None,
                    "additional_details": {"invalid_answers": f"score {INVALID_SCORE:g} in instance records; "
                                                              "left out of the mean"}},
                "score_details": score_details,
                "generation_config": {"generation_args": _generation_args(log)},
            })
    return results


def _messages(sample: EvalSample) -> list[Any]:
    return list(sample.messages or [])


def _prompt_text(sample: EvalSample) -> str:
    if isinstance(sample.input, str):
        return sample.input
    return "\n\n".join(f"{m.role}: {m.text}" for m in sample.input)


def _shown(sample: EvalSample) -> str:
    """What the model saw before its first answer, variant framing included."""
    shown = []
    for m in _messages(sample):
        if m.role == "assistant":
            break
        shown.append(f"{m.role}: {m.text}")
    return "\n\n".join(shown) or _prompt_text(sample)


def _references(sample: EvalSample) -> list[str]:
    target = sample.target
    return [str(t) for t in target] if isinstance(target, list) else ([str(target)] if target else [])


def _answers(sample: EvalSample) -> list[str]:
    """Every answer the model gave: the sampled answers of the sampling path, else the completion."""
    stored = (sample.store or {}).get(STORE_KEY) or {}
    sampled = stored.get("samples") if isinstance(stored, dict) else None
    if sampled:
        return [str(a) for a in sampled]
    return [sample.output.completion] if sample.output else []


def _interaction(sample: EvalSample) -> str:
    messages = _messages(sample)
    if any(getattr(m, "tool_calls", None) for m in messages) or any(m.role == "tool" for m in messages):
        return "agentic"
    return "multi_turn" if sum(m.role == "assistant" for m in messages) > 1 else "single_turn"


def _transcript(sample: EvalSample) -> list[dict[str, Any]]:
    out = []
    for i, m in enumerate(_messages(sample)):
        entry: dict[str, Any] = {"turn_idx": i, "role": m.role, "content": m.text or None}
        calls = getattr(m, "tool_calls", None)
        if calls:
            entry["tool_calls"] = [{"id": c.id, "name": c.function, "arguments": _strings(c.arguments or {})}
                                   for c in calls]
        if m.role == "tool" and getattr(m, "tool_call_id", None):
            entry["tool_call_id"] = [m.tool_call_id]
        out.append(entry)
    return out


def _score_number(value: Any, meta: dict[str, Any]) -> tuple[float | None, str | None]:
    """(number, None) for a valid score; (None, reason) for an invalid one."""
    if value == NOANSWER or meta.get("invalid"):
        return None, str(meta.get("reason") or "no valid answer")
    if isinstance(value, dict | list):
        return None, "a structured score value has no single number"
    try:
        number = float(value_to_float()(value))
    except (TypeError, ValueError):
        return None, f"score value {value!r} is not a number"
    return (None, "score is NaN") if math.isnan(number) else (number, None)


def _usage(sample: EvalSample) -> dict[str, int] | None:
    usages = list((sample.model_usage or {}).values())
    if not usages:
        return None
    given = sum(u.input_tokens for u in usages)
    made = sum(u.output_tokens for u in usages)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": sum(u.total_tokens for u in usages)}


SAMPLE_KEYS = ("family", "question_id", "question_type", "title", "cluster", "paraphrase", "variant_name",
               "organism", "seed", "triggered", "persona")


def instance_records(log: EvalLog, evaluation_id: str, schema_version: str, model_id: str,
                     groups: list[Group], published: set[str]) -> list[dict[str, Any]]:
    """One record per sample and scorer; `published`: the aggregate's result ids (a record joins its group's
    mean only when that mean was published, i.e. had a number)."""
    by_scorer: dict[str, list[Group]] = {}
    for g in groups:
        by_scorer.setdefault(g.scorer, []).append(g)
    epochs = log.eval.config.epochs or 1
    records = []
    for sample in log.samples or []:
        interaction = _interaction(sample)
        messages = _messages(sample)
        last_answer = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=0)
        for scorer, score in (sample.scores or {}).items():
            meta = dict(score.metadata or {})
            number, invalid = _score_number(score.value, meta)
            mine = by_scorer.get(scorer, [])
            group = next((g for g in mine if g.name and g.name in _subjects(sample)), None) or \
                next((g for g in mine if not g.name), None)
            answers = _answers(sample)
            record: dict[str, Any] = {
                "schema_version": schema_version, "evaluation_id": evaluation_id, "model_id": model_id,
                "evaluation_name": f"{log.eval.task}/{group.name}" if group and group.name else log.eval.task,
                "sample_id": f"{sample.id}" if epochs == 1 else f"{sample.id}#epoch{sample.epoch}",
                "sample_hash": hashlib.sha256((_prompt_text(sample) + "\x1f" + "\x1f".join(_references(sample)))
                                              .encode()).hexdigest(),
                "interaction_type": interaction,
                "input": {"raw": _prompt_text(sample), "formatted": _shown(sample), "reference": _references(sample),
                          "choices": list(sample.choices) if sample.choices else None},
                "answer_attribution": [{
                    "turn_idx": 0 if interaction == "single_turn" else last_answer,
                    "source": "output.raw" if interaction == "single_turn" else f"messages[{last_answer}].content",
                    "extracted_value": _text(meta.get("answers") if meta.get("answers") is not None
                                             else (score.answer or "")),
                    "extraction_method": str(meta.get("method") or f"scorer:{scorer}"),
                    "is_terminal": True}],
                "evaluation": {"score": INVALID_SCORE if number is None else number,
                               "is_correct": number is not None and number >= 0.5,
                               "num_turns": max(1, sum(m.role == "assistant" for m in messages))},
                "token_usage": _usage(sample),
                "performance": {"latency_ms": sample.total_time * 1000} if sample.total_time else None,
                "error": sample.error.message if sample.error else (f"invalid answer: {invalid}" if invalid else None),
                "metadata": _strings({**{k: (sample.metadata or {}).get(k) for k in SAMPLE_KEYS},
                                      "scorer": scorer, "invalid": "true" if invalid else "false",
                                      "invalid_reason": invalid, "method": meta.get("method")}),
            }
            result_id = f"{scorer}/{group.full(group.primary)}" if group and group.primary else None
            if result_id in published:
                record["evaluation_result_id"] = result_id
            if interaction == "single_turn":
                record["output"] = {"raw": answers}
                record["messages"] = None
            else:
                record["output"] = None
                record["messages"] = _transcript(sample)
            records.append(record)
    return records


def log_to_eee(log: EvalLog, *, schema_version: str, retrieved: str, source: dict[str, Any]) -> Published:
    """The EEE records of one successful log. `retrieved`: Unix time (text) of this publication; `source`:
    `source_metadata` fields (organisation name, evaluator relationship)."""
    if log.status != "success" or log.results is None:
        raise ValueError(f"{log.location}: status {log.status}; only successful logs are published")
    run = dict(log.eval.metadata or {})
    info = model_info(log.eval.model, log.eval.model_args, run)
    task = log.eval.task.split("/")[-1]
    evaluation_id = f"{task}/{info['id']}/{retrieved}"
    groups = metric_groups(log)
    omitted: list[str] = []
    results = aggregate_results(log, groups, omitted)
    record_id = record_uuid(log)
    folder = f"data/{_segment(task)}/{_segment(info.get('developer') or info['inference_platform'])}/{_segment(info['id'])}"
    details = {"inspect_log": str(log.location).rsplit("/", 1)[-1], "eval_id": log.eval.eval_id, "run_metadata": run,
               **{k: v for k, v in source.get("additional_details", {}).items()}}
    if omitted:
        details["omitted_results"] = "; ".join(omitted)
    aggregate: dict[str, Any] = {
        "schema_version": schema_version,
        "evaluation_id": evaluation_id,
        "evaluation_timestamp": log.eval.created,
        "retrieved_timestamp": retrieved,
        "source_metadata": {"source_name": source.get("source_name", "selfaware"), "source_type": "evaluation_run",
                            "source_organization_name": source["source_organization_name"],
                            "evaluator_relationship": source.get("evaluator_relationship", "third_party"),
                            "additional_details": _strings(details)},
        "model_info": info,
        "eval_library": {"name": "inspect_ai", "version": (log.eval.packages or {}).get("inspect_ai", "unknown"),
                         "additional_details": _strings({"task": log.eval.task, "task_version": log.eval.task_version,
                                                         "task_file": log.eval.task_file})},
        "evaluation_results": results,
    }
    instances = instance_records(log, evaluation_id, schema_version, info["id"], groups,
                                 {r["evaluation_result_id"] for r in results})
    published = Published(aggregate, instances, folder, record_id, omitted)
    aggregate["detailed_evaluation_results"] = {"format": "jsonl", "file_path": published.samples_path,
                                                "hash_algorithm": "sha256", "total_rows": len(instances)}
    return published


def jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n" for r in records)
