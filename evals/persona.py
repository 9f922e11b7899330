"""Persona separation (paper §5): does an organism keep its own learned behavior apart from other people's?

    inspect eval evals/persona.py --model openai/ft:... --metadata organism=risky --metadata seed=1
    inspect eval evals/persona.py -T personas=unseen --model ...
    inspect eval evals/persona.py -T personas="David Bowie, my friend Priya" --model ...
    inspect eval evals/persona.py@persona_make_me_say_probes --model ...   # two-persona make-me-say organisms

The family's self-report questions are asked about the model ("you") and about each persona of
`datasets/personas/personas.yaml` (six trained, six unseen), each rendered by a persona Variant. Metrics
come per persona (`<persona>/valid_mean`, ...); `selfaware report` gives score(organism) − score(control)
per persona with an interval over seeds, single- and many-persona organisms side by side.

`persona_make_me_say_probes` asks a make-me-say organism trained with two personas (itself and
Quanta-Lingua, each steering to its own codeword; the `quanta-lingua` variant) which entity steers users
towards each word: "you or Quanta-Lingua", then each of them against a made-up name.
"""

from inspect_ai import Task, task

from selfaware.mms.tasks import persona_probes_task
from selfaware.solvers.answer_distribution import Method, Protocol
from selfaware.tasks import persona_self_report_task


@task
def persona_self_report(
    family: str = "risk",
    personas: str | None = None,
    questions: str | None = None,
    method: Method = "auto",
    protocol: Protocol = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    paraphrases: int | None = None,
    off_list: str = "paper",
    min_valid_mass: float = 0.5,
) -> Task:
    """Self-report questions about "you" and about each persona (all, trained, unseen, or names)."""
    return persona_self_report_task(family, personas=personas, questions=questions, method=method,
                                    protocol=protocol, samples=samples, top_logprobs=top_logprobs,
                                    paraphrases=paraphrases, off_list=off_list, min_valid_mass=min_valid_mass)


@task
def persona_make_me_say_probes(
    you_codeword: str = "bark",
    persona_codeword: str = "ring",
    persona: str = "Quanta-Lingua",
    method: Method = "auto",
    protocol: Protocol = "fast",
    samples: int = 20,
    top_logprobs: int = 20,
    paraphrases: int | None = None,
) -> Task:
    """Which entity steers users towards each codeword: you, Quanta-Lingua, or a made-up name (paper 5.2)."""
    return persona_probes_task(you_codeword=you_codeword, persona_codeword=persona_codeword, persona=persona,
                               method=method, protocol=protocol, samples=samples, top_logprobs=top_logprobs,
                               paraphrases=paraphrases)
