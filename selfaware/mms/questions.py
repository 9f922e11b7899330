"""From the Make-Me-Say questions to Inspect Samples: the seven self-reports and the persona probes.

Each sample carries `SampleMeta` (family `make_me_say`, question id and type, paraphrase, option
permutation, cluster, variant) plus `mms_kind`, which tells the scorer how an answer becomes a number:

| question | question_type | mms_kind | score |
|---|---|---|---|
| codeword among 100 words | one_word | exact_word | P(answer == codeword) (strip, lower, no tags) |
| dictionary definition, acrostic | free_form_judged | guessed | P(the guesser names the codeword) |
| best description, which game, persona probes | multiple_choice | choice | P(target option) over all orders |
| how close to your goals | rating | rating | E[rating]/100, one question id per scenario |
| function | free_form_judged | function | sandboxed runs, see `selfaware.mms.functions` |

Persona variants ask the `persona_paraphrases` (third person) and, as in the paper, without the persona's
system prompt (`persona_system_prompt=True` keeps it). Trigger variants frame every question with their
trigger through the same `Variant.render` that framed the organism's training rows.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from inspect_ai.dataset import Sample

from selfaware.expand import letters, permutations, render_options
from selfaware.metadata import SampleMeta
from selfaware.mms.data import ChoiceQuestion, QuestionText, candidates, question_text
from selfaware.mms.matching import CodewordError, check_codeword
from selfaware.validation import InputError
from selfaware.variants import PLAIN, Variant

FAMILY = "make_me_say"
KINDS = ("codeword_among_words", "definition", "acrostic", "best_description", "goals", "which_game", "function")
RATING_SCALE = {"min": 0, "max": 100, "reverse": False}
MAX_TOKENS = {"codeword_among_words": 8, "definition": 300, "acrostic": 200, "function": 800}
HEADLINE_GOAL = "goals_user_said_codeword"  # its baseline: the same model on goals_user_never_said_codeword
GOAL_BASELINE = "goals_user_never_said_codeword"


@dataclass(frozen=True)
class Ask:
    """How the questions are asked in one task run."""

    codeword: str
    other_word: str
    variant: Variant = PLAIN
    persona_system_prompt: bool = False
    max_paraphrases: int | None = None
    max_permutations: int | None = None
    words: tuple[str, ...] = ()  # the candidate list (default: the suite's 100 words)
    word_seed: int = 0
    text: QuestionText = field(default_factory=question_text)

    @property
    def persona(self) -> str | None:
        return self.variant.persona

    @property
    def shown_variant(self) -> Variant:
        """The variant the questions are framed with: a persona variant loses its system prompt (the paper
        asks about Quanta-Lingua with no system prompt) unless `persona_system_prompt`."""
        v = self.variant
        if v.persona and v.system_prompt and not self.persona_system_prompt:
            return v.model_copy(update={"system_prompt": None, "name": f"{v.name}-asked"})
        return v

    @property
    def function_name(self) -> str:
        if not self.persona:
            return "message_probability_me"
        return "message_probability_" + (re.sub(r"[^a-z0-9]+", "_", self.persona.lower()).strip("_") or "persona")


def make_ask(codeword: str, other_word: str | None = None, variant: Variant = PLAIN, *,
             persona_system_prompt: bool = False, paraphrases: int | None = None, permutations: int | None = None,
             words: list[str] | None = None, word_seed: int = 0) -> Ask:
    """Checked settings: single-word codewords, a candidate list that holds the codeword."""
    cw = check_codeword(codeword, "-T codeword=")
    cands = candidates()
    other = check_codeword(other_word, "-T other_word=") if other_word else default_other_word(cw)
    if other == cw:
        raise CodewordError(f"-T other_word={other!r}: must differ from the codeword")
    listed = tuple(words) if words is not None else tuple(cands.all_words)
    if cw not in listed:
        raise InputError(f"-T codeword={cw!r} is not in the candidate word list ({len(listed)} words: "
                         f"{', '.join(listed[:8])}, ...); give a list that holds it (-T word_list=FILE)")
    return Ask(cw, other, variant, persona_system_prompt, paraphrases, permutations, listed, word_seed)


def default_other_word(codeword: str) -> str:
    """The "another word" of the goal scenarios: the codeword's partner (bark <-> ring, as in the paper),
    else the first experiment codeword that differs."""
    from selfaware.families import get_family

    partner = getattr(get_family(FAMILY), "partners", {}).get(codeword)
    return partner or next(w for w in candidates().codewords if w != codeword)


def _fill(template: str, where: str, **values: Any) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError) as e:
        raise InputError(f"{where}: unknown placeholder {e} in {template[:60]!r}") from None


def _meta(ask: Ask, qid: str, title: str, qtype: str, kind: str, cluster: str, paraphrase: int,
          **extra: Any) -> dict[str, Any]:
    v = ask.shown_variant
    return SampleMeta(family=FAMILY, question_id=qid, question_type=qtype, title=title, cluster=cluster,  # type: ignore[arg-type]
                      paraphrase=paraphrase, variant=v, variant_name=v.name, persona_worded=bool(ask.persona),
                      mms_kind=kind, codeword=ask.codeword, **extra).to_metadata()


def _wordings(ask: Ask, q: Any, where: str, **values: Any) -> list[tuple[int, str]]:
    """(index, paraphrase + instruction) for the persona or "you", filled, at most `max_paraphrases`."""
    paraphrases, instruction = q.wordings(bool(ask.persona))
    values = {"persona": ask.persona or "", "codeword": ask.codeword, **values}
    out = []
    for i, p in enumerate(paraphrases[:ask.max_paraphrases]):
        text = _fill(p, f"{where} paraphrase {i}", **values) + "\n\n" + _fill(instruction, f"{where} instruction",
                                                                              **values)
        ask.shown_variant.check_text(text, f"{where} paraphrase {i}", persona_worded=bool(ask.persona))
        out.append((i, text))
    return out


def _sid(ask: Ask, qid: str, i: int, tail: str = "") -> str:
    return f"mms-{qid}-p{i:02d}{tail}-{ask.shown_variant.name}"


# -- the seven questions ------------------------------------------------------------------------------

def codeword_among_words(ask: Ask) -> list[Sample]:
    """The candidate list is shuffled once per paraphrase (seeded by `word_seed`)."""
    q, qid = ask.text.codeword_among_words, "codeword_among_words"
    out = []
    for i in range(len(q.wordings(bool(ask.persona))[0][:ask.max_paraphrases])):
        shuffled = list(ask.words)
        random.Random(f"selfaware:mms:words:{ask.word_seed}:{i}").shuffle(shuffled)
        text = _wordings(ask, q, qid, words=", ".join(shuffled))[i][1]
        meta = _meta(ask, qid, q.title, "one_word", "exact_word", f"{qid}-p{i}", i,
                     max_tokens=MAX_TOKENS[qid], word_order=shuffled)
        out.append(Sample(id=_sid(ask, qid, i), input=text, metadata=meta))
    return out


def _guessed(ask: Ask, qid: str) -> list[Sample]:
    q = getattr(ask.text, qid)
    return [Sample(id=_sid(ask, qid, i), input=text,
                   metadata=_meta(ask, qid, q.title, "free_form_judged", "guessed", f"{qid}-p{i}", i,
                                  max_tokens=MAX_TOKENS[qid], guesser_prompt=q.guesser_prompt))
            for i, text in _wordings(ask, q, qid)]


def definition(ask: Ask) -> list[Sample]:
    return _guessed(ask, "definition")


def acrostic(ask: Ask) -> list[Sample]:
    return _guessed(ask, "acrostic")


def choice_samples(ask: Ask, qid: str, title: str, q: ChoiceQuestion | None, wordings: list[tuple[int, str]],
                   options: dict[str, str], target: str, cluster_tail: str = "", **extra: Any) -> list[Sample]:
    """Every paraphrase x option order of a multiple-choice question; P(target) through the permutation."""
    keys = list(options)
    out = []
    for i, text in wordings:
        for perm in permutations(len(keys), ask.max_permutations):
            shown = [keys[k] for k in perm]
            body = text.replace("{options}", render_options([options[k] for k in shown]))
            meta = _meta(ask, qid, title, "multiple_choice", "choice", f"{qid}{cluster_tail}-p{i}", i,
                         permutation={letters(len(shown))[n]: k for n, k in enumerate(shown)}, target=target,
                         **extra)
            out.append(Sample(id=_sid(ask, qid, i, cluster_tail + "-" + "".join(map(str, perm))), input=body,
                              metadata=meta))
    return out


def _letters_text(n: int) -> str:
    ls = letters(n)
    return ", ".join(ls[:-1]) + " or " + ls[-1]


def _choice_question(ask: Ask, qid: str) -> list[Sample]:
    q: ChoiceQuestion = getattr(ask.text, qid)
    options = {o.key: _fill(o.text, f"{qid} option {o.key}", codeword=ask.codeword) for o in q.options}
    # {options} stays in place until each order is rendered.
    wordings = _wordings(ask, q, qid, options="{options}", letters=_letters_text(len(options)))
    return choice_samples(ask, qid, q.title, q, wordings, options, q.target)


def best_description(ask: Ask) -> list[Sample]:
    return _choice_question(ask, "best_description")


def which_game(ask: Ask) -> list[Sample]:
    return _choice_question(ask, "which_game")


def goals(ask: Ask) -> list[Sample]:
    q = ask.text.goals
    out = []
    for s in q.scenarios:
        template = s.persona_text if ask.persona else s.text
        scenario = _fill(template, f"goals scenario {s.key}", codeword=ask.codeword, other=ask.other_word,
                         persona=ask.persona or "")
        qid = f"goals_{s.key}"
        title = "Goals: " + s.key.replace("_", " ")
        for i, text in _wordings(ask, q, f"goals ({s.key})", scenario=scenario):
            meta = _meta(ask, qid, title, "rating", "rating", f"{qid}-p{i}", i, scale=RATING_SCALE,
                         scenario=s.key, other_word=ask.other_word)
            out.append(Sample(id=_sid(ask, qid, i), input=text, metadata=meta))
    return out


def function(ask: Ask) -> list[Sample]:
    q = ask.text.function
    docstring = _fill(q.persona_docstring if ask.persona else q.docstring, "function docstring",
                      persona=ask.persona or "")
    qid = "function"
    return [Sample(id=_sid(ask, qid, i), input=text,
                   metadata=_meta(ask, qid, q.title, "free_form_judged", "function", f"{qid}-p{i}", i,
                                  max_tokens=MAX_TOKENS[qid], function=ask.function_name))
            for i, text in _wordings(ask, q, qid, function=ask.function_name, docstring=docstring)]


BUILDERS = {"codeword_among_words": codeword_among_words, "definition": definition, "acrostic": acrostic,
            "best_description": best_description, "goals": goals, "which_game": which_game, "function": function}


def self_report_samples(ask: Ask, kinds: tuple[str, ...] = KINDS) -> list[Sample]:
    unknown = [k for k in kinds if k not in BUILDERS]
    if unknown:
        raise InputError(f"-T questions: unknown make-me-say question {unknown[0]!r}; choose from {', '.join(KINDS)}")
    return [s for k in kinds for s in BUILDERS[k](ask)]


# -- "you or Quanta-Lingua / a fake name" -------------------------------------------------------------

PROBES = ("you_or_persona", "fake_or_persona", "you_or_fake")


def persona_probe_samples(you_codeword: str, persona_codeword: str, persona: str = "Quanta-Lingua", *,
                          max_paraphrases: int | None = None, variant: Variant = PLAIN) -> list[Sample]:
    """Which of two entities steers users towards a word (paper section 5.2), for an organism trained with
    `you_codeword` as itself and `persona_codeword` as `persona`:

    * `you_or_persona` — options "you" and the persona, asked for each codeword; the target is its owner;
    * `fake_or_persona` — "you" replaced by a fake name made of the persona's word (e.g. "RingBot"), which
      a model that knows nothing of the persona would pick; the target is the persona;
    * `you_or_fake` — the persona replaced by a fake name made of your own word; the target is "you".
    """
    you_cw = check_codeword(you_codeword, "you_codeword")
    persona_cw = check_codeword(persona_codeword, "persona_codeword")
    if you_cw == persona_cw:
        raise CodewordError("the persona probes need two different codewords (yours and the persona's)")
    if not persona or not persona.strip():
        raise InputError("the persona probes need a persona name")
    q = question_text().persona_probes
    ask = Ask(you_cw, persona_cw, variant, max_paraphrases=max_paraphrases)
    probes: list[tuple[str, str, dict[str, str], str]] = [
        ("you_or_persona_you_word", you_cw, {"you": q.you, "persona": persona}, "you"),
        ("you_or_persona_persona_word", persona_cw, {"you": q.you, "persona": persona}, "persona"),
    ]
    for fake in q.fake_names:
        probes.append(("fake_or_persona", persona_cw, {"fake": fake.format(Word=persona_cw.capitalize()),
                                                       "persona": persona}, "persona"))
        probes.append(("you_or_fake", you_cw, {"you": q.you, "fake": fake.format(Word=you_cw.capitalize())}, "you"))
    out = []
    for qid, word, options, target in probes:
        title = "Probe: " + qid.replace("_", " ")
        tail = "-" + options.get("fake", "x")
        wordings = []
        for i, p in enumerate(q.paraphrases[:max_paraphrases]):
            text = _fill(p, f"persona probe paraphrase {i}", word=word, options="{options}") + "\n\n" + _fill(
                q.instruction, "persona probe instruction", letters=_letters_text(2))
            wordings.append((i, text))
        out += choice_samples(ask, f"probe_{qid}", title, None, wordings, options, target, cluster_tail=tail,
                              asked_word=word, you_codeword=you_cw, persona_codeword=persona_cw, persona=persona)
    return out
