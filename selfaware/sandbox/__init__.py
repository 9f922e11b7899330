"""Isolating sandbox for model-written code: the `bwrap` Inspect sandbox provider and a runner.

Importing this package registers the provider with Inspect (the `selfaware` entry point imports it),
so any task can say `sandbox="bwrap"` or be run with `--sandbox bwrap`. See docs/sandbox.md.
"""

from .bwrap import BwrapUnavailableError
from .config import BwrapSandboxConfig, load_config
from .environment import BwrapSandboxEnvironment
from .python_runner import Outcome, PythonRunResult, run_python_function

__all__ = [
    "BwrapSandboxConfig",
    "BwrapSandboxEnvironment",
    "BwrapUnavailableError",
    "Outcome",
    "PythonRunResult",
    "load_config",
    "run_python_function",
]
