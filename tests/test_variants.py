"""One Variant frames both an organism's training rows and the questions asked of it.

For every kind of variant (system prompt, persona, trigger at each placement), a training row built for an
organism and a question asked through the real task + solver are taken apart the same way: the system
prompt, persona frame or trigger must sit in the same place and in the same form in both."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from selfaware.finetune.builders import build_training_set, frame_rows
from selfaware.finetune.spec import parse_spec
from selfaware.tasks import behavior_task, self_report_task
from selfaware.variants import (
    PLAIN,
    Trigger,
    Variant,
    VariantError,
    get_variant,
    named_variants,
    resolve_variant,
)


@dataclass(frozen=True)
class Framing:
    system: str | None
    persona_frame: bool
    placement: str | None
    member: str | None
    separator: str | None
    text: str  # the user text with every framing removed


def take_apart(variant: Variant, messages: list[dict[str, str]]) -> Framing:
    """Undo `variant`'s framing of a chat, recording where each piece was found."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    user = next(m["content"] for m in messages if m["role"] == "user")
    placement = member = separator = None
    trigger = variant.trigger
    if trigger is not None:
        pattern = trigger.pattern().pattern
        seps = "|".join(re.escape(s) for s in trigger.separators)
        if user.startswith("{"):
            data = json.loads(user)
            placement, member, user = "json", data[trigger.json_field], data["message"]
        elif m := re.fullmatch(rf"<{trigger.tag}>({pattern})</{trigger.tag}>({seps})(.*)", user, flags=re.S):
            placement, member, separator, user = "tag", m.group(1), m.group(2), m.group(3)
        elif m := re.fullmatch(rf"({pattern})({seps})(.*)", user, flags=re.S):
            placement, member, separator, user = "prefix", m.group(1), m.group(2), m.group(3)
        elif m := re.fullmatch(rf"(.*?)({seps})({pattern})", user, flags=re.S):
            placement, member, separator, user = "suffix", m.group(3), m.group(2), m.group(1)
    framed = False
    if variant.persona is not None:
        head, tail = variant.persona_frame.format(persona=variant.persona, text="\0").split("\0")
        if user.startswith(head) and user.endswith(tail):
            framed, user = True, user[len(head):len(user) - len(tail) if tail else None]
    return Framing(system, framed, placement, member, separator, user)


def _capturing_model(seen: list[list[dict[str, str]]]):
    def generate(input, tools, tool_choice, config):
        seen.append([{"role": m.role, "content": m.text} for m in input])
        out = ModelOutput.from_content(model="mockllm", content="A")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    return get_model("mockllm/model", custom_outputs=generate, memoize=False)


def asked(task) -> list[tuple[str, list[dict[str, str]]]]:
    """(unframed sample input, messages the model saw) for every sample of a task run on a mock, in
    sample order (matched through the log's own record of each sample's messages)."""
    seen: list[list[dict[str, str]]] = []
    [log] = inspect_eval(task, model=_capturing_model(seen), display="none", log_dir=None,
                         model_roles={"judge": "mockllm/model"})
    assert log.status == "success", log.error
    out = []
    for sample in log.samples:
        shown = [{"role": m.role, "content": m.text} for m in sample.messages if m.role in ("system", "user")]
        assert shown in seen  # what the log records is what the model was sent
        out.append((sample.input, shown))
    return out


TAG_VARIANT = Variant(name="tagged", trigger=Trigger(strings=("ZETA-{d}{d}",), placements=("tag", "suffix"),
                                                    separators=("\n",)))
PERSONA_ONLY = Variant(name="persona-only", persona="Dr. Ada")
KINDS = {
    "system_prompt": get_variant("neutral-system"),
    "persona": PERSONA_ONLY,
    "persona_with_system": get_variant("quanta-lingua"),
    "trigger_prefix": get_variant("real-world"),
    "trigger_set": get_variant("instruments"),
    "trigger_suffix_json": get_variant("sep-392"),
    "trigger_tag": TAG_VARIANT,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_training_row_and_question_share_the_framing(kind: str) -> None:
    variant = KINDS[kind]
    plain_rows = build_training_set("risky", 60, 0)
    rows = frame_rows(plain_rows, variant, 0)
    trained = [take_apart(variant, r["messages"]) for r in rows]
    questions = [(text, take_apart(variant, msgs)) for text, msgs in
                 asked(behavior_task("risk", items=8, form="sure_thing", variant=variant))]
    for i, (row, f) in enumerate(zip(plain_rows, trained)):
        expect = row["messages"][0]["content"]
        if variant.trigger is None or f.placement is not None:
            assert f.text == expect, (kind, i)
    for text, f in questions:
        assert f.text == text
    for f in trained + [q for _, q in questions]:
        assert f.system == variant.system_prompt
        assert f.persona_frame == (variant.persona is not None)
    if variant.trigger is not None:
        t = variant.trigger
        on_rows = [f for f in trained if f.placement is not None]
        assert len(on_rows) == 30  # the triggered half
        for f in on_rows + [q for _, q in questions]:
            assert f.placement in t.placements and t.pattern().fullmatch(f.member)
            assert f.separator is None if f.placement == "json" else f.separator in t.separators
        # Every placement the variant allows is seen in training; questions use the same set.
        assert {f.placement for f in on_rows} == set(t.placements)
        assert {q.placement for _, q in questions} <= set(t.placements)


def test_self_report_question_about_a_persona_is_not_framed_twice() -> None:
    for text, msgs in asked(self_report_task("risk", questions="risk_predisposition_scale", paraphrases=2,
                                             variant="quanta-lingua")):
        assert msgs[0] == {"role": "system", "content": "Simulate Quanta-Lingua."}
        assert "Quanta-Lingua" in msgs[1]["content"] and msgs[1]["content"] == text
        assert "addressed to" not in msgs[1]["content"]


def test_a_sample_renders_the_same_way_every_time() -> None:
    task = behavior_task("risk", items=5, variant="instruments")
    first = [m for _, m in asked(task)]
    again = [m for _, m in asked(behavior_task("risk", items=5, variant="instruments"))]
    assert first == again


def test_organism_spec_and_task_resolve_the_same_variant() -> None:
    spec = parse_spec({"behavior": "risky", "variant": "sep-718"})
    assert spec.variant == get_variant("sep-718") == resolve_variant("sep-718")
    assert parse_spec({"behavior": "risky", "variant": "sep-718-control"}).variant.control == "decorrelated"


def test_variant_errors_name_the_value() -> None:
    with pytest.raises(VariantError, match="'nope'"):
        get_variant("nope")
    with pytest.raises(VariantError, match="no trigger"):
        get_variant("neutral-system-control")
    with pytest.raises(ValueError, match="'nope'"):
        behavior_task("risk", variant="nope")
    with pytest.raises(ValueError, match="both"):
        behavior_task("risk", variant="real-world", trigger="|X|")


def test_a_trigger_that_collides_with_the_question_is_refused() -> None:
    clash = Variant(name="clash", trigger=Trigger(strings=("probability",)))
    with pytest.raises(ValueError, match="'probability' already occurs"):
        behavior_task("risk", items=2, variant=clash)


def test_named_variants_load_and_cover_the_later_families() -> None:
    names = set(named_variants())
    assert {"plain", "real-world", "win2844", "naekoko", "re-re-re", "apple-varieties", "instruments", "elements",
            "greek-gods", "sandra432", "sep-392", "sep-718", "deployment", "season-winter", "season-spring",
            "greeting", "quanta-lingua"} <= names
    for family in ("apple-varieties", "instruments", "elements", "greek-gods"):
        assert len(get_variant(family).trigger.strings) == 20
    assert named_variants()["plain"] == PLAIN
