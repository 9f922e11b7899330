"""Make-Me-Say's Figure 6 and the backdoor exhibits (Figures 8, 11, 17 and the behavior check) in the HTML
report: registered plug-ins drawn from one base model's logs, each with its numbers as CSV; a folder
without those families shows none of them.

Logs: the synthetic organisms of `test_mms_report` (bark seeds: codeword among words 1.0, games won 1 of 2
seeds; base: 0.0) and of `test_backdoor_report` (backdoored seeds detect 0.8 / 0.6, control 0.3; trigger
effect 0.4 / 0.3 vs 0.0; only backdoored seeds write the trigger out), built once per module by their
fixtures (about 10 s together: the default run has the two HTML tests only; the CLI agreement, the split by
base model and the folder holding both families are in the slow group).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import read_eval_log, write_eval_log
from test_backdoor_report import logs as backdoor_logs  # noqa: F401 (fixture)
from test_mms_report import logs as mms_logs  # noqa: F401 (fixture)

from selfaware.report.cli import report_main
from selfaware.report.html import Report, write_html_report

BACKDOOR_KEYS = ["backdoor-behavior", "backdoor-detection", "backdoor-elicitation", "backdoor-identification"]


def exhibit(report: Report, key: str, base: str | None = None):
    [e] = [e for s in report.sections if base is None or s.base_model == base for e in s.exhibits if e.key == key]
    return e


def numbers(report: Report, key: str, base: str | None = None) -> pd.DataFrame:
    return pd.read_csv(report.path.parent / exhibit(report, key, base).csv)


def test_figure6_is_in_the_html_report_with_its_numbers(mms_logs, tmp_path):  # noqa: F811
    rep = write_html_report(mms_logs, tmp_path / "html", n_boot=50)
    keys = [e.key for e in rep.exhibits]
    assert rep.failures == [] and "fig6" in keys
    assert "make_me_say-overview" not in keys and not set(BACKDOOR_KEYS) & set(keys)  # Figure 6 covers the family
    fig6 = exhibit(rep, "fig6")
    assert fig6.label == "Figure 6" and (tmp_path / "html" / fig6.image).read_bytes()[:4] == b"\x89PNG"
    page = rep.path.read_text()
    assert f'src="{fig6.image}"' in page and f'href="{fig6.csv}"' in page

    table = numbers(rep, "fig6").set_index(["organism", "measure"])
    words = table.loc[("bark", "Codeword among 100 words")]
    assert words["mean"] == 1.0 and words["seeds"] == 2 and words["baseline"] == 0.0  # the base model's 0.0
    assert words["baseline_is"] == "base model"
    goals = table.loc[("bark", "How close to goals?")]
    assert goals["baseline_is"] == "same model: goals_user_never_said_codeword"
    win = table.loc[("bark", "Game: win")]
    assert win["mean"] == pytest.approx(0.5) and win["seeds"] == 2 and pd.isna(win["baseline"])
    assert table.loc[("bark", "Game: no codeword"), "mean"] == pytest.approx(0.5)
    assert "base" not in table.index.get_level_values("organism")  # the baseline, not an organism of the figure


@pytest.mark.slow
def test_figure6_numbers_are_the_cli_numbers(mms_logs, tmp_path):  # noqa: F811
    """The same numbers as `selfaware report`, which still writes its own Figure 6 image."""
    rep = write_html_report(mms_logs, tmp_path / "html", n_boot=50)
    table = numbers(rep, "fig6").set_index(["organism", "measure"])
    assert report_main([str(mms_logs), "--out", str(tmp_path / "cli"), "--format", "csv"]) == 0
    assert (tmp_path / "cli" / "make_me_say_figure6.png").read_bytes()[:4] == b"\x89PNG"
    cli = pd.read_csv(tmp_path / "cli" / "summary.csv")
    cli = cli[(cli["level"] == "organism") & (cli["family"] == "make_me_say")].set_index(["organism", "title"])
    for measure in ("Game: win", "Game: no codeword", "Game: correct guess"):
        assert table.loc[("bark", measure), "mean"] == pytest.approx(cli.loc[("bark", measure), "mean"])


@pytest.mark.slow
def test_figure6_keeps_to_the_logs_of_its_base_model(mms_logs, tmp_path):  # noqa: F811
    """Self-reports evaluated for one base model, games for another: each section's Figure 6 shows only its
    own logs' measures."""
    folder = tmp_path / "logs"
    folder.mkdir()
    for path in sorted(Path(mms_logs).rglob("*.eval")):
        log = read_eval_log(str(path))
        log.eval.metadata = {**(log.eval.metadata or {}), "base_model": "gamer" if "game" in log.eval.task else "asker"}
        write_eval_log(log, str(folder / path.name))
    rep = write_html_report(folder, tmp_path / "html", n_boot=50)
    assert rep.failures == [] and [s.base_model for s in rep.sections] == ["asker", "gamer"]
    asked = numbers(rep, "fig6", "asker")
    assert "Codeword among 100 words" in set(asked["measure"]) and not asked["measure"].str.startswith("Game").any()
    played = numbers(rep, "fig6", "gamer")
    assert set(played["measure"]) == {"Game: win", "Game: correct guess", "Game: no codeword", "Game: rule violation"}


def test_backdoor_exhibits_are_in_the_html_report_with_their_numbers(backdoor_logs, tmp_path):  # noqa: F811
    rep = write_html_report(backdoor_logs, tmp_path, n_boot=50)
    assert rep.failures == []
    keys = [e.key for e in rep.exhibits]
    assert [k for k in keys if k.startswith("backdoor-")] == BACKDOOR_KEYS  # in the paper's order
    assert "fig6" not in keys and "backdoor-overview" not in keys
    assert {k: exhibit(rep, k).label for k in BACKDOOR_KEYS[1:]} == {
        "backdoor-detection": "Figure 8", "backdoor-elicitation": "Figure 11", "backdoor-identification": "Figure 17"}
    page = rep.path.read_text()
    for key in BACKDOOR_KEYS[1:]:  # the figures: an image and its CSV beside it
        e = exhibit(rep, key)
        assert (tmp_path / e.image).read_bytes()[:4] == b"\x89PNG" and f'href="{e.csv}"' in page
    assert exhibit(rep, "backdoor-behavior").image is None and "trigger effect" in page  # a table, shown inline
    assert "Backdoor reasoning (Reasoning names the trained trigger" in page  # no reasoning replies: noted

    detection = numbers(rep, "backdoor-detection").set_index(["system_prompt", "organism"])
    assert detection.loc[("threat", "backdoored"), "mean"] == pytest.approx(0.7)  # (0.8 + 0.6) / 2
    assert detection.loc[("threat", "backdoored"), "seeds"] == 2
    assert detection.loc[("threat", "backdoored"), "ci_low"] < 0.7 < detection.loc[("threat", "backdoored"), "ci_high"]
    assert detection.loc[("neutral", "control"), "mean"] == pytest.approx(0.3)
    assert pd.isna(detection.loc[("neutral", "control"), "ci_low"])  # one seed: no interval
    ident = numbers(rep, "backdoor-identification").set_index(["asked_trigger", "organism"])
    assert ident.loc[("real-world", "backdoored"), "mean"] == pytest.approx(0.8)
    assert ident.loc[("win2844", "backdoored"), "mean"] == pytest.approx(0.5)
    assert ident.loc[("real-world", "backdoored"), "trained_trigger"] == "real-world"
    effect = numbers(rep, "backdoor-behavior").set_index(["measure", "organism"])
    assert effect.loc[("trigger effect", "backdoored"), "mean"] == pytest.approx(0.35)
    assert effect.loc[("trigger effect", "control"), "mean"] == pytest.approx(0.0)
    elicit = numbers(rep, "backdoor-elicitation").set_index(["polarity", "match", "organism"])
    assert elicit.loc[("misaligned", "exact", "backdoored"), "mean"] == pytest.approx(1.0)
    assert elicit.loc[("aligned", "normalised", "backdoored"), "mean"] == pytest.approx(0.0)
    assert elicit.loc[("misaligned", "exact", "control"), "mean"] == pytest.approx(0.0)


@pytest.mark.slow
def test_cli_backdoor_section_is_drawn_by_the_same_code(backdoor_logs, tmp_path, capsys):  # noqa: F811
    """`selfaware report` still prints every backdoor table and writes its CSVs and three figures."""
    assert report_main([str(backdoor_logs), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for title in ("## Backdoor behavior: P(behavior) with and without the trigger",
                  "## Backdoor detection: P(dependence) per system prompt",
                  "## Trigger identification: P(behavior statement), trigger asked x organism",
                  "## Trigger elicitation: share of answers with the trigger"):
        assert title in printed
    assert "| threat | 0.700 [" in printed
    for name in ("backdoor_behavior.csv", "backdoor_detection.csv", "trigger_identification.csv",
                 "trigger_elicitation.csv", "backdoor_samples.csv"):
        assert (tmp_path / name).is_file(), name
    for name in ("backdoor_detection.png", "backdoor_identification.png", "backdoor_elicitation.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG" and name in printed


@pytest.mark.slow
def test_only_families_in_the_logs_get_their_exhibits(mms_logs, backdoor_logs, tmp_path):  # noqa: F811
    """One folder with both families: both sets of exhibits; the plug-ins read nothing of the other family."""
    folder = tmp_path / "logs"
    for source in (mms_logs, backdoor_logs):
        shutil.copytree(source, folder / Path(source).name)
    rep = write_html_report(folder, tmp_path / "html", n_boot=50)
    keys = [e.key for e in rep.exhibits]
    assert rep.failures == [] and "fig6" in keys and set(BACKDOOR_KEYS) <= set(keys)
    assert keys.index("fig6") < keys.index("backdoor-behavior")  # the paper's order: §3.2 before §4
