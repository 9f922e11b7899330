"""Check a chat fine-tuning JSONL file against OpenAI's rules before anything is uploaded.

Hosted services reject a bad file minutes after the upload (and sometimes after queueing), with one
terse error at a time. Checking locally first gives every problem at once, each as
`{path}:{line}: field {field}: {message}` so an editor can jump to it:

* `line` is 1-based; line 0 means the file as a whole (empty, too few examples).
* `field` is a JSON path inside the line's object with 0-based indices, e.g. `messages[2].role`;
  `<line>` is used when the line itself is broken (bad JSON, bad bytes, blank line) and `<file>`
  for whole-file problems.

Token counts default to a cheap approximation (`approx_tokens`: about one token per four characters,
plus a few tokens per message for the chat template), which is close enough to catch an example
that is far over the limit without downloading a tokenizer. Pass `count_tokens` (e.g.
`lambda s: len(enc.encode(s))` with tiktoken) for exact counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfaware.validation import InputError

ROLES = ("system", "user", "assistant", "tool")
TOP_LEVEL_KEYS = {"messages", "tools", "parallel_tool_calls"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "refusal"}
# Rough per-message cost of the chat template (role markers, separators) added to the text count.
MESSAGE_OVERHEAD_TOKENS = 4


# At most this many problems are printed; `TrainingFileError.problems` keeps all of them.
SHOWN_PROBLEMS = 20


class TrainingFileError(InputError):
    """A training file breaks the fine-tuning format; `problems` lists every one of them.

    The message starts with the first problem (`file:line: field F: why`), so its first line alone
    says what to fix; a count closes it."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        n = len(problems)
        shown = problems[:SHOWN_PROBLEMS]
        if n > SHOWN_PROBLEMS:
            shown.append(f"... and {n - SHOWN_PROBLEMS} more")
        tail = f"{path}: training file rejected ({n} problem{'s' if n != 1 else ''}); nothing was uploaded"
        super().__init__("\n".join([*shown, tail]))


@dataclass(frozen=True)
class ValidationReport:
    path: str
    examples: int
    messages: int
    approx_tokens: int  # over the whole file, with the counter used
    max_example_tokens: int
    assistant_turns: int
    trained_assistant_turns: int  # assistant messages with weight 1 (the default)


def approx_tokens(text: str) -> int:
    """~4 characters per token: the usual rule of thumb for English BPE vocabularies."""
    return math.ceil(len(text) / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _check_content(msg: dict, where: str, problem: Callable[[str, str], None]) -> None:
    role = msg.get("role")
    content = msg.get("content")
    field = f"{where}.content"
    if content is None:
        if role == "assistant":
            # An assistant turn may be only tool calls; otherwise it teaches nothing.
            if not msg.get("tool_calls"):
                problem(field, "assistant message needs content (or tool_calls)")
        elif role in ("system", "user", "tool"):
            problem(field, f"{role} message needs content")
        return
    if isinstance(content, str):
        if not content.strip() and role in ("system", "user"):
            problem(field, f"{role} message content is empty")
        elif not content.strip() and role == "assistant" and not msg.get("tool_calls"):
            problem(field, "assistant message content is empty: it would teach an empty answer")
        return
    if isinstance(content, list):
        if not content:
            problem(field, "content list is empty")
        for j, part in enumerate(content):
            pf = f"{field}[{j}]"
            if not isinstance(part, dict):
                problem(pf, f"content part must be an object, got {type(part).__name__}")
            elif part.get("type") != "text":
                problem(f"{pf}.type", f"only text content parts are supported, got {part.get('type')!r}")
            elif not isinstance(part.get("text"), str):
                problem(f"{pf}.text", "text part needs a string 'text'")
        if role in ("system", "user") and not _content_text(content).strip():
            problem(field, f"{role} message content is empty")
        return
    problem(field, f"content must be a string or a list of text parts, got {type(content).__name__}")


def check_example(obj: Any, problem: Callable[[str, str], None]) -> tuple[int, int, int, list[str]]:
    """Check one parsed example, calling `problem(field, message)` for each fault; return
    (messages, assistant turns, trained assistant turns, texts)."""
    if not isinstance(obj, dict):
        problem("<root>", f"each line must be a JSON object, got {type(obj).__name__}")
        return 0, 0, 0, []
    if "messages" not in obj:  # the problem to fix first; unknown keys are often the same mistake
        problem("messages", "missing; each example needs a 'messages' list")
    for key in obj:
        if key == "functions":
            problem(key, "legacy 'functions' is not supported; describe tools under 'tools'")
        elif key not in TOP_LEVEL_KEYS:
            problem(key, f"unknown top-level key; allowed: {sorted(TOP_LEVEL_KEYS)}")
    messages = obj.get("messages")
    if messages is None:
        if "messages" in obj:
            problem("messages", "is null; expected a list of messages")
        return 0, 0, 0, []
    if not isinstance(messages, list):
        problem("messages", f"must be a list, got {type(messages).__name__}")
        return 0, 0, 0, []
    if not messages:
        problem("messages", "is empty")
        return 0, 0, 0, []
    assistants = trained = systems = 0
    texts: list[str] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            problem(where, f"each message must be an object, got {type(msg).__name__}")
            continue
        role = msg.get("role")
        if "role" not in msg:
            problem(f"{where}.role", "missing")
        elif role == "function":
            problem(f"{where}.role", "legacy role 'function' is not supported; use 'tool' with tool_call_id")
        elif role not in ROLES:
            problem(f"{where}.role", f"must be one of {list(ROLES)}, got {role!r}")
        elif role == "system":
            systems += 1
            if systems > 1:
                problem(f"{where}.role", "a second system message; an example has at most one, at the start")
        for key in msg:
            if key == "function_call":
                problem(f"{where}.{key}", "legacy 'function_call' is not supported; use 'tool_calls'")
            elif key not in MESSAGE_KEYS:
                problem(f"{where}.{key}", f"unknown message key; allowed: {sorted(MESSAGE_KEYS)}")
        _check_content(msg, where, problem)
        if "name" in msg and not isinstance(msg["name"], str):
            problem(f"{where}.name", "must be a string")
        if "tool_calls" in msg and not isinstance(msg["tool_calls"], list):
            problem(f"{where}.tool_calls", "must be a list")
        if "weight" in msg:
            w = msg["weight"]
            if role != "assistant":
                problem(f"{where}.weight", "weight is only allowed on assistant messages")
            elif isinstance(w, bool) or w not in (0, 1):
                problem(f"{where}.weight", f"must be 0 or 1, got {w!r}")
        if role == "assistant":
            assistants += 1
            w = msg.get("weight", 1)
            if isinstance(w, bool) or w != 0:  # a bad weight is reported above, not counted as 0
                trained += 1
        texts.append(_content_text(msg.get("content")))
    for field, bad in _lone_surrogates(obj, ""):
        problem(field, f"text holds a lone surrogate escape ({bad}), which is not valid Unicode")
    if assistants == 0:
        problem("messages", "needs at least one assistant message")
    elif trained == 0:
        problem("messages", "every assistant message has weight 0: nothing would be trained")
    return len(messages), assistants, trained, texts


def _lone_surrogates(value: Any, path: str) -> list[tuple[str, str]]:
    """Fields whose text holds a `\\udXXX` escape with no partner: JSON allows it, UTF-8 cannot encode it,
    so the file would fail at upload (or when written) with no line to point at."""
    if isinstance(value, str):
        bad = [c for c in value if 0xD800 <= ord(c) <= 0xDFFF]
        return [(path or "<root>", f"\\u{ord(bad[0]):04x}")] if bad else []
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _lone_surrogates(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _lone_surrogates(v, f"{path}[{i}]")]
    return []


def validate_chat_jsonl(
    path: Path | str,
    *,
    min_examples: int = 10,
    max_tokens: int = 65536,
    count_tokens: Callable[[str], int] | None = None,
) -> ValidationReport:
    """Validate a chat-format training file; raise `TrainingFileError` listing every problem."""
    path = Path(path)
    counter = count_tokens or approx_tokens
    problems: list[str] = []

    def at(line: int) -> Callable[[str, str], None]:
        return lambda field, message: problems.append(f"{path}:{line}: field {field}: {message}")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: training file not found (looked in {path.resolve().parent})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a JSONL training file") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        at(1)("<line>", "file starts with a UTF-8 byte-order mark; save it without BOM")
        raw = raw[3:]
    lines = raw.split(b"\n")
    # A trailing newline (or several) is fine; blank lines *between* examples are not.
    last = len(lines)
    while last > 0 and not lines[last - 1].strip():
        last -= 1

    if last == 0:
        at(0)("<file>", "the file is empty (or only blank lines); expected one JSON example per line")
        raise TrainingFileError(path, problems)
    crlf = [n for n, ln in enumerate(lines[:last], start=1) if ln.endswith(b"\r")]
    if crlf:
        # Valid JSONL for some readers, not for every service; the suite never rewrites a user's file.
        at(crlf[0])("<line>", f"Windows line ending (CR LF) on {len(crlf)} line(s); save the file with LF "
                              f"(Unix) line endings")
    examples = n_messages = n_assistant = n_trained = total_tokens = max_example = 0
    for lineno, rawline in enumerate(lines[:last], start=1):
        problem = at(lineno)
        rawline = rawline.removesuffix(b"\r")
        try:
            text = rawline.decode("utf-8")
        except UnicodeDecodeError as e:
            problem("<line>", f"not valid UTF-8 (byte {rawline[e.start]:#04x} at column {e.start + 1})")
            examples += 1
            continue
        if not text.strip():
            problem("<line>", "empty line in the middle of the file")
            continue
        examples += 1
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            problem("<line>", f"invalid JSON: {e.msg} (column {e.colno})")
            continue
        n, a, t, texts = check_example(obj, problem)
        n_messages, n_assistant, n_trained = n_messages + n, n_assistant + a, n_trained + t
        tokens = sum(counter(s) for s in texts) + MESSAGE_OVERHEAD_TOKENS * n
        total_tokens += tokens
        max_example = max(max_example, tokens)
        if tokens > max_tokens:
            problem("messages", f"example is ~{tokens} tokens, over the limit of {max_tokens}")

    if examples < min_examples:
        at(0)("<file>", f"{examples} example(s), at least {min_examples} needed")
    if problems:
        raise TrainingFileError(path, problems)
    return ValidationReport(
        path=str(path),
        examples=examples,
        messages=n_messages,
        approx_tokens=total_tokens,
        max_example_tokens=max_example,
        assistant_turns=n_assistant,
        trained_assistant_turns=n_trained,
    )
