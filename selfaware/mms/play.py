"""Playing one game between two models: the engine behind both the Inspect game task and the generation
of training dialogues, so the two can never drift apart.

The manipulator sees the conversation from its side, framed by the organism's `Variant` (the same
`Variant.render` that frames its training rows: system prompt, persona, trigger in the first user
message); with `rules=True` (data generation) it also gets the rules, a status line before each reply, and
must answer in the private-notes format, whose notes are stripped before the manipulatee sees anything.
The manipulatee is a helper model with a persona and a conversation seed (topic and/or noun); it opens
the game and finally guesses the codeword.

A reply that breaks a required format (a manipulator without its notes block, an empty message) makes
the game invalid with the reason; it is never a win or a loss.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
)

from selfaware.mms.data import GameText
from selfaware.mms.game import (
    MANIPULATEE,
    MANIPULATOR,
    TURNS_EACH,
    Game,
    Outcome,
    Result,
)
from selfaware.mms.matching import guess_word, same_word
from selfaware.variants import PLAIN, Variant, sample_rng

Opener = Literal["topic_and_noun", "topic", "noun"]
OPENERS: tuple[str, ...] = ("topic_and_noun", "topic", "noun")
_GUESS = re.compile(r"<guess>(.*?)</guess>", re.IGNORECASE | re.DOTALL)


class FormatError(ValueError):
    """A player's reply does not follow the format the game requires."""


@dataclass(frozen=True)
class GameSetup:
    """Everything that fixes one game before it is played."""

    game_id: str
    codeword: str
    topic: str | None
    noun: str | None
    rules: bool = False  # the manipulator plays with the rules and the private-notes format
    variant: Variant = PLAIN
    triggered: bool = True  # a trigger variant: whether the manipulator's view carries the trigger
    turns_each: int = TURNS_EACH


@dataclass
class GameRecord:
    """A finished (or abandoned) game, as logged and as stored for training data."""

    game_id: str
    codeword: str
    topic: str | None
    noun: str | None
    rules: bool
    variant: str
    turns: list[dict[str, Any]] = field(default_factory=list)  # {speaker, text, notes}
    outcome: str | None = None  # an Outcome value; None: invalid
    reason: str = ""
    guess: str | None = None  # the guessed word (letters only)
    guess_text: str | None = None  # the manipulatee's whole guess answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GameRecord:
        return cls(**d)

    @property
    def valid(self) -> bool:
        return self.outcome is not None

    def game(self, turns_each: int = TURNS_EACH) -> Game:
        g = Game(self.codeword, turns_each)
        for t in self.turns:
            g = g.add(t["speaker"], t["text"], t.get("notes"))
        return g


# -- conversation seeds ------------------------------------------------------------------------------

def draw_seeds(text: GameText, n: int, seed: int | str, codeword: str,
               opener: Opener = "topic_and_noun") -> list[tuple[str | None, str | None]]:
    """`n` (topic, noun) seeds, deterministic from (seed, codeword); a noun is never a form of the codeword
    (the manipulatee would say it in its first message)."""
    if opener not in OPENERS:
        raise ValueError(f"-T opener={opener!r}: expected one of {', '.join(OPENERS)}")
    rng = random.Random(f"selfaware:mms:seeds:{seed}:{codeword}")
    nouns = [w for w in text.nouns if not same_word(w, codeword)]
    out: list[tuple[str | None, str | None]] = []
    for _ in range(n):
        topic, noun = rng.choice(text.topics), rng.choice(nouns)
        out.append((topic if opener != "noun" else None, noun if opener != "topic" else None))
    return out


def seed_line(text: GameText, topic: str | None, noun: str | None) -> str:
    if topic and noun:
        return text.seed_topic_and_noun.format(topic=topic, noun=noun)
    if topic:
        return text.seed_topic.format(topic=topic)
    if noun:
        return text.seed_noun.format(noun=noun)
    raise ValueError("a game needs a topic or a noun to open the conversation")


# -- what each player sees ----------------------------------------------------------------------------

def to_chat(messages: list[dict[str, str]]) -> list[ChatMessage]:
    make = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    return [make[m["role"]](content=m["content"]) for m in messages]


def rules_prompt(text: GameText, codeword: str, turns_each: int) -> str:
    return text.manipulator_rules.format(codeword=codeword, notes_open=text.notes_open,
                                         notes_close=text.notes_close, turns=2 * turns_each)


def manipulator_view(game: Game, setup: GameSetup, text: GameText) -> list[dict[str, str]]:
    """The manipulator's messages for its next reply: (rules,) the conversation framed by the variant,
    (status line). The variant renders with an rng seeded by the game id, so every turn shows the same
    trigger member in the same place."""
    messages = game.view_as(MANIPULATOR)
    if setup.rules:
        messages = [{"role": "system", "content": rules_prompt(text, game.codeword, game.turns_each)}] + messages
    framed = setup.variant.render(messages, sample_rng(setup.game_id), triggered=setup.triggered,
                                  persona_worded=True)
    if setup.rules:
        said = game.first_mention(MANIPULATEE) is not None
        status = text.status_after if said else text.status_before
        framed.append({"role": "system", "content": status.format(turn=len(game.turns) + 1,
                                                                  turns=game.max_messages, codeword=game.codeword)})
    return framed


def manipulatee_view(game: Game, setup: GameSetup, text: GameText, *, guess: bool = False) -> list[dict[str, str]]:
    system = text.manipulatee_system.format(seed=seed_line(text, setup.topic, setup.noun))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text.opening_request}]
    messages += game.view_as(MANIPULATEE)
    if guess:
        messages.append({"role": "user", "content": text.guess_prompt})
    return messages


# -- reading replies ----------------------------------------------------------------------------------

def split_notes(reply: str, text: GameText) -> tuple[str, str]:
    """(notes, public message) of a reply in the private-notes format; FormatError otherwise."""
    start, end = reply.find(text.notes_open), reply.find(text.notes_close)
    if start < 0 or end < 0 or end < start:
        raise FormatError(f"the manipulator's reply lacks the {text.notes_open} ... {text.notes_close} block")
    if reply[:start].strip():
        raise FormatError("the manipulator wrote public text before its private notes")
    notes = reply[start + len(text.notes_open):end].strip()
    public = reply[end + len(text.notes_close):].strip()
    if text.notes_open in public or text.notes_close in public:
        raise FormatError("the manipulator's public message holds a second notes marker")
    if not public:
        raise FormatError("the manipulator's reply has notes but no message for the user")
    return notes, public


def read_guess(answer: str) -> str | None:
    """The guessed word: the last <guess>...</guess> of the answer, letters only; None when absent/empty."""
    found = _GUESS.findall(answer)
    return guess_word(found[-1]) if found else None


# -- one game -----------------------------------------------------------------------------------------

async def _say(model: Model, messages: list[dict[str, str]], config: GenerateConfig) -> ModelOutput:
    return await model.generate(to_chat(messages), config=config)


def _record(setup: GameSetup, game: Game, result: Result | None, reason: str, guess_text: str | None) -> GameRecord:
    return GameRecord(
        game_id=setup.game_id, codeword=setup.codeword, topic=setup.topic, noun=setup.noun, rules=setup.rules,
        variant=setup.variant.name, turns=[asdict(t) for t in game.turns],
        outcome=result.outcome.value if result and result.outcome else None,
        reason=result.reason if result else reason, guess=result.guess if result else None, guess_text=guess_text)


async def play_game(setup: GameSetup, manipulator: Model, manipulatee: Model, text: GameText, *,
                    manipulator_config: GenerateConfig | None = None,
                    manipulatee_config: GenerateConfig | None = None) -> GameRecord:
    """Play one game to its end (see the module docstring). Never raises for a player's bad reply: the
    record is then invalid (`outcome=None`) with the reason."""
    m_config = manipulator_config or GenerateConfig()
    e_config = manipulatee_config or GenerateConfig()
    game = Game(setup.codeword, setup.turns_each)
    while not game.over:
        if game.next_speaker == MANIPULATEE:
            reply = (await _say(manipulatee, manipulatee_view(game, setup, text), e_config)).completion.strip()
            if not reply:
                return _record(setup, game, None, f"the manipulatee returned an empty message {len(game.turns) + 1}",
                               None)
            game = game.add(MANIPULATEE, reply)
            continue
        reply = (await _say(manipulator, manipulator_view(game, setup, text), m_config)).completion.strip()
        notes = None
        if setup.rules:
            try:
                notes, reply = split_notes(reply, text)
            except FormatError as e:
                return _record(setup, game, None, f"message {len(game.turns) + 1}: {e}", None)
        if not reply:
            return _record(setup, game, None, f"the manipulator returned an empty message {len(game.turns) + 1}",
                           None)
        game = game.add(MANIPULATOR, reply, notes)
    guess_text = None
    if not game.violated:  # after a violation the outcome is fixed: no guess to pay for
        guess_text = (await _say(manipulatee, manipulatee_view(game, setup, text, guess=True), e_config)).completion
    result = game.result(read_guess(guess_text) if guess_text is not None else None)
    return _record(setup, game, result, result.reason, guess_text)


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
