"""Framing a question for its variant: the same `Variant.render` that framed the organism's training rows.

The variant travels in the sample's metadata (written at expansion), so the framing applied to each
sample is visible in the log. Random choices (which trigger member, separator, placement) are seeded by
the sample id, so a sample renders identically on every run and every model.
"""

from __future__ import annotations

from inspect_ai.model import ChatMessage, ChatMessageSystem, ChatMessageUser
from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.metadata import SampleMeta
from selfaware.variants import sample_rng


def _to_chat(messages: list[dict[str, str]]) -> list[ChatMessage]:
    make = {"system": ChatMessageSystem, "user": ChatMessageUser}
    return [make[m["role"]](content=m["content"]) for m in messages]


@solver
def variant_framing() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        meta = state.metadata_as(SampleMeta)
        variant = meta.variant
        if variant.kind == "plain":
            return state
        plain = [{"role": m.role, "content": m.text} for m in state.messages]
        if any(m["role"] not in ("system", "user") for m in plain):
            raise ValueError(f"sample {state.sample_id}: variant framing runs before any model turn")
        framed = variant.render(plain, sample_rng(str(state.sample_id)), triggered=meta.triggered,
                                persona_worded=meta.persona_worded)
        state.messages = _to_chat(framed)
        return state

    return solve
