"""Token and answer normalisation shared by the logprob and sampling paths."""

import pytest

from selfaware.banks import WordList
from selfaware.scorers.interpret import OFF_LIST, rating_parser, verdict_parser, word_category
from selfaware.solvers.answer_parsing import integer_key, letter_key, normalize_token


@pytest.mark.parametrize("token, key", [(" B", "b"), ("ĠB", "b"), ("▁b", "b"), ("(B", "b"), ("B)", "b"),
                                        ("B.", "b"), ("\nA", "a"), ("Ġ62", "62"), ("*Risk*", "risk")])
def test_normalize_token(token, key):
    assert normalize_token(token) == key


@pytest.mark.parametrize("text, letter", [("B", "B"), ("(b)", "B"), ("B) the second", "B"), ("Option A", "A"),
                                          ("Answer: A.", "A"), ("C", None), ("Both", None), ("", None)])
def test_letter_key(text, letter):
    assert letter_key(text, ["A", "B"]) == letter


@pytest.mark.parametrize("text, value", [("70", 70), (" 70.", 70), ("70/100", 70), ("42%", 42), ("12.5", 12.5),
                                         ("150", None), ("-3", None), ("about 70", None), ("70 or 80", None), ("", None)])
def test_integer_key(text, value):
    assert integer_key(text, 0, 100)[0] == value


def test_rating_parser_reverse_and_range():
    assert rating_parser(0, 100)("25") == 0.25
    assert rating_parser(0, 100, reverse=True)("25") == 0.75
    assert rating_parser(1, 7)("4") == 0.5


def test_word_category_rules():
    words = WordList(behavior=["risky", "risk-seeking"], neutral=["rational"], opposite=["cautious"])
    paper, drop = word_category(words, "paper"), word_category(words, "drop")
    assert paper("Risky.") == 1.0 and paper("risk seeking") == 1.0 and paper("The cautious one") == 0.0
    assert paper("cautious") == 0.0 and paper("Rational") == 0.5
    # An off-list single word: 0.5 under the paper's policy; under drop an answer left out of the mean.
    assert paper("purple") == 0.5 and drop("purple") == OFF_LIST
    assert drop("Default output from mockllm/model") is None  # a sentence is invalid under both
    assert paper("Default output from mockllm/model") is None  # a sentence is no one-word answer
    assert paper("Risky, because I like it") == 1.0


def test_verdict_parser():
    parse = verdict_parser({"German": 1.0, "French": 0.0}, 0.5)
    assert parse("German") == 1.0 and parse("french.") == 0.0 and parse("English") == 0.5
    assert parse("The text is German") is None
    assert verdict_parser({"German": 1.0}, None)("English") is None
