"""Secrets stay secret: one scrubber for everything the suite writes (registry, job logs, errors, reports,
published results).

Two nets: the exact values of secret-looking environment variables (`*_API_KEY`, `*_TOKEN`, `*_SECRET`),
whatever their shape, and well-known key prefixes for keys the environment does not hold.
"""

from __future__ import annotations

import os
import re
from typing import Any

_SECRET_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),  # OpenAI / Anthropic style (sk-..., sk-proj-..., sk-ant-...)
    re.compile(r"\btgp_v1_[A-Za-z0-9_\-]{6,}"),  # Together
    re.compile(r"\btml-[A-Za-z0-9_\-]{6,}"),  # Tinker
    re.compile(r"\bhf_[A-Za-z0-9]{10,}"),  # Hugging Face
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)\b(api[_-]?key|token|secret|authorization)(\s*[=:]\s*)['\"]?[^\s'\",}]{6,}"),
]
_SECRET_ENV = re.compile(r"(API_KEY|TOKEN|SECRET)$")
REDACTED = "[REDACTED]"


def scrub(text: str) -> str:
    """Replace anything that looks like a credential with `[REDACTED]`.

    Two nets: the exact values of secret-looking environment variables (`*_API_KEY`, `*_TOKEN`,
    `*_SECRET`), whatever their shape, and well-known key prefixes for keys the environment does not hold.
    """
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8 and value in text:
            text = text.replace(value, REDACTED)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def scrub_deep(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub_deep(v) for k, v in value.items()}
    return value
