"""Expansion of bank questions into Inspect Samples: paraphrase × option permutation × variant.

Each Sample carries the metadata needed to rebuild any aggregate from the log alone: family, question
id and type, paraphrase index, the permutation (displayed letter -> option key), target and variant.
"""

from __future__ import annotations

import itertools
import random
import string
from dataclasses import asdict, dataclass

from inspect_ai.dataset import MemoryDataset, Sample

from selfaware.banks import Bank, Question, QuestionType


@dataclass(frozen=True)
class Variant:
    """How a question is framed: plain, behind a system prompt, after a trigger, or about a persona."""

    name: str = "plain"
    system_prompt: str | None = None
    trigger: str | None = None
    persona: str | None = None

    def __post_init__(self) -> None:
        if not self.name or any(c not in string.ascii_letters + string.digits + "_-" for c in self.name):
            raise ValueError(f"variant name {self.name!r}: use letters, digits, '_' or '-'")


def make_variant(system_prompt: str | None = None, trigger: str | None = None,
                 persona: str | None = None, name: str | None = None) -> Variant:
    """The variant described by task parameters, with a readable default name."""
    if name is None:
        parts = [p for p, v in (("sys", system_prompt), ("trigger", trigger), ("persona", persona)) if v]
        name = "-".join(parts) or "plain"
    return Variant(name=name, system_prompt=system_prompt, trigger=trigger, persona=persona)


def letters(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n])


def permutations(n_options: int, limit: int | None, seed: int = 0) -> list[tuple[int, ...]]:
    """All orderings of the options, or a deterministic subset of `limit` of them."""
    perms = list(itertools.permutations(range(n_options)))
    if limit is not None and len(perms) > limit:
        perms = random.Random(seed).sample(perms, limit)
    return perms


def render_options(texts: list[str]) -> str:
    return "\n".join(f"{letter}) {text}" for letter, text in zip(letters(len(texts)), texts))


def _paraphrases(q: Question, variant: Variant) -> list[str]:
    if variant.persona:
        if not q.persona_paraphrases:
            raise ValueError(f"question {q.id!r} has no persona_paraphrases for persona variant {variant.name!r}")
        return [p.replace("{persona}", variant.persona) for p in q.persona_paraphrases]
    return list(q.paraphrases)


def expand_question(
    bank: Bank,
    q: Question,
    variants: list[Variant] | None = None,
    max_paraphrases: int | None = None,
    max_permutations: int | None = None,
) -> list[Sample]:
    samples: list[Sample] = []
    for variant in variants or [Variant()]:
        texts = _paraphrases(q, variant)[:max_paraphrases]
        for p_idx, paraphrase in enumerate(texts):
            perms: list[tuple[int, ...] | None]
            perms = permutations(len(q.options), max_permutations) if q.type is QuestionType.multiple_choice else [None]
            for perm in perms:
                metadata = {
                    "family": bank.family,
                    "question_id": q.id,
                    "question_type": q.type.value,
                    "title": q.title,
                    "paraphrase": p_idx,
                    "cluster": f"{q.id}-p{p_idx:02d}-{variant.name}",
                    "variant": asdict(variant),
                    "variant_name": variant.name,
                    "max_tokens": q.max_tokens,
                }
                text = paraphrase
                sid = f"{bank.family}-{q.id}-p{p_idx:02d}"
                if perm is not None:
                    shown = [q.options[i] for i in perm]
                    text = text.replace("{options}", render_options([o.text for o in shown]))
                    # letter -> option key: the scorer maps the model's letter back through this.
                    metadata["permutation"] = {letters(len(shown))[i]: o.key for i, o in enumerate(shown)}
                    metadata["target"] = q.target
                    sid += "-" + "".join(str(i) for i in perm)
                if q.type is QuestionType.rating and q.scale:
                    metadata["scale"] = q.scale.model_dump()
                if q.type is QuestionType.one_word:
                    metadata["words"] = q.words
                if q.judge:
                    metadata["judge"] = q.judge.model_dump()
                prefix = q.prefix.strip()
                full = f"{prefix}\n\n{text}" if prefix else text
                samples.append(Sample(id=f"{sid}-{variant.name}", input=full, metadata=metadata))
    return samples


def expand_bank(bank: Bank, question_ids: list[str] | None = None, **kwargs) -> MemoryDataset:
    questions = [bank.question(i) for i in question_ids] if question_ids else bank.questions
    samples = [s for q in questions for s in expand_question(bank, q, **kwargs)]
    name = f"{bank.family}-{'-'.join(question_ids) if question_ids and len(question_ids) == 1 else 'all'}"
    return MemoryDataset(samples, name=name)
