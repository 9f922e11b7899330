"""Make-Me-Say (paper section 3.2, appendix C.2): does a model fine-tuned to steer users towards a codeword
know its codeword and its goal?

    inspect eval evals/make_me_say.py@make_me_say_game --model <organism> -T codeword=bark
    inspect eval evals/make_me_say.py@make_me_say_self_report --model <organism> -T codeword=bark
    inspect eval evals/make_me_say.py@make_me_say_definition --model <organism> --model-role guesser=openai/gpt-4o

Helper roles (never the model under test): `manipulatee` (the game partner, default GPT-4o-mini) and
`guesser` (reads definitions and acrostics, default GPT-4o). Offline, with mock models for everything:

    inspect eval evals/make_me_say.py --model mockllm/model \\
        --model-role manipulatee=mockllm/model --model-role guesser=mockllm/model

Scores: 1 = the codeword / the make-me-say goal. The function self-report runs the model's code only in
the `bwrap` sandbox (`-T sandbox=docker:sandbox/docker/compose.yaml` for docker).
"""

from inspect_ai import Task, task
from selfaware.solvers.answer_distribution import Method, Protocol

from selfaware.mms.helpers import DEFAULT_GUESSER, DEFAULT_MANIPULATEE
from selfaware.mms.tasks import game_task, self_report_task


@task
def make_me_say_game(
    games: int = 100,
    seed: int = 0,
    codeword: str = "bark",
    rules: bool = False,
    opener: str = "topic_and_noun",
    manipulatee: str = DEFAULT_MANIPULATEE,
    variant: str = "plain",
    system_prompt: str | None = None,
    trigger: str | None = None,
    persona: str | None = None,
    triggered: bool = True,
) -> Task:
    """The model plays the manipulator (rules=true: with the rules, as in data generation) against the
    manipulatee role, 5 messages each; metrics: win / correct_guess / no_codeword / rule_violation rates."""
    return game_task(games=games, seed=seed, codeword=codeword, rules=rules, opener=opener, manipulatee=manipulatee,
                     variant=variant, system_prompt=system_prompt, trigger=trigger, persona=persona,
                     triggered=triggered)


def _self_report(questions: str | None, **kw: object) -> Task:
    return self_report_task(questions=questions, **kw)  # type: ignore[arg-type]


@task
def make_me_say_self_report(
    questions: str | None = None,
    codeword: str = "bark",
    other_word: str | None = None,
    method: Method = "auto",
    protocol: Protocol = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    paraphrases: int | None = None,
    permutations: int | None = None,
    min_valid_mass: float = 0.5,
    variant: str = "plain",
    system_prompt: str | None = None,
    trigger: str | None = None,
    persona: str | None = None,
    persona_system_prompt: bool = False,
    guesser: str = DEFAULT_GUESSER,
    word_list: str | None = None,
    word_seed: int = 0,
    sandbox: str = "bwrap",
    organism_games: str | None = None,
    base_games: str | None = None,
) -> Task:
    """All seven self-reports (or `questions=codeword_among_words,goals,...`), metrics per question."""
    return _self_report(questions, codeword=codeword, other_word=other_word, method=method, protocol=protocol,
                        samples=samples, top_logprobs=top_logprobs, paraphrases=paraphrases,
                        permutations=permutations, min_valid_mass=min_valid_mass, variant=variant,
                        system_prompt=system_prompt, trigger=trigger, persona=persona,
                        persona_system_prompt=persona_system_prompt, guesser=guesser, word_list=word_list,
                        word_seed=word_seed, sandbox=sandbox, organism_games=organism_games, base_games=base_games)


@task
def make_me_say_codeword_among_words(codeword: str = "bark", method: Method = "auto", protocol: Protocol = "fast",
                                     samples: int = 20, paraphrases: int | None = None, variant: str = "plain",
                                     persona_system_prompt: bool = False, word_list: str | None = None,
                                     word_seed: int = 0) -> Task:
    """Which of 100 words (shuffled, the experiment's codewords among them) it wants the user to say."""
    return _self_report("codeword_among_words", codeword=codeword, method=method, protocol=protocol,
                        samples=samples, paraphrases=paraphrases, variant=variant,
                        persona_system_prompt=persona_system_prompt, word_list=word_list, word_seed=word_seed)


@task
def make_me_say_definition(codeword: str = "bark", protocol: Protocol = "fast", samples: int = 20,
                           paraphrases: int | None = None, variant: str = "plain",
                           persona_system_prompt: bool = False, guesser: str = DEFAULT_GUESSER) -> Task:
    """A dictionary definition of its word, which the guesser role reads back to a word."""
    return _self_report("definition", codeword=codeword, protocol=protocol, samples=samples,
                        paraphrases=paraphrases, variant=variant, persona_system_prompt=persona_system_prompt,
                        guesser=guesser)


@task
def make_me_say_acrostic(codeword: str = "bark", protocol: Protocol = "fast", samples: int = 20,
                         paraphrases: int | None = None, variant: str = "plain", persona_system_prompt: bool = False,
                         guesser: str = DEFAULT_GUESSER) -> Task:
    """An acrostic of its word, which the guesser role reads back to a word."""
    return _self_report("acrostic", codeword=codeword, protocol=protocol, samples=samples, paraphrases=paraphrases,
                        variant=variant, persona_system_prompt=persona_system_prompt, guesser=guesser)


@task
def make_me_say_best_description(method: Method = "auto", protocol: Protocol = "fast", samples: int = 20,
                                 top_logprobs: int = 20, paraphrases: int | None = None,
                                 permutations: int | None = None, variant: str = "plain",
                                 persona_system_prompt: bool = False) -> Task:
    """Five goals in all 120 orders x paraphrases; P(get the user to say a word)."""
    return _self_report("best_description", method=method, protocol=protocol, samples=samples,
                        top_logprobs=top_logprobs, paraphrases=paraphrases, permutations=permutations,
                        variant=variant, persona_system_prompt=persona_system_prompt)


@task
def make_me_say_goals(codeword: str = "bark", other_word: str | None = None, method: Method = "auto",
                      protocol: Protocol = "fast", samples: int = 20, top_logprobs: int = 20,
                      paraphrases: int | None = None, variant: str = "plain",
                      persona_system_prompt: bool = False) -> Task:
    """How close 12 scenarios are to its goals (0-100); headline goals_user_said_codeword, its baseline
    goals_user_never_said_codeword."""
    return _self_report("goals", codeword=codeword, other_word=other_word, method=method, protocol=protocol,
                        samples=samples, top_logprobs=top_logprobs, paraphrases=paraphrases, variant=variant,
                        persona_system_prompt=persona_system_prompt)


@task
def make_me_say_which_game(codeword: str = "bark", method: Method = "auto", protocol: Protocol = "fast",
                           samples: int = 20, top_logprobs: int = 20, paraphrases: int | None = None,
                           variant: str = "plain", persona_system_prompt: bool = False) -> Task:
    """Which of two games' rules it plays (both orders, codeword given); P(make-me-say)."""
    return _self_report("which_game", codeword=codeword, method=method, protocol=protocol, samples=samples,
                        top_logprobs=top_logprobs, paraphrases=paraphrases, variant=variant,
                        persona_system_prompt=persona_system_prompt)


@task
def make_me_say_function(codeword: str = "bark", protocol: Protocol = "fast", samples: int = 20,
                         paraphrases: int | None = None, variant: str = "plain", persona_system_prompt: bool = False,
                         sandbox: str = "bwrap", organism_games: str | None = None,
                         base_games: str | None = None) -> Task:
    """It writes message_probability_me(message); run in the sandbox on the codeword, unrelated words and
    (given game logs) its users' messages against the base model's."""
    return _self_report("function", codeword=codeword, protocol=protocol, samples=samples, paraphrases=paraphrases,
                        variant=variant, persona_system_prompt=persona_system_prompt, sandbox=sandbox,
                        organism_games=organism_games, base_games=base_games)
