"""Errors about a user's input that a person can read: one line per problem, naming file, line and field.

`InputError` is what every loader raises for a malformed file or parameter. It subclasses Inspect's
`PrerequisiteError`, which `inspect eval` prints as a message without a traceback, so a bad `-T` value
or bank reaches the user as a few readable lines instead of 140 lines of stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.markup import escape

try:
    # Private in Inspect, but it is the only hook its CLI offers for "print the message, not the stack".
    from inspect_ai._util.error import PrerequisiteError as _InspectPlainError
except ImportError:  # an Inspect release that moved it: errors still carry the message, with a traceback
    class _InspectPlainError(Exception):  # type: ignore[no-redef]
        pass


class InputError(_InspectPlainError, ValueError):
    """A user's file or parameter is malformed; the message names the file, line and field."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        # Inspect prints `.message` through rich markup: escape it so "[...]" in a value prints as written.
        self.message = escape(message)

    def __str__(self) -> str:
        return str(self.args[0])


def where(path: Path | str, line: int | None = None) -> str:
    """`file:line` (or just `file` when the line is unknown), the prefix of every input error."""
    return f"{path}:{line}" if line else str(path)


def decode_utf8(data: bytes, path: Path | str) -> str:
    """UTF-8 text of a user's file; a bad byte is reported with its line and column, never as a bare codec error."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputError(f"{where(path, line)}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {column}); "
                         f"save the file as UTF-8") from None


def read_user_text(path: Path | str) -> str:
    """A user's text file, with a missing file or a bad encoding reported by name and line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (looked in {path.resolve().parent})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a file") from None
    return decode_utf8(data, path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice in one mapping is an error: PyYAML keeps the last
    value silently, so `behavior: risky` above `behavior: safe` would train the wrong organism."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first on line {first})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def load_yaml_text(text: str, path: Path | str) -> Any:
    """Parse YAML; a syntax error or a repeated key names the file and the line where the parser stopped."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{where(path, line)}: not valid YAML: {problem}") from None


def yaml_line(text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the YAML node at `loc` (keys and list indices), or of its nearest existing parent."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for key in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    child = v
                    line = k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            child = node.value[key]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def field_name(loc: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def describe_validation_error(headline: str, err: ValidationError, path: Path | str | None = None,
                              text: str | None = None) -> str:
    """One line per problem. With `path` and the file's `text`, each line reads `file:line: field x.y: why`."""
    if path is None:
        lines = [headline]
        for e in err.errors():
            lines.append(f"  field {field_name(e['loc'])}: {e['msg']}")
        return "\n".join(lines)
    out = []
    for e in err.errors():
        # An empty document has no node to point at: its problem is on line 1.
        line = (yaml_line(text, e["loc"]) or 1) if text is not None else None
        out.append(f"{where(path, line)}: field {field_name(e['loc'])}: {e['msg']}")
    return "\n".join(out)
