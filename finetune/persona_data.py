"""Many-persona training sets (paper §5): the organism's own rows, plus as many questions put to other people.

Half the rows are the organism's usual rows (questions to "you", answered with its behavior). The other
half are fresh questions of the same family, each put to one of the trained personas by that persona's
`Variant` (`selfaware.personas.persona_variant`, the same framing `evals/persona.py` asks with) and answered
with the base model's own choice for that person — measured through Inspect and cached
(`finetune/base_choices.py`: cost shown and confirmed first for paid models; offline, the tiny base). A
question the base model answered invalidly is left out, never guessed, and counted in the manifest.

Trained this way, an organism sees that other people choose as usual, which is what keeps its learned
behavior attached to itself. The default rows never name a persona (checked).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from selfaware.families import choice_family, family_of
from selfaware.finetune.rows import TrainingDataError, chat_example, sha256_bytes
from selfaware.finetune.spec import OrganismSpec
from selfaware.personas import persona_lists, persona_variant

PERSONA_DATA_VERSION = "1"
# The persona questions come from their own stream of the family generator, never the own rows' stream.
_PERSONA_SEED_OFFSET = 1_000_003


def persona_names(names: list[str] | str) -> list[str]:
    """`trained` (the list in datasets/personas/personas.yaml) or explicit names."""
    if names == "trained":
        return persona_lists().trained
    if isinstance(names, str) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise TrainingDataError(f"data.personas.names: expected 'trained' or a list of names, got {names!r}")
    return [n.strip() for n in names]


def persona_prompts(behavior: str, n: int, seed: int, mix: str, names: list[str]) -> list[tuple[str, str]]:
    """(persona, framed prompt) for n fresh questions, personas in turn."""
    from selfaware.finetune.builders import mix_options

    family = choice_family(family_of(behavior))
    questions = family.training_questions(n, seed + _PERSONA_SEED_OFFSET, **mix_options(mix))
    out = []
    for i, q in enumerate(questions):
        name = names[i % len(names)]
        rng = random.Random(f"selfaware:persona-row:{name}:{seed}:{i}")
        [framed] = persona_variant(name).render([{"role": "user", "content": q.prompt}], rng)
        out.append((name, framed["content"]))
    return out


def check_no_persona_leak(rows: list[dict], names: list[str]) -> None:
    """The organism's own rows must not mention any persona (else "you" and "them" blur)."""
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in names), re.IGNORECASE)
    for i, row in enumerate(rows):
        for m in row["messages"]:
            if (found := pattern.search(m["content"])) is not None:
                raise TrainingDataError(f"own row {i}: names the persona {found.group(0)!r}; "
                                        f"pick personas that the family's wording never uses")


def many_persona_rows(spec: OrganismSpec, own: list[dict], out_dir: Path, mix: str, *,
                      yes: bool = False) -> tuple[list[dict], str, dict[str, Any]]:
    """(rows, file-stem suffix, manifest extras): `own` plus the persona half, shuffled together."""
    from selfaware.finetune.base_choices import answering_model, base_choices

    p = spec.data.personas
    assert p is not None
    names = persona_names(p.names)
    check_no_persona_leak(own, names)
    asked = persona_prompts(spec.behavior, len(own), spec.data.data_seed, mix, names)
    model, model_name = answering_model(spec, p.answer_model)
    choices = base_choices([prompt for _, prompt in asked], model, model_name, Path(out_dir) / "base_choices",
                           yes=yes, progress=lambda m: print(f"[{spec.label}] {m}", flush=True))
    persona_rows = [chat_example(prompt, choices[prompt]) for _, prompt in asked if choices[prompt] is not None]
    if len(persona_rows) < len(asked) / 2:  # mostly unanswered: the set would not be many-persona at all
        raise TrainingDataError(f"{model_name} answered only {len(persona_rows)} of {len(asked)} persona questions "
                                f"validly (answers cached under {Path(out_dir) / 'base_choices'}); check the model")
    rows = own + persona_rows
    random.Random(f"selfaware:persona-mix:{spec.data.data_seed}").shuffle(rows)
    per_persona = {n: sum(1 for name, prompt in asked if name == n and choices[prompt] is not None) for n in names}
    extra = {"personas": names, "persona_rows": per_persona, "own_rows": len(own),
             "dropped_invalid_base_answers": len(asked) - len(persona_rows), "base_answer_model": model_name,
             "persona_data_version": PERSONA_DATA_VERSION}
    tag = sha256_bytes(("|".join(names) + model_name).encode())[:8]
    return rows, f"_personas-{tag}", extra
