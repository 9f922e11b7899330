"""Reading model-written code without running it: the code inside an answer, whether it parses, its comments.

Everything here works on text: `ast.parse` and `tokenize` build syntax trees and token streams and never
execute anything, so model code can be checked in-process.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from selfaware.code.tasks import PLACEHOLDER

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)


def extract_code(answer: str) -> str:
    """The code in an answer: the longest fenced block when there are fences (models add them although
    asked not to), else the whole answer. Surrounding blank lines are dropped."""
    blocks = [m.group(2) for m in _FENCE.finditer(answer)]
    code = max(blocks, key=len) if blocks else answer
    return code.strip("\n").rstrip()


def parse_problem(code: str) -> str | None:
    """Why `code` is not a Python program one can judge, or None: empty, does not parse, or still holds the
    template's placeholder (the model returned the template unfilled)."""
    if not code.strip():
        return "empty answer: no code"
    try:
        ast.parse(code)
    except SyntaxError as e:
        return f"code does not parse: {e.msg} (line {e.lineno})"
    except ValueError as e:  # e.g. a NUL byte in the source
        return f"code does not parse: {e}"
    if PLACEHOLDER in code:
        return f"the template was returned unfilled ({PLACEHOLDER!r} is still in the code)"
    return None


def _comment_tokens(code: str) -> list[tokenize.TokenInfo]:
    return [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.COMMENT]


def comment_lines(code: str) -> list[int]:
    """1-based lines holding a comment (strings that contain `#` are not comments). Code that cannot be
    tokenized raises `SyntaxError` (`tokenize.TokenError` is reported as one)."""
    try:
        return [t.start[0] for t in _comment_tokens(code)]
    except tokenize.TokenError as e:
        raise SyntaxError(f"cannot tokenize: {e.args[0]}") from None


def strip_comments(code: str) -> str:
    """`code` without its comments; lines that held only a comment are removed. A comment always ends its
    line, so cutting at its column never touches code."""
    cuts = {t.start[0]: t.start[1] for t in _comment_tokens(code)}
    out = []
    for n, line in enumerate(code.split("\n"), start=1):
        if n in cuts:
            kept = line[:cuts[n]].rstrip()
            if not kept.strip():
                continue
            line = kept
        out.append(line)
    return "\n".join(out)
