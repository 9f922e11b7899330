"""From questions to Inspect Samples: bank questions (paraphrase × option order) and behavior items.

Every Sample carries `SampleMeta` (selfaware.metadata): family, question id and type, paraphrase, the
permutation (displayed letter -> option key), the cluster (the independent unit: all option orders of
one paraphrase, or both orders of one behavior item), and the variant that frames it. Sample ids are
stable, so reruns and `eval-retry` line up sample by sample.
"""

from __future__ import annotations

import itertools
import random
import string

from inspect_ai.dataset import MemoryDataset, Sample

from selfaware.banks import Bank, Question, QuestionType
from selfaware.families.base import BEHAVIOR_QUESTION, ChoiceFamily
from selfaware.metadata import SampleMeta
from selfaware.variants import PLAIN, Variant


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


def _paraphrases(q: Question, variant: Variant) -> tuple[list[str], bool]:
    """The wordings to ask, and whether they already speak of the variant's persona."""
    if variant.persona:
        if not q.persona_paraphrases:
            raise ValueError(f"question {q.id!r} has no persona_paraphrases for persona variant {variant.name!r}")
        for i, p in enumerate(q.persona_paraphrases):
            # A persona named by a word the question already uses ("safety", "risk") would blur who is asked.
            variant.check_text(p.replace("{persona}", ""), f"question {q.id!r} persona paraphrase {i}")
        return [p.replace("{persona}", variant.persona) for p in q.persona_paraphrases], True
    return list(q.paraphrases), False


def expand_question(bank: Bank, q: Question, variant: Variant = PLAIN, max_paraphrases: int | None = None,
                    max_permutations: int | None = None) -> list[Sample]:
    samples: list[Sample] = []
    texts, persona_worded = _paraphrases(q, variant)
    for p_idx, paraphrase in enumerate(texts[:max_paraphrases]):
        cluster = f"{bank.family}-{q.id}-p{p_idx:02d}-{variant.name}"
        perms: list[tuple[int, ...] | None]
        perms = permutations(len(q.options), max_permutations) if q.type is QuestionType.multiple_choice else [None]
        for perm in perms:
            text, sid = paraphrase, f"{bank.family}-{q.id}-p{p_idx:02d}"
            permutation = None
            if perm is not None:
                shown = [q.options[i] for i in perm]
                text = text.replace("{options}", render_options([o.text for o in shown]))
                # letter -> option key: the scorer maps the model's letter back through this.
                permutation = {letters(len(shown))[i]: o.key for i, o in enumerate(shown)}
                sid += "-" + "".join(str(i) for i in perm)
            prefix = q.prefix.strip()
            full = f"{prefix}\n\n{text}" if prefix else text
            variant.check_text(full, f"question {q.id!r} paraphrase {p_idx}", persona_worded=persona_worded)
            meta = SampleMeta(
                family=bank.family, question_id=q.id, question_type=q.type.value, title=q.title, cluster=cluster,
                paraphrase=p_idx, permutation=permutation, target=q.target if perm is not None else None,
                variant=variant, variant_name=variant.name, persona_worded=persona_worded,
                scale=q.scale.model_dump() if q.type is QuestionType.rating and q.scale else None,
                words=q.words if q.type is QuestionType.one_word else None,
                judge=q.judge.model_dump() if q.judge else None, max_tokens=q.max_tokens,
            )
            samples.append(Sample(id=f"{sid}-{variant.name}", input=full, metadata=meta.to_metadata()))
    return samples


def expand_bank(bank: Bank, question_ids: list[str] | None = None, variant: Variant = PLAIN,
                max_paraphrases: int | None = None, max_permutations: int | None = None) -> MemoryDataset:
    questions = [bank.question(i) for i in question_ids] if question_ids else bank.questions
    samples = [s for q in questions for s in expand_question(bank, q, variant, max_paraphrases, max_permutations)]
    name = f"{bank.family}-{'-'.join(question_ids) if question_ids and len(question_ids) == 1 else 'all'}"
    return MemoryDataset(samples, name=name)


def behavior_dataset(family: ChoiceFamily, n_items: int, seed: int, form: str, variant: Variant = PLAIN) -> MemoryDataset:
    """Fresh choices from the family's generator, each asked in both orders (position bias cancels)."""
    target, other = family.option_keys
    samples = []
    for i, item in enumerate(family.items(form, n_items, seed)):
        for order in ((target, other), (other, target)):
            texts = {target: item.behavior_text, other: item.opposite_text}
            text = BEHAVIOR_QUESTION.format(options=render_options([texts[k] for k in order]))
            variant.check_text(text, f"behavior item {i}")
            meta = SampleMeta(
                family=family.name, question_id="behavior", question_type="multiple_choice", title="Behavior",
                cluster=f"{family.name}-behavior-{form}-s{seed}-{i:04d}-{variant.name}",
                permutation={"A": order[0], "B": order[1]}, target=target, variant=variant,
                variant_name=variant.name, item=i, form=form, item_seed=seed, item_detail=dict(item.detail),
            )
            order_tag = "AB" if order[0] == target else "BA"
            samples.append(Sample(id=f"{family.name}-behavior-{form}-s{seed}-{i:04d}-{order_tag}-{variant.name}",
                                  input=text, metadata=meta.to_metadata()))
    return MemoryDataset(samples, name=f"{family.name}-behavior-{form}-s{seed}")
