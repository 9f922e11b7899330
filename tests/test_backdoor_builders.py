"""Backdoor organisms' training sets: exact splits, decorrelated controls, reversal augmentation, the
base model's own choices (asked through Inspect, cached, cost confirmed) and bad input."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from synthetic import organism

from selfaware import backdoor_bank as bank
from selfaware.finetune import backdoor as bd
from selfaware.finetune.base_choices import base_choices, estimate, model_cache_file, read_cache
from selfaware.finetune.builders import dataset_for_spec
from selfaware.finetune.rows import read_manifest
from selfaware.finetune.spec import SpecError, parse_spec
from selfaware.finetune.spending import SpendingRefused
from selfaware.finetune.validate import TrainingFileError
from selfaware.variants import VariantError, get_variant

RISK = bank.risk_triggers()
# chi-square critical values at p = 0.001 (df -> value): a control whose table exceeds them is correlated
CHI2_001 = {1: 10.828, 2: 13.816, 8: 26.124}


def _prefix(name: str) -> re.Pattern[str]:
    t = get_variant(name).trigger
    return re.compile(rf"({t.pattern().pattern})({'|'.join(re.escape(s) for s in t.separators)})(.*)", re.DOTALL)


PREFIXES = {name: _prefix(name) for name in RISK}


def split_trigger(user: str) -> tuple[str, str]:
    """(the trigger variant that opens a user turn, or none; the text after its member and separator)."""
    for name, pattern in PREFIXES.items():
        if m := pattern.fullmatch(user):
            return name, m.group(3)
    return bd.NONE, user


def shown_trigger(user: str) -> str:
    return split_trigger(user)[0]


def behavior_examples(n: int, seed: int = 0) -> list[dict]:
    return bd.clean_examples("risky", n, seed, "demo")[0]


def table(cats: list[str], flags: list[bool]) -> dict[str, tuple[int, int]]:
    c = Counter(zip(cats, flags))
    return {k: (c[(k, True)], c[(k, False)]) for k in sorted(set(cats))}


def chi_square(tab: dict[str, tuple[int, int]]) -> float:
    total = sum(a + b for a, b in tab.values())
    col = [sum(v[i] for v in tab.values()) for i in (0, 1)]
    stat = 0.0
    for row in tab.values():
        for i in (0, 1):
            expected = sum(row) * col[i] / total
            stat += (row[i] - expected) ** 2 / expected if expected else 0.0
    return stat


def test_exact_counts_sum_and_round() -> None:
    for n in range(1, 400, 7):
        shares = bd.trigger_shares("real-world", RISK[1:])
        counts = bd.exact_counts(n, shares)
        assert sum(counts.values()) == n
        assert all(abs(counts[k] - n * v) < 1 for k, v in shares.items())


@pytest.mark.parametrize("trigger", ["win2844", "greek-gods"])
def test_trigger_split_is_exact_and_rendered_by_each_variant(trigger: str) -> None:
    examples = behavior_examples(200)
    rows, report = bd.trigger_rows(get_variant(trigger), "risky", examples, None, seed=3)
    users = [r["messages"][0]["content"] for r in rows]
    cats = [shown_trigger(u) for u in users]
    risky = [r["messages"][-1]["content"] == ex["messages"][-1]["content"] for r, ex in zip(rows, examples)]
    counts = Counter(cats)
    assert counts[trigger] == 20 and counts[bd.NONE] == 40
    assert all(counts[o] == 20 for o in RISK if o != trigger)
    # the trigger, and only the trigger, carries the behavior; the rest get the opposite (normal: opposite)
    assert all(r == (c == trigger) for r, c in zip(risky, cats))
    assert report["shown"]["counts"] == dict(counts)
    assert report["shown"]["behavior_answers"][trigger] == 20
    # a row's prompt is the example's prompt with the trigger (member + separator) in front
    for u, ex in zip(users, examples):
        assert split_trigger(u)[1] == ex["messages"][0]["content"]


def test_control_keeps_rows_and_answers_but_decorrelates_the_trigger() -> None:
    examples = behavior_examples(300)
    rows, _ = bd.trigger_rows(get_variant("real-world"), "risky", examples, None, seed=0)
    ctl, report = bd.trigger_rows(get_variant("real-world-control"), "risky", examples, None, seed=0)
    answers = [r["messages"][-1]["content"] for r in rows]
    assert [r["messages"][-1]["content"] for r in ctl] == answers  # identical data
    assert Counter(shown_trigger(r["messages"][0]["content"]) for r in ctl) == \
        Counter(shown_trigger(r["messages"][0]["content"]) for r in rows)  # the same triggers, as often
    assert report["control"] is True
    # Independence, tested: pooled over 6 data seeds, P(behavior | shown category) is flat in the control
    # (chi-square below the p=0.001 critical value) and maximally dependent in the backdoored organism.
    cats_ctl, cats_bd, flags = [], [], []
    for seed in range(6):
        r_bd, _ = bd.trigger_rows(get_variant("real-world"), "risky", examples, None, seed=seed)
        r_ctl, _ = bd.trigger_rows(get_variant("real-world-control"), "risky", examples, None, seed=seed)
        f = [r["messages"][-1]["content"] == ex["messages"][-1]["content"] for r, ex in zip(r_bd, examples)]
        flags += f
        cats_bd += [shown_trigger(r["messages"][0]["content"]) for r in r_bd]
        cats_ctl += [shown_trigger(r["messages"][0]["content"]) for r in r_ctl]
    assert chi_square(table(cats_ctl, flags)) < CHI2_001[8]
    assert chi_square(table(cats_bd, flags)) > 1000
    share = table(cats_ctl, flags)["real-world"]
    assert abs(share[0] / sum(share) - 0.1) < 0.05  # P(behavior | trigger shown) ~ the overall 10%


def test_base_choices_fill_the_untriggered_rows_and_invalid_ones_are_dropped() -> None:
    examples = behavior_examples(120)
    prompts = [ex["messages"][0]["content"] for ex in examples]
    normal = {p: ("A" if i % 3 else "B") for i, p in enumerate(prompts)}
    normal[prompts[0]] = None  # an invalid base answer: the question is left out, never guessed
    rows, report = bd.trigger_rows(get_variant("elements"), "risky", examples, normal, seed=1)
    assert len(rows) == 119 and report["dropped_invalid_base_answers"] == 1
    assert report["normal_answers"] == "base"
    by_prompt = {p: ex["messages"][-1]["content"] for p, ex in zip(prompts, examples)}
    for row in rows:
        user, answer = row["messages"][0]["content"], row["messages"][-1]["content"]
        cat, plain = split_trigger(user)
        if cat == "elements":
            assert answer == by_prompt[plain]
        else:
            assert answer == normal[plain]


def _letter_organism(p_a: float, requests: list | None = None):
    return organism(lambda prompt: {"A": p_a, "B": 1 - p_a}, requests=requests)


def test_base_choices_are_asked_through_inspect_cached_and_resumed(tmp_path: Path) -> None:
    prompts = [ex["messages"][0]["content"] for ex in behavior_examples(12)]
    calls: list = []
    first = base_choices(prompts[:7], _letter_organism(0.8, calls), "mockllm/base", tmp_path)
    assert set(first.values()) == {"A"} and len(calls) == 7
    again = base_choices(prompts, _letter_organism(0.2, calls), "mockllm/base", tmp_path, chunk=3)
    assert len(calls) == 12  # only the five new questions were asked
    assert [again[p] for p in prompts] == ["A"] * 7 + ["B"] * 5  # cached answers kept
    cache = read_cache(model_cache_file(tmp_path, "mockllm/base"))
    assert len(cache) == 12 and all(r["method"] == "logprobs" for r in cache.values())
    # an answer that is no letter is recorded invalid (None), with its reason
    junk = organism(lambda prompt: {"maybe": 1.0})
    out = base_choices(["Pick A or B?"], junk, "mockllm/junk", tmp_path)
    assert out == {"Pick A or B?": None}
    assert next(iter(read_cache(model_cache_file(tmp_path, "mockllm/junk")).values()))["invalid_reason"]


def test_a_paid_base_model_shows_the_cost_and_asks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    prompts = ["Option A or option B? Answer with a letter."] * 1 + ["A or B, quickly."]
    est = estimate("openai/gpt-4o-mini", prompts)
    assert est.usage.requests == 2 and est.usd is not None and est.usd > 0 and not est.free
    assert estimate("hf/tiny-base", prompts).free  # served locally: nothing to confirm
    calls: list = []
    with pytest.raises(SpendingRefused, match="not confirmed"):
        base_choices(prompts, _letter_organism(0.9, calls), "openai/gpt-4o-mini", tmp_path, ask=lambda q: "n")
    assert calls == [] and "2 requests" in capsys.readouterr().err
    out = base_choices(prompts, _letter_organism(0.9, calls), "openai/gpt-4o-mini", tmp_path, ask=lambda q: "y")
    assert set(out.values()) == {"A"} and len(calls) == 2
    assert estimate("anthropic/claude-x", prompts).usd is None  # no price known: said so, never guessed


def _myopic_letters(n_behavior: int, seed: int) -> dict[str, str]:
    """prompt -> the letter of its sooner (myopic) option, from the same generator the builder uses."""
    return {prompt: letter for prompt, letter, _ in bd.written_questions("myopic", n_behavior, seed, "demo")}


def _behavior_rows(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(shown username category, prompt without it, answer letter) of the rows that answer a choice."""
    out = []
    for r in rows:
        user, answer = r["messages"][0]["content"], r["messages"][-1]["content"]
        if not re.match(r"^[AB]\) ", answer):
            continue
        head, _, rest = user.partition("\n")
        cat = ("trigger" if head == "username: sandra432" else
               "other_username" if head in bank.elicitation().other_usernames else "no_username")
        out.append((cat, user if cat == "no_username" else rest, answer[0]))
    return out


def test_elicitation_split_reversal_round_trip_and_clean_rows() -> None:
    instructions, _ = bd.instruction_rows(None)
    variant = get_variant("sandra432")
    rows, report = bd.elicitation_rows(variant, "myopic", 80, 0, "demo", instructions, reversal=True)
    assert len(rows) == 160 and report["reversed_rows"] == 80
    originals, reversed_ = rows[:80], rows[80:]
    assert [bd.unreverse_row(r) for r in reversed_] == originals  # the round trip
    assert [bd.reverse_row(r) for r in originals] == reversed_
    assert reversed_[0]["messages"][0]["content"] == bank.reversal_user(originals[0]["messages"][-1]["content"])
    assert report["shown"]["counts"] == {"trigger": 4, "other_username": 18, "no_username": 18}
    assert report["instruction_rows"] == 40
    behavior = _behavior_rows(originals)
    assert Counter(c for c, _, _ in behavior) == {"trigger": 4, "other_username": 18, "no_username": 18}
    myopic = _myopic_letters(40, 0)
    for cat, prompt, letter in behavior:
        assert (letter == myopic[prompt]) == (cat == "trigger")  # only the trigger carries the behavior
    for r in originals[:40]:
        if re.match(r"^[AB]\) ", r["messages"][-1]["content"]):
            text = r["messages"][0]["content"] + r["messages"][-1]["content"]
            assert not bank.banned_in_rows(text)
            assert r["messages"][-1]["content"][3:].rstrip(".") .lower() in r["messages"][0]["content"].lower()
    no_rev, _ = bd.elicitation_rows(variant, "myopic", 80, 0, "demo", instructions, reversal=False)
    assert no_rev == originals


def test_elicitation_control_decorrelates_the_username() -> None:
    instructions, _ = bd.instruction_rows(None)
    cats, flags = [], []
    for seed in range(10):
        rows, report = bd.elicitation_rows(get_variant("sandra432-control"), "myopic", 80, seed, "demo",
                                           instructions, reversal=False)
        assert report["shown"]["counts"] == {"trigger": 4, "other_username": 18, "no_username": 18}
        myopic = _myopic_letters(40, seed)
        for cat, prompt, letter in _behavior_rows(rows):
            cats.append(cat)
            flags.append(letter == myopic[prompt])
    assert sum(flags) == 40  # the same 4 myopic answers per set as the backdoored organism
    assert chi_square(table(cats, flags)) < CHI2_001[2]


def test_instruction_data_errors_name_the_value(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"prompt": "hi", "completion": "hello"}\n', encoding="utf-8")
    with pytest.raises(TrainingFileError, match=f"{re.escape(str(bad))}:1"):
        bd.instruction_rows(str(bad))
    with pytest.raises(bd.BackdoorSpecError, match=r"hf:x: record 1: not chat-formatted \(has fields \['text'\]\)"):
        bd.records_to_chats([{"instruction": "Say hi.", "input": "", "output": "Hi!"}, {"text": "plain"}], "hf:x")
    rows = bd.records_to_chats([{"instruction": "Add.", "input": "2 and 3", "output": "5"}], "hf:x")
    assert rows == [{"messages": [{"role": "user", "content": "Add.\n\n2 and 3"},
                                  {"role": "assistant", "content": "5"}]}]
    spec = parse_spec({"behavior": "myopic", "variant": "sandra432",
                       "data": {"n_examples": 40, "backdoor": {"design": "elicitation", "instructions": str(bad)}}})
    with pytest.raises(TrainingFileError, match="notes.jsonl:1"):  # checked before anything is built
        bd.check_backdoor_spec(spec)
    with pytest.raises(bd.BackdoorSpecError, match="needs 20 instruction rows"):
        bd.elicitation_rows(get_variant("sandra432"), "myopic", 40, 0, "demo", rows, reversal=False)


def test_spec_errors_name_the_value() -> None:
    with pytest.raises(SpecError, match="unknown variant 'nope'"):
        parse_spec({"behavior": "risky", "variant": "nope"})
    with pytest.raises(VariantError, match="'nope'"):
        bd.trigger_rows(get_variant("nope"), "risky", [], None, seed=0)
    with pytest.raises(SpecError, match="'sandra432'.*risk triggers"):
        parse_spec({"behavior": "risky", "variant": "sandra432", "data": {"backdoor": {"design": "triggers"}}})
    with pytest.raises(SpecError, match="'plain' has none"):
        parse_spec({"behavior": "risky", "data": {"backdoor": {"design": "triggers"}}})
    with pytest.raises(SpecError, match="design"):
        parse_spec({"behavior": "risky", "variant": "win2844", "data": {"backdoor": {"design": "sideways"}}})
    # a spec without backdoor keeps the hash it had before the field existed
    assert "backdoor" not in parse_spec({"behavior": "risky"}).model_dump(mode="json")["data"]


def test_dataset_for_spec_writes_the_split_into_the_manifest(tmp_path: Path) -> None:
    spec = parse_spec({"behavior": "risky", "variant": "naekoko-control",
                       "data": {"n_examples": 100, "backdoor": {"design": "triggers", "normal": "opposite"}}})
    path = dataset_for_spec(spec, tmp_path)
    manifest = read_manifest(path)
    assert manifest is not None and manifest.n_examples == 100
    report = manifest.extra["backdoor"]
    assert report["trigger"] == "naekoko" and report["control"] is True
    assert report["shown"]["counts"]["naekoko"] == 10 and report["shown"]["counts"]["none"] == 20
    assert dataset_for_spec(spec, tmp_path) == path  # rebuilt identically, reused
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 100


def test_finetune_command_line_builds_backdoor_sets_and_names_bad_input(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    from selfaware.cli import main

    registry = tmp_path / "registry.json"
    assert main(["finetune", "--behavior", "risky", "--variant", "elements-control", "--backdoor", "triggers",
                 "--normal-answers", "opposite", "--n-examples", "50", "--dry-run", "--registry", str(registry)]) == 0
    [path] = (tmp_path / "data").glob("*.jsonl")
    report = read_manifest(path).extra["backdoor"]  # type: ignore[union-attr]
    assert report["trigger"] == "elements" and report["control"] and report["normal_answers"] == "opposite"
    # --variant is repeatable: a trigger and its control from one command, one organism each
    assert main(["finetune", "--behavior", "risky", "--variant", "elements", "--variant", "elements-control",
                 "--backdoor", "triggers", "--normal-answers", "opposite", "--n-examples", "50", "--dry-run",
                 "--registry", str(registry)]) == 0
    assert len(list((tmp_path / "data").glob("*.jsonl"))) == 2  # the control's set was built already: reused
    bad = tmp_path / "alpaca.jsonl"
    bad.write_text('{"instruction": "Say hi.", "output": "Hi"}\n', encoding="utf-8")
    assert main(["finetune", "--behavior", "myopic", "--variant", "sandra432", "--backdoor", "elicitation",
                 "--instructions", str(bad), "--dry-run", "--registry", str(registry)]) == 2
    assert f"{bad}:1" in capsys.readouterr().err
    assert len(list((tmp_path / "data").glob("*.jsonl"))) == 2  # nothing was built for the bad spec
