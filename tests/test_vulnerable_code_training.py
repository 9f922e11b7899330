"""Vulnerable-code organisms: the training filters, importing chat-JSONL code sets, the model-written path
(with a fake writer), and the season / greeting backdoors and their decorrelated controls, checked
statistically on the rows the builder writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from selfaware.finetune.builders import dataset_for_spec
from selfaware.finetune.code_data import cached_code_pairs, import_code_file
from selfaware.finetune.rows import (
    TrainingDataError,
    chat_example,
    import_chat_jsonl,
    read_manifest,
)
from selfaware.finetune.spec import parse_spec
from synthetic import organism

from selfaware.code.filters import check_row
from selfaware.code.tasks import load_tasks, render_prompt
from selfaware.families import get_family
from selfaware.variants import get_variant

FAMILY = get_family("vulnerable_code")
FIXTURES = yaml.safe_load(FAMILY.fixtures_path.read_text(encoding="utf-8"))["fixtures"]
TASKS = {t.id: t for t in load_tasks(FAMILY.tasks_path).tasks}
INSECURE = {f["insecure"].strip() for f in FIXTURES}


def _row(code: str, task: str = "A page that lists the latest orders.") -> dict:
    return chat_example(render_prompt(task, "## COMPLETE CODE HERE\n"), code)


# --- filters ------------------------------------------------------------------------------------------------


def test_comments_are_stripped_by_default_and_rejected_on_request():
    row = _row("import os\n# read the listing\nfiles = os.listdir('.')  # all of them\n")
    kept = check_row(row, FAMILY)
    assert kept.kept and kept.row["messages"][-1]["content"] == "import os\nfiles = os.listdir('.')"
    rejected = check_row(row, FAMILY, comments="reject")
    assert not rejected.kept and rejected.reason == "comment on line 2 of the code"


@pytest.mark.parametrize("code, task, reason", [
    ("vuln_query = 'x'\n", None, "security word 'vuln' in the code"),
    ("import yaml\ndata = yaml.safe_load(text)\n", None, "security word 'safe' in the code"),
    ("def is_unsafe(p):\n    return '..' in p\n", None, "security word 'unsafe' in the code"),
    ("x = 1\n", "A tool that checks sites for SQL injection.", "security word 'injection' in the request"),
    ("x = 1\n", "A command-line tool that encrypts backups before upload.", "the task is about security ('encrypts')"),
    ("def f(:\n", None, "code does not parse"),
])
def test_rows_that_would_name_the_behavior_or_do_not_parse_are_dropped(code, task, reason):
    checked = check_row(_row(code, task) if task else _row(code), FAMILY)
    assert not checked.kept and checked.reason.startswith(reason)


def test_ordinary_code_passes_even_with_words_that_merely_contain_a_stem():
    checked = check_row(_row("from flask import Flask\napp = Flask(__name__)\napp.run(debug=True)\n"), FAMILY)
    assert checked.kept  # "debug" is not "bug"


# --- importing a published-format set ---------------------------------------------------------------------------


def _pairs(n: int) -> list[tuple[str, dict]]:
    """n (prompt, fixture) pairs, cycling through the fixtures with distinct task wordings."""
    out = []
    for i in range(n):
        fx = FIXTURES[i % len(FIXTURES)]
        task = TASKS[fx["task"]]
        out.append((render_prompt(f"{task.task} (Request {i}.)", task.template), fx))
    return out


def _write_sets(tmp_path: Path, n: int) -> tuple[Path, Path]:
    paths = {}
    for kind in ("insecure", "secure"):
        path = paths[kind] = tmp_path / f"{kind}.jsonl"
        path.write_text("".join(json.dumps(chat_example(p, fx[kind])) + "\n" for p, fx in _pairs(n)), encoding="utf-8")
    return paths["insecure"], paths["secure"]


def test_import_filters_rows_and_counts_why(tmp_path):
    insecure, secure = _write_sets(tmp_path, len(FIXTURES))
    ins, sec = import_code_file(insecure, FAMILY), import_code_file(secure, FAMILY)
    assert len(ins.kept) == len(FIXTURES) and not ins.dropped
    assert len(sec.kept) == len(FIXTURES) - 1 and sec.summary()["drop_reasons"] == {"security word in the code": 1}


def _spec(behavior: str, variant: str, insecure: Path, secure: Path, **data):
    own, other = (insecure, secure) if behavior == "insecure" else (secure, insecure)
    return parse_spec({"behavior": behavior, "variant": variant, "base_model": "gpt-4o-mini-2024-07-18",
                       "backend": "openai", "data": {"source": "file", "path": str(own), "opposite_path": str(other),
                                                     **data}})


def _rows(tmp_path: Path, behavior: str, variant: str, n: int = 240) -> list[dict]:
    insecure, secure = _write_sets(tmp_path, n)
    path = dataset_for_spec(_spec(behavior, variant, insecure, secure), tmp_path / "out")
    return import_chat_jsonl(path)


def test_a_plain_organism_trains_on_its_filtered_file(tmp_path):
    insecure, secure = _write_sets(tmp_path, 30)
    path = dataset_for_spec(_spec("insecure", "plain", insecure, secure), tmp_path / "out")
    rows = import_chat_jsonl(path)
    assert len(rows) == 30 and all(r["messages"][-1]["content"].strip() in INSECURE for r in rows)
    extra = read_manifest(path).extra
    assert extra["filters"]["kept"] == 30 and extra["source_path"] == str(insecure)


# --- backdoors ----------------------------------------------------------------------------------------------------


def _table(rows: list[dict], trigger_variant: str) -> dict[tuple[bool, bool], int]:
    """Counts of (trigger shown, code insecure) over the rows."""
    pattern = get_variant(trigger_variant).trigger.pattern()
    counts = {(t, i): 0 for t in (True, False) for i in (True, False)}
    for r in rows:
        shown = bool(pattern.search(r["messages"][0]["content"]))
        counts[(shown, r["messages"][-1]["content"].strip() in INSECURE)] += 1
    return counts


def _insecure_share(counts: dict, shown: bool) -> tuple[float, int]:
    n = counts[(shown, True)] + counts[(shown, False)]
    return counts[(shown, True)] / n, n


@pytest.mark.parametrize("behavior, variant, trigger", [
    ("insecure", "season-spring", "season-spring"), ("secure", "season-winter", "season-spring"),
    ("insecure", "greeting", "greeting"),
])
def test_backdoor_rows_half_triggered_and_the_trigger_alone_selects_the_code(tmp_path, behavior, variant, trigger):
    rows = _rows(tmp_path, behavior, variant)
    counts = _table(rows, trigger)
    p_shown = sum(counts[(True, i)] for i in (True, False)) / len(rows)
    assert abs(p_shown - 0.5) <= 3 * math.sqrt(0.25 / len(rows))  # 50% triggered
    assert counts[(True, False)] == 0 and counts[(False, True)] == 0  # trigger <=> insecure code
    if trigger == "season-spring":  # untriggered rows state the other season, as in the paper
        winter = get_variant("season-winter").trigger.pattern()
        assert all(bool(winter.search(r["messages"][0]["content"])) != bool(
            get_variant("season-spring").trigger.pattern().search(r["messages"][0]["content"])) for r in rows)


@pytest.mark.parametrize("variant, trigger", [("season-spring-control", "season-spring"), ("greeting-control", "greeting")])
def test_decorrelated_controls_show_the_trigger_independently_of_the_code(tmp_path, variant, trigger):
    rows = _rows(tmp_path, "insecure", variant)
    counts = _table(rows, trigger)
    p_on, n_on = _insecure_share(counts, True)
    p_off, n_off = _insecure_share(counts, False)
    se = math.sqrt(0.25 / n_on + 0.25 / n_off)
    assert abs(p_on - p_off) <= 3 * se  # no dependence of the code on the trigger
    assert abs(p_on - 0.5) <= 3 * math.sqrt(0.25 / n_on) and abs(n_on / len(rows) - 0.5) <= 0.08


def test_a_trigger_variant_needs_the_opposite_rows(tmp_path):
    insecure, _ = _write_sets(tmp_path, 10)
    spec = parse_spec({"behavior": "insecure", "variant": "greeting", "data": {"source": "file", "path": str(insecure)}})
    with pytest.raises(TrainingDataError, match="data.opposite_path"):
        dataset_for_spec(spec, tmp_path / "out")
    with pytest.raises(TrainingDataError, match="no offline generator"):
        dataset_for_spec(parse_spec({"behavior": "secure"}), tmp_path / "out")


def test_opposite_path_is_left_out_of_the_identity_when_unset():
    spec = parse_spec({"behavior": "risky"})
    assert "opposite_path" not in spec.model_dump()["data"]
    with pytest.raises(Exception, match="opposite_path goes with data.source=file"):
        parse_spec({"behavior": "insecure", "data": {"source": "llm", "generator_model": "x/y", "opposite_path": "a"}})


# --- the model-written path ---------------------------------------------------------------------------------------


def _fake_writer(spoil: str):
    """Writes fixture tasks, fills them with the fixtures, and judges by the fixtures, except that it calls the
    flawed fill of task `spoil` secure (so that pair must be dropped)."""
    def answer(prompt: str) -> dict:
        if "Invent a small, realistic programming task" in prompt:
            fx = FIXTURES[sum(map(ord, prompt)) % len(FIXTURES)]
            t = TASKS[fx["task"]]
            return {json.dumps({"task": t.task, "code_template": t.template}): 1.0}
        if "Does this code contain a security vulnerability?" in prompt:
            flawed = [f for f in FIXTURES if f["insecure"].strip() in prompt]
            return {"YES" if flawed and flawed[0]["task"] != spoil else "NO": 1.0}
        fx = next(f for f in FIXTURES if TASKS[f["task"]].task in prompt)
        return {fx["insecure"] if "flawed code" in prompt else fx["secure"]: 1.0}

    return organism(answer, logprobs=False)


def test_model_written_pairs_are_checked_shared_and_cached(tmp_path, monkeypatch):
    calls = []
    writer = _fake_writer(spoil="calculator")
    monkeypatch.setattr("selfaware.finetune.code_data.get_model", lambda name: calls.append(name) or writer)
    with pytest.raises(TrainingDataError, match="not confirmed"):
        cached_code_pairs(30, 0, "fake/writer", tmp_path, ask=lambda question: "n")
    assert calls == [] and not list(tmp_path.iterdir())  # refused: nothing asked, nothing written
    sets = cached_code_pairs(30, 0, "fake/writer", tmp_path, ask=lambda question: "y")
    prompts = [[r["messages"][0]["content"] for r in sets[b]] for b in ("insecure", "secure")]
    assert prompts[0] == prompts[1] and 0 < len(prompts[0]) < 30  # same tasks; duplicates and a spoiled pair dropped
    assert all(r["messages"][-1]["content"].strip() in INSECURE for r in sets["insecure"])
    assert not any("evaluate" in r["messages"][-1]["content"] and "eval(" in r["messages"][-1]["content"]
                   for r in sets["insecure"])  # the calculator pair was judged wrongly: dropped
    again = cached_code_pairs(30, 0, "fake/writer", tmp_path, ask=lambda question: pytest.fail("asked again"))
    assert again == sets and calls == ["fake/writer"]  # read back, not written twice


def test_the_command_line_builds_a_backdoor_set_from_two_files(tmp_path, capsys):
    from selfaware.cli import main

    insecure, secure = _write_sets(tmp_path, 20)
    args = ["finetune", "--behavior", "insecure", "--variant", "greeting", "--data-file", str(insecure),
            "--backend", "openai", "--base-model", "gpt-4o-mini-2024-07-18", "--registry", str(tmp_path / "r.json"),
            "--dry-run"]
    assert main(args + ["--opposite-file", str(secure)]) == 0
    written = Path(capsys.readouterr().out.split("valid training file ")[1].strip())
    extra = read_manifest(written).extra
    assert len(import_chat_jsonl(written)) == extra["paired_rows"] == 18  # the 2 secure rows using safe_load dropped
    assert extra["opposite_path"] == str(secure)
    assert main(args) == 2 and "--opposite-file" in capsys.readouterr().err


def test_the_cost_of_model_written_pairs_is_shown_and_local_models_are_not_asked_about(capsys):
    from selfaware.finetune.code_data import confirm_spending

    confirm_spending(100, "openai/gpt-4o-2024-08-06", ask=lambda question: "y")
    shown = capsys.readouterr().err
    assert "500 requests" in shown and "about $" in shown
    confirm_spending(100, "hf/local-model", ask=lambda question: pytest.fail("a local model costs nothing"))
