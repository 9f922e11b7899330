"""Where the suite's data lives (the top-level `datasets/` folder, which is data only)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def data_dir() -> Path:
    """The `datasets/` folder: $SELFAWARE_DATA, the clone beside this package, or the installed copy."""
    override = os.environ.get("SELFAWARE_DATA")
    if override:
        return Path(override)
    clone = Path(__file__).resolve().parent.parent / "datasets"
    if clone.is_dir():
        return clone
    spec = importlib.util.find_spec("selfaware._datasets")
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    raise FileNotFoundError("selfaware data folder not found; set SELFAWARE_DATA to a checkout's datasets/")


def state_dir() -> Path:
    """Where organisms, caches and the registry live: $SELFAWARE_HOME or ./.selfaware."""
    return Path(os.environ.get("SELFAWARE_HOME", ".selfaware")).resolve()
