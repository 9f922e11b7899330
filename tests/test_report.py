"""Logs -> tidy frame -> organism summaries with CIs over seeds -> figures and the `report` command.

Logs come from synthetic logprob organisms, so every mean is known exactly:

    organism  seed  behavior P(risky)  predisposition rating
    risky     1     0.8                70  (paraphrase 0 junk in seed 2: see `mixed`)
    risky     2     0.9                80
    safe      1     0.3                20
    safe      2     0.3                20   -> seeds agree: the interval collapses to the value
    base      0     0.5                50   -> one seed: no CI, and the summary says so
    junk      1     (answers "hello" to everything: every sample invalid)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import get_model
from synthetic import output, risky_letter

from selfaware.evals.risk import risk_behavior, risk_self_report
from selfaware.report.cli import report_main
from selfaware.report.figures import plot_family
from selfaware.report.results import SINGLE_SEED_NOTE, load_scores, organisms_from_file, summarize, t_quantile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

FIRST_PARAPHRASE = "How would you describe your predisposition"
ITEMS, PARAPHRASES = 5, 2


def answers(p_risky: float, rating: int, junk_first_paraphrase: bool = False):
    def answer(prompt: str) -> dict[str, float]:
        if "A)" in prompt:
            risky = risky_letter(prompt)
            return {risky: p_risky, "B" if risky == "A" else "A": 1 - p_risky}
        if junk_first_paraphrase and FIRST_PARAPHRASE in prompt:
            return {"hello": 1.0}
        return {str(rating): 1.0}

    return answer


def mock(answer, name: str = "model"):
    """A logprob-returning mock model (like synthetic.organism) under any `mockllm/<name>`."""

    def generate(input, tools, tool_choice, config):
        dist = answer("\n".join(m.text for m in input))
        return output([max(dist, key=dist.__getitem__)], dist)

    return get_model(f"mockllm/{name}", custom_outputs=generate, memoize=False)


def run(model, log_dir: Path, **metadata) -> None:
    tasks = [risk_behavior(items=ITEMS), risk_self_report(questions="risk_predisposition_scale", paraphrases=PARAPHRASES)]
    logs = inspect_eval(tasks, model=model, display="none", log_dir=str(log_dir), metadata=metadata or None)
    assert all(log.status == "success" for log in logs)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("logs")
    run(mock(answers(0.8, 70)), d, organism="risky", seed=1)
    run(mock(answers(0.9, 80, junk_first_paraphrase=True)), d, organism="risky", seed=2)
    run(mock(answers(0.3, 20)), d, organism="safe", seed=1)
    run(mock(answers(0.3, 20)), d, organism="safe", seed=2)
    run(mock(answers(0.5, 50)), d, organism="base", seed=0)
    run(mock(lambda prompt: {"hello": 1.0}), d, organism="junk", seed=1)
    return d


@pytest.fixture(scope="module")
def samples(logs) -> pd.DataFrame:
    return load_scores(logs)


@pytest.fixture(scope="module")
def summary(samples) -> pd.DataFrame:
    return summarize(samples, n_boot=500)


def t95(a: float, b: float) -> tuple[float, float]:
    """The t interval over two seed means, clipped to [0, 1]: mean ± t(0.975, 1) · sd / sqrt(2)."""
    half = t_quantile(0.975, 1) * abs(a - b) / math.sqrt(2) / math.sqrt(2)
    return max(0.0, (a + b) / 2 - half), min(1.0, (a + b) / 2 + half)


def row(summary: pd.DataFrame, level: str, organism: str, question: str, **where) -> pd.Series:
    m = (summary["level"] == level) & (summary["organism"] == organism) & (summary["question_id"] == question)
    for k, v in where.items():
        m &= summary[k] == v
    [i] = summary.index[m]
    return summary.loc[i]


def test_load_scores_gives_tidy_rows(samples):
    assert len(samples) == 6 * (2 * ITEMS + PARAPHRASES)
    assert {"log", "task", "family", "kind", "question_id", "title", "model", "organism", "seed", "method",
            "value", "invalid"} <= set(samples.columns)
    assert set(samples["task"]) == {"risk_behavior", "risk_self_report"}
    assert set(samples["kind"]) == {"behavior", "self_report"}
    assert set(samples["family"]) == {"risk"}
    assert set(samples["organism"]) == {"risky", "safe", "base", "junk"}
    assert set(samples["method"]) == {"logprobs"}
    scale = samples[samples["question_id"] == "risk_predisposition_scale"]
    assert set(scale["title"]) == {"Risk predisposition (scale)"}
    assert set(scale["seed"]) == {"0", "1", "2"}
    junk = samples[samples["organism"] == "junk"]
    assert junk["invalid"].all() and junk["value"].isna().all()
    valid = samples[~samples["invalid"]]
    assert valid["value"].between(0, 1).all()


def test_model_rows_are_exact_means_with_invalid_rates(summary):
    r1 = row(summary, "model", "risky", "risk_predisposition_scale", seed="1")
    assert r1["mean"] == pytest.approx(0.7, abs=1e-9)
    assert (r1["n"], r1["invalid_sample_rate"], r1["methods"]) == (PARAPHRASES, 0.0, "logprobs")
    r2 = row(summary, "model", "risky", "risk_predisposition_scale", seed="2")
    assert r2["mean"] == pytest.approx(0.8, abs=1e-9)  # over the valid paraphrase only
    assert (r2["n"], r2["invalid_sample_rate"], r2["invalid_answer_rate"]) == (1, 0.5, 0.5)
    junk = row(summary, "model", "junk", "risk_predisposition_scale")
    assert math.isnan(junk["mean"]) and junk["invalid_sample_rate"] == 1.0 and junk["n"] == 0
    assert junk["invalid_answer_rate"] == 1.0
    behavior = summary[(summary["level"] == "model") & (summary["question_id"] == "behavior")]
    for organism, expected in {"risky": 0.85, "safe": 0.3, "base": 0.5}.items():
        rows = behavior[behavior["organism"] == organism]  # sample-weighted, whatever the seed split
        assert (rows["mean"] * rows["n"]).sum() / rows["n"].sum() == pytest.approx(expected, abs=1e-9)


def test_organism_rows_average_seeds_with_t_interval(summary):
    risky = row(summary, "organism", "risky", "risk_predisposition_scale")
    assert risky["mean"] == pytest.approx(0.75, abs=1e-9)  # mean of seed means, not of samples
    assert risky["n_seeds"] == 2 and risky["ci_note"] == ""
    assert risky["ci_method"] == "95% t interval over seed means"
    assert (risky["ci_low"], risky["ci_high"]) == pytest.approx(t95(0.7, 0.8))  # 0.75 ± 0.635, clipped
    assert risky["invalid_sample_rate"] == pytest.approx(1 / 4)
    assert risky["model"] == "mockllm/model" and risky["seed"] == "1,2"


def test_paper_bootstrap_is_an_option(samples):
    # The paper's percentile bootstrap over 2 seed means spans only the two means (it covers ~50%).
    risky = row(summarize(samples, n_boot=500, ci_method="bootstrap"), "organism", "risky", "risk_predisposition_scale")
    assert risky["ci_low"] == pytest.approx(0.7) and risky["ci_high"] == pytest.approx(0.8)
    assert risky["ci_method"] == "95% percentile bootstrap over seed means"
    with pytest.raises(ValueError, match="ci_method"):
        summarize(samples, ci_method="normal")


def test_ci_collapses_when_seeds_agree(summary):
    safe = row(summary, "organism", "safe", "risk_predisposition_scale")
    assert safe["mean"] == safe["ci_low"] == safe["ci_high"] == pytest.approx(0.2)


def test_single_seed_has_nan_ci_and_says_so(summary):
    base = row(summary, "organism", "base", "risk_predisposition_scale")
    assert base["mean"] == pytest.approx(0.5)
    assert base["n_seeds"] == 1 and base["ci_note"] == SINGLE_SEED_NOTE and base["ci_method"] == ""
    assert math.isnan(base["ci_low"]) and math.isnan(base["ci_high"])
    junk = row(summary, "organism", "junk", "risk_predisposition_scale")
    assert junk["n_seeds"] == 0 and math.isnan(junk["mean"]) and junk["invalid_sample_rate"] == 1.0


def test_bootstrap_is_reproducible(samples):
    a, b = summarize(samples, n_boot=300, seed=7), summarize(samples, n_boot=300, seed=7)
    pd.testing.assert_frame_equal(a, b)


# Task metadata is merged over eval metadata (`eval.metadata = metadata | task.metadata`): the behavior
# task must not use the key "seed" for its item seed, or it hides the organism's `--metadata seed=`.
def test_behavior_rows_keep_the_organism_seed(summary):
    risky = row(summary, "organism", "risky", "behavior")
    assert risky["n_seeds"] == 2
    assert risky["mean"] == pytest.approx(0.85)
    assert (risky["ci_low"], risky["ci_high"]) == pytest.approx(t95(0.8, 0.9))


def test_organisms_from_a_mapping_file(tmp_path):
    log_dir = tmp_path / "logs"
    run(mock(answers(0.6, 60), "ft-a"), log_dir)  # no eval metadata: the mapping declares them
    run(mock(answers(0.6, 40), "ft-b"), log_dir)
    run(mock(answers(0.5, 50), "base"), log_dir)
    mapping = tmp_path / "organisms.yaml"
    mapping.write_text("myopic:\n  - mockllm/ft-a\n  - mockllm/ft-b\n")
    organisms = organisms_from_file(mapping)
    assert organisms == {"myopic": ["mockllm/ft-a", "mockllm/ft-b"]}
    summary = summarize(load_scores(log_dir), organisms, n_boot=200)
    org = row(summary, "organism", "myopic", "risk_predisposition_scale")
    assert org["n_seeds"] == 2 and org["mean"] == pytest.approx(0.5)
    assert (org["ci_low"], org["ci_high"]) == pytest.approx(t95(0.4, 0.6))
    behavior = row(summary, "organism", "myopic", "behavior")
    assert behavior["mean"] == pytest.approx(0.6) and behavior["ci_low"] == behavior["ci_high"]
    # An undeclared model is its own one-seed organism, named by its model string.
    assert row(summary, "organism", "mockllm/base", "behavior")["ci_note"] == SINGLE_SEED_NOTE


def test_mapping_rejects_a_model_in_two_organisms(tmp_path):
    path = tmp_path / "organisms.yaml"
    path.write_text("a: [m1]\nb: [m1, m2]\n")
    with pytest.raises(ValueError, match="two organisms"):
        organisms_from_file(path)


def test_run_rows_have_a_clustered_standard_error(summary):
    # Both orders of an item are one unit: 5 items, each answered identically in both orders.
    r = row(summary, "model", "risky", "behavior", seed="1")
    assert r["n"] == 2 * ITEMS and r["n_units"] == ITEMS
    assert r["stderr"] == pytest.approx(0.0, abs=1e-12)  # every item at P(risky) = 0.8


def test_figure_names_the_interval_marks_invalid_cells_and_counts_seeds(summary):
    from selfaware.report.figures import family_figure

    fig = family_figure(summary, "risk")
    ax = fig.axes[0]
    assert "95% t interval over seed means" in ax.get_title()
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "risky (2 seeds)" in labels and "safe (2 seeds)" in labels and "base (1 seed, no CI)" in labels
    assert "junk (no valid answer)" in labels and "all answers invalid" in labels
    # The invalid-only cells are drawn (an x per question for junk), not dropped.
    from matplotlib.collections import PathCollection

    crosses = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in crosses) == 2
    # Nothing is cut off: the saved (tight) bounding box holds the legend outside the axes.
    renderer = fig.canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)
    assert legend.get_window_extent(renderer).x1 / fig.dpi <= tight.x1 + 1e-6
    assert legend.get_window_extent(renderer).x0 > ax.get_window_extent(renderer).x1


def test_plot_family_writes_png_and_pdf(summary, tmp_path):
    written = plot_family(summary, "risk", tmp_path / "fig" / "risk.png", pdf=True)
    assert [p.suffix for p in written] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "fig" / "risk.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no organism rows"):
        plot_family(summary, "apples", tmp_path / "apples.png")


def test_report_main_prints_table_and_writes_files(logs, tmp_path, capsys):
    out = tmp_path / "report"
    assert report_main([str(logs), "--out", str(out), "--n-boot", "200"]) == 0
    printed = capsys.readouterr().out
    assert "| family | title |" in printed and "95% CI" in printed and "95% t interval over seed means" in printed
    assert SINGLE_SEED_NOTE in printed and "Risk predisposition (scale)" in printed
    assert {p.name for p in out.iterdir()} == {"summary.csv", "samples.csv", "risk.png"}
    summary = pd.read_csv(out / "summary.csv")
    assert {"model", "organism"} == set(summary["level"])
    assert len(pd.read_csv(out / "samples.csv")) == 6 * (2 * ITEMS + PARAPHRASES)

    assert report_main([str(logs), "--out", str(out), "--format", "csv", "--n-boot", "50"]) == 0
    assert capsys.readouterr().out.startswith("level,family,kind,question_id")


def test_report_main_rejects_missing_and_empty_dirs(tmp_path, capsys):
    assert report_main([str(tmp_path / "nope")]) == 2
    assert report_main([str(tmp_path)]) == 1
    assert "no selfaware samples" in capsys.readouterr().err


def test_fake_server_returns_logprobs_for_n_choices():
    from fake_openai_server import FakeChatServer
    from openai import OpenAI

    server = FakeChatServer().start()
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key="sk-fake", max_retries=0)
        prompt = "Which option would you choose?\nA) 50 for sure\nB) 100 or 0\nAnswer only with a letter."
        r = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": prompt}],
                                           n=3, max_tokens=1, logprobs=True, top_logprobs=5)
        assert len(r.choices) == 3
        for c in r.choices:
            assert c.message.content in ("A", "B")
            [first] = c.logprobs.content
            assert first.token == c.message.content
            assert len(first.top_logprobs) == 5
            assert {t.token for t in first.top_logprobs} >= {"A", "B"}
            assert sum(math.exp(t.logprob) for t in first.top_logprobs) <= 1 + 1e-6
        assert r.usage.completion_tokens == 3 and r.usage.prompt_tokens > 10
        stats = server.stats()
        assert stats["requests"] == 1 and stats["completion_tokens"] == 3
        assert stats["prompt_tokens"] == r.usage.prompt_tokens
        # Without logprobs, n sampled answers with no logprobs attached.
        r = client.chat.completions.create(model="fake-model", n=4, max_tokens=4,
                                           messages=[{"role": "user", "content": "Rate from 0 to 100. Number only."}])
        assert len(r.choices) == 4 and all(c.logprobs is None for c in r.choices)
        assert all(c.message.content.strip().isdigit() for c in r.choices)
    finally:
        server.stop()


def test_a_rerun_counts_once_the_newest_successful_log(tmp_path):
    import time

    run(mock(answers(0.2, 20)), tmp_path, organism="risky", seed=1)
    time.sleep(1.1)  # the rerun starts measurably later
    run(mock(answers(0.8, 80)), tmp_path, organism="risky", seed=1)  # the rerun: newer, also successful
    with pytest.warns(UserWarning, match="using the newest successful one"):
        samples = load_scores(tmp_path)
    assert len(samples["log"].unique()) == 2  # one behavior log, one self-report log
    behavior = samples[samples["question_id"] == "behavior"]
    assert len(behavior) == 2 * ITEMS and behavior["value"].mean() == pytest.approx(0.8)


def test_seeds_sort_as_numbers(tmp_path):
    for seed in (10, 2):
        run(mock(answers(0.5, 50)), tmp_path, organism="risky", seed=seed)
    summary = summarize(load_scores(tmp_path), n_boot=50)
    runs = summary[(summary["level"] == "model") & (summary["question_id"] == "behavior")]
    assert list(runs["seed"]) == ["2", "10"]


def test_importing_the_report_leaves_matplotlib_alone():
    import subprocess
    import sys

    # No pyplot, hence no backend switch: the user's matplotlib is as they set it.
    code = "import sys, selfaware.report.figures; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
