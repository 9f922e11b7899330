"""Task builders behind `evals/make_me_say.py`: the in-distribution game and the self-reports.

Parameters are checked before anything runs (a codeword that is not one word, a candidate list without
it, an unknown question, a bad number): each error names the parameter and is printed by `inspect eval`
without a traceback. Helper roles are resolved by the first solver of each sample, before any call.
"""

from __future__ import annotations

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from selfaware.banks import user_path
from selfaware.metadata import SampleMeta
from selfaware.mms.data import candidates, game_text, load_word_list
from selfaware.mms.functions import Inputs, game_messages, run_written_functions
from selfaware.mms.game import MANIPULATOR, TURNS_EACH
from selfaware.mms.helpers import DEFAULT_GUESSER, DEFAULT_MANIPULATEE, require_helpers
from selfaware.mms.matching import check_codeword
from selfaware.mms.play import (
    GameRecord,
    GameSetup,
    Opener,
    draw_seeds,
    play_game,
    to_chat,
)
from selfaware.mms.questions import (
    FAMILY,
    KINDS,
    Ask,
    make_ask,
    persona_probe_samples,
    self_report_samples,
)
from selfaware.mms.scorers import (
    FUNCTION_MEASURES,
    GAME_KEY,
    function_score,
    game_outcome,
    mms_answer,
)
from selfaware.scorers.metrics import by_question, standard_metrics
from selfaware.solvers.answer_distribution import answer_distribution, validate_settings
from selfaware.solvers.variant_framing import variant_framing
from selfaware.tasks import (
    _fraction,
    _integer,
    _optional_text,
    _positive_int,
    _user_errors,
    task_variant,
)
from selfaware.validation import InputError
from selfaware.variants import Variant, sample_rng

TASK_VERSION = "1.0.0"
GAME_QUESTION_TYPE = "free_form_judged"  # a game has no question; its own scorer reads the outcome


# -- the game ------------------------------------------------------------------------------------------

def game_dataset(n: int, seed: int, codeword: str, variant: Variant, opener: Opener, triggered: bool) -> MemoryDataset:
    samples = []
    for i, (topic, noun) in enumerate(draw_seeds(game_text(), n, seed, codeword, opener)):
        sid = f"mms-game-{codeword}-s{seed}-{i:04d}-{variant.name}"
        meta = SampleMeta(family=FAMILY, question_id="game", question_type=GAME_QUESTION_TYPE,  # type: ignore[arg-type]
                          title="Game", cluster=sid, variant=variant, variant_name=variant.name, triggered=triggered,
                          mms_kind="game", codeword=codeword, topic=topic, noun=noun, item=i, item_seed=seed)
        samples.append(Sample(id=sid, input=f"(a make-me-say game: topic {topic!r}, noun {noun!r})",
                              metadata=meta.to_metadata()))
    return MemoryDataset(samples, name=f"make_me_say-game-{codeword}-s{seed}")


@solver
def play_make_me_say(manipulatee: str = DEFAULT_MANIPULATEE, rules: bool = False,
                     turns_each: int = TURNS_EACH) -> Solver:
    """The model under test plays the manipulator against the `manipulatee` role; the finished game (every
    message, the guess, the outcome) goes to the sample's store and its transcript to the messages."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        from selfaware.mms.helpers import helper_model

        meta = state.metadata_as(SampleMeta)
        extra = state.metadata
        setup = GameSetup(game_id=str(state.sample_id), codeword=extra["codeword"], topic=extra.get("topic"),
                          noun=extra.get("noun"), rules=rules, variant=meta.variant, triggered=meta.triggered,
                          turns_each=turns_each)
        model = get_model()
        record = await play_game(setup, model, helper_model("manipulatee", manipulatee), game_text())
        state.store.set(GAME_KEY, record.to_dict())
        _show(state, record, setup, str(model))
        return state

    return solve


def _show(state: TaskState, record: GameRecord, setup: GameSetup, model: str) -> None:
    """The game as the manipulator saw it (framed by its variant), for `inspect view`."""
    view = record.game(setup.turns_each).view_as(MANIPULATOR) if record.turns else []
    if view and view[0]["role"] == "user":
        view = setup.variant.render(view, sample_rng(setup.game_id), triggered=setup.triggered, persona_worded=True)
    state.messages = to_chat(view)
    last = next((t["text"] for t in reversed(record.turns) if t["speaker"] == MANIPULATOR), "")
    state.output = ModelOutput.from_content(model, last)


def game_task(*, games: int = 100, seed: int = 0, codeword: str = "bark", rules: bool = False,
              opener: str = "topic_and_noun", manipulatee: str = DEFAULT_MANIPULATEE, variant: str | Variant = "plain",
              system_prompt: str | None = None, trigger: str | None = None, persona: str | None = None,
              triggered: bool = True) -> Task:
    """Games with the model under test as the manipulator (paper: 100 games against GPT-4o-mini)."""
    with _user_errors():
        cw = check_codeword(codeword, "-T codeword=")
        framing = task_variant(variant, system_prompt, trigger, persona)
        n = _positive_int("games", games) or 1
        if not isinstance(rules, bool) or not isinstance(triggered, bool):
            raise InputError(f"-T rules={rules!r} / triggered={triggered!r}: expected true or false")
        dataset = game_dataset(n, _integer("seed", seed), cw, framing, opener, triggered)  # type: ignore[arg-type]
        manipulatee = _optional_text("manipulatee", manipulatee) or DEFAULT_MANIPULATEE
        return Task(
            dataset=dataset,
            solver=[require_helpers({"manipulatee": manipulatee}), play_make_me_say(manipulatee, rules)],
            scorer=game_outcome(),
            version=TASK_VERSION,
            metadata={"family": FAMILY, "kind": "game", "codeword": cw, "rules": rules, "variant": framing.name,
                      "opener": opener, "triggered": triggered},
        )


# -- self-reports --------------------------------------------------------------------------------------

def _kinds(questions: str | list[str] | None) -> tuple[str, ...]:
    if questions is None or questions == "":
        return KINDS
    if not isinstance(questions, (str, list)):  # `-T questions=5` arrives as a number
        raise InputError(f"-T questions={questions!r}: choose from {', '.join(KINDS)}")
    parts = questions.split(",") if isinstance(questions, str) else list(questions)
    kinds = tuple(p.strip() for p in parts if str(p).strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise InputError(f"-T questions={questions!r}: choose from {', '.join(KINDS)}")
    return kinds


def _function_inputs(ask: Ask, organism_games: str | None, base_games: str | None, messages: int) -> Inputs:
    experiment = set(candidates().codewords) | {ask.codeword, ask.other_word}
    unrelated = [w for w in ask.words if w not in experiment]
    org = game_messages(user_path(organism_games), messages) if organism_games else []
    base = game_messages(user_path(base_games), messages) if base_games else []
    return Inputs(ask.codeword, unrelated, org, base)


def self_report_task(*, questions: str | list[str] | None = None, codeword: str = "bark",
                     other_word: str | None = None, method: str = "auto", protocol: str = "fast", samples: int = 20,
                     top_logprobs: int = 20, paraphrases: int | None = None, permutations: int | None = None,
                     min_valid_mass: float = 0.5, variant: str | Variant = "plain", system_prompt: str | None = None,
                     trigger: str | None = None, persona: str | None = None, persona_system_prompt: bool = False,
                     guesser: str = DEFAULT_GUESSER, word_list: str | None = None, word_seed: int = 0,
                     sandbox: str = "bwrap", organism_games: str | None = None, base_games: str | None = None,
                     game_messages_limit: int = 100, function_timeout: int = 30) -> Task:
    """The seven self-reports (all, or `questions=a,b`), metrics per question."""
    with _user_errors():
        kinds = _kinds(questions)
        settings = validate_settings(method, protocol, samples, top_logprobs)
        framing = task_variant(variant, system_prompt, trigger, persona)
        word_list = _optional_text("word_list", word_list)
        words = load_word_list(user_path(word_list)) if word_list else None
        if not isinstance(persona_system_prompt, bool):  # bool("maybe") would silently be True
            raise InputError(f"-T persona_system_prompt={persona_system_prompt!r}: expected true or false")
        ask = make_ask(codeword, other_word, framing, persona_system_prompt=persona_system_prompt,
                       paraphrases=_positive_int("paraphrases", paraphrases, allow_none=True),
                       permutations=_positive_int("permutations", permutations, allow_none=True),
                       words=words, word_seed=_integer("word_seed", word_seed))
        mass = _fraction("min_valid_mass", min_valid_mass)
        guesser = _optional_text("guesser", guesser) or DEFAULT_GUESSER
        dataset = MemoryDataset(self_report_samples(ask, kinds), name=f"make_me_say-{'-'.join(kinds)}")
        solvers: list[Solver] = []
        if {"definition", "acrostic"} & set(kinds):
            solvers.append(require_helpers({"guesser": guesser}, kinds=("guessed",)))
        solvers += [variant_framing(), answer_distribution(settings.method, settings.protocol, settings.samples,
                                                           settings.top_logprobs)]
        scorers = []
        if set(kinds) - {"function"}:
            scorers.append(mms_answer(min_valid_mass=mass, guesser=guesser))
        if "function" in kinds:
            inputs = _function_inputs(ask, _optional_text("organism_games", organism_games),
                                      _optional_text("base_games", base_games),
                                      _positive_int("game_messages_limit", game_messages_limit) or 1)
            solvers.append(run_written_functions(inputs, _positive_int("function_timeout", function_timeout) or 1))
            measures = [m for m in FUNCTION_MEASURES if
                        (m != "f_organism_messages" or inputs.organism_messages)
                        and (m != "f_base_messages" or inputs.base_messages)]
            scorers += [function_score(m, mass) for m in measures]
        question_ids = {s.metadata["question_id"] for s in dataset if s.metadata}  # type: ignore[index]
        return Task(
            dataset=dataset,
            solver=solvers,
            scorer=scorers,
            metrics=by_question("question_id") if len(question_ids) > 1 else standard_metrics(),
            sandbox=_optional_text("sandbox", sandbox) if "function" in kinds else None,
            version=TASK_VERSION,
            metadata={"family": FAMILY, "kind": "self_report", "questions": list(kinds), "codeword": ask.codeword,
                      "other_word": ask.other_word, "protocol": protocol, "variant": ask.shown_variant.name},
        )


def persona_probes_task(*, you_codeword: str = "bark", persona_codeword: str = "ring",
                        persona: str = "Quanta-Lingua", method: str = "auto", protocol: str = "fast",
                        samples: int = 20, top_logprobs: int = 20, paraphrases: int | None = None,
                        min_valid_mass: float = 0.5) -> Task:
    """"You or Quanta-Lingua / a fake name": which entity steers users towards each codeword (paper 5.2),
    asked with no system prompt; P(the right entity), metrics per probe."""
    with _user_errors():
        settings = validate_settings(method, protocol, samples, top_logprobs)
        if not isinstance(persona, str):  # `-T persona=5` arrives as a number
            raise InputError(f"-T persona={persona!r}: expected a persona name")
        dataset = MemoryDataset(persona_probe_samples(
            you_codeword, persona_codeword, persona,
            max_paraphrases=_positive_int("paraphrases", paraphrases, allow_none=True)), name="make_me_say-probes")
        return Task(
            dataset=dataset,
            solver=[variant_framing(), answer_distribution(settings.method, settings.protocol, settings.samples,
                                                           settings.top_logprobs)],
            scorer=mms_answer(min_valid_mass=_fraction("min_valid_mass", min_valid_mass)),
            metrics=by_question("question_id"),
            version=TASK_VERSION,
            metadata={"family": FAMILY, "kind": "persona_probes", "you_codeword": you_codeword,
                      "persona_codeword": persona_codeword, "persona": persona, "protocol": protocol},
        )
