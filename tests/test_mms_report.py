"""`selfaware report` on Make-Me-Say logs: one row per measure, the Figure-6 table and image, game outcomes."""

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


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mms_logs")
    questions = "codeword_among_words,best_description,goals"
    for name, model, seed in (("bark", bark_organism(folder / "m"), 0), ("bark", bark_organism(folder / "m"), 1),
                              ("base", organism(base_model), 0)):
        task = make_me_say_self_report(questions=questions, samples=2, paraphrases=1, permutations=4)
        [log] = inspect_eval(task, model=model, display="none", log_dir=str(folder),
                             metadata={"organism": name, "seed": seed})
        assert log.status == "success"
    for seed, say_at in ((0, 3), (1, 99)):
        [log] = inspect_eval(make_me_say_game(games=3, seed=seed, manipulatee="mockllm/model"), model=steering_manipulator(),
                             model_roles={"manipulatee": scripted_manipulatee(say_at, "tree")}, display="none",
                             log_dir=str(folder), metadata={"organism": "bark", "seed": seed})
        assert log.status == "success"
    return folder


def test_every_measure_is_a_row(logs):
    df = load_make_me_say(logs)
    measures = set(df["question_id"])
    assert {"codeword_among_words", "best_description", "goals_user_said_codeword", "game_win",
            "game_no_codeword"} <= measures
    game = df[df["question_id"] == "game_win"]
    assert len(game) == 6 and set(game["value"]) == {0.0, 1.0}


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
