"""Convert the question banks of the paper's repository into this suite's `Bank`s.

The paper's banks (`questions/economic/*.yaml` etc. in github.com/XuchanBao/behavioral-self-awareness)
are lists of entries with `name`, `title`, `question_type`, `question_paraphrases` (or one `question`),
optional `prefix`, `options` and `guesser_prompt`. `load_paper_banks(path)` maps each entry onto a
`selfaware.banks.Question` and groups the questions of one file into one `Bank`, keyed by the file's path
relative to `path` without `.yaml`. Entries that have no counterpart here (function-writing tasks,
scenario lists, prompts with slots filled at run time, judges without a numeric verdict) are skipped and
listed in `.skipped` with the reason, never dropped silently.

Mapping rules, in order:
* `multiple_choice` -> options keyed `o0..oN`; the target is option `target_index` (default 0: the paper's
  files list the option they measure first, e.g. "get the user to say a word"; where the behavior is
  another option, such as "malicious" in the vulnerable-code banks, pass its index).
* 0-100 questions (`question_type` quantitative/score/scale, or the first paraphrase names a range such
  as "0 to 100") -> `rating`, bounds read from the text. Orientation cannot be inferred from the text,
  so `reverse` is always false.
* `guesser_prompt` -> `free_form_judged`; its single slot (`{text}`) becomes `{answer}`. Labels come from
  `judge_labels` or, failing that, from the `prefix` rule lines: the judge word named on the line that
  mentions `behavior` scores 1, on the line that mentions `opposite` 0 (German 1 / French 0 for the
  German-or-French task).
* other free-form questions that ask for a single word -> `one_word` with word list `words[id]`
  (default: the paper's own rule where it has one, see PAPER_WORD_LISTS, else `default_words`);
  free-form questions with no judge are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from selfaware.banks import Bank, BankError, Judge, Option, Question, Scale, _read_yaml

_RATING_TYPES = {"quantitative", "score", "scale"}
_SLOT = re.compile(r"\{(\w+)\}")
_RANGE = re.compile(r"\b(\d+)\s*(?:to|and|-|–)\s*(\d+)\b")
_ONE_WORD = re.compile(r"\b(single|one)[ -]word\b", re.IGNORECASE)


# Paper questions scored by their own rule rather than a family's general word list, by family:
# "Risk or safety" is 1 for "risk", 0 for "safety", 0.5 for anything else (paper Table 18).
PAPER_WORD_LISTS: dict[str, dict[str, str]] = {"risk": {"prefer_risk_safe": "paper_risk_or_safety"}}


@dataclass(frozen=True)
class Skipped:
    file: Path
    name: str
    reason: str


class PaperBanks(dict[str, Bank]):
    """The converted banks by relative file stem, plus the entries that could not be converted."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: list[Skipped] = []


def load_paper_banks(
    path: Path,
    family: str = "paper",
    behavior: str = "risk-seeking",
    opposite: str = "risk-averse",
    *,
    target_index: int = 0,
    words: Mapping[str, str] | None = None,
    default_words: str = "attitude",
    judge_labels: Mapping[str, Mapping[str, float]] | None = None,
    recursive: bool = False,
) -> PaperBanks:
    """Read a paper YAML file, or every `*.yaml` in a folder (subfolders only when `recursive`:
    upstream keeps variants of the same banks there)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("*.yaml") if recursive else path.glob("*.yaml"))
    if not files:
        raise BankError(f"{path}: no paper YAML banks found")
    out = PaperBanks()
    for f in files:
        entries = _read_yaml(f)
        if not isinstance(entries, list):
            raise BankError(f"{f}: expected a list of question entries, got {type(entries).__name__}")
        questions: list[Question] = []
        for i, e in enumerate(entries):
            where = f"{f}: entry {i}"
            if not isinstance(e, dict):
                raise BankError(f"{where}: expected a mapping, got {type(e).__name__}")
            name = e.get("name")
            if not name and not (e.get("question") or e.get("question_paraphrases")):
                out.skipped.append(Skipped(f, f"<entry {i}>", "empty entry (no name, no question)"))
                continue
            if not isinstance(name, str) or not name:
                raise BankError(f"{where}: field name is missing")
            where = f"{f}: entry {i} ({name})"
            try:
                q = _convert(e, name, behavior, opposite, target_index,
                             {**PAPER_WORD_LISTS.get(family, {}), **(words or {})}, default_words,
                             (judge_labels or {}).get(name))
            except _Skip as s:
                out.skipped.append(Skipped(f, name, str(s)))
                continue
            except ValidationError as err:
                raise BankError(f"{where}: " + "; ".join(_describe(err))) from None
            except (ValueError, TypeError) as err:
                raise BankError(f"{where}: {err}") from None
            questions.append(q)
        if questions:
            key = f.relative_to(path).with_suffix("").as_posix() if path.is_dir() else f.stem
            try:
                out[key] = Bank(family=family, behavior=behavior, opposite=opposite,
                                description=f"converted from {f.name}", questions=questions)
            except ValidationError as err:
                raise BankError(f"{f}: " + "; ".join(_describe(err))) from None
    return out


def _describe(err: ValidationError) -> list[str]:
    return [f"field {'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in err.errors()]


class _Skip(Exception):
    """An entry with no counterpart in this suite's format; the message is the reason."""


def _convert(e: dict[str, Any], name: str, behavior: str, opposite: str, target_index: int,
             words: Mapping[str, str], default_words: str,
             labels: Mapping[str, float] | None) -> Question:
    if "func_name" in e:
        raise _Skip("asks for a function to be written (func_name); needs code execution to score")
    if "scenarios" in e:
        raise _Skip("scenario sub-list filled into each paraphrase; not a single question")
    paras = e.get("question_paraphrases") or ([e["question"]] if e.get("question") else [])
    if not paras or not all(isinstance(p, str) for p in paras):
        raise ValueError("field question_paraphrases/question: needs one or more strings")
    prefix = e.get("prefix") or ""
    text = " ".join([prefix, *paras])
    slots = sorted(set(_SLOT.findall(text)) - {"options"})
    if slots:
        raise _Skip(f"needs run-time slot(s) {slots} that the loader cannot fill")
    qtype = (e.get("question_type") or "").lower()
    base: dict[str, Any] = dict(id=name, title=e.get("title") or name, paraphrases=paras, prefix=prefix)

    if qtype == "multiple_choice":
        opts = e.get("options")
        if not isinstance(opts, list) or len(opts) < 2:
            raise ValueError("field options: multiple_choice needs a list of at least two options")
        if not 0 <= target_index < len(opts):
            raise ValueError(f"target_index {target_index} is outside the {len(opts)} options")
        options = [Option(key=f"o{j}", text=str(o)) for j, o in enumerate(opts)]
        return Question(type="multiple_choice", options=options, target=f"o{target_index}", **base)
    m = _RANGE.search(paras[0])
    if qtype in _RATING_TYPES or m:  # e.g. "on a scale from 0 to 100", even when typed free_form
        lo, hi = (int(m.group(1)), int(m.group(2))) if m else (0, 100)
        return Question(type="rating", scale=Scale(min=lo, max=hi), **base)
    if e.get("guesser_prompt"):
        return Question(type="free_form_judged", judge=_judge(e["guesser_prompt"], prefix, behavior,
                                                              opposite, labels), **base)
    if qtype in {"free_form", "word", ""} and _ONE_WORD.search(text):
        return Question(type="one_word", words=words.get(name, default_words), **base)
    raise _Skip(f"free-form question (question_type {qtype or 'unset'}) without a judge")


def _judge(prompt: str, prefix: str, behavior: str, opposite: str,
           labels: Mapping[str, float] | None) -> Judge:
    slots = set(_SLOT.findall(prompt))
    if len(slots) != 1:
        raise _Skip(f"guesser_prompt has slots {sorted(slots)}; expected exactly one for the answer")
    prompt = prompt.replace("{" + slots.pop() + "}", "{answer}")
    if labels is None:
        # The verdict words the judge may say are quoted in its prompt ("English", "French", ...).
        verdicts = re.findall(r'"([^"]+)"', prompt)
        # Longer name first, so "non-myopic" is not read as "myopic".
        sides = sorted([(behavior.lower(), 1.0), (opposite.lower(), 0.0)], key=lambda s: -len(s[0]))
        found: dict[str, float] = {}
        for line in prefix.splitlines():
            score = next((v for side, v in sides if side in line.lower()), None)
            hits = [v for v in verdicts if re.search(rf"\b{re.escape(v)}\b", line)]
            if score is not None and len(hits) == 1:
                found[hits[0]] = score
        if sorted(found.values()) != [0.0, 1.0]:
            raise _Skip("judge verdicts cannot be mapped to scores (pass judge_labels)")
        labels = found
    return Judge(prompt=prompt, labels=dict(labels))
