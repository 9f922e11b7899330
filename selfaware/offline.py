"""Keep Inspect usable without network access.

Inspect estimates token counts with tiktoken's o200k_base encoding, which tiktoken downloads on first
use. On an offline machine (CI, air-gapped clusters) that download fails and `mockllm/model` runs crash
while filling in token usage. We fall back to a character-based estimate only when the encoding cannot
be loaded; with network access or a warm tiktoken cache nothing changes.
"""

from __future__ import annotations

import logging
from functools import lru_cache

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _tiktoken_available() -> bool:
    try:
        import tiktoken

        tiktoken.get_encoding("o200k_base")
        return True
    except Exception as e:  # network errors surface as several exception types
        logger.warning("tiktoken o200k_base unavailable (%s); estimating token counts as chars/4", type(e).__name__)
        return False


def _estimate(text: str) -> int:
    return max(1, int(len(text) / 4 * 1.1))


def install_token_count_fallback() -> None:
    try:
        from inspect_ai.model import _model
    except ImportError:  # pragma: no cover - inspect internals moved; nothing to patch
        return
    original = getattr(_model, "count_text_tokens", None)
    if original is None or getattr(original, "_selfaware_fallback", False):
        return

    def count_text_tokens(text: str) -> int:
        return original(text) if _tiktoken_available() else _estimate(text)

    count_text_tokens._selfaware_fallback = True  # type: ignore[attr-defined]
    _model.count_text_tokens = count_text_tokens
