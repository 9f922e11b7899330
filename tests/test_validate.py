"""The training-file validator: every malformed kind is caught with its exact line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfaware.finetune.validate import TrainingFileError, ValidationReport, approx_tokens, validate_chat_jsonl


def good(i: int = 0) -> dict:
    return {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"Pick A or B ({i})."},
            {"role": "assistant", "content": "A"},
        ]
    }


def write(tmp_path: Path, lines: list[str | bytes], name: str = "train.jsonl") -> Path:
    path = tmp_path / name
    data = b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines)
    path.write_bytes(data)
    return path


def with_bad_line(tmp_path: Path, bad: str | bytes | dict | list, at: int = 3, n: int = 12) -> Path:
    """n examples, line `at` (1-based) replaced by `bad`."""
    lines: list[str | bytes] = [json.dumps(good(i)) for i in range(n)]
    lines[at - 1] = bad if isinstance(bad, (str, bytes)) else json.dumps(bad)
    return write(tmp_path, lines)


def msgs(*messages: dict, **top: object) -> dict:
    return {"messages": list(messages), **top}


U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}

# (id, bad line, line number, field, words in the message)
MALFORMED = [
    ("invalid-json", '{"messages": [', 3, "<line>", "invalid JSON"),
    ("not-an-object", [1, 2, 3], 3, "<root>", "must be a JSON object"),
    ("missing-messages", {"prompt": "x"}, 4, "messages", "missing"),
    ("messages-not-list", {"messages": "hi"}, 3, "messages", "must be a list"),
    ("messages-empty", {"messages": []}, 5, "messages", "is empty"),
    ("unknown-role", msgs(U, {"role": "bot", "content": "x"}, A), 3, "messages[1].role", "must be one of"),
    ("missing-role", msgs(U, {"content": "x"}, A), 3, "messages[1].role", "missing"),
    ("legacy-function-role", msgs(U, A, {"role": "function", "name": "f", "content": "1"}, A), 6,
     "messages[2].role", "legacy role 'function'"),
    ("legacy-function-call", msgs(U, {"role": "assistant", "content": None, "function_call": {"name": "f"}}, A), 3,
     "messages[1].function_call", "legacy 'function_call'"),
    ("empty-user-content", msgs({"role": "user", "content": "  "}, A), 3, "messages[0].content", "empty"),
    ("missing-system-content", msgs({"role": "system"}, U, A), 3, "messages[0].content", "needs content"),
    ("content-wrong-type", msgs(U, {"role": "assistant", "content": 42}), 3, "messages[1].content",
     "must be a string or a list"),
    ("content-part-not-text", msgs({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, A), 3,
     "messages[0].content[0].type", "only text"),
    ("message-not-object", msgs(U, "hello"), 3, "messages[1]", "must be an object"),
    ("unknown-message-key", msgs(U, {"role": "assistant", "contents": "x", "content": "y"}), 3,
     "messages[1].contents", "unknown message key"),
    ("no-assistant", msgs({"role": "system", "content": "s"}, U), 3, "messages", "at least one assistant"),
    ("all-weights-zero", msgs(U, {**A, "weight": 0}, U, {**A, "weight": 0}), 3, "messages", "nothing would be trained"),
    ("weight-on-user", msgs({**U, "weight": 1}, A), 3, "messages[0].weight", "only allowed on assistant"),
    ("weight-not-0-or-1", msgs(U, {**A, "weight": 0.5}), 3, "messages[1].weight", "must be 0 or 1"),
    ("weight-bool", msgs(U, {**A, "weight": True}), 3, "messages[1].weight", "must be 0 or 1"),
    ("unknown-top-level-key", msgs(U, A, prompt="x"), 3, "prompt", "unknown top-level key"),
    ("legacy-functions-key", msgs(U, A, functions=[]), 3, "functions", "legacy 'functions'"),
    ("empty-line-in-middle", "", 3, "<line>", "empty line in the middle"),
    ("invalid-utf8", b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', 3, "<line>", "not valid UTF-8"),
]


@pytest.mark.parametrize("bad,line,field,words", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_line_is_rejected_with_line_and_field(tmp_path, bad, line, field, words):
    path = with_bad_line(tmp_path, bad, at=line)
    with pytest.raises(TrainingFileError) as info:
        validate_chat_jsonl(path)
    prefix = f"{path}:{line}: field {field}: "
    hits = [p for p in info.value.problems if p.startswith(prefix)]
    assert hits, f"expected a problem starting {prefix!r}, got {info.value.problems}"
    assert any(words in p for p in hits), hits
    assert prefix in str(info.value)


def test_corpus_covers_at_least_twelve_kinds():
    assert len(MALFORMED) >= 12


def test_too_few_examples(tmp_path):
    path = write(tmp_path, [json.dumps(good(i)) for i in range(3)])
    with pytest.raises(TrainingFileError, match=rf"{path}:0: field <file>: 3 example\(s\), at least 10 needed"):
        validate_chat_jsonl(path)
    assert validate_chat_jsonl(path, min_examples=3).examples == 3


def test_example_over_token_limit(tmp_path):
    long = msgs({"role": "user", "content": "x" * 4000}, A)
    path = with_bad_line(tmp_path, long, at=7)
    with pytest.raises(TrainingFileError) as info:
        validate_chat_jsonl(path, max_tokens=500)
    assert [p for p in info.value.problems if p.startswith(f"{path}:7: field messages: example is ~")]
    assert len(info.value.problems) == 1  # the short examples pass


def test_injected_token_counter_is_used(tmp_path):
    path = write(tmp_path, [json.dumps(good(i)) for i in range(10)])
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return 1000

    with pytest.raises(TrainingFileError, match="over the limit of 2000"):
        validate_chat_jsonl(path, max_tokens=2000, count_tokens=count)
    assert "A" in seen
    report = validate_chat_jsonl(path, max_tokens=10_000, count_tokens=lambda s: 1)
    assert report.max_example_tokens == 3 + 3 * 4  # one per message + template overhead


def test_bom_is_reported(tmp_path):
    path = write(tmp_path, [json.dumps(good(i)) for i in range(10)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with pytest.raises(TrainingFileError, match=r":1: field <line>: file starts with a UTF-8 byte-order mark"):
        validate_chat_jsonl(path)


def test_every_problem_is_listed(tmp_path):
    lines = [json.dumps(good(i)) for i in range(12)]
    lines[0] = "not json"
    lines[4] = json.dumps(msgs({"role": "robot", "content": "x"}, {**A, "weight": 2}))
    lines[9] = json.dumps({"messages": []})
    path = write(tmp_path, lines)
    with pytest.raises(TrainingFileError) as info:
        validate_chat_jsonl(path)
    assert [p.split(": field ")[0] for p in info.value.problems] == [
        f"{path}:1",
        f"{path}:5",
        f"{path}:5",
        f"{path}:10",
    ]
    assert "4 problems" in str(info.value)
    assert str(info.value).splitlines()[0] == info.value.problems[0]  # the first line says what to fix


def test_valid_file_is_accepted_with_counts(tmp_path):
    rows = [good(i) for i in range(11)]
    rows.append(
        {
            "messages": [
                U,
                {"role": "assistant", "content": "draft", "weight": 0},
                {"role": "user", "content": [{"type": "text", "text": "again"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "final"}], "weight": 1},
            ],
            "tools": [],
            "parallel_tool_calls": False,
        }
    )
    path = write(tmp_path, [json.dumps(r) for r in rows] + ["", ""])  # trailing blank lines are fine
    report = validate_chat_jsonl(path)
    assert isinstance(report, ValidationReport)
    assert report.examples == 12
    assert report.messages == 11 * 3 + 4
    assert report.assistant_turns == 13
    assert report.trained_assistant_turns == 12
    assert report.approx_tokens >= report.max_example_tokens > 0


def test_crlf_line_endings_are_reported_once(tmp_path):
    """Not every service reads CR LF; the suite never rewrites the user's file, so it says what to fix."""
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"".join(json.dumps(good(i)).encode() + b"\r\n" for i in range(10)))
    with pytest.raises(TrainingFileError) as info:
        validate_chat_jsonl(path)
    assert info.value.problems == [f"{path}:1: field <line>: Windows line ending (CR LF) on 10 line(s); "
                                   f"save the file with LF (Unix) line endings"]


def test_approx_tokens():
    assert approx_tokens("") == 0
    assert approx_tokens("abcd") == 1
    assert approx_tokens("abcde") == 2


def test_bad_file_is_never_uploaded(tmp_path, monkeypatch):
    """The OpenAI backend validates before touching the network: the fake server sees nothing."""
    from selfaware.finetune.backends.openai_api import OpenAIBackend
    from selfaware.finetune.spec import OrganismSpec

    try:
        from fake_openai import FakeOpenAI
    except ImportError:  # tests/ collected as a package
        from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET123")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
        backend = OpenAIBackend(sleep=lambda s: None)
        path = with_bad_line(tmp_path, {"messages": []}, at=2)
        spec = OrganismSpec(behavior="risky", base_model="gpt-4o-mini-2024-07-18", backend="openai")
        with pytest.raises(TrainingFileError, match=r":2: field messages: is empty"):
            backend.submit(spec, path, key="sa-test")
        assert fake.uploads == 0
        assert fake.requests == []
    finally:
        fake.stop()
