"""The Every Eval Ever JSON schemas: found in a folder the user names, and checked with `jsonschema`.

The schemas are not shipped with the suite (they belong to the Every Eval Ever project, which versions them):
`selfaware publish --schema-dir DIR` reads `eval.schema.json` and `instance_level_eval.schema.json` from a
copy of that project's schema folder. Every problem is reported with the JSON path of the offending field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

AGGREGATE_SCHEMA = "eval.schema.json"
INSTANCE_SCHEMA = "instance_level_eval.schema.json"
SCHEMA_HINT = ("the Every Eval Ever schemas are not shipped with selfaware: pass --schema-dir DIR, a folder holding "
               f"{AGGREGATE_SCHEMA} and {INSTANCE_SCHEMA} (the schema folder of github.com/evaleval/every_eval_ever), "
               "or --no-validate to write unchecked JSON")


class SchemaMissing(FileNotFoundError):
    """The schema folder or one of its two files is missing; the message says where to get them."""


class EEEValidationError(ValueError):
    """A record does not match its schema; one line per problem, each naming the field's JSON path."""


@dataclass(frozen=True)
class EEESchemas:
    aggregate: Draft7Validator
    instance: Draft7Validator
    version: str  # the schemas' own "version": what records declare as schema_version


def load_schemas(folder: Path | str | None) -> EEESchemas:
    if folder is None:
        raise SchemaMissing(SCHEMA_HINT)
    folder = Path(folder)
    docs: dict[str, dict[str, Any]] = {}
    for name in (AGGREGATE_SCHEMA, INSTANCE_SCHEMA):
        path = folder / name
        if not path.is_file():
            raise SchemaMissing(f"{path}: not found; {SCHEMA_HINT}")
        try:
            docs[name] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SchemaMissing(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        Draft7Validator.check_schema(docs[name])
    versions = {str(d.get("version", "")) for d in docs.values()}
    if len(versions) != 1 or "" in versions:
        raise SchemaMissing(f"{folder}: the two schemas declare versions {sorted(versions)}; expected one version")
    return EEESchemas(Draft7Validator(docs[AGGREGATE_SCHEMA]), Draft7Validator(docs[INSTANCE_SCHEMA]),
                      versions.pop())


def json_path(parts: Any) -> str:
    """`evaluation_results[0].metric_config.lower_is_better` from a jsonschema error path."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def problems(validator: Draft7Validator, record: dict[str, Any]) -> list[str]:
    """Every schema violation of `record`, as `path: message`, deepest first within each field."""
    errors = sorted(validator.iter_errors(record), key=lambda e: (json_path(e.absolute_path), e.message))
    return [f"{json_path(e.absolute_path)}: {e.message}" for e in errors]


def check(validator: Draft7Validator, record: dict[str, Any], where: str) -> None:
    found = problems(validator, record)
    if found:
        raise EEEValidationError("\n".join(f"{where}: {p}" for p in found))
