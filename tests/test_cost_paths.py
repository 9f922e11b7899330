"""The cost estimate follows the path the solver will take (`ElicitSettings.choose_path`)."""

from __future__ import annotations

from selfaware.evals.risk import risk_self_report
from selfaware.reproduce.cost import Usage, estimate_task, sample_usage

AUTO = {"samples": 20}


def test_each_path_is_priced_as_it_runs() -> None:
    # APIs with logprobs: a letter or a rating is one read; a listed one-word answer is a first-token read
    # plus at most 20 draws (one request with 20 choices), priced at that upper bound
    assert sample_usage("multiple_choice", 100, "openai/gpt-4o", AUTO, None)[0] == Usage(1, 100, 1)
    assert sample_usage("rating", 100, "openai/gpt-4o", AUTO, None)[0] == Usage(1, 100, 2)
    assert sample_usage("one_word", 100, "openai/gpt-4o", AUTO, None, has_words=True)[0] == Usage(2, 200, 1 + 20 * 6)
    # no word lists, or no logprobs: 20 sampled answers
    assert sample_usage("one_word", 100, "openai/gpt-4o", AUTO, None)[0] == Usage(1, 100, 20 * 6)
    assert sample_usage("one_word", 100, "anthropic/claude-x", AUTO, None, has_words=True)[0] == Usage(20, 2000, 120)
    # a local model scores listed answers exactly: the prompt is read once, nothing is generated
    assert sample_usage("one_word", 100, "hf/org/x", AUTO, None, listable=True, has_words=True)[0] == Usage(1, 100, 0)
    # the paper protocol samples ratings (100 answers of up to 4 tokens), whatever the provider
    assert sample_usage("rating", 100, "openai/gpt-4o", {"protocol": "paper"}, None)[0] == Usage(1, 100, 400)
    model, judge = sample_usage("free_form_judged", 100, "openai/gpt-4o", AUTO, None)
    assert model.requests == 1 and judge.requests == 20


def test_a_task_is_priced_per_sample_by_its_path() -> None:
    task = risk_self_report(questions="risk_or_safety", paraphrases=2)  # one-word answers with word lists
    n = len(task.dataset)
    api = estimate_task(task, "openai/gpt-4o", {}, None).usage
    local = estimate_task(task, "hf/org/x", {}, None).usage
    assert api.requests == 2 * n and local.requests == n and local.output_tokens == 0
