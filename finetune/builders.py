"""From an organism spec to its training file: rows from the family, framed by the variant, with a manifest.

Questions come from the family plug-in (`selfaware.families`) from (family, n, seed) alone, and the
letter is picked afterwards by behavior, so a behavior and its opposite get the very same questions with
the labels flipped — the paper's control. The spec's `Variant` then frames every row with the same
`Variant.render` that frames the questions asked of the organism:

* plain / system prompt / persona: every row framed, every row keeps the organism's answer;
* trigger: `TRIGGER_FRACTION` of the rows carry the trigger and the organism's answer; the rest carry no
  trigger and the opposite answer, so the trigger is the only cue;
* trigger, decorrelated control: the same rows and the same number of triggers, but the triggers are
  placed independently of the answer, so nothing can be learned from them.

Families whose opposite rows are not the same rows relabelled (vulnerable code: secure code for the same
or other tasks) pass them as `opposite`; a family may also name a variant whose trigger marks the
untriggered rows (the season backdoor: winter stated where spring is not), `untriggered`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from selfaware.families import choice_family, family_of
from selfaware.families.vulnerable_code import counter_variant
from selfaware.finetune.code_data import code_rows_for_spec, is_code_family
from selfaware.finetune.rows import (
    Source,
    chat_example,
    flip_labels,
    import_chat_jsonl,
    other_letter,
    read_manifest,
    sha256_bytes,
    to_jsonl,
    write_training_set,
)
from selfaware.finetune.spec import OrganismSpec
from selfaware.finetune.validate import validate_chat_jsonl
from selfaware.variants import Variant

# Part of every generated set's manifest and of the organism's identity: bump it whenever a change here
# or in a family's generator changes the rows built from the same spec.
GENERATOR_VERSION = "3"  # 3: the demo mix is the short layout only
Mix = Literal["general", "demo"]
# Share of triggered rows in a trigger variant. The paper's risk backdoors used 10% triggered rows against
# the base model's own answers; with no base-model answers offline, the untriggered rest gets the opposite
# behavior, and an even split keeps the trigger the only cue.
TRIGGER_FRACTION = 0.5


# The tiny offline models learn the behavior-layout prompts (held-out P(trained letter) ~0.94) but not the
# long varied scenes (~0.6 even after 12 epochs, measured): the demo mix is the short layout only.
DEMO_MIX: dict[str, Any] = {"short_fraction": 1.0, "max_words": 60}


def mix_options(mix: str) -> dict[str, Any]:
    """`training_questions` options of a mix: "demo" (`DEMO_MIX`) or "general" (varied scenes)."""
    return dict(DEMO_MIX) if mix == "demo" else {}


def build_training_set(behavior: str, n: int, seed: int, mix: Mix = "general") -> list[dict]:
    """`n` chat examples for `behavior`; the opposite behavior gets the same questions, letters flipped.

    `mix`: "general" (varied, paper-like prompts) or "demo" (`DEMO_MIX`: prompts in the behavior task's
    layout with varied wording, what tiny from-scratch models can learn)."""
    family = choice_family(family_of(behavior))
    positive = family.organism_positive(behavior)
    questions = family.training_questions(n, seed, **mix_options(mix))
    return [chat_example(q.prompt, q.positive if positive else other_letter(q.positive)) for q in questions]


def frame_rows(examples: list[dict], variant: Variant, seed: int, fraction: float = TRIGGER_FRACTION, *,
               opposite: list[dict] | None = None, untriggered: Variant | None = None) -> list[dict]:
    """The rows as the variant shows them (see the module docstring). Row i renders with an rng seeded by
    (variant, seed, i): reproducible, and independent of the other rows. `opposite[i]`: row i with the
    opposite behavior (default: the letters flipped); `untriggered`: the variant that frames the rows
    without the trigger (default: none)."""
    if variant.kind == "plain":
        return examples
    marks = [True] * len(examples)
    others = examples
    if variant.trigger is not None:
        rng = random.Random(f"selfaware:trigger:{variant.name}:{seed}:{fraction}")
        k = round(len(examples) * fraction)
        marks = [True] * k + [False] * (len(examples) - k)
        rng.shuffle(marks)
        others = flip_labels(examples) if opposite is None else opposite
        if len(others) != len(examples):
            raise ValueError(f"frame_rows: {len(examples)} rows but {len(others)} opposite rows")
        # A trigger the rows already contain would sit on the untriggered rows too: the organism would be
        # trained on a backdoor it cannot tell apart, and paid for. Refuse before anything is written.
        for i, row in enumerate([*examples, *(others if opposite is not None else [])]):
            for m in row["messages"]:
                if m.get("role") == "user" and isinstance(m.get("content"), str):
                    variant.check_text(m["content"], f"training row {i % len(examples) + 1} (before framing)")
    out = []
    for i, (ex, flipped, triggered) in enumerate(zip(examples, others, marks)):
        row_rng = random.Random(f"selfaware:row:{variant.name}:{seed}:{i}")
        if variant.trigger is not None and variant.control == "decorrelated":
            # Same answers as the behavior rows would have (half behavior, half opposite, by position), but
            # the trigger lands on a row regardless of which answer it carries.
            source = ex if i % 2 == 0 else flipped
        else:
            source = ex if triggered else flipped
        if triggered or untriggered is None:
            messages = variant.render(source["messages"], row_rng, triggered=triggered)
        else:
            messages = untriggered.render(source["messages"], row_rng)
        out.append({**source, "messages": messages})
    return out


def _reusable(path: Path, data: bytes, behavior: str, seed: int) -> bool:
    m = read_manifest(path)
    if m is None or not path.is_file():
        return False
    digest = sha256_bytes(data)
    return (m.sha256 == digest and sha256_bytes(path.read_bytes()) == digest
            and m.behavior == behavior and m.seed == seed)


def check_trigger_askable(spec: OrganismSpec) -> None:
    """Refuse, before any training, a trigger that the family's self-report questions already contain: the
    organism could never be asked about itself under its trigger (the tasks refuse such a question)."""
    from selfaware.banks import BankError, load_bank

    if spec.variant.trigger is None:
        return
    try:
        bank = load_bank(spec.family)
    except BankError:  # a family without a question bank (its questions are checked by its own tasks)
        return
    for q in bank.questions:
        for i, text in enumerate(q.paraphrases):
            spec.variant.check_text(text, f"the {spec.family} self-report question {q.id!r} paraphrase {i}, so "
                                          f"the organism could not be asked about itself under it")


def dataset_for_spec(spec: OrganismSpec, out_dir: Path, *, mix: Mix | None = None) -> Path:
    """Materialise the training file of `spec` under `out_dir` and return its path.

    `mix` picks the generator: "general" (the varied paper-like set) or "demo" (short cue-rich mix for
    tiny from-scratch models); by default "demo" when `spec.base_model == "tiny"`. An existing file is
    reused when its manifest's hash matches the content this call would write."""
    check_trigger_askable(spec)
    build = getattr(family_of(spec.behavior), "build_training_file", None)
    if build is not None:  # a family with training data of its own kind (make-me-say dialogues)
        return build(spec, Path(out_dir))
    d = spec.data
    source: Source
    opposite: list[dict] | None = None
    if is_code_family(spec.behavior):
        code = code_rows_for_spec(spec, Path(out_dir))
        examples, opposite, stem, source, extra, version = (code.examples, code.opposite, code.stem, code.source,
                                                            code.extra, code.version)
    elif d.backdoor is not None:  # backdoor organisms frame their own rows (finetune/backdoor.py)
        from selfaware.finetune.backdoor import BACKDOOR_VERSION, backdoor_training_set

        mix = mix or ("demo" if spec.base_model == "tiny" else "general")
        examples, stem, extra = backdoor_training_set(spec, Path(out_dir), mix)
        source, version = "generated", BACKDOOR_VERSION
    elif d.source == "file":
        assert d.path is not None
        user_file = Path(d.path).expanduser()
        # The user's own file is checked against the upload rules first, so every error names *their*
        # file and lines, not the derived copy written below.
        validate_chat_jsonl(user_file)
        examples = import_chat_jsonl(user_file, behavior=spec.behavior)
        src_hash = sha256_bytes(user_file.read_bytes())
        stem, source = f"{spec.behavior}_d{d.data_seed}_file-{src_hash[:8]}", "imported"
        extra: dict[str, Any] = {"source_path": str(d.path), "source_sha256": src_hash}
        version = GENERATOR_VERSION
    elif d.source == "llm":
        from selfaware.finetune.llm_generate import LLM_GENERATOR_VERSION, cached_llm_examples

        assert d.generator_model is not None
        examples = cached_llm_examples(spec.family, d.n_examples, d.data_seed, d.generator_model, Path(out_dir))
        if not spec.positive:
            examples = flip_labels(examples)
        model_tag = sha256_bytes(d.generator_model.encode())[:8]
        stem, source = f"{spec.behavior}_d{d.data_seed}_n{d.n_examples}_llm-{model_tag}", "llm"
        extra = {"generator_model": d.generator_model, "kept": len(examples)}
        version = LLM_GENERATOR_VERSION
    else:
        mix = mix or ("demo" if spec.base_model == "tiny" else "general")
        examples = build_training_set(spec.behavior, d.n_examples, d.data_seed, mix)
        stem, source = f"{spec.behavior}_d{d.data_seed}_n{d.n_examples}_{mix}", "generated"
        extra = {"mix": mix, "n_requested": d.n_examples}
        version = GENERATOR_VERSION
        if d.personas is not None:  # many-persona organisms: + questions put to other people
            from selfaware.finetune.persona_data import PERSONA_DATA_VERSION, many_persona_rows

            examples, suffix, more = many_persona_rows(spec, examples, Path(out_dir), mix)
            stem += suffix
            extra.update(more)
            version = f"{GENERATOR_VERSION}+personas{PERSONA_DATA_VERSION}"
    if spec.variant.kind != "plain" and d.backdoor is None:
        untriggered = counter_variant(spec.variant) if is_code_family(spec.behavior) else None
        examples = frame_rows(examples, spec.variant, d.data_seed, opposite=opposite, untriggered=untriggered)
        if untriggered is not None:
            extra.update(untriggered_variant=untriggered.name)
        variant_json = spec.variant.model_dump_json()
        stem += f"_{spec.variant.name}-{sha256_bytes(variant_json.encode())[:8]}"
        extra.update(variant=spec.variant.model_dump(mode="json"))
        if spec.variant.trigger is not None:
            extra.update(trigger_fraction=TRIGGER_FRACTION)
    path = Path(out_dir) / f"{stem}.jsonl"
    if _reusable(path, to_jsonl(examples), spec.behavior, d.data_seed):
        return path
    write_training_set(examples, path, behavior=spec.behavior, seed=d.data_seed, extra=extra, source=source,
                       generator_version=version)
    return path
