"""Inspect's entry point into the suite: registers every task file of `evals/` (addressable as
`selfaware/<task>` in an installed copy), the `bwrap` sandbox provider and the `tinker/` model provider.

It is also where the offline token-count fallback is installed, since it is the one module Inspect loads
before any run: see `selfaware.offline` for why, and for what it changes (nothing when tiktoken works).
"""

import importlib
import pkgutil

from selfaware import evals as _evals
from selfaware.offline import install_token_count_fallback
from selfaware.sandbox import environment as _bwrap_sandbox  # noqa: F401  (registers sandbox="bwrap")
from selfaware.providers import tinker as _tinker_provider  # noqa: F401  (registers model provider tinker/)

install_token_count_fallback()

for _module in pkgutil.iter_modules(_evals.__path__):
    if not _module.name.startswith("_"):
        _tasks = importlib.import_module(f"{_evals.__name__}.{_module.name}")
        globals().update({k: v for k, v in vars(_tasks).items() if getattr(v, "__registry_info__", None)})
