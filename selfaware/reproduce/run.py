"""Run a matrix: print every call with its estimated cost, ask before spending, run one resumable `eval_set`,
then draw the report.

The eval_set's log folder is `OUT/logs/<shard>` ("all" unless `--shard K/N`): rerunning the same command
resumes it (finished tasks are not run again, interrupted ones are retried). Shards run the same matrix on
different machines, each into its own sub-folder of one shared log folder; the report reads every shard's
logs (`--report-only` redraws it once all are done).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from selfaware.finetune.spending import approved
from selfaware.reproduce.cost import Estimate, PriceTable, Usage, estimate_task
from selfaware.reproduce.matrix import Matrix, MatrixError, check_tasks, load_matrix
from selfaware.reproduce.plan import (
    Call,
    Planned,
    Subject,
    TaskArgumentError,
    finetune_hint,
    matrix_tasks,
    plan,
    resolve_subjects,
    shard,
    task_catalogue,
)
from selfaware.validation import where, yaml_line


@dataclass(frozen=True)
class Options:
    out: Path
    dry_run: bool = False
    yes: bool = False
    shard: tuple[int, int] | None = None
    report_only: bool = False
    registry: Path | None = None
    prices: Path | None = None
    display: str | None = None
    skip_missing: bool = False


def _registry_records(matrix: Matrix, override: Path | None) -> list[Any]:
    from selfaware.finetune.pipeline import default_registry
    from selfaware.finetune.registry import Registry

    path = override or (Path(matrix.registry) if matrix.registry else None)
    registry = Registry(path) if path else default_registry()
    return registry.list()


def _judge(matrix: Matrix, call: Call) -> str | None:
    from selfaware.scorers.judge import DEFAULT_JUDGE

    return matrix.model_roles.get("judge") or call.task.arguments(call.args).get("judge") or DEFAULT_JUDGE


def _money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.2f}" if value >= 1 or value == 0 else f"{value:.4f}"


def print_plan(matrix: Matrix, planned: Planned, calls: list[Call], prices: PriceTable, options: Options,
               say: Callable[[str], None]) -> tuple[float, int]:
    """Every call with its requests, tokens and cost; returns (known total USD, calls with unknown cost)."""
    say(f"matrix {matrix.name!r}: base models {', '.join(b.name for b in matrix.base_models)}; organisms "
        f"{', '.join(matrix.organisms) or '-'}; seeds {' '.join(map(str, matrix.seeds))}; variants "
        f"{', '.join(matrix.variants)}; controls {'yes' if matrix.controls else 'no'}")
    say(f"prices: {prices.path} (version {prices.version}); tokens estimated at 4 characters each")
    label = f"shard {options.shard[0]}/{options.shard[1]}: " if options.shard else ""
    say(f"\n{label}{len(calls)} calls, one Inspect task on one model each, run as one eval_set into "
        f"{log_dir(options)}:")
    say(f"{'#':>4}  {'organism':<16} {'seed':>4}  {'base':<24} {'variant':<14} {'task':<28} {'samples':>7} "
        f"{'requests':>8} {'tokens in':>10} {'tokens out':>10} {'USD':>9}")
    total, unknown, usage = 0.0, 0, Usage()
    for i, call in enumerate(calls, 1):
        est: Estimate = estimate_task(planned.built[(call.task.name, repr(sorted(call.args.items())))],
                                      call.subject.model, call.task.arguments(call.args), _judge(matrix, call))
        cost = est.cost(prices)
        if cost is None:
            unknown += 1
        else:
            total += cost
        both = est.usage + est.judge
        usage = usage + both
        s = call.subject
        say(f"{i:>4}{'*' if s.missing else ' '} {s.organism:<16} {'-' if s.seed is None else s.seed:>4}  "
            f"{s.base_model[:24]:<24} {s.eval_variant[:14]:<14} {call.task.name[:28]:<28} {call.samples:>7} "
            f"{both.requests:>8} {both.input_tokens:>10} {both.output_tokens:>10} {_money(cost):>9}")
        say(f"      = {call.command()}")
        if est.judge.requests:
            say(f"        (+ {est.judge.requests} calls of the judge {est.judge_model}, included above)")
        if est.rough:
            say(f"        (rough estimate: {est.rough})")
    for s in planned.missing:
        say(f"  * not trained yet: {s.label} (variant {s.training_variant}): {s.missing}; priced as {s.model}")
    if planned.missing:
        say("  train them first, e.g.:")
        for hint in sorted({finetune_hint(s.organism.removesuffix('-control'), s.base_model, matrix.seeds,
                                          s.training_variant or 'plain') for s in planned.missing}):
            say(f"    {hint}")
    say(f"\ntotal: {len(calls)} calls, {sum(c.samples for c in calls)} samples, {usage.requests} requests, "
        f"~{usage.input_tokens} input and ~{usage.output_tokens} output tokens; estimated cost "
        f"${total:.2f}" + (f" + {unknown} calls whose model has no price in {prices.path.name}" if unknown else ""))
    return total, unknown


def log_dir(options: Options) -> Path:
    name = f"shard-{options.shard[0]}-of-{options.shard[1]}" if options.shard else "all"
    return options.out / "logs" / name


def _confirm(total: float, unknown: int, options: Options, stdin: TextIO, say: Callable[[str], None]) -> bool:
    if total == 0 and unknown == 0:
        return True

    def ask(question: str) -> str:
        say(question)
        return stdin.readline()

    if approved(f"estimated cost: ${total:.2f}{' + unknown' if unknown else ''}", "Run it?", yes=options.yes,
                ask=ask, interactive=stdin.isatty(), show=say):
        return True
    if not stdin.isatty():
        say("this run spends money: rerun with --yes to confirm (nothing was run)")
    return False


def inspect_tasks(matrix: Matrix, calls: list[Call]) -> list[Any]:
    """A fresh Task per call (task_with changes the task it is given), bound to its model, with the model's
    identity (organism, seed, base model, training variant) as metadata on the eval and on every sample."""
    from inspect_ai import task_with
    from inspect_ai.model import get_model

    models: dict[tuple[str, str], Any] = {}
    tasks = []
    for call in calls:
        s: Subject = call.subject
        key = (s.model, repr(sorted(s.model_args.items())))
        if key not in models:
            models[key] = get_model(s.model, **s.model_args)
        task = call.task.function(**call.args)
        tasks.append(task_with(task, model=models[key],
                               metadata={**(task.metadata or {}), **s.metadata, "matrix": matrix.name}))
    return tasks


def reproduce(matrix_path: Path, options: Options, *, stdin: TextIO = sys.stdin,
              say: Callable[[str], None] = print) -> int:
    from selfaware.report.html import write_html_report

    matrix, text = load_matrix(matrix_path)
    catalogue = task_catalogue()
    check_tasks(matrix, catalogue, Path(matrix_path), text)
    if not options.report_only:
        try:
            code = _evaluate(matrix, catalogue, options, stdin, say)
        except TaskArgumentError as e:  # point at the matrix entry that gave the value
            line = yaml_line(text, ["tasks", e.task])
            raise MatrixError(f"{where(matrix_path, line)}: field tasks.{e.task}: {e}") from None
        if code is not None:
            return code
    logs = options.out / "logs"
    if not logs.is_dir():
        say(f"no logs under {logs}: run without --report-only first")
        return 1
    report = write_html_report(logs, options.out / "report", title=matrix.name,
                               intro=f"<p class=\"note\">Matrix: {Path(matrix_path).name}; logs: {logs}.</p>")
    say(f"\nreport: {report.path} ({len(report.exhibits)} figures, numbers as CSV beside each)")
    for failure in report.failures:
        say(f"  figure failed: {failure}")
    return 1 if report.failures else 0


def _evaluate(matrix: Matrix, catalogue: dict[str, Any], options: Options, stdin: TextIO,
              say: Callable[[str], None]) -> int | None:
    """Plan, print, confirm and run; None when the report should follow, else the exit code."""
    from selfaware.finetune.tiny_base import ensure_tiny_base

    prices = PriceTable.load(options.prices)
    tiny = (lambda: "<the embedded tiny base, built on the first run>") if options.dry_run else \
        (lambda: str(ensure_tiny_base(progress=say)))
    subjects = resolve_subjects(matrix, _registry_records(matrix, options.registry), tiny)
    planned = plan(matrix, subjects, matrix_tasks(matrix, catalogue))
    calls = shard(planned.calls, *options.shard) if options.shard else planned.calls
    if not options.dry_run and options.skip_missing:
        calls = [c for c in calls if not c.subject.missing]
    total, unknown = print_plan(matrix, planned, calls, prices, options, say)
    if options.dry_run:
        say("dry run: nothing was run")
        return 0
    if planned.missing and not options.skip_missing:
        say(f"{len(planned.missing)} organisms are not trained yet (* above); train them, or pass --skip-missing")
        return 2
    if not calls:
        say("nothing to run")
        return 1
    if not _confirm(total, unknown, options, stdin, say):
        return 1
    from inspect_ai import eval_set

    folder = log_dir(options)
    ok, logs = eval_set(inspect_tasks(matrix, calls), log_dir=str(folder), model_roles=matrix.model_roles or None,
                        display=options.display, **matrix.eval_set)
    failed = [log for log in logs if log.status != "success"]
    say(f"eval_set {'complete' if ok else 'incomplete'}: {len(logs) - len(failed)} of {len(logs)} tasks succeeded; "
        f"logs in {folder} (rerun the same command to resume)")
    return None if ok else 1
