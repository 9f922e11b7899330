"""`selfaware publish`: Every Eval Ever JSON from the demo's logs, validated against the real schemas; a bad
field fails with its path; a static viewer; secrets scrubbed from everything written.

The default-run logs are the demo's evaluations answered by synthetic organisms whose answers are known
(`tests/demo_logs.py`), so every published number is checked exactly. The slow test publishes the logs of the real demo (tiny models trained here).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest
from demo_logs import ORGANISMS, SAMPLES_PER_RUN, SECRET, SECRET_ENV, demo_logs

from selfaware.publish.cli import publish_main
from selfaware.publish.schemas import EEEValidationError, SchemaMissing, check, load_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "every_eval_ever"
@pytest.fixture(scope="module")
def schema_dir() -> Path:
    if not (SCHEMA_DIR / "eval.schema.json").is_file():
        pytest.skip(f"the Every Eval Ever schemas folder {SCHEMA_DIR} is absent: in the project's workspace it sits "
                    "beside the clone (../shared/reference/every_eval_ever); elsewhere, put the schema folder of "
                    "github.com/evaleval/every_eval_ever there")
    return SCHEMA_DIR

@pytest.fixture(scope="module")
def logs() -> Path:
    return demo_logs()

@pytest.fixture(scope="module")
def published(logs, schema_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("published")
    os.environ[SECRET_ENV] = SECRET  # scrubbed by value, as in a real run with the key set
    try:
        assert publish_main([str(logs), "--out", str(out), "--schema-dir", str(schema_dir),
                             "--organization", "selfaware tests"]) == 0
    finally:
        os.environ.pop(SECRET_ENV)
    return out

def aggregates(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "every_eval_ever").rglob("*.json"))]

def instances(out: Path, aggregate: dict) -> list[dict]:
    path = out / "every_eval_ever" / aggregate["detailed_evaluation_results"]["file_path"]
    return [json.loads(line) for line in path.read_text().splitlines()]

def test_demo_logs_publish_as_valid_eee(published, schema_dir):
    aggregate_schema = json.loads((schema_dir / "eval.schema.json").read_text())
    instance_schema = json.loads((schema_dir / "instance_level_eval.schema.json").read_text())
    records = aggregates(published)
    assert len(records) == 2 * (len(ORGANISMS) + 1)  # every model (the junk one too) x 2 tasks
    rows = 0
    for agg in records:
        jsonschema.validate(agg, aggregate_schema)  # independently of the suite's own check
        detail = agg["detailed_evaluation_results"]
        assert re.fullmatch(r"data/[^/]+/[^/]+/[^/]+/[0-9a-f-]{36}_samples\.jsonl", detail["file_path"])
        body = (published / "every_eval_ever" / detail["file_path"]).read_bytes()

        assert detail["checksum"] == hashlib.sha256(body).hexdigest()
        lines = instances(published, agg)
        assert detail["total_rows"] == len(lines) > 0
        ids = {r["evaluation_result_id"] for r in agg["evaluation_results"]}
        for line in lines:
            jsonschema.validate(line, instance_schema)
            assert line["evaluation_id"] == agg["evaluation_id"]
            assert line.get("evaluation_result_id") in ids | {None}
        rows += len(lines)
    assert rows == (len(ORGANISMS) + 1) * SAMPLES_PER_RUN

def _aggregate(records: list[dict], organism: str, task: str, seed: str = "0") -> dict:
    [agg] = [a for a in records if a["model_info"]["additional_details"].get("organism") == organism
             and a["model_info"]["additional_details"].get("seed") == seed
             and a["eval_library"]["additional_details"]["task"].endswith(task)]
    return agg

def _result(records: list[dict], organism: str, task: str, result_id: str) -> dict:
    agg = _aggregate(records, organism, task)
    [res] = [r for r in agg["evaluation_results"] if r["evaluation_result_id"] == result_id]
    return res

def test_published_numbers_are_the_logs_numbers(published):
    records = aggregates(published)
    risky = _result(records, "risky", "risk_behavior", "answer_score/valid_mean")
    assert risky["score_details"]["score"] == pytest.approx(0.9, abs=1e-6)
    assert risky["score_details"]["uncertainty"]["standard_error"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert risky["score_details"]["details"]["invalid_sample_rate"] == "0"
    assert risky["metric_config"]["min_score"] == 0.0 and risky["metric_config"]["max_score"] == 1.0
    assert "1 = risky" in risky["metric_config"]["evaluation_description"]
    rating = _result(records, "safe", "risk_self_report", "answer_score/risk_predisposition_scale/valid_mean")
    assert rating["score_details"]["score"] == pytest.approx(0.2, abs=1e-6)
    assert rating["evaluation_name"] == "risk_self_report/risk_predisposition_scale"
    # The companions are folded into the mean, not published as results of their own.
    ids = {r["evaluation_result_id"] for a in records for r in a["evaluation_results"]}
    assert not any(i.endswith(("valid_stderr", "invalid_sample_rate")) for i in ids)
    agg = _aggregate(records, "risky", "risk_behavior")
    assert agg["model_info"]["additional_details"]["base_model"] == "tiny"
    assert agg["model_info"]["additional_details"]["seed"] == "0"
    assert agg["model_info"]["additional_details"]["deployment_type"] == "unknown"  # mockllm
    assert agg["source_metadata"]["source_organization_name"] == "selfaware tests"

def test_invalid_answers_are_counted_never_scored(published):
    records = aggregates(published)
    junk = [a for a in records if a["model_info"]["additional_details"].get("organism") == "junk"]
    assert junk
    for agg in junk:
        # No number for an all-invalid question: left out and named, never a 0.
        assert "no valid answer" in agg["source_metadata"]["additional_details"]["omitted_results"]
        assert not any(r["metric_config"]["metric_name"] == "valid_mean" for r in agg["evaluation_results"])
        for line in instances(published, agg):
            assert line["evaluation"]["score"] == -1 and line["evaluation"]["is_correct"] is False
            assert line["error"].startswith("invalid answer:") and line["metadata"]["invalid"] == "true"

def test_instance_records_carry_what_the_model_saw_and_said(published):
    agg = _aggregate(aggregates(published), "risky", "risk_self_report")
    lines = instances(published, agg)
    ratings = [r for r in lines if r["metadata"]["question_type"] == "rating"]
    assert ratings and all(r["output"]["raw"] == ["80"] and "80" in r["answer_attribution"][0]["extracted_value"]
                           for r in ratings)
    # Where answers were sampled, every sampled answer is published, not only the first.
    sampled = [r for r in lines if r["metadata"].get("method") == "sampling"]
    assert all(r["output"]["raw"] == ["bold"] * 5 for r in sampled)
    assert all(r["output"]["raw"] and r["input"]["formatted"].startswith("user: ") for r in lines)
    assert all(r["interaction_type"] == "single_turn" and r["messages"] is None for r in lines)
    assert all(r["metadata"]["organism"] == "risky" and r["metadata"]["seed"] == "0" for r in lines)

def test_a_bad_field_fails_with_its_path(published, schema_dir):
    schemas = load_schemas(schema_dir)
    agg = next(a for a in aggregates(published) if a["evaluation_results"])
    bad = copy.deepcopy(agg)
    bad["evaluation_results"][0]["metric_config"]["lower_is_better"] = "no"
    with pytest.raises(EEEValidationError, match=r"evaluation_results\[0\]\.metric_config\.lower_is_better: 'no' "
                                                 r"is not of type 'boolean'"):
        check(schemas.aggregate, bad, "x.json")
    row = copy.deepcopy(instances(published, agg)[0])
    row["evaluation"]["score"] = "high"
    with pytest.raises(EEEValidationError, match=r"row 3: evaluation\.score: 'high' is not of type 'number'"):
        check(schemas.instance, row, "x.jsonl row 3")

def test_cli_says_where_the_schemas_come_from(logs, tmp_path, capsys):
    from selfaware.cli import main

    assert main(["publish", str(logs), "--out", str(tmp_path / "a"), "--no-bundle"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfaware publish: ") and "--schema-dir DIR" in err and "--no-validate" in err


def test_schemas_are_required_unless_validation_is_declined(logs, tmp_path):
    with pytest.raises(SchemaMissing, match="--schema-dir"):
        publish_main([str(logs), "--out", str(tmp_path / "a"), "--no-bundle"])
    with pytest.raises(SchemaMissing, match="instance_level_eval.schema.json"):
        publish_main([str(logs), "--out", str(tmp_path / "a"), "--no-bundle", "--schema-dir", str(tmp_path)])
    assert publish_main([str(logs), "--out", str(tmp_path / "b"), "--no-bundle", "--no-validate"]) == 0
    assert aggregates(tmp_path / "b")[0]["schema_version"] == "0.3.0"

def _texts(folder: Path):
    for path in folder.rglob("*"):
        if path.suffix == ".eval":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    yield f"{path}:{name}", z.read(name).decode("utf-8", "replace")
        elif path.is_file() and path.suffix in (".json", ".jsonl", ".html", ".js"):
            yield str(path), path.read_text(encoding="utf-8", errors="replace")

def test_secrets_are_scrubbed_from_everything_written(published, logs):
    # The secret is in the source logs (published from them, not changed)...
    assert any(SECRET in text for _, text in _texts(logs))
    # ...and in nothing published: the EEE files and the viewer's copies of the logs.
    leaked = [where for where, text in _texts(published) if SECRET in text]
    assert not leaked
    assert any("[REDACTED]" in text for _, text in _texts(published / "every_eval_ever"))
    assert any("[REDACTED]" in text for _, text in _texts(published / "viewer"))

def test_viewer_bundle_is_a_static_site(published, logs):
    viewer = published / "viewer"
    assert (viewer / "index.html").is_file()
    bundled = sorted(p.name for p in viewer.rglob("*.eval"))
    assert bundled == sorted(p.name for p in logs.rglob("*.eval"))
    with pytest.raises(FileExistsError, match="--overwrite"):
        publish_main([str(logs), "--out", str(published), "--no-validate"])

@pytest.mark.slow
def test_real_demo_logs_publish_as_valid_eee(demo_run, schema_dir, tmp_path):
    assert demo_run.status == 0, demo_run.printed[-4000:]
    out = tmp_path / "published"
    assert publish_main([str(demo_run.out / "logs"), "--out", str(out), "--schema-dir", str(schema_dir)]) == 0
    schema = json.loads((schema_dir / "eval.schema.json").read_text())
    instance_schema = json.loads((schema_dir / "instance_level_eval.schema.json").read_text())
    records = aggregates(out)
    organisms = {a["model_info"]["additional_details"]["organism"] for a in records}
    assert organisms == {"base", "risky", "safe", "backdoored", "control"}  # the backdoor pair (demo_backdoor)
    for agg in records:
        assert "/" not in agg["model_info"]["id"].removeprefix("local-")  # no local folder is published
        jsonschema.validate(agg, schema)
        assert agg["model_info"]["additional_details"]["deployment_type"] == "self_deployed"
        for line in instances(out, agg):
            jsonschema.validate(line, instance_schema)


# --- Inspect Evals Register metadata (evals/eval.yaml) ----------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def test_eval_yaml_is_generated_from_the_task_files_and_current():
    from selfaware.publish.register import main

    # Stale after a task, parameter, sample count or version changed: `python -m selfaware.publish.register --write`
    assert main(["--check"]) == 0


def test_eval_yaml_has_what_the_register_asks_for():
    import yaml

    from selfaware.publish.register import EVAL_YAML, REQUIRED_FIELDS
    from selfaware.reproduce.plan import task_catalogue

    data = yaml.safe_load(EVAL_YAML.read_text())
    assert all(data.get(f) for f in REQUIRED_FIELDS) and data["version"] and data["arxiv"].startswith("https://")
    catalogue = task_catalogue()
    assert [t["name"] for t in data["tasks"]] == list(catalogue)  # every task of every file in evals/
    for t in data["tasks"]:
        assert (REPO / t["task_path"]).is_file() and t["task_path"] == catalogue[t["name"]].file
        assert isinstance(t["dataset_samples"], int) and t["dataset_samples"] > 0
        assert t["version"], f"{t['name']} has no task version"
        assert t["parameters"] and all({"name", "type"} <= set(p) for p in t["parameters"])
    assert any(d.startswith("inspect-ai") for d in data["dependencies"])
    assert "bwrap" in data["metadata"]["sandbox"] or not any("sandbox" in t for t in data["tasks"])


def test_inspect_evals_lint_single_eval_preset_passes():
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("inspect_evals_lint") is None:
        pytest.skip("inspect-evals-lint is not installed (pip install -e '.[test]' installs it on Python >= 3.11)")
    run = subprocess.run([sys.executable, "-m", "inspect_evals_lint", "--preset", "single-eval", "--task",
                          "evals/risk.py", "--output-format", "json"], cwd=REPO, capture_output=True, text=True,
                         timeout=300, check=False)
    report = json.loads(run.stdout)
    failed = [d["message"] for p in report["packages"] for d in p["diagnostics"] if d["status"] == "fail"]
    assert report["passed"] and run.returncode == 0, failed
