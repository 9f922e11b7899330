"""The first-token path for one-word answers on APIs with logprobs (`method=first_token`, auto's choice).

Identified first tokens count exactly; only the ambiguous rest is sampled, with its sampling error scaled by
its mass; nothing is drawn when the first tokens settle the answer; providers without usable logprobs fall
back to sampling (auto) or score invalid with the reason (forced). Against synthetic organisms with known
distributions, and over real HTTP against the fake OpenAI endpoint.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from synthetic import organism, run, scores

from selfaware.banks import load_words
from selfaware.evals.risk import risk_self_report
from selfaware.solvers.answer_distribution import STORE_KEY, Elicitation
from selfaware.solvers.first_token import identified_score, split_first_tokens, word_scores

TABLE = word_scores(load_words("risk").lists["risk_or_safety"])


def ask(**params):
    return risk_self_report(questions="risk_or_safety", **params)


def test_a_first_token_is_identified_only_when_every_listed_word_it_begins_scores_the_same():
    assert identified_score("cautious", TABLE) == 0.0
    assert identified_score("safe", TABLE) == 0.0  # safe, safer, safest, safely, safety: all opposite
    assert identified_score("risky", TABLE) == 1.0
    assert identified_score("risk", TABLE) is None  # begins "risky" and "risk-averse"
    assert identified_score("ris", TABLE) is None  # not a word
    assert identified_score("i", TABLE) is None and identified_score("", TABLE) is None


def test_the_chosen_reply_continuing_a_word_demotes_its_first_token():
    probs = {"risky": 0.6, "cautious": 0.3, "the": 0.05}
    assert split_first_tokens(probs, ("Risky",), TABLE).identified == {"risky": 0.6, "cautious": 0.3}
    split = split_first_tokens(probs, ("Risky", "ness"), TABLE)  # "Riskyness": not the word "risky"
    assert split.identified == {"cautious": 0.3} and split.ambiguous_mass == pytest.approx(0.7)
    assert split_first_tokens(probs, ("Risky", "."), TABLE).identified == {"risky": 0.6, "cautious": 0.3}


def test_identified_mass_is_exact_and_only_the_ambiguous_rest_is_sampled(tmp_path):
    # cautious (0) is identified; "Risk" (1, ambiguous) and "purple" (off-list: 0.5) are sampled.
    dist = {"Cautious": 0.5, "Risk": 0.3, "purple": 0.2}
    requests: list = []
    log = run(ask(paraphrases=4, samples=60), organism(lambda p: dist, seed=21, requests=requests), tmp_path)
    truth = 0.5 * 0 + 0.3 * 1 + 0.2 * 0.5
    for sample, score in zip(log.samples, scores(log)):
        record = Elicitation.from_dict(sample.store[STORE_KEY])
        assert score.metadata["method"] == "first_token"
        assert record.answer_probs == pytest.approx({"cautious": 0.5})
        assert record.sample_mass == pytest.approx(0.5) and record.n == 60
        assert set(record.samples) <= {"Risk", "purple"}  # the draws that began with "Cautious" are left out
        # Its SE is the ambiguous part's, scaled by its mass: at most half of plain sampling's here.
        plain = math.sqrt(0.3 * 1 ** 2 + 0.2 * 0.5 ** 2 - truth ** 2) / math.sqrt(60)  # SE of 60 plain draws
        assert 0 < score.metadata["sampling_stderr"] < plain
        assert abs(score.value - truth) <= 4 * score.metadata["sampling_stderr"]
        assert score.metadata["covered_mass"] == 1.0
    assert len(requests) == 2 * len(log.samples)  # one logprob read, one request with n draws


def test_no_draw_when_the_first_tokens_settle_the_answer(tmp_path):
    requests: list = []
    log = run(ask(paraphrases=3), organism(lambda p: {"Safety": 0.7, "cautious": 0.3}, requests=requests), tmp_path)
    for score in scores(log):
        assert score.metadata["method"] == "first_token" and score.value == 0.0
        assert score.metadata["sampling_stderr"] is None and score.metadata["covered_mass"] == pytest.approx(1.0)
    assert len(requests) == len(log.samples)


def test_without_usable_logprobs_auto_samples_and_forced_first_token_is_invalid(tmp_path):
    auto = run(ask(paraphrases=2, samples=10), organism(lambda p: {"Risky": 1.0}, logprobs=False), tmp_path)
    assert all(s.metadata["method"] == "sampling" and s.value == 1.0 for s in scores(auto))
    forced = run(ask(paraphrases=2, method="first_token"), organism(lambda p: {"Risky": 1.0}, alternatives=False),
                 tmp_path)
    for s in scores(forced):
        assert s.value == "N" and s.metadata["method"] == "first_token"
        assert "no alternatives" in s.metadata["reason"]


def test_first_token_over_http_against_the_fake_endpoint(tmp_path, monkeypatch):
    """The real openai provider: top logprobs on the read, n draws each carrying its own tokens."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fake_openai_server import FakeChatServer
    from fake_openai_server import answer_distribution as fake_distribution
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from selfaware.scorers.interpret import word_category

    server = FakeChatServer(seed=5, junk_mass=0.0).start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    try:
        model = get_model("openai/fake-model", responses_api=False, memoize=False)
        [log] = inspect_eval(ask(paraphrases=4, samples=40), model=model, display="none", log_dir=str(tmp_path))
    finally:
        server.stop()
    assert log.status == "success", log.error
    parse = word_category(load_words("risk").lists["risk_or_safety"])
    for sample, score in zip(log.samples, scores(log)):
        assert score.metadata["method"] == "first_token"
        dist = fake_distribution("\n".join(m.text for m in sample.messages[:-1]))  # 'risk' / 'safety'
        truth = sum(parse(a) * p for a, p in dist.items())
        record = Elicitation.from_dict(sample.store[STORE_KEY])
        assert record.answer_probs == pytest.approx({"safety": dist["safety"]})  # exact; "risk" is sampled
        assert abs(score.value - truth) <= 4 * (score.metadata["sampling_stderr"] or 0) + 1e-9
