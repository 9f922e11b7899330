"""Inspect entry point: makes the tasks addressable as `selfaware/<task>` in an installed copy."""

from selfaware.evals.apples import *  # noqa: F401,F403
from selfaware.evals.myopia import *  # noqa: F401,F403
from selfaware.evals.risk import *  # noqa: F401,F403
from selfaware.sandbox import environment as _bwrap_sandbox  # noqa: F401  (registers sandbox="bwrap")
