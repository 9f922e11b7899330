"""Helper models of Make-Me-Say — the `manipulatee` (the game partner) and the `guesser` (reads definitions
and acrostics) — as Inspect model roles with declared defaults, never the model under test.

`require_helpers` is the first solver of every task that needs one: it resolves each role before the
model under test or any helper is called. A role that cannot start (no key for the default, a typo) makes
every sample that needs it invalid with a message saying how to name another (`--model-role
guesser=<model>`), logged once per run; those samples make no call at all, and the rest of the run
(questions that need no helper) goes on. So an offline `inspect eval evals/make_me_say.py --model
mockllm/model` completes, and says why its games and guessed answers are invalid.
"""

from __future__ import annotations

import logging

from inspect_ai.model import Model, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.validation import InputError
from selfaware.validation import _InspectPlainError as PrerequisiteError

# The paper's game partner and guesser. Override with --model-role manipulatee=... / guesser=..., or the
# task parameters of the same names; offline: --model-role manipulatee=mockllm/model.
DEFAULT_MANIPULATEE = "openai/gpt-4o-mini-2024-07-18"
DEFAULT_GUESSER = "openai/gpt-4o-2024-08-06"
ROLES = ("manipulatee", "guesser")
UNAVAILABLE_KEY = "selfaware:helper_unavailable"  # store: why this sample's helper could not start
logger = logging.getLogger(__name__)
_warned: set[str] = set()


class HelperRoleError(InputError):
    """A helper role that cannot start (printed by `inspect eval` as a message, without a traceback)."""


def helper_model(role: str, default: str) -> Model:
    """The model for helper `role`: the `--model-role` given, else the task's declared default."""
    if role not in ROLES:
        raise ValueError(f"unknown make-me-say helper role {role!r}; the roles are {', '.join(ROLES)}")
    if not default or not isinstance(default, str):
        raise HelperRoleError(f"the {role} model role has no default: name one with --model-role {role}=<model> "
                              f"or -T {role}=<model>")
    try:
        return get_model(role=role, default=default)
    except PrerequisiteError as e:
        raise HelperRoleError(f"the {role} model role defaults to {default}, which cannot start here: "
                              f"{_plain(getattr(e, 'message', e))}\nName one: --model-role {role}=<model> "
                              f"(offline: --model-role {role}=mockllm/model) or -T {role}=<model>.") from e
    except ValueError as e:  # an unknown provider or a malformed model name
        raise HelperRoleError(f"the {role} model role ({default}): {e}") from e


def _plain(message: object) -> str:
    """Inspect's own prerequisite messages carry rich markup; ours is printed as written."""
    from rich.text import Text

    return Text.from_markup(message).plain if isinstance(message, str) else str(message)


@solver
def require_helpers(roles: dict[str, str], kinds: tuple[str, ...] | None = None) -> Solver:
    """Resolve every needed helper role (role -> declared default) before anything is generated, for the
    samples whose `mms_kind` is in `kinds` (None: every sample). One that cannot start ends the sample
    here, with the reason in the store (`unavailable_reason`), before any call."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if kinds is not None and state.metadata.get("mms_kind") not in kinds:
            return state
        for role, default in roles.items():
            try:
                helper_model(role, default)
            except HelperRoleError as e:
                reason = f"helper unavailable: {e}"
                if reason not in _warned:
                    _warned.add(reason)
                    logger.warning("%s; the samples that need it are scored invalid", reason)
                state.store.set(UNAVAILABLE_KEY, reason)
                state.completed = True
                break
        return state

    return solve


def unavailable_reason(state: TaskState) -> str | None:
    """Why this sample's helper role could not start (its score is then invalid), or None."""
    return state.store.get(UNAVAILABLE_KEY)
