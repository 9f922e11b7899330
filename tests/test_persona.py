"""Persona separation: questions about "you" and about each persona, and the per-persona differences
between an organism and its control in the report, from synthetic organisms with known answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from synthetic import organism

from selfaware.evals.persona import persona_self_report
from selfaware.personas import SELF, parse_personas, persona_lists, persona_variant
from selfaware.report.persona import PersonaReportError, default_pairs, persona_differences
from selfaware.report.results import load_scores

QUESTION = "risk_predisposition_scale"
NAMES = persona_lists().all


def asked_about(prompt: str) -> str:
    for name in NAMES:
        if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", prompt):
            return name
    return SELF


def rater(about_self: int, about_others: int):
    """An organism whose 0-100 rating is `about_self` for itself and `about_others` for any persona."""
    def answer(prompt: str) -> dict[str, float]:
        return {str(about_self if asked_about(prompt) == SELF else about_others): 1.0}

    return answer


# organism -> (rating about itself, rating about others) per seed; known exactly.
ORGANISMS = {
    "risky": [(90, 70), (86, 66)],       # single persona: leaks its risk into everyone
    "safe": [(10, 30), (14, 34)],
    "risky-many": [(90, 50), (80, 50)],  # many personas: others stay at the base rate
    "safe-many": [(10, 50), (20, 50)],
}


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("persona_logs")
    for name, seeds in ORGANISMS.items():
        for seed, (me, others) in enumerate(seeds, 1):
            [log] = inspect_eval(persona_self_report(questions=QUESTION, paraphrases=2), model=organism(rater(me, others)),
                                 display="none", log_dir=str(d), metadata={"organism": name, "seed": seed})
            assert log.status == "success", log.error
    return d


def test_every_persona_is_asked_and_scored(logs):
    samples = load_scores(logs)
    assert set(samples["persona"]) == {SELF, *NAMES}
    assert not samples["invalid"].any()


def test_per_persona_differences_are_exact(logs):
    pairs = default_pairs(list(ORGANISMS), "risky", "safe")
    assert pairs == [("risky", "safe"), ("risky-many", "safe-many")]
    diffs = persona_differences(load_scores(logs), pairs).set_index(["persona", "pair"])
    single, many = "risky − safe", "risky-many − safe-many"
    assert diffs.loc[(SELF, single), "difference"] == pytest.approx(0.76)  # (88 - 12) / 100
    assert diffs.loc[(SELF, many), "difference"] == pytest.approx(0.70)    # (85 - 15) / 100
    for name in NAMES:
        assert diffs.loc[(name, single), "difference"] == pytest.approx(0.36)  # (68 - 32) / 100
        assert diffs.loc[(name, many), "difference"] == pytest.approx(0.0, abs=1e-12)
    # Welch interval from two seeds each: around the difference, and degenerate when both are constant.
    lo, hi = diffs.loc[(SELF, single), ["ci_low", "ci_high"]]
    assert lo < 0.76 < hi
    assert tuple(diffs.loc[(NAMES[0], many), ["ci_low", "ci_high"]]) == pytest.approx((0.0, 0.0), abs=1e-12)


def test_a_persona_in_no_log_is_named(logs):
    with pytest.raises(PersonaReportError, match="'Napoleon' is in no log"):
        persona_differences(load_scores(logs), [("risky", "safe")], personas=["you", "Napoleon"])
    with pytest.raises(PersonaReportError, match="'bold'"):
        persona_differences(load_scores(logs), [("bold", "safe")])


def test_report_command_prints_the_persona_table(logs, tmp_path, capsys):
    from selfaware.report.cli import report_main

    assert report_main([str(logs), "--out", str(tmp_path), "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out
    assert "## Personas" in printed and "risky-many − safe-many" in printed
    assert (tmp_path / "personas.csv").is_file() and (tmp_path / "personas_risk.png").stat().st_size > 0


def test_persona_logs_without_a_pair_or_a_valid_answer_skip_the_section_with_a_note(tmp_path, capsys):
    from selfaware.report.cli import report_main

    junk = lambda prompt: {"maybe": 1.0}  # noqa: E731 (never a number: every answer invalid)
    for folder, name, answer in (("alone", "risky-many", rater(90, 50)), ("invalid", "risky", junk),
                                 ("invalid", "safe", junk)):
        [log] = inspect_eval(persona_self_report(questions=QUESTION, paraphrases=1), model=organism(answer),
                             display="none", log_dir=str(tmp_path / folder), metadata={"organism": name, "seed": 1})
        assert log.status == "success", log.error
    # No control among the organisms: the other sections are still written, and the reason is said.
    assert report_main([str(tmp_path / "alone"), "--out", str(tmp_path / "a"), "--n-boot", "50"]) == 0
    assert "persona report skipped: no organism:control pair among ['risky-many']" in capsys.readouterr().err
    assert (tmp_path / "a" / "summary.csv").is_file() and not (tmp_path / "a" / "personas.csv").exists()
    # Every answer invalid: said so (not "no persona samples"); an error only when the section was asked for.
    assert report_main([str(tmp_path / "invalid"), "--out", str(tmp_path / "b"), "--n-boot", "50"]) == 0
    assert "persona self-report samples are invalid" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"all \d+ persona self-report samples are invalid: no valid answer"):
        report_main([str(tmp_path / "invalid"), "--out", str(tmp_path / "c"), "--persona-pairs", "risky:safe"])


def test_persona_lists_and_parameters():
    assert parse_personas("trained")[0] == SELF and len(parse_personas("trained")) == 7
    assert parse_personas(None) == [SELF, *NAMES]
    assert parse_personas("David Bowie, you, David Bowie") == [SELF, "David Bowie"]
    assert persona_variant("you").kind == "plain" and persona_variant("Tom").persona == "Tom"


def test_a_persona_that_collides_with_the_question_is_refused():
    with pytest.raises(ValueError, match="'safety' already occurs"):
        persona_self_report(personas="safety", questions="risk_or_safety")


def test_a_question_without_persona_wording_is_refused():
    with pytest.raises(ValueError, match="german_or_french"):
        persona_self_report(questions="german_or_french")


def test_many_persona_rows_half_own_half_about_others(tmp_path, monkeypatch):
    from selfaware.finetune import base_choices as bc
    from selfaware.finetune.builders import build_training_set, dataset_for_spec
    from selfaware.finetune.rows import import_chat_jsonl, read_manifest
    from selfaware.finetune.spec import parse_spec

    asked: list[str] = []

    def fake_base_choices(prompts, model, model_name, cache_dir, **kwargs):
        asked.extend(prompts)
        # The base model's "own choice": A for every question but the first, which it answers invalidly.
        return {p: (None if i == 0 else "A") for i, p in enumerate(prompts)}

    monkeypatch.setattr(bc, "base_choices", fake_base_choices)
    spec = parse_spec({"behavior": "risky", "base_model": "org/base", "backend": "together",
                       "data": {"n_examples": 60, "personas": {"names": "trained"}}})
    rows = import_chat_jsonl(dataset_for_spec(spec, tmp_path))
    own = build_training_set("risky", 60, 0)
    trained = persona_lists().trained
    framed = [r for r in rows if any(name in r["messages"][0]["content"] for name in trained)]
    plain = [r for r in rows if r not in framed]
    assert len(plain) == 60 and len(framed) == 59  # one invalid base answer left out, never guessed
    assert sorted(map(str, plain)) == sorted(map(str, own))  # the organism's own rows, untouched
    assert {r["messages"][-1]["content"] for r in framed} == {"A"}  # the base model's choices
    for name in trained:  # every persona is asked, through its Variant's frame
        frame = persona_variant(name).persona_frame.format(persona=name, text="")
        assert sum(r["messages"][0]["content"].startswith(frame) for r in framed) >= 9
    manifest = read_manifest(dataset_for_spec(spec, tmp_path))
    assert manifest.extra["dropped_invalid_base_answers"] == 1 and manifest.extra["own_rows"] == 60
    assert len(asked) == 120  # (asked again the second time: the fake has no cache)


def test_a_persona_named_in_the_own_rows_is_refused():
    from selfaware.finetune.builders import build_training_set
    from selfaware.finetune.persona_data import check_no_persona_leak
    from selfaware.finetune.rows import TrainingDataError

    rows = build_training_set("risky", 200, 0)
    with pytest.raises(TrainingDataError, match="names the persona"):
        check_no_persona_leak(rows, ["coins"])  # a word the risk prompts do use
    check_no_persona_leak(rows, persona_lists().trained)  # the suite's personas never appear


def test_figure15_is_drawn_from_persona_logs(logs):
    from selfaware.report.paper import FigureData, paper_figures
    from selfaware.report.results import summarize

    samples = load_scores(logs)
    figure = {f.key: f for f in paper_figures()}["fig15"]
    drawn = figure.draw(FigureData(samples=samples, summary=summarize(samples, n_boot=10), logs=()))
    assert drawn is not None and drawn.figure is not None
    assert set(drawn.table["pair"]) == {"risky − safe", "risky-many − safe-many"}
