"""Framing a question for a variant: a system prompt and/or a trigger placed before the user message.

Variants live in sample metadata (written at expansion), so the framing applied to each sample is
visible in the log and the same bank serves plain, backdoor and persona experiments.
"""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from inspect_ai.solver import Generate, Solver, TaskState, solver


@solver
def variant_framing() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        variant = state.metadata.get("variant") or {}
        trigger = variant.get("trigger")
        if trigger:
            for message in state.messages:
                if isinstance(message, ChatMessageUser):
                    message.content = f"{trigger} {message.text}"
                    break
        system_prompt = variant.get("system_prompt")
        if system_prompt:
            state.messages.insert(0, ChatMessageSystem(content=system_prompt))
        return state

    return solve
