"""Readable pydantic validation errors: one line per problem, naming the field path."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(headline: str, err: ValidationError) -> str:
    lines = [headline]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  field {loc}: {e['msg']}")
    return "\n".join(lines)
