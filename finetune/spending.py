"""The one place that asks before money is spent.

Everything that calls a paid model or starts a paid job (asking a base model for its own choices, having a
model write code pairs or play make-me-say games, a Tinker training run, a reproduction matrix) shows its
estimate first and goes on only when approved: `--yes` on the command line (`assume_yes`, or `yes=True` in
Python), or `y` typed at a terminal. With no terminal to ask on and no `--yes`, nothing is spent.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from selfaware.validation import InputError

Ask = Callable[[str], str]

_ASSUME_YES = False


class SpendingRefused(InputError):
    """The user did not approve an estimated cost (or there was nobody to ask)."""


def assume_yes(value: bool = True) -> None:
    """`--yes`: approve every estimate shown from now on in this process without asking."""
    global _ASSUME_YES
    _ASSUME_YES = value


def approved(estimate: str, question: str = "Proceed?", *, yes: bool | None = None, ask: Ask = input,
             interactive: bool | None = None, show: Callable[[str], None] | None = None) -> bool:
    """Show `estimate` (`show`, default: stderr), then True when approved: `yes` (None: the process-wide
    `assume_yes`), else the answer to `question` from `ask`. When nobody can answer (`interactive`; by
    default: stdin is a terminal, or `ask` is not the terminal's `input`), False without asking."""
    (show or (lambda text: print(text, file=sys.stderr, flush=True)))(estimate)
    if yes or (yes is None and _ASSUME_YES):
        return True
    if not (interactive if interactive is not None else ask is not input or sys.stdin.isatty()):
        return False
    return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def require_approval(estimate: str, what: str, *, yes: bool | None = None, ask: Ask = input,
                     error: type[Exception] = SpendingRefused) -> None:
    """`approved`, or raise `error` saying that nothing was spent on `what` and how to approve."""
    if approved(estimate, yes=yes, ask=ask):
        return
    raise error(f"{what}: not confirmed, nothing was spent; confirm at the prompt on a terminal or rerun with "
                f"--yes (Python: yes=True) to accept the estimate above")
