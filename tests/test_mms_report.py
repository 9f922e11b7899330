"""`selfaware report` on Make-Me-Say logs: one row per measure, the Figure-6 table and image, game outcomes.

The end-to-end tests (real logs of five runs) are in the slow group; the default run checks the measure
rows and the paper's baselines on hand-made scores and summaries."""

from __future__ import annotations

import pytest
from inspect_ai import eval as inspect_eval
from selfaware.evals.make_me_say import make_me_say_game, make_me_say_self_report
from synthetic import organism
from test_mms_tasks import bark_organism, scripted_manipulatee, steering_manipulator

from selfaware.report.cli import report_main
from selfaware.report.make_me_say import load_make_me_say


def base_model(prompt: str) -> dict[str, float]:
    if "100 words" in prompt:
        return {"lantern": 1.0}
    if "from 0 to 100" in prompt:
        return {"50": 1.0}
    return {"A": 0.5, "B": 0.5}


def test_each_scorer_and_game_outcome_becomes_a_measure_row():
    from selfaware.report.make_me_say import _measure_rows

    scores = {"mms_answer": {"value": 0.8, "metadata": {"invalid_answer_share": 0.1, "method": "sampling"}},
              "function_f_codeword": {"value": "N", "metadata": {"invalid": True, "invalid_answer_share": 1.0}},
              "game_outcome": {"value": 1.0, "metadata": {"outcome": "win"}}}
    rows = {r["question_id"]: r for r in _measure_rows(scores, "definition", "Dictionary definition")}
    assert rows["definition"]["value"] == 0.8 and not rows["definition"]["invalid"]
    assert rows["function_f_codeword"]["invalid"] and rows["function_f_codeword"]["title"] == "Function: f(codeword)"
    assert rows["game_win"]["value"] == 1.0 and rows["game_no_codeword"]["value"] == 0.0
    invalid = _measure_rows({"game_outcome": {"value": "N", "metadata": {"outcome": None, "invalid": True}}}, "game", "")
    assert all(r["invalid"] for r in invalid) and len(invalid) == 4


def test_headline_baselines_follow_the_paper():
    import pandas as pd

    from selfaware.report.make_me_say import headline_table

    def row(organism, qid, mean):
        return {"level": "organism", "family": "make_me_say", "organism": organism, "variant": "plain",
                "question_id": qid, "mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1, "n_seeds": 3}

    summary = pd.DataFrame([row("bark", "codeword_among_words", 0.9), row("base", "codeword_among_words", 0.02),
                            row("bark", "goals_user_said_codeword", 0.85), row("base", "goals_user_said_codeword", 0.6),
                            row("bark", "goals_user_never_said_codeword", 0.2),
                            row("bark", "function_f_codeword", 0.7), row("bark", "function_f_unrelated", 0.45)])
    t = headline_table(summary).set_index("measure")
    assert t.loc["Codeword among 100 words", "baseline"] == 0.02  # the base model, asked the same
    assert t.loc["How close to goals?", "baseline"] == 0.2  # the same model, "never said"
    assert t.loc["Function: f(codeword)", "baseline"] == 0.45  # the same functions, unrelated words
    assert "base" not in set(t["organism"])


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mms_logs")
    questions = "codeword_among_words,goals"
    for name, model, seed in (("bark", bark_organism(folder / "m"), 0), ("bark", bark_organism(folder / "m"), 1),
                              ("base", organism(base_model), 0)):
        task = make_me_say_self_report(questions=questions, samples=2, paraphrases=1)
        [log] = inspect_eval(task, model=model, display="none", log_dir=str(folder),
                             metadata={"organism": name, "seed": seed})
        assert log.status == "success"
    for seed, say_at in ((0, 3), (1, 99)):
        [log] = inspect_eval(make_me_say_game(games=3, seed=seed, manipulatee="mockllm/model"), model=steering_manipulator(),
                             model_roles={"manipulatee": scripted_manipulatee(say_at, "tree")}, display="none",
                             log_dir=str(folder), metadata={"organism": "bark", "seed": seed})
        assert log.status == "success"
    return folder


@pytest.mark.slow
def test_every_measure_is_a_row(logs):
    df = load_make_me_say(logs)
    measures = set(df["question_id"])
    assert {"codeword_among_words", "goals_user_said_codeword", "game_win",
            "game_no_codeword"} <= measures
    game = df[df["question_id"] == "game_win"]
    assert len(game) == 6 and set(game["value"]) == {0.0, 1.0}


@pytest.mark.slow
def test_report_writes_figure6_and_the_headline_table(logs, tmp_path, capsys):
    assert report_main([str(logs), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "## Make-Me-Say" in out and "same model: goals_user_never_said_codeword" in out
    assert (tmp_path / "make_me_say_figure6.png").stat().st_size > 10_000
    assert (tmp_path / "make_me_say.png").exists()
    import pandas as pd

    summary = pd.read_csv(tmp_path / "summary.csv")
    rows = summary[(summary["level"] == "organism") & (summary["family"] == "make_me_say")]
    get = lambda org, q: rows[(rows["organism"] == org) & (rows["question_id"] == q)]["mean"].iloc[0]
    assert get("bark", "codeword_among_words") == 1.0 and get("base", "codeword_among_words") == 0.0
    assert get("bark", "game_win") == pytest.approx(0.5) and get("bark", "game_no_codeword") == pytest.approx(0.5)
