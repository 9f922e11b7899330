"""The one atomic file writer of the registry and the backends: a reader sees the old file or the new one,
never half of one, and a crash never leaves a truncated registry or job record."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename over `path`, then fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (best effort: not every filesystem allows fsync on a folder).
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_json_atomic(path: Path | str, payload: Any, *, sort_keys: bool = False) -> None:
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))
