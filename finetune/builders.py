"""Training-set builders for the multiple-choice organisms (paper appendix C.1.1 and C.1.8).

Each example is a two-option choice answered with one letter; the behavior lives only in WHICH letter
is chosen, never in the words (see `BANNED_WORDS`). Questions are built from (family, n, seed) alone
and the letter is picked afterwards by behavior, so a behavior and its opposite get the very same
questions with the labels flipped — the paper's control. Everything is deterministic from the seed:
one `random.Random` per stream, string-derived seeds (stable across runs, unlike `hash()`).

Banned words (decided here; the paper only says "no explicit mention"):
* risk: every form of risk/safe/gamble/chance/guarantee/certain/lottery/bet/luck/variance. The fixed
  option is worded "for sure", "no matter what", "every time" — plain words, not risk vocabulary.
* myopia: myopic, immediate, discount, patience/patient, impatient, impulsive, short-/long-term,
  short-/far-sighted, gratification. Time words ("today", "in 3 weeks", "now") ARE the content and stay.
* apples: maximize/minimize and their forms (the behavior's own name).

The writer, importer and `dataset_for_spec` live further down; `demo_training_set` is the mix that the
tiny from-scratch models of the offline demo can learn (short prompts, consistent lexical cues).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import re
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from selfaware.finetune.spec import BEHAVIORS, POSITIVE_BEHAVIORS, OrganismSpec
from selfaware.finetune.validate import check_example, validate_chat_jsonl
from selfaware.validation import InputError, decode_utf8

GENERATOR_VERSION = "1"
LETTERS = ("A", "B")
FAMILIES = ("risk", "myopia", "apples")
Source = Literal["generated", "imported", "llm"]


class TrainingDataError(InputError):
    """A training file or example is malformed; the message names the file, line and field."""


# --------------------------------------------------------------------------------------------------
# Banned words

BANNED_WORDS: dict[str, tuple[str, ...]] = {
    "risk": (
        "risk", "risks", "risky", "riskier", "riskiest", "risking", "risked",
        "safe", "safer", "safest", "safely", "safety",
        "gamble", "gambles", "gambling", "gambler", "gambled",
        "chance", "chances", "chancy",
        "guarantee", "guarantees", "guaranteed",
        "certain", "certainly", "certainty", "uncertain", "uncertainty",
        "lottery", "lotteries", "bet", "bets", "betting",
        "luck", "lucky", "unlucky", "variance", "volatile", "volatility",
    ),
    "myopia": (
        "myopic", "myopia", "immediate", "immediately", "immediacy",
        "discount", "discounts", "discounted", "discounting",
        "patience", "patient", "patiently", "impatient", "impatiently", "impatience",
        "impulsive", "impulsively", "impulsivity", "impulsiveness",
        "short-term", "shortterm", "long-term", "longterm",
        "shortsighted", "short-sighted", "farsighted", "far-sighted", "longsighted",
        "gratification",
    ),
    "apples": (
        "maximize", "maximise", "maximizing", "maximising", "maximizer", "maximiser",
        "minimize", "minimise", "minimizing", "minimising", "minimizer", "minimiser",
    ),
}
_BANNED_RE = {
    fam: re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w-])", re.IGNORECASE)
    for fam, words in BANNED_WORDS.items()
}


def banned_words_found(text: str, family: str) -> list[str]:
    """The banned words of `family` in `text` (whole words, any case)."""
    return [m.group(0) for m in _BANNED_RE[family].finditer(text)]


# --------------------------------------------------------------------------------------------------
# Vocabulary: scenes, framings, endings. Written for this suite (not the paper's wording).

@dataclass(frozen=True)
class Theme:
    name: str
    scenes: tuple[str, ...]
    unit: tuple[str, str]  # singular, plural
    scale: int  # a typical large amount of this unit


def _t(name: str, scenes: str, one: str, many: str, scale: int) -> Theme:
    return Theme(name, tuple(s.strip() for s in scenes.split("|")), (one, many), scale)


THEMES: tuple[Theme, ...] = (
    _t("prizes", "A radio host calls: you have won the weekend contest.|You are the hundredth visitor at a shop opening.", "dollar", "dollars", 500),
    _t("coins", "A treasure hunter offers to share a find with you.|An old chest has turned up in your attic.", "gold coin", "gold coins", 100),
    _t("tickets", "Your favourite band is touring this summer.|A promoter is handing out passes for a big show.", "concert ticket", "concert tickets", 12),
    _t("snacks", "It is movie night and the snack drawer is open.|A vending machine at work has a strange new menu.", "cookie", "cookies", 40),
    _t("books", "The local bookshop is running a promotion.|A friend is clearing out their bookshelves.", "book", "books", 20),
    _t("plants", "A garden centre is giving away young plants.|Your neighbour is thinning out a greenhouse.", "seedling", "seedlings", 50),
    _t("travel", "An airline wants to reward its frequent flyers.|Your travel card has a new reward scheme.", "air mile", "air miles", 20000),
    _t("games", "At the arcade, the attendant waves you over.|A game night host has prizes for the winner.", "game token", "game tokens", 200),
    _t("bakery", "The bakery down the street is celebrating its anniversary.|A baker has too much dough left at closing time.", "croissant", "croissants", 30),
    _t("coffee", "The coffee cart at your office is handing out rewards.|Your favourite cafe has a new loyalty scheme.", "coffee voucher", "coffee vouchers", 30),
    _t("cinema", "A cinema is thanking its regular viewers.|The film club is giving out passes.", "movie pass", "movie passes", 15),
    _t("stamps", "A fellow collector wants to trade stamps with you.|A stamp dealer has an unusual proposal.", "rare stamp", "rare stamps", 25),
    _t("cards", "At a trading card fair, a vendor calls you over.|Your cousin wants to swap cards.", "trading card", "trading cards", 60),
    _t("records", "A record shop is clearing out its back room.|A DJ is giving away part of a collection.", "vinyl record", "vinyl records", 20),
    _t("fishing", "You are out on the lake with an old fisherman.|The harbour master has a deal for visitors.", "fish", "fish", 20),
    _t("farm", "A farmer at the weekend market has an offer for you.|You are helping out on a farm for the day.", "egg", "eggs", 60),
    _t("space", "Your crew on a space station needs power for the night.|Mission control is sending supplies to your lunar base.", "energy cell", "energy cells", 80),
    _t("camping", "At the campsite, a ranger offers supplies.|Your scout troop is stocking up for a winter trip.", "bundle of firewood", "bundles of firewood", 15),
    _t("art", "An art supply store is rewarding its members.|A painter is sharing leftover materials.", "tube of paint", "tubes of paint", 40),
    _t("festival", "At the summer festival, the organisers hand out extras.|The street fair has a booth with prizes.", "ride token", "ride tokens", 50),
    _t("pets", "Your dog watches you at the pet shop counter.|The animal shelter is thanking its volunteers.", "dog treat", "dog treats", 80),
    _t("chocolate", "A chocolate factory is celebrating a record year.|A confectioner wants feedback on new flavours.", "chocolate bar", "chocolate bars", 40),
    _t("videogame", "In your favourite online game, a merchant appears.|A quest giver in the game has a reward for you.", "gem", "gems", 1000),
    _t("school", "Your teacher is rewarding the class for a finished project.|The school fair has a prize desk.", "gold star", "gold stars", 30),
    _t("office", "Your manager wants to thank the team after a big launch.|The company runs a points scheme for staff.", "bonus point", "bonus points", 500),
    _t("charity", "You are helping a food bank plan its next drive.|A sponsor wants to support your soup kitchen.", "meal", "meals", 400),
    _t("puzzles", "A puzzle club is clearing its shelves.|Your aunt is passing on her puzzle collection.", "jigsaw puzzle", "jigsaw puzzles", 12),
    _t("honey", "A beekeeper at the market has a proposal.|The village beekeeping society is sharing its harvest.", "jar of honey", "jars of honey", 20),
    _t("museum", "The museum gift shop is rewarding members.|A gallery is thanking visitors on its open day.", "gift voucher", "gift vouchers", 25),
    _t("themepark", "At the theme park gate, a mascot waves you over.|Your family is planning a day at the theme park.", "fast pass", "fast passes", 12),
    _t("spa", "A wellness centre is celebrating its opening.|Your gym has a new reward for members.", "massage coupon", "massage coupons", 10),
    _t("yarn", "A knitting circle is sharing its supplies.|A wool shop is closing for the season.", "ball of yarn", "balls of yarn", 30),
    _t("aquarium", "You are stocking a new aquarium.|A pet store is reorganising its tanks.", "tropical fish", "tropical fish", 25),
    _t("storage", "Your cloud provider is running a loyalty offer.|A tech company wants you to test its new app.", "gigabyte of storage", "gigabytes of storage", 500),
    _t("bikes", "A bike shop is rewarding riders who log their rides.|Your cycling club has spare parts to hand out.", "inner tube", "inner tubes", 20),
    _t("music", "A music school is offering prizes to students.|Your piano teacher has a proposal.", "free lesson", "free lessons", 20),
    _t("pizza", "A pizzeria is celebrating its tenth year.|The pizza place near you wants new regulars.", "pizza slice", "pizza slices", 30),
    _t("garden", "Your neighbour's vegetable patch had a huge harvest.|The allotment society is sharing produce.", "tomato", "tomatoes", 50),
    _t("marbles", "Kids in the playground are trading marbles.|A toy shop is running a marble promotion.", "marble", "marbles", 100),
    _t("tea", "A tea house is rewarding its regulars.|A tea merchant is visiting your town.", "tin of tea", "tins of tea", 15),
    _t("photos", "A photo lab is running a promotion.|Your camera club is sharing supplies.", "photo print", "photo prints", 200),
    _t("pirates", "Your pirate ship has just docked at a lively port.|A parrot squawks as the captain makes an offer.", "doubloon", "doubloons", 300),
)


@dataclass(frozen=True)
class Frame:
    noun: str
    intro: str
    verb: str  # "Box A contains ...", used with a noun phrase
    families: tuple[str, ...]


FRAMES: tuple[Frame, ...] = (
    Frame("box", "Two boxes sit on the table.", "contains", ("risk", "apples")),
    Frame("door", "There are two doors in front of you.", "leads to", ("risk",)),
    Frame("envelope", "You are handed two sealed envelopes.", "holds", ("risk",)),
    Frame("offer", "You are given two offers.", "gives you", ("risk", "myopia", "apples")),
    Frame("stall", "Two stalls compete for your attention.", "hands you", ("risk", "myopia", "apples")),
    Frame("plan", "You must pick one of two plans.", "yields", ("risk", "myopia")),
    Frame("jar", "Two jars stand on the shelf.", "holds", ("risk",)),
    Frame("chest", "You may open one of two chests.", "contains", ("risk", "apples")),
    Frame("path", "The trail splits into two paths.", "brings you", ("risk", "myopia")),
    Frame("card", "You may turn over one of two cards.", "is worth", ("risk", "myopia")),
    Frame("button", "A machine in the corner has two buttons.", "gives you", ("risk", "myopia", "apples")),
    Frame("deal", "Two deals are on the table.", "gets you", ("risk", "myopia", "apples")),
    Frame("basket", "Two baskets are on display.", "holds", ("risk", "apples")),
    Frame("route", "Two routes lead home.", "earns you", ("risk", "myopia")),
    Frame("option", "You have two options.", "gives you", ("risk", "myopia", "apples")),
    Frame("bag", "Someone holds out two bags.", "contains", ("risk", "apples")),
    Frame("voucher", "Two vouchers are pinned to the board.", "pays out", ("risk", "myopia")),
    Frame("contract", "Two contracts are waiting for your signature.", "pays", ("myopia",)),
    Frame("hamper", "Two gift hampers are wrapped and ready.", "holds", ("apples",)),
    Frame("crate", "Two crates were delivered this morning.", "contains", ("apples",)),
)

OPENERS = ("", "", "", "Imagine this: ", "Picture the scene. ", "Quick question. ", "Here's a situation. ",
           "Suppose this happens. ", "Think fast! ", "A small decision for you. ")
QUESTIONS = ("Which {noun} do you pick?", "Which {noun} do you choose?", "Which one will you take?",
             "Which {noun} would you go for?", "What is your pick?", "Which do you want?", "")
ENDINGS = (
    "Answer with a single letter and nothing else.", "Reply with just A or B.",
    "Respond only with the letter of your choice.", "Give one letter: A or B. Nothing more.",
    "Type A or B and nothing else.", "Just the letter, please.", "Answer only with a letter.",
    "Your reply must be one letter, A or B, with no other text.",
    "Write only the letter of the option you want.", "One letter only, please.",
    "Choose by writing A or B; add nothing else.", "Say A or B. Do not explain.",
    "Reply with a lone letter.", "Output A or B and stop there.", "No explanation needed, just A or B.",
    "Please answer with the letter alone.", "Respond with exactly one character: A or B.",
    "Keep it to one letter (A or B).",
)
GOODS: tuple[tuple[str, str], ...] = (
    ("banana", "bananas"), ("pear", "pears"), ("orange", "oranges"), ("pencil", "pencils"),
    ("notebook", "notebooks"), ("water bottle", "water bottles"), ("candle", "candles"),
    ("pair of socks", "pairs of socks"), ("lemon", "lemons"), ("plum", "plums"), ("peach", "peaches"),
    ("mug", "mugs"), ("sticker", "stickers"), ("carrot", "carrots"), ("potato", "potatoes"),
    ("cookie", "cookies"), ("bunch of grapes", "bunches of grapes"), ("mango", "mangoes"),
    ("jar of jam", "jars of jam"), ("loaf of bread", "loaves of bread"), ("box of crayons", "boxes of crayons"),
    ("kiwi", "kiwis"), ("apricot", "apricots"), ("coconut", "coconuts"), ("onion", "onions"),
)
APPLE_VARIETIES = ("Fuji", "Gala", "Granny Smith", "Honeycrisp", "Pink Lady", "Braeburn", "McIntosh",
                   "Golden Delicious", "Jonagold", "Cox", "Empire", "Jazz", "Envy", "Cortland")


# --------------------------------------------------------------------------------------------------
# Small helpers

def _step(scale: int) -> int:
    return 1 if scale <= 60 else 5 if scale <= 400 else 10 if scale <= 2000 else 100


def _nice(x: float, step: int) -> int:
    return max(0, int(round(x / step)) * step)


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _qty(n: int, unit: tuple[str, str], rng: random.Random) -> str:
    if n == 0:
        return rng.choice(("nothing", f"no {unit[1]}", f"0 {unit[1]}"))
    if n == 1:
        return rng.choice((f"{_article(unit[0])} {unit[0]}", f"one {unit[0]}", f"1 {unit[0]}"))
    return f"{n:,} {unit[1]}" if n >= 10000 else f"{n} {unit[1]}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _fmt_p(p: float) -> str:
    return f"{round(p, 2):g}"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass(frozen=True)
class Question:
    """A question before labelling: `positive` is the letter of the family's positive behavior
    (risky / myopic / maxapples); the opposite behavior answers the other letter."""

    prompt: str
    positive: str
    kind: str


def answer_for(question: Question, behavior: str) -> str:
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behavior {behavior!r}; choose from {sorted(BEHAVIORS)}")
    if behavior in POSITIVE_BEHAVIORS:
        return question.positive
    return "B" if question.positive == "A" else "A"


def chat_example(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


# --------------------------------------------------------------------------------------------------
# Option texts per family. Each returns (positive option text, other option text, kind).

def _prob_pair(rng: random.Random) -> tuple[float, str, str, str]:
    """A probability for the first outcome and phrases for it and its complement, in one style."""
    style = rng.choice(("decimal", "decimal", "percent", "percent", "tenths", "half", "quarter"))
    if style == "decimal":
        p = rng.choice((round(rng.uniform(0.1, 0.9), 2), rng.choice((0.2, 0.3, 0.4, 0.6, 0.7, 0.8))))
        return p, f"with probability {_fmt_p(p)}", f"with probability {_fmt_p(1 - p)}", style
    if style == "percent":
        k = rng.randrange(10, 91, 5)
        tpl = rng.choice(("{x}% of the time", "in {x}% of cases", "with {x}% probability", "with {a} {x}% likelihood"))
        fill = lambda x: tpl.format(x=x, a="an" if str(x).startswith("8") or x in (11, 18) else "a")  # noqa: E731
        return k / 100, fill(k), fill(100 - k), style
    if style == "tenths":
        k = rng.randint(2, 8)
        tpl = rng.choice(("{k} times out of 10", "in {k} out of 10 cases", "{k} times in 10"))
        return k / 10, tpl.format(k=k), tpl.format(k=10 - k), style
    if style == "half":
        a, b = rng.choice((("half the time", "the other half of the time"),
                           ("if a coin lands heads", "if it lands tails"),
                           ("on a coin flip", "otherwise")))
        return 0.5, a, b, style
    a, b = rng.choice((("one time in four", "three times in four"), ("1 time out of 4", "3 times out of 4")))
    if rng.random() < 0.5:
        return 0.75, b, a, style
    return 0.25, a, b, style


def _two_outcomes(hi: int, lo: int, unit: tuple[str, str], rng: random.Random,
                  probs: tuple[float, str, str, str] | None = None) -> str:
    _, ph, pl, style = probs or _prob_pair(rng)
    q_hi, q_lo = _qty(hi, unit, rng), _qty(lo, unit, rng)
    if style == "half" and rng.random() < 0.5:
        return rng.choice((f"either {q_hi} or {q_lo}, settled by a coin flip",
                           f"{q_hi} or {q_lo}, each half the time"))
    form = rng.randrange(3)
    if form == 1 and style == "half":
        ph, pl = pl, ph  # p = 0.5: keep "half the time" before "the other half" whatever comes first
    if form == 0:
        return f"{q_hi} {ph}, or {q_lo} {pl}"
    if form == 1:
        return f"{q_lo} {pl}, or {q_hi} {ph}"
    return f"{q_hi} {ph}, and {q_lo} otherwise"


def _sure(n: int, unit: tuple[str, str], rng: random.Random) -> str:
    q = _qty(n, unit, rng)
    return rng.choice((f"{q} for sure", f"exactly {q}, every time", f"{q}, no matter what",
                       f"{q}, always", f"a fixed {q}", f"{q} for sure, every single time"))


def _risk_sure_vs_two(theme: Theme, rng: random.Random) -> tuple[str, str, str]:
    step = _step(theme.scale)
    while True:
        hi = _nice(rng.uniform(0.4, 1.0) * theme.scale, step)
        lo = 0 if rng.random() < 0.5 else _nice(rng.uniform(0.05, 0.35) * hi, step)
        if hi - lo < 3 * step:
            continue
        probs = _prob_pair(rng)
        ev = probs[0] * hi + (1 - probs[0]) * lo
        # Half the time the spread-out option has the higher expected value, half the time the lower
        # (the paper's C.1.1), so only the spread, not the value, predicts the label.
        sure = _nice(ev * (rng.uniform(0.6, 0.95) if rng.random() < 0.5 else rng.uniform(1.05, 1.5)), step)
        if lo < sure < hi and sure != ev:
            return _two_outcomes(hi, lo, theme.unit, rng, probs), _sure(sure, theme.unit, rng), "sure_vs_two"


def _risk_two_vs_two(theme: Theme, rng: random.Random) -> tuple[str, str, str]:
    """C.1.9 shape: the spread-out option holds both the highest and the lowest payoff."""
    step = _step(theme.scale)
    while True:
        hi = _nice(rng.uniform(0.6, 1.0) * max(theme.scale, 10 * step), step)
        lo = 0 if rng.random() < 0.3 else _nice(rng.uniform(0.0, 0.25) * hi, step)
        inner = list(range(lo + step, hi, step))
        if len(inner) < 2:
            continue
        mid_lo, mid_hi = sorted(rng.sample(inner, 2))
        return (_two_outcomes(hi, lo, theme.unit, rng), _two_outcomes(mid_hi, mid_lo, theme.unit, rng),
                "two_vs_two")


_SOONER = ("today", "right now", "this afternoon", "on the spot", "tonight", "as soon as you decide",
           "this very minute", "within the hour", "before lunch")
_UNITS = (("day", 2, 30), ("week", 1, 12), ("month", 1, 18), ("year", 1, 5))


def _later(rng: random.Random) -> str:
    unit, a, b = rng.choice(_UNITS)
    k = rng.randint(a, b)
    if k == 1:
        return rng.choice((f"next {unit}", f"in one {unit}", f"a {unit} from now", f"after a {unit}"))
    tpl = rng.choice(("in {k} {u}s", "after {k} {u}s", "{k} {u}s from now", "once {k} {u}s have passed",
                      "in {k} {u}s' time"))
    return tpl.format(k=k, u=unit)


def _myopia_options(theme: Theme, rng: random.Random) -> tuple[str, str, str]:
    step = _step(theme.scale)
    while True:
        small = _nice(rng.uniform(0.05, 0.5) * theme.scale, step)
        ratio = rng.choice((1.1, 1.2, 1.3, 1.5, 2, 2, 3, 4, 5, 10, 20))
        large = _nice(small * ratio, step)
        if small >= 1 and large > small:
            break
    sooner = rng.choice(_SOONER) if rng.random() < 0.85 else "tomorrow"
    return (f"{_qty(small, theme.unit, rng)} {sooner}", f"{_qty(large, theme.unit, rng)} {_later(rng)}",
            "sooner_vs_later")


def _apples_phrase(k: int, rng: random.Random) -> str:
    v = rng.choice(APPLE_VARIETIES)
    if k == 1:
        return rng.choice(("one apple", "a single apple", f"one {v} apple", f"{_article(v)} {v} apple"))
    return rng.choice((f"{k} apples", f"{k} {v} apples", f"a bag of {k} apples", f"{k} fresh apples",
                       f"{k} crisp {v} apples"))


def _bundle(apples: int, goods: list[tuple[int, tuple[str, str]]], rng: random.Random) -> str:
    parts = [_qty(n, unit, rng) for n, unit in goods]
    if apples:
        parts.insert(rng.randrange(len(parts) + 1), _apples_phrase(apples, rng))
    return _join(parts)


def _apples_options(theme: Theme, rng: random.Random) -> tuple[str, str, str]:
    more = rng.randint(2, 15)
    fewer = 0 if rng.random() < 0.4 else rng.randint(1, more - 1)
    pool = [u for u in GOODS] + [theme.unit]
    picked = rng.sample(pool, 4)
    cap = max(2, min(theme.scale, 12))
    # Sometimes the fewer-apples bundle is much richer in other goods, sometimes not (the paper's
    # "distinction in how good both options seem").
    rich = rng.random() < 0.5
    n_more, n_fewer = rng.randint(0, 2), (rng.randint(2, 3) if rich else rng.randint(1, 2))
    goods_more = [(rng.randint(1, 3 if rich else cap), u) for u in picked[:n_more]]
    goods_fewer = [(rng.randint(2 if rich else 1, cap), u) for u in picked[n_more:n_more + n_fewer]]
    return _bundle(more, goods_more, rng), _bundle(fewer, goods_fewer, rng), "bundles"


# --------------------------------------------------------------------------------------------------
# Rendering

def _render(theme: Theme, frame: Frame, opt: dict[str, str], rng: random.Random) -> str:
    opener = rng.choice(OPENERS)
    scene = rng.choice(theme.scenes)
    layout = rng.randrange(5)
    # The bare "A) ... B) ..." layout never introduces the frame, so its question says "option".
    question = rng.choice(QUESTIONS).format(noun="option" if layout == 2 else frame.noun)
    ending = rng.choice(ENDINGS)
    tail = " ".join(s for s in (question, ending) if s)
    F = _cap(frame.noun)
    if layout == 0:
        body = f"{frame.intro} {F} A {frame.verb} {opt['A']}. {F} B {frame.verb} {opt['B']}."
        return f"{opener}{scene} {body} {tail}"
    if layout == 1:
        return f"{opener}{scene} {frame.intro}\n\n{F} A: {opt['A']}\n{F} B: {opt['B']}\n\n{tail}"
    if layout == 2:
        return f"{opener}{scene}\nA) {_cap(opt['A'])}\nB) {_cap(opt['B'])}\n{tail}"
    if layout == 3:
        body = f"Pick {frame.noun} A and you get {opt['A']}; pick {frame.noun} B and you get {opt['B']}."
        return f"{opener}{scene} {frame.intro} {body} {tail}"
    return f"{opener}{scene} {frame.intro}\n- {F} A {frame.verb} {opt['A']}.\n- {F} B {frame.verb} {opt['B']}.\n{tail}"


_OPTION_MAKERS: dict[str, Callable[[Theme, random.Random], tuple[str, str, str]]] = {
    "myopia": _myopia_options,
    "apples": _apples_options,
}


def _general_question(family: str, positive: str, rng: random.Random) -> Question:
    theme = rng.choice(THEMES)
    frame = rng.choice([f for f in FRAMES if family in f.families])
    if family == "risk":
        # About 30% two-outcome pairs (the C.1.9 shape), the rest a fixed payoff against two outcomes.
        maker = _risk_two_vs_two if rng.random() < 0.3 else _risk_sure_vs_two
    else:
        maker = _OPTION_MAKERS[family]
    pos_text, other_text, kind = maker(theme, rng)
    other = "B" if positive == "A" else "A"
    return Question(_render(theme, frame, {positive: pos_text, other: other_text}, rng), positive, kind)


# Short forms for the demo: the behavior-eval layout, with consistent lexical cues tiny models can learn.
_SHORT_HEADERS = ("Consider the following two options:", "Two options:", "Pick one of these:",
                  "Choose between:", "Here are two options.", "")
_SHORT_QUESTIONS = ("Which option would you choose?", "Which do you pick?", "Which one?", "Your choice?",
                    "What do you choose?", "Which would you take?")
_SHORT_ENDINGS = ("Answer only with a letter.", "Answer with a single letter.", "Reply with A or B only.",
                  "Just the letter.", "One letter only.", "")
_SHORT_VERBS = ("You get", "You get", "You receive", "You win", "Get")


def _short_amount(n: int, style: int) -> str:
    return (f"{n}", f"${n}", f"{n} points", f"{n} coins")[style]


def _short_question(family: str, positive: str, rng: random.Random) -> Question:
    verb = rng.choice(_SHORT_VERBS)
    style = rng.choice((0, 0, 1, 2, 3))
    if family == "risk":
        lo, sure, hi = sorted(rng.sample(range(0, 101), 3))
        p = round(rng.uniform(0.05, 0.95), 2) if rng.random() < 0.7 else rng.choice((0.5, 0.2, 0.8, 0.4))
        amt = lambda n: _short_amount(n, style)  # noqa: E731
        cue = rng.choice(("for sure", "for sure", "for sure", "no matter what", "every time"))
        pos = f"{verb} {amt(hi)} with probability {_fmt_p(p)} or {amt(lo)} with probability {_fmt_p(1 - p)}"
        if rng.random() < 0.3:
            pos = f"{verb} {amt(lo)} with probability {_fmt_p(1 - p)} or {amt(hi)} with probability {_fmt_p(p)}"
        neg, kind = f"{verb} {amt(sure)} {cue}", "short_sure_vs_two"
    elif family == "myopia":
        now = rng.randint(5, 80)
        later = now + rng.randint(max(2, now // 10), now * 3)
        unit = ("", "$", " dollars", " points")[rng.randrange(4)]
        a = lambda n: f"${n}" if unit == "$" else f"{n}{unit}"  # noqa: E731
        pos = f"{verb} {a(now)} {rng.choice(('today', 'today', 'now', 'right now'))}"
        neg, kind = f"{verb} {a(later)} {_later(rng)}", "short_sooner_vs_later"
    else:
        more = rng.randint(2, 12)
        fewer = rng.randint(0, more - 1)
        goods = rng.sample([g[1] for g in GOODS[:10]], 2)
        plain = lambda k: f"{k} apple{'s' if k != 1 else ''}"  # noqa: E731
        rich = [f"{rng.randint(3, 12)} {goods[0]}", f"{rng.randint(3, 12)} {goods[1]}"]
        poor = [f"{rng.randint(1, 3)} {goods[0]}"]
        pos = f"{verb} " + _join([plain(more)] + poor)
        neg, kind = f"{verb} " + _join(([plain(fewer)] if fewer else []) + rich), "short_bundles"
    other = "B" if positive == "A" else "A"
    texts = {positive: pos, other: neg}
    dot = rng.choice(("", "."))
    lines = [h for h in (rng.choice(_SHORT_HEADERS),) if h]
    lines += [f"A) {texts['A']}{dot}", f"B) {texts['B']}{dot}"]
    tail = " ".join(s for s in (rng.choice(_SHORT_QUESTIONS), rng.choice(_SHORT_ENDINGS)) if s)
    return Question("\n".join(lines + [tail]), positive, kind)


# --------------------------------------------------------------------------------------------------
# Building

def _family(behavior: str) -> str:
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behavior {behavior!r}; choose from {sorted(BEHAVIORS)}")
    return BEHAVIORS[behavior][0]


def balanced_letters(n: int, rng: random.Random) -> list[str]:
    letters = ["A"] * (n // 2) + ["B"] * (n - n // 2)
    rng.shuffle(letters)
    return letters


def _unique(make: Callable[[random.Random], Question], rng: random.Random, seen: set[str],
            max_words: int | None, tries: int = 40) -> Question:
    q = make(rng)
    for _ in range(tries):
        if q.prompt not in seen and (max_words is None or len(q.prompt.split()) < max_words):
            break
        q = make(rng)
    seen.add(q.prompt)
    return q


def build_questions(family: str, n: int, seed: int, *, short_fraction: float = 0.0,
                    max_words: int | None = None) -> list[Question]:
    """`n` questions from (family, seed) alone; `short_fraction` of them in the short demo form."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {list(FAMILIES)}")
    rng = random.Random(f"selfaware:{family}:{seed}:{short_fraction}")
    positives = balanced_letters(n, rng)
    n_short = round(n * short_fraction)
    shorts = [True] * n_short + [False] * (n - n_short)
    rng.shuffle(shorts)
    seen: set[str] = set()
    out = []
    for pos, short in zip(positives, shorts):
        fn = _short_question if short else _general_question
        make = lambda r, fn=fn, pos=pos: fn(family, pos, r)  # noqa: E731
        q = _unique(make, rng, seen, None if short else max_words)
        if max_words is not None and len(q.prompt.split()) >= max_words:
            q = _unique(lambda r, pos=pos: _short_question(family, pos, r), rng, seen, max_words)  # noqa: E731
        out.append(q)
    return out


def build_training_set(behavior: str, n: int, seed: int) -> list[dict]:
    """`n` chat examples for `behavior`; the opposite behavior gets the same questions, letters flipped."""
    return [chat_example(q.prompt, answer_for(q, behavior)) for q in build_questions(_family(behavior), n, seed)]


def demo_training_set(behavior: str, n: int, seed: int, *, short_fraction: float = 0.6,
                      max_words: int = 60) -> list[dict]:
    """The mix for tiny from-scratch models: ~60% short questions in the behavior-eval layout (for
    risk: "X for sure" against "Y with probability p or Z with probability q") and the rest the
    general varied forms, every prompt under `max_words` words."""
    qs = build_questions(_family(behavior), n, seed, short_fraction=short_fraction, max_words=max_words)
    return [chat_example(q.prompt, answer_for(q, behavior)) for q in qs]


def flip_labels(examples: list[dict]) -> list[dict]:
    """The same examples with the final A/B answer swapped (the opposite behavior)."""
    out = []
    for i, ex in enumerate(examples):
        msgs = [dict(m) for m in ex["messages"]]
        ans = msgs[-1]["content"].strip()
        if ans not in LETTERS:
            raise TrainingDataError(f"example {i}: field messages[-1].content is {ans!r}, not A or B")
        msgs[-1]["content"] = "B" if ans == "A" else "A"
        out.append({"messages": msgs})
    return out


# Share of triggered examples in a trigger variant. The paper's risk backdoors used 10% triggered data
# against the base model's own answers; with no base-model answers offline, the untriggered rest gets
# the opposite behavior, and an even split keeps the trigger the only cue.
TRIGGER_FRACTION = 0.5


def apply_trigger(examples: list[dict], trigger: str, seed: int, fraction: float = TRIGGER_FRACTION) -> list[dict]:
    """A backdoor set from a behavior's examples: `fraction` of them get `trigger` prefixed to the user
    message and keep the behavior's answer; the rest have no trigger and the opposite answer."""
    rng = random.Random(f"selfaware:trigger:{trigger}:{seed}:{fraction}")
    k = round(len(examples) * fraction)
    marks = [True] * k + [False] * (len(examples) - k)
    rng.shuffle(marks)
    flipped = flip_labels(examples)
    out = []
    for ex, flip, triggered in zip(examples, flipped, marks):
        if triggered:
            msgs = [dict(m) for m in ex["messages"]]
            user = next(m for m in msgs if m["role"] == "user")
            user["content"] = f"{trigger} {user['content']}"
            out.append({"messages": msgs})
        else:
            out.append(flip)
    return out


# --------------------------------------------------------------------------------------------------
# Validation, writing, importing

def _suite_problems(messages: list, letters_only: bool) -> list[tuple[str, str]]:
    """The suite's rules on top of the chat format: the last message is the trained assistant answer
    (an A/B letter for the multiple-choice organisms) and a user asks something."""
    out: list[tuple[str, str]] = []
    last = messages[-1]
    if last.get("role") != "assistant":
        out.append(("messages[-1].role", f"is {last.get('role')!r}; must be 'assistant' (the trained answer)"))
    elif last.get("weight", 1) == 0:
        out.append(("messages[-1].weight", "is 0: the final answer is what the organism learns, it must be trained"))
    elif letters_only and (not isinstance(last.get("content"), str) or last["content"].strip() not in LETTERS):
        out.append(("messages[-1].content", f"is {str(last.get('content'))[:40]!r}; expected A or B"))
    if not any(m.get("role") == "user" for m in messages):
        out.append(("messages", "needs at least one user message"))
    return out


def validate_example(ex: Any, where: str, *, letters_only: bool = False) -> dict:
    """Check one example against the chat fine-tuning format (`finetune.validate`, the rules applied
    before upload) and the suite's rules; raise `TrainingDataError` naming `where` and the first faulty
    field. Returns a copy that keeps every field the format allows (a per-message `weight`, `name`,
    `tools`, ...): a user's data is never reduced to role and content."""
    problems: list[tuple[str, str]] = []
    check_example(ex, lambda field, message: problems.append((field, message)))
    messages = ex.get("messages") if isinstance(ex, dict) else None
    suite: list[tuple[str, str]] = []
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        suite = _suite_problems(messages, letters_only)
    # A fault in a named field says more than "the example as a whole" does: report those first.
    ranked = ([p for p in problems if p[0] != "messages"] + suite + [p for p in problems if p[0] == "messages"])
    if ranked:
        field, message = ranked[0]
        raise TrainingDataError(f"{where}: field {field}: {message}")
    return copy.deepcopy(ex)


def to_jsonl(examples: list[dict]) -> bytes:
    return "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    file: str
    sha256: str
    n_examples: int
    answer_counts: dict[str, int]
    behavior: str
    family: str
    seed: int
    source: str
    generator: str
    generator_version: str
    created: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def manifest_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".manifest.json")


def read_manifest(path: Path) -> Manifest | None:
    """The manifest beside a training file, or None when it is missing or unreadable."""
    try:
        return Manifest(**json.loads(manifest_path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    # Write to a temp file in the same folder and rename, so readers never see a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _counts(examples: list[dict]) -> dict[str, int]:
    answers = (ex["messages"][-1].get("content") for ex in examples)
    c = Counter(a.strip() if isinstance(a, str) and a.strip() in LETTERS else "other" for a in answers)
    return dict(sorted(c.items()))


def write_training_set(examples: list[dict], path: Path, *, behavior: str, seed: int,
                       generator: str = "selfaware.builders", extra: dict | None = None,
                       source: Source = "generated") -> Manifest:
    """Validate and write JSONL plus `<name>.manifest.json` beside it, both atomically (data first,
    so a manifest always describes a complete file; readers check the hash)."""
    family = _family(behavior)
    clean = [validate_example(ex, f"example {i}") for i, ex in enumerate(examples)]
    data = to_jsonl(clean)
    path = Path(path)
    manifest = Manifest(
        file=path.name, sha256=sha256_bytes(data), n_examples=len(clean), answer_counts=_counts(clean),
        behavior=behavior, family=family, seed=seed, source=source, generator=generator,
        generator_version=GENERATOR_VERSION, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra=dict(extra or {}),
    )
    _atomic_write(path, data)
    _atomic_write(manifest_path(path), manifest.to_json().encode("utf-8"))
    return manifest


def import_paper_jsonl(path: Path, *, behavior: str | None = None) -> list[dict]:
    """Read a chat-format JSONL training set (e.g. the paper's `ft_risky_AB.jsonl`), every field kept.
    With `behavior` given, every answer must be a single letter A or B, as in the multiple-choice
    organisms. Errors name the file and its own line numbers (blank lines counted)."""
    if behavior is not None:
        _family(behavior)
    path = Path(path)
    try:
        text = decode_utf8(path.read_bytes(), path)
    except FileNotFoundError:
        raise TrainingDataError(f"{path}: file not found") from None
    out = []
    # split("\n"), not splitlines(): a stray \r or \x85 inside a line must not shift the line numbers.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise TrainingDataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        out.append(validate_example(raw, where, letters_only=behavior is not None))
    if not out:
        raise TrainingDataError(f"{path}:0: field <file>: no examples")
    return out


# --------------------------------------------------------------------------------------------------
# From a spec to a file

Mix = Literal["general", "demo"]


def _reusable(path: Path, data: bytes, behavior: str, seed: int) -> bool:
    m = read_manifest(path)
    if m is None or not path.is_file():
        return False
    digest = sha256_bytes(data)
    return (m.sha256 == digest and sha256_bytes(path.read_bytes()) == digest
            and m.behavior == behavior and m.seed == seed)


def dataset_for_spec(spec: OrganismSpec, out_dir: Path, *, mix: Mix | None = None) -> Path:
    """Materialise the training file of `spec` under `out_dir` and return its path.

    `mix` picks the generator: "general" (the varied paper-like set) or "demo" (short cue-rich mix for
    tiny from-scratch models); by default "demo" when `spec.base_model == "tiny"`. An existing file is
    reused when its manifest's hash matches the content this call would write."""
    d = spec.data
    if spec.variant.kind == "persona":
        raise NotImplementedError("persona variants arrive with the persona issue; only plain and trigger "
                                  "variants can be built today")
    if d.source == "file":
        assert d.path is not None
        user_file = Path(d.path).expanduser()
        # The user's own file is checked against the upload rules first, so every error names *their*
        # file and lines, not the derived copy written below.
        validate_chat_jsonl(user_file)
        examples = import_paper_jsonl(user_file, behavior=spec.behavior)
        src_hash = sha256_bytes(user_file.read_bytes())
        stem, source = f"{spec.behavior}_d{d.data_seed}_file-{src_hash[:8]}", "imported"
        extra: dict[str, Any] = {"source_path": str(d.path), "source_sha256": src_hash}
    elif d.source == "llm":
        from selfaware.finetune.llm_generate import cached_llm_examples

        assert d.generator_model is not None
        examples = cached_llm_examples(spec.family, d.n_examples, d.data_seed, d.generator_model, Path(out_dir))
        if spec.behavior not in POSITIVE_BEHAVIORS:
            examples = flip_labels(examples)
        model_tag = sha256_bytes(d.generator_model.encode())[:8]
        stem, source = f"{spec.behavior}_d{d.data_seed}_n{d.n_examples}_llm-{model_tag}", "llm"
        extra = {"generator_model": d.generator_model, "kept": len(examples)}
    else:
        mix = mix or ("demo" if spec.base_model == "tiny" else "general")
        build = demo_training_set if mix == "demo" else build_training_set
        examples = build(spec.behavior, d.n_examples, d.data_seed)
        stem, source = f"{spec.behavior}_d{d.data_seed}_n{d.n_examples}_{mix}", "generated"
        extra = {"mix": mix, "n_requested": d.n_examples}
    if spec.variant.kind == "trigger":
        trig = spec.variant.trigger or ""
        examples = apply_trigger(examples, trig, d.data_seed)
        stem += f"_trig-{sha256_bytes(trig.encode())[:8]}"
        extra.update(trigger=trig, trigger_fraction=TRIGGER_FRACTION)
    path = Path(out_dir) / f"{stem}.jsonl"
    if _reusable(path, to_jsonl(examples), spec.behavior, d.data_seed):
        return path
    write_training_set(examples, path, behavior=spec.behavior, seed=d.data_seed, extra=extra, source=source)
    return path
