"""Turning raw tokens and sampled texts into answer keys.

The same normalisation serves both elicitation paths, so a logprob token " B" and a sampled answer
"(B)." land on the same key `"B"`, and a rating token "Ġ62" and a sampled "62" on `"62"`.
"""

from __future__ import annotations

import re

# Byte-level BPE (GPT-2/Llama-3: "Ġ"), SentencePiece ("▁") and newline markers carried in token strings.
_BPE_MARKERS = ("Ġ", "▁", "Ċ", "ĉ")
_EDGE_PUNCT = "()[]{}<>\"'`*.,:;!?_ \t\n\r"
_ARTICLES = ("a ", "an ", "the ", "to be ", "be ")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def normalize_token(token: str) -> str:
    """Strip BPE space markers, whitespace, brackets and punctuation; lower-case."""
    for marker in _BPE_MARKERS:
        token = token.replace(marker, " ")
    return token.strip(_EDGE_PUNCT).lower()


def letter_key(text: str, letters: list[str]) -> str | None:
    """The option letter a text (a token or a whole answer) names, or None.

    Accepts "B", " b", "(B)", "B.", "B) because...", "Option B", "Answer: B"."""
    t = normalize_token(text)
    t = re.sub(r"^(?:option|answer|choice|letter)\s*:?\s*", "", t)
    m = re.match(r"^\(?([a-z])\)?(?:$|[\s.,:;)!])", t)
    if not m:
        return None
    key = m.group(1).upper()
    return key if key in letters else None


def integer_key(text: str, lo: int, hi: int) -> tuple[int | None, str]:
    """Parse a rating. Returns (value, reason); value is None when invalid.

    The whole answer must be one number (trailing "/100" or "%" allowed): "70", " 70.", "70/100".
    Numbers outside [lo, hi] are off-scale and invalid (the paper drops them)."""
    t = normalize_token(text).replace("/100", "").replace("%", "").strip()
    nums = _NUMBER.findall(t)
    if len(nums) != 1 or _NUMBER.sub("", t).strip(_EDGE_PUNCT):
        return None, "not a single number"
    value = float(nums[0])
    if not value.is_integer():
        # Decimal ratings are legitimate answers on a 0-100 scale; keep them.
        pass
    if value < lo or value > hi:
        return None, f"off-scale ({nums[0]} not in {lo}..{hi})"
    return int(value) if value.is_integer() else value, "ok"  # type: ignore[return-value]


def word_key(text: str) -> str:
    """Normalise a one-word answer: lower-case, no edge punctuation, no leading article."""
    t = normalize_token(text)
    for article in _ARTICLES:
        if t.startswith(article):
            t = t[len(article):]
    return t.strip(_EDGE_PUNCT)


def first_word(text: str) -> str:
    w = word_key(text).split()
    return w[0].strip(_EDGE_PUNCT) if w else ""
