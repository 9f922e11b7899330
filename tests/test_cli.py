"""The `selfaware` command: banks, finetune (dry run and hosted against a fake), organisms, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_openai import FakeOpenAI

from selfaware.cli import main

KEY = "sk-test-SECRET123cli"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "finetune", "organisms", "report", "banks"):
        assert command in out


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "selfaware.cli", "finetune", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--behavior" in result.stdout


def test_banks_list(capsys):
    assert main(["banks", "list"]) == 0
    out = capsys.readouterr().out
    assert "risk_predisposition_scale" in out and "myopia" in out and "apples" in out


def test_banks_validate_names_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bank.yaml"
    bad.write_text("family: x\nbehavior: a\nopposite: b\nquestions:\n  - id: q\n    title: Q\n    type: rating\n"
                   "    paraphrases: [one]\n")
    assert main(["banks", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "questions.0" in err


def test_finetune_dry_run_builds_valid_files(tmp_path, capsys):
    registry = tmp_path / "reg" / "registry.json"
    code = main(["finetune", "--behavior", "risky", "--behavior", "safe", "--seeds", "0", "1",
                 "--n-examples", "40", "--dry-run", "--registry", str(registry)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("valid training file") == 4
    assert not registry.exists()  # nothing submitted, nothing recorded


def test_finetune_rejects_unknown_behavior(tmp_path, capsys):
    code = main(["finetune", "--behavior", "reckless", "--dry-run", "--registry", str(tmp_path / "r.json")])
    assert code == 2
    assert "behavior" in capsys.readouterr().err


def test_finetune_spec_file_errors_name_the_field(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("organisms:\n  - behavior: risky\n    hyper: {epochs: 0}\n")
    assert main(["finetune", "--spec", str(spec), "--dry-run", "--registry", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "organisms.0" in err and "hyper.epochs" in err


def test_finetune_openai_end_to_end_without_leaking_the_key(tmp_path, monkeypatch, capsys):
    fake = FakeOpenAI().start()
    try:
        fake.polls_to_finish = 1
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
        registry = tmp_path / "registry.json"
        args = ["finetune", "--behavior", "risky", "--backend", "openai", "--base-model", "gpt-4o-mini-2024-07-18",
                "--n-examples", "30", "--registry", str(registry), "--lr-multiplier", "2"]
        assert main(args) != 0 and fake.uploads == 0  # no --yes and no terminal: the training cost is not approved
        assert "not confirmed, nothing was spent" in capsys.readouterr().err
        assert main(args + ["--wait", "--yes"]) == 0
        assert main(args) == 0  # the same spec again: the existing job, no second create, nothing to approve
        assert fake.creates == 1
        assert main(["organisms", "list", "--registry", str(registry)]) == 0
        out = capsys.readouterr()
        assert "openai/ft:" in out.out and "succeeded" in out.out
        assert "already registered" in out.out
        assert KEY not in out.out + out.err
        assert KEY not in registry.read_text()
        record = next(iter(json.loads(registry.read_text())["records"].values()))
        assert record["state"] == "succeeded"
    finally:
        fake.stop()
