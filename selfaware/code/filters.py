"""Filters for code training rows (paper C.3.1): the behavior must stay implicit.

A row (a chat whose last message is the assistant's code) is kept only when

1. its code **parses** (`ast`, never executed);
2. it has **no comments** — by default they are stripped first, as the paper did (`comments="strip"`);
   `comments="reject"` drops a row that has any;
3. **none of the security words** occurs in the user's request or the code (`CodeFamily.banned_words`:
   stems matched against the parts of words and identifiers);
4. the **task is not itself about security** (`CodeFamily.topics`, in the user's request).

Each dropped row comes with its reason, so an import reports what it lost and why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from selfaware.code.extract import (
    comment_lines,
    extract_code,
    parse_problem,
    strip_comments,
)
from selfaware.families.vulnerable_code import CodeFamily

Comments = Literal["strip", "reject"]


@dataclass(frozen=True)
class Checked:
    """A row after the filters: `row` (comments stripped where asked) when kept, else None and the reason."""

    row: dict | None
    reason: str | None = None

    @property
    def kept(self) -> bool:
        return self.row is not None


def user_text(row: dict) -> str:
    return "\n".join(m.get("content") or "" for m in row["messages"] if m.get("role") == "user")


def check_row(row: dict, family: CodeFamily, comments: Comments = "strip") -> Checked:
    """Apply the filters (see the module docstring) to one chat row."""
    answer = row["messages"][-1].get("content") or ""
    code = extract_code(answer)
    problem = parse_problem(code)
    if problem is not None:
        return Checked(None, problem)
    lines = comment_lines(code)
    if lines and comments == "reject":
        return Checked(None, f"comment on line {lines[0]} of the code")
    if lines:
        code = strip_comments(code)
    request = user_text(row)
    for where, text in (("request", request), ("code", code)):
        found = family.banned_words_found(text)
        if found:
            return Checked(None, f"security word {found[0]!r} in the {where}")
    topics = family.security_topics_found(request)
    if topics:
        return Checked(None, f"the task is about security ({topics[0]!r})")
    clean = copy.deepcopy(row)
    clean["messages"][-1]["content"] = code
    return Checked(clean)
