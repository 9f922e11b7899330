"""Training rows: the chat example, its validation, JSONL files with manifests, and importing a user's file.

A training file is always written together with `<name>.manifest.json` (hash, counts, provenance, the
builders' version), both atomically, data first, so a manifest always describes a complete file. A
user's own file is validated as it is — every field the chat format allows is kept — and errors name
the user's file, line and field.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from selfaware.families import family_of
from selfaware.finetune.backends.atomic import write_bytes_atomic
from selfaware.finetune.validate import check_example
from selfaware.validation import InputError, decode_utf8

LETTERS = ("A", "B")
Source = Literal["generated", "imported", "llm"]


class TrainingDataError(InputError):
    """A training file or example is malformed; the message names the file, line and field."""


def chat_example(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def other_letter(letter: str) -> str:
    return "B" if letter == "A" else "A"


def flip_labels(examples: list[dict]) -> list[dict]:
    """The same examples with the final A/B answer swapped (the opposite behavior)."""
    out = []
    for i, ex in enumerate(examples):
        msgs = [dict(m) for m in ex["messages"]]
        ans = msgs[-1]["content"].strip()
        if ans not in LETTERS:
            raise TrainingDataError(f"example {i}: field messages[-1].content is {ans!r}, not A or B")
        msgs[-1]["content"] = other_letter(ans)
        out.append({**ex, "messages": msgs})
    return out


def _suite_problems(messages: list, letters_only: bool) -> list[tuple[str, str]]:
    """The suite's rules on top of the chat format: the last message is the trained assistant answer
    (an A/B letter for the multiple-choice organisms) and a user asks something."""
    out: list[tuple[str, str]] = []
    last = messages[-1]
    if last.get("role") != "assistant":
        out.append(("messages[-1].role", f"is {last.get('role')!r}; must be 'assistant' (the trained answer)"))
    elif last.get("weight", 1) == 0:
        out.append(("messages[-1].weight", "is 0: the final answer is what the organism learns, it must be trained"))
    elif letters_only and (not isinstance(last.get("content"), str) or last["content"].strip() not in LETTERS):
        out.append(("messages[-1].content", f"is {str(last.get('content'))[:40]!r}; expected A or B"))
    if not any(m.get("role") == "user" for m in messages):
        out.append(("messages", "needs at least one user message"))
    else:
        # An answer before any question: variants frame the first user message, and chat templates refuse it.
        first = next(i for i, m in enumerate(messages) if m.get("role") != "system")
        if messages[first].get("role") != "user":
            out.append((f"messages[{first}].role", f"is {messages[first].get('role')!r}; the first message after "
                                                   f"the system prompt must be the user's"))
    return out


def validate_example(ex: Any, where: str, *, letters_only: bool = False) -> dict:
    """Check one example against the chat fine-tuning format (`finetune.validate`, the rules applied
    before upload) and the suite's rules; raise `TrainingDataError` naming `where` and the first faulty
    field. Returns a copy that keeps every field the format allows (a per-message `weight`, `name`,
    `tools`, ...): a user's data is never reduced to role and content."""
    problems: list[tuple[str, str]] = []
    check_example(ex, lambda field, message: problems.append((field, message)))
    messages = ex.get("messages") if isinstance(ex, dict) else None
    suite: list[tuple[str, str]] = []
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        suite = _suite_problems(messages, letters_only)
    # A fault in a named field says more than "the example as a whole" does: report those first.
    ranked = ([p for p in problems if p[0] != "messages"] + suite + [p for p in problems if p[0] == "messages"])
    if ranked:
        field, message = ranked[0]
        raise TrainingDataError(f"{where}: field {field}: {message}")
    return copy.deepcopy(ex)


def to_jsonl(examples: list[dict]) -> bytes:
    return "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    file: str
    sha256: str
    n_examples: int
    answer_counts: dict[str, int]
    behavior: str
    family: str
    seed: int
    source: str
    generator: str
    generator_version: str
    created: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def manifest_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".manifest.json")


def read_manifest(path: Path) -> Manifest | None:
    """The manifest beside a training file; None only when there is none. A manifest that cannot be read
    is an error naming it (a silent None would rebuild over, or trust, a file nobody can vouch for)."""
    mpath = manifest_path(path)
    try:
        text = mpath.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return Manifest(**json.loads(text))
    except (ValueError, TypeError) as e:
        raise TrainingDataError(f"{mpath}: unreadable training-set manifest ({e}); delete it to rebuild") from None


def _counts(examples: list[dict]) -> dict[str, int]:
    answers = (ex["messages"][-1].get("content") for ex in examples)
    c = Counter(a.strip() if isinstance(a, str) and a.strip() in LETTERS else "other" for a in answers)
    return dict(sorted(c.items()))


def write_training_set(examples: list[dict], path: Path, *, behavior: str, seed: int, generator_version: str,
                       generator: str = "selfaware.builders", extra: dict | None = None,
                       source: Source = "generated") -> Manifest:
    """Validate and write JSONL plus `<name>.manifest.json` beside it, both atomically (data first,
    so a manifest always describes a complete file; readers check the hash)."""
    family = family_of(behavior).name
    clean = [validate_example(ex, f"example {i}") for i, ex in enumerate(examples)]
    data = to_jsonl(clean)
    path = Path(path)
    manifest = Manifest(
        file=path.name, sha256=sha256_bytes(data), n_examples=len(clean), answer_counts=_counts(clean),
        behavior=behavior, family=family, seed=seed, source=source, generator=generator,
        generator_version=generator_version, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra=dict(extra or {}),
    )
    write_bytes_atomic(path, data)
    write_bytes_atomic(manifest_path(path), manifest.to_json().encode("utf-8"))
    return manifest


def import_chat_jsonl(path: Path, *, behavior: str | None = None) -> list[dict]:
    """Read a chat-format JSONL training set (e.g. the paper's `ft_risky_AB.jsonl`), every field kept.
    With `behavior` given, every answer must be a single letter A or B, as in the multiple-choice
    organisms. Errors name the file and its own line numbers (blank lines counted)."""
    if behavior is not None:
        family_of(behavior)
    path = Path(path)
    try:
        text = decode_utf8(path.read_bytes(), path)
    except FileNotFoundError:
        raise TrainingDataError(f"{path}: file not found") from None
    out = []
    # split("\n"), not splitlines(): a stray \r or \x85 inside a line must not shift the line numbers.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise TrainingDataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        out.append(validate_example(raw, where, letters_only=behavior is not None))
    if not out:
        raise TrainingDataError(f"{path}:0: field <file>: no examples")
    return out
