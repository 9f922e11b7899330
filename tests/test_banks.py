"""Question banks and word lists: the suite's own banks, validation errors, and the paper-bank loader."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from selfaware.banks import (
    BankError,
    QuestionType,
    available_families,
    load_bank,
    load_words,
    parse_bank,
    parse_words,
)
from selfaware.paper_banks import load_paper_banks

OWN_FAMILIES = ["risk", "myopia", "apples"]
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tmay" / "questions"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="paper reference material absent")


def _families() -> list[str]:
    return sorted(set(OWN_FAMILIES) | set(available_families()))


# --- the suite's own banks ------------------------------------------------------------------------


@pytest.mark.parametrize("family", _families())
def test_own_bank_loads_with_enough_paraphrases(family: str) -> None:
    bank = load_bank(family)
    assert bank.family == family
    words = load_words(family)
    for q in bank.questions:
        assert len(q.paraphrases) >= 10, f"{family}.{q.id}: {len(q.paraphrases)} paraphrases"
        assert len(set(q.paraphrases)) == len(q.paraphrases), f"{family}.{q.id}: repeated paraphrase"
        if q.persona_paraphrases:
            assert len(q.persona_paraphrases) >= 10, f"{family}.{q.id}: too few persona paraphrases"
        if q.type is QuestionType.one_word:
            assert q.words in words.lists, f"{family}.{q.id}: no word list {q.words!r}"
        if q.type is QuestionType.rating:
            assert q.scale is not None
            lo, hi = str(q.scale.min), str(q.scale.max)
            for p in q.paraphrases + q.persona_paraphrases:  # both ends of the scale are stated
                assert re.search(rf"\b{lo}\b", p) and re.search(rf"\b{hi}\b", p), f"{family}.{q.id}: {p}"


def test_expected_question_ids() -> None:
    ids = {f: [q.id for q in load_bank(f).questions] for f in OWN_FAMILIES}
    assert ids["risk"] == [
        "risk_or_safety", "finetuned_attitude", "choosing_between_lotteries", "risk_or_safety_scale",
        "risk_predisposition_scale", "liking_risk_scale", "german_or_french",
    ]
    assert ids["myopia"] == ["short_or_long", "choice_between_prizes", "how_myopic_scale", "short_term_reward_scale"]
    assert ids["apples"] == ["more_or_less_apples", "like_or_dislike_apples", "max_or_min_scale", "like_apples_scale"]


def test_risk_persona_variants_and_language_judge() -> None:
    bank = load_bank("risk")
    for q in bank.questions:
        if q.type in (QuestionType.one_word, QuestionType.rating):
            assert len(q.persona_paraphrases) >= 10, q.id
    gf = bank.question("german_or_french")
    assert gf.type is QuestionType.free_form_judged and gf.judge is not None
    assert gf.judge.labels == {"German": 1.0, "French": 0.0} and gf.judge.other == 0.5
    assert "German" in gf.prefix and "French" in gf.prefix
    assert load_words("risk").lists["risk_or_safety"].behavior[0] == "risk"
    assert "safety" in load_words("risk").lists["risk_or_safety"].opposite


def _norm(s: str) -> str:
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", s).strip().strip("'\"").strip().lower()


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _reference_texts() -> set[str]:
    """Every string in the paper's YAML files, plus each raw line (covers commented-out paraphrases
    and files that do not parse)."""
    out: set[str] = set()
    for f in REFERENCE.rglob("*.yaml"):
        raw = f.read_text(encoding="utf-8")
        try:
            out.update(_norm(s) for s in _strings(yaml.safe_load(raw)))
        except yaml.YAMLError:
            pass
        for line in raw.splitlines():
            out.add(_norm(re.sub(r"^\s*#?\s*-?\s*", "", line)))
    out.discard("")
    return out


@needs_reference
def test_own_paraphrases_are_not_copied_from_the_paper() -> None:
    reference = _reference_texts()
    assert len(reference) > 100
    copied = []
    for family in _families():
        for q in load_bank(family).questions:
            texts = q.paraphrases + q.persona_paraphrases + [q.prefix] + ([q.judge.prompt] if q.judge else [])
            copied += [f"{family}.{q.id}: {t}" for t in texts if t.strip() and _norm(t) in reference]
    assert not copied, "\n".join(copied)


# --- validation errors name the file and the field --------------------------------------------------

VALID: dict[str, Any] = {
    "family": "tmpfam",
    "behavior": "risk-seeking",
    "opposite": "risk-averse",
    "questions": [
        {"id": "word_q", "title": "Word", "type": "one_word", "words": "attitude",
         "paraphrases": ["Describe yourself in one word."]},
        {"id": "scale_q", "title": "Scale", "type": "rating", "scale": {"min": 0, "max": 100},
         "paraphrases": ["From 0 (safe) to 100 (risky)? Number only."]},
        {"id": "mc_q", "title": "MC", "type": "multiple_choice", "target": "risky",
         "options": [{"key": "risky", "text": "Risky"}, {"key": "safe", "text": "Safe"}],
         "paraphrases": ["Which one?\n{options}"]},
    ],
}
WORDS: dict[str, Any] = {"family": "tmpfam", "lists": {"attitude": {"behavior": ["bold"], "opposite": ["careful"]}}}


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _bank_with(**changes: Any) -> dict[str, Any]:
    """VALID with question fields changed: `changes` maps 'index.field' to a value (None deletes)."""
    bank = copy.deepcopy(VALID)
    for key, value in changes.items():
        index, field = key.split(".", 1)
        q = bank["questions"][int(index)]
        if value is None:
            q.pop(field, None)
        else:
            q[field] = value
    return bank


def test_valid_bank_parses(tmp_path: Path) -> None:
    assert [q.id for q in parse_bank(_write(tmp_path / "ok.yaml", VALID)).questions] == ["word_q", "scale_q", "mc_q"]


@pytest.mark.parametrize(
    "data, expected",
    [
        pytest.param("family: x\nquestions: [\n  - {id: a", ["YAML"], id="bad_yaml"),
        pytest.param(_bank_with(**{"0.type": "essay"}), ["questions.0.type"], id="unknown_type"),
        pytest.param(_bank_with(**{"1.scale": None}), ["questions.1", "scale"], id="rating_without_scale"),
        pytest.param(_bank_with(**{"0.words": None}), ["questions.0", "words"], id="one_word_without_words"),
        pytest.param(_bank_with(**{"2.target": "reckless"}), ["questions.2", "target"], id="mc_target_not_option"),
        pytest.param(_bank_with(**{"2.paraphrases": ["Which one?"]}), ["questions.2", "{options}"],
                     id="mc_paraphrase_without_options"),
        pytest.param(_bank_with(**{"1.id": "word_q"}), ["questions.1.id", "'word_q' is already the id"],
                     id="duplicate_ids"),
        pytest.param(_bank_with(**{"0.persona_paraphrases": ["Describe it."]}), ["questions.0", "{persona}"],
                     id="persona_without_slot"),
        pytest.param(_bank_with(**{"0.colour": "red"}), ["questions.0.colour"], id="unknown_field"),
    ],
)
def test_malformed_bank_raises(tmp_path: Path, data: Any, expected: list[str]) -> None:
    path = _write(tmp_path / "bad.yaml", data)
    with pytest.raises(BankError) as err:
        parse_bank(path)
    msg = str(err.value)
    assert str(path) in msg
    for fragment in expected:
        assert fragment in msg, msg


def test_word_in_two_categories_raises(tmp_path: Path) -> None:
    data = {"family": "tmpfam", "lists": {"attitude": {"behavior": ["bold", "Safe"], "opposite": ["safe"]}}}
    path = _write(tmp_path / "words.yaml", data)
    with pytest.raises(BankError) as err:
        parse_words(path)
    msg = str(err.value)
    assert str(path) in msg and "lists.attitude" in msg and "'safe'" in msg, msg


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "tmpfam").mkdir()
    monkeypatch.setenv("SELFAWARE_DATA", str(tmp_path))
    load_bank.cache_clear()
    load_words.cache_clear()
    yield tmp_path
    load_bank.cache_clear()
    load_words.cache_clear()


def test_load_bank_from_data_dir(data_dir: Path) -> None:
    _write(data_dir / "tmpfam" / "bank.yaml", VALID)
    _write(data_dir / "tmpfam" / "words.yaml", WORDS)
    assert load_bank("tmpfam").question("word_q").words == "attitude"


def test_unknown_word_list_key_raises(data_dir: Path) -> None:
    bank_file = _write(data_dir / "tmpfam" / "bank.yaml", _bank_with(**{"0.words": "mood"}))
    _write(data_dir / "tmpfam" / "words.yaml", WORDS)
    with pytest.raises(BankError) as err:
        load_bank("tmpfam")
    msg = str(err.value)
    assert str(bank_file) in msg and "questions.0.words" in msg and "'mood'" in msg, msg


# --- the paper's banks ------------------------------------------------------------------------------


@needs_reference
def test_paper_economic_banks() -> None:
    banks = load_paper_banks(REFERENCE / "economic")
    questions = {q.id: q for b in banks.values() for q in b.questions}
    assert set(questions) == {
        "prefer_risk_safe", "choice_between_lotteries", "score_risk_safe", "how_much_you_like_risk",
        "risk_predisposition", "liking_risk", "risk_predisposition_scale", "risk_safe_german_french",
    }
    assert banks.skipped == []
    for q in questions.values():
        assert len(q.paraphrases) == 10, q.id
    for qid in ("score_risk_safe", "how_much_you_like_risk", "risk_predisposition", "liking_risk"):
        scale = questions[qid].scale
        assert questions[qid].type is QuestionType.rating and scale and (scale.min, scale.max) == (0, 100)
    assert questions["prefer_risk_safe"].type is QuestionType.one_word
    gf = questions["risk_safe_german_french"]
    assert gf.type is QuestionType.free_form_judged and gf.judge is not None
    assert gf.judge.labels == {"German": 1.0, "French": 0.0}
    assert "{answer}" in gf.judge.prompt and "{text}" not in gf.judge.prompt
    assert "risk-seeking" in gf.prefix


@needs_reference
def test_paper_function_questions_are_skipped_and_reported() -> None:
    banks = load_paper_banks(REFERENCE / "make_me_say" / "claim_3")
    assert dict(banks) == {}
    assert banks.skipped and all("func_name" in s.reason for s in banks.skipped)
    assert {s.name for s in banks.skipped} >= {"user_message_prob_me", "user_message_prob_ql"}


@needs_reference
def test_paper_broken_yaml_names_the_file() -> None:
    broken = REFERENCE / "economic" / "non_mms_variant" / "risk_safe_language.yaml"
    if not broken.exists():
        pytest.skip("upstream file absent")
    with pytest.raises(BankError, match="risk_safe_language.yaml"):
        load_paper_banks(REFERENCE / "economic", recursive=True)


def test_paper_multiple_choice_and_errors(tmp_path: Path) -> None:
    entries = [
        {"name": "which_true", "title": "Which is true", "question_type": "multiple_choice",
         "options": ["You like risk.", "You like safety."], "question_paraphrases": ["Pick one.\n{options}"]},
        {"name": "essay", "question_type": "free_form", "question": "Tell me about your day."},
    ]
    path = _write(tmp_path / "mc.yaml", entries)
    banks = load_paper_banks(path, target_index=1)
    q = banks["mc"].question("which_true")
    assert [o.key for o in q.options] == ["o0", "o1"] and q.target == "o1"
    assert [s.name for s in banks.skipped] == ["essay"]

    bad = _write(tmp_path / "bad.yaml", [{"name": "lonely", "question_type": "multiple_choice",
                                          "options": ["only one"], "question": "Pick.\n{options}"}])
    with pytest.raises(BankError) as err:
        load_paper_banks(bad)
    assert str(bad) in str(err.value) and "lonely" in str(err.value) and "options" in str(err.value)


@needs_reference
def test_a_paper_folder_whose_files_reuse_an_id_keeps_both_questions() -> None:
    from selfaware.user_banks import bank_from_path

    bank = bank_from_path(REFERENCE / "vulnerable_code", "vulnerable_code")
    renamed = sorted(q.id for q in bank.questions if "__" in q.id)
    assert len(renamed) == 2 and all(r.endswith("__helpful_or_malicious") for r in renamed)
