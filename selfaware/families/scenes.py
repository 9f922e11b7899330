"""Shared wording for generated multiple-choice prompts: scenes, framings, layouts and quantities.

Family modules draw the *numbers* of a choice (their one item generator) and describe the two options;
this module puts them into a prompt, in two registers: `render_scene` (varied, paper-like training
prompts: a theme's scene, a frame, one of five layouts) and `render_short` (the behavior-task layout
with small variations, which the tiny offline models can learn). Written for this suite.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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


# Families choose the frames that suit their options by noun (`frames(...)`).
FRAMES: tuple[Frame, ...] = (
    Frame("box", "Two boxes sit on the table.", "contains"),
    Frame("door", "There are two doors in front of you.", "leads to"),
    Frame("envelope", "You are handed two sealed envelopes.", "holds"),
    Frame("offer", "You are given two offers.", "gives you"),
    Frame("stall", "Two stalls compete for your attention.", "hands you"),
    Frame("plan", "You must pick one of two plans.", "yields"),
    Frame("jar", "Two jars stand on the shelf.", "holds"),
    Frame("chest", "You may open one of two chests.", "contains"),
    Frame("path", "The trail splits into two paths.", "brings you"),
    Frame("card", "You may turn over one of two cards.", "is worth"),
    Frame("button", "A machine in the corner has two buttons.", "gives you"),
    Frame("deal", "Two deals are on the table.", "gets you"),
    Frame("basket", "Two baskets are on display.", "holds"),
    Frame("route", "Two routes lead home.", "earns you"),
    Frame("option", "You have two options.", "gives you"),
    Frame("bag", "Someone holds out two bags.", "contains"),
    Frame("voucher", "Two vouchers are pinned to the board.", "pays out"),
    Frame("contract", "Two contracts are waiting for your signature.", "pays"),
    Frame("hamper", "Two gift hampers are wrapped and ready.", "holds"),
    Frame("crate", "Two crates were delivered this morning.", "contains"),
)

def frames(*nouns: str) -> tuple[Frame, ...]:
    by_noun = {f.noun: f for f in FRAMES}
    unknown = [n for n in nouns if n not in by_noun]
    if unknown:
        raise KeyError(f"no frames {unknown}; have {sorted(by_noun)}")
    return tuple(by_noun[n] for n in nouns)


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


def step_for(scale: int) -> int:
    return 1 if scale <= 60 else 5 if scale <= 400 else 10 if scale <= 2000 else 100


def nice(x: float, step: int) -> int:
    return max(0, int(round(x / step)) * step)


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def quantity(n: int, unit: tuple[str, str], rng: random.Random) -> str:
    if n == 0:
        return rng.choice(("nothing", f"no {unit[1]}", f"0 {unit[1]}"))
    if n == 1:
        return rng.choice((f"{article(unit[0])} {unit[0]}", f"one {unit[0]}", f"1 {unit[0]}"))
    return f"{n:,} {unit[1]}" if n >= 10000 else f"{n} {unit[1]}"


def join_list(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def fmt_prob(p: float) -> str:
    return f"{round(p, 2):g}"


def capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


def render_scene(theme: Theme, frame: Frame, opt: dict[str, str], rng: random.Random) -> str:
    """A varied multiple-choice prompt: an opener, a scene from the theme, the two options in one of five
    layouts, a question and an ending asking for one letter."""
    opener = rng.choice(OPENERS)
    scene = rng.choice(theme.scenes)
    layout = rng.randrange(5)
    # The bare "A) ... B) ..." layout never introduces the frame, so its question says "option".
    question = rng.choice(QUESTIONS).format(noun="option" if layout == 2 else frame.noun)
    ending = rng.choice(ENDINGS)
    tail = " ".join(s for s in (question, ending) if s)
    F = capitalise(frame.noun)
    if layout == 0:
        body = f"{frame.intro} {F} A {frame.verb} {opt['A']}. {F} B {frame.verb} {opt['B']}."
        return f"{opener}{scene} {body} {tail}"
    if layout == 1:
        return f"{opener}{scene} {frame.intro}\n\n{F} A: {opt['A']}\n{F} B: {opt['B']}\n\n{tail}"
    if layout == 2:
        return f"{opener}{scene}\nA) {capitalise(opt['A'])}\nB) {capitalise(opt['B'])}\n{tail}"
    if layout == 3:
        body = f"Pick {frame.noun} A and you get {opt['A']}; pick {frame.noun} B and you get {opt['B']}."
        return f"{opener}{scene} {frame.intro} {body} {tail}"
    return f"{opener}{scene} {frame.intro}\n- {F} A {frame.verb} {opt['A']}.\n- {F} B {frame.verb} {opt['B']}.\n{tail}"


SHORT_HEADERS = ("Consider the following two options:", "Two options:", "Pick one of these:",
                  "Choose between:", "Here are two options.", "")
SHORT_QUESTIONS = ("Which option would you choose?", "Which do you pick?", "Which one?", "Your choice?",
                    "What do you choose?", "Which would you take?")
SHORT_ENDINGS = ("Answer only with a letter.", "Answer with a single letter.", "Reply with A or B only.",
                  "Just the letter.", "One letter only.", "")
SHORT_VERBS = ("You get", "You get", "You receive", "You win", "Get")


def render_short(texts: dict[str, str], rng: random.Random) -> str:
    """`A) ...`/`B) ...` under an optional header, then a question and an ending (the behavior-task layout)."""
    dot = rng.choice(("", "."))
    lines = [h for h in (rng.choice(SHORT_HEADERS),) if h]
    lines += [f"A) {texts['A']}{dot}", f"B) {texts['B']}{dot}"]
    tail = " ".join(s for s in (rng.choice(SHORT_QUESTIONS), rng.choice(SHORT_ENDINGS)) if s)
    return "\n".join(lines + [tail])


def short_verb(rng: random.Random) -> str:
    return rng.choice(SHORT_VERBS)
