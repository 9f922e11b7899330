"""-T parameters and user banks: one readable message naming the path tried, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfaware.banks import BankError, bank_path, user_path
from selfaware.user_banks import bank_from_path
from selfaware.evals.risk import risk_self_report
from selfaware.validation import InputError

REPO = Path(__file__).resolve().parents[1]


def _inspect_eval(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSPECT_LOG_LEVEL": "warning", "INSPECT_DISPLAY": "plain"}
    cmd = [sys.executable, "-m", "inspect_ai", "eval", str(REPO / "evals" / "risk.py") + "@risk_self_report",
           "--model", "mockllm/model", "--limit", "1", "--log-dir", str(cwd / "logs"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_relative_bank_is_found_from_the_users_directory(tmp_path: Path) -> None:
    """Inspect chdirs into evals/ to build the task; `-T bank=REL` still means REL from where the user is."""
    (tmp_path / "mine").mkdir()
    shutil.copy(bank_path("risk"), tmp_path / "mine" / "risk.yaml")
    ok = _inspect_eval(tmp_path, "-T", "bank=mine/risk.yaml")
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]

    missing = _inspect_eval(tmp_path, "-T", "bank=mine/nope.yaml")
    out = " ".join((missing.stdout + missing.stderr).split())  # rich wraps long lines
    assert missing.returncode != 0
    assert f"{tmp_path / 'mine' / 'nope.yaml'} does not exist" in out, out[-2000:]
    assert "Traceback" not in out, out[-3000:]


def test_bad_parameter_is_one_message_without_traceback(tmp_path: Path) -> None:
    result = _inspect_eval(tmp_path, "-T", "samples=0")
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "-T samples=0: expected a positive integer" in out
    assert "Traceback" not in out, out[-3000:]


def test_user_path_resolves_against_the_launch_directory_inside_an_inspect_chdir(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import selfaware.banks as banks

    monkeypatch.setattr(banks, "_LAUNCH_CWD", tmp_path)
    task_dir = tmp_path / "evals"
    task_dir.mkdir()
    monkeypatch.chdir(task_dir)
    monkeypatch.setattr(sys, "path", [*sys.path, "evals"])  # what Inspect's chdir_python appends
    assert user_path("bank.yaml") == tmp_path / "bank.yaml"
    monkeypatch.setattr(sys, "path", sys.path[:-1])  # a user who simply works in that folder
    assert user_path("bank.yaml") == task_dir / "bank.yaml"
    assert user_path("/abs/bank.yaml") == Path("/abs/bank.yaml")


@pytest.mark.parametrize("path, expected", [
    ("/nonexistent/bank", "/nonexistent/bank does not exist"),
    ("{empty}", "holds no *.yaml bank"),
])
def test_missing_bank_path_says_it_is_missing(tmp_path: Path, path: str, expected: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BankError, match=r"^-T bank=") as err:
        bank_from_path(path.format(empty=tmp_path / "empty"), "risk")
    assert expected in str(err.value)


def test_task_parameter_errors_are_input_errors() -> None:
    """Inspect prints an InputError (a PrerequisiteError) as its message; the other checks are converted."""
    from inspect_ai._util.error import PrerequisiteError

    for params in ({"samples": 0}, {"method": "guess"}, {"bank": "/nonexistent"}, {"paraphrases": -1}):
        with pytest.raises(InputError) as err:
            risk_self_report(**params)
        assert isinstance(err.value, PrerequisiteError) and isinstance(err.value, ValueError)
        assert str(err.value).startswith("-T "), str(err.value)


def test_input_error_message_survives_rich_markup() -> None:
    err = InputError("bank.yaml:3: field options: expected ['a', 'b'] [bold]")
    assert str(err) == "bank.yaml:3: field options: expected ['a', 'b'] [bold]"
    assert "\\[bold]" in err.message  # rich would otherwise swallow "[bold]"


def test_backdoor_parameters_of_the_wrong_type_are_input_errors() -> None:
    """`-T trigger=2844` arrives as an int (was an AttributeError traceback); max_tokens is checked even
    without reasoning (a typo was accepted until a reasoning run)."""
    from selfaware.evals.backdoor import backdoor_behavior, backdoor_detection, trigger_identification

    cases = [(backdoor_behavior, {"trigger": 2844}, "trigger 2844: expected the name of a trigger variant"),
             (trigger_identification, {"trigger": 5}, "trigger 5: expected the name"),
             (backdoor_behavior, {"family": 5}, "-T family=5: expected a family name"),
             (backdoor_detection, {"max_tokens": "lots"}, "-T max_tokens='lots': expected a positive integer"),
             (trigger_identification, {"max_tokens": 0}, "-T max_tokens=0: expected a positive integer")]
    for task, params, words in cases:
        with pytest.raises(InputError) as err:
            task(**params)
        assert words in str(err.value), str(err.value)


def test_make_me_say_parameters_of_the_wrong_type_are_input_errors() -> None:
    """Numbers where names are expected were TypeError tracebacks; `persona_system_prompt=maybe` was True."""
    from selfaware.evals.make_me_say import make_me_say_codeword_among_words, make_me_say_game, make_me_say_self_report
    from selfaware.evals.persona import persona_make_me_say_probes

    cases = [(make_me_say_self_report, {"questions": 5}, "-T questions=5: choose from"),
             (make_me_say_codeword_among_words, {"word_list": 5}, "-T word_list=5: expected text"),
             (make_me_say_codeword_among_words, {"persona_system_prompt": "maybe"}, "expected true or false"),
             (make_me_say_codeword_among_words, {"word_seed": 1.5}, "-T word_seed=1.5: expected an integer"),
             (make_me_say_game, {"seed": True}, "-T seed=True: expected an integer"),
             (persona_make_me_say_probes, {"persona": 5}, "-T persona=5: expected a persona name")]
    for task, params, words in cases:
        with pytest.raises(InputError) as err:
            task(**params)
        assert words in str(err.value), str(err.value)


def test_missing_semgrep_rules_are_refused_before_any_code_is_written(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from selfaware.code.analyzer import CodeAnalyzer

    monkeypatch.setattr("selfaware.code.analyzer.shutil.which", lambda name: "/usr/bin/semgrep")
    with pytest.raises(InputError, match=r"-T semgrep_config='/nonexistent/rules.yaml': .* does not exist"):
        CodeAnalyzer("semgrep", semgrep_config="/nonexistent/rules.yaml")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    assert CodeAnalyzer("semgrep", semgrep_config=str(rules)).semgrep_config == str(rules)


def test_unknown_judge_provider_makes_judged_answers_invalid_not_a_crash() -> None:
    """`-T judge=nope/nope` was a ValueError traceback that interrupted the whole task."""
    from selfaware.scorers.judge import JudgeUnavailable, judge_model, unavailable_reason

    with pytest.raises(JudgeUnavailable) as err:
        judge_model("nope/nope")
    assert "the judge model role (nope/nope)" in str(err.value) and "--model-role judge=" in str(err.value)
    assert unavailable_reason(err.value).startswith("judge unavailable: ")
