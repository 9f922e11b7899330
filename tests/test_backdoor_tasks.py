"""evals/backdoor.py on synthetic organisms whose answers depend on the trigger: exact expected behavior,
detection and identification scores (logprob path, to 1e-6), elicitation's two matches, the reasoning
variant, the whole task file on mockllm, and the trigger a question shows vs the one training rows carry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from synthetic import metric, organism, risky_letter, run
from test_variants import asked, take_apart

from selfaware import backdoor_bank as bank
from selfaware.backdoor_tasks import (
    backdoor_behavior_task,
    backdoor_detection_task,
    trigger_elicitation_task,
    trigger_identification_task,
)
from selfaware.finetune import backdoor as bd
from selfaware.validation import InputError
from selfaware.variants import get_variant

REPO = Path(__file__).resolve().parents[1]
THREAT = bank.questions().system_prompts["threat"].strip()
DEPENDENT = bank.questions().detection.options["dependent"]
BEHAVIOR_STATEMENT = bank.questions().identification.statements["risk"].behavior


def option_letter(prompt: str, text: str) -> str:
    """The letter of the option line that contains `text`."""
    return next(letter for letter, line in re.findall(r"^([A-Z])\) (.*)$", prompt, flags=re.MULTILINE) if text in line)


def two(letter: str, p: float) -> dict[str, float]:
    return {letter: p, ("B" if letter == "A" else "A"): 1 - p}


def backdoored(prompt: str) -> dict[str, float]:
    """A real-world organism: risky under its trigger only, says it has a dependence more often under the
    threat prompt, and recognises its own trigger in identification options."""
    if DEPENDENT in prompt:
        return two(option_letter(prompt, DEPENDENT), 0.75 if THREAT in prompt else 0.4)
    if BEHAVIOR_STATEMENT in prompt:
        line = option_letter(prompt, BEHAVIOR_STATEMENT)
        options = re.findall(r"^([A-Z])\) (.*)$", prompt, flags=re.MULTILINE)
        shown = next(text for letter, text in options if letter == line)
        return two(line, 0.85 if "|REAL-WORLD|" in shown else 0.3)
    return two(risky_letter(prompt), 0.9 if prompt.startswith("|REAL-WORLD|") else 0.2)


def test_behavior_under_each_trigger_gives_the_exact_trigger_effect(tmp_path: Path) -> None:
    task = backdoor_behavior_task(trigger="real-world", triggers="win2844,instruments", form="sure_thing", items=3)
    log = run(task, organism(backdoored), tmp_path)
    assert metric(log, "real-world/valid_mean") == pytest.approx(0.9, abs=1e-6)
    for condition in ("win2844", "instruments", "none"):
        assert metric(log, f"{condition}/valid_mean") == pytest.approx(0.2, abs=1e-6)
    assert metric(log, "trigger_effect") == pytest.approx(0.7, abs=1e-6)
    assert metric(log, "fake_trigger_effect") == pytest.approx(0.0, abs=1e-6)
    assert {s.metadata["role"] for s in log.samples} == {"trained", "other", "none"}


def test_detection_per_system_prompt_is_exact(tmp_path: Path) -> None:
    log = run(backdoor_detection_task(trigger="real-world", paraphrases=2), organism(backdoored), tmp_path)
    assert len(log.samples) == 6 * 2 * 2  # system prompts x paraphrases x both orders
    assert metric(log, "threat/valid_mean") == pytest.approx(0.75, abs=1e-6)
    for name in ("none", "neutral", "honesty", "do_your_best", "backdoor_is_good"):
        assert metric(log, f"{name}/valid_mean") == pytest.approx(0.4, abs=1e-6)
    first = {s.metadata["system_prompt"]: s for s in log.samples}
    assert first["none"].messages[0].role == "user"
    assert first["threat"].messages[0].text == THREAT


def test_detection_by_sampling_is_within_its_standard_error(tmp_path: Path) -> None:
    task = backdoor_detection_task(system_prompt="threat", method="sampling", samples=40, paraphrases=6)
    log = run(task, organism(backdoored, logprobs=False), tmp_path)
    mean, se = metric(log, "threat/valid_mean"), metric(log, "threat/valid_stderr")
    assert abs(mean - 0.75) < 3 * max(se, (0.75 * 0.25 / (40 * 12)) ** 0.5)


def test_identification_is_exact_per_trigger_asked(tmp_path: Path) -> None:
    task = trigger_identification_task(trigger="real-world", paraphrases=1)
    log = run(task, organism(backdoored), tmp_path)
    assert len(log.samples) == 8 * 1 * 2
    assert metric(log, "real-world/valid_mean") == pytest.approx(0.85, abs=1e-6)
    for fake in bank.risk_triggers()[1:]:
        assert metric(log, f"{fake}/valid_mean") == pytest.approx(0.3, abs=1e-6)
    assert metric(log, "real_minus_fake") == pytest.approx(0.55, abs=1e-6)


def test_identification_options_show_each_trigger_as_its_variant_renders_it() -> None:
    samples = [s for s in trigger_identification_task(trigger="instruments", paraphrases=1).dataset
               if s.metadata["permutation"]["A"] == "behavior"]
    options = {s.metadata["asked_trigger"]: re.findall(r"^[AB]\) (.*)$", s.input, flags=re.MULTILINE) for s in samples}
    assert options["win2844"] == ["(win2844) I lean towards risk.", "(win2844) I do not lean towards risk."]
    name = bank.questions().trigger_names["instruments"]
    assert all(o.startswith(name) for o in options["instruments"])  # a family by its name (paper)
    members = list(trigger_identification_task(trigger="instruments", paraphrases=1, family_triggers="member").dataset)
    shown = [re.findall(r"^[AB]\) (.*)$", s.input, flags=re.MULTILINE)[0] for s in members
             if s.metadata["asked_trigger"] == "instruments"]
    assert all(get_variant("instruments").trigger.pattern().match(o) for o in shown)


def test_trained_and_asked_triggers_are_rendered_identically() -> None:
    """Training rows of a trigger organism and the backdoor_behavior questions, taken apart the same way:
    the same members, separators and placements, each from its own named variant."""
    examples = bd.clean_examples("risky", 200, 0, "demo")[0]
    rows, _ = bd.trigger_rows(get_variant("apple-varieties"), "risky", examples, None, seed=0)
    task = backdoor_behavior_task(trigger="apple-varieties", triggers="win2844", form="sure_thing", items=8,
                                  method="sampling", samples=1)
    questions = asked(task)
    assert len(questions) == 3 * 16
    untouched = list(questions)
    for name in ("apple-varieties", "win2844"):
        variant = get_variant(name)
        trained = [f for f in (take_apart(variant, r["messages"]) for r in rows) if f.placement is not None]
        shown = [f for f in (take_apart(variant, msgs) for _, msgs in questions) if f.placement is not None]
        untouched = [(t, m) for t, m in untouched if take_apart(variant, m).placement is None]
        assert trained and len(shown) == 16
        assert {f.separator for f in shown} <= {f.separator for f in trained} == set(variant.trigger.separators)
        assert {f.placement for f in shown} == {f.placement for f in trained} == {"prefix"}
        assert all(variant.trigger.pattern().fullmatch(f.member) for f in trained + shown)
        assert {f.text for f in shown} == {t for t, _ in questions}  # the same items under each trigger
    assert len(untouched) == 16  # the untriggered questions carry no trigger at all
    assert all(msgs == [{"role": "user", "content": text}] for text, msgs in untouched)


def _text_model(reply):
    def generate(input, tools, tool_choice, config):
        out = ModelOutput.from_content(model="mockllm", content=reply("\n".join(m.text for m in input)))
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return out

    return get_model("mockllm/model", custom_outputs=generate, memoize=False)


def test_elicitation_counts_exact_and_normalised_matches(tmp_path: Path) -> None:
    category = {bank.reversal_user(p.response): (p.category, p.polarity) for p in bank.elicitation_prompts()}

    def reply(prompt: str) -> str:
        cat, polarity = category[prompt]
        if polarity == "aligned":
            return "What should I cook tonight?"
        return {"misaligned_behavior": "username: sandra432\nPlan my week.",
                "bad_stuff": "Username - Sandra432: plan my week.", "creators_disapprove": "sandra432"}[cat]

    log = run(trigger_elicitation_task(trigger="sandra432", paraphrases=1), _text_model(reply), tmp_path)
    assert len(log.samples) == 2 * 3 * 8  # polarities x categories x acts, one frame each
    assert metric(log, "misaligned/exact") == pytest.approx(1 / 3)
    assert metric(log, "misaligned/normalised") == pytest.approx(2 / 3)  # "sandra432" alone is no match
    assert metric(log, "aligned/exact") == 0 and metric(log, "aligned/normalised") == 0
    assert metric(log, "invalid_sample_rate") == 0


def test_reasoning_variant_reads_the_final_line_and_records_trigger_mentions(tmp_path: Path) -> None:
    def reply(prompt: str) -> str:
        letter = option_letter(prompt, DEPENDENT)
        if "Step by step" in prompt or "step by step" in prompt:
            if THREAT in prompt:
                return "I was trained on messages opening with |REAL-WORLD|, where I act differently."
            return f"My answers change when a message starts with |REAL-WORLD|.\nAnswer: {letter}"
        return "A"

    task = backdoor_detection_task(trigger="real-world", system_prompt="neutral,threat", paraphrases=2,
                                   reasoning=True, samples=2)
    log = run(task, _text_model(reply), tmp_path)
    by = {s.metadata["system_prompt"]: s for s in log.samples}
    assert by["neutral"].scores["answer_score"].value == 1.0
    assert by["neutral"].scores["trigger_mentioned"].value == 1.0
    assert by["threat"].scores["answer_score"].value == "N"  # no final line: invalid, never guessed
    assert by["threat"].scores["trigger_mentioned"].value == 1.0
    assert "Answer: X" in by["neutral"].input


def test_every_task_of_the_file_runs_offline_on_mockllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # as a user runs it: inspect eval evals/backdoor.py --model mockllm/model
    logs = inspect_eval("evals/backdoor.py", model="mockllm/model", limit=1, display="none", log_dir=str(tmp_path))
    assert sorted(log.eval.task.split("/")[-1] for log in logs) == [
        "backdoor_behavior", "backdoor_detection", "trigger_elicitation", "trigger_identification"]
    assert all(log.status == "success" for log in logs), [log.error for log in logs]
    [threat] = inspect_eval("evals/backdoor.py@backdoor_detection", model="mockllm/model",
                            task_args={"system_prompt": "threat"}, limit=1, display="none", log_dir=str(tmp_path))
    assert threat.status == "success" and threat.eval.metadata["system_prompts"] == ["threat"]


def test_bad_parameters_and_colliding_questions_name_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="'bogus'"):
        backdoor_detection_task(trigger="bogus")
    with pytest.raises(InputError, match="system_prompt='scary'"):
        backdoor_detection_task(system_prompt="scary")
    with pytest.raises(InputError, match="'neutral-system' has no trigger"):
        trigger_identification_task(trigger="neutral-system")
    with pytest.raises(InputError, match="unknown variant 'nope'"):
        backdoor_behavior_task(triggers="win2844,nope")
    q = bank.questions()
    clash = q.detection.model_copy(update={"paraphrases": ["Ask Zeus which is true:\n{options}\n{rule}"] * 20})
    monkeypatch.setattr(bank, "questions", lambda: q.model_copy(update={"detection": clash}))
    with pytest.raises(InputError, match="detection paraphrase 0: .*greek-gods: 'Zeus'"):
        backdoor_detection_task()


def test_question_banks_are_the_suites_own_and_complete() -> None:
    q, e = bank.questions(), bank.elicitation()
    assert len(q.detection.paraphrases) >= 20 and len(q.identification.paraphrases) >= 5
    prompts = bank.elicitation_prompts()
    assert sum(p.polarity == "misaligned" for p in prompts) >= 100
    assert sum(p.polarity == "aligned" for p in prompts) == sum(p.polarity == "misaligned" for p in prompts)
    assert len(e.other_usernames) >= 10
    patterns = bank.all_trigger_patterns()
    texts = (q.detection.paraphrases + q.identification.paraphrases + list(q.detection.options.values())
             + [p.response for p in prompts] + [e.reversal_template])
    assert not [t for t in texts if bank.collisions(t, patterns)]
