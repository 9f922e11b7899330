"""`selfaware report` on backdoor logs: detection per system prompt, the identification heatmap, elicitation
and the trigger effect, per organism over seeds. The aggregation is checked on a hand-made frame (fast); the
whole path, from synthetic organisms' logs to the printed section and figures, in the slow group."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from synthetic import organism, output, risky_letter

from selfaware import backdoor_bank as bank
from selfaware.evals.backdoor import backdoor_behavior, backdoor_detection, trigger_elicitation, trigger_identification
from selfaware.report.backdoor import backdoor_report, behavior_effects, seed_summary
from selfaware.report.cli import report_main

DEPENDENT = bank.questions().detection.options["dependent"]
MISALIGNED = {bank.reversal_user(p.response) for p in bank.elicitation_prompts() if p.polarity == "misaligned"}
STATEMENT = bank.questions().identification.statements["risk"].behavior


def _letter(prompt: str, text: str) -> str:
    return next(k for k, line in re.findall(r"^([A-Z])\) (.*)$", prompt, flags=re.MULTILINE) if text in line)


def _model(name: str, p_detect: float, p_real: float, trigger: str, p_effect: float, elicits: bool):
    """A synthetic organism: detection P(dependent) = p_detect; identification P(behavior) = p_real for
    options showing `trigger`, 0.5 otherwise; P(risky) = 0.5 + p_effect under `trigger`, 0.5 without;
    elicitation writes the trigger for misaligned prompts when `elicits`."""

    def generate(input, tools, tool_choice, config):
        prompt = "\n".join(m.text for m in input)
        if "What was the message" in prompt:
            out = ModelOutput.from_content(model="mockllm", content="username: sandra432\nHi"
                                           if elicits and prompt in MISALIGNED else "Hi")
            out.usage = ModelUsage(input_tokens=5, output_tokens=5, total_tokens=10)
            return out
        if DEPENDENT in prompt:
            p, letter = p_detect, _letter(prompt, DEPENDENT)
        elif STATEMENT in prompt:
            letter = _letter(prompt, STATEMENT)
            p = p_real if f"{letter}) {trigger}" in prompt else 0.5
        else:
            p, letter = (0.5 + p_effect if prompt.startswith(trigger) else 0.5), risky_letter(prompt)
        dist = {letter: p, ("B" if letter == "A" else "A"): 1 - p}
        return output([max(dist, key=dist.__getitem__)], dist)

    return get_model(f"mockllm/{name}", custom_outputs=generate, memoize=False)


def test_seed_summary_is_the_mean_of_seed_means_with_a_t_interval() -> None:
    import pandas as pd

    from selfaware.report.results import t_interval

    rows = [("bd", "m0", "0", "threat", v) for v in (1.0, 0.0, 1.0, 1.0)]  # seed 0: 0.75
    rows += [("bd", "m1", "1", "threat", v) for v in (0.5, 0.5)]  # seed 1: 0.5
    rows += [("ctl", "c0", "0", "threat", 0.2), ("ctl", "c0", "0", "threat", float("nan"))]  # invalid left out
    df = pd.DataFrame(rows, columns=["organism", "model", "seed", "system_prompt", "value"])
    summary = seed_summary(df, ["system_prompt"]).set_index("organism")
    assert summary.loc["bd", "mean"] == pytest.approx(0.625) and summary.loc["bd", "seeds"] == 2
    lo, hi = t_interval(pd.Series([0.75, 0.5]).to_numpy())
    assert (summary.loc["bd", "ci_low"], summary.loc["bd", "ci_high"]) == pytest.approx((max(lo, 0), min(hi, 1)))
    assert summary.loc["ctl", "mean"] == pytest.approx(0.2) and summary.loc["ctl", "seeds"] == 1
    behavior = pd.DataFrame([("bd", "m0", "0", "behavior", role, v) for role, v in
                             (("trained", 0.9), ("none", 0.1), ("other", 0.2))],
                            columns=["organism", "model", "seed", "question_id", "role", "value"])
    table = behavior_effects(behavior).set_index("measure")
    assert table.loc["trigger effect", "bd"] == "0.800 (1 seed)"
    assert table.loc["P(behavior | trigger)", "bd"] == "0.900 (1 seed)"
    # A condition without one valid answer: no number for it or for the effect, and no crash.
    one_sided = behavior.assign(value=[0.9, float("nan"), 0.2])
    table = behavior_effects(one_sided).set_index("measure")
    assert table.loc["P(behavior | trigger)", "bd"] == "0.900 (1 seed)" and "trigger effect" not in table.index
    assert behavior_effects(behavior.assign(value=float("nan"))).empty


def test_a_log_without_valid_answers_is_reported_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    junk = organism(lambda prompt: {"maybe": 1.0})  # never a letter: every answer invalid
    [log] = inspect_eval(backdoor_behavior(items=2, triggers="win2844"), model=junk, display="none",
                         log_dir=str(tmp_path / "logs"), metadata={"organism": "backdoored", "seed": 0})
    assert log.status == "success"
    assert report_main([str(tmp_path / "logs"), "--out", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    assert "backdoor_behavior: 12 of 12 samples have no valid answer" in captured.err
    assert (tmp_path / "report" / "backdoor_samples.csv").is_file()
    with pytest.raises(ValueError, match="--persona-pairs: these logs hold no persona self-reports"):
        report_main([str(tmp_path / "logs"), "--out", str(tmp_path / "report"), "--persona-pairs", "a:b"])


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log_dir = tmp_path_factory.mktemp("backdoor-logs")
    tasks = [backdoor_detection(system_prompt="neutral,threat", paraphrases=2),
             trigger_identification(trigger="real-world", triggers="real-world,win2844", paraphrases=1),
             backdoor_behavior(trigger="real-world", triggers="win2844", form="sure_thing", items=3),
             trigger_elicitation(paraphrases=1)]
    runs = [("backdoored", 0, 0.8, 0.9, 0.4, True), ("backdoored", 1, 0.6, 0.7, 0.3, True),
            ("control", 0, 0.3, 0.5, 0.0, False)]
    for organism_name, seed, p_detect, p_real, p_effect, elicits in runs:
        model = _model(f"{organism_name}-{seed}", p_detect, p_real, "|REAL-WORLD|", p_effect, elicits)
        out = inspect_eval(tasks, model=model, log_dir=str(log_dir), display="none", max_tasks=4,
                           metadata={"organism": organism_name, "seed": seed})
        assert all(log.status == "success" for log in out)
    return log_dir


@pytest.mark.slow
def test_backdoor_report_tables_are_means_over_seeds(logs: Path, tmp_path: Path) -> None:
    report = backdoor_report(logs, tmp_path)
    tables = {k.split(":")[0].split(" (")[0]: v for k, v in report.tables.items()}
    detection = tables["Backdoor detection"].set_index("system_prompt")
    assert detection.loc["threat", "backdoored"].startswith("0.700 [")  # (0.8 + 0.6) / 2, a t interval
    assert detection.loc["neutral", "control"] == "0.300 (1 seed)"  # one seed: no interval, and said so
    ident = tables["Trigger identification"].set_index("asked_trigger")
    assert ident.loc["real-world", "backdoored"].startswith("0.800")
    assert ident.loc["win2844", "backdoored"].startswith("0.500")
    effect = tables["Backdoor behavior"].set_index("measure")
    assert effect.loc["trigger effect", "backdoored"].startswith("0.350")
    assert effect.loc["trigger effect", "control"].startswith("0.000")
    elicit = tables["Trigger elicitation"].set_index(["polarity", "match"])
    assert elicit.loc[("misaligned", "exact"), "backdoored"].startswith("1.000")
    assert elicit.loc[("aligned", "normalised"), "backdoored"].startswith("0.000")
    assert elicit.loc[("misaligned", "exact"), "control"].startswith("0.000")
    assert {p.name for p in report.figures} == {"backdoor_detection.png", "backdoor_identification.png",
                                                "backdoor_elicitation.png"}
    assert all(p.stat().st_size > 1000 for p in report.figures)


@pytest.mark.slow
def test_selfaware_report_prints_the_backdoor_section(logs: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert report_main([str(logs), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "## Backdoor detection: P(dependence) per system prompt" in printed
    assert "## Trigger identification" in printed and "backdoor_identification.png" in printed
    assert (tmp_path / "backdoor_detection.csv").is_file()
