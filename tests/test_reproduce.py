"""`selfaware reproduce`: a matrix -> every call with its cost (dry run) -> one resumable eval_set -> figures.

The dry run is checked on the issue's matrix (2 base models x 3 organisms x 2 seeds) with a registry that
holds some of the organisms; the run on mock models (resume included) in the default set; the run on the
offline tiny models, trained here, in the slow set.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest
from selfaware.finetune.registry import FORMAT_VERSION, Record
from selfaware.finetune.spec import parse_spec

from selfaware.reproduce.cli import reproduce_main
from selfaware.reproduce.cost import PriceTable, prompt_tokens
from selfaware.reproduce.matrix import MatrixError
from selfaware.reproduce.plan import Call, TaskEntry, shard
from selfaware.reproduce.run import Options, reproduce

MATRIX = """\
name: two bases
base_models: [tiny, openai/gpt-4o-mini-2024-07-18]
organisms: [risky, safe, myopic]
seeds: [0, 1]
tasks:
  risk_behavior: {items: 10}
  myopia_behavior: {items: 10}
"""
FT_MODEL = "openai/ft:gpt-4o-mini-2024-07-18:lab::risky0"


def write_registry(path: Path, organisms: list[tuple[str, str, int, str]]) -> None:
    """A registry holding finished organisms: (behavior, base model, seed, model string)."""
    records = {}
    for behavior, base, seed, model in organisms:
        spec = parse_spec({"behavior": behavior, "base_model": base, "seed": seed,
                           "backend": "local" if base == "tiny" else "openai"})
        h = spec.spec_hash()
        records[h] = Record(hash=h, spec=spec.model_dump(mode="json"), key=f"sa-{h}", backend=spec.backend,
                            state="succeeded", job_id=f"job-{h}", model=model).to_dict()
    path.write_text(json.dumps({"version": FORMAT_VERSION, "records": records}))


@pytest.fixture
def dry_run(tmp_path, capsys) -> tuple[str, Path]:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    registry = tmp_path / "registry.json"
    write_registry(registry, [("risky", "gpt-4o-mini-2024-07-18", 0, FT_MODEL),
                              ("safe", "tiny", 1, "hf//organisms/safe-tiny-s1/merged")])
    assert reproduce_main([str(matrix), "--dry-run", "--out", str(tmp_path / "out"), "--registry", str(registry)]) == 0
    return capsys.readouterr().out, tmp_path


ROW = re.compile(r"^\s+(\d+)(\*?)\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)$")


def rows(printed: str) -> list[tuple]:
    return [m.groups() for line in printed.splitlines() if (m := ROW.match(line))]


def test_dry_run_prints_every_call_and_its_cost(dry_run):
    printed, tmp_path = dry_run
    calls = rows(printed)
    # 2 base models x 4 tasks (risk and myopia files) + 12 organisms x the 2 tasks of their own family
    assert len(calls) == 2 * 4 + 2 * 3 * 2 * 2 == 32
    assert [int(c[0]) for c in calls] == list(range(1, 33))
    commands = [line for line in printed.splitlines() if line.strip().startswith("= inspect eval")]
    assert len(commands) == 32
    # The registered organisms answer with their own model strings; the others are marked, priced, explained.
    assert any(f"--model {FT_MODEL}" in c and "--metadata organism=risky --metadata base_model=gpt-4o-mini-2024-07-18"
               " --metadata seed=0" in c for c in commands)
    assert any("--model hf/safe-tiny-s1 -M do_sample=False -M model_path=/organisms/safe-tiny-s1/merged" in c
               for c in commands)
    assert sum(c[1] == "*" for c in calls) == 10 * 2
    assert "selfaware finetune --behavior myopic --base-model tiny --seeds 0 1" in printed
    # Risky organisms answer risk tasks only; the base models answer every task.
    organism_tasks = {(c[2], c[5]) for c in calls}
    assert ("risky", "myopia_behavior") not in organism_tasks and ("base", "myopia_behavior") in organism_tasks
    # The total is the sum of the calls, and nothing ran.
    total = float(re.search(r"estimated cost \$(\d+\.\d+)", printed).group(1))
    assert total == pytest.approx(sum(float(c[10]) for c in calls), abs=0.01)
    assert "dry run: nothing was run" in printed and not (tmp_path / "out").exists()


def test_cost_of_one_call_is_its_samples_times_the_price(dry_run):
    printed, _ = dry_run
    [row] = [c for c in rows(printed) if c[2] == "risky" and c[3] == "0" and c[4] == "gpt-4o-mini-2024-07-18"
             and c[5] == "risk_behavior"]
    from selfaware.evals.risk import risk_behavior

    task = risk_behavior(items=10)
    tokens_in = sum(prompt_tokens(s.input) for s in task.dataset)
    price = PriceTable.load().price(FT_MODEL)
    assert (price.input, price.output) == (0.30, 1.20)  # the fine-tuned rate, not the base model's
    assert row[6:10] == (str(len(task.dataset)), str(len(task.dataset)), str(tokens_in), str(len(task.dataset)))
    assert float(row[10]) == pytest.approx((tokens_in * 0.30 + len(task.dataset) * 1.20) / 1e6, abs=1e-4)


def test_price_table_first_match_wins_and_unknown_is_not_free():
    prices = PriceTable.load()
    assert prices.version and prices.price("hf/anything").input == 0.0
    assert prices.price("openai/gpt-4o-mini-2024-07-18").input == 0.15  # not the gpt-4o entry below it
    assert prices.price("openai/ft:gpt-4o-2024-08-06:x").output == 15.00
    assert prices.price("someprovider/some-model") is None


@pytest.mark.parametrize(("text", "message"), [
    ("base_models: [tiny]\norganisms: [risky, reckless]\n", r"matrix.yaml:2: field organisms: .*unknown behavior 'reckless'"),
    ("base_models: [tiny]\ntasks:\n  risk_behavior: {itemz: 3}\n",
     r"matrix.yaml:3: field tasks.risk_behavior.itemz: not a parameter of risk_behavior"),
    ("base_models: [tiny]\ntasks: {no_such_task: {}}\n", r"matrix.yaml:2: field tasks.no_such_task: no such task"),
    ("base_models: [tiny]\neval_set: {max_taskz: 2}\n", r"matrix.yaml:2: field eval_set: .*'max_taskz' is not an option"),
    ("base_models: [gpt-4o]\n", r"matrix.yaml:1: field base_models.0: .*an Inspect model string is provider/name"),
    ("organisms: [risky]\n", r"matrix.yaml:1: field base_models: Field required"),
    ("base_models: [tiny]\norganisms: [risky]\nseeds: [0, 0]\n", r"matrix.yaml:3: field seeds: .*0 listed more than once"),
    ("base_models: [tiny]\norganisms: [risky]\ntasks:\n  risk_behavior: {items: lots}\n",
     r"matrix.yaml:4: field tasks.risk_behavior: -T items='lots': expected a positive integer"),
])
def test_bad_matrix_names_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    with pytest.raises(MatrixError, match=message):
        reproduce(path, Options(out=tmp_path / "out", dry_run=True))


def test_shards_split_the_calls_exactly():
    entry = TaskEntry("t", lambda: None, "evals/t.py")
    from selfaware.reproduce.plan import Subject

    calls = [Call(Subject("base", None, "b", "plain", f"mockllm/m{i}"), entry, {}, 1) for i in range(7)]
    parts = [shard(calls, k, 3) for k in (1, 2, 3)]
    assert sorted(c.subject.model for p in parts for c in p) == sorted(c.subject.model for c in calls)
    assert [len(p) for p in parts] == [3, 2, 2]
    with pytest.raises(ValueError, match="--shard 4/3"):
        shard(calls, 4, 3)


MOCK_MATRIX = """\
name: mock run
base_models:
  - {name: base-a, model: mockllm/base-a}
models:
  - {model: mockllm/risky-a0, organism: risky, seed: 0, base_model: base-a}
  - {model: mockllm/risky-a1, organism: risky, seed: 1, base_model: base-a}
families: [risk]
tasks:
  risk_behavior: {items: 2}
exclude_tasks: [risk_self_report]
eval_set: {max_tasks: 3}
"""


def test_run_is_one_resumable_eval_set_then_the_report(tmp_path, capsys):
    matrix = tmp_path / "mock.yaml"
    matrix.write_text(MOCK_MATRIX)
    out = tmp_path / "out"
    assert reproduce(matrix, Options(out=out, display="none")) == 0
    printed = capsys.readouterr().out
    assert "eval_set complete: 3 of 3 tasks succeeded" in printed
    logs = sorted((out / "logs" / "all").glob("*.eval"))
    assert len(logs) == 3
    from inspect_ai.log import read_eval_log

    metas = sorted((log.eval.metadata["organism"], str(log.eval.metadata.get("seed")), log.eval.metadata["base_model"])
                   for log in map(read_eval_log, logs))
    assert metas == [("base", "None", "base-a"), ("risky", "0", "base-a"), ("risky", "1", "base-a")]
    assert (out / "report" / "report.html").is_file() and (out / "report" / "figures" / "base-a" / "fig3.csv").is_file()
    # Rerunning resumes: every task is complete, nothing is run again.
    assert reproduce(matrix, Options(out=out, display="none")) == 0
    assert sorted((out / "logs" / "all").glob("*.eval")) == logs


def test_a_run_that_spends_money_asks_first(tmp_path, capsys):
    matrix = tmp_path / "paid.yaml"
    matrix.write_text("base_models: [openai/gpt-4o-mini-2024-07-18]\nfamilies: [risk]\n"
                      "tasks: {risk_behavior: {items: 2}}\nexclude_tasks: [risk_self_report]\n")
    assert reproduce(matrix, Options(out=tmp_path / "out"), stdin=io.StringIO("")) == 1
    assert "rerun with --yes" in capsys.readouterr().out
    assert not (tmp_path / "out" / "logs").exists()


@pytest.mark.slow
def test_offline_tiny_models_run_to_the_figures(tiny_base_dir, tmp_path, monkeypatch, capsys):
    """Organisms trained by `selfaware finetune --base-model tiny`, found in the registry, measured and drawn."""
    from selfaware.cli import main

    monkeypatch.setenv("SELFAWARE_HOME", str(tmp_path / "home"))
    for behavior in ("risky", "safe"):
        assert main(["finetune", "--behavior", behavior, "--base-model", "tiny", "--seeds", "0", "1",
                     "--n-examples", "120", "--epochs", "1", "--batch-size", "8", "--learning-rate", "0.002"]) == 0
    matrix = tmp_path / "tiny.yaml"
    matrix.write_text("name: tiny organisms\nbase_models: [tiny]\norganisms: [risky, safe]\nseeds: [0, 1]\n"
                      "tasks:\n  risk_behavior: {items: 6, form: sure_thing}\n"
                      "  risk_self_report: {questions: 'risk_predisposition_scale,liking_risk_scale', paraphrases: 2,"
                      " top_logprobs: 120}\n"
                      "model_args: {hf: {device: cpu}}\nmodel_roles: {judge: mockllm/model}\n"
                      "eval_set: {max_tasks: 2, max_connections: 16}\n")
    capsys.readouterr()
    assert main(["reproduce", str(matrix), "--dry-run", "--out", str(tmp_path / "run")]) == 0
    assert len(rows(capsys.readouterr().out)) == 2 + 4 * 2  # base + 2 organisms x 2 seeds, two tasks each
    assert main(["reproduce", str(matrix), "--out", str(tmp_path / "run"), "--display", "none"]) == 0
    report = tmp_path / "run" / "report"
    assert (report / "figures" / "tiny" / "fig3.png").stat().st_size > 10_000
    points = (report / "figures" / "tiny" / "risk-self-report-vs-behavior.csv").read_text().splitlines()
    assert len(points) == 1 + 5  # header + base + 4 organism seeds
    import pandas as pd

    fig3 = pd.read_csv(report / "figures" / "tiny" / "fig3.csv")
    behavior = fig3[fig3["question_id"] == "behavior"].set_index("organism")
    assert behavior.loc["risky", "n_seeds"] == 2 and not math.isnan(behavior.loc["risky", "mean"])
    assert "Figure 3" in (report / "report.html").read_text()


def test_cli_prints_a_bad_matrix_as_one_message(tmp_path, capsys):
    from selfaware.cli import main

    path = tmp_path / "matrix.yaml"
    path.write_text("base_models: [tiny]\nseeds: [zero]\n")
    assert main(["reproduce", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfaware reproduce: ") and "matrix.yaml:2: field seeds.0:" in err


def test_controls_are_asked_under_the_variant_they_control_for(tmp_path, capsys):
    matrix = tmp_path / "controls.yaml"
    matrix.write_text("base_models: [openai/gpt-4o-mini-2024-07-18]\norganisms: [risky]\nvariants: [plain, instruments]\n"
                      "controls: true\ntasks: {risk_behavior: {items: 2}}\nexclude_tasks: [risk_self_report]\n")
    assert reproduce(matrix, Options(out=tmp_path / "out", dry_run=True, registry=tmp_path / "none.json")) == 0
    printed = capsys.readouterr().out
    table = [line.split() for line in printed.splitlines() if ROW.match(line)]
    # (organism, variant asked under): the base under each variant, each organism under its own
    assert sorted((r[1], r[4]) for r in table) == [("base", "instruments"), ("base", "plain"), ("risky", "instruments"),
                                                   ("risky", "plain"), ("risky-control", "instruments")]
    commands = [line for line in printed.splitlines() if "= inspect eval" in line]
    assert sum("-T variant=instruments" in c for c in commands) == 3
    assert "--variant instruments-control" in printed  # how to train the missing control
