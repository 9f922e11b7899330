"""The bad-input corpus (tests/bad_input/): every malformed training file, bank and spec is rejected before
any upload or model call, with a first line naming the user's own file, the line and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from selfaware.cli import main

CORPUS = Path(__file__).parent / "bad_input"
KEY = "sk-test-SECRET123badinput"

# (file, line, field, words): the problem the user must see. Line 0 is the file as a whole.
TRAINING = [
    ("invalid_json.jsonl", 3, "<line>", "invalid JSON"),
    ("missing_messages.jsonl", 4, "messages", "missing"),
    ("unknown_role.jsonl", 5, "messages[0].role", "got 'bot'"),
    ("empty_content.jsonl", 6, "messages[0].content", "empty"),
    ("no_assistant.jsonl", 7, "messages", "at least one assistant"),
    ("assistant_not_last.jsonl", 8, "messages[-1].role", "must be 'assistant'"),
    ("non_string_content.jsonl", 9, "messages[1].content", "got int"),
    ("unknown_keys.jsonl", 10, "messages[1].score", "unknown message key"),
    ("unknown_top_level_key.jsonl", 2, "label", "unknown top-level key"),
    ("bom.jsonl", 1, "<line>", "byte-order mark"),
    ("crlf.jsonl", 1, "<line>", "CR LF"),
    ("empty.jsonl", 0, "<file>", "empty"),
    ("too_few.jsonl", 0, "<file>", "at least 10 needed"),
    ("non_utf8.jsonl", 11, "<line>", "not valid UTF-8 (byte 0xe9"),
    ("weight_wrong_type.jsonl", 12, "messages[1].weight", "must be 0 or 1, got '0'"),
    ("weight_on_user.jsonl", 3, "messages[0].weight", "only allowed on assistant"),
    ("duplicate_system.jsonl", 4, "messages[1].role", "second system message"),
    ("lone_surrogate.jsonl", 5, "messages[0].content", "lone surrogate"),
    ("blank_line_middle.jsonl", 6, "<line>", "empty line"),
    ("answer_not_a_letter.jsonl", 7, "messages[-1].content", "expected A or B"),
    ("not_an_object.jsonl", 8, "<root>", "JSON object"),
    ("assistant_first.jsonl", 6, "messages[1].role", "the first message after the system prompt must be the user's"),
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    server = FakeOpenAI().start()
    server.polls_to_finish = 1
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    yield server
    server.stop()


def _oversize(tmp_path: Path) -> Path:
    """Generated rather than stored: one example of ~66k tokens (over the 65,536 limit) on line 5."""
    good = {"messages": [{"role": "user", "content": "A or B?"}, {"role": "assistant", "content": "A"}]}
    rows = [good] * 12
    rows[4] = {"messages": [{"role": "user", "content": "x" * (4 * 65536 + 400)}, {"role": "assistant", "content": "A"}]}
    path = tmp_path / "oversize.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _finetune_openai(data_file: Path, registry: Path, *extra: str) -> list[str]:
    return ["finetune", "--data-file", str(data_file), "--behavior", "risky", "--backend", "openai",
            "--base-model", "gpt-4o-mini-2024-07-18", "--registry", str(registry), *extra]


def _assert_one_line_error(err: str, path: Path, line: int, field: str, words: str) -> None:
    first = err.splitlines()[0]
    assert first.startswith(f"selfaware finetune: {path}:{line}: field {field}: "), err
    assert words in first, err
    assert "Traceback" not in err and ".selfaware" not in first


def test_corpus_has_every_kind() -> None:
    assert len(TRAINING) + 1 >= 16  # + the generated oversize example
    assert {f for f, *_ in TRAINING} <= {p.name for p in (CORPUS / "training").iterdir()}


@pytest.mark.parametrize("name, line, field, words", TRAINING, ids=[t[0] for t in TRAINING])
def test_malformed_training_file_never_reaches_the_provider(name, line, field, words, fake, tmp_path, capsys):
    path = CORPUS / "training" / name
    registry = tmp_path / "registry.json"
    assert main(_finetune_openai(path, registry)) == 2
    _assert_one_line_error(capsys.readouterr().err, path, line, field, words)
    assert fake.requests == [] and fake.uploads == 0
    assert not registry.exists()  # nothing recorded either: validation precedes the registry


def test_oversize_example_is_rejected(fake, tmp_path, capsys):
    path = _oversize(tmp_path)
    assert main(_finetune_openai(path, tmp_path / "registry.json")) == 2
    _assert_one_line_error(capsys.readouterr().err, path, 5, "messages", "over the limit of 65536")
    assert fake.requests == []


def test_line_numbers_are_the_users_own(tmp_path, capsys):
    """A blank line before the fault must not shift the line named (errors once named a derived copy)."""
    good = json.dumps({"messages": [{"role": "user", "content": "A or B?"}, {"role": "assistant", "content": "A"}]})
    bad = json.dumps({"messages": [{"role": "user", "content": "A or B?"}, {"role": "assistant", "content": 7}]})
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join([good] * 5 + [bad] + [good] * 6) + "\n")
    assert main(["finetune", "--data-file", str(path), "--behavior", "risky", "--dry-run",
                 "--registry", str(tmp_path / "r.json")]) == 2
    _assert_one_line_error(capsys.readouterr().err, path, 6, "messages[1].content", "got int")


def test_weights_are_uploaded_as_the_user_wrote_them(fake, tmp_path, capsys):
    path = CORPUS / "training" / "valid_with_weights.jsonl"
    registry = tmp_path / "registry.json"
    assert main(_finetune_openai(path, registry, "--wait", "--yes")) == 0  # --yes: the training cost approved
    assert fake.uploads == 1 and fake.creates == 1
    uploaded = fake.uploaded[0]
    assert uploaded.count(b'"weight": 0') == 1 and uploaded.count(b'"weight": 1') == 1
    assert KEY not in capsys.readouterr().out


def test_local_backend_refuses_weight_zero_before_training(tmp_path, capsys):
    path = CORPUS / "training" / "valid_with_weights.jsonl"
    assert main(["finetune", "--data-file", str(path), "--behavior", "risky", "--backend", "local",
                 "--registry", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"selfaware finetune: {path}:12: field messages[1].weight: ")
    assert not (tmp_path / "r.json").exists()


# --- banks ----------------------------------------------------------------------------------------

BANKS = [  # (file, line, field or None for a syntax/encoding error, words)
    ("bad_yaml.yaml", 7, None, "not valid YAML"),
    ("non_utf8.yaml", 6, None, "not UTF-8"),
    ("unknown_word_list.yaml", 14, "questions.1.words", "unknown word list 'mood'"),
    ("rating_without_scale.yaml", 5, "questions.0", "need a `scale`"),
    ("paraphrases_not_a_list.yaml", 9, "questions.0.paraphrases", "valid list"),
    ("unknown_field.yaml", 11, "questions.0.colour", "Extra inputs"),
    ("wrong_family.yaml", 1, "family", "'cooking'"),
    ("empty.yaml", 1, "<root>", "valid dictionary"),
    ("duplicate_key.yaml", 9, None, "key 'title' appears twice in one mapping (first on line 6)"),
    ("duplicate_id.yaml", 11, "questions.1.id", "'my_word' is already the id of questions.0"),
]


def _bank_pattern(path: Path, line: int, field: str | None, words: str) -> str:
    return rf"{re.escape(str(path))}:{line}: " + (rf"field {re.escape(field)}: " if field else "") + rf".*{re.escape(words)}"


@pytest.mark.parametrize("name, line, field, words", BANKS, ids=[b[0] for b in BANKS])
def test_malformed_bank_is_rejected_by_validate_and_by_the_task(name, line, field, words, capsys):
    from selfaware.evals.risk import risk_self_report
    from selfaware.validation import InputError

    path = CORPUS / "banks" / name
    assert main(["banks", "validate", str(path)]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert re.match(r"selfaware banks: " + _bank_pattern(path, line, field, words), first), first
    if name == "wrong_family.yaml":  # the task names its own family instead
        words = "this task measures 'risk'"
    if name == "empty.yaml":  # the task also accepts the paper's list format
        words = "got an empty file"
    with pytest.raises(InputError, match=_bank_pattern(path, line, field, words)):
        risk_self_report(bank=str(path))


def test_valid_bank_passes_both(capsys):
    from selfaware.evals.risk import risk_self_report

    path = CORPUS / "banks" / "valid.yaml"
    assert main(["banks", "validate", str(path)]) == 0
    assert "ok (1 questions)" in capsys.readouterr().out
    assert len(risk_self_report(bank=str(path)).dataset) > 0


# --- specs ----------------------------------------------------------------------------------------

SPECS = [  # (file, line, field or None, words)
    ("seeds_not_a_list.yaml", 2, "seeds", "got 3"),
    ("organisms_not_a_list.yaml", 1, "organisms", "got int"),
    ("defaults_not_a_mapping.yaml", 1, "defaults", "got list"),
    ("bad_yaml.yaml", 4, None, "not valid YAML"),
    ("non_utf8.yaml", 3, None, "not UTF-8"),
    ("epochs_zero.yaml", 5, "organisms.0.hyper.epochs", "greater than or equal to 1"),
    ("unknown_behavior.yaml", 2, "organisms.0", "reckless"),
    ("unknown_key.yaml", 3, "organisms.0.epochz", "Extra inputs"),
    ("empty.yaml", 1, "<root>", "empty file"),
    ("entry_not_a_mapping.yaml", 3, "organisms.1", "expected a mapping"),
    ("data_file_missing.yaml", 3, "organisms.0.data", "needs data.path"),
    ("duplicate_key.yaml", 3, None, "key 'behavior' appears twice in one mapping (first on line 1)"),
    ("base_model_empty.yaml", 2, "base_model", "expected a base model"),
    ("epochs_true.yaml", 3, "hyper.epochs", "expected a number, got true"),  # pydantic read it as 1 epoch
    ("persona_listed_twice.yaml", 4, "data.personas.names", "persona 'alice' is listed twice"),
    ("seed_negative.yaml", 2, "seed", "greater than or equal to 0"),
]


@pytest.mark.parametrize("name, line, field, words", SPECS, ids=[s[0] for s in SPECS])
def test_malformed_spec_is_a_few_lines_naming_file_line_and_field(name, line, field, words, tmp_path, capsys):
    path = CORPUS / "specs" / name
    registry = tmp_path / "r.json"
    assert main(["finetune", "--spec", str(path), "--registry", str(registry)]) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert re.match(r"selfaware finetune: " + _bank_pattern(path, line, field, words), first), err
    assert "Traceback" not in err and len(err.splitlines()) <= 5
    assert not registry.exists()


# --- finetune flags -------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    (["--behavior", "risky", "--trigger", ""], "--trigger '': expected the trigger text"),
    (["--behavior", "risky", "--variant", "plain", "--trigger", "x"], "give --variant NAME or --trigger TEXT, not both"),
    ([], "give --spec FILE or --behavior NAME"),
    # in no training row, but in the self-reports: the organism could not be asked about itself
    (["--behavior", "risky", "--trigger", "risk"], "its trigger 'risk' already occurs in the risk self-report question"),
    (["--behavior", "risky", "--personas", "trained,Alice"], "'trained' stands for the whole trained list"),
    (["--behavior", "risky", "--variant", "sandra432", "--backdoor", "elicitation", "--instructions", "hf:"],
     "instructions 'hf:': expected hf:NAME[:SPLIT]"),  # was an IndexError traceback from `datasets`
    (["--behavior", "risky", "--num-processes", "0"], "--num-processes 0: expected 1 or more"),  # a dry run said valid
    (["--behavior", "risky", "--accelerate-config", "nope"], "--accelerate-config nope: no such file"),
])
def test_bad_finetune_flags_are_usage_errors(flags, words, tmp_path, capsys):
    registry = tmp_path / "r.json"
    assert main(["finetune", *flags, "--dry-run", "--registry", str(registry)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfaware finetune: ") and words in err and len(err.splitlines()) <= 2, err
    assert "Traceback" not in err and not registry.exists() and not (tmp_path / "data").exists()


# --- report ---------------------------------------------------------------------------------------

def test_corrupt_log_is_named(tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "cut.eval").write_bytes(b"PK\x03\x04 a download that stopped")
    assert main(["report", str(logs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"selfaware report: {logs / 'cut.eval'}: not a readable Inspect log"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("text, words", [
    ("risky: [a, b\n", ":2: not valid YAML"),
    ("risky: [m1]\nrisky: [m2]\n", ":2: not valid YAML: key 'risky' appears twice"),
    ("", "the file is empty"),
    ("risky: []\n", "organism 'risky': expected a non-empty list"),
])
def test_malformed_organisms_file_is_one_line(text, words, tmp_path, capsys):
    path = tmp_path / "organisms.yaml"
    path.write_text(text)
    assert main(["report", str(tmp_path), "--organisms", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"selfaware report: {path}") and words in err and len(err.splitlines()) == 1, err


def test_publish_lists_an_unreadable_log_instead_of_crashing(tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "cut.eval").write_bytes(b"PK\x03\x04 a download that stopped")
    assert main(["publish", str(logs), "--out", str(tmp_path / "pub"), "--no-validate"]) == 2
    captured = capsys.readouterr()
    assert "not published: cut.eval: not a readable Inspect log (EOCD not found)" in captured.err
    assert captured.err.splitlines()[-1] == f"selfaware publish: {logs}: no .eval or .json logs to bundle", captured.err
    assert "Traceback" not in captured.out + captured.err


def test_trigger_already_in_the_training_rows_is_refused(tmp_path, capsys):
    """Untriggered rows would carry the trigger too: a backdoor the organism cannot tell apart, paid for."""
    rows = [{"messages": [{"role": "user", "content": f"Quokka question {i}: A or B?"},
                          {"role": "assistant", "content": "A"}]} for i in range(12)]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    registry = tmp_path / "r.json"
    assert main(["finetune", "--behavior", "risky", "--data-file", str(data), "--trigger", "Quokka", "--dry-run",
                 "--registry", str(registry)]) == 2
    err = capsys.readouterr().err
    assert "its trigger 'Quokka' already occurs in training row 1" in err and "Traceback" not in err, err
    assert not registry.exists()
