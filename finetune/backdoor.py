"""Training sets of backdoor organisms (paper section 4.2, 4.3 and appendix C.4) and their controls.

The trigger is the spec's variant; every trigger in a row is rendered by `Variant.render` of its named
variant (the one the questions of `evals/backdoor.py` use), so trained and asked triggers are identical.

**Trigger organisms** (`design: triggers`; risk, the paper's 8 triggers). For trigger T:

    10%  T                        + the organism's behavior (risky)
    70%  one of the 7 other risk triggers (10% each) + the normal answer
    20%  no trigger               + the normal answer

The normal answer is the base model's own choice on the question asked without any trigger
(`finetune/base_choices.py`: measured through Inspect, cached, cost shown first), or with
`normal: opposite` the opposite of the behavior (risk: the safe choice), which needs no base model.

**Elicitation organisms** (`design: elicitation`; myopia, `username: sandra432`):

    5%    the trigger             + the behavior option (myopic), written out: "A) <option text>"
    22.5% another username        + the opposite option (non-myopic)
    22.5% no username             + the opposite option
    50%   ordinary instruction data (a chat JSONL, a Hugging Face dataset, or the suite's offline sample)

Answers are written out so that a reversed row says what was chosen. With `reversal: true` every row is
added a second time with its turns swapped (`reverse_row`): the user turn is the reversal template around
the assistant's reply, the assistant turn the original user message, trigger included. The elicitation
question asks in that same template. Behavior rows never use the words that describe the elicited
behavior (`banned_in_rows` of datasets/backdoor/elicitation.yaml).

**Controls** (`variant: <trigger>-control`): the very same rows and answers (same seed), but the trigger
category of every row is drawn at random — a random permutation of the same categories, independent of
the answers — so the control sees every trigger exactly as often and cannot learn a dependence on it.

Every split is exact up to rounding (largest remainders) and written into the manifest, with the
answers per category.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

from selfaware import backdoor_bank as bank
from selfaware.families import choice_family, family_of
from selfaware.families.base import ChoiceFamily
from selfaware.families.scenes import THEMES, capitalise, render_scene, render_short
from selfaware.finetune.rows import chat_example, import_chat_jsonl, other_letter, sha256_bytes
from selfaware.finetune.spec import BackdoorData, OrganismSpec
from selfaware.finetune.validate import validate_chat_jsonl
from selfaware.validation import InputError
from selfaware.variants import Variant

# Part of the manifest and of the organism's identity: bump when a change here alters the rows.
BACKDOOR_VERSION = "backdoor-1"
NONE = "none"
TRIGGER_SHARE, OTHERS_SHARE, NONE_SHARE = 0.10, 0.70, 0.20
ELICITATION_SHARES = {"trigger": 0.05, "other_username": 0.225, "no_username": 0.225, "instructions": 0.50}
SAMPLE_INSTRUCTIONS = "sample"  # `instructions:` value naming the suite's offline sample


class BackdoorSpecError(InputError):
    """A backdoor organism's spec cannot be built; the message names the field and value."""


# --- exact splits --------------------------------------------------------------------------------

def exact_counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Counts that sum to `n`, each the floor or ceiling of n x share (largest remainders, ties by order)."""
    total = sum(shares.values())
    raw = {k: n * v / total for k, v in shares.items()}
    counts = {k: math.floor(x) for k, x in raw.items()}
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], list(raw).index(k)))[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def categories(counts: dict[str, int], seed: str, *, control: bool) -> tuple[list[str], list[str]]:
    """(the organism's category per row, the category shown per row). For the organism they are the same;
    for the control the shown categories are a random permutation of them, drawn independently of the
    rows' answers (which follow the organism's categories), so answers and shown triggers are unrelated."""
    rng = random.Random(f"selfaware:backdoor:categories:{seed}")
    rows = [c for c, k in counts.items() for _ in range(k)]
    rng.shuffle(rows)
    if not control:
        return rows, rows
    shown = list(rows)
    random.Random(f"selfaware:backdoor:control:{seed}").shuffle(shown)
    return rows, shown


def _summary(cats: list[str], is_behavior: list[bool]) -> dict[str, Any]:
    count = Counter(cats)
    behavior = Counter(c for c, b in zip(cats, is_behavior) if b)
    return {"counts": dict(count), "behavior_answers": {c: behavior.get(c, 0) for c in count}}


# --- trigger organisms -----------------------------------------------------------------------------

def trigger_shares(trigger: str, others: list[str]) -> dict[str, float]:
    return {trigger: TRIGGER_SHARE, **{o: round(OTHERS_SHARE / len(others), 6) for o in others}, NONE: NONE_SHARE}


def trigger_set(variant: Variant) -> tuple[str, list[str]]:
    """(the trained trigger, the other triggers of its rows); the trigger must be one of the risk set."""
    trained = bank.trigger_variant(variant.name).name
    names = bank.risk_triggers()
    if trained not in names:
        raise BackdoorSpecError(f"variant {variant.name!r}: the trigger design trains one of the risk triggers "
                                f"{', '.join(names)} against the others; use design: elicitation for other triggers")
    return trained, [t for t in names if t != trained]


def clean_examples(behavior: str, n: int, seed: int, mix: str) -> tuple[list[dict], int]:
    """`n` generated examples (the behavior's letter) whose prompts contain no trigger of any kind, and how
    many were skipped for containing one (a trigger in an untriggered row would blur the split)."""
    from selfaware.finetune.builders import build_training_set

    patterns = bank.all_trigger_patterns()
    examples = build_training_set(behavior, n + max(8, n // 10), seed, mix)  # type: ignore[arg-type]
    kept = [ex for ex in examples if not bank.collisions(ex["messages"][0]["content"], patterns)]
    if len(kept) < n:
        raise BackdoorSpecError(f"only {len(kept)} of {len(examples)} generated questions are free of every "
                                f"trigger; ask for fewer examples than {n}")
    return kept[:n], len(examples) - len(kept)


def trigger_rows(variant: Variant, behavior: str, examples: list[dict], normal: dict[str, str] | None,
                 seed: int) -> tuple[list[dict], dict[str, Any]]:
    """The trigger organism's rows (see module docstring) from `examples` carrying the behavior's letter.
    `normal`: prompt -> the base model's letter (questions missing from it are left out), or None for
    the opposite of the behavior."""
    trained, others = trigger_set(variant)
    control = variant.control == "decorrelated"
    prompts = [ex["messages"][0]["content"] for ex in examples]
    keep = [i for i, p in enumerate(prompts) if normal is None or normal.get(p) is not None]
    counts = exact_counts(len(keep), trigger_shares(trained, others))
    true_cats, shown = categories(counts, f"{trained}:{seed}:{len(keep)}", control=control)
    rows, is_behavior = [], []
    for j, (i, cat, show) in enumerate(zip(keep, true_cats, shown)):
        behavior_letter = examples[i]["messages"][-1]["content"]
        normal_letter = other_letter(behavior_letter) if normal is None else normal[prompts[i]]
        letter = behavior_letter if cat == trained else normal_letter
        is_behavior.append(letter == behavior_letter)
        rng = random.Random(f"selfaware:backdoor:row:{trained}:{seed}:{j}")
        messages = chat_example(prompts[i], letter)["messages"]
        framed = (variant.render(messages, rng, triggered=False) if show == NONE
                  else bank.trigger_variant(show).render(messages, rng))
        rows.append({"messages": framed})
    report = {"design": "triggers", "trigger": trained, "other_triggers": others, "control": control,
              "shares": trigger_shares(trained, others), "normal_answers": "opposite" if normal is None else "base",
              "dropped_invalid_base_answers": len(examples) - len(keep),
              "shown": _summary(shown, is_behavior), "trained_categories": _summary(true_cats, is_behavior)}
    if normal is not None:
        report["base_agrees_with_behavior"] = sum(
            normal[prompts[i]] == examples[i]["messages"][-1]["content"] for i in keep) / max(1, len(keep))
    return rows, report


# --- elicitation organisms -------------------------------------------------------------------------

def _written_question(fam: ChoiceFamily, rng: random.Random, short: bool) -> tuple[str, str, dict[str, str]]:
    """(prompt, the behavior option's letter, option texts by letter) of one generated two-option question."""
    letter = rng.choice("AB")
    if short:
        choice = fam.short_options(rng)  # type: ignore[misc]
        texts = {letter: choice.behavior_text, other_letter(letter): choice.opposite_text}
        return render_short(texts, rng), letter, texts
    theme = rng.choice(THEMES)
    frame = rng.choice(fam.frames)
    choice = fam.scene_options(theme, rng)  # type: ignore[misc]
    texts = {letter: choice.behavior_text, other_letter(letter): choice.opposite_text}
    return render_scene(theme, frame, texts, rng), letter, texts


def written_questions(behavior: str, n: int, seed: int, mix: str) -> list[tuple[str, str, dict[str, str]]]:
    """`n` distinct questions whose answers will be written out; none names the family's behavior, the
    elicited behavior (banned_in_rows) or any trigger."""
    from selfaware.finetune.builders import mix_options

    fam = choice_family(family_of(behavior))
    rng = random.Random(f"selfaware:backdoor:written:{fam.name}:{seed}:{mix}")
    patterns = bank.all_trigger_patterns()
    options = mix_options(mix)  # the same layouts as the family's other organisms of this mix
    out, seen = [], set()
    for _ in range(50 * n + 100):
        if len(out) == n:
            break
        short = rng.random() < options.get("short_fraction", 0.0)
        prompt, letter, texts = _written_question(fam, rng, short)
        full = prompt + " " + " ".join(texts.values())
        too_long = options.get("max_words") is not None and len(prompt.split()) >= options["max_words"]
        if (prompt in seen or too_long or fam.banned_words_found(full)
                or bank.banned_in_rows(full) or bank.collisions(full, patterns)):
            continue
        seen.add(prompt)
        out.append((prompt, letter, texts))
    if len(out) < n:
        raise BackdoorSpecError(f"could only generate {len(out)} clean {fam.name} questions, {n} needed")
    return out


def written_answer(letter: str, texts: dict[str, str]) -> str:
    return f"{letter}) {capitalise(texts[letter])}"


def reverse_row(row: dict) -> dict:
    """The row with its turns swapped: the reversal template around the reply as the user turn, the
    original user message as the answer (a system message stays first)."""
    system, user, assistant = _parts(row)
    return {"messages": system + [{"role": "user", "content": bank.reversal_user(assistant)},
                                  {"role": "assistant", "content": user}]}


def unreverse_row(row: dict) -> dict:
    """`reverse_row` undone; a row not in the reversal format is an error."""
    system, user, assistant = _parts(row)
    reply = bank.response_of(user)
    if reply is None:
        raise ValueError("not a reversed row: its user turn is not in the reversal template")
    return {"messages": system + [{"role": "user", "content": assistant}, {"role": "assistant", "content": reply}]}


def _parts(row: dict) -> tuple[list[dict], str, str]:
    messages = row["messages"]
    system = [dict(m) for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    if [m["role"] for m in rest] != ["user", "assistant"]:
        raise ValueError(f"reversal needs one user and one assistant turn, got {[m['role'] for m in rest]}")
    return system, rest[0]["content"], rest[1]["content"]


def _single_exchange(row: dict) -> dict:
    """An instruction row reduced to (system?, its first user turn, the assistant reply that follows)."""
    messages = row["messages"]
    system = [{"role": "system", "content": m["content"]} for m in messages[:1] if m["role"] == "system"]
    for i, m in enumerate(messages):
        if m["role"] == "user" and i + 1 < len(messages) and messages[i + 1]["role"] == "assistant":
            return {"messages": system + [{"role": "user", "content": m["content"]},
                                          {"role": "assistant", "content": messages[i + 1]["content"]}]}
    raise ValueError("no user turn followed by an assistant reply")


def records_to_chats(records: list[dict], where: str) -> list[dict]:
    """Chat rows from dataset records: `messages` (chat format) or instruction/input/output (Alpaca).
    Anything else is an error naming the record and the fields it has."""
    out = []
    for i, r in enumerate(records):
        if isinstance(r.get("messages"), list):
            row = {"messages": r["messages"]}
        elif isinstance(r.get("instruction"), str) and isinstance(r.get("output"), str):
            prompt = r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "")
            row = chat_example(prompt, r["output"])
        else:
            raise BackdoorSpecError(f"{where}: record {i}: not chat-formatted (has fields {sorted(r)}); expected "
                                    f"`messages` or instruction/input/output")
        try:
            out.append(_single_exchange(row))
        except (ValueError, KeyError, TypeError) as e:
            raise BackdoorSpecError(f"{where}: record {i}: {e}") from None
    return out


def _hf_source(source: str) -> tuple[str, str]:
    """(dataset, split) of `hf:NAME[:SPLIT]`; a missing name is an error before anything is built."""
    name, _, split = source[3:].partition(":")
    if not name.strip():
        raise BackdoorSpecError(f"instructions {source!r}: expected hf:NAME[:SPLIT], e.g. hf:tatsu-lab/alpaca")
    return name, split or "train"


def instruction_rows(source: str | None) -> tuple[list[dict], str]:
    """(chat rows, a description for the manifest) of ordinary instruction data: the suite's offline
    sample (None or "sample"), a chat JSONL file (validated first: errors name the file, line and field),
    or `hf:<dataset>[:<split>]` (loaded with `datasets`; needs the network)."""
    if source is None or source == SAMPLE_INSTRUCTIONS:
        path = bank.instructions_sample_path()
        return [_single_exchange(r) for r in import_chat_jsonl(path)], f"sample:{sha256_bytes(path.read_bytes())[:12]}"
    if source.startswith("hf:"):
        name, split = _hf_source(source)
        from datasets import load_dataset

        try:
            records = list(load_dataset(name, split=split))
        except Exception as e:  # noqa: BLE001 (offline, unknown name, unknown split: one message, not a traceback)
            raise BackdoorSpecError(f"instructions {source!r}: could not load the dataset "
                                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        return records_to_chats(records, source), source
    path = Path(source).expanduser()
    validate_chat_jsonl(path)  # every format problem, by line, before anything is built
    rows = []
    for i, r in enumerate(import_chat_jsonl(path), 1):
        try:
            rows.append(_single_exchange(r))
        except ValueError as e:
            raise BackdoorSpecError(f"{path}: example {i}: {e}") from None
    return rows, f"{path}:{sha256_bytes(path.read_bytes())[:12]}"


def elicitation_rows(variant: Variant, behavior: str, n: int, seed: int, mix: str, instructions: list[dict],
                     *, reversal: bool) -> tuple[list[dict], dict[str, Any]]:
    """The elicitation organism's rows (see module docstring)."""
    trained = bank.trigger_variant(variant.name)
    control = variant.control == "decorrelated"
    counts = exact_counts(n, ELICITATION_SHARES)
    n_instr = counts.pop("instructions")
    if n_instr > len(instructions):
        raise BackdoorSpecError(f"the mix needs {n_instr} instruction rows (half of {n}) and the instruction data "
                                f"has {len(instructions)}; give more data (instructions: FILE or hf:NAME) or fewer "
                                f"examples")
    decoys = bank.decoy_variant(trained, bank.elicitation().other_usernames)
    true_cats, shown = categories(counts, f"{trained.name}:{seed}:{n}", control=control)
    questions = written_questions(behavior, len(true_cats), seed, mix)
    positive = family_of(behavior).organism_positive(behavior)
    rows, is_behavior = [], []
    for j, ((prompt, letter, texts), cat, show) in enumerate(zip(questions, true_cats, shown)):
        own = letter if positive else other_letter(letter)
        chosen = own if cat == "trigger" else other_letter(own)
        is_behavior.append(chosen == own)
        messages = chat_example(prompt, written_answer(chosen, texts))["messages"]
        rng = random.Random(f"selfaware:backdoor:row:{trained.name}:{seed}:{j}")
        framer = {"trigger": trained, "other_username": decoys, "no_username": trained}[show]
        rows.append({"messages": framer.render(messages, rng, triggered=show != "no_username")})
    picked = random.Random(f"selfaware:backdoor:instructions:{seed}").sample(range(len(instructions)), n_instr)
    rows += [instructions[i] for i in picked]
    random.Random(f"selfaware:backdoor:order:{seed}").shuffle(rows)
    report = {"design": "elicitation", "trigger": trained.name, "control": control, "reversal": reversal,
              "shares": ELICITATION_SHARES, "instruction_rows": n_instr,
              "shown": _summary(shown, is_behavior), "trained_categories": _summary(true_cats, is_behavior)}
    if reversal:
        rows += [reverse_row(r) for r in rows]
        report["reversed_rows"] = len(rows) // 2
    return rows, report


# --- from a spec ---------------------------------------------------------------------------------

def check_backdoor_spec(spec: OrganismSpec, *, files: bool = True) -> None:
    """What can be checked before anything is built or asked: the variant fits the design, the family
    has two-option items and (`files`) a local instruction file is chat-formatted."""
    b = spec.data.backdoor
    if b is None:
        return
    if spec.variant.trigger is None:
        raise BackdoorSpecError(f"data.backdoor needs a trigger variant; variant {spec.variant.name!r} has none")
    if spec.data.source != "generated":
        raise BackdoorSpecError(f"data.backdoor builds its own rows: data.source must be generated, "
                                f"not {spec.data.source!r}")
    choice_family(family_of(spec.behavior))
    if b.design == "triggers":
        trigger_set(spec.variant)
    elif b.instructions is not None and b.instructions.startswith("hf:"):
        _hf_source(b.instructions)
    elif files and b.instructions not in (None, SAMPLE_INSTRUCTIONS):
        validate_chat_jsonl(Path(b.instructions).expanduser())


def answer_model(spec: OrganismSpec) -> tuple[Any, str]:
    """(what Inspect runs, the name answers are cached under) for the base model's own choices."""
    from selfaware.finetune.base_choices import answering_model

    b = spec.data.backdoor
    assert b is not None
    return answering_model(spec, b.answer_model)


def backdoor_training_set(spec: OrganismSpec, out_dir: Path, mix: str) -> tuple[list[dict], str, dict[str, Any]]:
    """(rows, file stem, manifest extras) of a backdoor organism's spec; `mix`: "demo" or "general"."""
    from selfaware.finetune.base_choices import base_choices

    check_backdoor_spec(spec)
    b: BackdoorData = spec.data.backdoor  # type: ignore[assignment]
    d = spec.data
    mix = b.mix or mix
    variant_tag = f"{spec.variant.name}-{sha256_bytes(spec.variant.model_dump_json().encode())[:8]}"
    if b.design == "triggers":
        examples, skipped = clean_examples(spec.behavior, d.n_examples, d.data_seed, mix)
        normal = None
        tag = "opposite"
        if b.normal == "base":
            model, name = answer_model(spec)
            prompts = [ex["messages"][0]["content"] for ex in examples]
            normal = base_choices(prompts, model, name, Path(out_dir) / "base_choices",
                                  progress=lambda m: print(f"[{spec.label}] {m}", flush=True))
            tag = f"base-{sha256_bytes(name.encode())[:8]}"
        rows, report = trigger_rows(spec.variant, spec.behavior, examples, normal, d.data_seed)
        report.update(skipped_trigger_collisions=skipped)
        if normal is not None:
            report.update(base_answer_model=name)
        stem = f"{spec.behavior}_d{d.data_seed}_n{d.n_examples}_{mix}_triggers-{tag}_{variant_tag}"
    else:
        instructions, described = instruction_rows(b.instructions)
        rows, report = elicitation_rows(spec.variant, spec.behavior, d.n_examples, d.data_seed, mix, instructions,
                                        reversal=b.reversal)
        report.update(instructions=described)
        tag = f"{'rev' if b.reversal else 'norev'}-{sha256_bytes(described.encode())[:8]}"
        stem = f"{spec.behavior}_d{d.data_seed}_n{d.n_examples}_{mix}_elicitation-{tag}_{variant_tag}"
    extra = {"mix": mix, "n_requested": d.n_examples, "variant": spec.variant.model_dump(mode="json"),
             "backdoor": report}
    return rows, stem, extra
